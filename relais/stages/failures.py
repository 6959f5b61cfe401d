"""Routing a failed record: to the next retry tier, or to the stage's dead-letter topic.

The exception's ``retriable`` flag decides (see :mod:`relais.errors`); an
exception from outside the tree is a bug and is not retried. A dead letter keeps
the record's key, value and headers byte for byte and adds error-context
headers (:func:`dead_letter_record`, the one builder every stage uses, the
ingress and the stage runner's bug cap included); the flow is marked *failed*
and the member is told.

The router never raises: it reads every header defensively (a non-numeric
``relais_attempt``, garbage or non-UTF-8 bytes, a null value), tells a member
only when the record's member header is a SIREN and its flow id belongs to that
member, and falls back to a bare dead letter if telling fails.
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from relais.errors import ConfigurationError, PartnerError, RelaisError
from relais.flows.emit import emit
from relais.flows.machine import FlowMachine
from relais.flows.outbound import FlowContext, Outbound
from relais.flows.progress import DEFAULT_MACHINE
from relais.stages import headers as h
from relais.stages.delays import TIERS, DelayTier, tier, tier_for
from relais.stages.records import InputRecord
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders

log = structlog.get_logger(__name__)
STACK_LIMIT = 4000
_SIREN = re.compile(r"[0-9]{9}")
_FLOW_ID = re.compile(r"([0-9]{9})-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def describe(exc: BaseException) -> str:
    """``str(exc)``, or the class name when it is empty or its ``__str__`` fails."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not break the failure path
        text = ""
    return text or exc.__class__.__name__


def error_code(exc: BaseException) -> str:
    """The tree's stable code; ``bug`` for an exception from outside the tree."""
    return exc.code if isinstance(exc, RelaisError) else "bug"


def stack_of(exc: BaseException) -> str:
    """The exception's traceback text, its last ``STACK_LIMIT`` characters."""
    try:
        return "".join(traceback.format_exception(exc))[-STACK_LIMIT:]
    except Exception:
        return f"{exc.__class__.__name__}: (traceback unavailable)"


def dead_letter_record(
    record: InputRecord,
    exc: BaseException,
    *,
    stage: str,
    group_id: str,
    dlq_topic: str,
    attempts: int = 1,
    first: str | None = None,
    now: str | None = None,
) -> Outbound:
    """The dead letter of ``record``: key, value and headers byte for byte, plus where it
    came from (topic, partition, offset), who gave up (stage, consumer group), why (error
    class, code, message, stack) and after how many attempts."""
    now = now or str(int(time.time() * 1000))
    headers = h.replace(
        list(record.headers or ()),
        **{
            h.DLQ_ORIGIN_TOPIC: record.topic,
            h.DLQ_ORIGIN_PARTITION: str(record.partition),
            h.DLQ_ORIGIN_OFFSET: str(record.offset),
            h.DLQ_STAGE: stage,
            h.DLQ_GROUP: group_id,
            h.DLQ_ERROR_CLASS: f"{exc.__class__.__module__}.{exc.__class__.__name__}",
            h.DLQ_ERROR_CODE: error_code(exc),
            h.DLQ_ERROR_MESSAGE: describe(exc)[:2000],
            h.DLQ_STACK: stack_of(exc),
            h.ATTEMPT: str(attempts),
            h.FIRST_FAILURE_AT: first or now,
            h.LAST_FAILURE_AT: now,
        },
    )
    return Outbound(dlq_topic, record.key, record.value, headers)


def member_of(headers: h.Headers) -> str | None:
    """The record's ``relais_member`` header when it is a SIREN, else None."""
    member = h.get(headers, h.MEMBER)
    return member if member is not None and _SIREN.fullmatch(member) else None


def flow_of(headers: h.Headers) -> tuple[str, str] | None:
    """(flow id, member) from a record's internal headers when they are well formed and
    agree (the flow id starts with the member's SIREN); None otherwise."""
    flow_id = h.get(headers, FLOW_ID_HEADER)
    member = h.get(headers, h.MEMBER)
    if flow_id is None or member is None or not _SIREN.fullmatch(member):
        return None
    matched = _FLOW_ID.fullmatch(flow_id)
    if matched is None or matched.group(1) != member:
        return None
    return flow_id, member


@dataclass(frozen=True)
class RetryPolicy:
    """Delay tiers a retriable failure goes through before it is dead-lettered."""

    tiers: tuple[str, ...] = ("30s", "5m", "1h")

    def next_tier(self, failures: int, retry_after: float | None) -> DelayTier | None:
        """The tier for the ``failures``-th failure, or None when retries are used up."""
        if failures > len(self.tiers):
            return None
        chosen = tier(self.tiers[failures - 1])
        if retry_after is not None and retry_after > chosen.seconds:
            return tier_for(retry_after)
        return chosen


