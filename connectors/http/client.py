"""Build the httpx client a partner connector is given, for one member's partner account.

Connectors never build their own client: a registry (:mod:`connectors.http.registry`)
or the composition root calls :func:`build_partner_client` (explicit values) or
:func:`account_client` (a member's :class:`PartnerAccount`, secrets read from the
environment variables it names) and hands the result to the connector. Tests pass
an ``httpx.MockTransport`` or an ``httpx.ASGITransport`` instead.

What a client can carry:

- a TLS client certificate (PEM certificate, key, the key's password) and a CA
  file replacing the system store (S²LOW, Hélios, some i-Parapheur set-ups);
- HTTP Basic (login, password);
- credential headers (an API key header such as ``X-INSEE-Api-Key-Integration``
  for Sirene, ``Authorization: Bearer <token>`` for API Entreprise);
- per-partner timeouts (connect, read, write, pool); redirects are always off;
- a cap on the connections kept to the partner (``max_connections``): without one,
  httpx opens a connection (a TLS handshake on both sides) for every request made
  while the others are busy, so a burst of one member's actes opened as many
  connections as the stage handles records at once.

A partner that refuses the certificate, a key whose password is wrong and a
server certificate the CA file does not vouch for all end as the non-retriable
``PartnerAuthError`` naming the member and the partner's URL (see
:mod:`connectors.http.tls` for how a refusal is told from a network failure).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog

from connectors.http.tls import CertificateCheckingTransport
from relais.errors import ConfigurationError, PartnerAuthError
from relais.members.model import PartnerAccount

log = structlog.get_logger(__name__)

KEY_FILE_READ_CAP = 1_000_000
"""Bytes of a key file read to tell whether it is encrypted."""


@dataclass(frozen=True)
class PartnerTimeouts:
    """Seconds an exchange with one partner may wait, per phase."""

    connect: float = 10.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 10.0

    @classmethod
    def uniform(cls, seconds: float) -> PartnerTimeouts:
        return cls(connect=seconds, read=seconds, write=seconds, pool=seconds)

    def with_options(self, options: Mapping[str, str], *, who: str) -> PartnerTimeouts:
        """These timeouts, overridden by an account's ``timeout.<phase>`` options (seconds)."""
        values = {"connect": self.connect, "read": self.read, "write": self.write,
                  "pool": self.pool}
        for phase in values:
            text = options.get(f"timeout.{phase}")
            if text is None:
                continue
            try:
                seconds = float(text)
            except ValueError:
                seconds = -1.0
            if not 0 < seconds <= 3600:
                raise ConfigurationError(
                    f"{who}: option timeout.{phase}={text!r} is not a number of seconds "
                    "in (0, 3600]"
                )
            values[phase] = seconds
        return PartnerTimeouts(**values)

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write,
                             pool=self.pool)


