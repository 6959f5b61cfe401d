"""The TdT connector's Hélios calls: PES_Aller import, status, PES_ACQUIT, PES_Retour.

Written from S²LOW's Hélios module (libriciel/s2low ``public.ssl/modules/helios/``:
``api/helios_importer_fichier.php`` → ``HeliosController::importAPIAction``,
``api/helios_transac_get_status.php`` with ``HeliosAPIResponse``,
``helios_download_acquit.php``, ``helios_download_file.php``,
``api/helios_get_list.php`` → ``HeliosController::getPESRetourListAction``,
``api/helios_get_retour.php``, ``api/helios_change_status.php``,
``src/Enum/HeliosStatus.php``) and from Pastell's client
(libriciel/pastell ``connecteur/s2low/S2low.php``: ``sendHelios``,
``getStatusHelios``, ``getFichierRetour``, ``getPESRetourListe``, ``getPESRetour``).

:class:`HeliosConnector` *is* an :class:`~connectors.tdt.s2low.S2lowConnector` (same
client, certificates, caps, the one ``_exchange`` seam and the same error translation),
with the Hélios calls added. Answers, as S²LOW writes them:

- import: ``POST`` multipart, file field ``enveloppe`` (name sanitised as Pastell does),
  optional ``must_signed``; answer ``import.xml``
  ``<import><id>N</id><resultat>OK|KO</resultat><message>…</message></import>``
  (UTF-8; the message went through ``utf8_encode`` twice, so accents arrive
  double-encoded and are repaired here). Refused at once (KO): same content (SHA-1)
  already posted on any transaction ("doublon détecté…"), size over the platform's
  limit, upload failure. Authentication failures answer plain ``KO\\n<text>``.
- status: ``GET ?transaction=N``; ``<transaction><id/><resultat/><message/><status/>``,
  declared ISO-8859-1 (texts are UTF-8 from the database: repaired here too).
- acquit: ``GET helios_download_acquit.php?id=N``: the PES_ACQUIT bytes, or a redirect
  to the module's index page when there is none (a login page when the account is
  refused).
- PES_Retour: ``helios_get_list.php`` lists the unread ones
  (``<liste><idColl/><resultat/><message/><dateDemande/><pes_retour><id/><nom/><date/>``;
  ``resultat`` stays empty on success), ``helios_get_retour.php?id=N`` answers the file
  or ``<get_retour>…<resultat>KO</resultat>``, ``helios_change_status.php?id=N`` marks it
  read (``<transaction><idRetour/><resultat>OK</resultat>…``).

Exactly once: S²LOW refuses a second import of the same bytes (SHA-1 of the content,
any transaction), so re-posting after an ambiguous failure never creates a second
transaction. Its Hélios API has no listing of PES_Aller, so :meth:`HeliosConnector.find_pes`
finds the id of a file already imported by walking the transaction ids after the last
one this account knew, reading each one's status (another authority's transaction is
refused, an id not yet used is invalid) and comparing the downloaded PES_Aller's bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import httpx
import structlog
from lxml import etree

from connectors.http.client import PartnerTimeouts
from connectors.http.registry import PartnerConnectors
from connectors.tdt.client import LABEL
from connectors.tdt.errors import is_auth_text, is_ko, refusal, reply_error, status_error
from connectors.tdt.models import UploadFile
from connectors.tdt.multipart import MultipartBody
from connectors.tdt.s2low import S2lowConnector, _Answer
from relais.errors import PartnerAuthError, PartnerRefusedError, Reason
from relais.members.model import TDT, Member, PartnerAccount
from relais.pes.summary import pes_root_name

log = structlog.get_logger(__name__)

HELIOS = "/modules/helios"
PATH_IMPORT = f"{HELIOS}/api/helios_importer_fichier.php"
PATH_STATUS = f"{HELIOS}/api/helios_transac_get_status.php"
PATH_ACQUIT = f"{HELIOS}/helios_download_acquit.php"
PATH_DOWNLOAD_PES = f"{HELIOS}/helios_download_file.php"
PATH_RETOUR_LIST = f"{HELIOS}/api/helios_get_list.php"
PATH_RETOUR_GET = f"{HELIOS}/api/helios_get_retour.php"
PATH_RETOUR_MARK_READ = f"{HELIOS}/api/helios_change_status.php"

WALK_MEMORY = 20_000
"""How many transaction ids :meth:`HeliosConnector.find_pes` remembers (about 60 bytes each)."""

DUPLICATE_CODE = "tdt_duplicate"
"""Reason code of an import S²LOW refused because the same bytes were already posted."""
_DUPLICATE_TEXT = re.compile(r"doublon", re.IGNORECASE)
_INVALID_ID_TEXT = re.compile(r"transaction invalide|pas de num", re.IGNORECASE)
_FAILED_LOGIN_TEXT = re.compile(r"authentification|certificat", re.IGNORECASE)
_MOJIBAKE = re.compile("[ÃÂ][\x80-\xbf]")


class HeliosStatus(IntEnum):
    """S²LOW's Hélios transaction states (``src/Enum/HeliosStatus.php``)."""

    ERROR = -1
    CANCELLED = 0
    POSTED = 1
    WAITING = 2
    TRANSMITTED = 3
    ACKNOWLEDGED = 4
    VALIDATED = 5
    REFUSED = 6
    PROCESSING = 7
    INFORMATION_AVAILABLE = 8
    SENT_TO_SAE = 9
    ACCEPTED_BY_SAE = 10
    REFUSED_BY_SAE = 11
    WAITING_SIGNATURE = 13
    WAITING_POST = 14
    WAITING_SAE = 19
    SAE_SENDING_ERROR = 20
    DESTROYED = 22
    TRANSMITTED_WITHOUT_ACK = 24


