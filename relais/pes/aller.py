"""What a PES_Aller says: envelope, header, counts, signatures.

Read leniently (no schema validation, as S²LOW does): a missing field is ``None`` and
is judged later by :mod:`relais.pes.checks`. The root must be ``PES_Aller`` in the
PES_Aller namespace (``ValidationError`` on the ``xml`` field otherwise).

Counts: ``bordereaux`` lists every ``Bordereau`` of ``PES_DepenseAller`` and
``PES_RecetteAller`` with its ``Exer``, ``IdBord``, declared ``NbrPce`` and the number
of ``Piece`` elements really there; ``pj_count`` counts ``PES_PJ/PJ``; ``facture_count``
counts ``PES_Facture/Facture``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from lxml import etree

from relais.errors import Reason, ValidationError
from relais.pes.codes import ALLER_NS, ALLER_ROOT
from relais.pes.signature import SignatureInfo, inspect_signatures
from relais.pes.xml_safe import PesLimits, child, children, parse_pes, value

NOT_PES_ALLER = "pes_not_aller"


@dataclass(frozen=True)
class BordereauSummary:
    """One bordereau (dépense or recette)."""

    domain: str
    """``depense`` or ``recette``."""
    id_attr: str | None
    exercice: str | None
    id_bord: str | None
    type_bord: str | None
    declared_pieces: str | None
    """``NbrPce`` as written."""
    pieces: int


@dataclass(frozen=True)
class PesAller:
    """A PES_Aller as read (see the module docstring)."""

    root_id: str | None
    version: str | None
    typ_fic: str | None
    nom_fic: str | None
    emetteur_sigle: str | None
    dte_str: str | None
    id_post: str | None
    id_coll: str | None
    cod_col: str | None
    cod_bud: str | None
    libelle_col_bud: str | None
    bordereaux: tuple[BordereauSummary, ...]
    pj_count: int
    pj_ids: tuple[str, ...]
    """``IdUnique`` of every ``PES_PJ/PJ``, in document order."""
    facture_count: int
    signatures: tuple[SignatureInfo, ...]

    @property
    def piece_count(self) -> int:
        """``Piece`` elements in every bordereau."""
        return sum(b.pieces for b in self.bordereaux)

    @property
    def signed(self) -> bool:
        """At least one XML-DSig signature in the file."""
        return bool(self.signatures)

    @property
    def routing(self) -> str:
        """S²LOW's routing string ``PES#{CodCol}#{IdPost}#{CodBud}`` (lib/HeliosNamesGenerator)."""
        return f"PES#{self.cod_col or ''}#{self.id_post or ''}#{self.cod_bud or ''}"


def _bordereaux(root: etree._Element) -> list[BordereauSummary]:
    found: list[BordereauSummary] = []
    for domain, container in (("depense", "PES_DepenseAller"), ("recette", "PES_RecetteAller")):
        for bordereau in children(child(root, container), "Bordereau"):
            bloc = child(bordereau, "BlocBordereau")
            found.append(BordereauSummary(
                domain=domain,
                id_attr=bordereau.get("Id"),
                exercice=value(bloc, "Exer"),
                id_bord=value(bloc, "IdBord"),
                type_bord=value(bloc, "TypBord"),
                declared_pieces=value(bloc, "NbrPce"),
                pieces=len(children(bordereau, "Piece")),
            ))
    return found


def aller_from_root(root: etree._Element) -> PesAller:
    """Read a parsed PES_Aller (``ValidationError`` when the root is something else)."""
    qname = etree.QName(root)
    if qname.localname != ALLER_ROOT or qname.namespace not in (ALLER_NS, None):
        message = (
            f"not a PES_Aller: root {qname.localname!r} in namespace {qname.namespace!r} "
            f"(expected {ALLER_ROOT!r} in {ALLER_NS!r})"
        )
        raise ValidationError(message, reasons=[Reason("xml", NOT_PES_ALLER, message)])
    enveloppe = child(root, "Enveloppe")
    entete = child(root, "EnTetePES")
    return PesAller(
        root_id=root.get("Id"),
        version=value(enveloppe, "Parametres", "Version"),
        typ_fic=value(enveloppe, "Parametres", "TypFic"),
        nom_fic=value(enveloppe, "Parametres", "NomFic"),
        emetteur_sigle=value(enveloppe, "Emetteur", "Sigle"),
        dte_str=value(entete, "DteStr"),
        id_post=value(entete, "IdPost"),
        id_coll=value(entete, "IdColl"),
        cod_col=value(entete, "CodCol"),
        cod_bud=value(entete, "CodBud"),
        libelle_col_bud=value(entete, "LibelleColBud"),
        bordereaux=tuple(_bordereaux(root)),
        pj_count=len(children(child(root, "PES_PJ"), "PJ")),
        pj_ids=tuple(
            found for pj in children(child(root, "PES_PJ"), "PJ")
            if (found := value(pj, "IdUnique"))
        ),
        facture_count=len(children(child(root, "PES_Facture"), "Facture")),
        signatures=tuple(inspect_signatures(root)),
    )


def read_aller(raw: bytes, limits: PesLimits | None = None) -> PesAller:
    """Parse and read a PES_Aller (raises ``ValidationError`` with typed reasons)."""
    return aller_from_root(parse_pes(raw, limits))


async def read_aller_async(raw: bytes, limits: PesLimits | None = None) -> PesAller:
    """:func:`read_aller` in a worker thread: a big file never blocks the event loop."""
    return await asyncio.to_thread(read_aller, raw, limits)
