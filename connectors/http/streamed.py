"""A partner's streamed answer handed on chunk by chunk, under a size cap and a time limit.

:func:`~connectors.http.limits.read_capped` gathers an answer in memory; a document of
150 MB must not be, so :func:`capped_chunks` yields the body as it arrives for the caller
to write somewhere (a blob store's ``put_stream``). The same bounds hold: a declared
``Content-Length`` over the cap is refused before reading, the body stops as soon as it
passes the cap (:class:`~relais.errors.PartnerReplyTooLargeError`), and reading gives up
once it waited ``deadline`` seconds for the partner in all
(:class:`~relais.errors.PartnerTimeoutError`); the time the caller spends with each chunk
(writing it to disk) does not count.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from connectors.http.limits import too_large
from relais.errors import PartnerTimeoutError


async def capped_chunks(
    response: httpx.Response,
    cap: int,
    *,
    partner: str,
    operation: str,
    deadline: float,
    label: str | None = None,
) -> AsyncIterator[bytes]:
    """The body of a response opened with ``stream=True``, chunk by chunk, at most ``cap``
    bytes in all. Raw bytes when the body is not content-encoded, decoded ones otherwise.

    The time limit counts the waits for the network only (summed over the reads).
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_large(partner, operation, cap, f"declared {declared} bytes", label=label)
    if response.is_stream_consumed:  # a transport that answered from memory (tests)
        if len(response.content) > cap:
            raise too_large(partner, operation, cap, f"{len(response.content)} bytes",
                            label=label)
        if response.content:
            yield response.content
        return
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    chunks = response.aiter_raw() if encoding in ("", "identity") else response.aiter_bytes()
    loop = asyncio.get_running_loop()
    waited = 0.0
    size = 0
    try:
        while True:
            started = loop.time()
            try:
                async with asyncio.timeout(max(deadline - waited, 0.0)):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise PartnerTimeoutError(
                    f"{operation}: the answer took more than {deadline:.0f} s to read",
                    partner=partner,
                ) from exc
            waited += loop.time() - started
            size += len(chunk)
            if size > cap:
                raise too_large(partner, operation, cap, f"more than {cap} bytes", label=label)
            if chunk:
                yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
