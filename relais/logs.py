"""structlog configuration: JSON lines by default, readable console output on request.

Per-message context (flow id, member, topic, partition, offset) is bound with
:func:`structlog.contextvars.bound_contextvars` for the duration of one record;
every log line written meanwhile carries it. Values of keys that look like
secrets are masked before rendering.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

#: Printed on stderr by a hub worker once every view is loaded and every stage consumes;
#: supervisors (the demo, the test fixtures) wait for it.
READY_LINE = "relais worker ready"

_SECRET_KEYS = ("password", "token", "secret", "authorization", "api_key")


@functools.lru_cache(maxsize=4096)
def _secret_looking(key: str) -> bool:
    """Whether a log key names a secret (decided once per key name: a stage logs a few
    dozen names, once per record each)."""
    lowered = key.lower()
    return any(mark in lowered for mark in _SECRET_KEYS) and not lowered.endswith("_sha256")


@functools.lru_cache(maxsize=16)
def _writes_debug(wrapper_class: type) -> bool:
    """Whether loggers of ``wrapper_class`` write DEBUG lines (when it cannot tell: True)."""
    try:
        return bool(wrapper_class(None, [], {}).is_enabled_for(logging.DEBUG))
    except Exception:  # a wrapper that needs a real logger to answer: assume it writes
        return True


def debug_enabled() -> bool:
    """Whether structlog, as configured now, writes DEBUG lines: a cheap test before a
    DEBUG line written per record. Calling a lazy logger (``structlog.get_logger()``) binds
    a logger first, about 6 µs even for a line the level drops."""
    return _writes_debug(structlog.get_config()["wrapper_class"])


def mask_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Processor that replaces the value of any secret-looking key with ``****``."""
    for key in [k for k in event_dict if _secret_looking(k)]:
        event_dict[key] = "****"
    return event_dict


def configure_logging(log_format: str = "json", level: str = "INFO") -> None:
    """Configure structlog (and route stdlib logging, e.g. faust's, through it)."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric_level, logging.INFO))
    for chatty in ("httpx", "httpcore", "aiokafka", "uvicorn.access"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
