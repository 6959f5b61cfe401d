"""Bounded reading of @CTES messages: limits refuse or truncate, real messages are untouched."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hub.cli.parse_cmd import parse_file
from relais.actes.xml_parse import ParseLimits, parse_message, parse_message_file
from relais.errors import PartnerReplyError, PartnerReplyTooLargeError
from sandbox.tdt.prefecture_xml import build_lettre_observations

NS = "http://www.interieur.gouv.fr/ACTES#v1.1-20040216"
ID_ACTE = "021-217500016-20260302-D2026_042-DE"
LETTER = build_lettre_observations(ID_ACTE, date(2026, 4, 1), "Incompétence", "lettre.pdf")


def classification(count: int, label: str = "Libellé") -> bytes:
    matieres = "".join(
        f'<actes:Matiere1 actes:CodeMatiere="{i % 9 + 1}" actes:Libelle="{label}"/>'
        for i in range(count)
    )
    return (f'<actes:RetourClassification xmlns:actes="{NS}"><actes:DateClassification>'
            f"2026-01-15</actes:DateClassification><actes:Matieres>{matieres}"
            "</actes:Matieres></actes:RetourClassification>").encode()


def test_a_real_message_is_read_the_same_from_bytes_and_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "lettre.xml"
    path.write_bytes(b"\n  " + LETTER)
    from_bytes, from_file = parse_message(LETTER), parse_message_file(path)
    assert (from_file.type_code, from_file.id_acte, from_file.fields) == (
        from_bytes.type_code, from_bytes.id_acte, from_bytes.fields)
    assert from_bytes.raw == LETTER and from_file.raw == b""
    assert not from_bytes.truncated and not from_file.truncated
    assert from_file.fields["motif"] == "Incompétence"


def test_an_undeclared_windows_1252_file_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "cp1252.xml"
    path.write_bytes(LETTER.split(b"?>", 1)[1].replace("Incompétence".encode(),
                                                        "Incomp\xe9tence".encode("cp1252")))
    assert parse_message_file(path).fields["motif"] == "Incompétence"


def test_too_many_tags_are_refused_before_parsing() -> None:
    with pytest.raises(PartnerReplyTooLargeError, match="more than 100 tags"):
        parse_message(classification(200), ParseLimits(max_elements=100))


def test_a_giant_tag_is_refused_before_parsing(tmp_path: Path) -> None:
    attributes = " ".join(f'a{i}="v"' for i in range(20_000))
    data = f'<actes:Acte xmlns:actes="{NS}" {attributes}/>'.encode()
    with pytest.raises(PartnerReplyTooLargeError, match="longer than 65536 bytes"):
        parse_message(data)
    path = tmp_path / "giant.xml"
    path.write_bytes(data)
    with pytest.raises(PartnerReplyTooLargeError, match="longer than 65536 bytes"):
        parse_message_file(path, ParseLimits())
    with pytest.raises(PartnerReplyTooLargeError, match="more than the 1000 read"):
        parse_message_file(path, ParseLimits(max_bytes=1000))


def test_kept_elements_and_bytes_are_bounded_and_flagged() -> None:
    whole = parse_message(classification(50))
    assert not whole.truncated and len(whole.fields["matieres"]) > 0
    by_count = parse_message(classification(50), ParseLimits(max_kept_elements=10))
    assert by_count.truncated
    by_bytes = parse_message(classification(50, "x" * 1000), ParseLimits(max_kept_bytes=5000))
    assert by_bytes.truncated
    assert by_bytes.type_code == "7-2"


def test_long_texts_are_cut() -> None:
    data = build_lettre_observations(ID_ACTE, date(2026, 4, 1), "y" * 100_000, "lettre.pdf")
    message = parse_message(data)
    assert message.truncated
    assert message.fields["motif"] == "y" * 64 * 1024


def test_entities_are_not_expanded() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<actes:LettreObservations xmlns:actes="' + NS.encode()
            + b'" actes:IDActe="x"><actes:Motif>&b;&b;&b;</actes:Motif>'
            b"</actes:LettreObservations>")
    message = parse_message(bomb)
    assert "aaaaaaaaaa" not in str(message.fields.get("motif", ""))


def test_the_cli_summary_says_whether_it_was_truncated(tmp_path: Path) -> None:
    path = tmp_path / "classification.xml"
    path.write_bytes(classification(20))
    summary = parse_file(path)
    assert summary["type_code"] == "7-2" and summary["truncated"] is False
    assert summary["size"] == path.stat().st_size
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"  \n")
    with pytest.raises(PartnerReplyError):
        parse_file(empty)
