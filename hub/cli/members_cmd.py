"""`relais members add|list|show`: the member registry."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer

from hub.cli.common import fail, load_settings, run
from ops.members import (
    Registration,
    accounts_from_specs,
    new_member,
    register_members,
    registry_identity,
)
from relais.kafka.acls import member_group_prefix
from relais.kafka.admin import admin_client
from relais.kafka.publisher import Publisher
from relais.kafka.security import security_for
from relais.members.directory import MemberDirectory
from relais.members.model import (
    CONTRACTOR_CHECKS,
    TDT,
    WARN,
    Member,
    PartnerAccount,
    TdtSettings,
    account_reasons,
)
from relais.settings import Settings
from relais.stages.failures import parse_tiers
from relais.wire.avro_codec import AvroCodec
from topics import member as member_topics

app = typer.Typer(help="Register and inspect members (communes, EPCI, départements…).")


async def _snapshot(settings: Settings) -> MemberDirectory:
    directory = MemberDirectory(settings.bootstrap_servers, AvroCodec())
    await directory.start()
    await directory.stop()
    return directory


def _describe(member: Member) -> dict[str, object]:
    out: dict[str, object] = {
        "siren": member.siren,
        "name": member.name,
        "department": member.department,
        "active": member.active,
        "registered_at": member.registered_at.isoformat(),
        "contractor_check": member.contractor_check,
        "legal_category": member.legal_category,
        "commune": member.commune,
        "commune_code": member.commune_code,
        "submissions_topic": member_topics.submissions(member.siren).name,
        "notifications_topic": member_topics.notifications(member.siren).name,
    }
    if member.accounts:
        out["accounts"] = {
            partner: {"url": a.url, "login": a.login, "password_env": a.password_env,
                      "cert_file": a.cert_file, "key_file": a.key_file,
                      "key_password_env": a.key_password_env, "ca_file": a.ca_file,
                      "api_key_env": a.api_key_env, "token_env": a.token_env,
                      "options": dict(a.options)}
            for partner, a in sorted(member.accounts.items())
        }
    return out


def _tdt_settings(
    url: str, login: str, password_env: str, cert: str, key: str, key_password_env: str, ca: str
) -> PartnerAccount | None:
    """The member's TdT account from the --tdt-* options (None without --tdt-url)."""
    if not url:
        if cert or key or key_password_env or ca or login or password_env:
            fail("the --tdt-* options need --tdt-url")
        return None
    return TdtSettings(url=url, login=login, password_env=password_env,
                       cert_file=_absolute(cert), key_file=_absolute(key),
                       key_password_env=key_password_env or None, ca_file=_absolute(ca))


def _accounts(
    tdt: PartnerAccount | None, specs: list[str], options: list[str]
) -> dict[str, PartnerAccount]:
    """Every account the options give; exits 1 with reasons when one cannot work."""
    try:
        accounts = accounts_from_specs(specs, options)
    except ValueError as exc:
        fail(str(exc))
        return {}
    accounts = {
        partner: replace(account, cert_file=_absolute(account.cert_file or ""),
                         key_file=_absolute(account.key_file or ""),
                         ca_file=_absolute(account.ca_file or ""))
        for partner, account in accounts.items()
    }
    if tdt is not None:
        if TDT in accounts:
            fail("the TdT account is given twice (--tdt-url and --account tdt=…)")
        accounts[TDT] = tdt
    reasons = [r for partner, a in accounts.items() for r in account_reasons(partner, a)]
    if reasons:
        lines = "".join(f"\n  - {r.field}: {r.message}" for r in reasons)
        fail(f"account settings refused{lines}")
    for partner, account in accounts.items():
        for label, path in (("certificate", account.cert_file), ("key", account.key_file),
                            ("CA file", account.ca_file)):
            if path and not Path(path).is_file():
                typer.secho(f"warning: {partner} {label} {path} is not a file on this machine; "
                            "the worker must be able to read it", fg=typer.colors.YELLOW,
                            err=True)
    return accounts


def _absolute(path: str) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


