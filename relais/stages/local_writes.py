"""Local view writes taken back when what they stand for is not committed.

A handler makes what it publishes visible to its own worker at once: a view's
``put_local`` (the acts' links, the delivery journal, the classifications), because
the records only come back from the broker later. Those records go in the batch's
transaction; when the handler raises (the failure router then publishes a retry instead)
or the batch's transaction fails (the batch is read again), they were never committed,
and a handler reading the view again must not find them: validation would take its own
uncommitted link for a duplicate submission and forward nothing; delivery would take its
own uncommitted POSTED for a delivery already recorded and publish no *posted*.

The stage runner collects, per record, how to take back each local write made while the
record was handled (:func:`collect`), and takes them back (:func:`undo`, newest first)
when the handler raises or the batch fails. A write that is durable already (the journal's
POSTING, acknowledged by the broker before the partner call) is made under
:func:`durable` and never taken back. Outside a stage runner nothing is collected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Undo = Callable[[], None]

_WRITES: ContextVar[list[Undo] | None] = ContextVar("relais_local_writes", default=None)


def remember(undo_write: Undo) -> None:
    """Note how to take back a local write just made (nothing outside a collection)."""
    writes = _WRITES.get()
    if writes is not None:
        writes.append(undo_write)


@contextmanager
def collect(writes: list[Undo]) -> Iterator[None]:
    """Local writes made inside are noted in ``writes``."""
    token = _WRITES.set(writes)
    try:
        yield
    finally:
        _WRITES.reset(token)


@contextmanager
def durable() -> Iterator[None]:
    """Local writes made inside stand for records already acknowledged: never taken back."""
    token = _WRITES.set(None)
    try:
        yield
    finally:
        _WRITES.reset(token)


def undo(writes: list[Undo]) -> None:
    """Take back ``writes``, newest first, and forget them."""
    while writes:
        writes.pop()()
