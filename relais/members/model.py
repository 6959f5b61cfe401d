"""A member of the platform and the rules its registration must follow."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from relais.errors import Reason, ValidationError
from relais.identifiers import is_valid_siren

_DEPARTMENT = re.compile(r"^(0[0-9][0-9AB]|9[0-9][0-9AB])$")


@dataclass(frozen=True)
class PartnerAccount:
    """How a member reaches one partner (the TdT, the archive, i-Parapheur, a registry…).

    Secrets stay in environment variables, named here, never held by the registry:
    the HTTP Basic password in ``password_env`` (empty: no Basic; ``login`` is its
    user), the key's password in ``key_password_env``, an API key in ``api_key_env``
    (sent in the header its connector names, or the option ``api_key_header``), a
    bearer token in ``token_env``. ``cert_file``/``key_file`` are the member's TLS
    client certificate and key (PEM); ``ca_file`` replaces the system CA store.
    ``options`` holds partner-specific settings (a Vitam tenant, an i-Parapheur
    type and sub-type, ``timeout.read`` seconds…).
    """

    url: str
    login: str = ""
    password_env: str = ""
    cert_file: str | None = None
    key_file: str | None = None
    key_password_env: str | None = None
    ca_file: str | None = None
    api_key_env: str | None = None
    token_env: str | None = None
    options: Mapping[str, str] = field(default_factory=dict, hash=False)

    def option(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)


TDT = "tdt"
"""The partner name of the member's tiers de télétransmission account."""


def TdtSettings(  # the name of the former class, kept for its callers
    url: str,
    login: str,
    password_env: str,
    cert_file: str | None = None,
    key_file: str | None = None,
    arrondissement: int = 1,
    nature_collectivite: str = "31",
    key_password_env: str | None = None,
    ca_file: str | None = None,
) -> PartnerAccount:
    """A TdT account, built from the arguments of the former ``TdtSettings`` record.

    ``arrondissement`` and ``nature_collectivite`` become options of the account.
    """
    return PartnerAccount(
        url=url,
        login=login,
        password_env=password_env,
        cert_file=cert_file,
        key_file=key_file,
        key_password_env=key_password_env,
        ca_file=ca_file,
        options={"arrondissement": str(arrondissement),
                 "nature_collectivite": nature_collectivite},
    )


WARN = "warn"
REFUSE = "refuse"
CONTRACTOR_CHECKS = (WARN, REFUSE)
"""A member's ``contractor_check``: what a contract naming a closed or unknown contractor
SIRET gets (``agents/acts/contractors.py``): a warning beside the acte (``warn``, the
default), or a refusal of the acte (``refuse``)."""