@app.command()
def add(
    siren: str = typer.Argument(..., help="9-digit SIREN (leading zeros are kept)."),
    name: str = typer.Option(
        "", help="The member's name (default: Sirene's, when the registries are configured)."
    ),
    department: str = typer.Option(
        "", help="Department code on 3 characters (021, 02A, 974); default: that of the "
        "commune Sirene gives."
    ),
    tdt_url: str = typer.Option("", help="Base URL of the member's TdT."),
    tdt_login: str = typer.Option("", help="TdT login (HTTP Basic, optional on S²LOW)."),
    tdt_password_env: str = typer.Option(
        "", help="Name of the environment variable that holds the TdT password (empty: no Basic)."
    ),
    tdt_cert: str = typer.Option(
        "", help="PEM file of the member's TLS client certificate for the TdT (S²LOW requires one)."
    ),
    tdt_key: str = typer.Option(
        "", help="PEM file of the certificate's private key (default: inside --tdt-cert)."
    ),
    tdt_key_password_env: str = typer.Option(
        "", help="Name of the environment variable that holds the key's password (never the value)."
    ),
    tdt_ca: str = typer.Option(
        "", help="PEM file of the CA of the TdT's server certificate (default: the system store)."
    ),
    account: list[str] = typer.Option(
        [], "--account", help="An account with a partner: partner=url (repeatable), e.g. "
        "archive=https://vitam.example.org or sirene=https://api.insee.fr/entreprises/sirene."
    ),
    account_option: list[str] = typer.Option(
        [], "--account-option", help="A setting of an --account: partner.key=value (repeatable). "
        "Keys login, password_env, cert_file, key_file, key_password_env, ca_file, api_key_env, "
        "token_env set the account; any other key is a partner option (archive.tenant=1)."
    ),
    retry_tiers: str = typer.Option(
        "", help="This member's retry tiers, e.g. 30s,5m,1h (default: the partner's or hub's)."
    ),
    contractor_check: str = typer.Option(
        WARN, help="A contract (nature 4, CC) naming a closed or unknown contractor SIRET: "
        "warn (the acte goes on, the member is warned) or refuse (the acte is rejected; "
        "docs/registries.md)."
    ),
    force: bool = typer.Option(
        False, help="Replace an existing member (rotates its token and Kafka password)."
    ),
) -> None:
    """Register a member: create its topics and Kafka user, publish it to the registry, print
    its token and Kafka password once. With the registries configured, the SIREN is checked
    against Sirene first (name, legal category, commune)."""
    settings = load_settings()
    tdt = _tdt_settings(tdt_url, tdt_login, tdt_password_env, tdt_cert, tdt_key,
                        tdt_key_password_env, tdt_ca)
    accounts = _accounts(tdt, account, account_option)
    if contractor_check not in CONTRACTOR_CHECKS:
        fail(f"--contractor-check {contractor_check!r}: expected one of "
             f"{', '.join(CONTRACTOR_CHECKS)}")

    async def go() -> Registration:
        directory = await _snapshot(settings)
        if directory.get(siren) is not None and not force:
            fail(f"member {siren} is already registered (use --force to replace it)")
        chosen_name, chosen_department = name, department
        identity = None
        if settings.registry_sirene_url:
            identity = await registry_identity(settings.bootstrap_servers, siren)
            if identity is None:
                typer.secho(f"warning: Sirene gave no usable answer for {siren}; the values "
                            "given are used", fg=typer.colors.YELLOW, err=True)
            else:
                typer.echo(f"Sirene: {identity.name}, legal category "
                           f"{identity.legal_category or '?'}, commune "
                           f"{identity.commune or '?'} ({identity.commune_code or '?'})"
                           + ("" if identity.active else "; the unit is CLOSED"))
                chosen_name = chosen_name or identity.name
                chosen_department = chosen_department or identity.department or ""
        if not chosen_name or not chosen_department:
            fail("--name and --department are required when Sirene does not give them")
        registration = new_member(
            siren, chosen_name, chosen_department, accounts=accounts,
            contractor_check=contractor_check,
            legal_category=identity.legal_category if identity else None,
            commune=identity.commune if identity else None,
            commune_code=identity.commune_code if identity else None,
        )
        if retry_tiers:
            parse_tiers(retry_tiers)  # ConfigurationError: one line, exit 1
            registration = replace(
                registration, member=replace(registration.member, retry_tiers=retry_tiers)
            )
        publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id="relais-cli")
        await publisher.start()
        try:
            async with admin_client(settings.bootstrap_servers) as admin:
                await register_members(admin, publisher, [registration], principals=sasl)
        finally:
            await publisher.stop()
        return registration

    sasl = security_for(settings.bootstrap_servers).sasl
    registration = run(go())
    token = registration.token
    typer.echo(f"member {siren} registered")
    stored = registration.member
    if stored.legal_category or stored.commune:
        typer.echo(f"  legal category {stored.legal_category or '?'}, commune "
                   f"{stored.commune or '?'} ({stored.commune_code or '?'}), from Sirene")
    typer.echo(f"  contractors:   {stored.contractor_check} (a contract naming a closed or "
               "unknown contractor is " + ("refused)" if stored.refuses_closed_contractors
                                           else "flagged, not refused)"))
    typer.echo(f"  submissions:   {member_topics.submissions(siren).name}")
    typer.echo(f"  notifications: {member_topics.notifications(siren).name}")
    typer.echo(f"  API token (shown once, store it now): {token}")
    if sasl:
        typer.echo(f"  Kafka user:     {registration.kafka_user} (SASL SCRAM-SHA-512)")
        typer.echo(f"  Kafka password (shown once, store it now): {registration.kafka_password}")
        typer.echo(f"  consumer group: {member_group_prefix(siren)}<any suffix>")


@app.command("list")
def list_members() -> None:
    """One line per registered member."""
    settings = load_settings()
    directory = run(_snapshot(settings))
    for member in directory.all():
        flag = "" if member.active else "  (inactive)"
        commune = f"  [{member.commune}]" if member.commune else ""
        refuses = "  (refuses closed contractors)" if member.refuses_closed_contractors else ""
        typer.echo(f"{member.siren}  {member.department}  {member.name}{commune}{refuses}{flag}")
    typer.echo(f"{len(directory)} members")


@app.command()
def show(siren: str) -> None:
    """A member's registry record as JSON (never its token)."""
    settings = load_settings()
    directory = run(_snapshot(settings))
    member = directory.get(siren)
    if member is None:
        fail(f"no member {siren}")
        return
    typer.echo(json.dumps(_describe(member), indent=2, ensure_ascii=False))
