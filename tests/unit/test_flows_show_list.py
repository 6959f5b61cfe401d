"""`relais flows show|list` show the reasons under an error code (the envelope's sub-codes
such as member_mismatch or blob_not_found), in text and JSON, and `--error` matches them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from agents.ingress.handler import IngressCounters, IngressDeps, handle_submission
from hub.cli import flows_cmd
from hub.flows import FLOWS
from ops.flows import FlowFilter, error_codes, history_lines, state_line
from relais.api.auth import hash_token
from relais.errors import Reason
from relais.flows.kit import routes_of
from relais.flows.outbound import FlowContext, flow_state_record
from relais.members.model import Member
from relais.settings import Settings
from relais.stages.records import FakeRecord
from relais.wire.avro_codec import AvroCodec
from topics import member as member_topics
from topics.catalogue import FLOW_EVENTS

SIREN = "217500016"
OTHER = "200066389"
MISSING_SHA = "c" * 64


class OneMember:
    def get(self, siren: str) -> Member | None:
        if siren != SIREN:
            return None
        return Member(siren=SIREN, name="Commune", department="021",
                      token_sha256=hash_token("t"), registered_at=datetime(2024, 1, 1, tzinfo=UTC))


class NoBlobs:
    async def stat(self, sha256: str) -> int | None:
        return None

    async def owned_by(self, sha256: str, member: str) -> bool:
        return False


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def _submission() -> dict[str, Any]:
    return {
        "submission_id": "DELIB-1", "member_siren": OTHER, "nature_code": 1, "matieres": [7, 1],
        "numero_interne": "DE2024_1", "decision_date": date(2024, 5, 16), "objet": "Budget",
        "document": {"blob": {"sha256": MISSING_SHA, "size": 10, "media_type": "application/pdf",
                              "filename": "acte.pdf"}, "typology": None},
        "annexes": [], "document_papier": False,
    }


async def _ingress_rejection(codec: AvroCodec) -> dict[str, Any]:
    """The flow event the ingress writes for a known member's bad envelope, as read back."""
    deps = IngressDeps(codec=codec, members=OneMember(), blobs=NoBlobs(),
                       max_submission_bytes=64 * 1024, counters=IngressCounters(),
                       routes=routes_of(FLOWS))
    record = FakeRecord(topic=member_topics.submissions(SIREN).name, offset=7, key=b"DELIB-1",
                        value=codec.encode("ActeSubmission", _submission()))
    outs = await handle_submission(record, deps)  # type: ignore[arg-type]
    events = [o for o in outs if o.topic == FLOW_EVENTS.name]
    assert len(events) == 1
    assert events[0].value is not None
    state: dict[str, Any] = codec.decode(events[0].value, expected="FlowState").record
    return state


async def test_the_ingress_flow_event_carries_the_envelope_sub_codes(codec: AvroCodec) -> None:
    state = await _ingress_rejection(codec)
    codes = error_codes(state)
    assert "member_mismatch" in codes
    assert "blob_not_found" in codes
    assert codes[0] == state["error_code"]
    fields = {r["field"] for r in state["reasons"]}
    assert "member_siren" in fields


def _rejected(reasons: list[Reason], code: str = "invalid_envelope") -> dict[str, Any]:
    flow = FlowContext(f"{SIREN}-0000", SIREN, "acte", "S-1")
    record = flow_state_record(flow, state="rejected", previous_state=None, stage="ingress",
                               sequence=1, error_code=code,
                               error_message="the submission's envelope was refused",
                               reasons=reasons)
    decoded: dict[str, Any] = AvroCodec().decode(
        AvroCodec().encode("FlowState", record), expected="FlowState").record
    return decoded


MISMATCH = Reason("member_siren", "member_mismatch", "names member 200066389")
NOT_FOUND = Reason("document.blob.sha256", "blob_not_found", "no blob cccc")


def test_list_line_shows_the_code_and_its_sub_codes() -> None:
    line = state_line(_rejected([MISMATCH, NOT_FOUND]))
    assert line.endswith("invalid_envelope (member_mismatch, blob_not_found)")


def test_a_sub_code_equal_to_the_code_is_not_repeated() -> None:
    state = _rejected([Reason("value", "oversize", "too big")], code="oversize")
    assert error_codes(state) == ["oversize"]
    assert state_line(state).endswith("  oversize")


def test_show_lists_each_reason_under_its_event() -> None:
    lines = history_lines("f", [_rejected([MISMATCH, NOT_FOUND])])
    assert "error=invalid_envelope" in lines[1]
    assert lines[2].strip() == "- member_siren member_mismatch: names member 200066389"
    assert lines[3].strip() == "- document.blob.sha256 blob_not_found: no blob cccc"


@pytest.mark.parametrize(("prefix", "matches"), [
    ("member_mismatch", True), ("blob_", True), ("invalid_envelope", True),
    ("anomalie", False), ("member_siren", False),
])
def test_error_filter_matches_the_code_and_the_sub_codes(prefix: str, matches: bool) -> None:
    assert FlowFilter(error_code=prefix).matches(_rejected([MISMATCH, NOT_FOUND])) is matches


def test_events_written_before_reasons_existed_read_as_without_reasons() -> None:
    state = _rejected([])
    del state["reasons"]
    assert error_codes(state) == ["invalid_envelope"]
    assert FlowFilter(error_code="member_mismatch").matches(state) is False


def test_cli_show_and_list_print_the_sub_codes_with_and_without_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = _rejected([MISMATCH, NOT_FOUND])
    seen_filters: list[FlowFilter] = []

    async def history(bootstrap: str, flow_id: str, *, machines: Any) -> list[dict[str, Any]]:
        assert machines["acte"].flow_type == "acte"  # the CLI folds with the declared machines
        return [state]

    async def latest(bootstrap: str, flow_filter: FlowFilter) -> list[dict[str, Any]]:
        seen_filters.append(flow_filter)
        return [s for s in [state] if flow_filter.matches(s)]

    # load_settings would point structlog at the runner's captured stream, closed afterwards
    monkeypatch.setattr(flows_cmd, "load_settings", Settings.from_env)
    monkeypatch.setattr(flows_cmd, "flow_history", history)
    monkeypatch.setattr(flows_cmd, "latest_states", latest)
    runner = CliRunner()

    shown = runner.invoke(flows_cmd.app, ["show", "f"])
    assert shown.exit_code == 0, shown.output
    assert "member_siren member_mismatch" in shown.output
    assert "blob_not_found" in shown.output

    as_json = runner.invoke(flows_cmd.app, ["show", "f", "--json"])
    assert as_json.exit_code == 0, as_json.output
    codes = [r["code"] for r in json.loads(as_json.output)[0]["reasons"]]
    assert codes == ["member_mismatch", "blob_not_found"]

    listed = runner.invoke(flows_cmd.app, ["list", "--error", "member_mismatch"])
    assert listed.exit_code == 0, listed.output
    assert "invalid_envelope (member_mismatch, blob_not_found)" in listed.output
    assert "1 flows match" in listed.output
    assert seen_filters[-1].error_code == "member_mismatch"

    listed_json = runner.invoke(flows_cmd.app, ["list", "--error", "member_mismatch", "--json"])
    assert [r["code"] for r in json.loads(listed_json.output)[0]["reasons"]] == codes

    none = runner.invoke(flows_cmd.app, ["list", "--error", "anomalie"])
    assert "0 flows match" in none.output

