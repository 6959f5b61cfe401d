"""Per-member topics: each member owns a prefix, so Kafka ACLs alone can isolate members.

A member's back-office may WRITE ``relais.member.<siren>.submissions`` and READ
``relais.member.<siren>.notifications``; an ACL on the prefix
``relais.member.<siren>.`` grants exactly that. Both topics are created when the
member is registered. The hub consumes every member's submissions by pattern.
"""

from __future__ import annotations

import re

from topics.spec import DAY_MS, TopicSpec

MEMBER_PREFIX = "relais.member."
SUBMISSIONS_PATTERN = r"^relais\.member\.(?P<siren>\d{9})\.submissions$"
_SUBMISSIONS_RE = re.compile(SUBMISSIONS_PATTERN)
SUBMISSION_MAX_BYTES = 1024 * 1024


def member_prefix(siren: str) -> str:
    """The ACL prefix of one member's topics."""
    return f"{MEMBER_PREFIX}{siren}."


def submissions(siren: str) -> TopicSpec:
    """Where a member's back-office publishes its submissions."""
    return TopicSpec(
        name=f"{member_prefix(siren)}submissions",
        partitions=1,
        key="submission id (string, the member's own id)",
        value_schema="ActeSubmission",
        doc="Submissions written by this member's back-office, read by the hub's ingress.",
        retention_ms=7 * DAY_MS,
        max_message_bytes=SUBMISSION_MAX_BYTES,
    )


def notifications(siren: str) -> TopicSpec:
    """Where the hub tells a member what became of its flows."""
    return TopicSpec(
        name=f"{member_prefix(siren)}notifications",
        partitions=1,
        key="flow id (string)",
        value_schema="Notification",
        doc="Acceptances, rejections, state changes and partner messages for this member.",
        retention_ms=30 * DAY_MS,
    )


def member_topics(siren: str) -> list[TopicSpec]:
    return [submissions(siren), notifications(siren)]


def siren_of_submissions_topic(topic: str) -> str | None:
    """The member SIREN a submissions topic belongs to, or None for any other topic."""
    match = _SUBMISSIONS_RE.match(topic)
    return match["siren"] if match else None
