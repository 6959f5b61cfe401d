"""The composition root: builds settings-driven dependencies and the faust app.

Real adapters are wired by default; tests pass fakes to the handlers directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
import structlog
from mode import Service

from agents import flow_state
from agents.ingress.gateway import IngressGateway
from agents.ingress.handler import IngressCounters, IngressDeps
from relais.blobs.filesystem import FilesystemBlobStore
from relais.logs import configure_logging
from relais.members.directory import MemberDirectory
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec

log = structlog.get_logger(__name__)


@dataclass
class HubDependencies:
    """Everything the hub's stages share, started and stopped together."""

    settings: Settings
    codec: AvroCodec
    members: MemberDirectory
    blobs: FilesystemBlobStore
    ingress: IngressGateway

    async def start(self) -> None:
        await self.members.start()
        await self.ingress.start()

    async def stop(self) -> None:
        await self.ingress.stop()
        await self.members.stop()


def build_dependencies(settings: Settings) -> HubDependencies:
    codec = AvroCodec()
    members = MemberDirectory(settings.bootstrap_servers, codec)
    blobs = FilesystemBlobStore(settings.blob_dir)
    ingress = IngressGateway(
        settings.bootstrap_servers,
        IngressDeps(
            codec=codec,
            members=members,
            blobs=blobs,
            max_submission_bytes=settings.max_submission_bytes,
            counters=IngressCounters(),
        ),
        group_id=f"{settings.app_id}-ingress",
    )
    return HubDependencies(settings, codec, members, blobs, ingress)


def create_app(settings: Settings, deps: HubDependencies | None = None) -> faust.App:
    """The hub's faust app with every agent and the ingress attached."""
    deps = deps or build_dependencies(settings)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=False,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        producer_acks=-1,
        datadir=str(settings.data_dir / "faust"),
    )
    flow_state.register(app, deps.codec)

    class HubRuntime(Service):
        """Starts the member directory and the ingress with the app, stops them with it."""

        async def on_start(self) -> None:
            configure_logging(settings.log_format, settings.log_level)
            await deps.start()

        async def on_stop(self) -> None:
            await deps.stop()

    app.service(HubRuntime)
    return app
