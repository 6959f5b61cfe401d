"""Each member's current @CTES classification: fetched from its TdT, kept in a compacted
topic, refreshed on demand and dropped when an anomaly says it is stale.

The TdT may answer a refresh with a 7-3 ``ReponseClassificationSansChangement``
("classification unchanged") instead of a 7-2 ``RetourClassification``: the kept
classification is then current and stays as it is."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import structlog

from agents.acts.deps import ActsDeps
from relais.actes.classification import Classification, parse_retour_classification
from relais.actes.codes import NATURE_BY_CODE
from relais.actes.xml_parse import parse_message
from relais.errors import PartnerReplyError, RelaisError
from relais.members.model import Member
from relais.wire.headers import EventHeaders
from topics.acts import ACTS_CLASSIFICATIONS

log = structlog.get_logger(__name__)


class ParsedClassifications:
    """Each member's classification parsed once per snapshot XML, bounded.

    Every acte of a member is checked against the same kept snapshot, so parsing its XML
    for each acte is wasted work (a fifth of acts-validation's CPU). An entry holds the
    XML it was parsed from and serves only that exact XML (the same object, or equal
    bytes): a refreshed or forgotten snapshot is parsed anew, never served stale. At most
    ``max_members`` entries and ``max_bytes`` of XML are kept, the least recently used
    dropped first. ``Classification`` is immutable, so one parsed value is shared.
    """

    def __init__(self, max_members: int = 2048, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_members = max_members
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[bytes, Classification]] = OrderedDict()
        self._bytes = 0
        self.parsed = 0
        """How many times an XML was parsed (misses), for tests and profiles."""

    def get(self, siren: str, xml: bytes) -> Classification:
        """The classification ``xml`` holds, parsed at most once while it stays kept."""
        entry = self._entries.get(siren)
        if entry is not None and (entry[0] is xml or entry[0] == xml):
            self._entries.move_to_end(siren)
            return entry[1]
        classification = parse_retour_classification(xml)
        self.parsed += 1
        self._drop(siren)
        if len(xml) <= self.max_bytes:
            self._entries[siren] = (xml, classification)
            self._bytes += len(xml)
            while len(self._entries) > self.max_members or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
        return classification

    def _drop(self, siren: str) -> None:
        entry = self._entries.pop(siren, None)
        if entry is not None:
            self._bytes -= len(entry[0])

    def __len__(self) -> int:
        return len(self._entries)


PARSED = ParsedClassifications()
"""The process's parsed classifications (keyed by member and the exact snapshot XML)."""


def snapshot_record(siren: str, xml: bytes, classification: Classification) -> dict[str, Any]:
    return {
        "member_siren": siren,
        "date_version": classification.date_version,
        "xml": xml,
        "fetched_at": datetime.now(UTC),
    }


UNCHANGED = "7-3"


def is_unchanged_answer(xml: bytes) -> bool:
    """True when ``xml`` is a 7-3 ``ReponseClassificationSansChangement``."""
    try:
        return parse_message(xml).type_code == UNCHANGED
    except RelaisError:
        return False


async def refresh_classification(deps: ActsDeps, member: Member) -> Classification:
    """Fetch the member's classification from its TdT and publish the snapshot.

    A 7-3 answer keeps the current snapshot (nothing is published).
    """
    connector = deps.connectors.for_member(member)
    xml = await connector.fetch_classification()
    if is_unchanged_answer(xml):
        kept = deps.classifications.get(member.siren)
        if kept is None:
            raise PartnerReplyError(
                f"the TdT of member {member.siren} answered that its classification is "
                "unchanged (7-3), but Relais keeps none for it yet: ask the TdT to send the "
                "classification (7-2)", partner="tdt",
            )
        log.info("acts.classification_unchanged", member=member.siren)
        return PARSED.get(member.siren, kept["xml"])
    try:
        classification = PARSED.get(member.siren, xml)
    except RelaisError as exc:
        raise PartnerReplyError(
            f"the TdT's classification is unreadable: {exc}", partner="tdt"
        ) from exc
    record = snapshot_record(member.siren, xml, classification)
    await deps.journal.publish(
        ACTS_CLASSIFICATIONS.name, key=member.siren, schema_name="ClassificationSnapshot",
        record=record,
        headers=EventHeaders.new(
            source="/relais/hub/acts-classification", type="fr.relais.acts.ClassificationSnapshot",
            subject=member.siren, flow_id=None,
        ),
    )
    deps.classifications.put_local(member.siren, record)
    log.info("acts.classification_refreshed", member=member.siren,
             date_version=classification.date_version.isoformat())
    return classification


async def current_classification(deps: ActsDeps, member: Member) -> Classification:
    """The member's classification, fetched from its TdT when none is kept."""
    snapshot = deps.classifications.get(member.siren)
    if snapshot is not None:
        return PARSED.get(member.siren, snapshot["xml"])
    return await refresh_classification(deps, member)


async def forget_classification(deps: ActsDeps, siren: str) -> None:
    """Drop a stale snapshot (tombstone); the next acte of the member fetches a new one."""
    await deps.journal.publish_raw(
        ACTS_CLASSIFICATIONS.name, key=siren, value=None,
        headers=EventHeaders.new(source="/relais/hub/acts-classification", type="tombstone",
                                 subject=siren, flow_id=None),
    )
    deps.classifications.put_local(siren, None)


def default_typology_code(classification: Classification | None, nature_code: int) -> str:
    """The typology used when a member gives none: the nature's first ``99_`` code in the
    classification (as TdT clients do), else ``99_<abbreviation>``."""
    nature = classification.nature(nature_code) if classification is not None else None
    if nature is not None and nature.typologies:
        codes = sorted(t.code for t in nature.typologies)
        preferred = [code for code in codes if code.startswith("99_")]
        return (preferred or codes)[0]
    abbreviation = NATURE_BY_CODE[nature_code].abbreviation if nature_code in NATURE_BY_CODE \
        else "AU"
    return f"99_{abbreviation}"


def kept_classification(deps: ActsDeps, siren: str) -> Classification | None:
    snapshot = deps.classifications.get(siren)
    return PARSED.get(siren, snapshot["xml"]) if snapshot is not None else None
