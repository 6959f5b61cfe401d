"""The state of the sandbox registries: the generated data, the quotas and the counters."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from sandbox.common.clock import Clock
from sandbox.common.faults import TransportFaults
from sandbox.common.simulator import Simulator
from sandbox.registries.config import RegistriesConfig
from sandbox.registries.data import Dataset, generate
from sandbox.registries.quota import QuotaRule, RollingQuota

REGISTRIES = ("sirene", "entreprise", "annuaire")


class RegistriesState(Simulator[TransportFaults]):
    def __init__(self, config: RegistriesConfig, clock: Clock, rng: random.Random) -> None:
        self.config = config
        self.data: Dataset = generate(config.seed, config.companies)
        self.rules: dict[str, QuotaRule] = {
            "sirene": config.sirene_quota,
            "entreprise": config.entreprise_quota,
            "annuaire": config.annuaire_quota,
        }
        super().__init__(clock, rng, config.faults)

    def reset(self, *, keep_faults: bool = False) -> None:
        super().reset(keep_faults=keep_faults)
        self.quotas = {name: RollingQuota(self.rules[name]) for name in REGISTRIES}
        self.numbers: dict[str, Counter[str]] = {name: Counter() for name in REGISTRIES}

    def set_rule(self, registry: str, rule: QuotaRule) -> None:
        """Change a quota; its counts start again."""
        self.rules[registry] = rule
        self.quotas[registry] = RollingQuota(rule)

    def seconds(self) -> float:
        return self.now().timestamp()

    def admit(self, registry: str, key: str) -> float | None:
        """``None`` when the call fits the quota, else the seconds before it would."""
        wait = self.quotas[registry].admit(key, self.seconds())
        if wait is None:
            self.count(f"{registry}_requests")
        else:
            self.count(f"{registry}_quota_refused")
        return wait

    def asked(self, registry: str, number: str) -> None:
        self.numbers[registry][number] += 1

    def stats(self) -> dict[str, Any]:
        now = self.seconds()
        registries = {}
        for name in REGISTRIES:
            quota, numbers = self.quotas[name], self.numbers[name]
            registries[name] = {
                "limit": quota.rule.limit,
                "window_seconds": quota.rule.window_seconds,
                "in_rolling_window": quota.in_window(now),
                "max_in_rolling_window": quota.max_in_window,
                "quota_refused": quota.refused,
                "distinct_numbers": len(numbers),
                "numbers_asked_more_than_once": sum(1 for n in numbers.values() if n > 1),
            }
        return {**super().stats(), "registries": registries}
