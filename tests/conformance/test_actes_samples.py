"""Real partner messages (shared/reference/actes/samples) are read leniently and correctly."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from hub.cli.parse_cmd import parse_file
from relais.actes import xml_build as xb
from relais.actes.classification import (
    Classification,
    build_retour_classification,
    default_typology,
    parse_retour_classification,
)
from relais.actes.metadata import ActeMetadata
from relais.actes.xml_parse import parse_message
from relais.actes.xsd import actes_reference_dir, validate_actes_xml
from relais.errors import PartnerReplyError
from sandbox.tdt import prefecture_xml as pb

AR_ACTE = "006-210600235-20180522-684-AI-1-2_5279.xml"
ANOMALIE_ACTE = "044-214400152----1-3_1.xml"
ENVELOPE_PREF = "EACT--SPREF0441-214400152-20181012-9.xml"
CLASSIFICATION = "exemple_codes_matieres.xml"
COURRIER_SIMPLE = "s2low_034-000000000-20170701-20170725A-AI-2-1_0.xml"
ENVELOPE_CL = "s2low_EACT--214502494--20170717-6.xml"

EXPECTED_TYPES = {
    AR_ACTE: ("1-2", "ARActe"),
    ANOMALIE_ACTE: ("1-3", "AnomalieActe"),
    ENVELOPE_PREF: ("enveloppe-misill", "EnveloppeMISILLCL"),
    CLASSIFICATION: ("7-2", "RetourClassification"),
    COURRIER_SIMPLE: ("2-1", "CourrierSimple"),
    ENVELOPE_CL: ("enveloppe-cl", "EnveloppeCLMISILL"),
}


def samples_dir() -> Path:
    return actes_reference_dir() / "samples"


def raw(name: str) -> bytes:
    return (samples_dir() / name).read_bytes()


def test_every_sample_is_known_here() -> None:
    assert {p.name for p in samples_dir().iterdir()} == set(EXPECTED_TYPES)


@pytest.mark.parametrize("name", sorted(EXPECTED_TYPES))
def test_sample_type_and_raw_bytes(name: str) -> None:
    data = raw(name)
    message = parse_message(data)
    assert (message.type_code, message.root) == EXPECTED_TYPES[name]
    assert message.raw == data
    assert message.raw is data


def test_ar_acte() -> None:
    message = parse_message(raw(AR_ACTE))
    assert message.id_acte == "006-210600235-20180522-684-AI"
    f = message.fields
    assert f["reception_date"] == "2018-05-28"
    assert f["current_classification_date"] == "2017-04-19"
    assert f["acte_recu.decision_date"] == "2018-05-22"
    assert f["acte_recu.numero_interne"] == "684"
    assert f["acte_recu.nature_code"] == "3"
    assert f["acte_recu.nature_abbreviation"] == "AI"
    assert f["acte_recu.matieres"] == ["4", "2"]
    assert f["acte_recu.objet"] == "Contrat à durée déterminée - Jean Dupont"
    assert f["acte_recu.document"] == "99_DE-006-210600235-20180522-684-AI-1-1_1.pdf"
    assert f["acte_recu.annexes"] == []
    assert f["acte_recu.annex_count"] == "0"
    assert f["acte_recu.document_papier"] == "0"


def test_anomalie_acte() -> None:
    message = parse_message(raw(ANOMALIE_ACTE))
    assert message.id_acte is None  # the schema gives AnomalieActe no IDActe
    f = message.fields
    assert f["nature"] == "002"
    assert f["date"] == "2018-10-12"
    detail = f["detail"]
    assert isinstance(detail, str)
    assert detail.startswith("ODT-VERIF-01")
    assert "date de classification" in detail and "à jour" in detail
    assert f["current_classification_date"] == "2018-10-10"
    assert f["acte_recu.classification_date"] == "2017-04-19"
    assert f["acte_recu.matieres"] == ["1", "1", "1", "", "1"]  # level 4 is skipped
    assert f["acte_recu.document_papier"] == ""
    assert f["acte_recu.annexes"] == ["01_01-044-214400152-20181012-123456-DE-1-1_2.xml"]


def test_envelope_from_prefecture() -> None:
    f = parse_message(raw(ENVELOPE_PREF)).fields
    assert f["emitter"] == "IDSousPref"
    assert (f["department"], f["arrondissement"], f["siren"]) == ("044", "1", "214400152")
    assert f["file_names"] == ["044-214400152----1-3_1.xml"]
    assert f["referent_nom"] == "Demat SICTIAM"


def test_envelope_from_collectivite() -> None:
    f = parse_message(raw(ENVELOPE_CL)).fields
    assert f["emitter"] == "IDCL"
    assert f["siren"] == "214502494"
    assert (f["department"], f["arrondissement"], f["nature_collectivite"]) == ("045", "1", "31")
    assert f["return_emails"] == ["totoo@toto.org"]
    assert f["file_names"] == ["045-214502494-20170717-D201717-DE-1-1_0.xml"]
    assert f["referent_telephone"] == ""


def test_courrier_simple_with_crlf() -> None:
    data = raw(COURRIER_SIMPLE)
    assert b"\r\n" in data
    message = parse_message(data)
    assert message.id_acte == "034-000000000-20170701-20170725A-AI"
    assert message.fields == {
        "courrier_date": "2017-07-25",
        "document": "034-000000000-20170701-20170725A-AI-2-1_1.pdf",
    }


def test_retour_classification_fields_and_model() -> None:
    data = raw(CLASSIFICATION)
    assert validate_actes_xml(data)  # the sample itself does not validate…
    f = parse_message(data).fields  # …and is still read
    assert f["classification_date"] == "2017-04-19"
    assert f["natures"] == ["6", "2", "3", "4", "5", "1"]
    assert f["nature_abbreviations"] == ["AU", "AR", "AI", "CC", "BF", "DE"]
    assert "7.10" in f["matieres"] and "9" in f["matieres"]

    classification = parse_retour_classification(data)
    assert classification.date_version == date(2017, 4, 19)
    au = classification.nature(6)
    assert au is not None and [t.code for t in au.typologies] == ["55", "45"]
    de = classification.nature(1)
    assert de is not None and (de.abbreviation, de.label, de.typologies) == (
        "DE",
        "Délibérations",
        (),
    )
    assert [m.code for m in classification.matieres] == list(range(1, 10))
    assert classification.matieres[5].label == "Libertés publiques et pourvoirs de police"
    finances = classification.matiere((7,))
    assert finances is not None and len(finances.children) == 10
    assert len(classification.matiere_paths()) == 66  # 9 level-1 and 57 level-2


def test_classification_check() -> None:
    classification = parse_retour_classification(raw(CLASSIFICATION))
    assert classification.check(1, (7, 10)) == []
    assert classification.check(6, (4, 2), ["55", "45"]) == []
    assert [(r.field, r.code) for r in classification.check(6, (4, 2), ["55", "99_AU"])] == [
        ("typologies[1]", "unknown")
    ]
    assert [(r.field, r.code) for r in classification.check(7, (4, 2))] == [
        ("nature_code", "unknown")
    ]
    assert [(r.field, r.code) for r in classification.check(1, (7, 11))] == [
        ("matieres", "unknown")
    ]
    assert [(r.field, r.code) for r in classification.check(1, (7, 1, 1))] == [
        ("matieres", "unknown")
    ]
    assert [(r.field, r.code) for r in classification.check(1, (7,))] == [("matieres", "levels")]


def test_retour_classification_rebuilt_is_valid_and_complete() -> None:
    parsed = parse_retour_classification(raw(CLASSIFICATION))
    rebuilt = build_retour_classification(parsed)
    assert validate_actes_xml(rebuilt) == []
    again = parse_retour_classification(rebuilt)
    filled = Classification(
        parsed.date_version,
        tuple(
            n if n.typologies else type(n)(n.code, n.abbreviation, n.label, (default_typology(n),))
            for n in parsed.natures
        ),
        parsed.matieres,
    )
    assert again == filled
    de = again.nature(1)
    assert de is not None and [t.code for t in de.typologies] == ["99_DE"]


def test_rebuilding_samples_from_their_fields_gives_the_same_reading() -> None:
    sample = parse_message(raw(AR_ACTE))
    f = sample.fields
    meta = ActeMetadata(
        siren="210600235",
        department="006",
        decision_date=date(2018, 5, 22),
        numero_interne=str(f["acte_recu.numero_interne"]),
        nature_code=int(str(f["acte_recu.nature_code"])),
        matieres=tuple(int(c) for c in f["acte_recu.matieres"]),
        objet=str(f["acte_recu.objet"]),
        classification_date=date(2017, 4, 19),
        document_papier=False,
        main_file=str(f["acte_recu.document"]),
    )
    assert sample.id_acte == meta.id_acte
    ours = parse_message(pb.build_ar_acte(meta.id_acte, date(2018, 5, 28), meta, date(2017, 4, 19)))
    assert (ours.id_acte, ours.fields) == (sample.id_acte, sample.fields)

    envelope = parse_message(raw(ENVELOPE_PREF))
    ours = parse_message(
        pb.build_envelope_pref(
            "044",
            "214400152",
            ["044-214400152----1-3_1.xml"],
            emitter="sous-pref",
            arrondissement=1,
            referent=xb.Referent("Demat SICTIAM", "0101010101", "steladevsictiam@gmail.com"),
        )
    )
    assert ours.fields == envelope.fields

    courrier = parse_message(raw(COURRIER_SIMPLE))
    ours = parse_message(
        pb.build_courrier_simple(
            "034-000000000-20170701-20170725A-AI",
            date(2017, 7, 25),
            "034-000000000-20170701-20170725A-AI-2-1_1.pdf",
        )
    )
    assert (ours.id_acte, ours.fields) == (courrier.id_acte, courrier.fields)


def test_anomalie_acte_echoes_the_sample_acte() -> None:
    # Echo the ActeRecu of the real anomaly as a raw Acte, as a prefecture would.
    acte = (
        raw(ANOMALIE_ACTE)
        .replace(b"actes:AnomalieActe", b"actes:X")
        .split(b"<actes:ActeRecu", 1)[1]
        .split(b"</actes:ActeRecu>", 1)[0]
    )
    acte_xml = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\r\n<actes:Acte xmlns:actes='
        b'"http://www.interieur.gouv.fr/ACTES#v1.1-20040216"' + acte + b"</actes:Acte>"
    )
    ours = pb.build_anomalie_acte(
        None,
        date(2018, 10, 12),
        "002",
        "ODT-VERIF-01 : Votre acte a été transmis avec une date de classification qui n'est "
        "pas à jour",
        acte_xml,
        date(2018, 10, 10),
    )
    assert parse_message(ours).fields == parse_message(raw(ANOMALIE_ACTE)).fields


# --- Leniency and hardening ---------------------------------------------------------------

ANOMALIE_ENVELOPPE_999 = (
    b'<?xml version="1.0" encoding="ISO-8859-1"?>\r\n'
    b'<actes:AnomalieEnveloppe xmlns:actes="http://www.interieur.gouv.fr/ACTES#v1.1-20040216" '
    b'xmlns:insee="http://xml.insee.fr/schema">\r\n'
    b"<actes:Date>2018-10-12</actes:Date><actes:Nature>999</actes:Nature>\r\n"
    b"<actes:Detail>ODT-VERIF-17 : la transaction n'est pas reconnue \xe0 la pr\xe9fecture"
    b"</actes:Detail>\r\n<actes:EnveloppeRecue><actes:Emetteur>"
    b'<actes:IDCL insee:SIREN="214400152" actes:Departement="044" actes:Arrondissement="1" '
    b'actes:Nature="31"/></actes:Emetteur><actes:AdressesRetour><actes:Email>a@b.fr'
    b"</actes:Email></actes:AdressesRetour><actes:FormulairesEnvoyes><actes:Formulaire>"
    b"<actes:NomFichier>m_0.xml</actes:NomFichier></actes:Formulaire>"
    b"</actes:FormulairesEnvoyes></actes:EnveloppeRecue></actes:AnomalieEnveloppe>\r\n"
)


def test_anomalie_enveloppe_999_is_read_though_invalid() -> None:
    assert any("999" in e for e in validate_actes_xml(ANOMALIE_ENVELOPPE_999))
    message = parse_message(ANOMALIE_ENVELOPPE_999)
    assert message.type_code == "anomalie-enveloppe"
    assert message.fields["nature"] == "999"
    assert message.fields["detail"] == (
        "ODT-VERIF-17 : la transaction n'est pas reconnue à la préfecture"
    )
    assert message.fields["enveloppe_recue.siren"] == "214400152"
    assert message.fields["enveloppe_recue.file_names"] == ["m_0.xml"]


_NS = b'xmlns:actes="http://www.interieur.gouv.fr/ACTES#v1.1-20040216"'


def _demande_pc(prolog: bytes, objet_free: bytes = b"") -> bytes:
    return (
        prolog + b"<actes:DemandePieceComplementaire " + _NS + b' actes:IDActe="044-214400152-'
        b'20181001-1-DE" actes:DateCourrierPref="2018-10-12"><actes:DescriptionPieces>'
        + objet_free
        + b"</actes:DescriptionPieces></actes:DemandePieceComplementaire>"
    )


def test_windows_1252_and_mislabelled_latin1_are_read() -> None:
    cp1252 = _demande_pc(b'<?xml version="1.0" encoding="windows-1252"?>', b"l\x9cuvre \x80")
    assert parse_message(cp1252).fields["description"] == "lœuvre €"
    mislabelled = _demande_pc(b'<?xml version="1.0" encoding="ISO-8859-1"?>', b"l\x9cuvre")
    assert parse_message(mislabelled).fields["description"] == "lœuvre"
    undeclared = _demande_pc(b"", b"d\xe9lib\xe9ration")
    assert parse_message(undeclared).fields["description"] == "délibération"
    leading_blank = _demande_pc(b'\r\n  <?xml version="1.0" encoding="ISO-8859-1"?>\r\n', b"x")
    assert parse_message(leading_blank).id_acte == "044-214400152-20181001-1-DE"


def test_unprefixed_attributes_are_read() -> None:
    message = parse_message(
        b"<actes:ARAnnulation " + _NS + b' IDActe="044-214400152-20181001-1-DE"'
        b' DateReception="2018-10-13"/>'
    )
    assert message.id_acte == "044-214400152-20181001-1-DE"
    assert message.fields == {"reception_date": "2018-10-13"}


def test_entities_are_not_expanded_and_nothing_is_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xml = (
        b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY big "AAAAAAAAAA">'
        b'<!ENTITY ext SYSTEM "file://' + str(secret).encode() + b'">]>\n'
        b"<actes:DemandePieceComplementaire " + _NS + b' actes:IDActe="044-214400152-20181001-'
        b'1-DE" actes:DateCourrierPref="2018-10-12"><actes:DescriptionPieces>&big;&big;&ext;'
        b"</actes:DescriptionPieces></actes:DemandePieceComplementaire>"
    )
    description = parse_message(xml).fields.get("description", "")
    assert "AAAAAAAAAA" not in description
    assert "TOP-SECRET" not in description


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"OK\n4\n", "not readable XML"),
        (b"<actes:Acte " + _NS + b">", "not readable XML"),
        (b"<actes:Bonjour " + _NS + b"/>", "unknown ACTES message root"),
        (b'<Acte xmlns="urn:other"/>', "not an ACTES message"),
    ],
)
def test_unreadable_input_is_a_partner_reply_error(data: bytes, words: str) -> None:
    with pytest.raises(PartnerReplyError, match=words) as caught:
        parse_message(data)
    assert caught.value.partner == "tdt"
    assert not caught.value.retriable


def test_parse_file_summary_is_json() -> None:
    summary = parse_file(samples_dir() / ANOMALIE_ACTE)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["type_code"] == "1-3"
    assert summary["root"] == "AnomalieActe"
    assert summary["direction"] == "prefecture"
    assert summary["fields"]["nature"] == "002"
    envelope = parse_file(samples_dir() / ENVELOPE_CL)
    assert (envelope["type_code"], envelope["direction"]) == ("enveloppe-cl", "collectivite")
