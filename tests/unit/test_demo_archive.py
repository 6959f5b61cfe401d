"""The demo's archive step: the demo member's archive account and what the step prints."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from agents.archive.acts import acte_submission
from connectors.archive.settings import ArchiveSettings
from ops.demo_archive import archive_flow_of, archive_lines
from ops.members import new_member
from ops.stack import ARCHIVE_PORT_OFFSET, archive_url, with_archive
from relais.flows.ids import flow_id_for
from relais.members.model import TDT, PartnerAccount
from relais.settings import Settings
from sandbox.catalogue import by_name


def test_the_archive_url_is_where_relais_sandbox_serves_the_archive(tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path, sandbox_tdt_port=18480)
    assert by_name("archive")[0].port_offset == ARCHIVE_PORT_OFFSET
    assert archive_url(settings) == "https://127.0.0.1:18483"
    assert archive_url(settings, tls=False) == "http://127.0.0.1:18483"


def test_a_demo_member_opts_in_to_automatic_archiving_with_the_application_certificate(
        tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path, sandbox_tdt_port=18480)
    tdt = PartnerAccount(url="https://127.0.0.1:18480", login="212102313")
    registration = new_member("212102313", "Commune", "021", tdt=tdt)
    archiving = with_archive(registration, settings).member
    account = archiving.account("archive")
    assert account is not None and archiving.account(TDT) == tdt
    assert archiving.token_sha256 == registration.member.token_sha256
    assert account.cert_file and Path(account.cert_file).is_file()
    assert account.key_file and Path(account.key_file).is_file()
    assert account.ca_file and Path(account.ca_file).is_file()
    assert "relais" in Path(account.cert_file).name  # the sandbox's application (CN)
    parsed = ArchiveSettings.from_account(account, archiving.siren)
    assert parsed.auto_archive and parsed.tenant == 1
    assert parsed.seda_version.value == "2.2"
    plain = with_archive(registration, settings, tls=False).member.account("archive")
    assert plain is not None and plain.cert_file is None
    assert plain.url == "http://127.0.0.1:18483"


def _event(state: str, stage: str, partner_ref: str | None,
           details: dict[str, str]) -> dict[str, Any]:
    return {"occurred_at": datetime(2026, 12, 4, 23, 0, tzinfo=UTC), "state": state,
            "stage": stage, "partner_ref": partner_ref, "details": details}


def test_the_archived_event_shows_the_operation_and_each_archive_unit() -> None:
    events = [_event("received", "archive-acts", None, {}),
              _event("transferred", "archive-delivery", "aeeaaaaaaa", {}),
              _event("archived", "archive-status", "aeeaaaaaaa",
                     {"operation_id": "aeeaaaaaaa", "reply_code": "OK",
                      "unit.ID-ACTE": "aeaqaaaaaa-1", "object.ID-DOC": "aeaaaaaaa-2",
                      "unit.ID-DOC": "aeaqaaaaaa-3"})]
    lines = archive_lines(events)
    assert lines[0].startswith("  23:00:00  received")
    assert "aeeaaaaaaa" in lines[1]
    assert lines[3] == "  archive operation aeeaaaaaaa, ATR ReplyCode OK"
    assert lines[4] == "  2 archive units (the SIP's id -> the archive's system id):"
    units = [line for line in lines if " -> aeaq" in line]
    assert len(units) == 2  # objects are not units
    assert "ID-ACTE" in units[0] and "aeaqaaaaaa-1" in units[0]
    assert "ID-DOC" in units[1] and "aeaqaaaaaa-3" in units[1]


def test_a_flow_not_archived_shows_its_history_only() -> None:
    events = [_event("received", "archive-acts", None, {}),
              _event("archive-rejected", "archive-status", "op", {"operation_id": "op"})]
    assert len(archive_lines(events)) == 2
    assert archive_lines([]) == []


def test_the_archive_flow_of_an_acte_is_the_one_the_archive_agent_starts() -> None:
    dossier = {"submission_id": "demo-ok-1A2B3", "member_siren": "212102313",
               "decision_date": date(2026, 12, 4), "objet": "Budget", "nature_code": 1,
               "document": {"blob": {"sha256": "a" * 64, "size": 10,
                                     "media_type": "application/pdf", "filename": "d.pdf"}}}
    submission = acte_submission(dossier, "021-212102313-20261204-D1A2B3-DE", aracte=None,
                                 stamped=None)
    assert archive_flow_of("212102313", "demo-ok-1A2B3") == flow_id_for(
        "212102313", submission["submission_id"])
    assert archive_flow_of("212102313", "demo-ok-1A2B3") != archive_flow_of("212102313",
                                                                              "demo-ok-2")
