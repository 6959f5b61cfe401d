"""The ladder's L1b baseline writes what the hub's ingress writes: the shape measured from
the ingress's records (how many per input, value sizes, header names and value sizes),
and L1b's outputs built to it, headers included."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition

from benchmarks.ladder import (
    INGRESS,
    L1,
    L1B,
    L1B_BARE,
    Ladder,
    Rung,
    parse_args,
    report,
    targets,
)
from benchmarks.ladder_roles import batch_outputs, count_sent
from benchmarks.ladder_targets import Target, ratio, target_lines
from benchmarks.output_shape import (
    DurableOutputs,
    OutputShape,
    ShapeMeter,
    Slot,
    header_bytes,
    l1b_topic,
    topic_family,
)
from relais.flows.outbound import FlowContext
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders

SIREN = "921000001"


def hub_headers(flow_id: str, type_: str) -> list[tuple[str, bytes]]:
    """Headers as the hub writes them (CloudEvents binary mode plus its own)."""
    return EventHeaders.new(source="urn:relais:hub:ingress", type=type_, subject=flow_id,
                            flow_id=flow_id, dataschema=f"urn:relais:schema:{type_}:v1",
                            extra={"relais_member": SIREN}).to_kafka()


@dataclass
class FakeRecord:
    value: bytes
    headers: list[tuple[str, bytes]]
    offset: int = 0


def measured_shape() -> OutputShape:
    meter = ShapeMeter()
    for n in range(4):
        flow = f"flow-{n:04d}"
        meter.add_input(b"s" * 600, [("ce_id", b"x" * 36)])
        meter.add_output("relais.acts.submitted", b"a" * 640,
                         hub_headers(flow, "fr.relais.acts.ActeSubmission"))
        meter.add_output("relais.flows.events", b"e" * 300,
                         hub_headers(flow, "fr.relais.flows.FlowState"))
        meter.add_output(f"relais.member.{SIREN}.notifications", b"n" * 250,
                         hub_headers(flow, "fr.relais.notifications.Notification"))
    return meter.shape(4)


def test_the_meter_gives_records_per_input_and_their_mean_sizes() -> None:
    shape = measured_shape()
    assert [s.topic for s in shape.slots] == [
        "relais.acts.submitted", "relais.flows.events", "relais.member.*.notifications"]
    assert shape.outputs_per_input == 3.0
    assert [s.value_bytes for s in shape.slots] == [640, 300, 250]
    assert shape.input_value_bytes == 600 and shape.input_header_bytes == len("ce_id") + 36
    real = hub_headers("flow-0000", "fr.relais.acts.ActeSubmission")
    submitted = shape.slots[0]
    assert [n for n, _ in submitted.headers] == [n for n, _ in real]
    assert submitted.header_bytes == header_bytes(real)
    assert shape.headers_per_output == len(real)


def test_l1b_sends_per_input_the_records_and_headers_of_the_shape() -> None:
    shape = measured_shape()
    codec = AvroCodec()
    outputs = DurableOutputs(codec, shape)
    flow = FlowContext("0" * 36, SIREN, "acte", "lad-17")
    sent = outputs.for_input(flow)
    assert [topic for topic, *_ in sent] == [
        "relais.bench-l1b.acts.submitted", "relais.bench-l1b.flows.events",
        f"relais.member.{SIREN}.notifications"]
    for (_topic, _key, value, headers), slot in zip(sent, shape.slots, strict=True):
        assert headers, "L1b must send the hub's headers"
        assert [(n, len(v)) for n, v in headers] == [
            (n, len(v.encode("latin-1"))) for n, v in slot.headers]
        assert abs(len(value) - slot.value_bytes) <= 2
        assert codec.decode(value, expected="Notification").record["flow_id"] == flow.flow_id
    assert sum(header_bytes(h) for *_, h in sent) == pytest.approx(
        shape.header_bytes_per_output * 3)


def test_l1b_batches_carry_headers_and_l1_batches_do_not() -> None:
    codec = AvroCodec()
    shape = measured_shape()
    tp = TopicPartition(f"relais.member.{SIREN}.submissions", 0)
    batch = {tp: [FakeRecord(b"not avro", [("ce_id", b"1")], offset=7),
                  FakeRecord(b"not avro either", [], offset=8)]}
    durable, offsets = batch_outputs(codec, batch, DurableOutputs(codec, shape))
    assert offsets == {tp: 9}
    assert len(durable) == 6 and all(headers for *_, headers in durable)
    bare, _ = batch_outputs(codec, batch, None)
    assert len(bare) == 2 and not any(headers for *_, headers in bare)

    sent: dict[str, int] = {}
    count_sent(sent, batch, durable)
    assert sent["inputs"] == 2 and sent["outputs"] == 6
    assert sent["header_bytes"] / sent["outputs"] == pytest.approx(
        shape.header_bytes_per_output, abs=0.5)
    assert sent["headers"] == 6 * shape.headers_per_output


def test_without_headers_keeps_the_records_and_drops_only_the_headers() -> None:
    shape = measured_shape().without_headers()
    sent = DurableOutputs(AvroCodec(), shape).for_input(
        FlowContext("1" * 36, SIREN, "acte", "x"))
    assert len(sent) == 3 and not any(headers for *_, headers in sent)


def test_a_fractional_rate_is_spread_over_the_inputs() -> None:
    shape = OutputShape(10, slots=(Slot("a", 1.0, 100), Slot("b", 0.3, 100)))
    outputs = DurableOutputs(AvroCodec(), shape)
    flow = FlowContext("2" * 36, SIREN, "acte", "x")
    assert sum(len(outputs.for_input(flow)) for _ in range(10)) == 13


def test_the_shape_survives_json_with_any_header_bytes() -> None:
    shape = OutputShape(2, 10.0, 5.0, (Slot("t", 1.5, 42, (("raw", "\xff\x00é"),)),))
    again = OutputShape.from_json(shape.to_json())
    assert again == shape
    assert again.slots[0].kafka_headers() == [("raw", b"\xff\x00\xe9")]


def test_member_topics_are_grouped_by_family_and_hub_topics_mirrored() -> None:
    assert topic_family(f"relais.member.{SIREN}.notifications") == (
        "relais.member.*.notifications")
    assert topic_family("relais.acts.submitted") == "relais.acts.submitted"
    assert l1b_topic("relais.member.*.notifications", SIREN) == (
        f"relais.member.{SIREN}.notifications")
    # the hub's stages never read what L1b writes in place of their topics
    assert l1b_topic("relais.acts.submitted", SIREN) == "relais.bench-l1b.acts.submitted"


def test_targets_say_met_or_not_met_with_the_figures() -> None:
    low = ratio("L2 ingress / L1b", ("L2 ingress", 2000.0), ("L1b", 7000.0), 0.8)
    high = ratio("L2 ingress / L1", ("L2 ingress", 2000.0), ("L1", 3000.0), 0.5)
    assert low is not None and high is not None
    assert not low.met and high.met
    assert ratio("x", ("a", 1.0), ("b", 0.0), 0.5) is None
    latency = Target("p99", 994.0, 1000.0, at_least=False)
    lines = target_lines([low, high, latency])
    assert lines[0] == "targets (issue 12), this run: 2 of 3 met"
    assert lines[1].endswith("target >= 0.80: NOT MET") and "0.29" in lines[1]
    assert lines[2].endswith("target >= 0.50: met")
    assert lines[3].endswith("target < 1,000: met")


def test_a_mirror_record_smaller_than_a_notification_is_cut_to_the_hub_size() -> None:
    codec = AvroCodec()
    shape = OutputShape(1, slots=(Slot("relais.flows.events", 1.0, 60),
                                  Slot("relais.member.*.notifications", 1.0, 60)))
    mirror, member = DurableOutputs(codec, shape).for_input(
        FlowContext("3" * 36, SIREN, "acte", "x"))
    assert len(mirror[2]) == 60
    # a member's topic is read by its back-office: its notification stays whole
    assert len(member[2]) > 60
    assert codec.decode(member[2], expected="Notification").record["flow_id"] == "3" * 36


def test_the_ladder_checks_each_target_its_rungs_measure() -> None:
    ladder = Ladder(rungs=[
        Rung(L1, "", per_second=8000.0), Rung(L1B, "", per_second=2500.0),
        Rung(L1B_BARE, "", per_second=7000.0), Rung(INGRESS, "", per_second=2100.0),
        Rung("L3 saturation", "", per_second=50.0, peak_rss_mib=133.0),
        Rung("L3 latency", "", per_second=25.0, peak_rss_mib=140.0,
             extra={"posted_p99_ms": 994.0}),
    ])
    found = {t.name: t for t in targets(ladder)}
    # the 0.8 target is against L1b with the hub's headers, never the header-less one
    assert found["L2 ingress / L1b"].measured == pytest.approx(2100 / 2500)
    assert found["L2 ingress / L1b"].met
    assert not found["L2 ingress / L1"].met
    assert not found["L3 actes/s at saturation, 1 worker"].met
    assert found["p99 publish -> posted, ms"].met
    assert found["worker peak RSS, MiB"].measured == 140.0
    assert len(found) == 5

    assert [t.name for t in targets(Ladder(rungs=[Rung(INGRESS, "", per_second=900.0)]))] == []


def test_the_report_prints_the_ratios_of_records_rungs_and_the_targets() -> None:
    ladder = Ladder(rungs=[
        Rung(L1, "", records=10, per_second=8000.0), Rung(L1B, "", records=10, per_second=4000.0),
        Rung(INGRESS, "", records=10, per_second=2000.0),
        Rung("L3 saturation", "", records=10, per_second=50.0),
    ], shape=measured_shape())
    text = report(parse_args([]), ladder)
    rows = {cells[0]: cells for line in text.splitlines()
            if line.startswith(("L1 ", "L1b ", "L2 ", "L3 "))
            and (cells := re.split(r"\s{2,}", line.strip()))}
    assert rows[INGRESS][3:5] == ["0.25", "0.50"]  # x L1, x L1b
    assert rows["L3 saturation"][3:5] == ["-", "-"]
    assert "  L2 ingress / L1b = 0.50 (2,000/s over L1b bare durable's 4,000/s); target >= " \
        "0.80: NOT MET" in text
    assert "L2 ingress wrote per input: 3.00 records" in text
