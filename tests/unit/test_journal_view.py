"""JournalView and JournalIndex: lookups by flow-specific key and by partner reference."""

from __future__ import annotations

from relais.journal.entry import JournalEntry, Step
from relais.journal.view import JournalIndex, JournalView
from relais.wire.avro_codec import AvroCodec
from topics.journal import DELIVERY_JOURNAL

SIREN = "217500016"


def _entry(flow_id: str, step: Step = "VALIDATED", *, flow_type: str = "acte",
           ref: str | None = None, id_acte: str = "A-1") -> JournalEntry:
    return JournalEntry(flow_id=flow_id, flow_type=flow_type, member_siren=SIREN,
                        partner="tdt", step=step, idempotency_key=f"{flow_id}:post",
                        account="https://tdt.example.org", partner_ref=ref,
                        keys={"id_acte": id_acte, "numero_interne": "N-1"})


def test_only_the_keys_a_flow_asks_for_are_indexed() -> None:
    index = JournalIndex({"acte": ("id_acte",)})
    index.update("f1", _entry("f1"))
    index.update("f2", _entry("f2", flow_type="pes", id_acte="A-2"))
    assert index.flow_of(SIREN, "id_acte", "A-1") == "f1"
    assert index.flow_of(SIREN, "numero_interne", "N-1") is None
    assert index.flow_of(SIREN, "id_acte", "A-2") is None  # pes flows asked for no key
    assert index.flow_of("000000000", "id_acte", "A-1") is None


def test_refused_frees_the_key_only_for_its_own_flow() -> None:
    index = JournalIndex({"acte": ("id_acte",)})
    index.update("f1", _entry("f1"))
    index.update("f1", _entry("f1", "REFUSED"))
    assert index.flow_of(SIREN, "id_acte", "A-1") is None
    index.update("f2", _entry("f2"))
    index.update("f1", _entry("f1", "REFUSED"))  # an old refusal replayed: f2 keeps it
    assert index.flow_of(SIREN, "id_acte", "A-1") == "f2"


def test_partner_reference_lookup() -> None:
    index = JournalIndex({})
    index.update("f1", _entry("f1", "POSTED", ref="4242"))
    assert index.flow_of_partner_ref("https://tdt.example.org", "4242") == "f1"
    assert index.flow_of_partner_ref("https://other.example.org", "4242") is None


def test_the_view_reads_journal_records_and_keeps_its_own_writes() -> None:
    codec = AvroCodec()
    view = JournalView("127.0.0.1:1", codec, {"acte": ("id_acte",)})  # never started
    assert view.view.topic == DELIVERY_JOURNAL.name
    posted = _entry("f1", "POSTED", ref="4242")
    view.view.apply(b"f1", codec.encode("JournalEntry", posted.to_record()))
    got = view.get("f1")
    assert got is not None and (got.step, got.partner_ref, got.keys["id_acte"]) == \
        ("POSTED", "4242", "A-1")
    assert view.flow_of(SIREN, "id_acte", "A-1") == "f1"
    assert view.flow_of_partner_ref("https://tdt.example.org", "4242") == "f1"
    view.put_local(_entry("f2", "POSTING", id_acte="A-2"))
    assert view.flow_of(SIREN, "id_acte", "A-2") == "f2"


def test_a_flow_keeps_one_entry_per_partner() -> None:
    codec = AvroCodec()
    view = JournalView("127.0.0.1:1", codec, {"acte": ("id_acte",)})  # never started
    tdt = _entry("f1", "POSTED", ref="4242")
    signed = JournalEntry(flow_id="f1", flow_type="acte", member_siren=SIREN,
                          partner="iparapheur", step="POSTED", idempotency_key="f1:sign",
                          account="https://parapheur.example.org", partner_ref="D-1")
    view.view.apply(tdt.journal_key.encode(), codec.encode("JournalEntry", tdt.to_record()))
    view.put_local(signed)
    assert tdt.journal_key == "f1/tdt"
    got_tdt, got_sig = view.get("f1", "tdt"), view.get("f1", "iparapheur")
    assert got_tdt is not None and got_tdt.partner_ref == "4242"
    assert got_sig is not None and got_sig.partner_ref == "D-1"
    assert view.get("f1", "archive") is None
    try:
        view.get("f1")
    except ValueError as exc:
        assert "name the partner" in str(exc)
    else:
        raise AssertionError("an ambiguous lookup must fail")


def test_records_keyed_by_the_bare_flow_id_are_still_found() -> None:
    codec = AvroCodec()
    view = JournalView("127.0.0.1:1", codec, {})
    view.view.apply(b"f9", codec.encode("JournalEntry", _entry("f9", "POSTED").to_record()))
    assert view.get("f9", "tdt") is not None
    assert view.get("f9") is not None
    assert view.get("f9", "iparapheur") is None
