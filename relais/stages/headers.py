"""Header names Relais adds to records as they move between stages, and reading them safely.

Header values come from outside too (a member's back-office writes its own
records): every reader here is total. A value may be absent, ``None`` (Kafka
allows null header values), bytes that are not UTF-8, or text that is not the
number it should be; none of these raises.
"""

from __future__ import annotations

from collections.abc import Sequence

MEMBER = "relais_member"
ATTEMPT = "relais_attempt"
DELAY_TARGET = "relais_delay_target"
FIRST_FAILURE_AT = "relais_first_failure_at"
LAST_FAILURE_AT = "relais_last_failure_at"
LAST_ERROR = "relais_last_error"
REPLAY_COUNT = "relais_replay_count"

DLQ_ORIGIN_TOPIC = "relais_dlq_origin_topic"
DLQ_ORIGIN_PARTITION = "relais_dlq_origin_partition"
DLQ_ORIGIN_OFFSET = "relais_dlq_origin_offset"
DLQ_STAGE = "relais_dlq_stage"
DLQ_GROUP = "relais_dlq_group"
DLQ_ERROR_CLASS = "relais_dlq_error_class"
DLQ_ERROR_CODE = "relais_dlq_error_code"
DLQ_ERROR_MESSAGE = "relais_dlq_error_message"
DLQ_STACK = "relais_dlq_stack"

#: Every header whose name starts with this is the hub's own (``relais_flow_id`` included).
INTERNAL_PREFIX = "relais_"

#: Headers a stage sets for its own bookkeeping; replays and retries rewrite them.
BOOKKEEPING = frozenset(
    {
        ATTEMPT, DELAY_TARGET, FIRST_FAILURE_AT, LAST_FAILURE_AT, LAST_ERROR,
        DLQ_ORIGIN_TOPIC, DLQ_ORIGIN_PARTITION, DLQ_ORIGIN_OFFSET, DLQ_STAGE, DLQ_GROUP,
        DLQ_ERROR_CLASS, DLQ_ERROR_CODE, DLQ_ERROR_MESSAGE, DLQ_STACK,
    }
)

#: The most a counter header (attempts, replays) is read as; anything larger is garbage.
MAX_COUNTER = 10_000
#: Longest header text kept when read (a header can be as large as the record).
MAX_TEXT = 4_096

Headers = Sequence[tuple[str, bytes | None]] | None


def get(headers: Headers, name: str) -> str | None:
    """The first ``name`` header as text: invalid UTF-8 replaced, at most ``MAX_TEXT``
    characters; None when absent or null."""
    for key, value in headers or ():
        if key == name:
            if value is None:
                return None
            return bytes(value[: MAX_TEXT * 4]).decode("utf-8", errors="replace")[:MAX_TEXT]
    return None


def get_count(headers: Headers, name: str) -> int:
    """A counter header (``relais_attempt``, ``relais_replay_count``) as an int ≥ 0.

    Absent, null, non-numeric, negative or absurdly large values read as 0: a
    forged or garbled counter can neither crash a stage nor skip its retries.
    """
    text = (get(headers, name) or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_COUNTER)):
        return 0
    value = int(text)
    return value if value <= MAX_COUNTER else 0


def get_millis(headers: Headers, name: str) -> str | None:
    """An epoch-milliseconds header (``relais_first_failure_at``…) when it is one, else None."""
    text = (get(headers, name) or "").strip()
    if text.isascii() and text.isdigit() and len(text) <= 15:
        return text
    return None


def replace(headers: Headers, **values: str | None) -> list[tuple[str, bytes]]:
    """A copy of ``headers`` with the named ones set (or removed when None).

    Null header values are written back as empty bytes (every writer sends bytes).
    """
    out = [(k, v if v is not None else b"") for k, v in headers or () if k not in values]
    out.extend((k, v.encode("utf-8", errors="replace")) for k, v in values.items()
               if v is not None)
    return out


def strip_internal(headers: Headers) -> list[tuple[str, bytes]]:
    """``headers`` without any ``relais_*`` header: what a member may not tell the hub.

    The hub's internal headers (flow id, member, attempts, delay target, dead-letter
    context) steer its stages; on a member's record they are forgeries or leftovers and
    are dropped before anything reads them. One exception: ``relais_replay_count``,
    which ``relais replay`` writes on the records it puts back on a member's topic,
    is kept when it is a plain counter (the replay loop guard counts on it), and dropped
    otherwise. A forged count only makes that member's own dead letter replayable fewer
    times.
    """
    kept: list[tuple[str, bytes]] = []
    for key, value in headers or ():
        if not key.lower().startswith(INTERNAL_PREFIX):
            kept.append((key, value if value is not None else b""))
    replays = get_count(headers, REPLAY_COUNT)
    if replays:
        kept.append((REPLAY_COUNT, str(replays).encode()))
    return kept