def parse_tiers(text: str) -> tuple[str, ...]:
    """``"30s,5m,1h"`` → ``("30s", "5m", "1h")``; unknown tier labels are refused."""
    labels = tuple(label.strip() for label in text.split(",") if label.strip())
    known = [t.label for t in TIERS]
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ConfigurationError(
            f"unknown delay tier(s) {', '.join(unknown)} in {text!r}; tiers: {', '.join(known)}"
        )
    return labels


def partner_policies(text: str) -> dict[str, RetryPolicy]:
    """``"tdt=30s,5m;sirene=5s"`` → a policy per partner."""
    policies = {}
    for part in text.split(";"):
        if "=" in part:
            partner, tiers = part.split("=", 1)
            policies[partner.strip()] = RetryPolicy(parse_tiers(tiers))
    return policies


@dataclass(frozen=True)
class FailureRouter:
    """Routes a stage's failures. The retry policy is, in order: the member's own
    (``policy_for(member)``), else ``policy`` (the partner's or the hub's).

    ``machine`` is the state machine of ``flow_type`` (it ranks the *failed* event, see
    :func:`relais.flows.emit.emit`); the default one when the stage's type declared none.
    """

    stage: str
    group_id: str
    flow_type: str
    dlq_topic: str
    codec: AvroCodec
    policy: RetryPolicy = RetryPolicy()
    policy_for: Callable[[str | None], RetryPolicy | None] | None = None
    machine: FlowMachine = DEFAULT_MACHINE

    def _policy(self, member: str | None) -> RetryPolicy:
        if self.policy_for is not None:
            chosen = self.policy_for(member)
            if chosen is not None:
                return chosen
        return self.policy

    def route(self, record: InputRecord, exc: BaseException) -> list[Outbound]:
        """A retry or a dead letter (with the member told) for ``record``; never raises."""
        try:
            return self._route(record, exc)
        except Exception as bug:  # the router must stay total, whatever a policy does
            log.exception("stage.router_failed", stage=self.stage, error=describe(bug))
            return [dead_letter_record(record, exc, stage=self.stage, group_id=self.group_id,
                                       dlq_topic=self.dlq_topic)]

    def _route(self, record: InputRecord, exc: BaseException) -> list[Outbound]:
        headers = list(record.headers or ())
        failures = h.get_count(headers, h.ATTEMPT) + 1
        now = str(int(time.time() * 1000))
        first = h.get_millis(headers, h.FIRST_FAILURE_AT) or now
        message = describe(exc)
        retriable = isinstance(exc, RelaisError) and exc.retriable
        retry_after = exc.retry_after if isinstance(exc, PartnerError) else None
        policy = self._policy(member_of(headers))
        next_tier = policy.next_tier(failures, retry_after) if retriable else None
        if next_tier is not None:
            log.warning(
                "stage.retry_scheduled", stage=self.stage, attempt=failures,
                tier=next_tier.label, error=message,
            )
            retry_headers = h.replace(
                headers,
                **{
                    h.ATTEMPT: str(failures),
                    h.DELAY_TARGET: record.topic,
                    h.FIRST_FAILURE_AT: first,
                    h.LAST_FAILURE_AT: now,
                    h.LAST_ERROR: f"{exc.__class__.__name__}: {message}"[:1000],
                },
            )
            return [Outbound(next_tier.topic.name, record.key, record.value, retry_headers)]
        return self.dead_letter(record, exc, failures=failures, first=first, now=now)

    def dead_letter(
        self, record: InputRecord, exc: BaseException, *, failures: int, first: str, now: str
    ) -> list[Outbound]:
        """The dead letter, and the member told (FAILED notification, flow *failed*) when the
        record's headers name a member and one of its flows."""
        code = error_code(exc)
        message = describe(exc)
        log.error("stage.dead_lettered", stage=self.stage, attempt=failures, code=code,
                  error=message)
        outputs = [dead_letter_record(record, exc, stage=self.stage, group_id=self.group_id,
                                      dlq_topic=self.dlq_topic, attempts=failures,
                                      first=first, now=now)]
        known = flow_of(record.headers)
        if known is not None:
            try:
                outputs.extend(self._tell(known[0], known[1], code, message, record, failures))
            except Exception:
                log.exception("stage.failure_notice_failed", stage=self.stage)
        return outputs

    def _tell(
        self, flow_id: str, member: str, code: str, message: str, record: InputRecord,
        failures: int,
    ) -> list[Outbound]:
        flow = FlowContext(flow_id, member, self.flow_type, None)
        key = f"{self.stage}:{record.topic}:{record.partition}:{record.offset}"
        return emit(
            self.codec, flow, self.machine, stage=self.stage, state="failed", previous=None,
            kind="FAILED", parent=EventHeaders.from_kafka(record.headers),
            message=f"the {self.stage} stage failed after {failures} attempt(s): {message}",
            details={"stage": self.stage, "error_code": code, "attempts": str(failures),
                     "dlq_topic": self.dlq_topic},
            event_key=key, error_code=code, error_message=message[:2000],
        )
