"""The reusable sandbox machinery (sandbox/common): seeded draws, the simulator, the
transport fault wrapper, the control endpoints and serving several sandboxes at once."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from relais.errors import ValidationError
from sandbox.catalogue import SANDBOXES, by_name
from sandbox.common.clock import AdjustableClock
from sandbox.common.control import Control
from sandbox.common.faults import TransportDraw, TransportFaults, draw_transport
from sandbox.common.server import running_sandbox
from sandbox.common.simulator import Simulator
from sandbox.common.wrapper import FaultWrapper

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class ToyFaults(TransportFaults):
    """A partner's own knob beside the transport ones."""

    RATES: ClassVar[tuple[str, ...]] = (*TransportFaults.RATES, "refusal_rate")
    refusal_rate: float = 0.0


class ToyState(Simulator[ToyFaults]):
    def reset(self, *, keep_faults: bool = False) -> None:
        super().reset(keep_faults=keep_faults)
        self.items: list[str] = []


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def toy_app(
    faults: ToyFaults = ToyFaults(),
    *,
    seed: int = 7,
    sleep: Sleeps | None = None,
    auth: bool = False,
) -> tuple[Starlette, ToyState]:
    """A minimal partner: ``POST /items`` creates, ``GET /items`` lists."""
    clock = AdjustableClock(lambda: START)
    state = ToyState(clock, random.Random(seed), faults)

    async def create(request: Request) -> Response:
        state.items.append((await request.body()).decode())
        state.count("created", request.headers.get("x-login"))
        return PlainTextResponse(str(len(state.items)), status_code=201)

    async def listing(request: Request) -> Response:
        return PlainTextResponse("\n".join(state.items))

    async def authenticate(request: Request) -> Response | None:
        if request.headers.get("x-login") == "member":
            return None
        return PlainTextResponse("who are you?", status_code=401)

    wrapper = FaultWrapper(
        state, "toy", sleep=sleep or Sleeps(), authenticate=authenticate if auth else None
    )
    routes = [
        Route("/items", wrapper.wrap(create, creates=True), methods=["POST"]),
        Route("/items", wrapper.wrap(listing), methods=["GET"]),
        *Control(state, "toy").routes(),
    ]
    return Starlette(routes=routes), state


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://toy")


# -- seeded draws -------------------------------------------------------------------------


def test_transport_draws_replay_with_the_same_seed_and_differ_with_another() -> None:
    faults = TransportFaults(
        jitter_ms=100, error_rate=0.3, timeout_rate=0.3, error_after_commit_rate=0.3
    )

    def run(seed: int) -> list[TransportDraw]:
        rng = random.Random(seed)
        return [draw_transport(faults, rng, creates=True) for _ in range(50)]

    assert run(1) == run(1)
    assert run(1) != run(2)
    fates = run(1)
    assert any(f.fail_before for f in fates) and not all(f.fail_before for f in fates)


def test_the_number_of_draws_per_call_does_not_depend_on_the_knobs() -> None:
    quiet, noisy = random.Random(3), random.Random(3)
    draw_transport(TransportFaults(), quiet, creates=True)
    draw_transport(TransportFaults(error_rate=1.0, jitter_ms=5), noisy, creates=True)
    assert quiet.random() == noisy.random()


def test_knobs_are_validated_and_partner_rates_join_the_transport_ones() -> None:
    faults = ToyFaults().updated({"refusal_rate": 0.5, "error_status": 429, "retry_after": 2})
    assert (faults.refusal_rate, faults.error_status, faults.retry_after) == (0.5, 429, 2.0)
    assert isinstance(faults, ToyFaults)
    for bad in ({"refusal_rate": 2}, {"error_status": 404}, {"nope": 1}, {"latency_ms": "x"}):
        with pytest.raises(ValidationError):
            ToyFaults().updated(bad)


# -- simulator ----------------------------------------------------------------------------


def test_scheduled_actions_run_in_time_order_when_the_clock_reaches_them() -> None:
    clock = AdjustableClock(lambda: START)
    simulator: Simulator[TransportFaults] = Simulator(clock, random.Random(0), TransportFaults())
    ran: list[str] = []
    simulator.schedule(START + timedelta(seconds=10), lambda: ran.append("late"))
    simulator.schedule(START + timedelta(seconds=5), lambda: ran.append("early"))
    simulator.schedule(START + timedelta(seconds=5), lambda: ran.append("early-second"))
    simulator.advance()
    assert ran == []
    clock.advance(5)
    simulator.advance()
    assert ran == ["early", "early-second"]
    clock.advance(5)
    simulator.advance()
    assert ran == ["early", "early-second", "late"] and simulator.pending_actions() == 0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_reset_replays_the_streams_and_restores_the_initial_knobs() -> None:
    simulator: Simulator[TransportFaults] = Simulator(
        AdjustableClock(),
        random.Random(11),
        TransportFaults(),
    )
    first = [simulator.draw_fault(0.5) for _ in range(20)], simulator.outcome_rng.random()
    simulator.faults = simulator.faults.updated({"error_rate": 1})
    simulator.count("calls", "member")
    simulator.reset()
    again = [simulator.draw_fault(0.5) for _ in range(20)], simulator.outcome_rng.random()
    assert first == again
    assert simulator.faults == TransportFaults()
    assert simulator.counters == {} and simulator.member_counters == {}


