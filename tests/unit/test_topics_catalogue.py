"""The topic catalogue: one declaration per topic, and nobody else spells topic names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from hub.flows import FLOWS
from topics import member as member_topics
from topics.catalogue import FLOW_EVENTS, FLOW_STATE, MEMBERS, hub_topics
from topics.spec import TopicSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
SCANNED_DIRS = ("agents", "connectors", "ops", "relais", "sandbox")
TOPIC_LITERAL = re.compile(r"[\"']relais\.(members|acts|flows|ingress|member)\b")
SIRENS = st.text(alphabet="0123456789", min_size=9, max_size=9)


HUB_TOPICS = hub_topics("relais-hub", FLOWS)


def _all_specs() -> list[TopicSpec]:
    return [*HUB_TOPICS, *member_topics.member_topics("217500016")]


def test_topic_names_are_unique() -> None:
    names = [spec.name for spec in _all_specs()]
    assert len(names) == len(set(names))
    assert len({spec.name for spec in HUB_TOPICS}) == len(HUB_TOPICS)


def test_member_topics_of_two_members_do_not_collide() -> None:
    one = {s.name for s in member_topics.member_topics("217500016")}
    two = {s.name for s in member_topics.member_topics("200066389")}
    assert not one & two
    assert not one & {s.name for s in HUB_TOPICS}


def test_no_topic_name_literal_outside_topics() -> None:
    offenders = []
    for directory in SCANNED_DIRS:
        for path in sorted((REPO_ROOT / directory).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for number, line in enumerate(text.splitlines(), start=1):
                if TOPIC_LITERAL.search(line):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert not offenders, (
        "topic names are spelled only in topics/ (use topics.catalogue / topics.member):\n"
        + "\n".join(offenders)
    )


def test_the_literal_scan_finds_what_it_should() -> None:
    assert TOPIC_LITERAL.search('name = "relais.flows.events"')
    assert TOPIC_LITERAL.search("f'relais.member.{siren}.submissions'")
    assert TOPIC_LITERAL.search('"relais.members"')
    assert not TOPIC_LITERAL.search('"relais.wire.headers"')
    assert not TOPIC_LITERAL.search("import relais.members.model")


@given(SIRENS)
def test_member_topic_names_round_trip(siren: str) -> None:
    submissions = member_topics.submissions(siren)
    notifications = member_topics.notifications(siren)
    assert submissions.name == f"relais.member.{siren}.submissions"
    assert notifications.name == f"relais.member.{siren}.notifications"
    assert member_topics.siren_of_submissions_topic(submissions.name) == siren
    assert member_topics.siren_of_submissions_topic(notifications.name) is None
    prefix = member_topics.member_prefix(siren)
    assert all(s.name.startswith(prefix) for s in member_topics.member_topics(siren))
    assert re.fullmatch(member_topics.SUBMISSIONS_PATTERN, submissions.name)


@pytest.mark.parametrize(
    "topic",
    [
        "relais.member.21750001.submissions",
        "relais.member.2175000161.submissions",
        "relais.member.21750001a.submissions",
        "relais.member.217500016.submissions.extra",
        "xrelais.member.217500016.submissions",
        "relais.member.217500016.notifications",
        "relais.acts.submitted",
    ],
)
def test_siren_of_other_topics_is_none(topic: str) -> None:
    assert member_topics.siren_of_submissions_topic(topic) is None


def test_member_prefix_does_not_cover_a_longer_siren() -> None:
    assert not member_topics.submissions("2175000161").name.startswith(
        member_topics.member_prefix("217500016")
    )


@pytest.mark.parametrize("spec", _all_specs(), ids=lambda s: s.name)
def test_configs_are_strings(spec: TopicSpec) -> None:
    configs = spec.configs()
    assert configs
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in configs.items())
    assert configs["cleanup.policy"] == spec.cleanup_policy
    assert int(configs["max.message.bytes"]) == spec.max_message_bytes


@pytest.mark.parametrize("spec", _all_specs(), ids=lambda s: s.name)
def test_retention_only_on_delete_topics(spec: TopicSpec) -> None:
    configs = spec.configs()
    if spec.cleanup_policy == "compact":
        assert "retention.ms" not in configs
    else:
        assert int(configs["retention.ms"]) == spec.retention_ms > 0


def test_the_tables_are_compacted() -> None:
    compacted = {s.name for s in HUB_TOPICS if s.cleanup_policy == "compact"}
    assert {MEMBERS.name, FLOW_STATE.name} <= compacted
    assert FLOW_EVENTS.name not in compacted


@pytest.mark.parametrize("spec", _all_specs(), ids=lambda s: s.name)
def test_value_schemas_exist(spec: TopicSpec) -> None:
    assert spec.value_schema == "raw" or spec.value_schema in schemas.schema_names()
    assert spec.partitions >= 1
    assert spec.doc


def test_member_topics_have_one_partition() -> None:
    assert all(s.partitions == 1 for s in member_topics.member_topics("217500016"))
