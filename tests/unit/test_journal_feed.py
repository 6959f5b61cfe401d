"""The journal views of one process share one reader of the topic (``_JournalFeed``):
each record is decoded once and applied to every view, while each view keeps its own
local writes, lookups and take-backs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relais.journal import view as journal_view
from relais.journal.entry import JournalEntry, Step
from relais.journal.view import JournalView
from relais.kafka.compacted_view import CompactedView
from relais.stages import local_writes
from relais.wire.avro_codec import AvroCodec

SIREN = "217500016"


def _entry(flow_id: str, step: Step = "VALIDATED", *, flow_type: str = "acte",
           id_acte: str = "A-1") -> JournalEntry:
    return JournalEntry(flow_id=flow_id, flow_type=flow_type, member_siren=SIREN,
                        partner="tdt", step=step, idempotency_key=f"{flow_id}:post",
                        account="https://tdt.example.org", keys={"id_acte": id_acte})


class CountingCodec(AvroCodec):
    """Counts the values decoded (one per record per reader)."""

    decoded = 0

    def decode(self, data: bytes, expected: str | None = None):  # type: ignore[no-untyped-def]
        CountingCodec.decoded += 1
        return super().decode(data, expected)


@pytest.fixture
def readers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[CompactedView[JournalEntry]]]:
    """No broker: each started reader is recorded; starting it reads nothing."""
    started: list[CompactedView[JournalEntry]] = []
    stopped: list[CompactedView[JournalEntry]] = []

    async def start(self: CompactedView[JournalEntry], timeout: float = 120.0) -> None:
        started.append(self)
        self.ready.set()

    async def stop(self: CompactedView[JournalEntry]) -> None:
        stopped.append(self)

    monkeypatch.setattr(CompactedView, "start", start)
    monkeypatch.setattr(CompactedView, "stop", stop)
    yield started
    assert not journal_view._FEEDS, "every feed is stopped with its last view"
    assert sorted(map(id, stopped)) == sorted(map(id, started))


async def test_views_share_one_reader_and_each_record_is_decoded_once(
    readers: list[CompactedView[JournalEntry]],
) -> None:
    codec = CountingCodec()
    acts = JournalView("broker:9092", codec, {"acte": ("id_acte",)})
    archive = JournalView("broker:9092", codec, {})
    await acts.start()
    await archive.start()
    assert len(readers) == 1
    before = CountingCodec.decoded
    posted = _entry("f1", "POSTED")
    readers[0].apply(b"f1/tdt", codec.encode("JournalEntry", posted.to_record()))
    assert CountingCodec.decoded - before == 1
    for view in (acts, archive):
        got = view.get("f1", "tdt")
        assert got is not None and got.step == "POSTED"
    assert acts.flow_of(SIREN, "id_acte", "A-1") == "f1"
    assert archive.flow_of(SIREN, "id_acte", "A-1") is None  # its own lookups only
    readers[0].apply(b"f1/tdt", None)  # a tombstone reaches every view
    assert acts.get("f1", "tdt") is None and archive.get("f1", "tdt") is None
    await acts.stop()
    await archive.stop()


async def test_a_local_write_stays_in_its_view_and_is_taken_back_there(
    readers: list[CompactedView[JournalEntry]],
) -> None:
    codec = AvroCodec()
    acts = JournalView("broker:9092", codec, {"acte": ("id_acte",)})
    other = JournalView("broker:9092", codec, {"acte": ("id_acte",)})
    await acts.start()
    await other.start()
    writes: list[local_writes.Undo] = []
    with local_writes.collect(writes):
        acts.put_local(_entry("f2", "POSTED", id_acte="A-2"))
    assert acts.get("f2", "tdt") is not None
    assert other.get("f2", "tdt") is None  # uncommitted: seen by its own stage only
    local_writes.undo(writes)  # the batch failed
    assert acts.get("f2", "tdt") is None
    # the broker's record (read by the feed's own task, outside any batch) replaces a
    # local write and is not taken back with it
    with local_writes.collect(writes):
        acts.put_local(_entry("f3", "POSTING", id_acte="A-3"))
    readers[0].apply(b"f3/tdt", codec.encode("JournalEntry",
                                              _entry("f3", "POSTED", id_acte="A-3")
                                              .to_record()))
    local_writes.undo(writes)
    for view in (acts, other):
        got = view.get("f3", "tdt")
        assert got is not None and got.step == "POSTED"
    await acts.stop()
    await other.stop()


async def test_a_view_started_later_sees_every_entry_read_before(
    readers: list[CompactedView[JournalEntry]],
) -> None:
    codec = AvroCodec()
    first = JournalView("broker:9092", codec, {"acte": ("id_acte",)})
    await first.start()
    readers[0].apply(b"f4/tdt", codec.encode("JournalEntry", _entry("f4", id_acte="A-4")
                                             .to_record()))
    first.put_local(_entry("f5", id_acte="A-5"))  # a local write is not copied
    late = JournalView("broker:9092", codec, {"acte": ("id_acte",)})
    await late.start()
    assert late.flow_of(SIREN, "id_acte", "A-4") == "f4"
    assert late.get("f5", "tdt") is None
    await first.stop()
    assert len(readers) == 1  # still read for the late view
    readers[0].apply(b"f6/tdt", codec.encode("JournalEntry", _entry("f6", id_acte="A-6")
                                             .to_record()))
    assert late.flow_of(SIREN, "id_acte", "A-6") == "f6"
    await late.stop()


async def test_other_brokers_and_codecs_get_readers_of_their_own(
    readers: list[CompactedView[JournalEntry]],
) -> None:
    codec = AvroCodec()
    views = [JournalView("a:9092", codec), JournalView("b:9092", codec),
             JournalView("a:9092", AvroCodec())]
    for view in views:
        await view.start()
    assert len(readers) == 3
    for view in views:
        await view.stop()


async def test_a_failed_start_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    async def failing(self: CompactedView[JournalEntry], timeout: float = 120.0) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("no broker")

    async def stop(self: CompactedView[JournalEntry]) -> None:
        return None

    monkeypatch.setattr(CompactedView, "start", failing)
    monkeypatch.setattr(CompactedView, "stop", stop)
    view = JournalView("broker:9092", AvroCodec())
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await view.start()
    assert calls == 2  # the second start tried again
    assert not journal_view._FEEDS
