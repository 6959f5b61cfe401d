"""Lenient reading of every @CTES business message and envelope.

What partners send is read, not judged: no schema validation (real prefectures
send e.g. an ``AnomalieEnveloppe`` with ``Nature`` 999), attributes are found
with or without their prefix, and the raw bytes are kept untouched. The parser
is hardened (no network, no DTD, no entity expansion). Text declared
ISO-8859-1 that is really windows-1252 (``œ`` as byte 0x9C) is repaired, and a
file without declaration that is not UTF-8 is read as windows-1252.

Reading is bounded (:class:`ParseLimits`). Before parsing, a scan at C speed
refuses a document of more than ``max_bytes``, with more than ``max_elements``
tags or with a tag (or comment) longer than ``max_markup_bytes`` (millions of
attributes in one tag). The document is then parsed incrementally
(``iterparse``) and never kept whole: past ``max_kept_elements`` elements or
``max_kept_bytes`` of names, attributes and texts, elements are dropped as they
end, and texts are cut at ``max_text_chars`` (the message is then
``truncated``); libxml2's own limits (10 MB a text node, 256 levels) hold. An
@CTES message is metadata (documents travel beside it): real ones are far below
every limit. :func:`parse_message_file` streams a file from disk, so its size
does not become memory.

``parse_message`` raises ``PartnerReplyError(partner="tdt")`` when the bytes are
not XML or the root is not an ACTES message, ``PartnerReplyTooLargeError`` when a
limit is crossed.

Keys of ``ActesMessage.fields`` (absent when the message lacks them):

- acte content (1-1, and the echo of 1-2 / 1-3 under ``acte_recu.``):
  ``decision_date``, ``numero_interne``, ``nature_code``, ``nature_abbreviation``,
  ``matieres`` (list by level; a skipped level is ``""``), ``objet``,
  ``precedent_id_acte``, ``classification_date``, ``document``, ``annexes`` (list),
  ``annex_count``, ``document_papier``;
- 1-2: ``reception_date``, ``current_classification_date``;
- 1-3: ``date``, ``nature`` (3-digit anomaly code), ``detail``, ``current_classification_date``;
- prefecture letters and replies (2-x, 3-x, 4-x): ``courrier_date``, ``document``,
  ``documents`` (3-4), ``description`` (3-1), ``motif`` (4-1);
- acknowledgements 3-5 / 4-5 and 6-2: ``reception_date`` (and ``courrier_date``);
- 5-1: ``depot_date``, ``nature_illegalite``, ``pieces_jointes`` (list);
- 7-1 / 7-2 / 7-3: ``classification_date``; 7-2 also ``natures`` (codes),
  ``nature_abbreviations`` and ``matieres`` (dotted paths of every node);
- envelopes: ``siren``, ``department``, ``arrondissement``,
  ``nature_collectivite``, ``emitter`` (IDCL, IDPref, IDSousPref, IDSGAR),
  ``referent_nom``/``referent_telephone``/``referent_email``,
  ``return_emails`` (list), ``file_names`` (list);
- ``AnomalieEnveloppe``: ``date``, ``nature``, ``detail`` and the echoed
  envelope under ``enveloppe_recue.``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lxml import etree

from relais.actes.classification import classification_from_element
from relais.actes.codes import ACTES_NS, ANOMALIE_ENVELOPPE, NATURE_BY_CODE, type_code_for_root
from relais.errors import PartnerReplyError, PartnerReplyTooLargeError, RelaisError

FieldValue = str | list[str]
Fields = dict[str, FieldValue]
_DECLARED_ENCODING_RE = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=", re.IGNORECASE)
_C1_RE = re.compile("[\x80-\x9f]")


@dataclass(frozen=True)
class ActesMessage:
    """One ACTES message as read: type code, root name, IDActe, key fields, raw bytes.

    ``raw`` is empty when the message was streamed from a file
    (:func:`parse_message_file`); ``truncated`` says that a limit dropped
    elements or cut texts, so ``fields`` may be incomplete.
    """

    type_code: str
    root: str
    id_acte: str | None
    fields: Fields = field(hash=False)
    raw: bytes
    truncated: bool = False


@dataclass(frozen=True)
class ParseLimits:
    """Bounds of one parse (see the module docstring)."""

    max_bytes: int = 512 * 1024 * 1024
    max_elements: int = 1_000_000
    max_markup_bytes: int = 64 * 1024
    max_kept_elements: int = 200_000
    max_kept_bytes: int = 32 * 1024 * 1024
    max_text_chars: int = 64 * 1024


# --- Element helpers ----------------------------------------------------------------------


def _local(element: etree._Element) -> str:
    """The tag's local name (lxml tags are ``{namespace}local`` or ``local``); comments and
    processing instructions have none. Read from the tag text: building an ``etree.QName``
    per child cost more than half of reading an ARActe."""
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _clean(value: str) -> str:
    """Strip, and repair C1 controls that are windows-1252 bytes read as Latin-1."""
    value = value.strip()
    if _C1_RE.search(value):
        value = _C1_RE.sub(lambda m: _cp1252(m.group()), value)
    return value


def _cp1252(char: str) -> str:
    try:
        return bytes([ord(char)]).decode("cp1252")
    except UnicodeDecodeError:
        return char


def _attr(element: etree._Element | None, name: str) -> str | None:
    """Attribute ``name``, qualified by any namespace or not."""
    if element is None:
        return None
    value: object = element.get(f"{{{ACTES_NS}}}{name}")
    if value is None:
        value = element.get(name)
    if value is None:
        for key, candidate in element.attrib.items():
            if etree.QName(key).localname == name:
                value = candidate
                break
    return None if value is None else _clean(str(value))


def _child(element: etree._Element | None, name: str) -> etree._Element | None:
    if element is None:
        return None
    return next((c for c in element if _local(c) == name), None)


def _children(element: etree._Element | None, name: str) -> list[etree._Element]:
    if element is None:
        return []
    return [c for c in element if _local(c) == name]


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return _clean("".join(str(t) for t in element.itertext()))


def _put(fields: Fields, key: str, value: str | None) -> None:
    if value is not None:
        fields[key] = value


def _file_names(elements: list[etree._Element]) -> list[str]:
    names = (_text(_child(e, "NomFichier")) for e in elements)
    return [name for name in names if name]


# --- Per message ---------------------------------------------------------------------------


def _acte_fields(element: etree._Element | None, prefix: str = "") -> Fields:
    if element is None:
        return {}
    fields: Fields = {}
    _put(fields, "decision_date", _attr(element, "Date"))
    _put(fields, "numero_interne", _attr(element, "NumeroInterne"))
    code = _attr(element, "CodeNatureActe")
    _put(fields, "nature_code", code)
    if code is not None and code.isdigit() and int(code) in NATURE_BY_CODE:
        fields["nature_abbreviation"] = NATURE_BY_CODE[int(code)].abbreviation
    matieres = [
        _attr(_child(element, f"CodeMatiere{level}"), "CodeMatiere") or "" for level in range(1, 6)
    ]
    while matieres and not matieres[-1]:
        matieres.pop()
    fields["matieres"] = matieres
    _put(fields, "objet", _text(_child(element, "Objet")))
    _put(fields, "precedent_id_acte", _attr(_child(element, "PrecedentIdentifiantActe"), "IDActe"))
    _put(fields, "classification_date", _text(_child(element, "ClassificationDateVersion")))
    document = _file_names(_children(element, "Document"))
    if document:
        fields["document"] = document[0]
    annexes = _child(element, "Annexes")
    _put(fields, "annex_count", _attr(annexes, "Nombre"))
    fields["annexes"] = _file_names(_children(annexes, "Annexe"))
    _put(fields, "document_papier", _text(_child(element, "DocumentPapier")))
    return {f"{prefix}{key}": value for key, value in fields.items()}


def _envelope_fields(element: etree._Element | None, prefix: str = "") -> Fields:
    if element is None:
        return {}
    fields: Fields = {}
    emetteur = _child(element, "Emetteur")
    for emitter in ("IDCL", "IDPref", "IDSousPref", "IDSGAR"):
        ident = _child(emetteur, emitter)
        if ident is not None:
            fields["emitter"] = emitter
            _put(fields, "siren", _attr(ident, "SIREN"))
            _put(fields, "department", _attr(ident, "Departement"))
            _put(fields, "arrondissement", _attr(ident, "Arrondissement"))
            _put(fields, "nature_collectivite", _attr(ident, "Nature"))
            break
    referent = _child(emetteur, "Referent")
    for part in ("Nom", "Telephone", "Email"):
        _put(fields, f"referent_{part.lower()}", _text(_child(referent, part)))
    adresses = _child(element, "AdressesRetour")
    if adresses is not None:
        fields["return_emails"] = [t for e in _children(adresses, "Email") if (t := _text(e))]
    fields["file_names"] = _file_names(
        _children(_child(element, "FormulairesEnvoyes"), "Formulaire")
    )
    destinataire = _child(element, "Destinataire")
    if destinataire is not None:
        _put(fields, "siren", _attr(destinataire, "SIREN"))
    return {f"{prefix}{key}": value for key, value in fields.items()}


def _courrier_fields(root: etree._Element) -> Fields:
    fields: Fields = {}
    _put(fields, "courrier_date", _attr(root, "DateCourrierPref"))
    document = _file_names(_children(root, "Document"))
    if document:
        fields["document"] = document[0]
    _put(fields, "description", _text(_child(root, "DescriptionPieces")))
    _put(fields, "motif", _text(_child(root, "Motif")))
    documents = _child(root, "Documents")
    if documents is not None:
        fields["documents"] = _file_names(_children(documents, "Document"))
    return fields


def _ar_acte(root: etree._Element) -> Fields:
    fields: Fields = {}
    _put(fields, "reception_date", _attr(root, "DateReception"))
    _put(
        fields,
        "current_classification_date",
        _text(_child(root, "ClassificationDateVersionEnCours")),
    )
    fields.update(_acte_fields(_child(root, "ActeRecu"), "acte_recu."))
    return fields


def _anomalie(root: etree._Element) -> Fields:
    fields: Fields = {}
    _put(fields, "date", _text(_child(root, "Date")))
    _put(fields, "nature", _text(_child(root, "Nature")))
    _put(fields, "detail", _text(_child(root, "Detail")))
    _put(
        fields,
        "current_classification_date",
        _text(_child(root, "ClassificationDateVersionEnCours")),
    )
    fields.update(_acte_fields(_child(root, "ActeRecu"), "acte_recu."))
    fields.update(_envelope_fields(_child(root, "EnveloppeRecue"), "enveloppe_recue."))
    return fields


def _ar_reponse(root: etree._Element) -> Fields:
    fields: Fields = {}
    _put(fields, "reception_date", _attr(root, "DateReception"))
    _put(fields, "courrier_date", _attr(_child(root, "InfosCourrierPref"), "DateCourrierPref"))
    return fields


def _defere(root: etree._Element) -> Fields:
    fields: Fields = {}
    _put(fields, "depot_date", _text(_child(root, "DateDepot")))
    _put(fields, "nature_illegalite", _text(_child(root, "NatureIllegalite")))
    fields["pieces_jointes"] = _file_names(_children(_child(root, "PiecesJointes"), "PieceJointe"))
    return fields


def _classification_date(root: etree._Element) -> Fields:
    fields: Fields = {}
    _put(fields, "classification_date", _text(_child(root, "DateClassification")))
    return fields


def _retour_classification(root: etree._Element) -> Fields:
    fields = _classification_date(root)
    try:
        classification = classification_from_element(root)
    except RelaisError:
        return fields
    fields["natures"] = [str(n.code) for n in classification.natures]
    fields["nature_abbreviations"] = [n.abbreviation for n in classification.natures]
    fields["matieres"] = [".".join(map(str, p)) for p in classification.matiere_paths()]
    return fields


def _reception_only(root: etree._Element) -> Fields:
    fields: Fields = {}
    _put(fields, "reception_date", _attr(root, "DateReception"))
    return fields


def _nothing(root: etree._Element) -> Fields:
    return {}


_EXTRACTORS: dict[str, Callable[[etree._Element], Fields]] = {
    "1-1": _acte_fields,
    "1-2": _ar_acte,
    "1-3": _anomalie,
    "2-1": _courrier_fields,
    "2-2": _courrier_fields,
    "3-1": _courrier_fields,
    "3-2": _courrier_fields,
    "3-3": _courrier_fields,
    "3-4": _courrier_fields,
    "3-5": _ar_reponse,
    "4-1": _courrier_fields,
    "4-2": _courrier_fields,
    "4-3": _courrier_fields,
    "4-4": _courrier_fields,
    "4-5": _ar_reponse,
    "5-1": _defere,
    "6-1": _nothing,
    "6-2": _reception_only,
    "7-1": _classification_date,
    "7-2": _retour_classification,
    "7-3": _classification_date,
    "enveloppe-cl": _envelope_fields,
    "enveloppe-misill": _envelope_fields,
    ANOMALIE_ENVELOPPE: _anomalie,
}


# --- Entry point ------------------------------------------------------------------------------


def _too_large(message: str) -> PartnerReplyTooLargeError:
    return PartnerReplyTooLargeError(f"ACTES message refused: {message}", partner="tdt")


_SCAN_CHUNK = 1024 * 1024


def _scan(chunks: Iterable[bytes], limits: ParseLimits) -> None:
    """Refuse, before any parsing, too many tags or a tag longer than allowed."""
    long_markup = re.compile(rb"<[^>]{%d}" % limits.max_markup_bytes)
    tags = 0
    carry = b""
    for chunk in chunks:
        tags += chunk.count(b"<")
        if tags > limits.max_elements:
            raise _too_large(f"more than {limits.max_elements} tags")
        window = carry + chunk
        if long_markup.search(window):
            raise _too_large(
                f"a tag, comment or declaration longer than {limits.max_markup_bytes} bytes"
            )
        last_open, last_close = window.rfind(b"<"), window.rfind(b">")
        carry = window[last_open:] if last_open > last_close else b""


def _file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(_SCAN_CHUNK):
        yield chunk


def _bounded_tree(
    source: IO[bytes], limits: ParseLimits, encoding: str | None = None
) -> tuple[etree._Element, bool]:
    """Parse incrementally, keeping at most ``max_kept_elements`` elements and cutting
    long texts; the root and whether anything was dropped or cut."""
    truncated = False
    seen = kept = kept_bytes = 0
    root: etree._Element | None = None
    events = etree.iterparse(
        source, events=("end",), resolve_entities=False, no_network=True, load_dtd=False,
        huge_tree=False, remove_comments=True, remove_pis=True, encoding=encoding,
    )
    for _, element in events:
        seen += 1
        if seen > limits.max_elements:
            raise _too_large(f"more than {limits.max_elements} elements")
        if element.text is not None and len(element.text) > limits.max_text_chars:
            element.text = element.text[: limits.max_text_chars]
            truncated = True
        if element.tail is not None and len(element.tail) > limits.max_text_chars:
            element.tail = None
            truncated = True
        parent = element.getparent()
        if parent is None:
            root = element
            continue
        kept += 1
        kept_bytes += 128 + len(element.text or "") + len(element.tail or "") + sum(
            len(key) + len(value) for key, value in element.attrib.items()
        )
        if kept > limits.max_kept_elements or kept_bytes > limits.max_kept_bytes:
            element.clear()
            parent.remove(element)
            truncated = True
    if root is None:
        raise PartnerReplyError("empty reply where an ACTES message was expected", partner="tdt")
    return root, truncated


def _parse_xml(raw: bytes, limits: ParseLimits) -> tuple[etree._Element, bool]:
    data = raw.lstrip(b" \t\r\n")
    if not data:
        raise PartnerReplyError("empty reply where an ACTES message was expected", partner="tdt")
    if len(data) > limits.max_bytes:
        raise _too_large(f"{len(data)} bytes, more than the {limits.max_bytes} read")
    _scan((data[i : i + _SCAN_CHUNK] for i in range(0, len(data), _SCAN_CHUNK)), limits)
    try:
        return _bounded_tree(io.BytesIO(data), limits)
    except etree.XMLSyntaxError as first:
        if _DECLARED_ENCODING_RE.match(data) is None and not data.startswith(b"\xef\xbb\xbf"):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                try:
                    return _bounded_tree(io.BytesIO(data), limits, encoding="cp1252")
                except etree.XMLSyntaxError:
                    pass
        raise PartnerReplyError(
            f"ACTES message is not readable XML: {first}", partner="tdt"
        ) from first


def _id_acte(root: etree._Element, type_code: str) -> str | None:
    value = _attr(root, "IDActe")
    if value is None and type_code in {"3-5", "4-5"}:
        value = _attr(_child(root, "InfosCourrierPref"), "IDActe")
    return value


def _message(root: etree._Element, raw: bytes, truncated: bool) -> ActesMessage:
    qname = etree.QName(root)
    if qname.namespace not in (None, ACTES_NS):
        raise PartnerReplyError(
            f"not an ACTES message: root {qname.localname!r} is in namespace {qname.namespace!r}",
            partner="tdt",
        )
    type_code = type_code_for_root(qname.localname)
    if type_code is None:
        raise PartnerReplyError(
            f"unknown ACTES message root element {qname.localname!r}", partner="tdt"
        )
    fields = _EXTRACTORS[type_code](root)
    return ActesMessage(
        type_code=type_code,
        root=qname.localname,
        id_acte=_id_acte(root, type_code),
        fields=fields,
        raw=raw,
        truncated=truncated,
    )


def parse_message(raw: bytes, limits: ParseLimits | None = None) -> ActesMessage:
    """Read any ACTES business message or envelope, without schema validation, within
    ``limits`` (defaults: :class:`ParseLimits`)."""
    root, truncated = _parse_xml(raw, limits or ParseLimits())
    return _message(root, raw, truncated)


def parse_message_file(path: Path, limits: ParseLimits | None = None) -> ActesMessage:
    """:func:`parse_message` on a file, streamed from disk (``raw`` stays empty): memory
    does not grow with the file. Raises ``OSError`` when it cannot be read."""
    limits = limits or ParseLimits()
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise _too_large(
            f"{path.name} has {size} bytes, more than the {limits.max_bytes} read "
            "(an @CTES message holds metadata only; documents travel beside it)"
        )
    with path.open("rb") as handle:
        head = handle.read(4096)
        start = len(head) - len(head.lstrip(b" \t\r\n"))
        if start == len(head):
            raise PartnerReplyError("empty file (or blank start) where an ACTES message was "
                                    "expected", partner="tdt")
        head = head[start:]
        handle.seek(start)
        _scan(_file_chunks(handle), limits)
        handle.seek(start)
        try:
            root, truncated = _bounded_tree(handle, limits)
        except etree.XMLSyntaxError as first:
            if _DECLARED_ENCODING_RE.match(head) is not None:
                raise PartnerReplyError(
                    f"ACTES message is not readable XML: {first}", partner="tdt"
                ) from first
            handle.seek(start)
            try:
                root, truncated = _bounded_tree(handle, limits, encoding="cp1252")
            except etree.XMLSyntaxError:
                raise PartnerReplyError(
                    f"ACTES message is not readable XML: {first}", partner="tdt"
                ) from first
    return _message(root, b"", truncated)
