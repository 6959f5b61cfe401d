"""The checks a strict TdT applies to an ``actes_transac_create.php`` post.

Each broken rule becomes a :class:`Reason` whose ``field`` is the form field
(``number``, ``classif2``, ``acte_pdf_file``…); the sandbox answers them as
``KO`` lines ``field: message``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath

from relais.actes.classification import Classification
from relais.actes.ids import nature_reasons, numero_reasons, objet_reasons
from relais.errors import Reason
from sandbox.tdt.forms import FormFile, RawForm

PDF_MAGIC = b"%PDF-"
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CLASSIF_RE = re.compile(r"classif([0-9]+)")
_EXTENSION_RE = re.compile(r"[A-Za-z0-9]{1,10}")


@dataclass(frozen=True)
class ActeSubmission:
    """A post that passed every check."""

    nature_code: int
    number: str
    subject: str
    decision_date: date
    matieres: tuple[int, ...]
    document_papier: bool
    type_acte: str
    type_pj: tuple[str, ...]
    main_file: tuple[str, bytes]
    annexes: tuple[tuple[str, bytes], ...]


def _flag(form: RawForm, name: str, reasons: list[Reason]) -> bool:
    value = form.text(name)
    if value in (None, "", "0"):
        return False
    if value == "1":
        return True
    reasons.append(Reason(name, "format", f"expected 0 or 1, got {value!r}"))
    return False


def looks_utf8(raw: bytes) -> bool:
    """True when non-ASCII bytes decode as UTF-8: most likely not the ISO-8859-1 S²LOW wants."""
    if raw.isascii():
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _subject(form: RawForm, reasons: list[Reason]) -> str:
    raw = form.first("subject")
    if raw is None or not raw.strip():
        reasons.append(Reason("subject", "required", "the subject (objet) is required"))
        return ""
    if looks_utf8(raw):
        reasons.append(
            Reason("subject", "charset", "the subject looks UTF-8 encoded; send ISO-8859-1")
        )
    text = raw.decode("iso-8859-1")
    reasons.extend(objet_reasons(text, "subject"))
    return text


def _decision_date(form: RawForm, today: date, reasons: list[Reason]) -> date:
    value = form.text("decision_date")
    if not value:
        reasons.append(Reason("decision_date", "required", "the decision date is required"))
        return today
    if _DATE_RE.fullmatch(value) is None:
        reasons.append(Reason("decision_date", "format", f"expected YYYY-MM-DD, got {value!r}"))
        return today
    try:
        decided = date.fromisoformat(value)
    except ValueError:
        reasons.append(Reason("decision_date", "format", f"{value} is not a calendar date"))
        return today
    if decided > today:
        reasons.append(
            Reason("decision_date", "future", f"{value} is after today ({today.isoformat()})")
        )
    return decided


def _matieres(form: RawForm, reasons: list[Reason]) -> tuple[int, ...]:
    levels: dict[int, str] = {}
    for name in form.values:
        match = _CLASSIF_RE.fullmatch(name)
        if match:
            levels[int(match[1])] = form.text(name) or ""
    codes: list[int] = []
    for level in range(1, len(levels) + 1):
        value = levels.get(level)
        if value is None:
            reasons.append(Reason(f"classif{level}", "required", "classification levels skip one"))
            return ()
        if not value.isdigit() or int(value) < 1:
            reasons.append(Reason(f"classif{level}", "format", f"not a matière code: {value!r}"))
            return ()
        codes.append(int(value))
    if len(codes) < 2:
        reasons.append(Reason("classif2", "required", "classification levels 1 and 2 are required"))
        return ()
    if len(codes) > 5:
        reasons.append(Reason("classif6", "levels", "at most 5 classification levels"))
        return ()
    return tuple(codes)


def _file_name(file: FormFile, field: str, reasons: list[Reason]) -> str:
    name = PurePosixPath(file.filename.replace("\\", "/")).name
    if _EXTENSION_RE.fullmatch(PurePosixPath(name).suffix.removeprefix(".")) is None:
        reasons.append(Reason(field, "extension", f"{file.filename!r} has no file extension"))
    return name


def _unique(names: list[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            path = PurePosixPath(name)
            candidate = f"{path.stem}_{n}{path.suffix}"
        seen.add(candidate)
        result.append(candidate)
    return result


def validate_acte_form(
    form: RawForm,
    *,
    classification: Classification,
    today: date,
    max_total_bytes: int,
) -> tuple[ActeSubmission | None, list[Reason]]:
    """The submission, or None and every reason it is refused."""
    reasons: list[Reason] = []
    if form.text("api") != "1":
        reasons.append(Reason("api", "required", "api=1 is required for API calls"))

    nature_text = form.text("nature_code") or ""
    nature_code = int(nature_text) if nature_text.isdigit() else 0
    if not nature_text:
        reasons.append(Reason("nature_code", "required", "the nature code is required"))
    else:
        reasons.extend(nature_reasons(nature_code, "nature_code"))

    number = form.text("number") or ""
    if not number:
        reasons.append(Reason("number", "required", "the acte number is required"))
    else:
        reasons.extend(numero_reasons(number, "number"))

    subject = _subject(form, reasons)
    decision_date = _decision_date(form, today, reasons)
    matieres = _matieres(form, reasons)
    document_papier = _flag(form, "document_papier", reasons)
    _flag(form, "en_attente", reasons)

    main_files = form.files.get("acte_pdf_file", [])
    annex_files = form.files.get("acte_attachments[]", [])
    main_name = ""
    if len(main_files) != 1:
        reasons.append(Reason("acte_pdf_file", "required", "exactly one main document is required"))
    else:
        main = main_files[0]
        main_name = _file_name(main, "acte_pdf_file", reasons)
        if not main.data:
            reasons.append(Reason("acte_pdf_file", "empty", "the main document is empty"))
        elif not bytes(main.data).startswith(PDF_MAGIC):
            reasons.append(Reason("acte_pdf_file", "format", "the main document is not a PDF"))
    annex_names = []
    for i, annex in enumerate(annex_files):
        annex_names.append(_file_name(annex, f"acte_attachments[{i}]", reasons))
        if not annex.data:
            reasons.append(Reason(f"acte_attachments[{i}]", "empty", "an annex is empty"))
    total = sum(len(f.data) for f in (*main_files, *annex_files))
    if total > max_total_bytes:
        reasons.append(
            Reason("acte_attachments[]", "size", f"{total} bytes exceed {max_total_bytes}")
        )

    type_acte = form.text("type_acte") or ""
    type_pj = tuple(v.decode("iso-8859-1") for v in form.values.get("type_pj[]", []))
    if not type_acte:
        reasons.append(Reason("type_acte", "required", "the typology of the acte is required"))
    if len(type_pj) != len(annex_files):
        reasons.append(
            Reason(
                "type_pj[]",
                "count",
                f"{len(type_pj)} typologies for {len(annex_files)} attachments",
            )
        )
    if nature_code and matieres:
        for reason in classification.check(nature_code, matieres, (type_acte, *type_pj)):
            reasons.append(_rename(reason, len(matieres)))

    if reasons:
        return None, reasons
    names = _unique([main_name, *annex_names])
    return (
        ActeSubmission(
            nature_code=nature_code,
            number=number,
            subject=subject,
            decision_date=decision_date,
            matieres=matieres,
            document_papier=document_papier,
            type_acte=type_acte,
            type_pj=type_pj,
            main_file=(names[0], bytes(main_files[0].data)),
            annexes=tuple(
                (name, bytes(f.data)) for name, f in zip(names[1:], annex_files, strict=True)
            ),
        ),
        [],
    )


def _rename(reason: Reason, levels: int) -> Reason:
    """Map the classification's field names onto the form's."""
    if reason.field == "typologies[0]":
        return Reason("type_acte", reason.code, reason.message)
    match = re.fullmatch(r"typologies\[([0-9]+)\]", reason.field)
    if match:
        return Reason(f"type_pj[{int(match[1]) - 1}]", reason.code, reason.message)
    if reason.field == "matieres":
        level = re.search(r"\(level ([0-9])\)", reason.message)
        return Reason(f"classif{level[1] if level else levels}", reason.code, reason.message)
    return reason
