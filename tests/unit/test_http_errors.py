"""The shared httpx error table and HTTP status rules every partner connector uses."""

from __future__ import annotations

import httpx
import pytest
from structlog.testing import capture_logs

from connectors.http.errors import (
    TRANSPORT_ERRORS,
    check_response,
    error_class_for,
    http_status_error,
    map_transport_errors,
)
from connectors.http.tls import TlsClientAuthError
from relais.errors import (
    PartnerAuthError,
    PartnerError,
    PartnerPermanentError,
    PartnerReplyError,
    PartnerTimeoutError,
    PartnerTransientError,
)

URL = "https://api.partner.example"


def _request_error_classes() -> set[type[httpx.RequestError]]:
    """Every request error class httpx defines (the ones a transport may raise)."""
    found: set[type[httpx.RequestError]] = set()
    pending: list[type[httpx.RequestError]] = [httpx.RequestError]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub.__module__.startswith("httpx") and sub not in found:
                found.add(sub)
                pending.append(sub)
    for name in dir(httpx):
        obj = getattr(httpx, name)
        if isinstance(obj, type) and issubclass(obj, httpx.RequestError):
            found.add(obj)
    found -= {httpx.RequestError, httpx.TransportError}
    return found


def test_every_httpx_request_error_class_has_a_row() -> None:
    classes = _request_error_classes()
    assert httpx.ConnectTimeout in classes and httpx.UnsupportedProtocol in classes
    unmapped = sorted(c.__name__ for c in classes if error_class_for(c) is None)
    assert unmapped == [], f"httpx request errors without a Relais mapping: {unmapped}"


def test_no_row_is_a_base_class_that_would_hide_a_new_httpx_error() -> None:
    covered = {httpx_type for httpx_type, _ in TRANSPORT_ERRORS}
    assert not covered & {httpx.RequestError, httpx.TransportError}

    class FutureTransportError(httpx.TransportError):
        pass

    assert error_class_for(FutureTransportError) is None


@pytest.mark.parametrize(
    ("httpx_error", "expected"),
    [
        (httpx.ConnectTimeout, PartnerTimeoutError),
        (httpx.PoolTimeout, PartnerTimeoutError),
        (httpx.ConnectError, PartnerTransientError),
        (httpx.ReadError, PartnerTransientError),
        (httpx.RemoteProtocolError, PartnerTransientError),
        (httpx.LocalProtocolError, PartnerPermanentError),
        (httpx.UnsupportedProtocol, PartnerPermanentError),
        (httpx.DecodingError, PartnerReplyError),
        (httpx.TooManyRedirects, PartnerReplyError),
        (TlsClientAuthError, PartnerAuthError),
    ],
    ids=lambda c: c.__name__,
)
def test_a_transport_error_leaves_as_its_relais_error(
    httpx_error: type[httpx.RequestError], expected: type[PartnerError]
) -> None:
    request = httpx.Request("GET", URL)
    with pytest.raises(PartnerError) as caught, map_transport_errors("sirene", "get_unite"):
        raise httpx_error("boom", request=request)
    assert type(caught.value) is expected
    assert caught.value.partner == "sirene"
    assert caught.value.retriable is issubclass(expected, PartnerTransientError)
    assert "get_unite" in caught.value.message


def test_an_unmapped_transport_error_is_retriable_and_logged() -> None:
    class FutureTransportError(httpx.TransportError):
        pass

    with (
        capture_logs() as logs,
        pytest.raises(PartnerTransientError),
        map_transport_errors("archive", "transfer"),
    ):
        raise FutureTransportError("new", request=httpx.Request("GET", URL))
    assert [e["event"] for e in logs] == ["partner.unmapped_transport_error"]


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_auth_errors_naming_the_partner_url(status: int) -> None:
    error = http_status_error(status, httpx.Headers(), partner="entreprise",
                              operation="get_attestation", url=URL, text="token expired")
    assert isinstance(error, PartnerAuthError) and error.retriable is False
    assert URL in error.message and "token expired" in error.message
    assert error.status == status


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_are_transient_with_retry_after(status: int) -> None:
    error = http_status_error(status, httpx.Headers({"Retry-After": "120"}), partner="sirene",
                              operation="get_unite", url=URL)
    assert isinstance(error, PartnerTransientError) and error.retriable is True
    assert error.retry_after == 120.0


@pytest.mark.parametrize("status", [500, 502, 504])
def test_other_5xx_are_transient_without_retry_after(status: int) -> None:
    error = http_status_error(status, httpx.Headers(), partner="p", operation="o", url=URL)
    assert isinstance(error, PartnerTransientError) and error.retry_after is None


@pytest.mark.parametrize("status", [400, 404, 409, 410, 422])
def test_other_4xx_are_permanent_and_quote_the_partner(status: int) -> None:
    error = http_status_error(status, httpx.Headers(), partner="sirene", operation="get_unite",
                              url=URL, text="Aucun élément trouvé")
    assert type(error) is PartnerPermanentError and error.retriable is False
    assert "Aucun élément trouvé" in error.message


def test_2xx_is_no_error_and_an_unfollowed_redirect_is_a_reply_error() -> None:
    assert http_status_error(204, httpx.Headers(), partner="p", operation="o", url=URL) is None
    error = http_status_error(302, httpx.Headers({"Location": "/elsewhere"}), partner="p",
                              operation="o", url=URL)
    assert type(error) is PartnerReplyError and "/elsewhere" in error.message


def test_check_response_raises_for_an_error_status_only() -> None:
    request = httpx.Request("GET", URL)
    check_response(httpx.Response(200, request=request), partner="p", operation="o", url=URL)
    with pytest.raises(PartnerAuthError):
        check_response(httpx.Response(401, request=request), partner="p", operation="o",
                       url=URL)