ACQUIT_STATES = frozenset(
    {HeliosStatus.ACKNOWLEDGED, HeliosStatus.REFUSED, HeliosStatus.INFORMATION_AVAILABLE}
)
"""States in which a PES_ACQUIT was received (``ApiHeliosStatusResolver``): S²LOW sets 8
for every PES_ACQUIT, rejected elements or not; the API answers 3 instead while the
acquit file cannot be found."""


@dataclass(frozen=True)
class PesImportResult:
    transaction_id: str
    message: str
    http_status: int
    raw: bytes


@dataclass(frozen=True)
class PesStatusResult:
    transaction_id: str
    status: int
    message: str
    raw: bytes

    @property
    def acquit_available(self) -> bool:
        return self.status in ACQUIT_STATES


@dataclass(frozen=True)
class PesRetourRef:
    """One unread PES_Retour as ``helios_get_list.php`` lists it."""

    retour_id: str
    name: str
    date: str


def repair_text(text: str) -> str:
    """Undo UTF-8 read as ISO-8859-1 (``dÃ©tectÃ©`` → ``détecté``), repeatedly, when it is."""
    for _ in range(2):
        if not _MOJIBAKE.search(text):
            break
        try:
            text = text.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            break
    return text


def _xml(body: bytes) -> etree._Element | None:
    """A small S²LOW XML answer, parsed without DTD/entities/network; None if not XML."""
    if b"<!DOCTYPE" in body[:4096].upper():
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        return etree.fromstring(body.lstrip(), parser)
    except etree.XMLSyntaxError:
        return None


def _field(root: etree._Element, name: str) -> str:
    found = root.find(name)
    if found is None:
        return ""
    return repair_text("".join(str(t) for t in found.itertext()).strip())


