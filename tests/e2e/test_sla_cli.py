"""The command line of the SLA: `fieldledger sla sweep [--at]`, and what `serve`
says (or refuses) at start."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from fieldledger.api.cli import app
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.domain.facts import Role
from fieldledger.domain.policy import builtin_policy, builtin_policy_text
from fieldledger.domain.sla import calendar_report
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, Zone
from typer.testing import CliRunner

SH = ZoneInfo("Asia/Shanghai")
runner = CliRunner()


def invoke(database_url: str, *args: str, **env: str) -> Any:
    # The orders below were booked in October 2026: history, as imported.
    env = {"FIELDLEDGER_DATABASE_URL": database_url, "FIELDLEDGER_MAX_BACKDATE": "none", **env}
    return runner.invoke(app, list(args), env=env)


def book_late_order(database_url: str) -> str:
    """Thu 2026-10-08 09:00 priority: response due 11:00, arrival 15:00, resolution
    Fri 10-09 16:00; never touched again, so all three are red today."""
    ledger = FieldLedger(database_url, max_backdate=None)
    try:
        return str(
            ledger.book_work_order(
                Caller("disp-1", Role.DISPATCHER), occurred_at=datetime(2026, 10, 8, 9, tzinfo=SH),
                customer=Customer("王芳", "138"), service_type="repair", priority=Priority.PRIORITY,
                zone=Zone.URBAN, channel=Channel.PHONE, billing=Billing.PAID, description="",
            ).id
        )  # fmt: skip
    finally:
        ledger.close()


def event_count(database_url: str) -> int:
    ledger = FieldLedger(database_url)
    try:
        return int(ledger.recorder.max_notification_id() or 0)
    finally:
        ledger.close()


def test_sweep_escalates_each_red_target_once(database_url: str) -> None:
    order = book_late_order(database_url)
    first = invoke(database_url, "sla", "sweep")
    assert first.exit_code == 0, first.stderr
    lines = first.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        f"escalated work_order {order} to level 1",
        f"escalated work_order {order} to level 2",
        f"escalated work_order {order} to level 3",
    ]
    assert [line.split(": ")[1].split()[0] for line in lines] == [
        "response", "arrival", "resolution",
    ]  # fmt: skip
    assert "3 escalated" in first.stderr

    second = invoke(database_url, "sla", "sweep")
    assert second.exit_code == 0, second.stderr
    assert second.stdout == ""
    assert "0 escalated" in second.stderr


def test_sweep_at_an_instant(database_url: str) -> None:
    order = book_late_order(database_url)
    result = invoke(database_url, "sla", "sweep", "--at", "2026-10-08T11:30:00+08:00")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"escalated work_order {order} to level 1: response past due (version 2)"
    ]


def test_sweep_reminds_the_handler_of_a_yellow_target_once_004_2_2(database_url: str) -> None:
    order = book_late_order(database_url)  # response due 11:00, yellow from 10:36
    result = invoke(database_url, "sla", "sweep", "--at", "2026-10-08T10:40:00+08:00")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"reminded disp-1 of work_order {order}: response turned yellow"
    ]
    assert "0 escalated, 1 reminded" in result.stderr
    again = invoke(database_url, "sla", "sweep", "--at", "2026-10-08T10:50:00+08:00")
    assert again.stdout == "" and "0 reminded" in again.stderr


@pytest.mark.parametrize(
    ("at", "says"),
    [
        ("yesterday", "is not an ISO 8601 time"),
        ("2026-10-08T11:30:00", "needs a time zone offset"),
        ("2099-01-01T00:00:00Z", "lies in the future"),
    ],
)
def test_a_bad_at_is_a_one_line_error_and_writes_nothing(
    database_url: str, at: str, says: str
) -> None:
    book_late_order(database_url)
    before = event_count(database_url)
    result = invoke(database_url, "sla", "sweep", "--at", at)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("fieldledger: --at:") and says in result.stderr
    assert event_count(database_url) == before


def test_serve_with_a_bad_policy_does_not_start(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: started.append((a, kw)))
    bad = tmp_path / "policy.toml"
    bad.write_text(builtin_policy_text().replace("yellow_at = 0.8", "yellow_at = 1.5"), "utf-8")
    result = invoke(sqlite_url, "serve", FIELDLEDGER_POLICY=str(bad))
    assert result.exit_code == 2
    assert started == []
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("fieldledger: policy key 'sla.yellow_at':")

    missing = invoke(sqlite_url, "serve", FIELDLEDGER_POLICY=str(tmp_path / "nope.toml"))
    assert missing.exit_code == 2 and started == []
    assert "cannot read policy file" in missing.stderr


def test_serve_warns_at_start_about_years_without_make_up_data(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: started.append((a, kw)))
    result = invoke(sqlite_url, "serve")
    assert result.exit_code == 0, result.stderr
    assert len(started) == 1
    year = datetime.now(SH).year
    missing = calendar_report(builtin_policy(), "Asia/Shanghai", (year, year + 1))[
        "years_without_makeup_data"
    ]
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    if missing:
        (warning,) = warnings
        assert all(str(y) in warning for y in missing) and "make-up" in warning
    else:
        assert warnings == []


def test_sweep_records_a_contracts_renewal_notice_once_003_15(database_url: str) -> None:
    from datetime import date

    from fieldledger.domain.maintenance_contracts import MaintenanceContract

    ledger = FieldLedger(database_url, max_backdate=None)
    try:
        contract = ledger.sign_maintenance_contract(
            Caller("disp-1", Role.DISPATCHER), occurred_at=datetime(2026, 10, 1, 9, tzinfo=SH),
            customer=Customer("王芳", "138", "北京"), starts_on=date(2025, 11, 1),
            ends_on=date(2026, 10, 31), visits_per_year=4,
        ).id  # fmt: skip
    finally:
        ledger.close()
    early = invoke(database_url, "sla", "sweep", "--at", "2026-09-29T12:00:00+08:00")
    assert early.exit_code == 0, early.stderr
    assert "renewal notice" not in early.stdout  # due from 30 September (local)
    first = invoke(database_url, "sla", "sweep", "--at", "2026-10-02T09:00:00+08:00")
    assert first.exit_code == 0, first.stderr
    assert f"renewal notice due for maintenance contract {contract}: ends 2026-10-31" in (
        first.stdout
    )
    assert "1 renewal notices" in first.stderr
    again = invoke(database_url, "sla", "sweep", "--at", "2026-10-03T09:00:00+08:00")
    assert "renewal notice due" not in again.stdout and "0 renewal notices" in again.stderr
    ledger = FieldLedger(database_url)
    try:
        events = [type(e).__name__ for e in ledger.events.get(contract)]
        assert events == ["Signed", "RenewalNoticeDue"]
        assert ledger.get(MaintenanceContract, contract).notices_for == [date(2026, 10, 31)]
    finally:
        ledger.close()


def test_a_sweep_further_back_than_the_backdating_bound_is_refused(database_url: str) -> None:
    result = invoke(database_url, "sla", "sweep", "--at", "2026-10-09T00:00:00Z",
                    FIELDLEDGER_MAX_BACKDATE="7d")  # fmt: skip
    assert result.exit_code != 0 and result.stdout == ""
    assert "FIELDLEDGER_MAX_BACKDATE" in result.stderr and len(result.stderr.splitlines()) == 1


def test_sweep_records_training_overdue_and_dismissal_once(database_url: str) -> None:
    """Contract §11.7: the sweep's training checks (001 第3篇), from the CLI."""
    from datetime import date

    ledger = FieldLedger(database_url)
    boss = Caller("sup-1", Role.SUPERVISOR)
    try:
        ledger.staff_command(boss, "tech-5", "joined", {"on": date(2026, 10, 8)})
        for held in (5, 12, 19):
            ledger.staff_command(boss, "tech-6", "training", {
                "kind": "fire_safety", "held_on": date(2026, 10, held),
                "attended": True, "test_passed": False,
            })  # fmt: skip
    finally:
        ledger.close()
    first = invoke(database_url, "sla", "sweep")
    assert first.exit_code == 0, first.stderr
    assert "recorded TrainingOverdue for tech-5: induction_theory" in first.stdout
    assert "recorded Dismissed for tech-6: fire_safety" in first.stdout
    second = invoke(database_url, "sla", "sweep")
    assert second.exit_code == 0, second.stderr
    assert "training: 0 recorded" in second.stderr
