"""The delivery journal's view with the PES lookups (content digest, NomFic) and the
entries themselves (the highest Hélios transaction id an account is known to hold)."""

from __future__ import annotations

from agents.pes.deps import JOURNAL_KEYS
from relais.journal.entry import JournalEntry
from relais.journal.view import JournalView
from relais.wire.avro_codec import AvroCodec


class PesJournal(JournalView):
    def __init__(self, bootstrap_servers: str, codec: AvroCodec) -> None:
        super().__init__(bootstrap_servers, codec, JOURNAL_KEYS)

    def entries(self) -> list[JournalEntry]:
        return self.view.values()


def high_water(entries: list[JournalEntry], account: str | None) -> int:
    """The highest Hélios transaction id the journal knows for ``account`` (0: none)."""
    found = [
        int(ref) for entry in entries
        if entry.flow_type == "pes" and entry.account == account
        for ref in (entry.partner_ref, entry.keys.get("after_id"))
        if ref is not None and ref.isdigit()
    ]
    return max(found, default=0)
