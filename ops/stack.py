"""The hub's processes on one machine, as the demo and the integration tests run them:
a sandbox TdT configured with an account per member, the worker and the API."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.members import Registration, new_member
from ops.processes import ManagedProcess
from relais.app import READY_LINE
from relais.kafka.security import hub_security
from relais.members.model import TdtSettings
from relais.settings import Settings

SANDBOX_PASSWORD_ENV = "RELAIS_SANDBOX_TDT_PASSWORD"
SANDBOX_PASSWORD = "sandbox-password"  # the loopback sandbox's demo secret


def sandbox_url(settings: Settings) -> str:
    return f"http://{settings.sandbox_host}:{settings.sandbox_tdt_port}"


def sandbox_member(settings: Settings, siren: str, name: str, department: str) -> Registration:
    """A member whose TdT is the sandbox (login = SIREN)."""
    tdt = TdtSettings(url=sandbox_url(settings), login=siren, password_env=SANDBOX_PASSWORD_ENV)
    return new_member(siren, name, department, tdt=tdt)


def sandbox_config(
    registrations: list[Registration],
    *,
    schedule: dict[str, float] | None = None,
    faults: dict[str, Any] | None = None,
    seed: int = 7,
) -> dict[str, Any]:
    """A sandbox TdT configuration with one account per member."""
    return {
        "accounts": [
            {"login": r.member.siren, "password": SANDBOX_PASSWORD, "siren": r.member.siren,
             "department": r.member.department, "name": r.member.name}
            for r in registrations
        ],
        "schedule": schedule or {"transmit_after": 0.5, "acknowledge_after": 1.5,
                                 "prefecture_message_after": 3.0},
        "faults": faults or {},
        "seed": seed,
    }


@dataclass
class Stack:
    settings: Settings
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            "RELAIS_KAFKA_BOOTSTRAP": s.bootstrap_servers,
            "RELAIS_DATA_DIR": str(s.data_dir),
            "RELAIS_APP_ID": s.app_id,
            "RELAIS_API_PORT": str(s.api_port),
            "RELAIS_SANDBOX_TDT_PORT": str(s.sandbox_tdt_port),
            "RELAIS_LOG_FORMAT": "json",
            SANDBOX_PASSWORD_ENV: SANDBOX_PASSWORD,
            **hub_security(s).as_env(),
            **self.extra_env,
        }

    def start_sandbox(self, config: dict[str, Any]) -> ManagedProcess:
        path = self.log_dir / "sandbox-tdt.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        process = ManagedProcess("sandbox", ["sandbox", "--config", str(path)], self.env(),
                                 self.log_dir / "sandbox.log")
        process.start()
        process.wait_for("sandbox_tdt_serving", timeout=60)
        self.processes["sandbox"] = process
        return process

    def start_worker(self, name: str = "worker") -> ManagedProcess:
        process = ManagedProcess(name, ["worker"], self.env(), self.log_dir / f"{name}.log")
        process.start()
        process.wait_for(READY_LINE, timeout=120)
        self.processes[name] = process
        return process

    def start_api(self) -> ManagedProcess:
        process = ManagedProcess("api", ["api"], self.env(), self.log_dir / "api.log")
        process.start()
        process.wait_for("Relais API on", timeout=60)
        self.processes["api"] = process
        return process

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.processes.clear()
