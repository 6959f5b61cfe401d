"""The sandbox archive's operations: received SIPs, their checks, states and ATRs."""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from sandbox.archive.atr import write_atr
from sandbox.archive.checks import Check, Verdict, check_sip
from sandbox.archive.config import ArchiveConfig, ArchiveFaults
from sandbox.common.clock import Clock
from sandbox.common.simulator import Simulator

log = structlog.get_logger(__name__)


def spool_dir(path: Path) -> Path:
    """The folder received SIPs are spooled in (created on first use)."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def vitam_guid(seed: str, prefix: str) -> str:
    """An id shaped as Vitam's GUIDs (36 lower-case base32 characters, ``aeeaaaaaa…``)."""
    digest = hashlib.sha256(seed.encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    body = "".join(alphabet[b % 32] for b in digest)
    return (prefix + body)[:36]


@dataclass
class Operation:
    operation_id: str
    tenant: int
    context: str
    application_id: str
    received_at: datetime
    ready_at: datetime
    size: int
    fatal: bool = False
    tamper: bool = False
    verdict: Verdict | None = None
    atr: bytes | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def checked(self) -> bool:
        return self.verdict is not None


class ArchiveState(Simulator[ArchiveFaults]):
    def __init__(self, config: ArchiveConfig, clock: Clock, spool: Path) -> None:
        self.config = config
        self.spool = spool
        super().__init__(clock, random.Random(config.seed), config.faults)  # noqa: S311

    def reset(self, *, keep_faults: bool = False) -> None:
        super().reset(keep_faults=keep_faults)
        self.operations: dict[str, Operation] = {}

    def new_operation(self, tenant: int, context: str, application_id: str,
                      size: int) -> Operation:
        self.count("ingests")
        operation_id = vitam_guid(f"op/{self._event_seq}/{len(self.operations)}/"
                                  f"{self.outcome_rng.random()}", "aeeaaaaaag")
        now = self.now()
        fatal = self.draw_fault(self.faults.fatal_rate)
        tamper = self.draw_fault(self.faults.tamper_rate)
        operation = Operation(operation_id, tenant, context, application_id, now,
                              now + timedelta(seconds=self.faults.processing_seconds), size,
                              fatal=fatal, tamper=tamper)
        self.operations[operation_id] = operation
        return operation

    async def process(self, operation: Operation, path: Path) -> None:
        """Check the spooled SIP in a thread, then write the ATR (the file is removed)."""
        try:
            verdict = await asyncio.to_thread(check_sip, path, self.config,
                                            tamper=operation.tamper)
        except Exception as exc:  # a sandbox bug must still give an answer
            log.exception("sandbox_archive.check_crashed")
            verdict = Verdict(checks=[Check("CHECK_CONTAINER", "KO", f"internal: {exc}")])
        finally:
            discard(path)
        operation.verdict = verdict
        status = verdict.status
        units: dict[str, str] = {}
        objects: dict[str, str] = {}
        if status != "KO":
            units = {u: vitam_guid(f"{operation.operation_id}/{u}", "aeaqaaaaaa") for u in
                     verdict.units}
            objects = {o: vitam_guid(f"{operation.operation_id}/{o}", "aeaaaaaaaa") for o in
                       verdict.objects}
        operation.atr = write_atr(operation.operation_id, verdict, status, self.now(), units,
                                  objects)
        self.count(f"ingests_{status.lower()}")
        log.info("sandbox_archive.operation_checked", operation_id=operation.operation_id,
                 status=status, message_identifier=verdict.message_identifier,
                 fatal=operation.fatal)

    def state_of(self, operation: Operation) -> tuple[str, str]:
        """(X-Global-Execution-State, X-Global-Execution-Status)."""
        if operation.fatal:
            return "PAUSE", "FATAL"
        if not operation.checked or self.now() < operation.ready_at:
            return "RUNNING", "STARTED"
        assert operation.verdict is not None
        return "COMPLETED", operation.verdict.status

    def by_message_identifier(self, message_identifier: str) -> list[Operation]:
        return [op for op in self.operations.values()
                if op.verdict is not None and op.verdict.message_identifier == message_identifier]

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "operations": len(self.operations)}
