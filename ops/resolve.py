"""Settling a flow parked *uncertain*: ``relais flows resolve``.

acts-delivery parks a flow as *uncertain* when an earlier post may have reached
the TdT and the TdT could not tell (``agents/acts/delivery.py``). An operator
checks on the TdT, then settles it:

- ``--posted <transaction id>``: the acte is at the TdT. The delivery journal
  records POSTED with that transaction, the flow becomes ``posted`` and its first
  status check is scheduled, with the very records acts-delivery publishes after
  a post (:func:`agents.acts.delivery.posted_outputs`).
- ``--not-posted``: the TdT never received it. The journal goes back to
  VALIDATED, the flow to ``validated``, and the acte's validated submission (read
  back from ``relais.acts.delivery``) goes to acts-delivery again through the
  shortest delay tier, for one fresh post. The delay gives every worker's view of
  the journal time to see VALIDATED before the record arrives (a worker that
  still saw UNCERTAIN would skip it).

Only a flow whose journal says UNCERTAIN is settled; anything else is refused
with a ``ValidationError``. The records and the audit entry (``relais.ops.audit``,
under ``RELAIS_OPERATOR``) are published in ONE Kafka transaction, whose
transactional id is the flow's: a second operator resolving the same flow at the
same moment fences the first, whose transaction then aborts.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import TopicPartition

from agents.acts.delivery import posted_outputs
from agents.acts.deps import ActsDeps
from agents.acts.events import transition
from agents.acts.links import ActeLink, LinkIndex, link_outbound
from ops.acts_deps import operator_acts_deps
from ops.audit import audit_entry
from ops.flows import partition_of
from relais.errors import Reason, ValidationError
from relais.flows.outbound import FlowContext, Outbound
from relais.kafka import clients as kafka_clients
from relais.settings import Settings
from relais.stages import headers as h
from relais.stages.delays import TIERS
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.acts import ACTS_DELIVERY
from topics.catalogue import OPS_AUDIT
from topics.journal import DELIVERY_JOURNAL

#: The ``stage`` of the flow events an operator's resolution writes.
STAGE = "operator"
#: A flow id: ``<siren>-<uuid>`` (:func:`relais.flows.ids.flow_id_for`).
FLOW_ID = re.compile(r"[0-9]{9}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: A TdT transaction id as an operator types it (S²LOW's are numbers).
TRANSACTION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_REASON = 1000


@dataclass(frozen=True)
class DeliveryRecord:
    """The acte's validated submission as acts-delivery consumes it."""

    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Resolution:
    flow_id: str
    member_siren: str
    id_acte: str
    outcome: str  # posted | not-posted
    transaction_id: str | None
    run_id: str
    published: list[str]  # the topics written, in order


class ResolveIO(Protocol):
    """What a resolution reads and writes; Kafka in :class:`KafkaResolveIO`, fakes in tests."""

    async def link(self, flow_id: str) -> ActeLink | None: ...

    async def delivery_record(self, flow_id: str) -> DeliveryRecord | None: ...

    async def publish(self, outbounds: list[Outbound]) -> None:
        """Publish every record in one transaction, or none."""
        ...


def check_flow_id(flow_id: str) -> None:
    """A ``ValidationError`` unless ``flow_id`` has the shape of a flow id."""
    if not FLOW_ID.fullmatch(flow_id):
        raise ValidationError(
            f"{flow_id[:80]!r} is not a flow id (<siren>-<uuid>, as flows show/list print it)",
            reasons=[Reason("flow_id", "format", "<siren>-<uuid>")],
        )


def check_uncertain(flow_id: str, link: ActeLink | None) -> ActeLink:
    """The flow's journal entry when it is UNCERTAIN; a ``ValidationError`` otherwise."""
    if link is None:
        raise ValidationError(
            f"flow {flow_id} has no delivery journal entry: it is unknown, or it never passed "
            "the acte checks; only an uncertain flow can be resolved",
            reasons=[Reason("flow_id", "not_uncertain", "no delivery journal entry")],
        )
    if link.delivery != "UNCERTAIN":
        state = {"VALIDATED": "validated, not posted yet", "POSTING": "being posted",
                 "POSTED": f"posted (transaction {link.transaction_id})",
                 "REFUSED": "refused by the TdT"}.get(
                     link.delivery, link.delivery)
        raise ValidationError(
            f"flow {flow_id} is not uncertain: its delivery journal says {link.delivery} "
            f"({state}); nothing to resolve",
            reasons=[Reason("flow_id", "not_uncertain", f"delivery {link.delivery}")],
        )
    return link


