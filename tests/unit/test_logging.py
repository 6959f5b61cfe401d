"""Logging: JSON lines carry the per-record context, and secrets never reach the output."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.contextvars import bound_contextvars
from structlog.testing import capture_logs

from relais.logs import configure_logging, mask_secrets


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes global state: put structlog and the root logger back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    try:
        yield
    finally:
        structlog.configure(**config)
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.contextvars.clear_contextvars()


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


CONTEXT = {
    "flow_id": "217500016-6c1e2b55-8d0e-5f0b-9a1c-0e2d3f4a5b6c",
    "member": "217500016",
    "topic": "relais.member.217500016.submissions",
    "partition": 0,
    "offset": 42,
}


def test_json_lines_carry_bound_context(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "INFO")
    log = structlog.get_logger("relais.test")
    with bound_contextvars(**CONTEXT):
        log.info("ingress.accepted", flow_type="acte")
    log.info("after.context")
    lines = _json_lines(capsys.readouterr().err)
    assert len(lines) == 2
    first, second = lines
    assert first["event"] == "ingress.accepted"
    assert first["level"] == "info"
    assert first["flow_type"] == "acte"
    assert "timestamp" in first
    for key, value in CONTEXT.items():
        assert first[key] == value
        assert key not in second  # the context ends with the record


def test_level_filtering(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "WARNING")
    log = structlog.get_logger("relais.test")
    log.info("quiet")
    log.warning("loud")
    events = [line["event"] for line in _json_lines(capsys.readouterr().err)]
    assert events == ["loud"]


def test_secrets_are_masked_in_json_output(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "INFO")
    token = "tok_VerySecretValue123"
    digest = "3b5d5c3712955042212316173ccf37be800d7b6ea2a1c54bd0f29cd9a2b5e5a1"
    structlog.get_logger("relais.test").info(
        "member.login",
        token=token,
        password="hunter2",
        tdt_password="hunter3",
        Authorization=f"Bearer {token}",
        token_sha256=digest,
        siren="217500016",
    )
    err = capsys.readouterr().err
    line = _json_lines(err)[0]
    assert line["token"] == "****"
    assert line["password"] == "****"
    assert line["tdt_password"] == "****"
    assert line["Authorization"] == "****"
    assert line["token_sha256"] == digest
    assert line["siren"] == "217500016"
    for secret in (token, "hunter2", "hunter3"):
        assert secret not in err


def test_secrets_bound_as_context_are_masked(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "INFO")
    with bound_contextvars(api_key="k-123456"):
        structlog.get_logger("relais.test").info("call")
    line = _json_lines(capsys.readouterr().err)[0]
    assert line["api_key"] == "****"


def test_stdlib_logging_is_rendered_as_json_and_masked(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "INFO")
    with bound_contextvars(flow_id="f-1"):
        logging.getLogger("faust.test").warning("rebalancing")
    line = _json_lines(capsys.readouterr().err)[0]
    assert line["event"] == "rebalancing"
    assert line["flow_id"] == "f-1"
    assert line["logger"] == "faust.test"


def test_mask_secrets_processor() -> None:
    event = {
        "event": "x",
        "password": "p",
        "member_token": "t",
        "client_secret": "s",
        "token_sha256": "digest",
        "tokens_seen": 3,
        "user": "u",
    }
    masked = mask_secrets(None, "info", dict(event))
    assert masked["password"] == "****"
    assert masked["member_token"] == "****"
    assert masked["client_secret"] == "****"
    assert masked["token_sha256"] == "digest"
    assert masked["user"] == "u"
    assert masked["event"] == "x"


def test_capture_logs_sees_bound_context() -> None:
    log = structlog.get_logger("relais.test")
    with (
        capture_logs(
            processors=[structlog.contextvars.merge_contextvars, mask_secrets]
        ) as captured,
        bound_contextvars(**CONTEXT),
    ):
        log.warning("ingress.rejected", code="oversize", password="p")
    assert captured[0]["event"] == "ingress.rejected"
    assert captured[0]["password"] == "****"
    assert {k: captured[0][k] for k in CONTEXT} == CONTEXT


def test_console_format_renders_without_error(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("console", "INFO")
    structlog.get_logger("relais.test").info("hello", password="hunter2", member="217500016")
    err = capsys.readouterr().err
    assert "hello" in err and "217500016" in err
    assert "hunter2" not in err


def test_debug_enabled_follows_the_configured_level(restore_logging: None) -> None:
    from relais.logs import debug_enabled

    configure_logging("json", "INFO")
    assert debug_enabled() is False
    configure_logging("json", "DEBUG")
    assert debug_enabled() is True
    with capture_logs():  # the test configuration writes every level
        assert debug_enabled() is True
