"""The blob store contract: content-addressed, streaming, async.

Documents never travel inside Kafka. A producer streams the bytes into a
:class:`BlobStore`, gets a :class:`~relais.blobs.model.BlobRef` back and puts
only that reference in its record; a consumer streams the bytes back out with
:meth:`BlobStore.open`. No operation of the contract needs a whole document in
memory: a 150 MB acte flows through in chunks.

:class:`~relais.blobs.filesystem.FilesystemBlobStore` implements the contract
on a local directory. An S3-compatible object store could implement the same
Protocol (multipart upload while hashing, ``If-None-Match`` or a HEAD for
idempotence, ranged or streamed GET for :meth:`BlobStore.open`); none is
provided here.

Errors raised by every implementation:

* :class:`~relais.errors.ValidationError` for a malformed digest, file name or
  media type, and for content larger than ``max_bytes`` (its reason code is
  :data:`TOO_LARGE`);
* :class:`~relais.errors.BlobIntegrityError` when content does not match the
  digest the caller expected;
* :class:`~relais.errors.BlobNotFoundError` when a blob is absent;
* :class:`~relais.errors.BlobNotOwnedError` (code ``blob_not_owned``) from
  :func:`check_owner` when a member asks for a blob it does not own;
* :class:`~relais.errors.InfrastructureError` when the storage itself fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol, runtime_checkable

from relais.blobs.model import BlobRef

Chunk = bytes | bytearray | memoryview
"""What a chunk handed to :meth:`BlobStore.put_stream` may be (``bytes`` in most cases)."""

TOO_LARGE = "blob_too_large"
"""Reason code of the ValidationError raised when content exceeds ``max_bytes``."""

NOT_OWNED = "blob_not_owned"
"""Code of a refusal to let a member read or reference a blob it does not own."""


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed storage of immutable documents, keyed by SHA-256."""

    async def put_stream(
        self,
        chunks: AsyncIterable[Chunk],
        *,
        media_type: str,
        filename: str,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
        owner: str | None = None,
    ) -> BlobRef:
        """Store the bytes ``chunks`` yields and return their reference.

        The digest is computed while the bytes are written; the chunks are
        consumed one at a time and never gathered in memory.

        When the awaitable returns, the blob is durable and visible to every
        reader under its digest (on a filesystem: the file was fsynced, then
        atomically renamed into place, then its directory fsynced). Storing
        content that is already present is idempotent: the same reference comes
        back and a single copy is kept.

        If ``max_bytes`` is given and the content grows past it, reading stops
        at once and ValidationError (reason code :data:`TOO_LARGE`) is raised.
        If ``expected_sha256`` is given and the content's digest differs,
        BlobIntegrityError is raised. On any failure, including cancellation
        or an error raised by ``chunks``, nothing is stored and nothing partial
        is left behind.

        ``owner`` (a member's SIREN) is recorded as an owner of the blob once it
        is stored (see :meth:`grant`): the member that uploaded it, or the
        member whose flow received a partner document.
        """
        ...

    async def put_bytes(
        self,
        data: bytes,
        *,
        media_type: str,
        filename: str,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
        owner: str | None = None,
    ) -> BlobRef:
        """Store bytes already in memory; same guarantees as :meth:`put_stream`."""
        ...

    async def grant(self, sha256: str, member: str) -> None:
        """Record ``member`` as an owner of the blob. Idempotent; durable on return.

        A blob is content-addressed, so the same bytes uploaded by two members
        have two owners. Raises ValidationError for a malformed digest or member.
        """
        ...

    async def owned_by(self, sha256: str, member: str) -> bool:
        """True when ``member`` uploaded the blob or was granted it.

        Members may read and reference only the blobs they own; operators (the
        CLI and the hub's own stages) read the store directly, whoever owns what.
        """
        ...

    def open(self, sha256: str) -> AsyncIterator[bytes]:
        """Stream the blob's bytes in chunks.

        This is an async iterator, not a coroutine: ``async for chunk in
        store.open(digest)``. BlobNotFoundError is raised by the first step of
        the iteration when the blob is absent. Chunks are bounded by the
        store's chunk size, so the blob never sits whole in memory. The bytes
        are not re-hashed on the way out; use :meth:`verify` for that.
        """
        ...

    async def stat(self, sha256: str) -> int | None:
        """The blob's size in bytes, or None when it is absent."""
        ...

    async def exists(self, ref: BlobRef) -> bool:
        """True when a blob with the ref's digest is present with exactly the ref's size."""
        ...

    async def verify(self, sha256: str) -> bool:
        """Re-hash the stored bytes (streaming) and tell whether they still match.

        False means the stored copy is corrupt. Raises BlobNotFoundError when
        the blob is absent.
        """
        ...

    async def delete(self, sha256: str) -> bool:
        """Remove the blob; True when it was present, False when it already was not.

        Readers that already opened the blob may still finish reading it.
        """
        ...
