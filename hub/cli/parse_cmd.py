"""``relais parse FILE``: what an ACTES message says, as a JSON-able summary.

The file is streamed from disk with the bounds of
:class:`relais.actes.xml_parse.ParseLimits` (size, tags, tag length, kept
elements, text), so a huge or hostile file ends with a clear message instead of
exhausting memory. The command also caps its own heap (:func:`cap_process_memory`)
so that no input, even one the bounds did not foresee, takes it past 300 MB.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

from relais.actes.codes import MESSAGE_TYPE_BY_CODE, direction_of
from relais.actes.xml_parse import ParseLimits, parse_message_file
from relais.pes.summary import pes_root_name, summarise_pes_file
from relais.pes.xml_safe import PesLimits
from relais.seda.summary import is_seda, summarise_seda_file

#: Heap the ``relais parse`` process may use (RLIMIT_DATA): with the interpreter's code
#: and libraries, its resident memory stays under 300 MB.
PARSE_MEMORY_BYTES = 256 * 1024 * 1024
#: A PES file is parsed whole (its signatures need the tree), about 270 bytes of heap per
#: tag: under the heap cap above, ``relais parse`` reads PES files up to 64 MiB and
#: 500,000 tags (measured: 536,000 tags → 202 MB resident; 54 MB of PJ → 165 MB).
PES_PARSE_LIMITS = PesLimits(max_bytes=64 * 1024 * 1024, max_elements=500_000)


def cap_process_memory(max_bytes: int = PARSE_MEMORY_BYTES) -> None:
    """Lower this process's data-segment limit to ``max_bytes`` (never raise it).

    For the ``relais parse`` command only: a library call must not change its
    caller's limits. An allocation past the limit fails (the parse ends with an
    error) instead of growing the process.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if soft == resource.RLIM_INFINITY or soft > max_bytes:
        cap = max_bytes if hard == resource.RLIM_INFINITY else min(max_bytes, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))


def parse_file(path: Path, limits: ParseLimits | None = None) -> dict[str, Any]:
    """Read ``path`` leniently and summarise it.

    A PES_Aller or PES_ACQUIT (Hélios) is recognised by its root element and summarised
    by :func:`relais.pes.summary.summarise_pes_file` (keys ``file``, ``size``, ``root``,
    ``fields``, counts and signatures, or ``outcome`` and ``elements``); it raises
    ``ValidationError`` when unreadable or past :data:`PES_PARSE_LIMITS`.

    Keys: ``file``, ``type_code`` (``1-2``, ``enveloppe-cl``…), ``root``,
    ``direction`` (``collectivite`` / ``prefecture``), ``meaning``, ``id_acte``
    (or ``None``), ``fields`` (see ``relais.actes.xml_parse``), ``size`` and
    ``truncated`` (a limit dropped elements or cut texts). Raises
    ``PartnerReplyError`` when the file is not an ACTES message,
    ``PartnerReplyTooLargeError`` (its message says which limit) when it is
    past a limit, and ``OSError`` when it cannot be read.
    """
    with path.open("rb") as handle:
        head = handle.read(4096)
    if pes_root_name(head) is not None:
        return summarise_pes_file(path, PES_PARSE_LIMITS)
    if is_seda(head):  # ArchiveTransfer, ArchiveTransferReply, Acknowledgement (1.0, 2.x)
        return summarise_seda_file(path)
    size = path.stat().st_size
    message = parse_message_file(path, limits)
    message_type = MESSAGE_TYPE_BY_CODE.get(message.type_code)
    direction = direction_of(message.type_code)
    return {
        "file": str(path),
        "size": size,
        "type_code": message.type_code,
        "root": message.root,
        "direction": direction.value if direction else None,
        "meaning": message_type.meaning if message_type else "envelope",
        "id_acte": message.id_acte,
        "fields": {
            key: list(value) if isinstance(value, list) else value
            for key, value in message.fields.items()
        },
        "truncated": message.truncated,
    }
