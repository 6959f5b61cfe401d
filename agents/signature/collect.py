"""Collecting a signature in the one order that cannot lose it.

1. ``GetDossier`` (the dossier stays in i-Parapheur);
2. the signature (or the signed PES) and the bordereau go to the blob store
   (content-addressed: doing it twice stores nothing new);
3. the flow's journal records them, **acknowledged by the broker** (``record``);
4. only then ``ArchiverDossier`` (EFFACER by default, as Pastell).

A worker killed anywhere before 3 leaves the dossier in i-Parapheur and the journal
without the signature: the next attempt fetches it again. Killed between 3 and 4, the
journal holds the signature; the next attempt only archives (a dossier already gone is
not an error then). Pastell's own source warns that archiving first can lose the
signature (``IParapheur::getSignature``). A rejected dossier is journalled first and
erased after (``EffacerDossierRejete``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from connectors.iparapheur.models import SignedDossier
from relais.blobs.model import BlobRef
from relais.errors import PartnerRefusedError, PartnerReplyError

log = structlog.get_logger(__name__)


class Parapheur(Protocol):
    async def get_signed(self, dossier_id: str) -> SignedDossier: ...
    async def archive(self, dossier_id: str, *, action: str = "EFFACER") -> str | None: ...
    async def delete_rejected(self, dossier_id: str) -> None: ...


class Blobs(Protocol):
    async def put_bytes(self, data: bytes, *, media_type: str, filename: str,
                        expected_sha256: str | None = None, max_bytes: int | None = None,
                        owner: str | None = None) -> BlobRef: ...


@dataclass(frozen=True)
class StoredSignature:
    """What the journal records for a signed flow."""

    dossier_id: str
    signature: BlobRef | None  # detached signature of a PDF
    signed_file: BlobRef | None  # the signed PES (or the document i-Parapheur returned)
    bordereau: BlobRef | None


Record = Callable[[StoredSignature], Awaitable[None]]
"""Journals the stored signature and returns once the broker acknowledged it."""


async def collect_signature(
    parapheur: Parapheur, blobs: Blobs, dossier_id: str, *, owner: str, record: Record,
    archive_action: str = "EFFACER",
) -> StoredSignature:
    """Fetch, store, journal, then archive (module doc); raises before archiving on any
    failure of the first three."""
    signed = await parapheur.get_signed(dossier_id)
    if signed.signature is None and not signed.is_xml:
        raise PartnerReplyError(
            f"GetDossier: i-Parapheur returned dossier {dossier_id} without a signature",
            partner="iparapheur",
        )
    stored = StoredSignature(
        dossier_id=dossier_id,
        signature=await _put(blobs, signed.signature, signed.signature_content_type
                             or "application/pkcs7-signature", f"{dossier_id}.p7s", owner),
        signed_file=await _put(blobs, signed.signed_file if signed.is_xml else None,
                               "application/xml", f"{dossier_id}.xml", owner),
        bordereau=await _put(blobs, signed.bordereau, "application/pdf",
                             f"{dossier_id}-bordereau.pdf", owner),
    )
    await record(stored)
    await archive_recorded(parapheur, dossier_id, action=archive_action)
    return stored


async def archive_recorded(parapheur: Parapheur, dossier_id: str, *, action: str) -> None:
    """``ArchiverDossier`` for a signature already journalled; a dossier i-Parapheur no
    longer holds was archived by an earlier attempt."""
    try:
        await parapheur.archive(dossier_id, action=action)
    except PartnerRefusedError as exc:
        log.info("signature.archive_refused_after_record", dossier_id=dossier_id,
                 error=exc.message)


async def close_rejected(parapheur: Parapheur, dossier_id: str, *,
                         record: Callable[[], Awaitable[None]]) -> None:
    """Journal the rejection (acknowledged), then ``EffacerDossierRejete``."""
    await record()
    try:
        await parapheur.delete_rejected(dossier_id)
    except PartnerRefusedError as exc:
        log.info("signature.delete_refused_after_record", dossier_id=dossier_id,
                 error=exc.message)


async def _put(blobs: Blobs, data: bytes | None, media_type: str, filename: str,
               owner: str) -> BlobRef | None:
    if data is None:
        return None
    return await blobs.put_bytes(data, media_type=media_type, filename=filename, owner=owner)
