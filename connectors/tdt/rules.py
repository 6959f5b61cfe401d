"""What S²LOW refuses about an acte's number and files, checked before anything is sent.

Pure functions: no I/O, no settings. The acts-validation stage calls them so a
member learns at once, with a field and a reason, what the TdT would refuse
later (and a refused number must never reach the TdT: S²LOW refuses a number
for good once it has seen it).

Read from libriciel/s2low:

- ``ActesTransaction::NUMBER_REGEXP``, checked first by
  ``public.ssl/modules/actes/actes_transac_create.php``: upper-case letters,
  digits and ``_``, 1 to 15 characters, neither starting nor ending with ``_``.
- ``ActesTransaction::addFile``: S²LOW sniffs each file's media type
  (``mime_content_type``) and knows only ``application/pdf``,
  ``application/xml``/``text/xml``, ``image/jpeg`` and ``image/png``. The acte's
  own file must be PDF, or XML for a nature 5 (documents budgétaires et
  financiers) classified 7.1 only; annexes may be PDF, XML, JPEG or PNG, but
  only PDF beside an XML acte; a reply letter may be PDF, XML, PNG or JPEG.
- ``actes_transac_get_tampon.php`` picks the file to stamp by its *posted name*
  ending in ``pdf``, and S²LOW names a stored annex of an unknown type after
  the posted name's extension: so a name here must carry the extension of its
  media type. Names are otherwise free in S²LOW; Relais refuses what no file
  system or archive should see (paths, ``..``, control characters, a leading
  dot), because the name travels into the TdT's tar.gz and back to the member.
- ``ActesEnvelope::generateArchiveFile`` and ``checkArchiveSize`` (called by
  ``actes_transac_create.php`` after the archive is written): S²LOW packs the
  envelope XML, the message XML and the posted files with ``tar cf - … | gzip -9``
  and refuses the post when the *archive's* size is over ``ACTES_ARCHIVE_MAX_SIZE``
  (150 MiB by default): ``la taille d'archive générée n'est pas conforme``. The
  files alone may be under the limit and their archive over it:
  :func:`archive_size_bound` is what the archive can weigh at most.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from relais.errors import Reason

NUMBER_RE = re.compile(r"^([A-Z0-9][A-Z0-9_]{0,13})?[A-Z0-9]$")
"""``ActesTransaction::NUMBER_REGEXP`` of S²LOW: the acte's number (numéro interne)."""

Role = Literal["acte", "annex", "reply", "reply_annex"]
"""Which file of a submission: the acte's own document, an annex, a reply letter, its annexes."""

MEDIA_TYPE_EXTENSIONS: dict[str, frozenset[str]] = {
    "application/pdf": frozenset({"pdf"}),
    "application/xml": frozenset({"xml"}),
    "text/xml": frozenset({"xml"}),
    "image/jpeg": frozenset({"jpg", "jpeg"}),
    "image/png": frozenset({"png"}),
}
"""The media types S²LOW recognises (its ``$typeA`` table) and the extensions that name them."""

_KINDS: dict[str, str] = {
    "application/pdf": "pdf",
    "application/xml": "xml",
    "text/xml": "xml",
    "image/jpeg": "jpeg",
    "image/png": "png",
}

ALLOWED_KINDS: dict[str, frozenset[str]] = {
    "acte": frozenset({"pdf", "xml"}),
    "annex": frozenset({"pdf", "xml", "jpeg", "png"}),
    "reply": frozenset({"pdf", "xml", "jpeg", "png"}),
    "reply_annex": frozenset({"pdf", "xml", "jpeg", "png"}),
}
"""Kinds of file S²LOW accepts per role (before the nature and XML-acte rules)."""

MAX_NAME_LENGTH = 255
"""Longest file name, in characters (what common file systems and tar headers hold)."""

_FORBIDDEN_IN_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")

ARCHIVE_MAX_BYTES = 150 * 1024 * 1024
"""S²LOW's ``ACTES_ARCHIVE_MAX_SIZE`` default: the largest tar.gz it accepts (``>`` refuses)."""

TAR_BLOCK = 512
"""A tar header, and the unit a member's content is padded to."""

TAR_RECORD = 20 * TAR_BLOCK
"""GNU tar's default record (blocking factor 20): the archive is padded to a multiple of it."""

XML_ALLOWANCE = 64 * 1024
"""Room in the tar for the two XML files S²LOW adds, headers and padding included: the
``EnveloppeCLMISILL`` (about 1 KB) and the message (objet, file names, and the detached
signature of a signed acte, a few KB)."""

GZIP_FRAME = 18
"""gzip's 10-byte header (no file name: ``gzip`` reads a pipe) and 8-byte trailer."""


def check_number(number: str, *, field: str = "numero_interne") -> list[Reason]:
    """Reasons S²LOW would refuse ``number`` with (``Le numéro n'est pas correct``); [] if none."""
    if NUMBER_RE.fullmatch(number):
        return []
    if not number:
        why = "the number is empty"
    elif len(number) > 15:
        why = f"{len(number)} characters, at most 15"
    elif number != number.upper() and NUMBER_RE.fullmatch(number.upper()):
        why = "lower-case letters; S²LOW takes upper-case letters only"
    elif number.startswith("_") or number.endswith("_"):
        why = "it starts or ends with '_'"
    else:
        why = "characters other than A-Z, 0-9 and '_'"
    return [
        Reason(
            field,
            "number_format",
            f"{number!r} does not match S²LOW's pattern {NUMBER_RE.pattern}: {why}",
        )
    ]


