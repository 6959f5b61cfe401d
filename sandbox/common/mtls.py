"""Serve a sandbox over HTTPS, identifying each account by its TLS client certificate.

uvicorn verifies the client certificate during the handshake (``ssl.CERT_REQUIRED``:
no certificate signed by the sandbox CA, no connection) but does not pass it to the
application. :func:`tls_server_options` gives uvicorn a protocol class that records
each connection's verified certificate by peer address, and
:class:`ClientCertificateGate` wraps the sandbox's ASGI app:

- the certificate's CN names the account; with no ``Authorization`` header the gate
  adds the account's HTTP Basic credentials, so the app authenticates it as usual;
  with one (S²LOW: Basic is optional), its login must be the certificate's account;
- a certificate that names no account reaches only the control paths (``/sandbox/…``);
- with ``required=False`` (``ssl.CERT_OPTIONAL``) a connection without a certificate
  goes on with HTTP Basic alone.

A refusal is HTTP 403 with a ``KO`` text. Plain HTTP requests pass through untouched.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from sandbox.common.tls import TlsMaterial, certificate_common_name

log = structlog.get_logger(__name__)

AsgiApp = ASGIApp


class PeerCertificates:
    """Verified client certificates of the open connections, by peer (host, port)."""

    def __init__(self) -> None:
        self._by_peer: dict[tuple[str, int], dict[str, Any]] = {}

    def record(self, peer: tuple[str, int], certificate: dict[str, Any]) -> None:
        self._by_peer[peer] = certificate

    def forget(self, peer: tuple[str, int]) -> None:
        self._by_peer.pop(peer, None)

    def get(self, peer: object) -> dict[str, Any] | None:
        if isinstance(peer, list | tuple) and len(peer) == 2:
            return self._by_peer.get((str(peer[0]), int(peer[1])))
        return None


def recording_protocol(registry: PeerCertificates) -> type[H11Protocol]:
    """An h11 protocol class that records each TLS connection's client certificate."""

    class RecordingH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None and self.client is not None:
                certificate = ssl_object.getpeercert()
                if certificate:
                    registry.record(self.client, certificate)

        def connection_lost(self, exc: Exception | None) -> None:
            if self.client is not None:
                registry.forget(self.client)
            super().connection_lost(exc)

    return RecordingH11Protocol


@dataclass(frozen=True)
class BasicAccount:
    """The HTTP Basic credentials the app expects for the account a certificate names."""

    login: str
    password: str


class ClientCertificateGate:
    """ASGI middleware mapping a verified client certificate to an account (module doc)."""

    def __init__(
        self,
        app: AsgiApp,
        registry: PeerCertificates,
        accounts: Mapping[str, BasicAccount],
        *,
        required: bool = True,
        open_prefixes: tuple[str, ...] = ("/sandbox/",),
    ) -> None:
        self.app = app
        self.registry = registry
        self.accounts = dict(accounts)
        self.required = required
        self.open_prefixes = open_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        is_open = path.startswith(self.open_prefixes)
        certificate = self.registry.get(scope.get("client"))
        if certificate is None:
            if self.required and not is_open:
                await _refuse(send, "un certificat client est requis")
                return
            await self.app(scope, receive, send)
            return
        name = certificate_common_name(certificate)
        account = self.accounts.get(name or "")
        if account is None:
            if is_open:
                await self.app(scope, receive, send)
                return
            log.info("sandbox.certificate_refused", common_name=name, path=path)
            await _refuse(send, "Le certificat n'est associé à aucun compte")
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        given = [v for k, v in headers if k == b"authorization"]
        if given:
            login = _basic_login(given[0])
            if login != account.login:
                log.info("sandbox.certificate_login_mismatch", common_name=name, login=login)
                await _refuse(send, "le login ne correspond pas au certificat")
                return
        else:
            token = base64.b64encode(f"{account.login}:{account.password}".encode()).decode()
            headers.append((b"authorization", f"Basic {token}".encode()))
        scope = {**scope, "headers": headers,
                 "extensions": {**scope.get("extensions", {}), "tls_client": {"cn": name}}}
        await self.app(scope, receive, send)


def _basic_login(value: bytes) -> str | None:
    scheme, _, encoded = value.decode("latin-1").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return None


async def _refuse(send: Send, message: str) -> None:
    body = f"KO\n{message}\n".encode("iso-8859-1", "replace")
    await send({
        "type": "http.response.start",
        "status": 403,
        "headers": [(b"content-type", b"text/plain; charset=ISO-8859-1"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


def tls_server_options(
    material: TlsMaterial, registry: PeerCertificates, *, required: bool = True
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``: HTTPS with client certificates of the CA."""
    return {
        "ssl_certfile": str(material.server_cert),
        "ssl_keyfile": str(material.server_key),
        "ssl_ca_certs": str(material.ca_file),
        "ssl_cert_reqs": ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL,
        "http": recording_protocol(registry),
    }
