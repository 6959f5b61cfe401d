"""The Vitam connector on httpx.MockTransport with answers shaped as Vitam writes them
(IngestExternalResource: 202 + X-Request-Id; AdminManagementExternalResource: HEAD with
X-Global-Execution-State/-Status; the ATR; the logbook's $results)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from connectors.archive.registry import archive_connectors
from connectors.archive.settings import ArchiveSettings
from connectors.archive.vitam import VitamConnector
from relais.errors import (
    ConfigurationError,
    PartnerAuthError,
    PartnerRefusedError,
    PartnerReplyTooLargeError,
    PartnerTimeoutError,
    PartnerTransientError,
)
from relais.members.model import Member, PartnerAccount
from tests.conformance.test_seda_replies import VITAM_EARLY_KO, VITAM_OK

BASE = "https://vitam.example.org"
OP = "aeeaaaaaaghduohdabkmgalnd4ckbxyaaaaq"
SETTINGS = ArchiveSettings(tenant=1, archival_agency="Vitam", access_contract="AC-1")


def _connector(handler: httpx.MockTransport) -> VitamConnector:
    return VitamConnector(httpx.AsyncClient(base_url=BASE, transport=handler), SETTINGS,
                          member="212102313")


async def _sip(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_upload_streams_the_sip_and_returns_the_operation_id() -> None:
    seen: dict[str, object] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        seen["headers"] = dict(request.headers)
        seen["body"] = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        seen["path"] = request.url.path
        return httpx.Response(202, headers={"X-Request-Id": OP})

    connector = _connector(httpx.MockTransport(handler))
    assert await connector.upload(_sip([b"PK", b"rest"]), 6, message_identifier="M1") == OP
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert seen["path"] == "/ingest-external/v1/ingests"
    assert seen["body"] == b"PKrest"
    assert headers["x-tenant-id"] == "1"
    assert headers["x-context-id"] == "DEFAULT_WORKFLOW"
    assert headers["x-action"] == "RESUME"
    assert headers["content-length"] == "6"
    assert headers["content-type"] == "application/octet-stream"


async def test_an_unknown_workflow_is_a_refusal_with_the_atr_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, content=VITAM_EARLY_KO)

    with pytest.raises(PartnerRefusedError, match="CHECK_DIGEST"):
        await _connector(httpx.MockTransport(handler)).upload(_sip([b"x"]), 1,
                                                              message_identifier="M1")


@pytest.mark.parametrize(("status", "error"), [(401, PartnerAuthError),
                                               (503, PartnerTransientError),
                                               (500, PartnerTransientError)])
async def test_upload_statuses(status: int, error: type[Exception]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"httpCode": status, "code": "000000"})

    with pytest.raises(error):
        await _connector(httpx.MockTransport(handler)).upload(_sip([b"x"]), 1,
                                                              message_identifier="M1")


async def test_a_timeout_is_retriable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(PartnerTimeoutError):
        await _connector(httpx.MockTransport(handler)).operation(OP)


async def test_operation_state_running_then_completed_then_fatal() -> None:
    answers = [
        httpx.Response(202, headers={"X-Global-Execution-State": "RUNNING",
                                     "X-Global-Execution-Status": "STARTED"}),
        httpx.Response(200, headers={"X-Global-Execution-State": "COMPLETED",
                                     "X-Global-Execution-Status": "WARNING"}),
        httpx.Response(202, headers={"X-Global-Execution-State": "PAUSE",
                                     "X-Global-Execution-Status": "FATAL"}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "HEAD"
        assert request.url.path == f"/admin-external/v1/operations/{OP}"
        return answers.pop(0)

    connector = _connector(httpx.MockTransport(handler))
    running = await connector.operation(OP)
    assert not running.completed and not running.stuck
    done = await connector.operation(OP)
    assert done.completed and done.status == "WARNING"
    assert (await connector.operation(OP)).stuck


async def test_the_atr_is_none_until_written_then_parsed() -> None:
    answers = [httpx.Response(404, json={"httpCode": 404}), httpx.Response(200, content=VITAM_OK)]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/ingest-external/v1/ingests/{OP}/archivetransferreply"
        return answers.pop(0)

    connector = _connector(httpx.MockTransport(handler))
    assert await connector.transfer_reply(OP) is None
    reply = await connector.transfer_reply(OP)
    assert reply is not None and reply.accepted and reply.raw == VITAM_OK


async def test_an_oversized_atr_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(10**9)}, content=b"x")

    with pytest.raises(PartnerReplyTooLargeError):
        await _connector(httpx.MockTransport(handler)).transfer_reply(OP)


async def test_the_logbook_search_finds_the_operation_by_message_identifier() -> None:
    queries: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/access-external/v1/logbookoperations"
        assert request.headers["x-access-contract-id"] == "AC-1"
        query = json.loads(request.content)
        queries.append(query)
        wanted = query["$query"]["$eq"]["obIdIn"]
        rows = [{"#id": OP, "evId": OP, "evType": "PROCESS_SIP_UNITARY", "evTypeProc": "INGEST",
                 "outcome": "OK", "obIdIn": "M1", "events": []}] if wanted == "M1" else []
        return httpx.Response(200, json={"httpCode": 200, "$hits": {"total": len(rows)},
                                         "$results": rows, "$facetResults": [],
                                         "$context": query})

    connector = _connector(httpx.MockTransport(handler))
    found = await connector.find_operation("M1")
    assert found is not None and found.operation_id == OP and found.outcome == "OK"
    assert await connector.find_operation("M2") is None
    assert len(queries) == 2


def test_settings_from_the_account() -> None:
    account = PartnerAccount(url=BASE, options={"tenant": "2", "archival_agency": "AD21",
                                                "seda_version": "2.2", "auto_archive": "true"})
    settings = ArchiveSettings.from_account(account, "212102313")
    assert (settings.tenant, settings.seda_version.value, settings.auto_archive) == (2, "2.2", True)
    with pytest.raises(ConfigurationError, match="tenant"):
        ArchiveSettings.from_account(PartnerAccount(url=BASE, options={}), "212102313")
    with pytest.raises(ConfigurationError, match="seda_version"):
        ArchiveSettings.from_account(PartnerAccount(url=BASE, options={
            "tenant": "1", "archival_agency": "A", "seda_version": "1.0"}), "212102313")


async def test_the_registry_builds_one_connector_per_archive_account() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, headers={"X-Request-Id": OP})

    account = PartnerAccount(url=BASE, options={"tenant": "1", "archival_agency": "Vitam"})
    member = Member(siren="212102313", name="Dijon", department="021", token_sha256="x",
                    registered_at=datetime(2026, 1, 1, tzinfo=UTC), accounts={"archive": account})
    registry = archive_connectors(httpx.MockTransport(handler))
    try:
        connector = registry.for_member(member)
        assert registry.for_member(member) is connector
        assert await connector.upload(_sip([b"x"]), 1, message_identifier="M") == OP
    finally:
        await registry.aclose()
    bare = Member(siren="212102313", name="Dijon", department="021", token_sha256="x")
    with pytest.raises(ConfigurationError, match="archive"):
        archive_connectors().for_member(bare)
