"""Everything the ingress handler publishes and logs, record by record, for a valid
submission and every kind of rejection: topics, keys, every header in order, every
field of every value, the log lines, the counters and the blob look-ups.

Written before the ingress's CPU work (issue 12) from what the handler produced then, so
that a faster handler is held to the same outputs. The expected outputs are built here:
ids are computed with :mod:`uuid` (not with :mod:`relais.flows.ids`), and what changes
from run to run is checked, then replaced by a placeholder: ``ce_time`` and
``occurred_at`` (within the test's clock window), a traceparent's fresh span id (it must
continue the member's trace, or start a valid new one).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.contextvars import bound_contextvars, merge_contextvars
from structlog.testing import capture_logs

from agents.ingress.handler import IngressCounters, IngressDeps, handle_submission
from hub.flows import FLOWS
from relais.blobs.filesystem import FilesystemBlobStore
from relais.errors import Reason, UnknownMemberError, ValidationError
from relais.flows.kit import machines_of, routes_of
from relais.flows.outbound import Outbound
from relais.stages.records import FakeRecord, without_internal_headers
from relais.wire.avro_codec import AvroCodec
from tests.unit.test_ingress_handler import (
    ANNEX_SHA,
    DOC_SHA,
    OTHER_SIREN,
    SIREN,
    UNKNOWN_SIREN,
    DictMembers,
    _acte,
    _member,
    overflowing,
)
from topics import member as member_topics

OTHER_SHA = "c" * 64  # uploaded by OTHER_SIREN
MISSING_SHA = "d" * 64  # never uploaded
NAMESPACE = uuid.UUID("6f1c1a7e-4d0b-4f57-9b1e-52656c616973")  # relais.flows.ids
SUBMISSIONS = member_topics.submissions(SIREN).name
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
MEMBER_HEADERS = [
    ("ce_id", b"member-event-1"),
    ("ce_time", b"2026-12-05T04:00:00.000Z"),
    ("traceparent", PARENT_TRACEPARENT.encode()),
    ("x-backoffice", b"\xffopaque\x00bytes"),
]
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")


class Blobs:
    """DOC_SHA and ANNEX_SHA uploaded by SIREN, OTHER_SHA by OTHER_SIREN."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.sizes = {DOC_SHA: 182_311, ANNEX_SHA: 20_480, OTHER_SHA: 10}
        self.owners = {DOC_SHA: SIREN, ANNEX_SHA: SIREN, OTHER_SHA: OTHER_SIREN}

    async def stat(self, sha256: str) -> int | None:
        self.asked.append(("stat", sha256))
        return self.sizes.get(sha256)

    async def owned_by(self, sha256: str, member: str) -> bool:
        self.asked.append(("owned_by", sha256))
        return self.owners.get(sha256) == member


class BuggyBlobs(Blobs):
    async def stat(self, sha256: str) -> int | None:
        raise OverflowError("a check blew up")


class RefusingBlobs(Blobs):
    async def stat(self, sha256: str) -> int | None:
        raise ValidationError("store refused it", reasons=[
            Reason("sha256", "invalid_sha256", "A SHA-256 digest must be 64 hexadecimal digits.")])


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def _deps(codec: AvroCodec, blobs: Blobs | FilesystemBlobStore | None = None) -> IngressDeps:
    return IngressDeps(
        codec=codec, members=DictMembers(_member(SIREN), _member(OTHER_SIREN)),
        blobs=blobs or Blobs(), max_submission_bytes=64 * 1024, counters=IngressCounters(),
        routes=routes_of(FLOWS), machines=machines_of(FLOWS),
    )


