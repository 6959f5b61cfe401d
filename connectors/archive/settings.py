"""A member's archive settings, read from its ``archive`` account's options.

``relais members add … --account archive=https://vitam.example.org
--account-option archive.tenant=1 --account-option archive.archival_agency=Vitam …``

=======================  ===================================================  ============
option                   meaning                                              default
=======================  ===================================================  ============
``tenant``               Vitam tenant (``X-Tenant-Id``), an integer           required
``context_id``           ingest workflow (``X-Context-Id``)                   DEFAULT_WORKFLOW
``access_contract``      ``X-Access-Contract-Id`` for the logbook search      none
``application_id``       ``X-Application-Id`` (Vitam's ``evIdAppSession``)    ``relais``
``seda_version``         ``2.1`` or ``2.2``                                   ``2.1``
``archival_agency``      ``ArchivalAgency/Identifier``                        required
``transferring_agency``  ``TransferringAgency/Identifier``                    ``RELAIS``
``archival_agreement``   ``ArchivalAgreement`` (Vitam: ingest contract id)    none
``archival_profile``     ``ArchivalProfile``                                  none
``access_rule``          default ``AccessRule`` (e.g. ``ACC-00001``)          none
``appraisal_rule``       default ``AppraisalRule`` (e.g. ``APP-00001``)       none
``appraisal_action``     its ``FinalAction``: ``Keep`` or ``Destroy``         ``Keep``
``auto_archive``         ``true``: archive every acknowledged acte            ``false``
``reconcile_grace_s``    seconds an interrupted upload absent from the        ``120``
                         logbook waits before it is sent again
=======================  ===================================================  ============
"""

from __future__ import annotations

from dataclasses import dataclass

from relais.errors import ConfigurationError
from relais.members.model import PartnerAccount
from relais.seda.model import SedaVersion

ARCHIVE = "archive"
"""The partner name of the member's archive account."""


@dataclass(frozen=True)
class ArchiveSettings:
    tenant: int
    archival_agency: str
    context_id: str = "DEFAULT_WORKFLOW"
    access_contract: str | None = None
    application_id: str = "relais"
    seda_version: SedaVersion = SedaVersion.V2_1
    transferring_agency: str = "RELAIS"
    archival_agreement: str | None = None
    archival_profile: str | None = None
    access_rule: str | None = None
    appraisal_rule: str | None = None
    appraisal_action: str = "Keep"
    auto_archive: bool = False
    reconcile_grace_seconds: float = 120.0

    @classmethod
    def from_account(cls, account: PartnerAccount, member: str) -> ArchiveSettings:
        """The settings, or :class:`ConfigurationError` naming the option at fault."""
        options = account.options
        who = f"member {member}, archive account"
        tenant = options.get("tenant", "")
        if not tenant.isdigit():
            raise ConfigurationError(f"{who}: option tenant={tenant!r} is not a Vitam tenant "
                                     "number")
        agency = options.get("archival_agency", "").strip()
        if not agency:
            raise ConfigurationError(f"{who}: option archival_agency is required")
        version = options.get("seda_version", "2.1")
        if version not in {v.value for v in SedaVersion}:
            raise ConfigurationError(f"{who}: option seda_version={version!r} is not 2.1 or 2.2")
        action = options.get("appraisal_action", "Keep")
        if action not in ("Keep", "Destroy"):
            raise ConfigurationError(f"{who}: option appraisal_action={action!r} is not "
                                     "Keep or Destroy")
        grace = options.get("reconcile_grace_s", "120")
        try:
            grace_seconds = float(grace)
        except ValueError:
            grace_seconds = -1.0
        if not 0 <= grace_seconds <= 86_400:
            raise ConfigurationError(f"{who}: option reconcile_grace_s={grace!r} is not a "
                                     "number of seconds in [0, 86400]")
        return cls(
            reconcile_grace_seconds=grace_seconds,
            tenant=int(tenant),
            archival_agency=agency,
            context_id=options.get("context_id", "DEFAULT_WORKFLOW"),
            access_contract=options.get("access_contract") or None,
            application_id=options.get("application_id", "relais"),
            seda_version=SedaVersion(version),
            transferring_agency=options.get("transferring_agency", "RELAIS"),
            archival_agreement=options.get("archival_agreement") or None,
            archival_profile=options.get("archival_profile") or None,
            access_rule=options.get("access_rule") or None,
            appraisal_rule=options.get("appraisal_rule") or None,
            appraisal_action=action,
            auto_archive=options.get("auto_archive", "false").lower() in ("true", "1", "yes"),
        )
