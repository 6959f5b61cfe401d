"""Real PES files (shared/reference/pes/samples) parse to the values written in them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.cli.parse_cmd import PES_PARSE_LIMITS, parse_file
from relais.errors import ValidationError
from relais.pes.acquit import AcquitOutcome, read_acquit
from relais.pes.aller import read_aller
from relais.pes.checks import check_aller

SAMPLES = Path(__file__).parents[2] / ".." / "shared" / "reference" / "pes" / "samples"
ALLER = "pastell_PES_ex.xml"
ACQUIT_OK = "s2low_pes_acquit.xml"
ACQUIT_KO = "006111_190130123456-ACK-A3020100_A0000IDL_KO.xml"


def _sample(name: str) -> bytes:
    path = SAMPLES / name
    assert path.is_file(), f"reference sample missing: {path} (needs ../shared/reference)"
    return path.read_bytes()


def test_every_sample_is_covered() -> None:
    assert sorted(p.name for p in SAMPLES.glob("*.xml")) == sorted([ALLER, ACQUIT_OK, ACQUIT_KO])


def test_pastell_pes_aller() -> None:
    pes = read_aller(_sample(ALLER))
    assert (pes.root_id, pes.version, pes.typ_fic, pes.nom_fic) == (
        "SICOVAL201512104", "2", "PESALR2", "SICOVAL201512104")
    assert pes.emetteur_sigle == "Editeur Logica GDA V6.6L0P3R13"
    assert (pes.dte_str, pes.id_post, pes.id_coll, pes.cod_col, pes.cod_bud) == (
        "2015-09-24", "031007", "24310063300011", "100", "00")
    assert pes.libelle_col_bud is None
    assert len(pes.bordereaux) == 1
    bordereau = pes.bordereaux[0]
    assert (bordereau.domain, bordereau.id_attr, bordereau.exercice, bordereau.id_bord,
            bordereau.type_bord, bordereau.declared_pieces, bordereau.pieces) == (
        "depense", "SICOVAL120150924160835111", "2015", "2372", "01", "1", 1)
    assert (pes.piece_count, pes.pj_count, pes.facture_count, pes.signed) == (1, 0, 0, False)
    assert pes.routing == "PES#100#031007#00"
    assert check_aller(pes, "243100633") == []


def test_s2low_acquit_every_element_accepted() -> None:
    acquit = read_acquit(_sample(ACQUIT_OK))
    assert acquit.outcome is AcquitOutcome.ACKNOWLEDGED
    assert (acquit.nom_fic, acquit.typ_fic, acquit.id_post, acquit.id_coll, acquit.cod_col,
            acquit.cod_bud, acquit.libelle_col_bud) == (
        "pescg291201703030412001", "PESALR2", "086016", "20004910400025", "400", "01",
        "EAUX DE VIENNE -SIVEER- EAU")
    assert [(e.domain, e.accepted, e.bordereau, e.exercice, e.id_unique)
            for e in acquit.elements] == [
        ("5", True, "1847", "2015", None),
        ("4", True, None, None, "200049104000252015DEPENSE0000087458"),
        ("4", True, None, None, "20004904000252015DEPENSE0000087460"),
        ("4", True, None, None, "200049104000252015DEPENSE0000087461"),
        ("4", True, None, None, "200049104000252015DEPENSE0000087459"),
    ]
    assert all(not e.all_errors() for e in acquit.elements)
    assert acquit.elements[0].domain_label == "dépense"


def test_stela_acquit_with_rejections() -> None:
    acquit = read_acquit(_sample(ACQUIT_KO))
    assert acquit.outcome is AcquitOutcome.PARTIALLY_ACCEPTED
    header = (acquit.nom_fic, acquit.typ_fic, acquit.id_post, acquit.id_coll,
              acquit.libelle_col_bud)
    assert header == (
        "PesDepense-02-2019-5-11112222333344445", "PESALR1", "006111", "01234567890001", "STELA")
    pj, bordereau = acquit.elements
    assert (pj.domain, pj.accepted, pj.id_unique, pj.all_errors()) == (
        "4", True, "2019EC00087654", [])
    assert (bordereau.domain, bordereau.accepted, bordereau.bordereau, bordereau.exercice) == (
        "5", False, "5", "2019")
    assert bordereau.errors == ()
    assert [p.piece for p in bordereau.pieces] == ["20", "21", "22"]
    assert [[line.line for line in p.lines] for p in bordereau.pieces] == [
        ["1", "2", "3"], ["1", "2"], ["1"]]
    errors = bordereau.all_errors()
    assert len(errors) == 6
    assert {e.code for e in errors} == {"ERREUR_AUTRE"}
    assert [e.rule_code for e in errors] == ["1971", "1971", "1971", "1971", "2559", "1971"]
    assert errors[0].label == "1971 - Compte fonction présent à tort"
    assert errors[4].label == (
        "2559 - Le code service de la structure publique destinataire est inconnu ou inactif "
        "dans Chorus Pro")


def test_relais_parse_reads_every_sample() -> None:
    aller = parse_file(SAMPLES / ALLER)
    assert (aller["root"], aller["fields"]["id_coll"], aller["bordereau_count"],
            aller["piece_count"], aller["signed"]) == ("PES_Aller", "24310063300011", 1, 1, False)
    ok = parse_file(SAMPLES / ACQUIT_OK)
    assert (ok["root"], ok["outcome"], len(ok["elements"])) == ("PES_ACQUIT", "acknowledged", 5)
    ko = parse_file(SAMPLES / ACQUIT_KO)
    assert ko["outcome"] == "partially-accepted"
    assert [e["accepted"] for e in ko["elements"]] == [True, False]
    line = ko["elements"][1]["pieces"][1]["lines"][1]
    assert line["errors"][0]["rule_code"] == "2559"


def test_relais_parse_refuses_a_pes_past_its_limits_with_a_clear_message(
        tmp_path: Path) -> None:
    raw = _sample(ALLER)
    start, end = raw.index(b"<Bordereau "), raw.index(b"</Bordereau>") + len(b"</Bordereau>")
    bordereau = raw[start:end]
    copies = PES_PARSE_LIMITS.max_elements // bordereau.count(b"<") + 1
    big = tmp_path / "big.xml"
    big.write_bytes(raw[:start] + bordereau * copies + raw[end:])
    with pytest.raises(ValidationError, match=f"more than {PES_PARSE_LIMITS.max_elements} tags"):
        parse_file(big)
    bomb = tmp_path / "bomb.xml"
    bomb.write_bytes(b'<?xml version="1.0"?><!DOCTYPE n:PES_Aller [<!ENTITY a "aaaa">]>'
                     b'<n:PES_Aller xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/'
                     b'aller">&a;</n:PES_Aller>')
    with pytest.raises(ValidationError, match="DTD refused"):
        parse_file(bomb)
