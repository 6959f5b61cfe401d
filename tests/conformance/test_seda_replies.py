"""The reply reader on the real 2.1 sample and on replies shaped as Vitam and As@lae write
them (Vitam: TransferNotificationActionHandler's ATR; As@lae: SEDA 1.0 numeric codes)."""

from __future__ import annotations

import pytest

from relais.errors import PartnerReplyError, PartnerReplyTooLargeError
from relais.seda.reply import read_reply
from tests.conformance.seda_helpers import SEDA_REFERENCE

NS21 = "fr:gouv:culture:archivesdefrance:seda:v2.1"

VITAM_OK = f"""<?xml version="1.0" ?><ArchiveTransferReply xmlns="{NS21}">
<Date>2026-12-04T10:00:00.000+01:00</Date>
<MessageIdentifier>aeeaaaaaaghduohdabkmgalnd4ckbxyaaaaq</MessageIdentifier>
<ArchivalAgreement>IC-000001</ArchivalAgreement>
<CodeListVersions><ReplyCodeListVersion></ReplyCodeListVersion></CodeListVersions>
<DataObjectPackage><DescriptiveMetadata/><ManagementMetadata><ReplyOutcome>
<ArchiveUnitList><ArchiveUnit id="AU1"><SystemId>aeaqaaaaaahduohdabkmgalnd4ckcaaaaaba</SystemId>
</ArchiveUnit></ArchiveUnitList>
<DataObjectList><BinaryDataObject id="ID1">
<DataObjectSystemId>aeaaaaaaaahduohdabkmgalnd4ckb4aaaaaq</DataObjectSystemId>
<DataObjectGroupId>aebaaaaaaahduohdabkmgalnd4ckb4iaaaaq</DataObjectGroupId>
<DataObjectVersion>BinaryMaster_1</DataObjectVersion></BinaryDataObject></DataObjectList>
</ReplyOutcome></ManagementMetadata></DataObjectPackage>
<ReplyCode>OK</ReplyCode><MessageRequestIdentifier>212102313-0001</MessageRequestIdentifier>
<GrantDate>2026-12-04T10:00:01.000+01:00</GrantDate>
<ArchivalAgency><Identifier>Vitam</Identifier></ArchivalAgency>
<TransferringAgency><Identifier>RELAIS</Identifier></TransferringAgency>
</ArchiveTransferReply>""".encode()

VITAM_EARLY_KO = f"""<ArchiveTransferReply xmlns="{NS21}"><Date>2026-12-04T10:00:00</Date>
<MessageIdentifier>aeeaaaaaaghduohdabkmgalnd4ckbxyaaaaq</MessageIdentifier>
<CodeListVersions/><Operation><Event><EventTypeCode>CHECK_DIGEST</EventTypeCode>
<EventType>Vérification de l'empreinte</EventType><EventDateTime>2026-12-04T10:00:00</EventDateTime>
<Outcome>KO</Outcome><OutcomeDetail>CHECK_DIGEST.KO</OutcomeDetail>
<OutcomeDetailMessage>Échec de la vérification de l'empreinte</OutcomeDetailMessage></Event>
<Event><EventTypeCode>CHECK_SEDA</EventTypeCode><Outcome>OK</Outcome></Event></Operation>
<ReplyCode>KO</ReplyCode><MessageRequestIdentifier></MessageRequestIdentifier>
<ArchivalAgency><Identifier/></ArchivalAgency><TransferringAgency><Identifier/></TransferringAgency>
</ArchiveTransferReply>""".encode()


def _asalae(code: str) -> bytes:
    return f"""<ArchiveTransferReply xmlns="fr:gouv:culture:archivesdefrance:seda:v1.0">
<Date>2026-12-04T10:00:00</Date><ReplyCode listVersionID="edition 2009">{code}</ReplyCode>
<TransferIdentifier>212102313-0001</TransferIdentifier>
<TransferReplyIdentifier>ATR-1</TransferReplyIdentifier>
<Archive><ArchivalAgencyArchiveIdentifier>ARCH-42</ArchivalAgencyArchiveIdentifier></Archive>
</ArchiveTransferReply>""".encode()


