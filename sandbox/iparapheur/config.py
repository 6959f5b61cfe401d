"""Configuration of the sandbox i-Parapheur: accounts, the signers' behaviour, fault knobs.

Signer behaviour (business outcomes, drawn from the simulator's *outcome* stream, two draws
per created dossier whatever the rates, so a seed replays a run):

=========================  ==============================================================
``reject_viewer_rate``     the viewer (visa step) rejects: ``RejetVisa``
``reject_signer_rate``     the signer rejects: ``RejetSignataire``
``never_rate``             nobody acts: the dossier waits for its signer forever
(the rest)                 visa, signature, ``Archive`` (circuit over)
``slow_rate``              the dossier's steps take ``slow_seconds`` instead of
                           ``visa_seconds``/``sign_seconds``
``visa_seconds``           creation → visa (or the viewer's rejection)
``sign_seconds``           visa → signature (or the signer's rejection)
``rejection_annotation``   the public annotation of a rejection
=========================  ==============================================================

A dossier's fate can also be set by id, before or after its creation
(``POST /sandbox/fates``: ``{"<DossierID>": "sign" | "reject_viewer" | "reject_signer" |
"never" | "slow"}``); rates change with ``POST /sandbox/behaviour``.

Fault knobs: the transport ones (:mod:`sandbox.common.faults`; ``error_after_commit_rate``
applies to a successful ``CreerDossier``; ``timeout_rate`` answers late after doing the
work, e.g. a create that times out after creating) plus ``soap_fault_rate``: a SOAP
``Server`` fault (HTTP 500) before doing anything, as an Alfresco failure answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from relais.errors import Reason, ValidationError
from sandbox.common.faults import TransportFaults
from sandbox.common.mtls import BasicAccount

FATES = ("sign", "reject_viewer", "reject_signer", "never", "slow")


@dataclass(frozen=True)
class IparapheurFaults(TransportFaults):
    RATES: ClassVar[tuple[str, ...]] = (*TransportFaults.RATES, "soap_fault_rate")

    soap_fault_rate: float = 0.0


@dataclass(frozen=True)
class SignerBehaviour:
    """How the sandbox's viewer and signer treat dossiers (module doc)."""

    reject_viewer_rate: float = 0.0
    reject_signer_rate: float = 0.0
    never_rate: float = 0.0
    slow_rate: float = 0.0
    visa_seconds: float = 0.5
    sign_seconds: float = 0.5
    slow_seconds: float = 30.0
    rejection_annotation: str = "Pièce manquante : merci de joindre l'annexe budgétaire"
    viewer_name: str = "Paul Secrétaire"
    viewer_desk: str = "Secrétariat général"
    signer_name: str = "Anne Maire"
    signer_desk: str = "Maire"

    def reasons(self) -> list[Reason]:
        reasons = []
        rates = ("reject_viewer_rate", "reject_signer_rate", "never_rate", "slow_rate")
        for name in rates:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                reasons.append(Reason(name, "range", f"a rate is in [0, 1], got {value}"))
        if self.reject_viewer_rate + self.reject_signer_rate + self.never_rate > 1.0:
            reasons.append(Reason("rates", "range", "rejections and never add up to at most 1"))
        for name in ("visa_seconds", "sign_seconds", "slow_seconds"):
            if getattr(self, name) < 0:
                reasons.append(Reason(name, "range", "must not be negative"))
        return reasons

    def updated(self, changes: Mapping[str, Any]) -> SignerBehaviour:
        """A copy with ``changes``; ValidationError for unknown names or bad values."""
        known = {f.name: f for f in fields(self)}
        reasons = []
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                reasons.append(Reason(name, "unknown", "not a behaviour setting"))
            elif known[name].type == "str":
                if isinstance(value, str) and len(value) <= 2000:
                    values[name] = value
                else:
                    reasons.append(Reason(name, "type", "a text of at most 2000 characters"))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                values[name] = float(value)
            else:
                reasons.append(Reason(name, "type", f"expected a number, got {value!r}"))
        if reasons:
            raise ValidationError("invalid signer behaviour", reasons=reasons)
        result = dataclasses.replace(self, **values)
        if result.reasons():
            raise ValidationError("invalid signer behaviour", reasons=result.reasons())
        return result


@dataclass(frozen=True)
class IparapheurConfig:
    """Accounts (HTTP Basic; a client certificate each when served over TLS), behaviour,
    faults and the seed."""

    accounts: tuple[BasicAccount, ...] = (BasicAccount("ws-relais", "ws-relais"),)
    behaviour: SignerBehaviour = field(default_factory=SignerBehaviour)
    faults: IparapheurFaults = field(default_factory=IparapheurFaults)
    seed: int = 20261204
    max_request_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> IparapheurConfig:
        """From JSON: ``{"accounts": [{"login", "password"}], "behaviour": {…},
        "faults": {…}, "seed": n}``; ValidationError for anything else."""
        unknown = set(data) - {"accounts", "behaviour", "faults", "seed", "max_request_bytes"}
        if unknown:
            raise ValidationError(
                "invalid sandbox i-Parapheur configuration",
                reasons=[Reason(name, "unknown", "not a setting") for name in sorted(unknown)],
            )
        config = cls()
        accounts = data.get("accounts")
        if accounts is not None:
            config = dataclasses.replace(config, accounts=tuple(
                BasicAccount(str(a["login"]), str(a["password"])) for a in accounts
            ))
        if "behaviour" in data:
            config = dataclasses.replace(
                config, behaviour=config.behaviour.updated(data["behaviour"])
            )
        if "faults" in data:
            config = dataclasses.replace(config, faults=config.faults.updated(data["faults"]))
        if "seed" in data:
            config = dataclasses.replace(config, seed=int(data["seed"]))
        if "max_request_bytes" in data:
            config = dataclasses.replace(config, max_request_bytes=int(data["max_request_bytes"]))
        return config
