"""``relais parse FILE``: what an ACTES message says, as a JSON-able summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from relais.actes.codes import MESSAGE_TYPE_BY_CODE, direction_of
from relais.actes.xml_parse import parse_message


def parse_file(path: Path) -> dict[str, Any]:
    """Read ``path`` leniently and summarise it.

    Keys: ``file``, ``type_code`` (``1-2``, ``enveloppe-cl``…), ``root``,
    ``direction`` (``collectivite`` / ``prefecture``), ``meaning``, ``id_acte``
    (or ``None``), ``fields`` (see ``relais.actes.xml_parse``) and ``size``.
    Raises ``PartnerReplyError`` when the file is not an ACTES message and
    ``OSError`` when it cannot be read.
    """
    raw = path.read_bytes()
    message = parse_message(raw)
    message_type = MESSAGE_TYPE_BY_CODE.get(message.type_code)
    direction = direction_of(message.type_code)
    return {
        "file": str(path),
        "size": len(raw),
        "type_code": message.type_code,
        "root": message.root,
        "direction": direction.value if direction else None,
        "meaning": message_type.meaning if message_type else "envelope",
        "id_acte": message.id_acte,
        "fields": {
            key: list(value) if isinstance(value, list) else value
            for key, value in message.fields.items()
        },
    }
