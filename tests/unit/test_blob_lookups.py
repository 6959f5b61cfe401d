"""The blob store's metadata look-ups: gathered per loop turn into one worker-thread hop,
each answered (or failed) on its own, never cached."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from relais.blobs import lookups
from relais.blobs.filesystem import FilesystemBlobStore
from relais.blobs.lookups import LookupBatcher
from relais.errors import InfrastructureError

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many look-ups each worker-thread hop ran."""
    seen: list[int] = []
    real = lookups._run_all

    def counting(calls: list[Any]) -> list[tuple[bool, Any]]:
        seen.append(len(calls))
        return real(calls)

    monkeypatch.setattr(lookups, "_run_all", counting)
    return seen


async def test_look_ups_asked_together_share_one_hop_off_the_loop(hops: list[int]) -> None:
    batcher = LookupBatcher()
    loop_thread = threading.get_ident()
    answers = await asyncio.gather(
        *(batcher.run(lambda n=n: (n, threading.get_ident())) for n in range(16)))
    assert [n for n, _ in answers] == list(range(16))
    assert {thread for _, thread in answers} != {loop_thread}
    assert hops == [16]
    # asked one after the other, each gets a hop of its own
    await batcher.run(int)
    await batcher.run(int)
    assert hops == [16, 1, 1]


async def test_an_exception_reaches_its_caller_only(hops: list[int]) -> None:
    batcher = LookupBatcher()

    def broken() -> int:
        raise PermissionError("denied")

    outcomes = await asyncio.gather(batcher.run(int, "7"), batcher.run(broken),
                                    batcher.run(int, "8"), return_exceptions=True)
    assert outcomes[0] == 7 and outcomes[2] == 8
    assert isinstance(outcomes[1], PermissionError)
    assert hops == [3]


async def test_a_caller_that_gives_up_does_not_disturb_the_others() -> None:
    batcher = LookupBatcher()
    gate = threading.Event()

    def slow() -> str:
        gate.wait(5)
        return "slow"

    first = asyncio.ensure_future(batcher.run(slow))
    second = asyncio.ensure_future(batcher.run(str, "other"))
    await asyncio.sleep(0.01)
    first.cancel()
    gate.set()
    assert await second == "other"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_nothing_is_cached_each_look_up_sees_the_disk_as_it_is(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    digest = hashlib.sha256(PDF).hexdigest()
    assert await store.stat(digest) is None
    assert not await store.owned_by(digest, "213300010")
    ref = await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf",
                                owner="213300010")
    assert await store.stat(digest) == ref.size == len(PDF)
    assert await store.owned_by(digest, "213300010")
    assert not await store.owned_by(digest, "200054807")
    os.chmod(store.path_for(digest), 0o640)
    store.path_for(digest).write_bytes(PDF[:10])
    assert await store.stat(digest) == 10
    assert await store.delete(digest)
    assert await store.stat(digest) is None


async def test_many_references_checked_at_once_get_each_their_own_answer(
    tmp_path: Path, hops: list[int]
) -> None:
    store = FilesystemBlobStore(tmp_path)
    refs = [await store.put_bytes(PDF + bytes([n]), media_type="application/pdf",
                                  filename="a.pdf", owner=f"21330001{n}") for n in range(5)]
    hops.clear()
    absent = hashlib.sha256(b"never stored").hexdigest()
    sizes = await asyncio.gather(*(store.stat(r.sha256) for r in refs), store.stat(absent))
    owned = await asyncio.gather(*(store.owned_by(r.sha256, f"21330001{n}")
                                   for n, r in enumerate(refs)),
                                 store.owned_by(refs[0].sha256, "213300011"))
    assert sizes == [len(PDF) + 1] * 5 + [None]
    assert owned == [True] * 5 + [False]
    assert hops == [6, 6]


async def test_a_failing_disk_is_an_infrastructure_error(tmp_path: Path) -> None:
    root = tmp_path / "not-a-directory"
    root.write_bytes(b"")
    store = FilesystemBlobStore(root)
    with pytest.raises(InfrastructureError):
        await store.stat(hashlib.sha256(PDF).hexdigest())