def test_the_real_21_transfer_parses() -> None:
    data = (SEDA_REFERENCE / "samples" / "seda2_1ArchiveTransfer.xml").read_bytes()
    message = read_reply(data)
    assert (message.root, message.version) == ("ArchiveTransfer", "2.1")
    assert message.message_identifier == "SIP SEDA de test"
    assert message.raw == data
    assert not message.accepted


def test_a_vitam_ok_reply_names_the_archive_ids_of_units_and_objects() -> None:
    reply = read_reply(VITAM_OK)
    assert reply.accepted
    assert reply.message_request_identifier == "212102313-0001"
    assert reply.unit_ids == {"AU1": "aeaqaaaaaahduohdabkmgalnd4ckcaaaaaba"}
    assert reply.object_ids == {"ID1": "aeaaaaaaaahduohdabkmgalnd4ckb4aaaaaq"}


def test_an_early_ko_has_no_request_identifier_and_names_the_failed_check() -> None:
    reply = read_reply(VITAM_EARLY_KO)
    assert not reply.accepted
    assert reply.message_request_identifier is None
    assert [e.type_code for e in reply.failed_events()] == ["CHECK_DIGEST"]
    assert reply.reasons() == ["CHECK_DIGEST: KO (Échec de la vérification de l'empreinte)"]


@pytest.mark.parametrize(("code", "accepted"), [("OK", True), ("WARNING", True), ("KO", False),
                                                ("FATAL", False), ("STARTED_WARNING", True)])
def test_2x_reply_codes(code: str, accepted: bool) -> None:
    assert read_reply(VITAM_OK.replace(b">OK<", f">{code}<".encode())).accepted is accepted


@pytest.mark.parametrize(("code", "accepted"), [("000", True), ("001", True), ("207", False),
                                                ("300", False)])
def test_seda_10_numeric_codes(code: str, accepted: bool) -> None:
    reply = read_reply(_asalae(code))
    assert reply.version == "1.0"
    assert reply.accepted is accepted
    assert reply.message_request_identifier == "212102313-0001"
    assert reply.archive_identifiers == ("ARCH-42",)


def test_an_acknowledgement_is_read_but_is_no_acceptance() -> None:
    ack = read_reply(f"""<Acknowledgement xmlns="{NS21}"><Date>2026-12-04T10:00:00</Date>
<MessageIdentifier>ACK-1</MessageIdentifier><MessageReceivedIdentifier>212102313-0001
</MessageReceivedIdentifier><Sender><Identifier>V</Identifier></Sender>
<Receiver><Identifier>R</Identifier></Receiver></Acknowledgement>""".encode())
    assert ack.root == "Acknowledgement"
    assert ack.message_request_identifier == "212102313-0001"
    assert not ack.accepted


def test_hostile_replies() -> None:
    with pytest.raises(PartnerReplyTooLargeError):
        read_reply(VITAM_OK, cap=100)
    with pytest.raises(PartnerReplyError):
        read_reply(b"<html>KO</html>")
    bomb = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx">]>'
            b'<ArchiveTransferReply xmlns="' + NS21.encode() + b'"><ReplyCode>&x;</ReplyCode>'
            b"</ArchiveTransferReply>")
    assert read_reply(bomb).reply_code in ("", None)


def test_relais_parse_reads_seda_messages(tmp_path: object) -> None:
    from pathlib import Path

    from hub.cli.parse_cmd import parse_file

    sample = parse_file(SEDA_REFERENCE / "samples" / "seda2_1ArchiveTransfer.xml")
    assert (sample["root"], sample["seda_version"]) == ("ArchiveTransfer", "2.1")
    assert sample["message_identifier"] == "SIP SEDA de test"
    assert isinstance(tmp_path, Path)
    atr = tmp_path / "atr.xml"
    atr.write_bytes(VITAM_EARLY_KO)
    summary = parse_file(atr)
    assert summary["accepted"] is False and summary["reply_code"] == "KO"
    assert summary["events"][0]["type_code"] == "CHECK_DIGEST"
    asalae = tmp_path / "asalae.xml"
    asalae.write_bytes(_asalae("000"))
    assert parse_file(asalae)["accepted"] is True
