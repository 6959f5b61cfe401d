"""What Relais emits validates against the reference ACTES schema (shared/reference/actes)."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from relais.actes import xml_build as xb
from relais.actes.archive import build_transmission, pack_archive, read_transmission
from relais.actes.classification import build_retour_classification, parse_retour_classification
from relais.actes.codes import ACTES_NS, INSEE_NS, XSI_NS
from relais.actes.metadata import ActeMetadata
from relais.actes.xml_parse import parse_message
from relais.actes.xsd import (
    REFERENCE_DIR_ENV,
    actes_reference_dir,
    assert_valid,
    reference_dir,
    validate_actes_xml,
)
from relais.errors import ConfigurationError, ValidationError
from sandbox.tdt import prefecture_xml as pb

ID_ACTE = "044-214400152-20181001-123456-DE"
DAY = date(2018, 10, 12)


def sample_bytes(name: str) -> bytes:
    return (actes_reference_dir() / "samples" / name).read_bytes()


def make_meta(**changes: object) -> ActeMetadata:
    meta = ActeMetadata(
        siren="214400152",
        department="044",
        decision_date=date(2018, 10, 1),
        numero_interne="123456",
        nature_code=1,
        matieres=(1, 1, 1),
        objet="Délibération relative à l'éclairage public",
        classification_date=date(2017, 4, 19),
        document_papier=False,
        main_file="99_DE-044-214400152-20181012-123456-DE-1-1_1.pdf",
        annex_files=("01_01-044-214400152-20181012-123456-DE-1-1_2.xml",),
    )
    return replace(meta, **changes)  # type: ignore[arg-type]


def _acte_xml() -> bytes:
    return xb.build_acte(make_meta())


def _envelope_cl() -> bytes:
    return xb.build_envelope_cl(
        "214400152",
        "044",
        1,
        31,
        ["044-214400152-20181012-123456-DE-1-1_0.xml"],
        ["greffe@mairie.example.fr", "dgs@mairie.example.fr"],
        xb.Referent(nom="Service des assemblées", telephone="0240000000", email="a@b.fr"),
    )


BUILDERS: dict[str, tuple[str, Callable[[], bytes]]] = {
    "acte": ("1-1", _acte_xml),
    "acte_with_precedent": (
        "1-1",
        lambda: xb.build_acte(
            make_meta(precedent_id_acte="044-214400152-20180901-123455-DE", document_papier=True)
        ),
    ),
    "ar_acte_from_meta": (
        "1-2",
        lambda: pb.build_ar_acte(ID_ACTE, DAY, make_meta(), date(2017, 4, 19)),
    ),
    "ar_acte_from_raw": ("1-2", lambda: pb.build_ar_acte(ID_ACTE, DAY, _acte_xml(), DAY)),
    "anomalie_acte": (
        "1-3",
        lambda: pb.build_anomalie_acte(
            ID_ACTE,
            DAY,
            "002",
            "ODT-VERIF-01 : date de classification qui n'est pas à jour",
            make_meta(),
            date(2018, 10, 10),
        ),
    ),
    "anomalie_acte_raw_no_detail": (
        "1-3",
        lambda: pb.build_anomalie_acte(None, DAY, "001", None, _acte_xml(), DAY),
    ),
    "courrier_simple": ("2-1", lambda: pb.build_courrier_simple(ID_ACTE, DAY, "c-2-1_1.pdf")),
    "reponse_courrier_simple": (
        "2-2",
        lambda: xb.build_reponse_courrier_simple(ID_ACTE, DAY, "r-2-2_1.pdf"),
    ),
    "demande_pc": (
        "3-1",
        lambda: pb.build_demande_piece_complementaire(
            ID_ACTE, DAY, "Le plan de financement signé", "d-3-1_1.pdf"
        ),
    ),
    "ar_demande_pc": ("3-2", lambda: xb.build_ar_demande_pc(ID_ACTE, DAY)),
    "refus_pc": ("3-3", lambda: xb.build_refus_pc(ID_ACTE, DAY, "r-3-3_1.pdf")),
    "piece_complementaire": (
        "3-4",
        lambda: xb.build_piece_complementaire(ID_ACTE, DAY, ["p-3-4_1.pdf", "p-3-4_2.pdf"]),
    ),
    "ar_piece_complementaire": (
        "3-5",
        lambda: pb.build_ar_piece_complementaire(ID_ACTE, date(2018, 10, 20), DAY),
    ),
    "lettre_observations": (
        "4-1",
        lambda: pb.build_lettre_observations(ID_ACTE, DAY, "Incompétence", "l-4-1_1.pdf"),
    ),
    "ar_lettre_observations": ("4-2", lambda: xb.build_ar_lettre_observations(ID_ACTE, DAY)),
    "rejet_lettre_observations": (
        "4-3",
        lambda: xb.build_rejet_lettre_observations(ID_ACTE, DAY, "r-4-3_1.pdf"),
    ),
    "reponse_lettre_observations": (
        "4-4",
        lambda: xb.build_reponse_lettre_observations(ID_ACTE, DAY, "r-4-4_1.pdf"),
    ),
    "ar_reponse_rejet_lo": (
        "4-5",
        lambda: pb.build_ar_reponse_rejet_lettre_observations(ID_ACTE, date(2018, 10, 20), DAY),
    ),
    "defere_ta": (
        "5-1",
        lambda: pb.build_defere_ta(ID_ACTE, DAY, "Vice de procédure", ["t-5-1_1.pdf"]),
    ),
    "defere_ta_without_pieces": (
        "5-1",
        lambda: pb.build_defere_ta(ID_ACTE, DAY, "Vice de forme", []),
    ),
    "annulation": ("6-1", lambda: xb.build_annulation(ID_ACTE)),
    "ar_annulation": ("6-2", lambda: pb.build_ar_annulation(ID_ACTE, DAY)),
    "ar_annulation_today": ("6-2", lambda: pb.build_ar_annulation(ID_ACTE)),
    "demande_classification": ("7-1", lambda: xb.build_demande_classification(DAY)),
    "demande_classification_no_date": ("7-1", lambda: xb.build_demande_classification()),
    "retour_classification": (
        "7-2",
        lambda: build_retour_classification(
            parse_retour_classification(sample_bytes("exemple_codes_matieres.xml"))
        ),
    ),
    "classification_sans_changement": (
        "7-3",
        lambda: pb.build_reponse_classification_sans_changement(DAY),
    ),
    "envelope_cl": ("enveloppe-cl", _envelope_cl),
    "envelope_cl_no_referent": (
        "enveloppe-cl",
        lambda: xb.build_envelope_cl("214400152", "02A", 0, 1, ["m_0.xml"], ["a@b.fr"]),
    ),
    "envelope_pref": (
        "enveloppe-misill",
        lambda: pb.build_envelope_pref("044", "214400152", ["044-214400152----1-3_1.xml"]),
    ),
    "envelope_sous_pref": (
        "enveloppe-misill",
        lambda: pb.build_envelope_pref(
            "044",
            "214400152",
            ["a_1.xml", "b_1.xml"],
            emitter="sous-pref",
            arrondissement=1,
            referent=xb.Referent(nom="Bureau du contrôle de légalité"),
        ),
    ),
    "envelope_sgar": (
        "enveloppe-misill",
        lambda: pb.build_envelope_pref("974", "214400152", ["x_1.xml"], emitter="sgar"),
    ),
    "anomalie_enveloppe": (
        "anomalie-enveloppe",
        lambda: pb.build_anomalie_enveloppe(DAY, "002", "Enveloppe incomplète", _envelope_cl()),
    ),
}


@pytest.fixture(params=sorted(BUILDERS))
def built(request: pytest.FixtureRequest) -> tuple[str, bytes]:
    type_code, builder = BUILDERS[request.param]
    return type_code, builder()


def test_every_builder_output_is_schema_valid(built: tuple[str, bytes]) -> None:
    _, xml = built
    assert validate_actes_xml(xml) == []


def test_every_builder_output_is_latin1_with_prefixes(built: tuple[str, bytes]) -> None:
    type_code, xml = built
    assert xml.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")
    root = etree.fromstring(xml)
    assert root.prefix == "actes"
    assert etree.QName(root).namespace == ACTES_NS
    for element in root.iter():
        assert element.prefix == "actes", element.tag
        for key in element.attrib:
            namespace = etree.QName(key).namespace
            assert namespace in {ACTES_NS, INSEE_NS, XSI_NS}, (element.tag, key)
    assert parse_message(xml).type_code == type_code


def test_attributes_are_written_qualified() -> None:
    acte = _acte_xml()
    assert b'actes:Date="2018-10-01"' in acte
    assert b'actes:NumeroInterne="123456"' in acte
    assert b'actes:Nombre="1"' in acte
    ar = pb.build_ar_acte(ID_ACTE, DAY, make_meta(), DAY)
    assert f'actes:IDActe="{ID_ACTE}"'.encode() in ar
    envelope = _envelope_cl()
    assert b'insee:SIREN="214400152"' in envelope
    assert b'actes:Nature="31"' in envelope


def test_the_validator_is_strict() -> None:
    acte = _acte_xml()
    unprefixed = acte.replace(b'actes:Date="', b'Date="')
    assert validate_actes_xml(unprefixed)
    without_papier = acte.replace(b"<actes:DocumentPapier>0</actes:DocumentPapier>", b"")
    assert any("DocumentPapier" in e for e in validate_actes_xml(without_papier))
    assert validate_actes_xml(b"<not-xml")[0].startswith("not well-formed")
    with pytest.raises(ValidationError) as caught:
        assert_valid(without_papier)
    assert caught.value.reasons and caught.value.reasons[0].code == "schema"


def test_all_three_schema_files_are_used() -> None:
    # insee:SIREN is typed in siret.xsd from a type of insee-commun.xsd (digits only).
    envelope = _envelope_cl().replace(b'insee:SIREN="214400152"', b'insee:SIREN="21440015X"')
    assert any("SIREN" in e for e in validate_actes_xml(envelope))


def test_latin1_objet_round_trips() -> None:
    objet = "Délibération : éclairage public, crèche « Les Pâquerettes », 3 000 €"
    xml = xb.build_acte(make_meta(objet=objet))
    assert "Délibération".encode("iso-8859-1") in xml  # one byte per é, not UTF-8
    fields = parse_message(xml).fields
    assert fields["objet"] == objet.replace("€", "EUR")


def test_characters_outside_latin1_are_folded_or_refused() -> None:
    xml = xb.build_acte(make_meta(objet="Restauration de l’œuvre – phase 2"))
    assert parse_message(xml).fields["objet"] == "Restauration de l'oeuvre - phase 2"
    assert b"&#" not in xml  # nothing written as a character reference
    with pytest.raises(ValidationError) as caught:
        xb.build_acte(make_meta(objet="Jumelage avec 成都"))
    assert [(r.field, r.code) for r in caught.value.reasons] == [("objet", "charset")]
    with pytest.raises(ValidationError) as caught:
        pb.build_lettre_observations(ID_ACTE, DAY, "Motif 🙂", "l.pdf")
    assert caught.value.reasons[0].field == "motif"


def test_builders_refuse_bad_input_with_reasons() -> None:
    with pytest.raises(ValidationError) as caught:
        xb.build_acte(make_meta(siren="214400153", matieres=(1,)))
    assert {r.field for r in caught.value.reasons} == {"siren", "matieres"}
    with pytest.raises(ValidationError) as caught:
        pb.build_courrier_simple("44-214400152-20181001-1-DE", DAY, "c.pdf")
    assert caught.value.reasons[0].field == "id_acte"
    with pytest.raises(ValidationError):
        pb.build_anomalie_acte(ID_ACTE, DAY, "2", None, make_meta(), DAY)
    with pytest.raises(ValidationError):  # the schema has no 999, which real traffic shows
        pb.build_anomalie_enveloppe(DAY, "999", None, _envelope_cl())
    with pytest.raises(ValidationError):  # the Email pattern of the schema
        xb.build_envelope_cl("214400152", "044", 1, 31, ["m.xml"], ["not-an-email"])
    with pytest.raises(ValidationError):
        pb.build_envelope_pref("044", "214400152", ["m.xml"], emitter="sous-pref")
    with pytest.raises(ValidationError):
        pb.build_ar_acte(ID_ACTE, DAY, sample_bytes("s2low_EACT--214502494--20170717-6.xml"), DAY)


# --- Transmission archive ---------------------------------------------------------------


def _transmission(**changes: object) -> tuple[ActeMetadata, dict[str, bytes]]:
    meta = make_meta(
        main_file="deliberation.PDF",
        annex_files=("plan.pdf", "budget.xml"),
        main_typology="99_DE",
        annex_typologies=("01_01",),
        **changes,
    )
    documents = {
        "deliberation.PDF": b"%PDF-1.4 main",
        "plan.pdf": b"%PDF plan",
        "budget.xml": b"<b/>",
    }
    return meta, documents


def test_build_transmission_lays_out_files_like_a_tdt() -> None:
    meta, documents = _transmission()
    transmission = build_transmission(
        meta,
        documents,
        trigram="SIC",
        transmission_date=DAY,
        sequence=9,
        arrondissement=1,
        nature_collectivite=31,
        return_emails=["greffe@mairie.example.fr"],
    )
    base = "044-214400152-20181012-123456-DE-1-1"  # transmission date, not decision date
    assert transmission.id_acte == ID_ACTE  # the IDActe carries the decision date
    assert transmission.archive_name == "SIC-EACT--214400152--20181012-9.tar.gz"
    assert transmission.envelope_name == "EACT--214400152--20181012-9.xml"
    assert transmission.member_names == (
        "EACT--214400152--20181012-9.xml",
        f"{base}_0.xml",
        f"99_DE-{base}_1.pdf",
        f"01_01-{base}_2.pdf",
        f"CO_DE-{base}_3.xml",
    )
    assert transmission.archive_bytes[:2] == b"\x1f\x8b"
    members = read_transmission(transmission.archive_bytes)
    assert tuple(members) == transmission.member_names
    assert members[f"99_DE-{base}_1.pdf"] == b"%PDF-1.4 main"
    assert members[f"CO_DE-{base}_3.xml"] == b"<b/>"

    envelope, message = members[transmission.envelope_name], members[f"{base}_0.xml"]
    assert validate_actes_xml(envelope) == []
    assert validate_actes_xml(message) == []
    assert parse_message(envelope).fields["file_names"] == [f"{base}_0.xml"]
    acte = parse_message(message).fields
    assert acte["document"] == f"99_DE-{base}_1.pdf"
    assert acte["annexes"] == [f"01_01-{base}_2.pdf", f"CO_DE-{base}_3.xml"]
    assert acte["decision_date"] == "2018-10-01"
    assert transmission.metadata.main_file == f"99_DE-{base}_1.pdf"


def test_build_transmission_is_reproducible_and_checked() -> None:
    meta, documents = _transmission()
    kwargs: dict[str, object] = {
        "trigram": "SIC",
        "transmission_date": DAY,
        "sequence": 1,
        "arrondissement": 1,
        "nature_collectivite": 31,
        "return_emails": ["a@b.fr"],
    }
    first = build_transmission(meta, documents, **kwargs)  # type: ignore[arg-type]
    second = build_transmission(meta, documents, **kwargs)  # type: ignore[arg-type]
    assert first.archive_bytes == second.archive_bytes
    with pytest.raises(ValidationError) as caught:
        build_transmission(
            meta,
            {"deliberation.PDF": b"x"},
            **{**kwargs, "trigram": "sic"},  # type: ignore[arg-type]
        )
    assert {r.field for r in caught.value.reasons} >= {"trigram", "annex_files[0]"}


def test_read_transmission_refuses_paths_and_garbage() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../evil.xml")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValidationError):
        read_transmission(gzip.compress(buffer.getvalue()))
    with pytest.raises(ValidationError):
        read_transmission(b"not an archive")
    with pytest.raises(ValidationError):
        read_transmission(pack_archive([("a.xml", b"x" * 100)]), max_bytes=10)


# --- Reference folder ---------------------------------------------------------------------


def test_reference_folder_is_found_beside_the_repository() -> None:
    assert (reference_dir() / "actes" / "actesv1_1.xsd").is_file()


def test_missing_reference_folder_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(REFERENCE_DIR_ENV, str(tmp_path / "absent"))
    with pytest.raises(ConfigurationError, match=REFERENCE_DIR_ENV):
        reference_dir()
    monkeypatch.setenv(REFERENCE_DIR_ENV, str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"actesv1_1\.xsd"):
        validate_actes_xml(b"<x/>")
