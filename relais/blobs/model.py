"""The blob reference that travels in Kafka records instead of the document itself.

A record never carries document bytes: it carries a :class:`BlobRef`, whose dict
form is the Avro record ``{sha256: string, size: long, media_type: string,
filename: string}``. The bytes live in a content-addressed blob store
(:mod:`relais.blobs.store`) under their SHA-256 digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from relais.errors import Reason, ValidationError

SHA256_HEX_LENGTH = 64
MAX_FILENAME_LENGTH = 255
MAX_MEDIA_TYPE_LENGTH = 255
DEFAULT_MEDIA_TYPE = "application/octet-stream"

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MEDIA_NAME = r"[a-z0-9!#$&^_.+-]+"
_MEDIA_ESSENCE_RE = re.compile(rf"{_MEDIA_NAME}/{_MEDIA_NAME}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_OWNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_FIELDS = ("sha256", "size", "media_type", "filename")


def _refuse(field: str, code: str, message: str) -> ValidationError:
    return ValidationError(message, reasons=[Reason(field=field, code=code, message=message)])


def is_sha256_hex(value: object) -> bool:
    """True when ``value`` is the canonical form: 64 lower-case hexadecimal digits."""
    return isinstance(value, str) and _SHA256_RE.fullmatch(value) is not None


def parse_sha256(value: str, *, field: str = "sha256") -> str:
    """Return the canonical (lower-case) form of a hex SHA-256 digest.

    Upper-case input is accepted and lowered; anything else that is not 64 hex
    digits raises :class:`~relais.errors.ValidationError`. Stores call this on
    every digest they receive, so a digest can never be used as a path.
    """
    if isinstance(value, str):
        lowered = value.lower()
        if _SHA256_RE.fullmatch(lowered):
            return lowered
    raise _refuse(field, "invalid_sha256", "A SHA-256 digest must be 64 hexadecimal digits.")


def parse_owner(value: str, *, field: str = "member") -> str:
    """Return ``value`` if it can name a blob's owner (a member's SIREN), else raise.

    1 to 64 letters, digits, ``_`` or ``-``, starting with a letter or digit: an
    owner is used as a file name by the filesystem store, never as a path.
    """
    if isinstance(value, str) and _OWNER_RE.fullmatch(value):
        return value
    raise _refuse(field, "invalid_owner", "A blob owner must be a member identifier.")


def validate_filename(value: str, *, field: str = "filename") -> str:
    """Return ``value`` if it is a plain file name, else raise ValidationError.

    A plain file name is 1 to 255 characters, not blank, not ``.`` or ``..``,
    and holds no path separator (``/`` or ``\\``) and no control character.
    """
    if not isinstance(value, str) or not value.strip():
        raise _refuse(field, "empty_filename", "A file name is required.")
    if len(value) > MAX_FILENAME_LENGTH:
        message = f"A file name holds at most {MAX_FILENAME_LENGTH} characters."
        raise _refuse(field, "filename_too_long", message)
    if "/" in value or "\\" in value:
        raise _refuse(field, "filename_path", "A file name must not contain a path separator.")
    if value in {".", ".."}:
        raise _refuse(field, "filename_path", "A file name must not be a relative path.")
    if _CONTROL_RE.search(value):
        raise _refuse(field, "filename_control", "A file name must not contain control characters.")
    return value


def normalize_media_type(value: str, *, field: str = "media_type") -> str:
    """Return a media type with its ``type/subtype`` lower-cased and spacing tidied.

    Parameters (``; charset=utf-8``) are kept. Raises ValidationError when the
    value is not of the ``type/subtype`` form or is longer than 255 characters.
    """
    if not isinstance(value, str):
        raise _refuse(field, "invalid_media_type", "A media type must be a string.")
    parts = [part.strip() for part in value.split(";")]
    essence = parts[0].lower()
    params = [part for part in parts[1:] if part]
    normalized = "; ".join([essence, *params])
    if (
        not _MEDIA_ESSENCE_RE.fullmatch(essence)
        or len(normalized) > MAX_MEDIA_TYPE_LENGTH
        or _CONTROL_RE.search(normalized)
    ):
        raise _refuse(field, "invalid_media_type", "A media type must look like `type/subtype`.")
    return normalized


@dataclass(frozen=True)
class BlobRef:
    """A reference to immutable bytes in the blob store.

    ``sha256`` is the canonical lower-case hex digest of the bytes, ``size``
    their length, ``media_type`` what the submitter declared (or what was
    sniffed), ``filename`` the name the member gave the document. Two refs with
    the same digest designate the same bytes, whatever their file names.
    """

    sha256: str
    size: int
    media_type: str
    filename: str

    def __post_init__(self) -> None:
        if not is_sha256_hex(self.sha256):
            raise _refuse(
                "sha256",
                "invalid_sha256",
                "A blob digest must be 64 lower-case hexadecimal digits.",
            )
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise _refuse("size", "invalid_size", "A blob size must be a non-negative integer.")
        if normalize_media_type(self.media_type) != self.media_type:
            raise _refuse(
                "media_type", "invalid_media_type", "A blob media type must be in normal form."
            )
        validate_filename(self.filename)

    def to_dict(self) -> dict[str, Any]:
        """The Avro record form: ``{sha256, size, media_type, filename}``."""
        return {
            "sha256": self.sha256,
            "size": self.size,
            "media_type": self.media_type,
            "filename": self.filename,
        }

    @classmethod
    def from_dict(cls, data: Any) -> BlobRef:
        """Build a ref from its dict form; raises ValidationError on any defect."""
        if not isinstance(data, dict):
            raise _refuse("", "invalid_blob_ref", "A blob reference must be a mapping.")
        missing = [name for name in _FIELDS if name not in data]
        if missing:
            raise ValidationError(
                "A blob reference lacks required fields.",
                reasons=[
                    Reason(field=name, code="missing", message=f"The field {name} is required.")
                    for name in missing
                ],
            )
        return cls(
            sha256=data["sha256"],
            size=data["size"],
            media_type=data["media_type"],
            filename=data["filename"],
        )
