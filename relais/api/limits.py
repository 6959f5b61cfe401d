"""What one client, or all of them, may hold of the hub API: connections, time, log lines.

The API listens on a network where anyone may connect. Without limits, ~20,000
idle connections exhausted the process's file descriptors, ``/health`` timed out
for everyone and the log grew 276 MB in a minute (issue 13, F7). Here:

- :class:`ConnectionGate` admits a connection only while its client holds fewer
  than ``max_per_client`` and the server fewer than ``max_total``. When the server
  is full, the connection idle the longest (no request in progress) is closed to
  make room; when none is idle, or the client is over its share, the newcomer gets
  a ``503`` and is closed at once, so descriptors stay bounded;
- a connection must send a complete request head within ``header_timeout``
  seconds of opening (and of its previous response), or it is closed;
- :class:`RateLimitedLog` lets through a few lines per event and interval, then
  one line saying how many were dropped.

Request bodies have their own timeout in the app (``relais.api.app``).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = structlog.get_logger(__name__)

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"connection: close\r\nretry-after: 5\r\ncontent-length: %d\r\n\r\n%s"
)


@dataclass(frozen=True)
class ServerLimits:
    """Connection and time limits of the hub API (see the module docstring)."""

    max_total: int = 4096
    """Connections held at once, all clients together (capped below the fd limit)."""
    max_per_client: int = 64
    """Connections held at once by one client address."""
    header_timeout: float = 10.0
    """Seconds a connection has to send a complete request head (bodies: ``create_api``)."""
    keep_alive: int = 5
    """Seconds an idle keep-alive connection is kept after a response."""

    def backlog(self) -> int:
        """The listening socket's backlog: at most a sixteenth of the descriptor limit.

        asyncio accepts up to a backlog of connections at each turn of its loop,
        and a refused or evicted connection releases its descriptor three turns
        later: four backlogs are headroom the gate must leave free."""
        soft = _fd_limit()
        return 256 if soft is None else max(16, min(256, soft // 16))

    def effective_total(self) -> int:
        """``max_total``, lowered when the descriptor limit is lower than it, four accept
        backlogs and 64 descriptors for files and Kafka together."""
        soft = _fd_limit()
        if soft is None:
            return self.max_total
        return min(self.max_total, max(16, soft - 4 * self.backlog() - 64))


def _fd_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


class RateLimitedLog:
    """At most ``burst`` lines per event name every ``interval`` seconds, then one
    ``<event>.suppressed`` line with the count of what was dropped."""

    def __init__(self, burst: int = 20, interval: float = 60.0) -> None:
        self._burst = burst
        self._interval = interval
        self._windows: dict[str, tuple[float, int]] = {}

    def allow(self, event: str) -> bool:
        now = time.monotonic()
        start, count = self._windows.get(event, (now, 0))
        if now - start >= self._interval:
            if count > self._burst:
                logger.warning(f"{event}.suppressed", dropped=count - self._burst,
                               seconds=round(now - start))
            start, count = now, 0
        self._windows[event] = (start, count + 1)
        return count < self._burst

    def warning(self, event: str, **fields: Any) -> None:
        if self.allow(event):
            logger.warning(event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        if self.allow(event):
            logger.info(event, **fields)


class RateLimitFilter(logging.Filter):
    """A stdlib logging filter (uvicorn's and asyncio's loggers) backed by a RateLimitedLog."""

    def __init__(self, limiter: RateLimitedLog, name: str) -> None:
        super().__init__()
        self._limiter = limiter
        self._name = name

    def filter(self, record: logging.LogRecord) -> bool:
        return self._limiter.allow(f"{self._name}.{record.getMessage()[:60]}")


class ConnectionGate:
    """Counts the API's connections per client and in all; see the module docstring."""

    def __init__(self, limits: ServerLimits, log: RateLimitedLog | None = None) -> None:
        self.limits = limits
        self.max_total = limits.effective_total()
        self.log = log or RateLimitedLog()
        self.per_client: dict[str, int] = {}
        self.connections: OrderedDict[GatedProtocol, None] = OrderedDict()
        self.refused = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.connections)

    def admit(self, protocol: GatedProtocol, client: str) -> bool:
        if self.per_client.get(client, 0) >= self.limits.max_per_client:
            self.refused += 1
            self.log.warning("api.connection_refused", reason="per_client_limit",
                             client=client, limit=self.limits.max_per_client)
            return False
        if len(self.connections) >= self.max_total and not self._evict_idle():
            self.refused += 1
            self.log.warning("api.connection_refused", reason="total_limit",
                             client=client, limit=self.max_total)
            return False
        self.connections[protocol] = None
        self.per_client[client] = self.per_client.get(client, 0) + 1
        return True

    def _evict_idle(self) -> bool:
        for candidate in self.connections:
            if candidate.idle:
                self.evicted += 1
                self.log.info("api.connection_evicted", client=candidate.client_host)
                candidate.close_now()
                self.release(candidate)
                return True
        return False

    def release(self, protocol: GatedProtocol) -> None:
        if self.connections.pop(protocol, False) is None:
            remaining = self.per_client.get(protocol.client_host, 1) - 1
            if remaining > 0:
                self.per_client[protocol.client_host] = remaining
            else:
                self.per_client.pop(protocol.client_host, None)

    def touch(self, protocol: GatedProtocol) -> None:
        """A request started on ``protocol``: it is no longer the idlest."""
        if protocol in self.connections:
            self.connections.move_to_end(protocol)


class GatedProtocol(H11Protocol):
    """uvicorn's h11 protocol with the gate's admission, and a deadline for request heads."""

    gate: ConnectionGate

    client_host = "?"
    _admitted = False
    _head_timer: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.client_host = self.client[0] if self.client else "?"
        if not self.gate.admit(self, self.client_host):
            body = (b'{"error": "too_many_connections", "message": "Too many connections; '
                    b'retry later with fewer at once."}')
            transport.write(_BUSY % (len(body), body))
            transport.close()
            return
        self._admitted = True
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        if self._admitted:
            self._admitted = False
            self.gate.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        was_idle = self.idle
        super().data_received(data)
        if was_idle and not self.idle:  # a complete request head arrived
            self._disarm_head_timer()
            self.gate.touch(self)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._admitted and not self.transport.is_closing() and self.idle:
            self._arm_head_timer()

    def close_now(self) -> None:
        self._disarm_head_timer()
        self._admitted = False
        self.transport.close()

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.gate.limits.header_timeout,
                                                self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.idle and not self.transport.is_closing():
            self.gate.log.info("api.header_timeout", client=self.client_host,
                               seconds=self.gate.limits.header_timeout)
            self.transport.close()


def gated_protocol(gate: ConnectionGate) -> type[GatedProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` bound to ``gate``."""
    return type("RelaisHttpProtocol", (GatedProtocol,), {"gate": gate})
