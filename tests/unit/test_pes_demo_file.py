"""The PES_Aller the demo and the integration test build (ops/demo_pes.py) passes Relais's
checks and the sandbox S²LOW's, and the sandbox comptable accepts it whole."""

from __future__ import annotations

from datetime import timedelta

from ops.demo_pes import PesHeader, pes_aller
from relais.identifiers import is_valid_siret
from relais.pes.acquit import AcquitOutcome, read_acquit
from relais.pes.aller import read_aller
from relais.pes.checks import PesPolicy, check_aller
from tests.unit.test_helios_sandbox import helios
from tests.unit.test_pes_checks import signed_whole_file

SIREN = "243100633"  # the sandbox account "sicoval"


def test_the_built_file_reads_back_and_passes_the_checks() -> None:
    raw = pes_aller(PesHeader(SIREN), "DEMOFILE1", bordereaux=3, first_number=40)
    pes = read_aller(raw)
    assert raw.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")
    assert (pes.nom_fic, pes.cod_col, pes.cod_bud, pes.id_post) == (
        "DEMOFILE1", "101", "01", "021001")
    assert pes.id_coll is not None and is_valid_siret(pes.id_coll)
    assert pes.id_coll[:9] == SIREN
    assert [(b.id_bord, b.exercice) for b in pes.bordereaux] == [
        ("40", "2026"), ("41", "2026"), ("42", "2026")]
    assert check_aller(pes, SIREN) == []
    assert [r.code for r in check_aller(pes, "210600235")] == ["pes_idcoll_not_member"]
    signed = signed_whole_file(unsigned=raw)
    assert check_aller(read_aller(signed), SIREN, PesPolicy(signature_required=True)) == []


async def test_the_sandbox_comptable_accepts_every_bordereau() -> None:
    async with helios() as box:
        raw = pes_aller(PesHeader(SIREN), "DEMOFILE2", bordereaux=2, first_number=7)
        imported = await box.connector.import_pes(raw, "demo.xml")
        box.clock.now += timedelta(seconds=11)
        acquit = read_acquit(await box.connector.get_acquit(imported.transaction_id))
        assert acquit.outcome is AcquitOutcome.ACKNOWLEDGED
        assert [(e.bordereau, e.exercice) for e in acquit.elements] == [
            ("7", "2026"), ("8", "2026")]
