"""One registry call per number, however many requests ask for it at the same time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """``await flight.run(key, call)``: concurrent callers with the same key share one call
    (and its exception); the next caller after it finished starts a new one."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[T]] = {}

    def in_flight(self) -> int:
        return len(self._running)

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await call()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._running[key]