def _flow(link: ActeLink) -> FlowContext:
    return FlowContext(link.flow_id, link.member_siren, "acte", link.submission_id)


def _audit(
    deps: ActsDeps, link: ActeLink, action: str, *, operator: str, reason: str, run_id: str,
    target_topic: str, details: dict[str, Any],
) -> Outbound:
    entry = audit_entry(
        action, operator=operator, reason=reason, run_id=run_id, target_topic=target_topic,
        flow_id=link.flow_id, member_siren=link.member_siren,
        details={"id_acte": link.id_acte, "previous_delivery": link.delivery, **details},
    )
    headers = EventHeaders.new(source="/relais/ops/resolve", type="fr.relais.ops.AuditEntry",
                               subject=link.flow_id, flow_id=link.flow_id)
    return Outbound(OPS_AUDIT.name, link.flow_id.encode("utf-8"),
                    deps.codec.encode("AuditEntry", entry), headers.to_kafka())


def plan_posted(
    deps: ActsDeps, link: ActeLink, transaction_id: str, *, operator: str, reason: str,
    run_id: str,
) -> list[Outbound]:
    """The records of ``--posted``: acts-delivery's own after a post, then the audit entry."""
    if not TRANSACTION_ID.fullmatch(transaction_id):
        raise ValidationError(
            f"{transaction_id[:80]!r} is not a TdT transaction id (1 to 64 letters, digits, "
            "'-' or '_')",
            reasons=[Reason("transaction_id", "format", "1 to 64 letters, digits, - or _")],
        )
    posted = link.moved("POSTED", transaction_id=transaction_id)
    outputs = posted_outputs(
        deps, _flow(link), posted, None, stage=STAGE, previous="uncertain",
        message=f"an operator found acte {link.id_acte} at the TdT (transaction "
        f"{transaction_id}); its status is followed from now on",
    )
    return [*outputs, _audit(deps, link, "resolve-posted", operator=operator, reason=reason,
                             run_id=run_id, target_topic=DELIVERY_JOURNAL.name,
                             details={"transaction_id": transaction_id})]


def plan_not_posted(
    deps: ActsDeps, link: ActeLink, record: DeliveryRecord, *, operator: str, reason: str,
    run_id: str,
) -> list[Outbound]:
    """The records of ``--not-posted``: journal VALIDATED, flow ``validated``, the submission
    back to acts-delivery through the shortest delay tier, then the audit entry."""
    flow = _flow(link)
    validated = link.moved("VALIDATED", transaction_id=None)
    resend = TIERS[0]
    kept = [(k, v) for k, v in record.headers if k not in h.BOOKKEEPING]
    headers = h.replace(kept, **{FLOW_ID_HEADER: link.flow_id, h.MEMBER: link.member_siren,
                                 h.DELAY_TARGET: ACTS_DELIVERY.name})
    return [
        link_outbound(deps.codec, validated, None, stage=STAGE, event_parts=("resolved",)),
        *transition(
            deps, flow, stage=STAGE, state="validated", previous="uncertain",
            kind="STATE_CHANGED", parent=None, partner_ref=link.id_acte,
            message=f"an operator found that the TdT never received acte {link.id_acte}; "
            "it is posted again",
        ),
        Outbound(resend.topic.name, link.flow_id.encode("utf-8"), record.value, headers),
        _audit(deps, link, "resolve-not-posted", operator=operator, reason=reason,
               run_id=run_id, target_topic=ACTS_DELIVERY.name,
               details={"resend_tier": resend.label}),
    ]


