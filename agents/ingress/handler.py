"""The ingress decision for one submission record: accept and route, or reject with reasons.

A member's record is outside input: of its headers, the handler reads only the
``traceparent`` (its outputs continue the member's trace), never a ``relais_*`` one (the
stage runner drops those before its failure router and logs), and every exception while
decoding or checking it becomes a REJECTED
notification to the member whose topic it came from, naming the field and the
reason. Every outcome is a list of records to publish (a notification to the
member, a flow-state event, the accepted submission for the next stage). It
raises only when nobody can be told: a record on the topic of a member that is
not registered raises :class:`~relais.errors.UnknownMemberError`, and the
stage's failure router dead-letters it (see :mod:`agents.ingress.gateway`).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import structlog

from relais.blobs.model import is_sha256_hex
from relais.errors import DecodeError, Reason, RelaisError, UnknownMemberError
from relais.flows.emit import emit
from relais.flows.ids import flow_id_for, flow_id_for_unreadable, transition_ids
from relais.flows.kit import Route
from relais.flows.machine import FlowMachine
from relais.flows.outbound import FlowContext, Outbound
from relais.flows.progress import machine_for
from relais.logs import debug_enabled
from relais.members.model import Member
from relais.stages import headers as stage_headers
from relais.stages.failures import describe
from relais.stages.records import InputRecord
from relais.wire.avro_codec import AvroCodec, Decoded
from relais.wire.headers import (
    AVRO_CONTENT_TYPE,
    FLOW_ID_HEADER,
    EventHeaders,
    child_traceparent,
    member_traceparent,
    now_text,
)
from topics import member as member_topics

log = structlog.get_logger(__name__)
STAGE = "ingress"
SOURCE = "/relais/hub/ingress"
_SOURCE_BYTES = SOURCE.encode()
_AVRO_BYTES = AVRO_CONTENT_TYPE.encode()
#: Seconds between two ``ingress.accepted_summary`` lines while submissions are accepted.
SUMMARY_SECONDS = 1.0

#: What the ingress reads of a consumed record.
SubmissionRecord = InputRecord


class MemberLookup(Protocol):
    def get(self, siren: str) -> Member | None: ...


class BlobSizes(Protocol):
    async def stat(self, sha256: str) -> int | None: ...

    async def owned_by(self, sha256: str, member: str) -> bool: ...


@dataclass
class IngressCounters:
    """What the ingress did since start, by outcome; logged periodically and on stop.

    Each acceptance is logged at DEBUG (``ingress.accepted``, with the record's stage
    context); at INFO, one ``ingress.accepted_summary`` line per :data:`SUMMARY_SECONDS`
    counts what was accepted meanwhile, by flow type (a line per record cost a third
    of the ingress's CPU). Rejections stay one WARNING line each.
    """

    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    #: Accepted since the last summary line, by flow type.
    unsummarised: dict[str, int] = field(default_factory=dict)
    _summary_due: asyncio.TimerHandle | None = field(default=None, repr=False)
    _summary_loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _since: float = field(default=0.0, repr=False)

    def reject(self, code: str) -> None:
        self.rejected[code] = self.rejected.get(code, 0) + 1

    def accept(self, flow_type: str) -> None:
        """Count one acceptance; the summary line follows within :data:`SUMMARY_SECONDS`."""
        self.accepted += 1
        if not self.unsummarised:
            self._since = time.monotonic()
        self.unsummarised[flow_type] = self.unsummarised.get(flow_type, 0) + 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): summarise at once
            self.summarise()
            return
        if self._summary_due is not None and self._summary_loop is loop:
            return
        if self._summary_due is not None:  # set on a loop that is gone
            self._summary_due.cancel()
        # an empty context: the line must not carry the stage context of the record that
        # happened to schedule it
        self._summary_due = loop.call_later(SUMMARY_SECONDS, self.summarise,
                                            context=contextvars.Context())
        self._summary_loop = loop

    def summarise(self) -> None:
        """Log (INFO) what was accepted since the last summary; nothing when nothing was.
        Called by the timer :meth:`accept` sets, and when the ingress stops."""
        if self._summary_due is not None:
            self._summary_due.cancel()
            self._summary_due = self._summary_loop = None
        if not self.unsummarised:
            return
        counts, self.unsummarised = self.unsummarised, {}
        log.info("ingress.accepted_summary", accepted=sum(counts.values()),
                 by_flow_type=counts, seconds=round(time.monotonic() - self._since, 3),
                 accepted_since_start=self.accepted)


@dataclass(frozen=True)
class IngressDeps:
    codec: AvroCodec
    members: MemberLookup
    blobs: BlobSizes
    max_submission_bytes: int
    counters: IngressCounters
    #: Which stage topic each accepted submission schema goes to, and its flow type
    #: (``routes_of(FLOWS)``: the declared flows' routes).
    routes: Mapping[str, Route]
    #: Flow type → its state machine (``machines_of(FLOWS)``); judges what the ingress emits.
    machines: Mapping[str, FlowMachine] = field(default_factory=dict)


def _blob_refs(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    refs = []
    document = record.get("document")
    if isinstance(document, dict) and isinstance(document.get("blob"), dict):
        refs.append(("document.blob", document["blob"]))
    for index, annex in enumerate(record.get("annexes") or []):
        if isinstance(annex, dict) and isinstance(annex.get("blob"), dict):
            refs.append((f"annexes[{index}].blob", annex["blob"]))
    for index, blob in enumerate(record.get("documents") or []):
        if isinstance(blob, dict) and isinstance(blob.get("blob"), dict):  # ArchiveDocument
            refs.append((f"documents[{index}].blob", blob["blob"]))
        elif isinstance(blob, dict):
            refs.append((f"documents[{index}]", blob))
    return refs


class BlobFacts(Protocol):
    """A store that answers :meth:`BlobSizes.stat` and :meth:`BlobSizes.owned_by` for
    several blobs in one look-up (:class:`~relais.blobs.filesystem.FilesystemBlobStore`);
    :func:`blob_reasons` uses it when the store has it."""

    async def sizes_and_owners(
        self, digests: Sequence[str], member: str
    ) -> list[tuple[int | None, bool]]: ...


async def blob_reasons(blobs: BlobSizes, record: dict[str, Any], member: str) -> list[Reason]:
    """A reason for each referenced blob that is malformed, absent, not ``member``'s own
    (``blob_not_owned``: uploaded by another member) or of another size, in the order of
    the references. A store with ``sizes_and_owners`` (:class:`BlobFacts`) is asked once
    for all of them; any other is asked ``stat``, then ``owned_by`` when the blob is there."""
    refs = _blob_refs(record)
    facts = cast(BlobFacts, blobs) if hasattr(blobs, "sizes_and_owners") else None
    #: per reference: its reasons, or its index among the references the store is asked about
    slots: list[list[Reason] | int] = []
    asked: list[tuple[str, dict[str, Any], str]] = []  # (path, ref, lower-case digest)
    for path, ref in refs:
        digest = ref.get("sha256")
        if not (isinstance(digest, str) and is_sha256_hex(digest.lower())):
            slots.append([
                Reason(f"{path}.sha256", "invalid_sha256",
                       "a SHA-256 digest must be 64 hexadecimal digits, got "
                       f"{str(ref.get('sha256'))[:80]!r}")
            ])
        elif facts is None:
            size = await blobs.stat(ref["sha256"])
            owned = size is not None and await blobs.owned_by(digest.lower(), member)
            slots.append(_blob_reason(path, ref, digest.lower(), member, size, owned))
        else:
            slots.append(len(asked))
            asked.append((path, ref, digest.lower()))
    answers = (await facts.sizes_and_owners([digest for _, _, digest in asked], member)
               if facts is not None and asked else [])
    reasons: list[Reason] = []
    for slot in slots:
        if isinstance(slot, int):
            path, ref, digest = asked[slot]
            reasons.extend(_blob_reason(path, ref, digest, member, *answers[slot]))
        else:
            reasons.extend(slot)
    return reasons


def _blob_reason(path: str, ref: dict[str, Any], digest: str, member: str, size: int | None,
                 owned: bool) -> list[Reason]:
    """The reason (none or one) of one well-formed blob reference, from its store's answers."""
    if size is None:
        return [Reason(f"{path}.sha256", "blob_not_found",
                       f"no blob with digest {ref['sha256']} was uploaded")]
    if not owned:
        return [Reason(f"{path}.sha256", "blob_not_owned",
                       f"the blob {digest} was not uploaded by member {member}")]
    if size != ref["size"]:
        return [Reason(f"{path}.size", "blob_size_mismatch",
                       f"the blob has {size} bytes, the submission says {ref['size']}")]
    return []


def _flow_for_unreadable(record: SubmissionRecord, siren: str) -> FlowContext:
    submission_id = None
    if record.key:
        submission_id = record.key.decode("utf-8", errors="replace")
        flow_id = flow_id_for(siren, submission_id)
    else:
        flow_id = flow_id_for_unreadable(siren, record.topic, record.partition, record.offset)
    return FlowContext(flow_id, siren, "unknown", submission_id)


def _reject(
    deps: IngressDeps,
    record: SubmissionRecord,
    flow: FlowContext,
    parent: EventHeaders,
    code: str,
    message: str,
    reasons: list[Reason],
    *,
    decoded: bool = False,
) -> list[Outbound]:
    """The member's REJECTED notification and the flow event. ``decoded``: the submission
    was read, its flow id is the one the log line names (an unreadable record's line names
    none: the stage's context has none)."""
    deps.counters.reject(code)
    if deps.members.get(flow.member_siren) is None:
        message = "; ".join([message, *(f"{r.field} {r.code}: {r.message}" for r in reasons)])
        raise UnknownMemberError(
            f"member {flow.member_siren} is not registered, nobody to tell ({code}): {message}",
            reasons=reasons,
        )
    log.warning("ingress.rejected", **({"flow_id": flow.flow_id} if decoded else {}),
                code=code, reason=message, fields=[r.field for r in reasons])
    details = {"topic": record.topic, "partition": str(record.partition),
               "offset": str(record.offset)}
    return emit(
        deps.codec, flow, machine_for(deps.machines, flow.flow_type), stage=STAGE,
        state="rejected", previous=None, kind="REJECTED", message=message, parent=parent,
        reasons=reasons, details=details, event_key=f"{record.partition}:{record.offset}",
        error_code=code, error_message=message,
    )


async def handle_submission(record: SubmissionRecord, deps: IngressDeps) -> list[Outbound]:
    """Check one record from a member's submissions topic; return what to publish."""
    parent = EventHeaders(traceparent=member_traceparent(record.headers))
    siren = member_topics.siren_of_submissions_topic(record.topic)
    if siren is None:  # the subscription pattern makes this unreachable; stay total anyway
        log.error("ingress.foreign_topic", topic=record.topic)
        return []
    try:
        return await _check_submission(record, deps, siren, parent)
    except UnknownMemberError:
        raise
    except Exception as exc:  # a check broke on this input: the member is told what and why
        log.error("ingress.check_failed", error=describe(exc), exc_info=exc)
        code = exc.code if isinstance(exc, RelaisError) else "unprocessable"
        reasons = (exc.reasons if isinstance(exc, RelaisError) else []) or [
            Reason("value", code, f"{exc.__class__.__name__}: {describe(exc)}"[:1000])
        ]
        return _reject(deps, record, _flow_for_unreadable(record, siren), parent, code,
                       f"the submission could not be checked: {describe(exc)}"[:2000], reasons)


async def _check_submission(
    record: SubmissionRecord, deps: IngressDeps, siren: str, parent: EventHeaders
) -> list[Outbound]:
    value = record.value or b""
    size = len(value) + len(record.key or b"")  # a key is the member's to fill too
    if size > deps.max_submission_bytes:
        flow = _flow_for_unreadable(record, siren)
        return _reject(
            deps, record, flow, parent, "oversize",
            f"the record has {size} bytes, more than the {deps.max_submission_bytes} "
            "accepted; upload documents as blobs and reference them",
            [Reason("value", "oversize", f"{size} > {deps.max_submission_bytes} bytes")],
        )
    try:
        decoded: Decoded = deps.codec.decode(value)
    except DecodeError as exc:
        flow = _flow_for_unreadable(record, siren)
        return _reject(deps, record, flow, parent, exc.code, f"unreadable submission: {exc}",
                       exc.reasons or [Reason("value", exc.code, str(exc))])
    submission = decoded.record
    # a RegistryLookup names its id request_id (the answer's submission_id)
    submission_id = str(submission.get("submission_id") or submission.get("request_id") or "")
    route = deps.routes.get(decoded.schema_name)
    flow_type = route.flow_type if route else "unknown"
    flow = FlowContext(flow_id_for(siren, submission_id), siren, flow_type, submission_id)
    if route is None:
        return _reject(
            deps, record, flow, parent, "unsupported_schema",
            f"{decoded.schema_name} is not accepted on a submissions topic",
            [Reason("value", "unsupported_schema", decoded.schema_name)], decoded=True,
        )
    reasons: list[Reason] = []
    if not submission_id:
        reasons.append(Reason("submission_id", "required", "submission_id is empty"))
    if submission.get("member_siren") != siren:
        reasons.append(
            Reason(
                "member_siren",
                "member_mismatch",
                f"the submission names member {submission.get('member_siren')!r} but was "
                f"published on the topic of member {siren}",
            )
        )
    if deps.members.get(siren) is None:
        reasons.append(
            Reason("member_siren", "unknown_member", f"member {siren} is not registered")
        )
    reasons.extend(await blob_reasons(deps.blobs, submission, siren))
    if reasons:
        return _reject(deps, record, flow, parent, "invalid_envelope",
                       "the submission's envelope was refused", reasons, decoded=True)
    deps.counters.accept(flow_type)
    if debug_enabled():
        log.debug("ingress.accepted", flow_id=flow.flow_id, flow_type=flow_type)
    received = emit(
        deps.codec, flow, machine_for(deps.machines, flow_type), stage=STAGE,
        state="received", previous=None, kind="ACCEPTED", parent=parent,
        message=f"{decoded.schema_name} {submission_id} received; checks continue",
    )
    notification_id = transition_ids(flow.flow_id, "received", "")[0]
    schema = deps.codec.catalog.current(decoded.schema_name)
    # the headers EventHeaders.new(...).to_kafka() gives, then the flow id (moved last) and
    # the member: ce_dataschema names the version the value was written with, whatever the
    # member's header says
    flow_id = flow.flow_id.encode("utf-8")
    forward_headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", f"{notification_id}-forward".encode()),
        ("ce_source", _SOURCE_BYTES),
        ("ce_type", schema.full_name.encode("utf-8")),
        ("ce_time", now_text().encode()),
        ("ce_subject", flow_id),
        ("ce_dataschema",
         f"urn:relais:schema:{schema.full_name}:v{decoded.writer_version}".encode()),
        ("content-type", _AVRO_BYTES),
        ("traceparent", child_traceparent(parent.traceparent).encode()),
        (FLOW_ID_HEADER, flow_id),
        (stage_headers.MEMBER, siren.encode("utf-8")),
    ]
    return [*received, Outbound(route.topic.name, siren.encode("utf-8"), value,
                                forward_headers)]
