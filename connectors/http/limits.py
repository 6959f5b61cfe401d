"""Read a partner's streamed answer under a size cap and a time limit.

A partner's reply is hostile input: :func:`read_capped` refuses a declared
``Content-Length`` over the cap before reading, stops reading as soon as the
body passes it (:class:`PartnerReplyTooLargeError`, not retriable) and gives up
after ``deadline`` seconds (:class:`PartnerTimeoutError`, retriable).
"""

from __future__ import annotations

import asyncio
import io

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
    """The body of a response opened with ``stream=True``, at most ``cap`` bytes.

    Reads the raw bytes when the body is not content-encoded (no decompression
    bomb), the decoded bytes otherwise (each chunk counted against the cap).
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_large(partner, operation, cap, f"declared {declared} bytes", label=label)
    if response.is_stream_consumed:  # a transport that answered from memory (tests)
        if len(response.content) > cap:
            raise too_large(partner, operation, cap, f"{len(response.content)} bytes",
                            label=label)
        return response.content
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    chunks = response.aiter_raw() if encoding in ("", "identity") else response.aiter_bytes()
    # BytesIO hands its buffer over without a copy at the end (bytes(bytearray) would
    # double the peak memory of a 150 MB document).
    buffer = io.BytesIO()
    try:
        async with asyncio.timeout(deadline):
            async for chunk in chunks:
                if buffer.tell() + len(chunk) > cap:
                    raise too_large(partner, operation, cap, f"more than {cap} bytes",
                                    label=label)
                buffer.write(chunk)
    except TimeoutError as exc:
        raise PartnerTimeoutError(
            f"{operation}: the answer took more than {deadline:.0f} s to read",
            partner=partner,
        ) from exc
    return buffer.getvalue()
