"""The checks a PES_Aller passes before Relais sends it, each refusal a typed reason.

Every :class:`~relais.errors.Reason` names the element it is about (``field`` is the
element path, e.g. ``EnTetePES/IdColl``) and carries a stable code:

- ``Enveloppe/Parametres/NomFic``: present, at most 100 characters (``Base_Texte100``),
  no control character nor path separator (``pes_nomfic_missing`` / ``pes_nomfic_format``);
- ``Enveloppe/Parametres/TypFic``: ``PESALR1`` or ``PESALR2`` for a PES_Aller
  (``pes_typfic``);
- ``EnTetePES/IdColl``: a SIRET (14 digits, Luhn-valid; codes of
  :func:`relais.identifiers.siret_reasons`) whose SIREN is the member's own
  (``pes_idcoll_not_member``);
- ``EnTetePES/CodCol`` 3, ``CodBud`` 2 letters or digits, ``IdPost`` 6 digits (S²LOW's
  field lengths; ``pes_codcol`` / ``pes_codbud`` / ``pes_idpost``, ``pes_*_missing``
  when absent);
- the file carries at least one bordereau, pièce justificative or facture
  (``pes_empty``, as S²LOW refuses it);
- signatures (``Signature``): present when the member's policy requires one
  (``pes_signature_missing``); every signature's XML-DSig structure intact
  (``pes_signature_structure``) and no Reference digest mismatching, i.e. the body was
  not changed after signing (``pes_signature_tampered``). The signature value and the
  certificate are **not** verified cryptographically here (see
  :mod:`relais.pes.signature`); Hélios and S²LOW do that.

Duplicates (:func:`duplicate_reasons`) need the member's history, which the caller holds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass

from relais.errors import Reason
from relais.identifiers import SIREN_LENGTH, siret_reasons
from relais.pes.aller import PesAller
from relais.pes.codes import ALLER_TYPFIC

NOMFIC = "Enveloppe/Parametres/NomFic"
TYPFIC = "Enveloppe/Parametres/TypFic"
IDCOLL = "EnTetePES/IdColl"
CODCOL = "EnTetePES/CodCol"
CODBUD = "EnTetePES/CodBud"
IDPOST = "EnTetePES/IdPost"
SIGNATURE = "Signature"

_NOMFIC_MAX = 100
_NOMFIC_BAD = re.compile(r"[\x00-\x1f\x7f/\\]")
_FORMATS = {
    CODCOL: (re.compile(r"[A-Za-z0-9]{3}"), "pes_codcol", "3 letters or digits"),
    CODBUD: (re.compile(r"[A-Za-z0-9]{2}"), "pes_codbud", "2 letters or digits"),
    IDPOST: (re.compile(r"[0-9]{6}"), "pes_idpost", "6 digits"),
}


@dataclass(frozen=True)
class PesPolicy:
    """A member's PES settings."""

    signature_required: bool = False


def content_digest(raw: bytes) -> str:
    """The digest under which a PES file is remembered (SHA-256, hex)."""
    return hashlib.sha256(raw).hexdigest()


def _nomfic(pes: PesAller) -> list[Reason]:
    if not pes.nom_fic:
        return [Reason(NOMFIC, "pes_nomfic_missing", "the file has no NomFic")]
    if len(pes.nom_fic) > _NOMFIC_MAX or _NOMFIC_BAD.search(pes.nom_fic):
        return [Reason(NOMFIC, "pes_nomfic_format",
                       f"NomFic {pes.nom_fic[:120]!r} is longer than {_NOMFIC_MAX} characters "
                       "or holds a control character or a path separator")]
    return []


def _typfic(pes: PesAller) -> list[Reason]:
    if pes.typ_fic not in ALLER_TYPFIC:
        return [Reason(TYPFIC, "pes_typfic",
                       f"TypFic {pes.typ_fic!r} is not a PES_Aller type "
                       f"({', '.join(sorted(ALLER_TYPFIC))})")]
    return []


def _idcoll(pes: PesAller, member_siren: str) -> list[Reason]:
    if not pes.id_coll:
        return [Reason(IDCOLL, "pes_idcoll_missing", "EnTetePES has no IdColl (SIRET)")]
    reasons = siret_reasons(pes.id_coll, field=IDCOLL)
    if not reasons and pes.id_coll[:SIREN_LENGTH] != member_siren:
        reasons.append(Reason(IDCOLL, "pes_idcoll_not_member",
                              f"IdColl {pes.id_coll} is not a SIRET of the member's SIREN "
                              f"{member_siren}"))
    return reasons


def _header_formats(pes: PesAller) -> list[Reason]:
    reasons: list[Reason] = []
    for path, found in ((CODCOL, pes.cod_col), (CODBUD, pes.cod_bud), (IDPOST, pes.id_post)):
        pattern, code, wanted = _FORMATS[path]
        if not found:
            reasons.append(Reason(path, f"{code}_missing", f"EnTetePES has no {path[10:]}"))
        elif not pattern.fullmatch(found):
            reasons.append(Reason(path, code, f"{path[10:]} {found!r} is not {wanted}"))
    return reasons


def _content(pes: PesAller) -> list[Reason]:
    if not pes.bordereaux and not pes.pj_count and not pes.facture_count:
        return [Reason("PES_Aller", "pes_empty",
                       "the file holds no bordereau, pièce justificative nor facture")]
    return []


def _signatures(pes: PesAller, policy: PesPolicy) -> list[Reason]:
    if not pes.signatures:
        if policy.signature_required:
            return [Reason(SIGNATURE, "pes_signature_missing",
                           "the member's policy requires a signed PES_Aller; this one is not")]
        return []
    reasons: list[Reason] = []
    for signature in pes.signatures:
        where = signature.parent + (f"[Id={signature.parent_id}]" if signature.parent_id else "")
        field = f"{where}/Signature"
        if signature.problems:
            reasons.append(Reason(field, "pes_signature_structure",
                                  "XML-DSig structure broken: " + "; ".join(signature.problems)))
        for reference in signature.references:
            if reference.target_found and reference.digest_ok is False:
                reasons.append(Reason(field, "pes_signature_tampered",
                                      f"the content signed by Reference {reference.uri!r} was "
                                      "changed after signing (digest mismatch)"))
    return reasons


def check_aller(pes: PesAller, member_siren: str, policy: PesPolicy | None = None) -> list[Reason]:
    """Every reason to refuse ``pes`` for the member ``member_siren`` (empty: send it)."""
    policy = policy or PesPolicy()
    return [
        *_nomfic(pes), *_typfic(pes), *_idcoll(pes, member_siren), *_header_formats(pes),
        *_content(pes), *_signatures(pes, policy),
    ]


def duplicate_reasons(
    pes: PesAller, digest: str, accepted_nom_fics: Collection[str],
    accepted_digests: Collection[str],
) -> list[Reason]:
    """Refuse a file already accepted for the member: same content digest or same NomFic."""
    if digest in accepted_digests:
        return [Reason("PES_Aller", "pes_duplicate_content",
                       "the same file (same content digest) was already accepted")]
    if pes.nom_fic and pes.nom_fic in accepted_nom_fics:
        return [Reason(NOMFIC, "pes_duplicate_nomfic",
                       f"a file named {pes.nom_fic!r} (NomFic) was already accepted")]
    return []
