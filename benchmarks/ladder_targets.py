"""Issue 12's targets, checked against one ladder run's figures and printed met / not met."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: L2 ingress against the bare loops (issue 12: "L2 ingress ≥ 0.5 × L1 and ≥ 0.8 × L1b").
INGRESS_VS_L1 = 0.5
INGRESS_VS_L1B = 0.8
L3_ACTES_PER_SECOND = 500.0
POSTED_P99_MS = 1000.0
WORKER_RSS_MIB = 300.0


@dataclass(frozen=True)
class Target:
    """One target: ``measured`` against ``bound`` (at least, or under when ``at_least``
    is False); ``how`` says where ``measured`` comes from."""

    name: str
    measured: float
    bound: float
    at_least: bool
    how: str = ""

    @property
    def met(self) -> bool:
        return self.measured >= self.bound if self.at_least else self.measured < self.bound

    def line(self) -> str:
        sign = ">=" if self.at_least else "<"
        verdict = "met" if self.met else "NOT MET"
        how = f" ({self.how})" if self.how else ""
        return (f"  {self.name} = {_number(self.measured)}{how}; target {sign} "
                f"{_number(self.bound)}: {verdict}")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "measured": self.measured, "bound": self.bound,
                "at_least": self.at_least, "met": self.met, "how": self.how}


def _number(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 10 else f"{value:,.0f}"


def ratio(name: str, over: tuple[str, float], under: tuple[str, float],
          bound: float) -> Target | None:
    """``over`` / ``under`` (each a rung's name and rate) against ``bound``; None when
    either rate is missing."""
    if over[1] <= 0 or under[1] <= 0:
        return None
    return Target(name, over[1] / under[1], bound, at_least=True,
                  how=f"{over[1]:,.0f}/s over {under[0]}'s {under[1]:,.0f}/s")


def target_lines(targets: list[Target]) -> list[str]:
    if not targets:
        return []
    met = sum(t.met for t in targets)
    return [f"targets (issue 12), this run: {met} of {len(targets)} met",
            *(t.line() for t in targets)]
