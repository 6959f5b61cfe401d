"""Cheap file look-ups (a ``stat``, an ``exists``) of concurrent callers, run together.

A blob store answers "how large is this blob, and does this member own it?" for every
blob reference of every submission the ingress reads. Each answer is one system call
of a couple of microseconds, but running it in a worker thread costs 25 to 50 µs of
CPU for the hop alone (executor queue, thread wake-up, the loop's wake-up). The
look-ups asked for during one turn of the event loop are therefore gathered and run
in ONE worker-thread hop at the start of the next turn; each caller gets its own
answer (or its own exception).

Nothing is cached: every look-up is a fresh system call made after it was asked for,
so an answer is exactly as current as a look-up of its own would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")
#: One look-up: the function, its arguments, the caller's future.
_Call = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


def _run_all(calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[tuple[bool, Any]]:
    """Run each call in turn (in a worker thread): (True, result) or (False, exception)."""
    outcomes: list[tuple[bool, Any]] = []
    for func, args in calls:
        try:
            outcomes.append((True, func(*args)))
        except Exception as exc:  # handed to that call's caller only
            outcomes.append((False, exc))
    return outcomes


class LookupBatcher:
    """Runs the look-ups asked for in one turn of an event loop in one worker thread."""

    def __init__(self) -> None:
        self._pending: dict[asyncio.AbstractEventLoop, list[_Call]] = {}

    async def run(self, func: Callable[..., _T], *args: Any) -> _T:
        """``func(*args)`` in a worker thread, with the other look-ups of this loop turn.

        ``func`` must be quick and must not block for long (a ``stat``): the look-ups
        of one hop run one after the other. Its exception is raised here, to this
        caller only.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append((func, args, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        calls = self._pending.pop(loop, [])
        if not calls:
            return
        try:
            hop = loop.run_in_executor(None, _run_all, [(func, args) for func, args, _ in calls])
        except Exception as exc:  # the loop's executor is shut down: nobody waits forever
            for _, _, future in calls:
                if not future.done():
                    future.set_exception(exc)
            return
        hop.add_done_callback(lambda done: _deliver(calls, done))


def _deliver(calls: list[_Call], hop: asyncio.Future[list[tuple[bool, Any]]]) -> None:
    """Hand each caller its answer; a caller that gave up (cancelled) is skipped."""
    if hop.cancelled() or hop.exception() is not None:
        error = hop.exception() if not hop.cancelled() else None
        for _, _, future in calls:
            if not future.done():
                if error is None:
                    future.cancel()
                else:
                    future.set_exception(error)
        return
    for (_, _, future), (ok, value) in zip(calls, hop.result(), strict=True):
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
