"""The files the sandbox comptable (Hélios) writes: PES_ACQUIT and PES_Retour.

A PES_ACQUIT is shaped like the real ones (libriciel/s2low
``test/PHPUnit/helios/fixtures/pes_acquit.xml``, SICTIAM/stela ``…IDL_KO.xml``): ISO-8859-1,
root ``n:PES_ACQUIT`` in ``…/Rev0/retour/v2``, children unqualified, every value in a ``V``
attribute; ``Enveloppe`` echoes the PES_Aller's ``Parametres`` and ``Emetteur`` and adds
``Recepteur/Sigle`` HELIOS; ``EnTetePES`` echoes the header; ``ACQUIT`` holds
``EnTeteAcquit/IdVer`` 2 then one ``ElementACQUIT`` per bordereau (``DomaineAck`` 5 dépense,
6 recette, with ``NumBord``/``ExerciceBord``) and per pièce justificative of ``PES_PJ``
(``DomaineAck`` 4, ``IdUnique``), in the order of ``PES_V2_Acquit_Autonome_V2.xsd``.
A file with neither gets one technical element (``DomaineAck`` 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from lxml import etree

from relais.pes.aller import PesAller
from relais.pes.codes import ACQUIT_NS

_N = "n"
_ALNUM50 = re.compile(r"[0-9A-Za-z]{1,50}")


@dataclass(frozen=True)
class AckError:
    """One ``Erreur``: a ``NumAnoAck`` of ``CommunAck.xsd`` and a label (≤ 500 characters)."""

    code: str
    label: str


@dataclass(frozen=True)
class LineError:
    """An error on one line of one pièce (``DetailPiece/DetailLigne``)."""

    piece: str
    line: str
    error: AckError


@dataclass
class AckElement:
    """One ``ElementACQUIT`` to write."""

    domain: str
    bordereau: str | None = None
    exercice: str | None = None
    id_unique: str | None = None
    errors: list[AckError] = field(default_factory=list)
    line_errors: list[LineError] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.errors and not self.line_errors


def elements_for(pes: PesAller) -> list[AckElement]:
    """One accepted element per bordereau and per PJ (or one technical element)."""
    elements = [
        AckElement("5" if b.domain == "depense" else "6", bordereau=b.id_bord,
                   exercice=b.exercice)
        for b in pes.bordereaux
    ]
    elements.extend(AckElement("4", id_unique=pj_id) for pj_id in pes.pj_ids)
    return elements or [AckElement("1")]


def _v(parent: etree._Element, name: str, value: str | None) -> None:
    if value is not None and value != "":
        etree.SubElement(parent, name, V=value)


def _error(parent: etree._Element, error: AckError) -> None:
    node = etree.SubElement(parent, "Erreur")
    _v(node, "NumAnoAck", error.code)
    _v(node, "LibelleAnoAck", error.label[:500])


def _digits(value: str | None, width: int) -> str | None:
    """A schema ``Base_Num…_Light`` value: digits only, or nothing."""
    if value is None or not value.isdigit() or len(value) > width:
        return None
    return value


def build_acquit(pes: PesAller, elements: list[AckElement], day: date) -> bytes:
    """The PES_ACQUIT answering ``pes`` with ``elements`` (ISO-8859-1 bytes)."""
    root = etree.Element(f"{{{ACQUIT_NS}}}PES_ACQUIT", nsmap={_N: ACQUIT_NS})
    enveloppe = etree.SubElement(root, "Enveloppe")
    parametres = etree.SubElement(enveloppe, "Parametres")
    _v(parametres, "Version", pes.version or "2")
    _v(parametres, "TypFic", pes.typ_fic or "PESALR1")
    _v(parametres, "NomFic", pes.nom_fic or "inconnu")
    if pes.emetteur_sigle:
        _v(etree.SubElement(enveloppe, "Emetteur"), "Sigle", pes.emetteur_sigle[:32])
    _v(etree.SubElement(enveloppe, "Recepteur"), "Sigle", "HELIOS")
    entete = etree.SubElement(root, "EnTetePES")
    _v(entete, "DteStr", day.isoformat())
    _v(entete, "IdPost", (pes.id_post or "1")[:7])
    _v(entete, "IdColl", _digits(pes.id_coll, 14) or "0")
    _v(entete, "CodCol", (pes.cod_col or "1")[:3])
    _v(entete, "CodBud", pes.cod_bud[:2] if pes.cod_bud else None)
    _v(entete, "LibelleColBud", pes.libelle_col_bud[:38] if pes.libelle_col_bud else None)
    acquit = etree.SubElement(root, "ACQUIT")
    _v(etree.SubElement(acquit, "EnTeteAcquit"), "IdVer", "2")
    for element in elements:
        node = etree.SubElement(acquit, "ElementACQUIT")
        _v(node, "DomaineAck", element.domain)
        _v(node, "EtatAck", "1" if element.accepted else "0")
        if element.id_unique is not None:
            _v(node, "IdUnique", element.id_unique if _ALNUM50.fullmatch(element.id_unique)
               else None)
        else:
            _v(node, "NumBord", _digits(element.bordereau, 7))
            _v(node, "ExerciceBord", _digits(element.exercice, 4))
        for error in element.errors:
            _error(node, error)
        pieces: dict[str, dict[str, list[AckError]]] = {}
        for line_error in element.line_errors:
            pieces.setdefault(line_error.piece, {}).setdefault(line_error.line, []).append(
                line_error.error
            )
        for piece, lines in pieces.items():
            detail = etree.SubElement(node, "DetailPiece")
            _v(detail, "NumPiece", piece)
            for line, errors in lines.items():
                detail_line = etree.SubElement(detail, "DetailLigne")
                _v(detail_line, "NumLigne", line)
                for error in errors:
                    _error(detail_line, error)
    raw = etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1", pretty_print=True)
    assert isinstance(raw, bytes)
    return raw


RETOUR_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour"


def build_pes_retour(pes: PesAller, day: date) -> bytes:
    """A small PES_Retour about ``pes`` (the comptable's returns: here only the envelope and
    the header; the sandbox does not model the content of the returns)."""
    root = etree.Element(f"{{{RETOUR_NS}}}PES_Retour", nsmap={_N: RETOUR_NS})
    enveloppe = etree.SubElement(root, "Enveloppe")
    parametres = etree.SubElement(enveloppe, "Parametres")
    _v(parametres, "Version", "2")
    _v(parametres, "TypFic", "PESRETOUR")
    _v(parametres, "NomFic", f"RETOUR-{pes.nom_fic or 'inconnu'}"[:100])
    _v(etree.SubElement(enveloppe, "Emetteur"), "Sigle", "HELIOS")
    entete = etree.SubElement(root, "EnTetePES")
    _v(entete, "DteStr", day.isoformat())
    _v(entete, "IdPost", (pes.id_post or "1")[:7])
    _v(entete, "IdColl", _digits(pes.id_coll, 14) or "0")
    _v(entete, "CodCol", (pes.cod_col or "1")[:3])
    _v(entete, "CodBud", pes.cod_bud[:2] if pes.cod_bud else None)
    raw = etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1", pretty_print=True)
    assert isinstance(raw, bytes)
    return raw
