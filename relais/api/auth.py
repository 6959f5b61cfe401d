"""Member API tokens: generation, hashing and constant-time checks.

A member authenticates with ``Authorization: Bearer <token>``. The hub never
stores the token itself, only :func:`hash_token` of it (hex SHA-256): tokens are
long random strings from :func:`generate_token`, so a plain hash is enough and
a leaked registry does not leak usable tokens. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping

TOKEN_BYTES = 32
"""Random bytes in a generated token (43 URL-safe characters)."""

MAX_TOKEN_LENGTH = 512
"""Longer presented tokens are refused before any hashing."""

Authenticator = Callable[[str], Awaitable[str | None]]
"""``authenticate(token) -> member SIREN or None``, as :func:`~relais.api.app.create_api` takes."""


def generate_token() -> str:
    """A new random member token (URL-safe base64, 256 bits of entropy)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The hex SHA-256 of the token's UTF-8 bytes: what the member registry keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def constant_time_equals(left: str, right: str) -> bool:
    """Compare two strings in time that does not depend on where they differ."""
    return hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))


def token_matches(token: str, token_hash: str) -> bool:
    """True when ``token`` hashes to ``token_hash``, compared in constant time."""
    return constant_time_equals(hash_token(token), token_hash.lower())


def bearer_token(authorization: str | None) -> str | None:
    """Extract the token from an ``Authorization: Bearer <token>`` header value.

    Returns None when the header is absent, uses another scheme, is empty or is
    longer than :data:`MAX_TOKEN_LENGTH`.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    if any(char.isspace() for char in token):
        return None
    return token


def static_authenticator(token_hashes: Mapping[str, str]) -> Authenticator:
    """An authenticator over a fixed ``{token hash: member SIREN}`` mapping.

    Every known hash is compared in constant time, with no early exit, so the
    answer time does not depend on which member (if any) the token belongs to.
    Useful for tests and for a registry small enough to load at start-up.
    """
    entries = [(token_hash.lower(), siren) for token_hash, siren in token_hashes.items()]

    async def authenticate(token: str) -> str | None:
        presented = hash_token(token)
        found: str | None = None
        for token_hash, siren in entries:
            if constant_time_equals(presented, token_hash):
                found = siren
        return found

    return authenticate
