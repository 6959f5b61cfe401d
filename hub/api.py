"""The API process's composition: the member directory, the blob store and the HTTP server.

`relais api` parses its arguments and calls :func:`serve_hub_api`; nothing else builds
the API.
"""

from __future__ import annotations

from collections.abc import Callable

from relais.api.app import create_api
from relais.api.limits import ServerLimits
from relais.api.server import serve_api
from relais.blobs.filesystem import FilesystemBlobStore
from relais.members.directory import MemberDirectory
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec


async def serve_hub_api(settings: Settings, announce: Callable[[str], None]) -> None:
    """Serve authenticated blob uploads until cancelled; ``announce`` receives the address
    line once the member directory is loaded."""
    directory = MemberDirectory(settings.bootstrap_servers, AvroCodec())
    await directory.start()
    try:
        app = create_api(
            FilesystemBlobStore(settings.blob_dir),
            directory.authenticate,
            max_upload_bytes=settings.max_acte_bytes,
            body_timeout=settings.api_body_timeout_seconds,
        )
        limits = ServerLimits(
            max_total=settings.api_max_connections,
            max_per_client=settings.api_max_connections_per_client,
            header_timeout=settings.api_header_timeout_seconds,
        )
        announce(f"Relais API on http://{settings.api_host}:{settings.api_port}")
        await serve_api(app, settings.api_host, settings.api_port, limits=limits)
    finally:
        await directory.stop()
