"""A member's i-Parapheur settings for one flow type (technical type, sub-type, visibility,
deadline, how PES are signed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.iparapheur.models import Visibility
from relais.errors import ConfigurationError
from relais.members.model import Member

XPATH_CHOICES = ("//Bordereau", ".")
"""Where a PES is signed: every bordereau (each with an ``Id``), or the whole
``PES_Aller`` (Pastell's ``XPathPourSignatureXML`` choices 2 and 3)."""


@dataclass(frozen=True)
class SignatureSettings:
    """How one member's flows of one type go through its i-Parapheur."""

    technical_type: str
    sub_type: str
    visibility: Visibility = Visibility.SERVICE
    deadline_days: int | None = 15
    xpath_for_xml_signature: str = "//Bordereau"
    archive_action: str = "EFFACER"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, member: str) -> SignatureSettings:
        """From a member's settings (``type``, ``sub_type``, optional ``visibility``,
        ``deadline_days``, ``xpath``, ``archive_action``); ConfigurationError otherwise."""
        try:
            settings = cls(
                technical_type=str(data["type"]),
                sub_type=str(data["sub_type"]),
                visibility=Visibility(data.get("visibility", "SERVICE")),
                deadline_days=(None if data.get("deadline_days") is None
                               else int(data["deadline_days"])),
                xpath_for_xml_signature=str(data.get("xpath", "//Bordereau")),
                archive_action=str(data.get("archive_action", "EFFACER")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"member {member}: invalid i-Parapheur settings ({exc})"
            ) from exc
        if settings.xpath_for_xml_signature not in XPATH_CHOICES:
            raise ConfigurationError(
                f"member {member}: i-Parapheur xpath must be one of {XPATH_CHOICES}"
            )
        if settings.archive_action not in ("EFFACER", "ARCHIVER"):
            raise ConfigurationError(
                f"member {member}: archive_action must be EFFACER or ARCHIVER"
            )
        return settings


PARTNER = "iparapheur"
"""The partner name of a member's i-Parapheur account (``Member.accounts``)."""


def member_settings(member: Member, flow_type: str) -> SignatureSettings | None:
    """The member's settings for ``flow_type``, or None when its flows of that type are not
    signed (no ``iparapheur`` account, or no ``<flow_type>.type`` option in it).

    The account's options are prefixed by the flow type: ``acte.type``, ``acte.sub_type``,
    ``acte.visibility``, ``acte.deadline_days``, ``acte.archive_action`` (``pes.…`` for
    PES, with ``pes.xpath``). The circuit is the one i-Parapheur attaches to the type and
    sub-type. ConfigurationError when the options are invalid."""
    account = member.account(PARTNER)
    if account is None:
        return None
    prefix = f"{flow_type}."
    options = {key[len(prefix):]: value for key, value in account.options.items()
               if key.startswith(prefix)}
    if "type" not in options:
        return None
    return SignatureSettings.from_mapping(options, member=member.siren)
