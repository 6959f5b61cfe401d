"""The simulation core every partner sandbox runs on.

A :class:`Simulator` holds the clock, the actions scheduled on it (a heap applied in time
order by :meth:`Simulator.advance`, which every call runs first), two seeded random
streams and the counters ``GET /sandbox/stats`` shows:

- the *outcome* stream draws a fixed number of values per business event (the fate of an
  acte when it is posted, the answer of a signature), whatever the knobs;
- the *fault* stream draws per call (transport faults, partner glitches).

Polling more or less often never changes an outcome, and a seed replays a run. Methods are
synchronous and never await: each call's check-then-record is atomic on the event loop.

A partner's state subclasses it (``class TdtState(Simulator[Faults])``), overrides
:meth:`reset` (calling ``super().reset(...)`` first) and :meth:`stats`.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from sandbox.common.clock import Clock
from sandbox.common.faults import TransportFaults, draw

F = TypeVar("F", bound=TransportFaults)
Action = Callable[[], None]


class Simulator(Generic[F]):
    """Clock, scheduled actions, seeded streams, fault knobs and counters of one sandbox."""

    def __init__(self, clock: Clock, rng: random.Random, faults: F) -> None:
        self.clock = clock
        self.initial_faults: F = faults
        self.faults: F = faults
        self._seed = rng.getrandbits(64)
        self.reset(keep_faults=True)

    def reset(self, *, keep_faults: bool = False) -> None:
        """Forget scheduled actions and counters; re-seed the streams.

        The fault knobs go back to the initial ones unless ``keep_faults``.
        """
        self.outcome_rng = random.Random(self._seed)  # noqa: S311 - simulation
        self.fault_rng = random.Random(self._seed ^ 0x5EED)  # noqa: S311 - simulation
        if not keep_faults:
            self.faults = self.initial_faults
        self._events: list[tuple[datetime, int, Action]] = []
        self._event_seq = 0
        self.counters: Counter[str] = Counter()
        self.fault_counters: Counter[str] = Counter()
        self.member_counters: dict[str, Counter[str]] = {}

    def now(self) -> datetime:
        return self.clock()

    def schedule(self, at: datetime, action: Action) -> None:
        """Run ``action`` once the clock reaches ``at`` (ties: in scheduling order)."""
        self._event_seq += 1
        heapq.heappush(self._events, (at, self._event_seq, action))

    def pending_actions(self) -> int:
        """How many scheduled actions have not run yet."""
        return len(self._events)

    def advance(self) -> None:
        """Apply every scheduled action due at the clock's current time, in time order."""
        now = self.now()
        while self._events and self._events[0][0] <= now:
            _, _, action = heapq.heappop(self._events)
            action()

    def count(self, name: str, login: str | None = None, amount: int = 1) -> None:
        """Add to a counter, and to the account's own when ``login`` is given."""
        self.counters[name] += amount
        if login is not None:
            self.member_counters.setdefault(login, Counter())[name] += amount

    def draw_fault(self, rate: float) -> bool:
        """One draw of the fault stream (drawn even when ``rate`` is 0, for reproducibility)."""
        return draw(self.fault_rng, rate)

    def stats(self) -> dict[str, Any]:
        """The ``GET /sandbox/stats`` document (partners list their own counters)."""
        return {
            **dict(sorted(self.counters.items())),
            "faults": dict(sorted(self.fault_counters.items())),
            "members": {
                login: dict(sorted(counter.items()))
                for login, counter in sorted(self.member_counters.items())
            },
            "clock": self.now().isoformat(),
        }
