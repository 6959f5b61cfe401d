"""Helpers shared by the CLI commands: settings, async runs, readable errors."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer

from relais.errors import RelaisError
from relais.logs import configure_logging
from relais.settings import Settings

T = TypeVar("T")


def load_settings() -> Settings:
    settings = Settings.from_env()
    configure_logging("console" if settings.log_format == "console" else "json",
                      settings.log_level)
    return settings


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; a RelaisError becomes a one-line message and exit code 1."""
    try:
        return asyncio.run(coro)
    except RelaisError as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        for reason in exc.reasons:
            typer.secho(f"  - {reason.field}: {reason.message}", err=True)
        raise typer.Exit(1) from exc


def fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)
