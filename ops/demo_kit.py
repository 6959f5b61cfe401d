"""What the demo scenarios (``ops/demo.py``, ``demo_signature.py``, ``demo_registry.py``)
do alike: print a step, register members, watch a member's notifications while publishing
as that member, upload a PDF through the hub API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx

from ops.demo_documents import minimal_pdf
from ops.members import Registration, member_security, register_members
from ops.notifications import NotificationWatcher
from ops.topics import apply_topics
from relais.blobs.model import BlobRef
from relais.kafka.admin import admin_client
from relais.kafka.publisher import Publisher
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from topics.spec import TopicSpec

CLIENT_ID = "relais-demo"


def say(text: str) -> None:
    """A step of the demo, as a heading."""
    print(f"\n== {text}", flush=True)


async def register_for_demo(settings: Settings, registrations: Sequence[Registration], *,
                            topics: Sequence[TopicSpec] = ()) -> None:
    """``topics`` applied, then ``registrations`` registered (as ``relais members add``)."""
    publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id=CLIENT_ID)
    await publisher.start()
    try:
        async with admin_client(settings.bootstrap_servers) as admin:
            if topics:
                await apply_topics(admin, topics)
            await register_members(admin, publisher, list(registrations))
    finally:
        await publisher.stop()


@asynccontextmanager
async def member_session(
    settings: Settings, member: Registration
) -> AsyncIterator[tuple[NotificationWatcher, Publisher]]:
    """A watcher on ``member``'s notifications and a publisher of its submissions, both
    connected as the member's back-office; stopped on the way out."""
    codec = AvroCodec()
    security = member_security(member, settings.bootstrap_servers)
    watcher = NotificationWatcher(settings.bootstrap_servers, member.member.siren, codec,
                                  security=security)
    await watcher.start()
    publisher = Publisher(settings.bootstrap_servers, codec, client_id=CLIENT_ID,
                          security=security)
    await publisher.start()
    try:
        yield watcher, publisher
    finally:
        await publisher.stop()
        await watcher.stop()


async def upload_pdf(settings: Settings, member: Registration, text: str,
                     filename: str) -> BlobRef:
    """A one-page PDF saying ``text`` uploaded as ``member`` through the hub API."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"http://{settings.api_host}:{settings.api_port}/v1/blobs",
            content=minimal_pdf(text),
            headers={"Authorization": f"Bearer {member.token}",
                     "Content-Type": "application/pdf", "X-Relais-Filename": filename},
        )
        response.raise_for_status()
        up = response.json()
    return BlobRef(up["sha256"], up["size"], up["media_type"], up["filename"])
