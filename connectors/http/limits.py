"""Read a partner's streamed answer under a size cap and a time limit.

A partner's reply is hostile input. :func:`capped_chunks` holds the rules once: it
refuses a declared ``Content-Length`` over the cap before reading, stops reading as soon
as the body passes it (:class:`PartnerReplyTooLargeError`, not retriable), reads the raw
bytes when the body is not content-encoded (no decompression bomb) and the decoded ones
otherwise (each chunk counted against the cap), and gives up once it waited ``deadline``
seconds for the partner in all (:class:`PartnerTimeoutError`, retriable); the time a
caller spends with each chunk (writing it to disk) does not count.

:func:`capped_chunks` hands the body on chunk by chunk (a 150 MB document is written to
a blob store as it arrives, never held whole); :func:`read_capped` gathers it in memory.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import httpx

from relais.errors import PartnerReplyTooLargeError, PartnerTimeoutError


def too_large(
    partner: str, operation: str, cap: int, what: str, *, label: str | None = None
) -> PartnerReplyTooLargeError:
    """The error for an answer over ``cap`` bytes."""
    return PartnerReplyTooLargeError(
        f"{operation}: the {label or partner}'s answer is over the cap of {cap} bytes ({what})",
        partner=partner,
    )


async def read_capped(
    response: httpx.Response,
    cap: int,
    *,
    partner: str,
    operation: str,
    deadline: float,
    label: str | None = None,
) -> bytes:
    """The body of a response opened with ``stream=True``, at most ``cap`` bytes, gathered
    from :func:`capped_chunks` (the same cap, encoding and time-limit rules)."""
    # BytesIO hands its buffer over without a copy at the end (bytes(bytearray) would
    # double the peak memory of a 150 MB document).
    buffer = io.BytesIO()
    async for chunk in capped_chunks(response, cap, partner=partner, operation=operation,
                                     deadline=deadline, label=label):
        buffer.write(chunk)
    return buffer.getvalue()


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