class HeliosConnector(S2lowConnector):
    """The S²LOW calls of one TdT account, Hélios included (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: What :meth:`find_pes` learnt of each id it walked: the SHA-1 of the account's
        #: PES_Aller there, or None (another authority's). Both never change, so a walk
        #: cut by a transient error resumes where it stopped instead of starting over.
        self._walked: OrderedDict[int, bytes | None] = OrderedDict()

    def _remember(self, transaction_id: int, sha1: bytes | None) -> None:
        self._walked[transaction_id] = sha1
        self._walked.move_to_end(transaction_id)
        while len(self._walked) > WALK_MEMORY:
            self._walked.popitem(last=False)

    def _xml_refusal(self, message: str, operation: str, status: int, field: str) -> Exception:
        if is_auth_text(message):
            return PartnerAuthError(
                f"{operation}: the TdT at {self.base_url} refused this account: {message}",
                partner=self.partner, status=status,
            )
        code = DUPLICATE_CODE if _DUPLICATE_TEXT.search(message) else "tdt_refused"
        text = message or "KO without a message"
        return PartnerRefusedError(
            text, partner=self.partner, status=status, reasons=[Reason(field, code, text)]
        )

    def _answer_xml(self, answer: _Answer, operation: str, root_name: str) -> etree._Element:
        if is_ko(answer.body):
            raise self._refusal(answer, operation, "pes")
        root = _xml(answer.body)
        if root is None or root.tag != root_name:
            raise reply_error(self.partner, operation, f"expected <{root_name}>", answer.body)
        return root

    async def import_pes(
        self, content: bytes, filename: str, *, must_signed: bool = False
    ) -> PesImportResult:
        """Post a PES_Aller (``helios_importer_fichier.php``); the new transaction's id.

        Not idempotent, but S²LOW refuses the same bytes twice: after a transient failure,
        post the same bytes again; a refusal whose reason code is :data:`DUPLICATE_CODE`
        means the first post was recorded: find its id with :meth:`find_pes`.
        """
        operation = "import_pes"
        fields = [("must_signed", b"1")] if must_signed else []
        body = MultipartBody(
            fields, [("enveloppe", UploadFile(filename, content, "text/xml", len(content)))]
        )
        answer = await self._call(operation, "POST", PATH_IMPORT, cap=self.caps.text, body=body)
        root = self._answer_xml(answer, operation, "import")
        message = _field(root, "message")
        if _field(root, "resultat") != "OK":
            raise self._xml_refusal(message, operation, answer.status, "enveloppe")
        transaction_id = _field(root, "id")
        if not transaction_id.isdigit():
            raise reply_error(self.partner, operation, "OK without a transaction id", answer.body)
        log.info("tdt.pes_imported", partner=self.partner, transaction_id=transaction_id)
        return PesImportResult(transaction_id, message, answer.status, answer.body)

    async def get_pes_status(self, transaction_id: str) -> PesStatusResult:
        """A PES transaction's state (:class:`HeliosStatus` value) and S²LOW's message. A read."""
        operation = "get_pes_status"
        answer = await self._call(
            operation, "GET", PATH_STATUS, cap=self.caps.status,
            params={"transaction": transaction_id}, attempts=self._redirect_read_attempts,
        )
        root = self._answer_xml(answer, operation, "transaction")
        message = _field(root, "message")
        if _field(root, "resultat") != "OK":
            raise self._xml_refusal(message, operation, answer.status, "transaction")
        status = _field(root, "status")
        if not re.fullmatch(r"-?\d+", status):
            raise reply_error(self.partner, operation, "OK without a status", answer.body)
        return PesStatusResult(transaction_id, int(status), message, answer.body)

    async def _file(self, operation: str, path: str, transaction_id: str) -> _Answer:
        """A download answered with the file, or a redirect when S²LOW has none for us."""
        answer = await self._retrying(
            self._redirect_read_attempts,
            lambda: self._hop(
                operation, "GET", self._base_url + path, cap=self.caps.document,
                params={"id": transaction_id}, redirect_ok=True,
            ),
        )
        if 300 <= answer.status < 400:
            error = status_error(
                answer.status, answer.headers, answer.body, partner=self.partner,
                operation=operation, url=self._base_url,
            )
            if isinstance(error, PartnerAuthError):
                raise error
            where = answer.headers.get("Location", "")
            text = f"the TdT has no file for transaction {transaction_id} (redirect to {where})"
            raise PartnerRefusedError(
                text, partner=self.partner, status=answer.status,
                reasons=[Reason("transaction", "tdt_refused", text)],
            )
        return answer

    async def get_acquit(self, transaction_id: str) -> bytes:
        """The PES_ACQUIT of a transaction, byte for byte (``helios_download_acquit.php``)."""
        operation = "get_acquit"
        answer = await self._file(operation, PATH_ACQUIT, transaction_id)
        if pes_root_name(answer.body[:4096]) != "PES_ACQUIT":
            raise reply_error(self.partner, operation, "not a PES_ACQUIT", answer.body)
        return answer.body

    async def get_pes_aller(self, transaction_id: str) -> bytes:
        """The PES_Aller S²LOW holds for a transaction (``helios_download_file.php``)."""
        return (await self._file("get_pes_aller", PATH_DOWNLOAD_PES, transaction_id)).body

    async def list_pes_retour(self) -> list[PesRetourRef]:
        """The account's unread PES_Retour (``api/helios_get_list.php``). A read."""
        operation = "list_pes_retour"
        answer = await self._call(
            operation, "GET", PATH_RETOUR_LIST, cap=self.caps.listing,
            attempts=self._redirect_read_attempts,
        )
        root = self._answer_xml(answer, operation, "liste")
        if _field(root, "resultat") == "KO":
            raise self._xml_refusal(_field(root, "message"), operation, answer.status, "liste")
        return [
            PesRetourRef(_field(row, "id"), _field(row, "nom"), _field(row, "date"))
            for row in root.findall("pes_retour")
        ]

    async def get_pes_retour(self, retour_id: str) -> bytes:
        """One PES_Retour file, byte for byte (``api/helios_get_retour.php``). A read."""
        operation = "get_pes_retour"
        answer = await self._call(
            operation, "GET", PATH_RETOUR_GET, cap=self.caps.document,
            params={"id": retour_id}, attempts=self._redirect_read_attempts,
        )
        if is_ko(answer.body):
            raise refusal(answer.body, partner=self.partner, operation=operation,
                          status=answer.status, url=self._base_url, field="pes_retour")
        root = _xml(answer.body[:8192]) if len(answer.body) <= 8192 else None
        if root is not None and root.tag == "get_retour":
            raise self._xml_refusal(_field(root, "message"), operation, answer.status, "pes_retour")
        if not answer.body.lstrip().startswith(b"<"):
            raise reply_error(self.partner, operation, "not an XML file", answer.body)
        return answer.body

    async def mark_pes_retour_read(self, retour_id: str) -> None:
        """Mark a PES_Retour read (``api/helios_change_status.php``). Idempotent."""
        operation = "mark_pes_retour_read"
        answer = await self._call(
            operation, "GET", PATH_RETOUR_MARK_READ, cap=self.caps.text, params={"id": retour_id},
            attempts=self._redirect_read_attempts,
        )
        root = self._answer_xml(answer, operation, "transaction")
        if _field(root, "resultat") != "OK":
            raise self._xml_refusal(_field(root, "message"), operation, answer.status,
                                    "pes_retour")

    async def find_pes(self, content: bytes, *, after_id: int, window: int = 50) -> str | None:
        """The id of the transaction holding exactly ``content``, or None.

        Walks ids ``after_id + 1`` … ``after_id + window`` (the last id this account knew
        before the ambiguous import, kept by the caller's delivery journal). An id whose
        status is invalid is not used yet (the walk ends); one refused with "Accès refusé"
        belongs to another authority (skipped; a failed authentication raises); for each
        of ours, the PES_Aller S²LOW holds is downloaded and compared by SHA-1, as S²LOW
        itself compares. Reads only. What each id held is remembered (bounded,
        :data:`WALK_MEMORY` ids), so a walk cut by a transient error resumes where it
        stopped on the next try: under a flaky TdT a long walk still completes.
        """
        wanted = hashlib.sha1(content, usedforsecurity=False).digest()
        for candidate in range(after_id + 1, after_id + window + 1):
            if candidate in self._walked:
                held_sha1 = self._walked[candidate]
            else:
                try:
                    await self.get_pes_status(str(candidate))
                except PartnerAuthError as exc:
                    if _FAILED_LOGIN_TEXT.search(exc.message):
                        raise
                    self._remember(candidate, None)
                    continue
                except PartnerRefusedError as exc:
                    if _INVALID_ID_TEXT.search(exc.message):
                        return None
                    self._remember(candidate, None)
                    continue
                held = await self.get_pes_aller(str(candidate))
                held_sha1 = hashlib.sha1(held, usedforsecurity=False).digest()
                self._remember(candidate, held_sha1)
            if held_sha1 == wanted:
                log.info("tdt.pes_found", partner=self.partner, transaction_id=candidate)
                return str(candidate)
        return None


def helios_connector(
    client: httpx.AsyncClient, account: PartnerAccount, member: Member
) -> HeliosConnector:
    """The Hélios connector of a member's TdT account, on the account's client."""
    return HeliosConnector(client, base_url=account.url, partner=TDT)


class HeliosConnectors(PartnerConnectors[HeliosConnector]):
    """The Hélios connectors of the members' ``tdt`` accounts (same certificates, passwords
    and clients as :class:`connectors.tdt.registry.TdtConnectors`, one per account)."""

    def __init__(
        self,
        *,
        timeout: float | PartnerTimeouts = 30.0,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        timeouts = timeout if isinstance(timeout, PartnerTimeouts) else PartnerTimeouts.uniform(
            timeout
        )
        super().__init__(TDT, helios_connector, label=LABEL, timeouts=timeouts, environ=environ,
                         transport=transport)
