"""Vitam's external API as Relais uses it (read in ProgrammeVitam/vitam:
``IngestExternalResource.java``, ``IngestExternalClientRest.java``,
``AdminManagementExternalResource.java``, ``TransferNotificationActionHandler.java``;
facts in ``shared/domain/protocols.md`` §7.3).

- :meth:`VitamConnector.upload`: ``POST /ingest-external/v1/ingests``, the SIP streamed
  as ``application/octet-stream`` with its exact ``Content-Length`` (never whole in
  memory), headers ``X-Tenant-Id``, ``X-Context-Id``, ``X-Action: RESUME``,
  ``X-Application-Id``. Vitam answers **202 with ``X-Request-Id``** (the operation id)
  before checking anything; content errors appear later in the operation and its ATR.
- :meth:`VitamConnector.operation`: ``HEAD /admin-external/v1/operations/{id}``: 202 while
  running, 200 once completed; ``X-Global-Execution-State`` and ``-Status``.
- :meth:`VitamConnector.transfer_reply`: ``GET /ingest-external/v1/ingests/{id}/
  archivetransferreply``: the ATR, 404 until it is written (``None`` here).
- :meth:`VitamConnector.find_operation`: the logbook search
  (``GET /access-external/v1/logbookoperations`` with a DSL body) on ``obIdIn`` = the
  SIP's ``MessageIdentifier``: how an upload cut before its answer is found again.

Every failure leaves as the error tree of :mod:`relais.errors` (transport table and
status table of :mod:`connectors.http.errors`); answers are read under caps.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import structlog

from connectors.archive.settings import ArchiveSettings
from connectors.http.errors import http_status_error, map_transport_errors
from connectors.http.limits import read_capped
from relais.errors import PartnerRefusedError, PartnerReplyError
from relais.seda.reply import SedaReply, read_reply_async

log = structlog.get_logger(__name__)

PARTNER = "archive"
INGESTS = "/ingest-external/v1/ingests"
OPERATIONS = "/admin-external/v1/operations"
LOGBOOK = "/access-external/v1/logbookoperations"
MAX_ATR_BYTES = 32 * 1024 * 1024
MAX_SMALL_BYTES = 1024 * 1024
READ_DEADLINE = 60.0


@dataclass(frozen=True)
class OperationState:
    """What ``HEAD /operations/{id}`` says: ``state`` PAUSE / RUNNING / COMPLETED,
    ``status`` UNKNOWN / STARTED / OK / WARNING / KO / FATAL (``None`` when absent)."""

    operation_id: str
    state: str | None
    status: str | None
    http_status: int

    @property
    def completed(self) -> bool:
        return self.http_status == 200 or self.state == "COMPLETED"

    @property
    def stuck(self) -> bool:
        """A FATAL step pauses the operation; an administrator must act (no ATR comes)."""
        return self.status == "FATAL" and self.state == "PAUSE"


@dataclass(frozen=True)
class FoundOperation:
    operation_id: str
    outcome: str | None


class VitamConnector:
    """One member's archive account (``client`` from the shared factory, base URL set)."""

    def __init__(self, client: httpx.AsyncClient, settings: ArchiveSettings,
                 *, member: str) -> None:
        self._client = client
        self.settings = settings
        self.member = member

    def _headers(self) -> dict[str, str]:
        headers = {"X-Tenant-Id": str(self.settings.tenant),
                   "X-Application-Id": self.settings.application_id}
        if self.settings.access_contract:
            headers["X-Access-Contract-Id"] = self.settings.access_contract
        return headers

    def _url(self) -> str:
        return str(self._client.base_url)

    async def _read(self, response: httpx.Response, cap: int, operation: str) -> bytes:
        return await read_capped(response, cap, partner=PARTNER, operation=operation,
                                 deadline=READ_DEADLINE, label="archive")

    async def upload(self, sip: AsyncIterator[bytes], length: int, *,
                     message_identifier: str) -> str:
        """Send the SIP; the operation id Vitam gave it (``X-Request-Id``).

        Raises :class:`PartnerRefusedError` when Vitam answers a KO ATR at once (an
        unknown workflow: 503 with a default ATR), other partner errors by status.
        """
        operation = f"archive upload {message_identifier}"
        headers = {**self._headers(), "X-Context-Id": self.settings.context_id,
                   "X-Action": "RESUME", "Content-Type": "application/octet-stream",
                   "Accept": "application/xml", "Content-Length": str(length)}
        with map_transport_errors(PARTNER, operation):
            request = self._client.build_request("POST", INGESTS, content=sip, headers=headers)
            response = await self._client.send(request, stream=True)
            try:
                body = await self._read(response, MAX_ATR_BYTES, operation)
            finally:
                await response.aclose()
        if response.status_code in (200, 202):
            operation_id = str(response.headers.get("X-Request-Id", "")).strip()
            if not operation_id:
                raise PartnerReplyError(f"{operation}: HTTP {response.status_code} without "
                                        "X-Request-Id", partner=PARTNER,
                                        status=response.status_code)
            log.info("archive.sip_uploaded", member=self.member, operation_id=operation_id,
                     message_identifier=message_identifier, bytes=length)
            return operation_id
        if b"ArchiveTransferReply" in body[:4096]:
            reply = await read_reply_async(body, cap=MAX_ATR_BYTES)
            raise PartnerRefusedError(
                f"{operation}: the archive refused the transfer: {'; '.join(reply.reasons())}",
                partner=PARTNER, status=response.status_code)
        raise self._status_error(response, operation, body)

    def _status_error(self, response: httpx.Response, operation: str,
                      body: bytes) -> Exception:
        text = body[:300].decode("utf-8", "replace").strip()
        error = http_status_error(response.status_code, response.headers, partner=PARTNER,
                                  operation=operation, url=self._url(), text=text,
                                  label="archive")
        return error or PartnerReplyError(f"{operation}: HTTP {response.status_code}",
                                          partner=PARTNER, status=response.status_code)

    async def operation(self, operation_id: str) -> OperationState:
        """The operation's state. A 404 is an unknown operation (permanent error)."""
        operation = f"archive operation {operation_id}"
        with map_transport_errors(PARTNER, operation):
            response = await self._client.head(f"{OPERATIONS}/{operation_id}",
                                               headers=self._headers())
        if response.status_code not in (200, 202):
            raise self._status_error(response, operation, b"")
        return OperationState(
            operation_id=operation_id,
            state=response.headers.get("X-Global-Execution-State"),
            status=response.headers.get("X-Global-Execution-Status"),
            http_status=response.status_code,
        )

    async def transfer_reply(self, operation_id: str) -> SedaReply | None:
        """The operation's ATR, parsed (raw bytes kept), or ``None`` while not written."""
        operation = f"archive ATR {operation_id}"
        with map_transport_errors(PARTNER, operation):
            request = self._client.build_request(
                "GET", f"{INGESTS}/{operation_id}/archivetransferreply",
                headers={**self._headers(), "Accept": "application/octet-stream"})
            response = await self._client.send(request, stream=True)
            try:
                body = await self._read(response, MAX_ATR_BYTES, operation)
            finally:
                await response.aclose()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._status_error(response, operation, body)
        return await read_reply_async(body, cap=MAX_ATR_BYTES)

    async def find_operation(self, message_identifier: str) -> FoundOperation | None:
        """The most recent ingest operation of the SIP whose ``MessageIdentifier`` this is
        (Vitam's logbook, ``obIdIn``), or ``None`` when the archive never received it."""
        operation = f"archive logbook search {message_identifier}"
        query = {"$query": {"$eq": {"obIdIn": message_identifier}},
                 "$filter": {"$orderby": {"evDateTime": -1}, "$limit": 10},
                 "$projection": {}}
        with map_transport_errors(PARTNER, operation):
            request = self._client.build_request(
                "GET", LOGBOOK, content=json.dumps(query).encode(),
                headers={**self._headers(), "Content-Type": "application/json",
                         "Accept": "application/json"})
            response = await self._client.send(request, stream=True)
            try:
                body = await self._read(response, MAX_SMALL_BYTES, operation)
            finally:
                await response.aclose()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._status_error(response, operation, body)
        try:
            answer = json.loads(body)
        except ValueError as exc:
            raise PartnerReplyError(f"{operation}: the answer is not JSON", partner=PARTNER,
                                    status=200) from exc
        results = answer.get("$results") if isinstance(answer, dict) else None
        for row in results if isinstance(results, list) else []:
            if not isinstance(row, dict) or row.get("obIdIn") != message_identifier:
                continue
            found = row.get("#id") or row.get("evIdProc") or row.get("evId")
            if isinstance(found, str) and found:
                outcome = row.get("outcome")
                return FoundOperation(found, outcome if isinstance(outcome, str) else None)
        return None