@dataclass(frozen=True, init=False)
class Member:
    """A member and its accounts with partners, by partner name (``tdt``, ``archive``…).

    ``contractor_check`` is the member's setting for contracts naming a closed contractor
    (:data:`CONTRACTOR_CHECKS`); ``legal_category``, ``commune`` and ``commune_code`` are
    what Sirene said of the member's unit when it was registered (None: not known).
    """

    siren: str
    name: str
    department: str
    token_sha256: str
    active: bool = True
    registered_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    accounts: Mapping[str, PartnerAccount] = field(default_factory=dict, hash=False)
    retry_tiers: str | None = None
    contractor_check: str = WARN
    legal_category: str | None = None
    commune: str | None = None
    commune_code: str | None = None

    def __init__(
        self,
        siren: str,
        name: str,
        department: str,
        token_sha256: str,
        active: bool = True,
        registered_at: datetime | None = None,
        accounts: Mapping[str, PartnerAccount] | None = None,
        retry_tiers: str | None = None,
        contractor_check: str = WARN,
        legal_category: str | None = None,
        commune: str | None = None,
        commune_code: str | None = None,
        *,
        tdt: PartnerAccount | None = None,
    ) -> None:
        """``tdt`` is a shorthand for ``accounts={"tdt": …}`` (callers of the former field)."""
        merged = dict(accounts or {})
        if tdt is not None:
            merged.setdefault(TDT, tdt)
        setattr_ = object.__setattr__
        setattr_(self, "siren", siren)
        setattr_(self, "name", name)
        setattr_(self, "department", department)
        setattr_(self, "token_sha256", token_sha256)
        setattr_(self, "active", active)
        setattr_(self, "registered_at", registered_at or datetime.now(UTC))
        setattr_(self, "accounts", merged)
        setattr_(self, "retry_tiers", retry_tiers)
        setattr_(self, "contractor_check", contractor_check)
        setattr_(self, "legal_category", legal_category)
        setattr_(self, "commune", commune)
        setattr_(self, "commune_code", commune_code)

    def account(self, partner: str) -> PartnerAccount | None:
        """The member's account with ``partner``, or None."""
        return self.accounts.get(partner)

    @property
    def tdt(self) -> PartnerAccount | None:
        """The member's TdT account (read-only; ``accounts["tdt"]``)."""
        return self.accounts.get(TDT)

    @property
    def refuses_closed_contractors(self) -> bool:
        """Whether a contract naming a closed or unknown contractor is refused (any value
        other than ``refuse`` warns)."""
        return self.contractor_check == REFUSE

    def to_record(self) -> dict[str, Any]:
        """The registry record (schema ``Member``): ``accounts``, and the TdT account again in
        the former ``tdt`` field so that a process still on schema v3 keeps reaching it."""
        return {
            "siren": self.siren,
            "name": self.name,
            "department": self.department,
            "token_sha256": self.token_sha256,
            "active": self.active,
            "registered_at": self.registered_at,
            "tdt": _legacy_tdt(self.tdt),
            "accounts": {p: _account_record(a) for p, a in self.accounts.items()},
            "retry_tiers": self.retry_tiers,
            "contractor_check": self.contractor_check,
            "legal_category": self.legal_category,
            "commune": self.commune,
            "commune_code": self.commune_code,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Member:
        """A member from its record, written with any schema version (v3's ``tdt`` included;
        before v5, ``warn`` and no Sirene identity)."""
        accounts = {
            partner: PartnerAccount(**{**value, "options": dict(value.get("options") or {})})
            for partner, value in (record.get("accounts") or {}).items()
        }
        legacy = record.get("tdt")
        if legacy and TDT not in accounts:
            accounts[TDT] = TdtSettings(**legacy)
        return cls(
            siren=record["siren"],
            name=record["name"],
            department=record["department"],
            token_sha256=record["token_sha256"],
            active=record.get("active", True),
            registered_at=record["registered_at"],
            accounts=accounts,
            retry_tiers=record.get("retry_tiers"),
            contractor_check=record.get("contractor_check") or WARN,
            legal_category=record.get("legal_category"),
            commune=record.get("commune"),
            commune_code=record.get("commune_code"),
        )


def _account_record(account: PartnerAccount) -> dict[str, Any]:
    record = asdict(account)
    record["options"] = dict(account.options)
    return record


def _legacy_tdt(account: PartnerAccount | None) -> dict[str, Any] | None:
    """The TdT account in the shape of schema v3's ``TdtSettings`` record (None: none)."""
    if account is None:
        return None
    try:
        arrondissement = int(account.options.get("arrondissement", "1"))
    except ValueError:
        arrondissement = 1
    return {
        "url": account.url,
        "login": account.login,
        "password_env": account.password_env,
        "cert_file": account.cert_file,
        "key_file": account.key_file,
        "arrondissement": arrondissement,
        "nature_collectivite": account.options.get("nature_collectivite", "31"),
        "key_password_env": account.key_password_env,
        "ca_file": account.ca_file,
    }


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_PARTNER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_OPTION_VALUE_MAX = 1000


def account_reasons(partner: str, account: PartnerAccount) -> list[Reason]:
    """Why a member's account with ``partner`` cannot work; empty when it can.

    Reasons name fields ``<partner>.<setting>``. Variables are named, never given:
    a value that is not an environment variable name (e.g. a password pasted by
    mistake) is refused without being echoed.
    """
    reasons = []
    if not _PARTNER_NAME.match(partner):
        reasons.append(Reason("accounts", "invalid_partner",
                              f"{partner[:40]!r} is not a partner name (lower case, e.g. tdt)"))
    if not account.url.startswith(("https://", "http://")):
        reasons.append(Reason(f"{partner}.url", "invalid_url",
                              f"the {partner} URL starts with https:// (or http://)"))
    for name, value in (("password_env", account.password_env),
                        ("key_password_env", account.key_password_env),
                        ("api_key_env", account.api_key_env),
                        ("token_env", account.token_env)):
        if value and not _ENV_NAME.match(value):
            reasons.append(Reason(f"{partner}.{name}", "invalid_env_name",
                                  "expected the name of an environment variable, not its value"))
    if account.key_file and not account.cert_file:
        reasons.append(Reason(f"{partner}.key_file", "requires_cert",
                              "a key needs its certificate"))
    if account.key_password_env and not account.cert_file:
        reasons.append(Reason(f"{partner}.key_password_env", "requires_cert",
                              "a key password needs a certificate and its key"))
    for key, value in account.options.items():
        if not _OPTION_KEY.match(key):
            reasons.append(Reason(f"{partner}.options", "invalid_option_key",
                                  f"{key[:70]!r} is not an option name"))
        elif len(value) > _OPTION_VALUE_MAX:
            reasons.append(Reason(f"{partner}.options.{key}", "too_long",
                                  f"an option value has at most {_OPTION_VALUE_MAX} characters"))
    return reasons


def accounts_reasons(accounts: Mapping[str, PartnerAccount]) -> list[Reason]:
    """Why any of a member's accounts cannot work; empty when they all can."""
    return [r for partner, account in accounts.items() for r in account_reasons(partner, account)]


def tdt_settings_reasons(tdt: PartnerAccount) -> list[Reason]:
    """Why a member's TdT account cannot work (reasons named ``tdt.<setting>``)."""
    return account_reasons(TDT, tdt)


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


def contractor_check_reasons(value: str) -> list[Reason]:
    """Why ``value`` is not a ``contractor_check`` setting; empty when it is."""
    if value in CONTRACTOR_CHECKS:
        return []
    return [Reason("contractor_check", "invalid_choice",
                   f"{value[:40]!r} is not one of {', '.join(CONTRACTOR_CHECKS)}")]


def check_registration(
    siren: str, name: str, department: str, contractor_check: str = WARN
) -> None:
    reasons = registration_reasons(siren, name, department)
    reasons += contractor_check_reasons(contractor_check)
    if reasons:
        raise ValidationError("member registration refused", reasons=reasons)
