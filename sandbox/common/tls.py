"""Throwaway TLS material for the sandboxes: a CA, a server certificate, client certificates.

``ensure_tls_material(directory, logins)`` creates, on first use, under ``directory``::

    ca.pem, ca.key                  the sandbox's own certification authority
    server.pem, server.key          a server certificate for 127.0.0.1 and localhost (+ hosts)
    client-key-password             the password of every client key (mode 0600)
    clients/<login>.pem, .key       one client certificate per account, CN = the login,
                                    its key encrypted with the password above
    operator.pem, operator.key      a client certificate for the sandbox's control endpoints
                                    (``/sandbox/…``), mapped to no account; key not encrypted

It is idempotent: existing files are kept and only what is missing is made (a new
login gets its certificate; a missing CA makes everything again). Keys are EC P-256,
certificates valid for ten years. The material is for loopback tests and demos,
never for a real service.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from relais.errors import ConfigurationError

VALIDITY = datetime.timedelta(days=3650)
OPERATOR_NAME = "sandbox-operator"
_LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class ClientCredentials:
    """A client certificate, its encrypted key and the key's password."""

    login: str
    cert_file: Path
    key_file: Path
    key_password: str | None

    def __repr__(self) -> str:  # never print the password
        return f"ClientCredentials({self.login!r}, {str(self.cert_file)!r})"


@dataclass(frozen=True)
class TlsMaterial:
    """Paths of a sandbox's TLS material (see the module docstring)."""

    directory: Path
    ca_file: Path
    server_cert: Path
    server_key: Path
    key_password: str
    clients: dict[str, ClientCredentials]
    operator: ClientCredentials

    def client(self, login: str) -> ClientCredentials:
        found = self.clients.get(login)
        if found is None:
            raise ConfigurationError(
                f"no sandbox client certificate for account {login!r} in {self.directory}"
            )
        return found


def ensure_tls_material(
    directory: str | Path, logins: Iterable[str], *, hosts: Iterable[str] = ()
) -> TlsMaterial:
    """The TLS material of ``directory``, created or completed for ``logins`` and ``hosts``.

    ``hosts`` are extra server names (DNS names or IP addresses) besides 127.0.0.1
    and localhost, e.g. a compose service name. Raises ConfigurationError for a
    login that cannot be a file name.
    """
    root = Path(directory)
    wanted = sorted(set(logins))
    bad = [login for login in wanted if not _LOGIN.match(login)]
    if bad:
        raise ConfigurationError(f"sandbox TLS: account logins unusable as file names: {bad}")
    (root / "clients").mkdir(parents=True, exist_ok=True)
    ca_cert_path, ca_key_path = root / "ca.pem", root / "ca.key"
    if not (ca_cert_path.exists() and ca_key_path.exists()):
        _forget_derived(root)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key)
        _write(ca_key_path, _key_pem(ca_key, None), private=True)
        _write(ca_cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ConfigurationError(f"sandbox TLS: {ca_key_path} is not the sandbox CA's EC key")
    ca_key = loaded

    server_names = ["localhost", "127.0.0.1", *hosts]
    server_cert, server_key = root / "server.pem", root / "server.key"
    if not server_cert.exists() or not _covers(server_cert, server_names):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _leaf(ca_cert, ca_key, key, "relais sandbox", server_names=server_names)
        _write(server_key, _key_pem(key, None), private=True)
        _write(server_cert, cert.public_bytes(serialization.Encoding.PEM))

    password_path = root / "client-key-password"
    if not password_path.exists():
        _write(password_path, secrets.token_urlsafe(18).encode(), private=True)
    password = password_path.read_text(encoding="utf-8").strip()

    clients = {
        login: _client(root / "clients", login, ca_cert, ca_key, password) for login in wanted
    }
    for existing in (root / "clients").glob("*.pem"):
        login = existing.stem
        if login not in clients and (existing.with_suffix(".key")).exists():
            clients[login] = ClientCredentials(
                login, existing, existing.with_suffix(".key"), password
            )
    operator = _client(root, "operator", ca_cert, ca_key, None, common_name=OPERATOR_NAME)
    return TlsMaterial(
        directory=root,
        ca_file=ca_cert_path,
        server_cert=server_cert,
        server_key=server_key,
        key_password=password,
        clients=clients,
        operator=operator,
    )


def make_foreign_client(
    directory: str | Path, login: str, *, key_password: str | None = None
) -> ClientCredentials:
    """A client certificate for ``login`` signed by a fresh CA of its own (for tests of
    a certificate the sandbox does not trust)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key, name="foreign CA (not trusted by the sandbox)")
    return _client(root, login, ca_cert, ca_key, key_password)


def certificate_common_name(peer: dict[str, object]) -> str | None:
    """The CN of a certificate as ``ssl.SSLSocket.getpeercert()`` returns it, or None."""
    subject = peer.get("subject")
    if not isinstance(subject, tuple):
        return None
    for rdn in subject:
        for pair in rdn:
            if isinstance(pair, tuple) and len(pair) == 2 and pair[0] == "commonName":
                return str(pair[1])
    return None


# -- internals -------------------------------------------------------------------------------


def _client(
    folder: Path,
    login: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    password: str | None,
    *,
    common_name: str | None = None,
) -> ClientCredentials:
    cert_path, key_path = folder / f"{login}.pem", folder / f"{login}.key"
    if not (cert_path.exists() and key_path.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _leaf(ca_cert, ca_key, key, common_name or login, client=True)
        _write(key_path, _key_pem(key, password), private=True)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return ClientCredentials(login, cert_path, key_path, password)


def _forget_derived(root: Path) -> None:
    for path in [root / "server.pem", root / "server.key", root / "operator.pem",
                 root / "operator.key", *(root / "clients").glob("*")]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Relais sandbox (throwaway)"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _ca_certificate(
    key: ec.EllipticCurvePrivateKey, *, name: str = "Relais sandbox CA (throwaway)"
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    subject = _name(name)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    server_names: list[str] | None = None,
    client: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in dict.fromkeys(server_names)]),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256())


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _covers(cert_path: Path, names: list[str]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    present |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return all(str(_general_name(n).value) in present for n in names)


def _key_pem(key: ec.EllipticCurvePrivateKey, password: str | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically; private files are readable by their owner only."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    temporary.replace(path)
