"""The PES_ACQUIT reader: lenient on content, strict on what is not a PES_ACQUIT."""

from __future__ import annotations

from pathlib import Path

import pytest

from relais.errors import PartnerReplyError, PartnerReplyTooLargeError
from relais.pes.acquit import AcquitOutcome, read_acquit, read_acquit_async
from relais.pes.xml_safe import PesLimits

SAMPLES = Path(__file__).parents[2] / ".." / "shared" / "reference" / "pes" / "samples"
OK = (SAMPLES / "s2low_pes_acquit.xml").read_bytes()


def test_every_element_rejected_is_a_rejected_file() -> None:
    raw = OK.replace(b'<EtatAck V="1"/>', b'<EtatAck V="0"/>')
    assert read_acquit(raw).outcome is AcquitOutcome.REJECTED


def test_unknown_codes_are_kept_as_written() -> None:
    raw = OK.replace(b'<DomaineAck V="5"/>', b'<DomaineAck V="42"/>').replace(
        b"<IdUnique", b'<Erreur><NumAnoAck V="ERREUR_NOUVELLE"/>'
        b'<LibelleAnoAck V="sans code"/></Erreur><IdUnique', 1)
    acquit = read_acquit(raw)
    assert acquit.elements[0].domain == "42"
    assert acquit.elements[0].domain_label is None
    error = acquit.elements[1].errors[0]
    assert (error.code, error.label, error.rule_code) == ("ERREUR_NOUVELLE", "sans code", None)


def test_not_an_acquit_and_unreadable_bytes_are_reply_errors() -> None:
    with pytest.raises(PartnerReplyError, match="not a PES_ACQUIT"):
        read_acquit(b"<import><resultat>KO</resultat></import>")
    with pytest.raises(PartnerReplyError, match="not readable"):
        read_acquit(b"KO\nAcc\xe8s refus\xe9")


def test_past_a_limit_is_too_large() -> None:
    with pytest.raises(PartnerReplyTooLargeError):
        read_acquit(OK, PesLimits(max_bytes=100))


async def test_off_the_event_loop() -> None:
    assert (await read_acquit_async(OK)).outcome is AcquitOutcome.ACKNOWLEDGED