async def resolve(
    io: ResolveIO, deps: ActsDeps, flow_id: str, *, transaction_id: str | None,
    operator: str, reason: str,
) -> Resolution:
    """Settle one uncertain flow: posted as ``transaction_id``, or not posted when None."""
    check_flow_id(flow_id)
    reason = reason.strip()
    if transaction_id is None and not reason:
        raise ValidationError("say why the acte is known not to have reached the TdT (--reason)",
                              reasons=[Reason("reason", "required", "empty")])
    if len(reason) > MAX_REASON:
        raise ValidationError(f"the reason is longer than {MAX_REASON} characters",
                              reasons=[Reason("reason", "too_long", f"{len(reason)} characters")])
    link = check_uncertain(flow_id, await io.link(flow_id))
    run_id = uuid.uuid4().hex[:12]
    if transaction_id is not None:
        reason = reason or f"found on the TdT as transaction {transaction_id}"
        outbounds = plan_posted(deps, link, transaction_id, operator=operator, reason=reason,
                                run_id=run_id)
    else:
        record = await io.delivery_record(flow_id)
        if record is None:
            raise ValidationError(
                f"the validated submission of flow {flow_id} is no longer on "
                f"{ACTS_DELIVERY.name} (retention): it cannot be posted again; the member "
                "must submit the acte again under a new submission_id",
                reasons=[Reason("flow_id", "submission_gone", ACTS_DELIVERY.name)],
            )
        outbounds = plan_not_posted(deps, link, record, operator=operator, reason=reason,
                                    run_id=run_id)
    await io.publish(outbounds)
    return Resolution(
        flow_id=flow_id, member_siren=link.member_siren, id_acte=link.id_acte,
        outcome="posted" if transaction_id is not None else "not-posted",
        transaction_id=transaction_id, run_id=run_id, published=[o.topic for o in outbounds],
    )


# --- Kafka ----------------------------------------------------------------------------------


class KafkaResolveIO:
    """Reads the journal and the delivery topic, publishes in one transaction whose id is
    the flow's (``relais-resolve-<flow id>``). Start before reading: starting fences any
    other resolution of the same flow still in progress."""

    def __init__(self, bootstrap: str, codec: AvroCodec, flow_id: str) -> None:
        self._bootstrap = bootstrap
        self._codec = codec
        self._producer = kafka_clients.producer(
            bootstrap, transactional_id=f"relais-resolve-{flow_id}",
            max_request_size=4 * 1024 * 1024,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def link(self, flow_id: str) -> ActeLink | None:
        links = LinkIndex(self._bootstrap, self._codec)
        await links.start()
        try:
            return links.get(flow_id)
        finally:
            await links.stop()

    async def delivery_record(self, flow_id: str) -> DeliveryRecord | None:
        """The latest record keyed ``flow_id`` on the one partition of relais.acts.delivery
        the flow id hashes to."""
        consumer = kafka_clients.consumer(bootstrap_servers=self._bootstrap,
                                          enable_auto_commit=False,
                                          isolation_level="read_committed")
        await consumer.start()
        found: DeliveryRecord | None = None
        key = flow_id.encode("utf-8")
        try:
            partitions = await consumer._client._wait_on_metadata(ACTS_DELIVERY.name)
            tp = TopicPartition(ACTS_DELIVERY.name, partition_of(flow_id, len(partitions)))
            end = (await consumer.end_offsets([tp]))[tp]  # before the fetcher's long poll
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
                for record in batch.get(tp, []):
                    if record.key == key and record.value is not None:
                        found = DeliveryRecord(record.value, list(record.headers or ()))
        finally:
            await consumer.stop()
        return found

    async def publish(self, outbounds: list[Outbound]) -> None:
        async with self._producer.transaction():
            for out in outbounds:
                await self._producer.send(out.topic, out.value, key=out.key,
                                          headers=out.headers)


async def resolve_on_kafka(
    settings: Settings, flow_id: str, *, transaction_id: str | None, operator: str, reason: str,
) -> Resolution:
    """:func:`resolve` against the cluster of ``settings``."""
    check_flow_id(flow_id)  # before it names the transactional id
    codec = AvroCodec()
    io = KafkaResolveIO(settings.bootstrap_servers, codec, flow_id)
    await io.start()
    try:
        return await resolve(io, operator_acts_deps(settings, codec), flow_id,
                             transaction_id=transaction_id, operator=operator, reason=reason)
    finally:
        await io.stop()