def _uuid5(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def _flow(siren: str, submission_id: str) -> str:
    return f"{siren}-{_uuid5(f'{siren}/{submission_id}')}"


class Normaliser:
    """Replaces the ids of one case's flow by names, and checks then hides what varies."""

    def __init__(self, flow_id: str, state: str, event_key: str, start: datetime) -> None:
        self.names = {
            flow_id: "<flow>",
            _uuid5(f"{flow_id}/notification/{state}/{event_key}"): "<note_id>",
            _uuid5(f"{flow_id}/state/{state}/{event_key}"): "<state_id>",
        }
        #: values are written with millisecond precision, truncated
        self.start = start.replace(microsecond=start.microsecond // 1000 * 1000)

    def text(self, value: str) -> str:
        for real, name in self.names.items():
            value = value.replace(real, name)
        return value

    def header(self, name: str, raw: bytes) -> tuple[str, str]:
        value = raw.decode("utf-8")
        if name == "ce_time":
            assert _TIME.fullmatch(value), value
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            assert self.start <= moment <= datetime.now(UTC), value
            return name, "<time>"
        if name == "traceparent":
            match = _TRACEPARENT.fullmatch(value)
            assert match, value
            assert match.group(2) != "00f067aa0ba902b7"  # a new span
            trace = "<member trace>" if match.group(1) == TRACE_ID else "<new trace>"
            return name, f"00-{trace}-<span>-01"
        return name, self.text(value)

    def value(self, item: Any) -> Any:
        if isinstance(item, dict):
            return {k: self.value(v) for k, v in item.items()}
        if isinstance(item, list):
            return [self.value(v) for v in item]
        if isinstance(item, str):
            return self.text(item)
        if isinstance(item, datetime):
            assert self.start <= item <= datetime.now(UTC)
            return "<time>"
        return item


def _normalise(codec: AvroCodec, outs: list[Outbound], norm: Normaliser,
               forwarded: bytes | None) -> list[dict[str, Any]]:
    shown = []
    for out in outs:
        assert out.value is not None
        if out.value == forwarded:
            body: Any = "<the submission, byte for byte>"
        else:
            decoded = codec.decode(out.value)
            # the value is exactly what the codec writes for it (no stray encoding)
            assert codec.encode(decoded.schema_name, decoded.record) == out.value
            body = {"schema": decoded.schema_name, **norm.value(decoded.record)}
        shown.append({
            "topic": out.topic,
            "key": norm.text(out.key.decode("utf-8")) if out.key is not None else None,
            "headers": [norm.header(n, v) for n, v in out.headers],
            "value": body,
        })
    return shown


@dataclass
class Case:
    name: str
    value: bytes | None
    key: bytes | None = b"DELIB-2024-117"
    headers: list[tuple[str, bytes]] = field(default_factory=lambda: list(MEMBER_HEADERS))
    blobs: type[Blobs] = Blobs
    #: the flow id's (siren, submission id), the transition's state and event key
    flow: tuple[str, str] = (SIREN, "DELIB-2024-117")
    state: str = "rejected"
    event_key: str = "0:42"


def _cases(codec: AvroCodec) -> list[Case]:
    acte = codec.encode("ActeSubmission", _acte())
    bad_digests = _acte()
    bad_digests["document"]["blob"]["sha256"] = "../../etc/passwd"
    bad_digests["annexes"][0]["blob"]["sha256"] = "Z" * 64
    upper = _acte(annexes=[])
    upper["document"]["blob"]["sha256"] = DOC_SHA.upper()
    not_owned = _acte()
    not_owned["annexes"][0]["blob"].update(sha256=OTHER_SHA, size=10)
    wrong_size = _acte()
    wrong_size["annexes"][0]["blob"]["size"] = 1
    missing = _acte()
    missing["document"]["blob"]["sha256"] = MISSING_SHA
    lookup = codec.encode("RegistryLookup", {
        "request_id": "REQ-1", "member_siren": SIREN, "identifier": "21750001600019",
        "registry": "SIRENE", "purpose": None, "contract_submission_id": None})
    notification = codec.encode("Notification", {
        "event_id": "e", "flow_id": "f", "member_siren": SIREN, "flow_type": "acte",
        "kind": "ACCEPTED", "state": "received", "message": "m",
        "occurred_at": datetime(2024, 1, 1, tzinfo=UTC)})
    forged = [*MEMBER_HEADERS, ("relais_flow_id", _flow(OTHER_SIREN, "X").encode()),
              ("relais_member", OTHER_SIREN.encode()), ("relais_attempt", b"3"),
              ("relais_replay_count", b"2"), ("ce_dataschema", b"urn:forged:v99"),
              ("ce_type", b"forged")]
    unreadable = (SIREN, "unreadable:" + SUBMISSIONS + ":0:42")
    return [
        Case("accepted", acte, state="received", event_key=""),
        Case("accepted without annexes", codec.encode("ActeSubmission", _acte(annexes=[])),
             state="received", event_key=""),
        Case("accepted, no member headers", acte, headers=[], state="received", event_key=""),
        Case("accepted, unusable traceparent", acte, state="received", event_key="",
             headers=[("traceparent", b"00-zz-00-01"), ("traceparent", b"\xff")]),
        Case("accepted, forged internal headers", acte, headers=forged, state="received",
             event_key=""),
        Case("accepted registry lookup", lookup, key=b"REQ-1", flow=(SIREN, "REQ-1"),
             state="received", event_key=""),
        Case("member mismatch", codec.encode("ActeSubmission", _acte(member_siren=OTHER_SIREN))),
        Case("blob not found", codec.encode("ActeSubmission", missing)),
        Case("blob not owned", codec.encode("ActeSubmission", not_owned)),
        Case("blob size mismatch", codec.encode("ActeSubmission", wrong_size)),
        Case("invalid digests", codec.encode("ActeSubmission", bad_digests)),
        Case("upper-case digest", codec.encode("ActeSubmission", upper)),
        Case("empty submission id", codec.encode("ActeSubmission", _acte(submission_id="")),
             flow=(SIREN, "")),
        Case("oversize", codec.encode("ActeSubmission", _acte(objet="x" * 66_000))),
        Case("garbage", b'{"submission_id": "x"}'),
        Case("empty value, no key", None, key=None, flow=unreadable),
        Case("unknown fingerprint", acte[:2] + bytes(8) + acte[10:]),
        Case("trailing bytes", acte + b"\x00"),
        Case("date out of range", overflowing(codec)),
        Case("unsupported schema", notification, flow=(SIREN, "")),
        Case("store refuses", acte, blobs=RefusingBlobs),
        Case("check breaks", acte, blobs=BuggyBlobs),
        Case("forged headers, rejected", overflowing(codec), headers=forged),
    ]


def _filesystem_store(root: Path) -> FilesystemBlobStore:
    """The blobs of :class:`Blobs` in a real store: files of their sizes where the store
    looks for them, and their owners' marks."""
    store = FilesystemBlobStore(root)
    blobs = Blobs()
    for digest, size in blobs.sizes.items():
        for path, content in ((store.path_for(digest), b"x" * size),
                              (store.owner_path(digest, blobs.owners[digest]), b"")):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    return store


#: What the stage runner binds around each record (``flow_id`` too: None, the ingress's
#: records having no ``relais_flow_id`` header once prepared); every log line carries it.
RUNNER_CONTEXT = {"stage": "ingress", "topic": SUBMISSIONS, "partition": 0, "offset": 42,
                  "member": None}


def _without_runner_context(line: dict[str, Any]) -> dict[str, Any]:
    assert {k: line.get(k) for k in RUNNER_CONTEXT} == RUNNER_CONTEXT
    return {k: v for k, v in line.items() if k not in RUNNER_CONTEXT}


async def _run(codec: AvroCodec, case: Case, *, prepared: bool = True,
               store: FilesystemBlobStore | None = None) -> dict[str, Any]:
    deps = _deps(codec, case.blobs() if store is None else store)
    record = FakeRecord(topic=SUBMISSIONS, partition=0, offset=42, key=case.key, value=case.value,
                        headers=list(case.headers))
    norm = Normaliser(_flow(*case.flow), case.state, case.event_key, datetime.now(UTC))
    # the log context the stage runner binds around each record; the lines carry it
    with capture_logs(processors=[merge_contextvars]) as logs, bound_contextvars(
        **RUNNER_CONTEXT, flow_id=None
    ):
        # as the stage runner hands it (its ``relais_*`` headers dropped), or as it came
        outs = await handle_submission(
            without_internal_headers(record) if prepared else record, deps)
    deps.counters.unsummarised.clear()
    return {
        "outputs": _normalise(codec, outs, norm, case.value),
        "logs": [_without_runner_context({k: norm.value(v) for k, v in line.items()
                                          if k != "exc_info"}) for line in logs],
        "accepted": deps.counters.accepted,
        "rejected": deps.counters.rejected,
        "asked": getattr(deps.blobs, "asked", None),
    }


def _transition(flow_type: str, submission_id: str | None, kind: str, state: str,
                message: str, sequence: int, trace: str = "<member trace>",
                reasons: list[tuple[str, str, str]] | None = None,
                error_code: str | None = None) -> list[dict[str, Any]]:
    """The notification and the flow event of one ingress transition, as normalised."""
    rejected = kind == "REJECTED"
    details = ({"topic": SUBMISSIONS, "partition": "0", "offset": "42"} if rejected else {})
    listed = [{"field": f, "code": c, "message": m} for f, c, m in reasons or []]
    common = {"flow_id": "<flow>", "member_siren": SIREN, "submission_id": submission_id,
              "flow_type": flow_type}

    def headers(event_id: str, full_name: str, version: int) -> list[Any]:
        return [("ce_specversion", "1.0"), ("ce_id", event_id),
                ("ce_source", "/relais/hub/ingress"), ("ce_type", full_name),
                ("ce_time", "<time>"), ("ce_subject", "<flow>"),
                ("ce_dataschema", f"urn:relais:schema:{full_name}:v{version}"),
                ("content-type", "application/avro"), ("relais_flow_id", "<flow>"),
                ("traceparent", f"00-{trace}-<span>-01"), ("relais_member", SIREN)]

    return [
        {"topic": member_topics.notifications(SIREN).name, "key": "<flow>",
         "headers": headers("<note_id>", "fr.relais.notifications.Notification", 1),
         "value": {"schema": "Notification", "event_id": "<note_id>", **common,
                   "kind": kind, "state": state, "message": message, "reasons": listed,
                   "partner_ref": None, "documents": [], "details": details,
                   "occurred_at": "<time>"}},
        {"topic": "relais.flows.events", "key": "<flow>",
         "headers": headers("<state_id>", "fr.relais.flows.FlowState", 2),
         "value": {"schema": "FlowState", "flow_id": "<flow>", "flow_type": flow_type,
                   "member_siren": SIREN, "submission_id": submission_id, "state": state,
                   "previous_state": None, "stage": "ingress", "sequence": sequence,
                   "partner_ref": None, "error_code": error_code,
                   "error_message": message if rejected else None, "details": details,
                   "reasons": listed, "occurred_at": "<time>"}},
    ]


def _forward(topic: str, full_name: str, version: int,
             trace: str = "<member trace>") -> dict[str, Any]:
    """The accepted submission, forwarded to its flow's first stage."""
    return {"topic": topic, "key": SIREN,
            "headers": [("ce_specversion", "1.0"), ("ce_id", "<note_id>-forward"),
                        ("ce_source", "/relais/hub/ingress"), ("ce_type", full_name),
                        ("ce_time", "<time>"), ("ce_subject", "<flow>"),
                        ("ce_dataschema", f"urn:relais:schema:{full_name}:v{version}"),
                        ("content-type", "application/avro"),
                        ("traceparent", f"00-{trace}-<span>-01"),
                        ("relais_flow_id", "<flow>"), ("relais_member", SIREN)],
            "value": "<the submission, byte for byte>"}


#: What the handler gave for each case before issue 12's ingress work (see the module
#: docstring); the log lines without the context the stage runner binds (RUNNER_CONTEXT).
EXPECTED: dict[str, dict[str, Any]] = {
    'accepted':
    {'transition': {'flow_type': 'acte',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'ACCEPTED',
                    'state': 'received',
                    'message': 'ActeSubmission DELIB-2024-117 received; checks continue',
                    'sequence': 1,
                    'trace': '<member trace>',
                    'reasons': [],
                    'error_code': None},
     'forward': ('relais.acts.submitted', 'fr.relais.acts.ActeSubmission', 2, '<member trace>'),
     'logs': [{'flow_type': 'acte',
               'event': 'ingress.accepted',
               'flow_id': '<flow>',
               'log_level': 'debug'}],
     'accepted': 1,
     'rejected': {},
     'asked': [('stat', DOC_SHA),
               ('owned_by', DOC_SHA),
               ('stat', ANNEX_SHA),
               ('owned_by',
                ANNEX_SHA)]},
    'accepted without annexes':
    {'transition': {'flow_type': 'acte',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'ACCEPTED',
                    'state': 'received',
                    'message': 'ActeSubmission DELIB-2024-117 received; checks continue',
                    'sequence': 1,
                    'trace': '<member trace>',
                    'reasons': [],
                    'error_code': None},
     'forward': ('relais.acts.submitted', 'fr.relais.acts.ActeSubmission', 2, '<member trace>'),
     'logs': [{'flow_type': 'acte',
               'event': 'ingress.accepted',
               'flow_id': '<flow>',
               'log_level': 'debug'}],
     'accepted': 1,
     'rejected': {},
     'asked': [('stat', DOC_SHA),
               ('owned_by',
                DOC_SHA)]},
    'accepted, no member headers':
    {'transition': {'flow_type': 'acte',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'ACCEPTED',
                    'state': 'received',
                    'message': 'ActeSubmission DELIB-2024-117 received; checks continue',
                    'sequence': 1,
                    'trace': '<new trace>',
                    'reasons': [],
                    'error_code': None},
     'forward': ('relais.acts.submitted', 'fr.relais.acts.ActeSubmission', 2, '<new trace>'),
     'logs': [{'flow_type': 'acte',
               'event': 'ingress.accepted',
               'flow_id': '<flow>',
               'log_level': 'debug'}],
     'accepted': 1,
     'rejected': {},
     'asked': [('stat', DOC_SHA),
               ('owned_by', DOC_SHA),
               ('stat', ANNEX_SHA),
               ('owned_by',
                ANNEX_SHA)]},
    'accepted, unusable traceparent':
    {'transition': {'flow_type': 'acte',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'ACCEPTED',
                    'state': 'received',
                    'message': 'ActeSubmission DELIB-2024-117 received; checks continue',
                    'sequence': 1,
                    'trace': '<new trace>',
                    'reasons': [],
                    'error_code': None},
     'forward': ('relais.acts.submitted', 'fr.relais.acts.ActeSubmission', 2, '<new trace>'),
     'logs': [{'flow_type': 'acte',
               'event': 'ingress.accepted',
               'flow_id': '<flow>',
               'log_level': 'debug'}],
     'accepted': 1,
     'rejected': {},
     'asked': [('stat', DOC_SHA),
               ('owned_by', DOC_SHA),
               ('stat', ANNEX_SHA),
               ('owned_by',
                ANNEX_SHA)]},
    'accepted, forged internal headers':
    {'transition': {'flow_type': 'acte',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'ACCEPTED',
                    'state': 'received',
                    'message': 'ActeSubmission DELIB-2024-117 received; checks continue',
                    'sequence': 1,
                    'trace': '<member trace>',
                    'reasons': [],
                    'error_code': None},
     'forward': ('relais.acts.submitted', 'fr.relais.acts.ActeSubmission', 2, '<member trace>'),
     'logs': [{'flow_type': 'acte',
               'event': 'ingress.accepted',
               'flow_id': '<flow>',
               'log_level': 'debug'}],
     'accepted': 1,
     'rejected': {},
     'asked': [('stat', DOC_SHA),
               ('owned_by', DOC_SHA),
               ('stat', ANNEX_SHA),
               ('owned_by',
                ANNEX_SHA)]},
    'accepted registry lookup':
    {'transition': {'flow_type': 'registry',
                    'submission_id': 'REQ-1',
                    'kind': 'ACCEPTED',
                    'state': 'received',
                    'message': 'RegistryLookup REQ-1 received; checks continue',
                    'sequence': 1,
                    'trace': '<member trace>',
                    'reasons': [],
                    'error_code': None},
     'forward': ('relais.registry.requested',
                 'fr.relais.registry.RegistryLookup',
                 2,
                 '<member trace>'),
     'logs': [{'flow_type': 'registry',
               'event': 'ingress.accepted',
               'flow_id': '<flow>',
               'log_level': 'debug'}],
     'accepted': 1,
     'rejected': {},
     'asked': []},
    'member mismatch':
    {'transition': {'flow_type': 'acte',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': "the submission's envelope was refused",
                    'sequence': 9,
                    'trace': '<member trace>',
                    'reasons': [('member_siren',
                                 'member_mismatch',
                                 "the submission names member '200066389' but was published on "
                                 'the topic of member 217500016')],
                    'error_code': 'invalid_envelope'},
     'forward': None,
     'logs': [{'code': 'invalid_envelope',
               'reason': "the submission's envelope was refused",
               'fields': ['member_siren'],
               'event': 'ingress.rejected',
               'flow_id': '<flow>',
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'invalid_envelope': 1},
     'asked': [('stat', DOC_SHA),
               ('owned_by', DOC_SHA),
               ('stat', ANNEX_SHA),
               ('owned_by',
                ANNEX_SHA)]},
    'blob not found':
    {'transition': {'flow_type': 'acte',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': "the submission's envelope was refused",
                    'sequence': 9,
                    'trace': '<member trace>',
                    'reasons': [('document.blob.sha256',
                                 'blob_not_found',
                                 'no blob with digest '
                                 'dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd '
                                 'was uploaded')],
                    'error_code': 'invalid_envelope'},
     'forward': None,
     'logs': [{'code': 'invalid_envelope',
               'reason': "the submission's envelope was refused",
               'fields': ['document.blob.sha256'],
               'event': 'ingress.rejected',
               'flow_id': '<flow>',
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'invalid_envelope': 1},
     'asked': [('stat', MISSING_SHA),
               ('stat', ANNEX_SHA),
               ('owned_by',
                ANNEX_SHA)]},
    'blob not owned':
    {'transition': {'flow_type': 'acte',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': "the submission's envelope was refused",
                    'sequence': 9,
                    'trace': '<member trace>',
                    'reasons': [('annexes[0].blob.sha256',
                                 'blob_not_owned',
                                 'the blob '
                                 'cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc '
                                 'was not uploaded by member 217500016')],
                    'error_code': 'invalid_envelope'},
     'forward': None,
     'logs': [{'code': 'invalid_envelope',
               'reason': "the submission's envelope was refused",
               'fields': ['annexes[0].blob.sha256'],
               'event': 'ingress.rejected',
               'flow_id': '<flow>',
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'invalid_envelope': 1},
     'asked': [('stat', DOC_SHA),
               ('owned_by', DOC_SHA),
               ('stat', OTHER_SHA),
               ('owned_by',
                OTHER_SHA)]},
    'blob size mismatch':
    {'transition': {'flow_type': 'acte',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': "the submission's envelope was refused",
                    'sequence': 9,
                    'trace': '<member trace>',
                    'reasons': [('annexes[0].blob.size',
                                 'blob_size_mismatch',
                                 'the blob has 20480 bytes, the submission says 1')],
                    'error_code': 'invalid_envelope'},
     'forward': None,
     'logs': [{'code': 'invalid_envelope',
               'reason': "the submission's envelope was refused",
               'fields': ['annexes[0].blob.size'],
               'event': 'ingress.rejected',
               'flow_id': '<flow>',
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'invalid_envelope': 1},
     'asked': [('stat', DOC_SHA),
               ('owned_by', DOC_SHA),
               ('stat', ANNEX_SHA),
               ('owned_by',
                ANNEX_SHA)]},
    'invalid digests':
    {'transition': {'flow_type': 'acte',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': "the submission's envelope was refused",
                    'sequence': 9,
                    'trace': '<member trace>',
                    'reasons': [('document.blob.sha256',
                                 'invalid_sha256',
                                 'a SHA-256 digest must be 64 hexadecimal digits, got '
                                 "'../../etc/passwd'"),
                                ('annexes[0].blob.sha256',
                                 'invalid_sha256',
                                 'a SHA-256 digest must be 64 hexadecimal digits, got '
                                 "'ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ'")],
                    'error_code': 'invalid_envelope'},
     'forward': None,
     'logs': [{'code': 'invalid_envelope',
               'reason': "the submission's envelope was refused",
               'fields': ['document.blob.sha256', 'annexes[0].blob.sha256'],
               'event': 'ingress.rejected',
               'flow_id': '<flow>',
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'invalid_envelope': 1},
     'asked': []},
    'upper-case digest':
    {'transition': {'flow_type': 'acte',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': "the submission's envelope was refused",
                    'sequence': 9,
                    'trace': '<member trace>',
                    'reasons': [('document.blob.sha256',
                                 'blob_not_found',
                                 'no blob with digest '
                                 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA '
                                 'was uploaded')],
                    'error_code': 'invalid_envelope'},
     'forward': None,
     'logs': [{'code': 'invalid_envelope',
               'reason': "the submission's envelope was refused",
               'fields': ['document.blob.sha256'],
               'event': 'ingress.rejected',
               'flow_id': '<flow>',
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'invalid_envelope': 1},
     'asked': [('stat', DOC_SHA.upper())]},
    'empty submission id':
    {'transition': {'flow_type': 'acte',
                    'submission_id': '',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': "the submission's envelope was refused",
                    'sequence': 9,
                    'trace': '<member trace>',
                    'reasons': [('submission_id', 'required', 'submission_id is empty')],
                    'error_code': 'invalid_envelope'},
     'forward': None,
     'logs': [{'code': 'invalid_envelope',
               'reason': "the submission's envelope was refused",
               'fields': ['submission_id'],
               'event': 'ingress.rejected',
               'flow_id': '<flow>',
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'invalid_envelope': 1},
     'asked': [('stat', DOC_SHA),
               ('owned_by', DOC_SHA),
               ('stat', ANNEX_SHA),
               ('owned_by',
                ANNEX_SHA)]},
    'oversize':
    {'transition': {'flow_type': 'unknown',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': 'the record has 66286 bytes, more than the 65536 accepted; '
                               'upload documents as blobs and reference them',
                    'sequence': 2,
                    'trace': '<member trace>',
                    'reasons': [('value', 'oversize', '66286 > 65536 bytes')],
                    'error_code': 'oversize'},
     'forward': None,
     'logs': [{'code': 'oversize',
               'reason': 'the record has 66286 bytes, more than the 65536 accepted; upload '
                         'documents as blobs and reference them',
               'fields': ['value'],
               'event': 'ingress.rejected',
               'flow_id': None,
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'oversize': 1},
     'asked': []},
    'garbage':
    {'transition': {'flow_type': 'unknown',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': 'unreadable submission: value is not Avro single-object encoded '
                               '(bad marker bytes)',
                    'sequence': 2,
                    'trace': '<member trace>',
                    'reasons': [('value',
                                 'value_decode',
                                 'value is not Avro single-object encoded (bad marker bytes)')],
                    'error_code': 'value_decode'},
     'forward': None,
     'logs': [{'code': 'value_decode',
               'reason': 'unreadable submission: value is not Avro single-object encoded (bad '
                         'marker bytes)',
               'fields': ['value'],
               'event': 'ingress.rejected',
               'flow_id': None,
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'value_decode': 1},
     'asked': []},
    'empty value, no key':
    {'transition': {'flow_type': 'unknown',
                    'submission_id': None,
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': 'unreadable submission: value is not Avro single-object encoded '
                               '(bad marker bytes)',
                    'sequence': 2,
                    'trace': '<member trace>',
                    'reasons': [('value',
                                 'value_decode',
                                 'value is not Avro single-object encoded (bad marker bytes)')],
                    'error_code': 'value_decode'},
     'forward': None,
     'logs': [{'code': 'value_decode',
               'reason': 'unreadable submission: value is not Avro single-object encoded (bad '
                         'marker bytes)',
               'fields': ['value'],
               'event': 'ingress.rejected',
               'flow_id': None,
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'value_decode': 1},
     'asked': []},
    'unknown fingerprint':
    {'transition': {'flow_type': 'unknown',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': 'unreadable submission: value written with an unknown schema '
                               '(fingerprint 0000000000000000)',
                    'sequence': 2,
                    'trace': '<member trace>',
                    'reasons': [('value',
                                 'unknown_schema',
                                 'value written with an unknown schema (fingerprint '
                                 '0000000000000000)')],
                    'error_code': 'unknown_schema'},
     'forward': None,
     'logs': [{'code': 'unknown_schema',
               'reason': 'unreadable submission: value written with an unknown schema '
                         '(fingerprint 0000000000000000)',
               'fields': ['value'],
               'event': 'ingress.rejected',
               'flow_id': None,
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'unknown_schema': 1},
     'asked': []},
    'trailing bytes':
    {'transition': {'flow_type': 'unknown',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': 'unreadable submission: trailing bytes after a ActeSubmission '
                               'value',
                    'sequence': 2,
                    'trace': '<member trace>',
                    'reasons': [('value',
                                 'value_decode',
                                 'trailing bytes after a ActeSubmission value')],
                    'error_code': 'value_decode'},
     'forward': None,
     'logs': [{'code': 'value_decode',
               'reason': 'unreadable submission: trailing bytes after a ActeSubmission value',
               'fields': ['value'],
               'event': 'ingress.rejected',
               'flow_id': None,
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'value_decode': 1},
     'asked': []},
    'date out of range':
    {'transition': {'flow_type': 'unknown',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': 'unreadable submission: ActeSubmission value out of range: '
                               'decision_date: 2147483647 is out of range for a date (signed '
                               'integer is greater than maximum)',
                    'sequence': 2,
                    'trace': '<member trace>',
                    'reasons': [('decision_date',
                                 'out_of_range',
                                 '2147483647 is out of range for a date (signed integer is '
                                 'greater than maximum)')],
                    'error_code': 'value_decode'},
     'forward': None,
     'logs': [{'code': 'value_decode',
               'reason': 'unreadable submission: ActeSubmission value out of range: '
                         'decision_date: 2147483647 is out of range for a date (signed integer '
                         'is greater than maximum)',
               'fields': ['decision_date'],
               'event': 'ingress.rejected',
               'flow_id': None,
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'value_decode': 1},
     'asked': []},
    'unsupported schema':
    {'transition': {'flow_type': 'unknown',
                    'submission_id': '',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': 'Notification is not accepted on a submissions topic',
                    'sequence': 2,
                    'trace': '<member trace>',
                    'reasons': [('value', 'unsupported_schema', 'Notification')],
                    'error_code': 'unsupported_schema'},
     'forward': None,
     'logs': [{'code': 'unsupported_schema',
               'reason': 'Notification is not accepted on a submissions topic',
               'fields': ['value'],
               'event': 'ingress.rejected',
               'flow_id': '<flow>',
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'unsupported_schema': 1},
     'asked': []},
    'store refuses':
    {'transition': {'flow_type': 'unknown',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': 'the submission could not be checked: store refused it',
                    'sequence': 2,
                    'trace': '<member trace>',
                    'reasons': [('sha256',
                                 'invalid_sha256',
                                 'A SHA-256 digest must be 64 hexadecimal digits.')],
                    'error_code': 'validation'},
     'forward': None,
     'logs': [{'error': 'store refused it',
               'event': 'ingress.check_failed',
               'flow_id': None,
               'log_level': 'error'},
              {'code': 'validation',
               'reason': 'the submission could not be checked: store refused it',
               'fields': ['sha256'],
               'event': 'ingress.rejected',
               'flow_id': None,
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'validation': 1},
     'asked': []},
    'check breaks':
    {'transition': {'flow_type': 'unknown',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': 'the submission could not be checked: a check blew up',
                    'sequence': 2,
                    'trace': '<member trace>',
                    'reasons': [('value', 'unprocessable', 'OverflowError: a check blew up')],
                    'error_code': 'unprocessable'},
     'forward': None,
     'logs': [{'error': 'a check blew up',
               'event': 'ingress.check_failed',
               'flow_id': None,
               'log_level': 'error'},
              {'code': 'unprocessable',
               'reason': 'the submission could not be checked: a check blew up',
               'fields': ['value'],
               'event': 'ingress.rejected',
               'flow_id': None,
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'unprocessable': 1},
     'asked': []},
    'forged headers, rejected':
    {'transition': {'flow_type': 'unknown',
                    'submission_id': 'DELIB-2024-117',
                    'kind': 'REJECTED',
                    'state': 'rejected',
                    'message': 'unreadable submission: ActeSubmission value out of range: '
                               'decision_date: 2147483647 is out of range for a date (signed '
                               'integer is greater than maximum)',
                    'sequence': 2,
                    'trace': '<member trace>',
                    'reasons': [('decision_date',
                                 'out_of_range',
                                 '2147483647 is out of range for a date (signed integer is '
                                 'greater than maximum)')],
                    'error_code': 'value_decode'},
     'forward': None,
     'logs': [{'code': 'value_decode',
               'reason': 'unreadable submission: ActeSubmission value out of range: '
                         'decision_date: 2147483647 is out of range for a date (signed integer '
                         'is greater than maximum)',
               'fields': ['decision_date'],
               'event': 'ingress.rejected',
               'flow_id': None,
               'log_level': 'warning'}],
     'accepted': 0,
     'rejected': {'value_decode': 1},
     'asked': []},
}


def test_every_case_has_an_expectation(codec: AvroCodec) -> None:
    assert [case.name for case in _cases(codec)] == list(EXPECTED)


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "raw"])
@pytest.mark.parametrize("name", list(EXPECTED))
async def test_the_handler_publishes_and_logs_what_it_did_before(
    codec: AvroCodec, name: str, prepared: bool
) -> None:
    [case] = [case for case in _cases(codec) if case.name == name]
    expected = EXPECTED[name]
    got = await _run(codec, case, prepared=prepared)
    outputs = _transition(**expected["transition"])
    if expected["forward"] is not None:
        outputs.append(_forward(*expected["forward"]))
    assert got["outputs"] == outputs
    assert got["logs"] == expected["logs"]
    assert got["accepted"] == expected["accepted"]
    assert got["rejected"] == expected["rejected"]
    assert got["asked"] == expected["asked"]


# the fakes' failures aside, and the upper-case digest: the fake store is exact, the real
# one reads digests in any case (the real store accepts that submission, before as now)
@pytest.mark.parametrize("name", [case for case in EXPECTED if case not in (
    "store refuses", "check breaks", "upper-case digest")])
async def test_the_same_with_the_filesystem_store(
    codec: AvroCodec, name: str, tmp_path: Path
) -> None:
    """The real store answers the blob questions in one look-up per record: same outputs."""
    [case] = [case for case in _cases(codec) if case.name == name]
    expected = EXPECTED[name]
    got = await _run(codec, case, store=_filesystem_store(tmp_path))
    outputs = _transition(**expected["transition"])
    if expected["forward"] is not None:
        outputs.append(_forward(*expected["forward"]))
    assert got["outputs"] == outputs
    assert got["logs"] == expected["logs"]
    assert (got["accepted"], got["rejected"]) == (expected["accepted"], expected["rejected"])


@pytest.mark.parametrize("siren", [UNKNOWN_SIREN])
async def test_a_record_of_an_unknown_member_still_raises(codec: AvroCodec, siren: str) -> None:
    topic = member_topics.submissions(siren).name
    for value in (codec.encode("ActeSubmission", _acte(member_siren=siren)), b"\x00garbage"):
        deps = _deps(codec)
        with capture_logs() as logs, pytest.raises(UnknownMemberError) as raised:
            await handle_submission(FakeRecord(topic=topic, offset=7, key=b"K-1", value=value,
                                                  headers=list(MEMBER_HEADERS)), deps)
        assert raised.value.code == "unknown_member"
        assert f"member {siren} is not registered, nobody to tell" in str(raised.value)
        assert logs == []
        assert sum(deps.counters.rejected.values()) == 1