def build_partner_client(
    url: str,
    *,
    partner: str,
    label: str | None = None,
    member: str | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    key_password: str | None = None,
    ca_file: str | Path | None = None,
    basic_user: str | None = None,
    basic_password: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | httpx.Timeout | PartnerTimeouts = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one partner account, with ``url`` as its base URL.

    ``cert_file``/``key_file`` (PEM) authenticate the member with a TLS client
    certificate; ``key_password`` decrypts an encrypted key; ``ca_file`` replaces
    the system CA store for a partner with a private CA. ``basic_user``/
    ``basic_password`` add HTTP Basic; ``headers`` are sent on every request (the
    credential headers). ``timeout`` is one figure for every phase, an
    ``httpx.Timeout`` or :class:`PartnerTimeouts`. ``member`` (a SIREN) and
    ``label`` (e.g. "TdT", default ``partner``) name the account in errors.
    ``max_connections`` caps the connections open to the partner (all kept alive
    between requests); a request beyond it waits for one within the pool timeout, so a
    connector that sets it also bounds its requests in flight (``S2lowConnector``).
    None keeps httpx's pool (100 connections, 20 kept alive).

    Raises :class:`ConfigurationError` for a missing or unreadable file and
    :class:`PartnerAuthError` for a key its password does not open. The caller
    closes the client.
    """
    name = label or partner
    who = f"member {member}" if member else f"{name} client"
    if key_file is not None and cert_file is None:
        raise ConfigurationError(f"{who}: {name} key_file given without cert_file")
    if (basic_user is None) != (basic_password is None):
        raise ConfigurationError(f"{who}: {name} basic_user and basic_password go together")
    context: ssl.SSLContext | None = None
    if cert_file is not None or ca_file is not None or url.startswith("https:"):
        context = _tls_context(
            url, cert_file, key_file, key_password, ca_file, who=who, name=name, partner=partner
        )
    limits = (
        httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        if max_connections is not None
        else httpx.Limits(max_connections=100, max_keepalive_connections=20)
    )
    if transport is None and context is not None:
        transport = CertificateCheckingTransport(
            httpx.AsyncHTTPTransport(verify=context, limits=limits),
            context,
            who=f"{who}, {name} {url}",
        )
    auth = httpx.BasicAuth(basic_user, basic_password) if basic_user and basic_password else None
    log.debug(
        "partner.client_built",
        partner=partner,
        url=url,
        member=member,
        client_certificate=cert_file is not None,
        basic_user=basic_user,
        credential_headers=sorted(headers or {}),
    )
    if isinstance(timeout, PartnerTimeouts):
        timeouts = timeout.to_httpx()
    elif isinstance(timeout, httpx.Timeout):
        timeouts = timeout
    else:
        timeouts = httpx.Timeout(timeout)
    return httpx.AsyncClient(
        base_url=url,
        verify=context if context is not None else True,
        auth=auth,
        headers=dict(headers or {}),
        timeout=timeouts,
        transport=transport,
        limits=limits,
        follow_redirects=False,
    )


def account_client(
    account: PartnerAccount,
    *,
    partner: str,
    member: str,
    label: str | None = None,
    environ: Mapping[str, str] | None = None,
    timeouts: PartnerTimeouts | None = None,
    api_key_header: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int | None = None,
) -> httpx.AsyncClient:
    """The client of a member's ``account`` with ``partner``, its secrets read from ``environ``.

    HTTP Basic is sent when ``password_env`` names a variable (with ``login``);
    ``api_key_env``'s value goes in the header ``api_key_header`` (the partner's,
    given by its connector; an account option ``api_key_header`` overrides it);
    ``token_env``'s value goes in ``Authorization: Bearer``. ``timeouts`` are the
    partner's defaults, overridden by the account's ``timeout.<phase>`` options.
    ``max_connections``: see :func:`build_partner_client`.

    Raises :class:`ConfigurationError` (not retriable) when a variable the account
    names is unset or an API key has no header to go in.
    """
    env = environ if environ is not None else os.environ
    name = label or partner
    password = _secret(env, account.password_env, f"{name} password", member)
    key_password = _secret(env, account.key_password_env, f"{name} key password", member)
    api_key = _secret(env, account.api_key_env, f"{name} API key", member)
    token = _secret(env, account.token_env, f"{name} token", member)
    headers: dict[str, str] = {}
    if api_key is not None:
        header = account.options.get("api_key_header") or api_key_header
        if not header:
            raise ConfigurationError(
                f"member {member}: the {name} API key has no header to go in "
                "(set the account option api_key_header)"
            )
        headers[header] = api_key
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    chosen = (timeouts or PartnerTimeouts()).with_options(
        account.options, who=f"member {member}, {name}"
    )
    return build_partner_client(
        account.url,
        partner=partner,
        label=label,
        member=member,
        cert_file=account.cert_file,
        key_file=account.key_file,
        key_password=key_password,
        ca_file=account.ca_file,
        basic_user=account.login if password is not None else None,
        basic_password=password,
        headers=headers,
        timeout=chosen,
        transport=transport,
        max_connections=max_connections,
    )


def _secret(env: Mapping[str, str], variable: str | None, what: str, member: str) -> str | None:
    """The value of the environment variable ``variable`` names; None when it names none."""
    if not variable:
        return None
    value = env.get(variable)
    if value is None:
        raise ConfigurationError(
            f"the {what} of member {member} is expected in the environment "
            f"variable {variable}, which is not set"
        )
    return value


def _tls_context(
    url: str,
    cert_file: str | Path | None,
    key_file: str | Path | None,
    key_password: str | None,
    ca_file: str | Path | None,
    *,
    who: str,
    name: str,
    partner: str,
) -> ssl.SSLContext:
    """The client's TLS context: CA store, and the member's certificate and key."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"{who}: cannot read the {name} CA file {ca_file}: {exc}") from exc
    if cert_file is None:
        return context
    key_path = Path(key_file) if key_file is not None else Path(cert_file)
    try:
        key_text = key_path.read_bytes()[:KEY_FILE_READ_CAP]
    except OSError as exc:
        raise ConfigurationError(
            f"{who}: cannot read the {name} key file {key_path}: {exc}"
        ) from exc
    encrypted = b"ENCRYPTED" in key_text
    if encrypted and not key_password:
        raise ConfigurationError(
            f"{who}: the {name} key {key_path} is encrypted and no key password is configured"
        )
    try:
        # A callable, never None: OpenSSL would otherwise prompt on the terminal.
        context.load_cert_chain(
            str(cert_file),
            str(key_file) if key_file is not None else None,
            password=lambda: key_password or "",
        )
    except ssl.SSLError as exc:
        if encrypted:
            raise PartnerAuthError(
                f"{who}: the password of the TLS client key {key_path} for the {name} at {url} "
                "is wrong (the key cannot be decrypted)",
                partner=partner,
            ) from exc
        raise ConfigurationError(
            f"{who}: cannot load the {name} client certificate {cert_file} / key {key_path}: "
            f"{exc}"
        ) from exc
    except OSError as exc:
        raise ConfigurationError(
            f"{who}: cannot read the {name} client certificate {cert_file}: {exc}"
        ) from exc
    return context
