"""A prefecture's classification (7-2 ``RetourClassification``): natures, typologies, matières.

Each prefecture sends its own classification: the natures of acte with the
document typologies allowed for each (``TypePJNatureActe``), and a tree of
matières on up to five levels. Actes must use codes from the classification
version they declare (``ClassificationDateVersion``); a stale version earns an
``AnomalieActe`` (nature 002).

``parse_retour_classification`` is lenient: the real sample
(``exemple_codes_matieres.xml``) lacks the ``TypePJNatureActe`` the schema
requires, and it is still read. ``build_retour_classification`` is strict: it
emits a schema-valid 7-2, giving a nature without typologies the default
typology ``99_<abbreviation>`` (Pastell lists ``99_`` codes first and uses the
first as default; the label is Relais' own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from lxml import etree

from relais.actes.codes import NATURE_BY_ABBREVIATION, NATURE_BY_CODE
from relais.actes.xml_write import free_text, new_root, serialize, sub
from relais.actes.xsd import hardened_parser
from relais.errors import PartnerReplyError, Reason

MAX_LEVELS = 5
DEFAULT_TYPOLOGY_LABEL = "Autre document"


@dataclass(frozen=True)
class Typology:
    """A document typology (``TypePJNatureActe``): code such as ``99_DE`` and label."""

    code: str
    label: str


@dataclass(frozen=True)
class NatureEntry:
    """A nature of acte in a classification, with the typologies allowed for its files."""

    code: int
    abbreviation: str
    label: str
    typologies: tuple[Typology, ...] = ()

    @property
    def typology_codes(self) -> frozenset[str]:
        return frozenset(t.code for t in self.typologies)


@dataclass(frozen=True)
class Matiere:
    """A node of the matières tree: code, label and sub-matières (next level)."""

    code: int
    label: str
    children: tuple[Matiere, ...] = ()

    def child(self, code: int) -> Matiere | None:
        return next((c for c in self.children if c.code == code), None)


@dataclass(frozen=True)
class Classification:
    """One classification version of one prefecture."""

    date_version: date
    natures: tuple[NatureEntry, ...]
    matieres: tuple[Matiere, ...]

    def nature(self, code: int) -> NatureEntry | None:
        """The nature with ``code`` (``None`` when this classification lacks it)."""
        return next((n for n in self.natures if n.code == code), None)

    def matiere(self, path: Sequence[int]) -> Matiere | None:
        """The node at ``path`` (level-1 code, level-2 code…), ``None`` when absent."""
        level: tuple[Matiere, ...] = self.matieres
        found: Matiere | None = None
        for code in path:
            found = next((m for m in level if m.code == code), None)
            if found is None:
                return None
            level = found.children
        return found

    def matiere_paths(self) -> list[tuple[int, ...]]:
        """Every node's path, depth first in document order."""
        paths: list[tuple[int, ...]] = []

        def walk(nodes: tuple[Matiere, ...], prefix: tuple[int, ...]) -> None:
            for node in nodes:
                paths.append((*prefix, node.code))
                walk(node.children, (*prefix, node.code))

        walk(self.matieres, ())
        return paths

    def check(
        self,
        nature_code: int,
        matieres: Sequence[int],
        typologies: Sequence[str] = (),
    ) -> list[Reason]:
        """Why (nature, matières, typologies) does not fit this classification.

        The matières must be a path of 2 to 5 levels that exists in the tree
        (it need not reach a leaf). Each typology must be one listed for the
        nature; when the classification lists none for it, typologies are not
        checked.
        """
        reasons: list[Reason] = []
        nature = self.nature(nature_code)
        if nature is None:
            reasons.append(
                Reason(
                    "nature_code",
                    "unknown",
                    f"nature {nature_code} is not in the classification of "
                    f"{self.date_version.isoformat()}",
                )
            )
        reasons.extend(self._matieres_reasons(matieres))
        if nature is not None and nature.typologies:
            allowed = nature.typology_codes
            for i, code in enumerate(typologies):
                if code not in allowed:
                    reasons.append(
                        Reason(
                            f"typologies[{i}]",
                            "unknown",
                            f"typology {code!r} is not allowed for nature "
                            f"{nature.abbreviation} (allowed: {', '.join(sorted(allowed))})",
                        )
                    )
        return reasons

    def _matieres_reasons(self, matieres: Sequence[int]) -> list[Reason]:
        if not 2 <= len(matieres) <= MAX_LEVELS:
            return [Reason("matieres", "levels", f"2 to 5 matière levels, got {len(matieres)}")]
        level: tuple[Matiere, ...] = self.matieres
        for depth, code in enumerate(matieres, start=1):
            node = next((m for m in level if m.code == code), None)
            if node is None:
                path = ".".join(str(c) for c in matieres[:depth])
                return [
                    Reason(
                        "matieres",
                        "unknown",
                        f"matière {path} (level {depth}) is not in the classification of "
                        f"{self.date_version.isoformat()}",
                    )
                ]
            level = node.children
        return []


