"""A member of the platform and the rules its registration must follow."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from relais.errors import Reason, ValidationError
from relais.identifiers import is_valid_siren

_DEPARTMENT = re.compile(r"^(0[0-9][0-9AB]|9[0-9][0-9AB])$")


@dataclass(frozen=True)
class TdtSettings:
    """How a member reaches its tiers de télétransmission.

    S²LOW requires a TLS client certificate (``cert_file``, ``key_file``); HTTP
    Basic (``login`` and the password in ``password_env``) is optional: an empty
    ``password_env`` sends none. Secrets stay in environment variables, named
    here: the Basic password in ``password_env``, the key's password in
    ``key_password_env``; the registry never holds them. ``ca_file`` replaces the
    system CA store for a TdT whose server certificate a private CA issued.
    """

    url: str
    login: str
    password_env: str
    cert_file: str | None = None
    key_file: str | None = None
    arrondissement: int = 1
    nature_collectivite: str = "31"
    key_password_env: str | None = None
    ca_file: str | None = None


@dataclass(frozen=True)
class Member:
    siren: str
    name: str
    department: str
    token_sha256: str
    active: bool = True
    registered_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    tdt: TdtSettings | None = None
    retry_tiers: str | None = None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Member:
        tdt = record.get("tdt")
        return cls(
            siren=record["siren"],
            name=record["name"],
            department=record["department"],
            token_sha256=record["token_sha256"],
            active=record.get("active", True),
            registered_at=record["registered_at"],
            tdt=TdtSettings(**tdt) if tdt else None,
            retry_tiers=record.get("retry_tiers"),
        )


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def tdt_settings_reasons(tdt: TdtSettings) -> list[Reason]:
    """Why a member's TdT settings cannot work; empty when they can.

    Variables are named, never given: a value that is not an environment variable
    name (e.g. a password pasted by mistake) is refused without being echoed.
    """
    reasons = []
    if not tdt.url.startswith(("https://", "http://")):
        reasons.append(Reason("tdt.url", "invalid_url", "the TdT URL starts with https://"))
    for name, value in (("password_env", tdt.password_env),
                        ("key_password_env", tdt.key_password_env)):
        if value and not _ENV_NAME.match(value):
            reasons.append(Reason(f"tdt.{name}", "invalid_env_name",
                                  "expected the name of an environment variable, not its value"))
    if tdt.key_file and not tdt.cert_file:
        reasons.append(Reason("tdt.key_file", "requires_cert", "a key needs its certificate"))
    if tdt.key_password_env and not tdt.cert_file:
        reasons.append(Reason("tdt.key_password_env", "requires_cert",
                              "a key password needs a certificate and its key"))
    return reasons


def registration_reasons(siren: str, name: str, department: str) -> list[Reason]:
    """Why a registration is refused; empty when it is acceptable."""
    reasons = []
    if not is_valid_siren(siren):
        reasons.append(
            Reason("siren", "invalid_siren", f"{siren!r} is not a valid SIREN (9 digits, Luhn)")
        )
    if not name.strip():
        reasons.append(Reason("name", "required", "the member needs a name"))
    if not _DEPARTMENT.match(department):
        reasons.append(
            Reason(
                "department",
                "invalid_department",
                f"{department!r} is not a department code on 3 characters (e.g. 021, 02A, 974)",
            )
        )
    return reasons


def check_registration(siren: str, name: str, department: str) -> None:
    reasons = registration_reasons(siren, name, department)
    if reasons:
        raise ValidationError("member registration refused", reasons=reasons)
