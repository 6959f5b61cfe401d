"""``JournalView``: the delivery journal read whole and followed, with lookups by a
flow-specific key and by the partner's reference.

Entries are keyed ``<flow_id>/<partner>`` (:func:`relais.journal.entry.journal_key`):
one flow may hold an entry per partner (its i-Parapheur signature and its TdT delivery).
Records written before that change, keyed by the bare flow id, are still found.

A worker holds several such views (the acts', the signature's, the PES and archive
flows'), each with its own lookups and its own local writes; they share one reader of
the topic (:class:`_JournalFeed`): each journal record is fetched and decoded once per
process, not once per view, then applied to every view as its own consumer would have."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from relais.journal.entry import JournalEntry, journal_key
from relais.kafka.compacted_view import CompactedView
from relais.stages import local_writes
from relais.wire.avro_codec import AvroCodec
from topics.journal import DELIVERY_JOURNAL


class JournalIndex:
    """The lookups, kept up to date from every entry seen (no Kafka: unit-testable).

    ``indexed``: flow type → the key names its flows are found by, e.g.
    ``{"acte": ("id_acte",)}``. A REFUSED entry frees its keys (the partner created
    nothing, another flow may use them); its partner reference, if any, stays.
    """

    def __init__(self, indexed: Mapping[str, Iterable[str]]) -> None:
        self._indexed = {flow_type: tuple(names) for flow_type, names in indexed.items()}
        self._by_key: dict[tuple[str, str, str], str] = {}
        self._by_ref: dict[tuple[str, str], str] = {}
        self._partners: dict[str, set[str]] = {}

    def update(self, key: str, entry: JournalEntry | None) -> None:
        """Index ``entry`` (the record keyed ``key``; a tombstone changes nothing)."""
        if entry is None:
            return
        flow_id = entry.flow_id
        self._partners.setdefault(flow_id, set()).add(entry.partner)
        for name in self._indexed.get(entry.flow_type, ()):
            value = entry.keys.get(name)
            if value is None:
                continue
            slot = (entry.member_siren, name, value)
            if entry.step == "REFUSED":
                if self._by_key.get(slot) == flow_id:
                    del self._by_key[slot]
            else:
                self._by_key[slot] = flow_id
        if entry.step != "REFUSED" and entry.account and entry.partner_ref:
            self._by_ref[(entry.account, entry.partner_ref)] = flow_id

    def flow_of(self, member_siren: str, key_name: str, value: str) -> str | None:
        return self._by_key.get((member_siren, key_name, value))

    def flow_of_partner_ref(self, account: str, partner_ref: str) -> str | None:
        return self._by_ref.get((account, partner_ref))

    def partners_of(self, flow_id: str) -> frozenset[str]:
        """The partners the flow has journal entries for."""
        return frozenset(self._partners.get(flow_id, ()))


class _JournalFeed:
    """The journal topic read once for every :class:`JournalView` of a process on the same
    broker, codec and event loop (``base``: the broker's records only, no local write).

    A view that subscribes gets a copy of every entry read so far, then each record as
    ``base`` applies it, in the same order: what its own consumer would have applied.
    Local writes stay in each view (``put_local``), so a stage's uncommitted writes are
    seen by that stage only, as before."""

    def __init__(self, bootstrap_servers: str, codec: AvroCodec,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop  # held: its id, in the key, cannot be reused while the feed lives
        self.base: CompactedView[JournalEntry] = CompactedView(
            bootstrap_servers, codec, topic=DELIVERY_JOURNAL.name,
            schema_name=DELIVERY_JOURNAL.value_schema, parse=JournalEntry.from_record,
            on_change=self.apply,
        )
        self.entries: dict[str, JournalEntry] = {}
        self.views: list[CompactedView[JournalEntry]] = []
        self.users = 0
        self.started: asyncio.Task[None] | None = None

    def apply(self, key: str, entry: JournalEntry | None) -> None:
        """``base`` applied a broker record: every view applies it too."""
        if entry is None:
            self.entries.pop(key, None)
        else:
            self.entries[key] = entry
        with local_writes.durable():  # the broker's record, never taken back
            for view in self.views:
                view.put_local(key, entry)

    def subscribe(self, view: CompactedView[JournalEntry]) -> None:
        with local_writes.durable():
            for key, entry in self.entries.items():
                view.put_local(key, entry)
        self.views.append(view)

    def unsubscribe(self, view: CompactedView[JournalEntry]) -> None:
        if view in self.views:
            self.views.remove(view)


_FeedKey = tuple[str, int, int]
#: The running feeds, by (bootstrap servers, codec, event loop) identity.
_FEEDS: dict[_FeedKey, _JournalFeed] = {}


class JournalView:
    """The delivery journal topic as a table: (flow id, partner) → latest entry, plus the
    index."""

    def __init__(
        self, bootstrap_servers: str, codec: AvroCodec,
        indexed: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._codec = codec
        self._feed: tuple[_FeedKey, _JournalFeed] | None = None
        self.index = JournalIndex(indexed or {})
        self.view: CompactedView[JournalEntry] = CompactedView(
            bootstrap_servers, codec, topic=DELIVERY_JOURNAL.name,
            schema_name=DELIVERY_JOURNAL.value_schema, parse=JournalEntry.from_record,
            on_change=self.index.update,
        )

    def get(self, flow_id: str, partner: str | None = None) -> JournalEntry | None:
        """The flow's latest entry for ``partner``.

        ``partner`` None (for callers written before the per-partner key) is the flow's
        entry when it has entries for one partner only; ValueError when it has several."""
        if partner is None:
            partners = self.index.partners_of(flow_id)
            if len(partners) > 1:
                raise ValueError(f"flow {flow_id} has journal entries for "
                                 f"{sorted(partners)}: name the partner")
            if not partners:
                return None
            partner = next(iter(partners))
        found = self.view.get(journal_key(flow_id, partner))
        if found is not None:
            return found
        legacy = self.view.get(flow_id)  # keyed by the bare flow id (before the change)
        return legacy if legacy is not None and legacy.partner == partner else None

    def put_local(self, entry: JournalEntry) -> None:
        self.view.put_local(entry.journal_key, entry)

    def flow_of(self, member_siren: str, key_name: str, value: str) -> str | None:
        return self.index.flow_of(member_siren, key_name, value)

    def flow_of_partner_ref(self, account: str, partner_ref: str) -> str | None:
        return self.index.flow_of_partner_ref(account, partner_ref)

    async def start(self) -> None:
        """Returns once every entry written before the process's first journal view
        started is visible; then follows the topic (one reader per process)."""
        loop = asyncio.get_running_loop()
        key = (self._bootstrap, id(self._codec), id(loop))
        feed = _FEEDS.get(key)
        if feed is None:
            feed = _FEEDS[key] = _JournalFeed(self._bootstrap, self._codec, loop)
            feed.started = asyncio.create_task(feed.base.start(), name="journal-feed-start")
        started = feed.started
        assert started is not None
        feed.users += 1
        try:
            await asyncio.shield(started)
        except BaseException:
            if started.done() and _FEEDS.get(key) is feed:
                del _FEEDS[key]  # a failed start: the next view starts a reader of its own
            await self._leave(key, feed)
            raise
        feed.subscribe(self.view)
        self.view.ready.set()
        self._feed = (key, feed)

    async def stop(self) -> None:
        if self._feed is not None:
            key, feed = self._feed
            self._feed = None
            feed.unsubscribe(self.view)
            await self._leave(key, feed)

    @staticmethod
    async def _leave(key: _FeedKey, feed: _JournalFeed) -> None:
        feed.users -= 1
        if feed.users > 0:
            return
        if _FEEDS.get(key) is feed:
            del _FEEDS[key]
        if feed.started is not None and not feed.started.done():
            feed.started.cancel()
        await feed.base.stop()
