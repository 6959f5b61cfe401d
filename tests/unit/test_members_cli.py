"""`relais members add|list|show`: the contractor setting and Sirene's legal category and
commune are stored on the member record and shown (no broker: its edges are replaced)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.cli import members_cmd
from hub.cli.main import app
from ops.members import Registration, RegistryIdentity
from relais.members.directory import MemberDirectory
from relais.members.model import Member
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec

SIREN = "212102313"


class _Publisher:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


@asynccontextmanager
async def _admin(bootstrap: str) -> AsyncIterator[None]:
    yield None


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> list[Member]:
    """``members add`` with no broker: an empty directory, Sirene's answer for Dijon, and
    the published members collected."""
    published: list[Member] = []
    directory = MemberDirectory("127.0.0.1:1", AvroCodec())
    monkeypatch.setattr("hub.cli.common.configure_logging", lambda *args, **kwargs: None)
    monkeypatch.setenv("RELAIS_KAFKA_AUTH", "off")  # a fresh clone has no local credentials
    monkeypatch.setattr(members_cmd, "load_settings", lambda: Settings(
        registry_sirene_url="https://sirene.example.test", kafka_auth="off"))

    async def snapshot(settings: Settings) -> MemberDirectory:
        return directory

    async def identity(bootstrap: str, siren: str) -> RegistryIdentity:
        return RegistryIdentity(name="COMMUNE DE DIJON", legal_category="7210",
                                commune="DIJON", commune_code="21231", active=True)

    async def register(admin: Any, publisher: Any, registrations: list[Registration],
                       **kwargs: Any) -> None:
        published.extend(r.member for r in registrations)

    monkeypatch.setattr(members_cmd, "_snapshot", snapshot)
    monkeypatch.setattr(members_cmd, "registry_identity", identity)
    monkeypatch.setattr(members_cmd, "register_members", register)
    monkeypatch.setattr(members_cmd, "Publisher", _Publisher)
    monkeypatch.setattr(members_cmd, "admin_client", _admin)
    return published


def test_members_add_stores_sirene_identity_and_the_setting(registered: list[Member]) -> None:
    result = CliRunner().invoke(app, ["members", "add", SIREN, "--contractor-check", "refuse"])
    assert result.exit_code == 0, result.output
    [member] = registered
    assert (member.name, member.department) == ("COMMUNE DE DIJON", "021")
    assert (member.legal_category, member.commune, member.commune_code) == (
        "7210", "DIJON", "21231")
    assert member.refuses_closed_contractors
    assert "legal category 7210, commune DIJON (21231), from Sirene" in result.output
    assert "contractors:   refuse" in result.output


def test_members_add_warns_by_default(registered: list[Member]) -> None:
    result = CliRunner().invoke(app, ["members", "add", SIREN])
    assert result.exit_code == 0, result.output
    assert registered[0].contractor_check == "warn"
    assert "flagged, not refused" in result.output


def test_members_add_refuses_an_unknown_setting(registered: list[Member]) -> None:
    result = CliRunner().invoke(app, ["members", "add", SIREN, "--contractor-check", "block"])
    assert result.exit_code == 1
    assert "--contractor-check 'block'" in result.output and "warn, refuse" in result.output
    assert registered == []


def test_show_and_list_give_the_new_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = AvroCodec()
    directory = MemberDirectory("127.0.0.1:1", codec)
    member = Member(siren=SIREN, name="Dijon", department="021", token_sha256="0" * 64,
                    contractor_check="refuse", legal_category="7210", commune="DIJON",
                    commune_code="21231")
    directory.apply(SIREN.encode(), codec.encode("Member", member.to_record()))
    monkeypatch.setattr("hub.cli.common.configure_logging", lambda *args, **kwargs: None)

    async def snapshot(settings: Settings) -> MemberDirectory:
        return directory

    monkeypatch.setattr(members_cmd, "_snapshot", snapshot)
    shown = CliRunner().invoke(app, ["members", "show", SIREN])
    assert shown.exit_code == 0, shown.output
    described = json.loads(shown.output)
    assert described["contractor_check"] == "refuse"
    assert (described["legal_category"], described["commune"], described["commune_code"]) == (
        "7210", "DIJON", "21231")
    listed = CliRunner().invoke(app, ["members", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"{SIREN}  021  Dijon  [DIJON]  (refuses closed contractors)" in listed.output
