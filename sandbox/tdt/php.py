"""How S²LOW's PHP pages shape their answers, reproduced byte for byte.

S²LOW (libriciel/s2low) has three answer styles, and each endpoint uses one:

- ``Helpers::returnAndExit`` / ``ResponseHelper::returnAndExit`` (``class/Helpers.php``,
  ``class/Helpers/ResponseHelper.php``): when ``api`` is ``1`` (read from POST, then from
  GET), ``OK\\n`` or ``KO\\n``, then either the API message (the created id followed by
  ``\\n``) or the human message passed through ``htmlspecialchars(…, ENT_QUOTES)``, both
  converted to ISO-8859-1, and a final ``\\n``; HTTP 200 either way. Without ``api``, a 302
  to an HTML page.
- Bare ``echo "KO\\n…"`` (``actes_transac_get_status.php``, ``actes_transac_get_tampon.php``,
  ``actes_transac_get_document.php``): the message as written in the UTF-8 PHP source, no
  final newline, no escaping.
- ``json_encode`` (``controller/ActesAPIController.php``): PHP's defaults, i.e. no spaces,
  ``\\/`` for ``/`` and ``\\uXXXX`` for every non-ASCII character.

No page sets a content type unless said otherwise, so PHP's default ``text/html;
charset=UTF-8`` goes out, whatever the bytes' real encoding.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.responses import Response

PHP_DEFAULT_TYPE = "text/html; charset=UTF-8"
_NUMERIC_RE = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


def hecho(text: str) -> str:
    """``htmlspecialchars($text, ENT_QUOTES)`` as S²LOW's ``get_hecho`` calls it."""
    return (
        text.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("'", "&#039;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def latin1(text: str) -> bytes:
    """``mb_convert_encoding($text, 'ISO-8859-1')``: unmappable characters become ``?``."""
    return text.encode("iso-8859-1", errors="replace")


def is_numeric(value: str | None) -> bool:
    """PHP's ``is_numeric`` for strings (leading and trailing blanks allowed)."""
    return value is not None and _NUMERIC_RE.fullmatch(value) is not None


def is_one(value: str | None) -> bool:
    """PHP's loose ``$value == "1"``: numeric strings compare as numbers."""
    if value is None:
        return False
    if is_numeric(value):
        return float(value) == 1.0
    return value == "1"


def php_empty(value: str | None) -> bool:
    """PHP's ``empty()`` on a request value: absent, ``""`` or ``"0"``."""
    return value is None or value in ("", "0")


def intval(value: str | None) -> int:
    """PHP's ``intval`` on a request string: the leading integer, 0 when there is none."""
    if value is None:
        return 0
    match = re.match(r"\s*([+-]?[0-9]+)", value)
    return int(match[1]) if match else 0


def api_requested(post_api: str | None, get_api: str | None) -> bool:
    """``returnAndExit``'s test: ``api`` from POST, else from GET, equal to 1."""
    value = get_api if php_empty(post_api) else post_api
    return is_one(value)


def return_and_exit(
    *,
    ok: bool,
    message: str,
    api: bool,
    redirect: str | None = None,
    api_message: str | None = None,
) -> Response:
    """The answer of ``Helpers::returnAndExit($status, $msg, $redirect, $apiMsg)``."""
    if api:
        body = b"OK\n" if ok else b"KO\n"
        if api_message:
            body += latin1(api_message) + b"\n"
        elif message:
            body += latin1(hecho(message)) + b"\n"
        return Response(body, media_type=PHP_DEFAULT_TYPE)
    if redirect:
        return Response(b"", status_code=302, headers={"Location": redirect})
    return Response(message.encode() + b"\n", media_type=PHP_DEFAULT_TYPE)


def echo(text: str, *, media_type: str = PHP_DEFAULT_TYPE) -> Response:
    """A bare ``echo`` of text written in S²LOW's UTF-8 sources."""
    return Response(text.encode(), media_type=media_type)


def redirect(location: str) -> Response:
    """``header("Location: …")`` without a status: PHP answers 302."""
    return Response(b"", status_code=302, headers={"Location": location})


def php_json(value: Any) -> bytes:
    """``json_encode($value)`` with PHP's default flags."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


def json_response(value: Any) -> Response:
    return Response(php_json(value), media_type=PHP_DEFAULT_TYPE)
