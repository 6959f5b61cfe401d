"""A :class:`~relais.blobs.store.BlobStore` on a local directory.

Layout under ``root``::

    root/tmp/put-*.part                 uploads in progress (same filesystem as blobs)
    root/ab/cd/abcd…                    one read-only file per blob, named by its SHA-256
    root/owners/ab/abcd…/<member>       one empty file per owner of a blob

Every file operation runs in a worker thread (``asyncio.to_thread``), one call
per chunk, so the event loop never waits on the disk. Writes are gathered into
chunks of ``chunk_size`` bytes before they leave the loop, so a stream of small
network reads does not become thousands of thread hops. The metadata look-ups
(:meth:`~FilesystemBlobStore.stat`, :meth:`~FilesystemBlobStore.owned_by`), asked for
every blob reference of every submission, share their hops: the look-ups asked for in
one turn of the event loop run together in one worker thread
(:class:`~relais.blobs.lookups.LookupBatcher`), each a fresh system call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import IO, TypeVar

from relais.blobs.lookups import LookupBatcher
from relais.blobs.model import (
    BlobRef,
    normalize_media_type,
    parse_owner,
    parse_sha256,
    validate_filename,
)
from relais.blobs.store import TOO_LARGE, Chunk
from relais.errors import (
    BlobIntegrityError,
    BlobNotFoundError,
    ConfigurationError,
    InfrastructureError,
    Reason,
    ValidationError,
)

DEFAULT_CHUNK_SIZE = 1024 * 1024
TEMP_DIR_NAME = "tmp"
OWNERS_DIR_NAME = "owners"
_TEMP_PREFIX = "put-"
_TEMP_SUFFIX = ".part"
_BLOB_MODE = 0o440

_T = TypeVar("_T")


def too_large_error(max_bytes: int) -> ValidationError:
    """The ValidationError a store raises when content grows past ``max_bytes``."""
    message = f"The document is larger than the {max_bytes} bytes allowed."
    return ValidationError(message, reasons=[Reason(field="size", code=TOO_LARGE, message=message)])


class _TempBlob:
    """A temporary file being written, hashed as it grows. Used from worker threads."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)
        self.path = Path(name)
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._hasher = hashlib.sha256()

    def write(self, data: Chunk) -> None:
        self._hasher.update(data)
        self._file.write(data)

    def finish(self) -> str:
        """Flush and fsync the file, close it and return the hex digest of its content."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._hasher.hexdigest()

    def discard(self) -> None:
        """Close and remove the file; safe to call at any point, more than once."""
        with contextlib.suppress(OSError, ValueError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dir_durably(path: Path) -> None:
    """Create ``path`` if missing and fsync its parent so the new entry survives a crash."""
    try:
        path.mkdir()
    except FileExistsError:
        return
    _fsync_dir(path.parent)


def _install(temp_path: Path, final: Path) -> None:
    """Move a finished temporary file to its content address, durably."""
    _make_dir_durably(final.parent.parent)
    _make_dir_durably(final.parent)
    os.chmod(temp_path, _BLOB_MODE)
    # Replacing an existing copy is harmless: it holds the same bytes, and readers
    # that opened it keep their file. It also heals a copy damaged on disk.
    os.replace(temp_path, final)
    _fsync_dir(final.parent)


def _mark_owner(path: Path) -> None:
    """Create the empty owner file ``path`` (and its directories) durably, if missing."""
    if path.exists():
        return
    path.parent.parent.parent.mkdir(exist_ok=True)
    _make_dir_durably(path.parent.parent)
    _make_dir_durably(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o440)
    os.close(fd)
    _fsync_dir(path.parent)


def _open_or_none(path: Path) -> IO[bytes] | None:
    try:
        return path.open("rb")
    except FileNotFoundError:
        return None


def _size_or_none(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _sizes_and_owners(paths: list[tuple[str, str]]) -> list[tuple[int | None, bool]]:
    """For each (blob file, owner file): the blob's size (None when absent) and whether the
    owner file exists (not looked for when the blob is absent: False)."""
    found: list[tuple[int | None, bool]] = []
    for blob, owner in paths:
        size = _size_or_none(blob)
        found.append((size, size is not None and os.path.exists(owner)))
    return found


def _hash_file(path: Path, chunk_size: int) -> str | None:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    hasher = hashlib.sha256()
    with handle:
        while chunk := handle.read(chunk_size):
            hasher.update(chunk)
    return hasher.hexdigest()


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _purge(directory: Path, older_than: float) -> int:
    if not directory.is_dir():
        return 0
    limit = time.time() - older_than
    removed = 0
    for entry in directory.glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            if entry.stat().st_mtime < limit:
                entry.unlink()
                removed += 1
    return removed


class FilesystemBlobStore:
    """Content-addressed blobs under ``root``; implements :class:`~relais.blobs.store.BlobStore`.

    ``root/tmp`` must be on the same filesystem as the blobs (it is inside
    ``root``) so that moving a finished upload into place is an atomic rename.
    Nothing is created on disk until the first upload.
    """

    def __init__(self, root: Path, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if chunk_size <= 0:
            raise ConfigurationError("The blob store chunk size must be a positive byte count.")
        self.root = Path(root)
        self.chunk_size = chunk_size
        self.temp_dir = self.root / TEMP_DIR_NAME
        self._root_text = str(self.root)
        self._lookups = LookupBatcher()

    def _blob_file(self, sha256: str) -> str:
        digest = parse_sha256(sha256)
        return os.path.join(self._root_text, digest[:2], digest[2:4], digest)

    def _owner_file(self, sha256: str, member: str) -> str:
        digest = parse_sha256(sha256)
        return os.path.join(self._root_text, OWNERS_DIR_NAME, digest[:2], digest,
                            parse_owner(member))

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this digest lives (present or not)."""
        return Path(self._blob_file(sha256))

    def owner_path(self, sha256: str, member: str) -> Path:
        """The file that says ``member`` owns the blob (present or not)."""
        return Path(self._owner_file(sha256, member))

    async def _io(self, func: Callable[..., _T], *args: object) -> _T:
        """Run a blocking file operation in a worker thread; storage failures become
        :class:`~relais.errors.InfrastructureError`."""
        try:
            return await asyncio.to_thread(func, *args)
        except OSError as exc:
            raise InfrastructureError(
                f"The blob store under {self.root} failed: {exc.strerror or exc}."
            ) from exc

    async def _lookup(self, func: Callable[..., _T], *args: object) -> _T:
        """A quick metadata look-up, in a worker thread shared with the other look-ups of
        this loop turn; storage failures become :class:`~relais.errors.InfrastructureError`."""
        try:
            return await self._lookups.run(func, *args)
        except OSError as exc:
            raise InfrastructureError(
                f"The blob store under {self.root} failed: {exc.strerror or exc}."
            ) from exc

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
        """Store a stream; see :meth:`relais.blobs.store.BlobStore.put_stream`.

        On return the file was fsynced, renamed into ``root/ab/cd/<sha256>`` and
        its directory fsynced, and ``owner`` (if given) recorded. At most about
        two chunks are held in memory.
        """
        media_type = normalize_media_type(media_type)
        validate_filename(filename)
        if owner is not None:
            parse_owner(owner)
        expected = (
            None
            if expected_sha256 is None
            else parse_sha256(expected_sha256, field="expected_sha256")
        )
        if max_bytes is not None and max_bytes < 0:
            raise ValidationError("The size limit must not be negative.")

        temp = await self._io(_TempBlob, self.temp_dir)
        size = 0
        try:
            buffer = bytearray()
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise too_large_error(max_bytes)
                if not buffer and len(chunk) >= self.chunk_size:
                    await self._io(temp.write, chunk)
                    continue
                buffer += chunk
                if len(buffer) >= self.chunk_size:
                    await self._io(temp.write, buffer)
                    buffer = bytearray()
            if buffer:
                await self._io(temp.write, buffer)
            del buffer
            digest = await self._io(temp.finish)
            if expected is not None and digest != expected:
                raise BlobIntegrityError(
                    f"The document's SHA-256 is {digest}, not the expected {expected}."
                )
            await self._io(_install, temp.path, self.path_for(digest))
        except BaseException:
            temp.discard()
            raise
        if owner is not None:
            await self.grant(digest, owner)
        return BlobRef(sha256=digest, size=size, media_type=media_type, filename=filename)

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
        """Store bytes already in memory, written chunk by chunk without copies."""

        async def slices() -> AsyncIterator[Chunk]:
            view = memoryview(data)
            for start in range(0, len(view), self.chunk_size):
                yield view[start : start + self.chunk_size]

        return await self.put_stream(
            slices(),
            media_type=media_type,
            filename=filename,
            expected_sha256=expected_sha256,
            max_bytes=max_bytes,
            owner=owner,
        )

    async def grant(self, sha256: str, member: str) -> None:
        """Record ``member`` as an owner of the blob (an empty file), durably."""
        await self._io(_mark_owner, self.owner_path(sha256, member))

    async def owned_by(self, sha256: str, member: str) -> bool:
        """True when ``member`` uploaded the blob or was granted it."""
        return await self._lookup(os.path.exists, self._owner_file(sha256, member))

    async def open(self, sha256: str) -> AsyncIterator[bytes]:
        """Yield the blob's bytes in chunks of at most ``chunk_size`` bytes."""
        path = self.path_for(sha256)
        handle = await self._io(_open_or_none, path)
        if handle is None:
            raise BlobNotFoundError(f"No blob {path.name} in the store.")
        try:
            while chunk := await self._io(handle.read, self.chunk_size):
                yield chunk
        finally:
            handle.close()

    async def stat(self, sha256: str) -> int | None:
        return await self._lookup(_size_or_none, self._blob_file(sha256))

    async def sizes_and_owners(
        self, digests: Sequence[str], member: str
    ) -> list[tuple[int | None, bool]]:
        """For each digest, what :meth:`stat` and :meth:`owned_by` answer: the blob's size
        (None when absent) and whether ``member`` owns it (asked only of a present blob,
        else False). One look-up for them all, where the two methods take one each per
        digest (the ingress checks every blob reference of every submission so)."""
        paths = []
        for sha256 in digests:
            digest = parse_sha256(sha256)
            owner = parse_owner(member)
            paths.append((os.path.join(self._root_text, digest[:2], digest[2:4], digest),
                          os.path.join(self._root_text, OWNERS_DIR_NAME, digest[:2], digest,
                                       owner)))
        return await self._lookup(_sizes_and_owners, paths)

    async def exists(self, ref: BlobRef) -> bool:
        return await self.stat(ref.sha256) == ref.size

    async def verify(self, sha256: str) -> bool:
        path = self.path_for(sha256)
        digest = await self._io(_hash_file, path, self.chunk_size)
        if digest is None:
            raise BlobNotFoundError(f"No blob {path.name} in the store.")
        return digest == path.name

    async def delete(self, sha256: str) -> bool:
        return await self._io(_unlink, self.path_for(sha256))

    async def purge_temp(self, older_than: float = 3600.0) -> int:
        """Remove uploads abandoned by a crashed process; returns how many were removed.

        Only temporary files last modified more than ``older_than`` seconds ago
        are removed, so uploads in progress are left alone.
        """
        return await self._io(_purge, self.temp_dir, older_than)
