"""Every partner sandbox ``relais sandbox`` serves: one line per partner.

To add one, give its package a ``SandboxPartner`` (name, title, port offset, factory; see
``docs/sandboxes.md``) and list it here.
"""

from __future__ import annotations

from sandbox.archive.partner import ARCHIVE
from sandbox.common.partner import SandboxPartner
from sandbox.iparapheur.partner import IPARAPHEUR
from sandbox.registries.partner import REGISTRIES
from sandbox.tdt.partner import TDT

SANDBOXES: tuple[SandboxPartner, ...] = (TDT, REGISTRIES, IPARAPHEUR, ARCHIVE)


def by_name(names: str = "") -> tuple[SandboxPartner, ...]:
    """The sandboxes named in a comma-separated list (all when empty); KeyError names the
    unknown ones."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        return SANDBOXES
    known = {p.name: p for p in SANDBOXES}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise KeyError(", ".join(unknown))
    return tuple(known[n] for n in dict.fromkeys(wanted))