def media_kind(media_type: str) -> str | None:
    """``pdf``, ``xml``, ``jpeg`` or ``png`` for a media type S²LOW knows (parameters ignored)."""
    return _KINDS.get(media_type.split(";", 1)[0].strip().lower())


def check_filename(
    name: str,
    media_type: str,
    *,
    role: Role,
    nature_code: int | None = None,
    classification: Sequence[int] = (),
    acte_media_type: str | None = None,
    field: str = "document",
) -> list[Reason]:
    """Reasons S²LOW (or a safe archive) would refuse this file with; [] if none.

    ``role`` says which file it is. For the acte's own document (``acte``) an
    XML file also needs ``nature_code`` 5 and ``classification`` starting 7.1;
    for an annex, give ``acte_media_type`` (the acte document's media type) so
    that a non-PDF annex beside an XML acte is refused. Reasons name
    ``<field>.name`` or ``<field>.media_type``.
    """
    reasons = _name_reasons(name, f"{field}.name")
    kind = media_kind(media_type)
    allowed = ALLOWED_KINDS[role]
    if kind is None or kind not in allowed:
        reasons.append(
            Reason(
                f"{field}.media_type",
                "media_type_refused",
                f"{media_type.split(';', 1)[0].strip() or 'no media type'!s} is not accepted "
                f"for {_ROLE_LABELS[role]}: {', '.join(sorted(allowed))} only",
            )
        )
    else:
        extension = _extension(name)
        expected = MEDIA_TYPE_EXTENSIONS[media_type.split(";", 1)[0].strip().lower()]
        if reasons:
            pass  # the name is refused already: one reason per field
        elif extension is None:
            reasons.append(
                Reason(
                    f"{field}.name",
                    "extension_missing",
                    f"{name!r} has no extension; a {kind} file is named "
                    f"*.{' or *.'.join(sorted(expected))}",
                )
            )
        elif extension not in expected:
            reasons.append(
                Reason(
                    f"{field}.name",
                    "extension_mismatch",
                    f"{name!r} ends in .{extension} but is {kind}; expected "
                    f".{' or .'.join(sorted(expected))}",
                )
            )
        reasons += _role_reasons(kind, role, nature_code, classification, acte_media_type, field)
    return reasons


_ROLE_LABELS: dict[str, str] = {
    "acte": "the acte's document",
    "annex": "an annex",
    "reply": "a reply letter",
    "reply_annex": "a reply's annex",
}


def _role_reasons(
    kind: str,
    role: Role,
    nature_code: int | None,
    classification: Sequence[int],
    acte_media_type: str | None,
    field: str,
) -> list[Reason]:
    if role == "acte" and kind == "xml":
        if nature_code != 5:
            return [
                Reason(
                    f"{field}.media_type",
                    "xml_not_allowed",
                    "only documents budgétaires et financiers (nature 5) may be sent as XML",
                )
            ]
        if tuple(classification[:2]) != (7, 1):
            return [
                Reason(
                    f"{field}.media_type",
                    "xml_not_allowed",
                    "an XML acte must be classified 7.1",
                )
            ]
    if (
        role == "annex"
        and kind != "pdf"
        and acte_media_type is not None
        and media_kind(acte_media_type) == "xml"
    ):
        return [
            Reason(
                f"{field}.media_type",
                "annex_must_be_pdf",
                "annexes of an XML acte must be PDF",
            )
        ]
    return []


def _name_reasons(name: str, field: str) -> list[Reason]:
    if not name.strip():
        return [Reason(field, "filename_invalid", "the file name is empty")]
    if len(name) > MAX_NAME_LENGTH:
        return [
            Reason(
                field,
                "filename_invalid",
                f"the file name has {len(name)} characters, at most {MAX_NAME_LENGTH}",
            )
        ]
    if _FORBIDDEN_IN_NAME.search(name):
        return [
            Reason(
                field,
                "filename_invalid",
                f"{name!r} holds a path separator or a control character",
            )
        ]
    if name.startswith(".") or name != name.strip():
        return [
            Reason(
                field,
                "filename_invalid",
                f"{name!r} starts with a dot or with/ends with spaces",
            )
        ]
    return []


def _extension(name: str) -> str | None:
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or not extension:
        return None
    return extension.lower()


def _padded(size: int, unit: int) -> int:
    return -(-size // unit) * unit


def archive_size_bound(file_sizes: Sequence[int]) -> int:
    """The most S²LOW's tar.gz of these files can weigh, in bytes.

    The tar: a header per member plus its content padded to 512 bytes, for the files
    and the two XML files (:data:`XML_ALLOWANCE`), two zero blocks at the end, padded to
    a 10 KiB record. Compressed: zlib's ``deflateBound`` for data that does not compress
    (a PDF's streams are compressed already; gzip then stores the blocks, a few bytes per
    block), plus the gzip frame. A real archive is smaller when the files compress.
    """
    files = sum(TAR_BLOCK + _padded(size, TAR_BLOCK) for size in file_sizes)
    tar = _padded(files + XML_ALLOWANCE + 2 * TAR_BLOCK, TAR_RECORD)
    deflated = tar + (tar >> 12) + (tar >> 14) + (tar >> 25) + 13
    return deflated + GZIP_FRAME
