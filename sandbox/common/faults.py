"""Transport fault knobs and their seeded draws, shared by every partner sandbox.

Transport faults are what any HTTP partner can do to a caller, whatever its protocol:

============================  ============================================================
``latency_ms``                fixed delay added before every answer
``jitter_ms``                 extra delay, uniform in [0, jitter_ms]
``error_rate``                answer ``error_status`` (5xx or 429) *before* doing anything
``error_status``              the status of injected errors (503 by default; 429 allowed)
``retry_after``               seconds sent in ``Retry-After`` with injected errors
``timeout_rate``              handle the call, then wait ``hang_seconds`` before answering
``hang_seconds``              how long a "timeout" hangs (longer than the client's timeout)
``error_after_commit_rate``   on creations, do the work, *then* answer ``error_status``
============================  ============================================================

Partner-specific knobs (an anomaly, a refusal, a duplicated message) extend
:class:`TransportFaults` in the partner's package (a subclass adding fields, and their
names in ``RATES``): the control endpoints and the wrapper handle the whole object.

Draws come from the simulator's *fault* stream (:mod:`sandbox.common.simulator`), one fixed
number per call whatever the knobs, so a seed replays the same faults.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

from relais.errors import Reason, ValidationError


def draw(rng: random.Random, rate: float) -> bool:
    """One draw: true with probability ``rate`` (drawn even when ``rate`` is 0)."""
    return rng.random() < rate


@dataclass(frozen=True)
class TransportFaults:
    """The transport fault knobs; see the module docstring for what each one does."""

    RATES: ClassVar[tuple[str, ...]] = ("error_rate", "timeout_rate", "error_after_commit_rate")
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("latency_ms", "jitter_ms", "hang_seconds")

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    retry_after: float | None = None
    timeout_rate: float = 0.0
    hang_seconds: float = 30.0
    error_after_commit_rate: float = 0.0

    def reasons(self) -> list[Reason]:
        """Every knob out of its range."""
        reasons = []
        for name in type(self).RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                reasons.append(Reason(name, "range", f"a rate is in [0, 1], got {value}"))
        for name in type(self).NON_NEGATIVE:
            if getattr(self, name) < 0:
                reasons.append(Reason(name, "range", "must not be negative"))
        if self.retry_after is not None and self.retry_after < 0:
            reasons.append(Reason("retry_after", "range", "must not be negative"))
        if self.error_status != 429 and not 500 <= self.error_status <= 599:
            reasons.append(Reason("error_status", "range", "429 or a 5xx status"))
        return reasons

    def updated(self, changes: Mapping[str, Any]) -> Self:
        """A copy with ``changes`` applied; ValidationError for unknown knobs or bad values."""
        known = {f.name for f in fields(self)}
        reasons = []
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                reasons.append(Reason(name, "unknown", "not a fault knob"))
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if name == "retry_after" and value is None:
                values[name] = None
            elif name == "error_status":
                if number and float(value).is_integer():
                    values[name] = int(value)
                else:
                    reasons.append(Reason(name, "type", f"expected an HTTP status, got {value!r}"))
            elif number:
                values[name] = float(value)
            else:
                reasons.append(Reason(name, "type", f"expected a number, got {value!r}"))
        if reasons:
            raise ValidationError("invalid fault knobs", reasons=reasons)
        result = dataclasses.replace(self, **values)
        if result.reasons():
            raise ValidationError("invalid fault knobs", reasons=result.reasons())
        return result


@dataclass(frozen=True)
class TransportDraw:
    """What the transport does to one call."""

    delay_ms: float
    hang: bool
    fail_before: bool
    fail_after: bool


def draw_transport(faults: TransportFaults, rng: random.Random, *, creates: bool) -> TransportDraw:
    """The transport faults of one call: three draws (four on a creation), always."""
    delay_ms = faults.latency_ms + faults.jitter_ms * rng.random()
    hang = draw(rng, faults.timeout_rate)
    fail_before = draw(rng, faults.error_rate)
    fail_after = draw(rng, faults.error_after_commit_rate) if creates else False
    return TransportDraw(delay_ms, hang, fail_before, fail_after)
