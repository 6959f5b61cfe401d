"""The ``DossierID`` of a flow: stable, unique, and inside the WSDL's pattern.

i-Parapheur refuses a second ``CreerDossier`` with a ``DossierID`` it already holds
(``codeRetour`` KO, "Le nom de dossier est déjà présent dans le Parapheur"), so deriving
the id from the flow makes a retried create harmless: the retry is refused as a duplicate
and the connector reads that as "already created".

The WSDL's ``DossierID`` type is ``\\w([\\w@.(){}\\-_éèêàùçëïü]){0,600}``; Alfresco
also forbids ``\\ & " £ * / < > ? % | + ; :``. The id is ``relais-`` + the flow id with
every other character replaced by ``-`` (cut to 120 characters, for people reading the
parapheur) + ``-`` + 20 hex digits of the SHA-256 of the whole flow id (so two flow ids
that read the same after replacement still get two dossiers).
"""

from __future__ import annotations

import hashlib
import re

_OUTSIDE = re.compile(r"[^A-Za-z0-9@.(){}\-_éèêàùçëïü]")
READABLE_MAX = 120
DIGEST_HEX = 20
DOSSIER_ID_PATTERN = re.compile(r"^\w[\w@.(){}\-_éèêàùçëïü]{0,600}$")


def dossier_id_for(flow_id: str, *, stage: str = "signature") -> str:
    """The dossier id of ``flow_id`` for one signature ``stage`` (same input, same id)."""
    if not flow_id:
        raise ValueError("a dossier id needs a flow id")
    whole = f"{stage}\x1f{flow_id}"
    digest = hashlib.sha256(whole.encode("utf-8")).hexdigest()[:DIGEST_HEX]
    readable = _OUTSIDE.sub("-", flow_id)[:READABLE_MAX]
    return f"relais-{readable}-{digest}"