# -- the wrapper --------------------------------------------------------------------------


async def test_an_error_before_commit_answers_the_status_and_does_nothing() -> None:
    app, state = toy_app(ToyFaults(error_rate=1.0, retry_after=3))
    async with client(app) as http:
        response = await http.post("/items", content=b"a")
    assert response.status_code == 503 and response.headers["retry-after"] == "3"
    assert state.items == [] and state.fault_counters["error"] == 1


async def test_an_error_after_commit_loses_the_answer_of_a_creation_only() -> None:
    app, state = toy_app(ToyFaults(error_after_commit_rate=1.0, error_status=502))
    async with client(app) as http:
        created = await http.post("/items", content=b"a")
        listed = await http.get("/items")
    assert created.status_code == 502 and state.items == ["a"]
    assert listed.status_code == 200 and listed.text == "a"
    assert state.fault_counters["error_after_commit"] == 1


async def test_latency_and_hang_are_slept_through_the_injected_sleep() -> None:
    sleeps = Sleeps()
    app, state = toy_app(ToyFaults(latency_ms=250, timeout_rate=1.0, hang_seconds=9), sleep=sleeps)
    async with client(app) as http:
        response = await http.get("/items")
    assert response.status_code == 200
    assert sleeps.calls == [0.25, 9] and state.fault_counters["timeout"] == 1


async def test_the_auth_hook_answers_the_partner_refusal_after_the_transport_faults() -> None:
    app, state = toy_app(auth=True)
    async with client(app) as http:
        refused = await http.post("/items", content=b"a")
        accepted = await http.post("/items", content=b"b", headers={"x-login": "member"})
    assert refused.status_code == 401 and accepted.status_code == 201
    assert state.items == ["b"] and state.counters["auth_refused"] == 1


# -- control endpoints --------------------------------------------------------------------


async def test_control_endpoints_change_knobs_advance_the_clock_count_and_reset() -> None:
    app, state = toy_app()
    async with client(app) as http:
        changed = await http.post("/sandbox/faults", json={"refusal_rate": 0.25})
        assert changed.status_code == 200 and changed.json()["refusal_rate"] == 0.25
        bad = await http.post("/sandbox/faults", json={"error_rate": 3})
        assert bad.status_code == 400 and bad.json()["reasons"][0]["field"] == "error_rate"
        assert (await http.post("/sandbox/faults", content=b"[1]")).status_code == 400
        await http.post("/items", content=b"a", headers={"x-login": "member"})
        stats = (await http.get("/sandbox/stats")).json()
        assert stats["created"] == 1 and stats["members"] == {"member": {"created": 1}}
        clock = await http.post("/sandbox/clock", json={"advance_seconds": 60})
        assert clock.json()["clock"] == (START + timedelta(seconds=60)).isoformat()
        assert (await http.post("/sandbox/clock", json={"advance_seconds": -1})).status_code == 400
        assert (await http.post("/sandbox/reset")).json() == {"result": "ok"}
        assert (await http.get("/sandbox/faults")).json()["refusal_rate"] == 0.0
    assert state.items == [] and state.counters == {}


async def test_a_clock_that_cannot_move_is_refused() -> None:
    simulator: Simulator[TransportFaults] = Simulator(
        lambda: START,
        random.Random(0),
        TransportFaults(),
    )
    app = Starlette(routes=Control(simulator, "fixed").routes())
    async with client(app) as http:
        response = await http.post("/sandbox/clock", json={"advance_seconds": 1})
    assert response.status_code == 409


# -- serving ------------------------------------------------------------------------------


async def test_two_sandboxes_run_side_by_side_on_their_own_ports() -> None:
    first, first_state = toy_app()
    second, second_state = toy_app()
    async with running_sandbox(first) as one, running_sandbox(second) as two:
        assert one.url != two.url
        async with httpx.AsyncClient(timeout=5) as http:
            await http.post(f"{one.url}/items", content=b"to-one")
            await http.post(f"{two.url}/sandbox/faults", json={"error_rate": 1})
            failed = await http.post(f"{two.url}/items", content=b"to-two")
            listed = await http.get(f"{one.url}/items")
    assert listed.text == "to-one" and failed.status_code == 503
    assert first_state.items == ["to-one"] and second_state.items == []


def test_the_catalogue_names_each_partner_once_with_its_own_port() -> None:
    names = [p.name for p in SANDBOXES]
    assert "tdt" in names and len(set(names)) == len(names)
    offsets = [p.port_offset for p in SANDBOXES]
    assert len(set(offsets)) == len(offsets)
    assert by_name("tdt") == tuple(p for p in SANDBOXES if p.name == "tdt")
    assert by_name("") == SANDBOXES
    with pytest.raises(KeyError):
        by_name("tdt,nope")


def test_the_tdt_entry_builds_the_tdt_sandbox_with_its_accounts() -> None:
    built = by_name("tdt")[0].create(None)
    assert "demo" in built.accounts
    assert any(getattr(r, "path", "") == "/sandbox/faults" for r in built.app.routes)
