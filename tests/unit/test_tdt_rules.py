"""S²LOW's own checks on an acte's number and files, as pure functions (connectors/tdt/rules.py)."""

from __future__ import annotations

import gzip
import io
import random
import tarfile

import pytest

from connectors.tdt.rules import (
    ARCHIVE_MAX_BYTES,
    NUMBER_RE,
    archive_size_bound,
    check_filename,
    check_number,
)


@pytest.mark.parametrize(
    "number",
    ["1", "A", "D2024_017", "DEL_2024_0001", "ABCDEFGHIJKLMNO", "A_B", "2024"],
)
def test_numbers_s2low_accepts(number: str) -> None:
    assert NUMBER_RE.fullmatch(number)
    assert check_number(number) == []


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("", "empty"),
        ("d2024_017", "lower-case"),
        ("_D1", "'_'"),
        ("D1_", "'_'"),
        ("_", "'_'"),
        ("ABCDEFGHIJKLMNOP", "16 characters"),
        ("D-1", "characters other than"),
        ("D 1", "characters other than"),
        ("DÉL1", "characters other than"),
        ("D1\n", "characters other than"),
    ],
)
def test_numbers_s2low_refuses(number: str, why: str) -> None:
    (reason,) = check_number(number)
    assert (reason.field, reason.code) == ("numero_interne", "number_format")
    assert why in reason.message
    assert NUMBER_RE.pattern in reason.message


def test_the_number_pattern_is_s2low_one() -> None:
    assert NUMBER_RE.pattern == "^([A-Z0-9][A-Z0-9_]{0,13})?[A-Z0-9]$"
    assert check_number("x", field="number")[0].field == "number"


@pytest.mark.parametrize(
    ("name", "media_type", "role"),
    [
        ("acte.pdf", "application/pdf", "acte"),
        ("ACTE.PDF", "application/pdf", "acte"),
        ("Délibération n° 12 (version finale).pdf", "application/pdf", "acte"),
        ("plan.png", "image/png", "annex"),
        ("photo.jpg", "image/jpeg", "annex"),
        ("photo.jpeg", "image/jpeg; charset=binary", "annex"),
        ("budget.xml", "application/xml", "annex"),
        ("lettre.pdf", "application/pdf", "reply"),
        ("scan.png", "image/png", "reply"),
        ("piece.xml", "text/xml", "reply_annex"),
    ],
)
def test_files_s2low_accepts(name: str, media_type: str, role: str) -> None:
    assert check_filename(name, media_type, role=role) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "media_type", "role", "field", "code"),
    [
        ("acte", "application/pdf", "acte", "document.name", "extension_missing"),
        ("acte.", "application/pdf", "acte", "document.name", "extension_missing"),
        ("../../etc/passwd", "application/pdf", "acte", "document.name", "filename_invalid"),
        ("dir\\acte.pdf", "application/pdf", "acte", "document.name", "filename_invalid"),
        (".pdf", "application/pdf", "acte", "document.name", "filename_invalid"),
        ("", "application/pdf", "acte", "document.name", "filename_invalid"),
        ("a\x00.pdf", "application/pdf", "acte", "document.name", "filename_invalid"),
        (" acte.pdf", "application/pdf", "acte", "document.name", "filename_invalid"),
        ("x" * 252 + ".pdf", "application/pdf", "acte", "document.name", "filename_invalid"),
        ("acte.png", "application/pdf", "acte", "document.name", "extension_mismatch"),
        (
            "acte.odt",
            "application/vnd.oasis.opendocument.text",
            "acte",
            "document.media_type",
            "media_type_refused",
        ),
        ("photo.png", "image/png", "acte", "document.media_type", "media_type_refused"),
        (
            "form",
            "multipart/form-data; boundary=abc",
            "annex",
            "document.media_type",
            "media_type_refused",
        ),
        ("note.txt", "text/plain", "annex", "document.media_type", "media_type_refused"),
        ("lettre.docx", "application/msword", "reply", "document.media_type", "media_type_refused"),
    ],
)
def test_files_refused_with_a_field_and_a_code(
    name: str, media_type: str, role: str, field: str, code: str
) -> None:
    reasons = check_filename(name, media_type, role=role)  # type: ignore[arg-type]
    assert [(r.field, r.code) for r in reasons] == [(field, code)]


def test_an_xml_acte_needs_nature_5_and_classification_7_1() -> None:
    ok = check_filename(
        "budget.xml", "application/xml", role="acte", nature_code=5, classification=(7, 1, 2)
    )
    assert ok == []
    wrong_nature = check_filename(
        "budget.xml", "application/xml", role="acte", nature_code=1, classification=(7, 1)
    )
    assert [r.code for r in wrong_nature] == ["xml_not_allowed"]
    wrong_class = check_filename(
        "budget.xml", "application/xml", role="acte", nature_code=5, classification=(7, 2)
    )
    assert [r.code for r in wrong_class] == ["xml_not_allowed"]
    assert "7.1" in wrong_class[0].message


def test_annexes_of_an_xml_acte_must_be_pdf() -> None:
    xml_acte = "application/xml"
    assert check_filename("a.pdf", "application/pdf", role="annex", acte_media_type=xml_acte) == []
    refused = check_filename("a.png", "image/png", role="annex", acte_media_type=xml_acte)
    assert [r.code for r in refused] == ["annex_must_be_pdf"]
    beside_pdf = check_filename(
        "a.png", "image/png", role="annex", acte_media_type="application/pdf"
    )
    assert beside_pdf == []


def test_reasons_name_the_field_given() -> None:
    (reason,) = check_filename("acte", "application/pdf", role="acte", field="annexes[2]")
    assert reason.field == "annexes[2].name"
    assert "*.pdf" in reason.message


def test_a_name_problem_and_a_type_problem_are_both_reported() -> None:
    reasons = check_filename("../x", "text/plain", role="acte")
    assert [r.code for r in reasons] == ["filename_invalid", "media_type_refused"]


def _s2low_archive(members: list[tuple[str, bytes]]) -> bytes:
    """What ``tar cf - … | gzip -9`` makes of ``members`` (GNU tar's 10 KiB records)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


@pytest.mark.parametrize("sizes", [[1], [3 * 1024 * 1024], [2 * 1024 * 1024, 700_001, 513]])
def test_the_archive_bound_holds_for_files_that_do_not_compress(sizes: list[int]) -> None:
    rng = random.Random(len(sizes))
    files = [(f"99_DE-file_{n}.pdf", rng.randbytes(size)) for n, size in enumerate(sizes)]
    xml = [("EACT--210600235--20261205-1.xml", b"<x/>" * 300),
           ("006-210600235-20261205-D1-DE-1-1_0.xml", b"<y/>" * 1200)]
    archive = _s2low_archive(xml + files)
    bound = archive_size_bound(sizes)
    assert len(archive) <= bound
    # and it reserves no more than the XML room, the padding and gzip's worst case
    assert bound - len(archive) < 64 * 1024 + 2 * 10240 + sum(sizes) // 2000 + 1024


def test_the_bound_of_a_file_just_under_s2low_limit_is_over_it() -> None:
    assert archive_size_bound([ARCHIVE_MAX_BYTES - 4096]) > ARCHIVE_MAX_BYTES
    assert archive_size_bound([ARCHIVE_MAX_BYTES - 200 * 1024]) <= ARCHIVE_MAX_BYTES
