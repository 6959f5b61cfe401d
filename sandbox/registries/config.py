"""Configuration of the sandbox registries (a JSON file for ``relais sandbox --config
registries=…``, or the defaults)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relais.errors import ConfigurationError
from sandbox.common.faults import TransportFaults
from sandbox.registries.quota import QuotaRule

DEFAULT_SIRENE_KEY = "sandbox-sirene-key"
DEFAULT_ENTREPRISE_TOKEN = "sandbox-entreprise-token"  # noqa: S105 - sandbox credential
SIRENE_QUOTA = QuotaRule(30, 60.0)  # INSEE: 30 requests per minute per key
ENTREPRISE_QUOTA = QuotaRule(250, 60.0)  # API Entreprise: not verified (U)
ANNUAIRE_QUOTA = QuotaRule(0, 60.0)  # Annuaire: limits not published (U); 0 = none


@dataclass(frozen=True)
class RegistriesConfig:
    seed: int = 1
    companies: int = 400
    sirene_keys: tuple[str, ...] = (DEFAULT_SIRENE_KEY,)
    entreprise_tokens: tuple[str, ...] = (DEFAULT_ENTREPRISE_TOKEN,)
    sirene_quota: QuotaRule = SIRENE_QUOTA
    entreprise_quota: QuotaRule = ENTREPRISE_QUOTA
    annuaire_quota: QuotaRule = ANNUAIRE_QUOTA
    faults: TransportFaults = field(default_factory=TransportFaults)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> RegistriesConfig:
        known = {
            "seed",
            "companies",
            "sirene_keys",
            "entreprise_tokens",
            "sirene_quota",
            "entreprise_quota",
            "annuaire_quota",
            "faults",
        }
        unknown = set(raw) - known
        if unknown:
            raise ConfigurationError(f"registries sandbox: unknown settings {sorted(unknown)}")
        try:
            return cls(
                seed=int(raw.get("seed", 1)),
                companies=int(raw.get("companies", 400)),
                sirene_keys=tuple(raw.get("sirene_keys", (DEFAULT_SIRENE_KEY,))),
                entreprise_tokens=tuple(raw.get("entreprise_tokens", (DEFAULT_ENTREPRISE_TOKEN,))),
                sirene_quota=_rule(raw.get("sirene_quota"), SIRENE_QUOTA),
                entreprise_quota=_rule(raw.get("entreprise_quota"), ENTREPRISE_QUOTA),
                annuaire_quota=_rule(raw.get("annuaire_quota"), ANNUAIRE_QUOTA),
                faults=TransportFaults().updated(raw.get("faults", {})),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"registries sandbox: {exc}") from exc

    def check(self) -> None:
        if not 0 <= self.companies <= 100_000:
            raise ConfigurationError("registries sandbox: companies in [0, 100000]")
        for rule in (self.sirene_quota, self.entreprise_quota, self.annuaire_quota):
            if rule.limit < 0 or rule.window_seconds <= 0:
                raise ConfigurationError("registries sandbox: quota limit >= 0, window > 0")


def _rule(raw: object, default: QuotaRule) -> QuotaRule:
    if raw is None:
        return default
    if not isinstance(raw, Mapping):
        raise ValueError('a quota is {"limit": n, "window_seconds": s}')
    return QuotaRule(
        int(raw.get("limit", default.limit)),
        float(raw.get("window_seconds", default.window_seconds)),
    )
