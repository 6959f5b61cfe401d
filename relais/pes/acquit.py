"""A PES_ACQUIT read leniently: one result per ``ElementACQUIT`` and the file's outcome.

Partner output is read, not judged (no schema validation; unknown ``DomaineAck`` or
``NumAnoAck`` values are kept as written). Each element gives its domain, whether it
was accepted (``EtatAck`` 1) or rejected (0), the bordereau (``NumBord`` +
``ExerciceBord``) or the pièce justificative (``IdUnique``) it is about, and every
error at element, pièce (``DetailPiece``) and line (``DetailLigne``) level. The DGFiP
rule code that opens a ``LibelleAnoAck`` ("1971 - Compte fonction présent à tort") is
split out as ``rule_code``.

The file's outcome: ``acknowledged`` when every element is accepted, ``rejected`` when
none is, ``partially-accepted`` otherwise. Callers keep the raw bytes.

Errors: ``PartnerReplyError(partner="tdt")`` when the bytes are not a PES_ACQUIT,
``PartnerReplyTooLargeError`` past a limit of :class:`~relais.pes.xml_safe.PesLimits`.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from enum import StrEnum

from lxml import etree

from relais.errors import PartnerReplyError, PartnerReplyTooLargeError, ValidationError
from relais.pes.codes import ACQUIT_NS, ACQUIT_ROOT, DOMAINE_ACK_LABELS
from relais.pes.xml_safe import XML_TOO_LARGE, PesLimits, child, children, parse_pes, value

_RULE_CODE_RE = re.compile(r"^\s*(\d{1,6})\s*-\s*")


class AcquitOutcome(StrEnum):
    """What a PES_ACQUIT says about the whole file."""

    ACKNOWLEDGED = "acknowledged"
    PARTIALLY_ACCEPTED = "partially-accepted"
    REJECTED = "rejected"


@dataclass(frozen=True)
class AckError:
    """One ``Erreur``: ``NumAnoAck``, ``LibelleAnoAck`` and the DGFiP rule code it opens with."""

    code: str | None
    label: str | None
    rule_code: str | None


@dataclass(frozen=True)
class LineDetail:
    """One ``DetailLigne``."""

    line: str | None
    errors: tuple[AckError, ...]


@dataclass(frozen=True)
class PieceDetail:
    """One ``DetailPiece``."""

    piece: str | None
    errors: tuple[AckError, ...]
    lines: tuple[LineDetail, ...]


@dataclass(frozen=True)
class ElementResult:
    """One ``ElementACQUIT``."""

    domain: str | None
    accepted: bool
    bordereau: str | None
    exercice: str | None
    id_unique: str | None
    errors: tuple[AckError, ...]
    pieces: tuple[PieceDetail, ...]

    @property
    def domain_label(self) -> str | None:
        """Pastell's label of the domain (``dépense``, ``pièce justificative``…), if known."""
        return DOMAINE_ACK_LABELS.get(self.domain or "")

    def all_errors(self) -> list[AckError]:
        """Every error of the element, its pièces and their lines, in document order."""
        found = list(self.errors)
        for piece in self.pieces:
            found.extend(piece.errors)
            for line in piece.lines:
                found.extend(line.errors)
        return found


@dataclass(frozen=True)
class PesAcquit:
    """A PES_ACQUIT as read."""

    nom_fic: str | None
    typ_fic: str | None
    id_post: str | None
    id_coll: str | None
    cod_col: str | None
    cod_bud: str | None
    libelle_col_bud: str | None
    elements: tuple[ElementResult, ...]

    @property
    def outcome(self) -> AcquitOutcome:
        """See the module docstring (a file with no element counts as rejected)."""
        accepted = sum(1 for e in self.elements if e.accepted)
        if self.elements and accepted == len(self.elements):
            return AcquitOutcome.ACKNOWLEDGED
        if accepted == 0:
            return AcquitOutcome.REJECTED
        return AcquitOutcome.PARTIALLY_ACCEPTED


def _error(element: etree._Element) -> AckError:
    label = value(element, "LibelleAnoAck")
    match = _RULE_CODE_RE.match(label or "")
    return AckError(
        code=value(element, "NumAnoAck"), label=label,
        rule_code=match.group(1) if match else None,
    )


def _errors(element: etree._Element) -> tuple[AckError, ...]:
    return tuple(_error(e) for e in children(element, "Erreur"))


def _element(element: etree._Element) -> ElementResult:
    return ElementResult(
        domain=value(element, "DomaineAck"),
        accepted=value(element, "EtatAck") == "1",
        bordereau=value(element, "NumBord"),
        exercice=value(element, "ExerciceBord"),
        id_unique=value(element, "IdUnique"),
        errors=_errors(element),
        pieces=tuple(
            PieceDetail(
                piece=value(piece, "NumPiece"),
                errors=_errors(piece),
                lines=tuple(
                    LineDetail(line=value(line, "NumLigne"), errors=_errors(line))
                    for line in children(piece, "DetailLigne")
                ),
            )
            for piece in children(element, "DetailPiece")
        ),
    )


def acquit_from_root(root: etree._Element) -> PesAcquit:
    """Read a parsed PES_ACQUIT (``PartnerReplyError`` when the root is something else)."""
    qname = etree.QName(root)
    if qname.localname != ACQUIT_ROOT or qname.namespace not in (ACQUIT_NS, None):
        raise PartnerReplyError(
            f"not a PES_ACQUIT: root {qname.localname!r} in namespace {qname.namespace!r}",
            partner="tdt",
        )
    enveloppe = child(root, "Enveloppe")
    entete = child(root, "EnTetePES")
    return PesAcquit(
        nom_fic=value(enveloppe, "Parametres", "NomFic"),
        typ_fic=value(enveloppe, "Parametres", "TypFic"),
        id_post=value(entete, "IdPost"),
        id_coll=value(entete, "IdColl"),
        cod_col=value(entete, "CodCol"),
        cod_bud=value(entete, "CodBud"),
        libelle_col_bud=value(entete, "LibelleColBud"),
        elements=tuple(_element(e) for e in children(child(root, "ACQUIT"), "ElementACQUIT")),
    )


def read_acquit(raw: bytes, limits: PesLimits | None = None) -> PesAcquit:
    """Parse and read a PES_ACQUIT received from the TdT (see the module docstring)."""
    try:
        root = parse_pes(raw, limits)
    except ValidationError as exc:
        if any(r.code == XML_TOO_LARGE for r in exc.reasons):
            raise PartnerReplyTooLargeError(f"PES_ACQUIT refused: {exc}", partner="tdt") from exc
        raise PartnerReplyError(f"PES_ACQUIT is not readable: {exc}", partner="tdt") from exc
    return acquit_from_root(root)


async def read_acquit_async(raw: bytes, limits: PesLimits | None = None) -> PesAcquit:
    """:func:`read_acquit` in a worker thread."""
    return await asyncio.to_thread(read_acquit, raw, limits)
