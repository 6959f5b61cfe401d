"""Which worker instance this process is, for its transactional ids.

A stage's transactional id is ``<consumer group>-<worker id>``: stable across
restarts of the same worker, so a restarted worker fences its crashed
predecessor and the broker aborts the transaction the crash left open at once
(instead of when it times out, which stalls read_committed readers of every
partition it wrote to). Two workers running at the same time must have
different ids: ``RELAIS_WORKER_ID`` (default: the host name).
"""

from __future__ import annotations

import os
import socket


def worker_id() -> str:
    return os.environ.get("RELAIS_WORKER_ID") or socket.gethostname()


def transactional_id(group_id: str) -> str:
    return f"{group_id}-{worker_id()}"
