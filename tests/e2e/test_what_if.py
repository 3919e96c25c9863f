"""What-if over HTTP (`POST /what-if`) and on the command line (`fieldledger
what-if`): the hand-worked history of tests/integration/test_what_if.py —
three routine orders booked Wednesday 2026-10-14 09:00 (Shanghai) and assigned
at 09:30, 11:30 and 12:30: a 4-hour routine response (built-in) meets all
three, a 2-hour one breaches two."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fieldledger.api.cli import app as cli
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.domain.facts import Role
from fieldledger.domain.policy import builtin_policy_text
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, Zone
from typer.testing import CliRunner

from tests.e2e.conftest import Api

SH = ZoneInfo("Asia/Shanghai")
DISPATCHER = Caller("disp-1", Role.DISPATCHER)
FOUR_HOURS = 'routine = { clock = "business", hours = 4 }'
SHORTER = builtin_policy_text().replace(FOUR_HOURS, 'routine = { clock = "business", hours = 2 }')
RESPONSE = {
    "key": "response",
    "actual": {"met": 3, "breached": 0, "open": 0, "rate": 100.0},
    "candidate": {"met": 1, "breached": 2, "open": 0, "rate": 33.33},
    "difference": {"met": -2, "breached": 2, "open": 0, "rate": -66.67},
}


def three_orders(ledger: FieldLedger) -> None:
    for hour, minute in ((9, 30), (11, 30), (12, 30)):
        booked = ledger.book_work_order(
            DISPATCHER, occurred_at=datetime(2026, 10, 14, 9, tzinfo=SH),
            customer=Customer("王芳", "138"), service_type="repair", priority=Priority.ROUTINE,
            zone=Zone.URBAN, channel=Channel.PHONE, billing=Billing.PAID, description="",
        )  # fmt: skip
        ledger.work_order_command(
            DISPATCHER, booked.id, "assign", {"technician_id": "tech-1"},
            occurred_at=datetime(2026, 10, 14, hour, minute, tzinfo=SH),
        )  # fmt: skip


def ask(api: Api, role: str, **body: Any) -> Any:
    return api.actor(f"{role}-1", role).post(
        "/what-if", {"policy": SHORTER, "from": "2026-10-14", "to": "2026-10-14", **body}
    )


def test_post_what_if_answers_actual_and_candidate_per_group(api: Api) -> None:
    assert SHORTER.count("hours = 2 }") > builtin_policy_text().count("hours = 2 }")
    three_orders(api.app.state.ledger)
    api.catch_up()
    before = api.event_count()
    for role in ("analyst", "supervisor"):
        answer = ask(api, role, group_by="target")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["from"] == "2026-10-13T16:00:00Z"
        assert body["report"] == "sla" and body["group_by"] == "target"
        groups = {g["key"]: g for g in body["groups"]}
        assert groups["response"] == RESPONSE
    assert api.event_count() == before  # a replay writes no event
    compliance = api.actor("sup-2", "supervisor").get(
        "/sla/compliance", **{"from": "2026-10-14", "to": "2026-10-14", "group_by": "target"}
    )
    response = next(g for g in compliance.json()["groups"] if g["key"] == "response")
    assert (response["met"], response["breached"]) == (3, 0)  # the live view as it was


def test_post_what_if_refuses_other_roles_and_bad_input(api: Api) -> None:
    refused = ask(api, "technician")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    bad_policy = ask(api, "analyst", policy="name = 'x'\n[sla\n")
    assert bad_policy.status_code == 422
    assert bad_policy.json()["type"].endswith("rule-violated")
    assert bad_policy.json()["errors"][0]["field"] == "policy"
    far = ask(api, "analyst", **{"from": "0001-01-01", "to": "0001-01-02"})
    assert far.status_code == 422 and "0001-9999" in far.text
    backwards = ask(api, "analyst", **{"from": "2026-10-15", "to": "2026-10-13"})
    assert backwards.status_code == 422
    grouping = ask(api, "analyst", report="satisfaction", group_by="zone")
    assert grouping.status_code == 422
    assert "technician, service_type" in grouping.text


def test_cli_what_if_prints_both_sides_and_the_difference(
    database_url: str, tmp_path: Path
) -> None:
    ledger = FieldLedger(database_url, max_backdate=None)  # October 2026, as history
    try:
        three_orders(ledger)
    finally:
        ledger.close()
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(SHORTER, encoding="utf-8")
    env = {"FIELDLEDGER_DATABASE_URL": database_url, "COLUMNS": "200"}
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["what-if", "--policy", str(candidate), "--from", "2026-10-14", "--to", "2026-10-14",
         "--report", "sla", "--group-by", "target"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = [line.split("│") for line in result.stdout.splitlines() if "│" in line]
    cells = {(r[1].strip(), r[2].strip()): [c.strip() for c in r[3:6]] for r in rows if len(r) > 6}
    assert cells[("response", "breached")] == ["0", "2", "+2"]
    assert cells[("response", "met")] == ["3", "1", "-2"]
    assert cells[("response", "rate")] == ["100.0", "33.33", "-66.67"]
    wrong = runner.invoke(
        cli, ["what-if", "--policy", str(tmp_path / "missing.toml"), "--from", "2026-10-14",
              "--to", "2026-10-14"], env=env,
    )  # fmt: skip
    assert wrong.exit_code == 2
    assert wrong.stderr.startswith("fieldledger: --policy: cannot read")
    assert len(wrong.stderr.strip().splitlines()) == 1