# --- Lenient parsing --------------------------------------------------------------------


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _attr(element: etree._Element, name: str) -> str | None:
    for key, value in element.attrib.items():
        if etree.QName(key).localname == name:
            return str(value).strip()
    return None


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if _local(c) == name]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _parse_matiere(element: etree._Element, level: int) -> Matiere | None:
    code = _int(_attr(element, "CodeMatiere"))
    if code is None:
        return None
    children: list[Matiere] = []
    if level < MAX_LEVELS:
        for child in _children(element, f"Matiere{level + 1}"):
            parsed = _parse_matiere(child, level + 1)
            if parsed is not None:
                children.append(parsed)
    return Matiere(code, _attr(element, "Libelle") or "", tuple(children))


def _parse_nature(element: etree._Element) -> NatureEntry | None:
    abbreviation = _attr(element, "TypeAbrege") or ""
    code = _int(_attr(element, "CodeNatureActe"))
    if code is None and abbreviation in NATURE_BY_ABBREVIATION:
        code = NATURE_BY_ABBREVIATION[abbreviation].code
    if code is None:
        return None
    if not abbreviation and code in NATURE_BY_CODE:
        abbreviation = NATURE_BY_CODE[code].abbreviation
    typologies = tuple(
        Typology(_attr(t, "CodeTypePJ") or "", _attr(t, "Libelle") or "")
        for t in _children(element, "TypePJNatureActe")
        if _attr(t, "CodeTypePJ")
    )
    return NatureEntry(code, abbreviation, _attr(element, "Libelle") or "", typologies)


def classification_from_element(root: etree._Element) -> Classification:
    """Read a parsed ``RetourClassification`` element leniently."""
    if _local(root) != "RetourClassification":
        raise PartnerReplyError(
            f"expected a RetourClassification, got {_local(root) or 'no element'}",
            partner="tdt",
        )
    date_elements = _children(root, "DateClassification")
    try:
        date_version = date.fromisoformat((date_elements[0].text or "").strip())
    except (IndexError, ValueError) as exc:
        raise PartnerReplyError(
            "RetourClassification without a readable DateClassification", partner="tdt"
        ) from exc
    natures: list[NatureEntry] = []
    for container in _children(root, "NaturesActes"):
        for element in _children(container, "NatureActe"):
            nature = _parse_nature(element)
            if nature is not None:
                natures.append(nature)
    matieres: list[Matiere] = []
    for container in _children(root, "Matieres"):
        for element in _children(container, "Matiere1"):
            matiere = _parse_matiere(element, 1)
            if matiere is not None:
                matieres.append(matiere)
    return Classification(date_version, tuple(natures), tuple(matieres))


def parse_retour_classification(raw: bytes) -> Classification:
    """Read a 7-2 ``RetourClassification`` without schema validation.

    Raises ``PartnerReplyError(partner="tdt")`` when ``raw`` is not XML, not a
    ``RetourClassification`` or has no readable date.
    """
    try:
        root = etree.fromstring(raw.lstrip(), hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise PartnerReplyError(f"classification is not XML: {exc}", partner="tdt") from exc
    return classification_from_element(root)


# --- Strict building ---------------------------------------------------------------------


def default_typology(nature: NatureEntry) -> Typology:
    """The typology given to a nature that lists none: ``99_<abbreviation>``."""
    return Typology(f"99_{nature.abbreviation}", DEFAULT_TYPOLOGY_LABEL)


def _build_matiere(parent: etree._Element, node: Matiere, level: int) -> None:
    element = sub(
        parent,
        f"Matiere{level}",
        attrs={"CodeMatiere": node.code, "Libelle": free_text(node.label, "matieres.label")},
    )
    if level < MAX_LEVELS:
        for child in node.children:
            _build_matiere(element, child, level + 1)


def build_retour_classification(classification: Classification) -> bytes:
    """A schema-valid 7-2 ``RetourClassification`` (raises ``ValidationError`` otherwise).

    Natures without typologies get ``default_typology``; the schema also needs
    at least one nature, at least one matière, and a level-2 matière under each
    level-1 one.
    """
    root = new_root("RetourClassification")
    sub(root, "DateClassification", classification.date_version)
    natures = sub(root, "NaturesActes")
    for nature in classification.natures:
        element = sub(
            natures,
            "NatureActe",
            attrs={
                "CodeNatureActe": nature.code,
                "Libelle": free_text(nature.label, "natures.label"),
                "TypeAbrege": nature.abbreviation,
            },
        )
        for typology in nature.typologies or (default_typology(nature),):
            sub(
                element,
                "TypePJNatureActe",
                attrs={
                    "CodeTypePJ": typology.code,
                    "Libelle": free_text(typology.label, "typologies.label"),
                },
            )
    matieres = sub(root, "Matieres")
    for node in classification.matieres:
        _build_matiere(matieres, node, 1)
    return serialize(root)
