"""Stopping a background loop and the Kafka clients it used, in the right order."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol


class Stoppable(Protocol):
    async def stop(self) -> Any: ...


async def stop_loop(task: asyncio.Task[Any] | None, *clients: Stoppable | None) -> None:
    """Cancel ``task`` and wait for it, then stop each client (consumer, producer…)."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for client in clients:
        if client is not None:
            await client.stop()
