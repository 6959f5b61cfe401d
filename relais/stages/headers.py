"""Header names Relais adds to records as they move between stages."""

from __future__ import annotations

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

#: Headers a stage sets for its own bookkeeping; replays and retries rewrite them.
BOOKKEEPING = frozenset(
    {
        ATTEMPT, DELAY_TARGET, FIRST_FAILURE_AT, LAST_FAILURE_AT, LAST_ERROR,
        DLQ_ORIGIN_TOPIC, DLQ_ORIGIN_PARTITION, DLQ_ORIGIN_OFFSET, DLQ_STAGE, DLQ_GROUP,
        DLQ_ERROR_CLASS, DLQ_ERROR_CODE, DLQ_ERROR_MESSAGE, DLQ_STACK,
    }
)


def get(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...] | None,
        name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return value.decode("utf-8", errors="replace")
    return None


def replace(
    headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...] | None,
    **values: str | None,
) -> list[tuple[str, bytes]]:
    """A copy of ``headers`` with the named ones set (or removed when None)."""
    out = [(k, v) for k, v in headers or () if k not in values]
    out.extend((k, v.encode("utf-8")) for k, v in values.items() if v is not None)
    return out
