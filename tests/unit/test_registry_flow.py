"""The registry flow's declaration agrees with the other flows and the message contract."""

from __future__ import annotations

from agents.registry.flow import REGISTRY
from hub.flows import FLOWS
from relais.flows.kit import check_declarations, flow_topics, routes_of
from schemas import history, load_schema_json
from topics.registry import REGISTRY_CACHE, REGISTRY_LOOKUPS, REGISTRY_QUOTA


def test_the_registry_flow_fits_beside_the_running_flows() -> None:
    flows = FLOWS
    assert REGISTRY in flows
    check_declarations(flows)
    route = routes_of(flows)["RegistryLookup"]
    assert route.flow_type == "registry"
    names = [t.name for t in flow_topics(flows)]
    assert len(names) == len(set(names))
    assert {REGISTRY_LOOKUPS.name, REGISTRY_CACHE.name} <= set(names)


def test_one_lookup_partition_per_registry_and_compacted_state() -> None:
    registries = load_schema_json("RegistryLookup")["fields"][3]["type"]["symbols"]
    assert REGISTRY_LOOKUPS.partitions == len(registries) == 3
    assert REGISTRY_CACHE.cleanup_policy == REGISTRY_QUOTA.cleanup_policy == "compact"


def test_the_machine_answers_once() -> None:
    (machine,) = REGISTRY.machines
    assert machine.allows("received", "pending") and machine.allows("pending", "answered")
    assert not machine.allows("answered", "pending")
    assert machine.allows("pending", "failed") and not machine.allows("answered", "failed")


def test_the_lookup_schema_is_recorded() -> None:
    assert history("RegistryLookup")[-1] == (2, load_schema_json("RegistryLookup"))
