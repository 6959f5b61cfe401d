"""ISO-8859-1 encoding of form text, the charset S²LOW reads its fields in.

The policy is the one of the @CTES builders (:mod:`relais.actes.text`):
typographic characters with a Latin-1 equivalent are folded to it, anything
else outside Latin-1 is refused before the call, because the TdT would store it
mangled in the @CTES XML.
"""

from __future__ import annotations

from relais.actes.text import fold_to_latin1, latin1_reasons
from relais.errors import ValidationError


def encode_latin1(text: str, field: str) -> bytes:
    """``text`` folded and encoded in ISO-8859-1; ValidationError naming ``field`` otherwise."""
    folded = fold_to_latin1(text)
    reasons = latin1_reasons(folded, field)
    if reasons:
        raise ValidationError(f"{field}: {reasons[0].message}", reasons=reasons)
    return folded.encode("iso-8859-1")
