"""The daily, weekly and monthly reports over HTTP, on both databases (contract
§11.5): the technicians' daily report (003 第十/十一條: kind of work and time it
took), the weekly meeting's figures (002: 每周五下午例會…本周客戶服務情況和客戶反映信息)
and the monthly supervision report (002 篇三 《服務監督報告》), as JSON and CSV,
with `as_of`, read from read models.

The field happened in October 2026 (`occurred_at`); the server records it now.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Api
from tests.e2e.test_reports import APPOINTMENT, a_moment_passes, feedback, iso, ok, visit


def october(api: Api) -> dict[str, str]:
    """Three visits, a survey and two complaints in the week of 12 October 2026."""
    late, _ = visit(api, "tech-1", minutes_late=7, service_type="repair")  # 14 Oct, on site 1 h
    rework, _ = visit(api, "tech-2", rejections=1, service_type="install")  # 14 Oct, on site 2 h
    next_day, _ = visit(api, "tech-1", day=1, service_type="repair")  # 15 Oct, on site 1 h
    feedback(api, late, APPOINTMENT + timedelta(days=2), 5)  # 16 Oct
    dispatcher = api.actor("disp-1", "dispatcher")
    for category in ("service", "billing"):
        ok(dispatcher.post("/complaints", {
            "customer": {"name": "李四", "phone": "13900000000"}, "channel": "phone",
            "category": category, "severity": "minor", "description": "不满意",
            "occurred_at": iso(APPOINTMENT + timedelta(days=2)),
        }), 201)  # fmt: skip
    api.catch_up()
    return {"late": late, "rework": rework, "next_day": next_day}


def csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.reader(io.StringIO(response.text)))


def test_the_daily_report_gives_each_technicians_orders_lateness_and_hours_003_10_11(
    api: Api,
) -> None:
    before = a_moment_passes()
    october(api)
    supervisor = api.actor("sup-1", "supervisor")
    report = ok(supervisor.get("/reports/daily", date="2026-10-14")).json()
    assert report["date"] == "2026-10-14" and report["as_of"] is None
    assert report["technicians"] == [
        {"technician_id": "tech-1", "orders_worked": 1, "completed": 1, "late": 1,
         "hours_on_site": 1.0, "by_service_type": [
             {"service_type": "repair", "orders_worked": 1, "completed": 1,
              "hours_on_site": 1.0}]},
        # Completed, rejected, reworked and completed again: one order, 2 h on site.
        {"technician_id": "tech-2", "orders_worked": 1, "completed": 1, "late": 0,
         "hours_on_site": 2.0, "by_service_type": [
             {"service_type": "install", "orders_worked": 1, "completed": 1,
              "hours_on_site": 2.0}]},
    ]  # fmt: skip
    assert report["totals"] == {"orders_worked": 2, "completed": 2, "late": 1,
                                "hours_on_site": 3.0}  # fmt: skip
    other_day = ok(supervisor.get("/reports/daily", date="2026-10-15")).json()
    assert [(t["technician_id"], t["orders_worked"]) for t in other_day["technicians"]] == [
        ("tech-1", 1)
    ]
    then = ok(supervisor.get("/reports/daily", date="2026-10-14", as_of=iso(before))).json()
    assert then["technicians"] == [] and then["as_of"] is not None

    rows = csv_rows(supervisor.client.get(
        "/reports/daily", params={"date": "2026-10-14"},
        headers={**supervisor.headers, "Accept": "text/csv"},
    ))  # fmt: skip
    assert rows == [
        ["date", "technician_id", "orders_worked", "completed", "late", "hours_on_site"],
        ["2026-10-14", "tech-1", "1", "1", "1", "1.0"],
        ["2026-10-14", "tech-2", "1", "1", "0", "2.0"],
    ]


def test_time_on_site_is_split_at_local_midnight_003_10() -> None:
    from datetime import UTC, date, datetime

    from fieldledger.projections.reports import seconds_by_local_day

    start = datetime(2026, 10, 14, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    end = datetime(2026, 10, 14, 17, 30, tzinfo=UTC)  # 01:30 the next day
    assert seconds_by_local_day(start, end, "Asia/Shanghai") == [
        (date(2026, 10, 14), 3600), (date(2026, 10, 15), 5400)
    ]


def test_the_weekly_report_counts_orders_complaints_and_feedback_002(api: Api) -> None:
    orders = october(api)
    analyst = api.actor("ana-1", "analyst")
    report = ok(analyst.get("/reports/weekly", week="2026-W42")).json()
    assert (report["week"], report["from"], report["to"]) == ("2026-W42", "2026-10-12",
                                                              "2026-10-18")  # fmt: skip
    assert report["orders"] == {"booked": 3, "completed": 3, "accepted": 3,
                                "resolved_remotely": 0, "cancelled": 0, "rejected": 1,
                                "escalated": 0, "feedback": 1}  # fmt: skip
    assert report["complaints"] == {
        "lodged": 2, "resolved": 0, "closed": 0, "reopened": 0,
        "by_category": [
            {"category": "billing", "lodged": 1, "resolved": 0, "closed": 0, "reopened": 0},
            {"category": "service", "lodged": 1, "resolved": 0, "closed": 0, "reopened": 0},
        ],
    }  # fmt: skip
    fb = report["feedback"]
    assert (fb["received"], fb["csat_pct"], fb["mean_csat"], fb["praised"]) == (1, 100, 5, 0)
    assert fb["dimensions"] == {"attitude": 4, "skill": 3, "punctuality": 4, "promise": 3}
    assert fb["comments"] == [{"work_order_id": orders["late"], "day": "2026-10-16",
                               "technician_id": "tech-1", "csat": 5, "comment": "谢谢"}]
    assert [(t["technician_id"], t["orders_worked"], t["hours_on_site"])
            for t in report["technicians"]] == [("tech-1", 2, 2.0), ("tech-2", 1, 2.0)]
    empty = ok(analyst.get("/reports/weekly", week="2026-W43")).json()
    assert empty["orders"]["booked"] == 0 and empty["technicians"] == []

    rows = csv_rows(analyst.client.get(
        "/reports/weekly", params={"week": "2026-W42"},
        headers={**analyst.headers, "Accept": "text/csv"},
    ))  # fmt: skip
    assert rows[0] == ["section", "key", "measure", "value"]
    assert ["orders", "", "booked", "3"] in rows
    assert ["complaints_by_category", "service", "lodged", "1"] in rows
    assert ["feedback_comments", orders["late"], "comment", "谢谢"] in rows
    assert ["technicians", "tech-2", "hours_on_site", "2.0"] in rows


def test_the_monthly_supervision_report_gathers_sla_csat_complaints_and_ranking_002(
    api: Api,
) -> None:
    october(api)
    supervisor = api.actor("sup-1", "supervisor")
    report = ok(supervisor.get("/reports/monthly", period="2026-10")).json()
    assert (report["period"], report["from"], report["to"]) == ("2026-10", "2026-10-01",
                                                                "2026-10-31")  # fmt: skip
    assert report["orders"]["booked"] == 3 and report["orders"]["accepted"] == 3

    # SLA compliance is the SLA view's, for the month, per kind and per target.
    for kind, section in (("work_order", "work_orders"), ("complaint", "complaints")):
        overall = ok(supervisor.get("/sla/compliance", **{
            "from": "2026-10-01", "to": "2026-10-31", "kind": kind})).json()["groups"]
        by_target = ok(supervisor.get("/sla/compliance", **{
            "from": "2026-10-01", "to": "2026-10-31", "kind": kind,
            "group_by": "target"})).json()["groups"]  # fmt: skip
        assert [report["sla"][section]["overall"]] == overall
        assert report["sla"][section]["targets"] == by_target
    assert report["sla"]["work_orders"]["overall"]["met"] > 0

    satisfaction = report["satisfaction"]
    assert (satisfaction["csat_pct"], satisfaction["surveys_expected"],
            satisfaction["surveys_received"]) == (100, 3, 1)  # fmt: skip
    assert satisfaction["first_time_fix_pct"] == 66.67  # the reworked order
    assert [(t["technician_id"], t["surveys_expected"], t["first_time_fix_pct"])
            for t in satisfaction["technicians"]] == [("tech-1", 2, 100), ("tech-2", 1, 0)]
    if satisfaction["first_contact_resolution_pct"] is None:
        # Until the satisfaction view measures it (004 問題一次性解決率), the report says so.
        assert any("first_contact_resolution" in m for m in report["missing"])

    assert [(c["category"], c["lodged"]) for c in report["complaints"]["by_category"]] == [
        ("billing", 1), ("service", 1)
    ]
    ranking = ok(supervisor.get("/appraisal", period="2026-10")).json()["ranking"]
    assert report["appraisal_ranking"] == ranking
    assert {r["staff_id"] for r in ranking} >= {"tech-1", "tech-2"}

    rows = csv_rows(supervisor.client.get(
        "/reports/monthly", params={"period": "2026-10"},
        headers={**supervisor.headers, "Accept": "text/csv"},
    ))  # fmt: skip
    assert ["satisfaction", "", "csat_pct", "100.0"] in rows
    assert ["complaints_by_category", "billing", "lodged", "1"] in rows
    assert ["appraisal_ranking", ranking[0]["staff_id"], "rank", "1"] in rows
    assert any(r[0] == "sla_work_orders" and r[1] == "all" for r in rows)


def test_reports_answer_as_of_an_instant(api: Api) -> None:
    october(api)
    between = a_moment_passes()
    visit(api, "tech-2", day=3, service_type="repair")  # 17 Oct, recorded after `between`
    api.catch_up()
    supervisor = api.actor("sup-1", "supervisor")
    now = ok(supervisor.get("/reports/weekly", week="2026-W42")).json()
    then = ok(supervisor.get("/reports/weekly", week="2026-W42", as_of=iso(between))).json()
    assert (now["orders"]["booked"], then["orders"]["booked"]) == (4, 3)
    monthly_then = ok(supervisor.get("/reports/monthly", period="2026-10",
                                     as_of=iso(between))).json()  # fmt: skip
    assert monthly_then["orders"]["accepted"] == 3
    assert monthly_then["satisfaction"]["surveys_expected"] == 3


@pytest.mark.parametrize("role", ["technician", "dispatcher", "client_app"])
def test_only_supervisors_and_analysts_read_the_reports(api: Api, role: str) -> None:
    other = api.actor(f"{role}-1", role)
    for path in ("/reports/daily", "/reports/weekly", "/reports/monthly"):
        refused = other.get(path)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert api.client.get("/reports/daily").status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/reports/daily", {"date": "2026-02-30"}, "date"),
        ("/reports/daily", {"date": "9999-12-31"}, "date"),
        ("/reports/daily", {"date": "0001-01-01"}, "date"),
        ("/reports/weekly", {"week": "9999-W52"}, "week"),
        ("/reports/monthly", {"period": "9999-12"}, "period"),
        ("/reports/weekly", {"week": "2026-W54"}, "week"),
        ("/reports/weekly", {"week": "2026-42"}, "week"),
        ("/reports/monthly", {"period": "2026-Q4"}, "period"),
        ("/reports/monthly", {"period": "2026-13"}, "period"),
        ("/reports/monthly", {"period": "2026-10", "as_of": "2026-10-01T00:00:00"}, "as_of"),
    ],
)
def test_bad_report_parameters_name_the_field(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    supervisor = api.actor("sup-1", "supervisor")
    refused = supervisor.get(path, **params)
    assert refused.status_code == 422, refused.text
    assert field in refused.text


def test_hours_on_site_stop_during_a_hold_and_split_at_local_midnight_003_10(api: Api) -> None:
    """Arrive 23:00 local, hold 23:30-00:15, complete 01:00: 30 min on the 14th and
    45 min on the 15th (a hold begun on site stops the clock; resuming restarts it)."""
    dispatcher = api.actor("disp-1", "dispatcher")
    tech = api.actor("tech-3", "technician")
    arrive = APPOINTMENT + timedelta(hours=13)  # 2026-10-14 23:00 in Shanghai
    order = ok(dispatcher.post("/work-orders", {
        "customer": {"name": "张三", "phone": "13800000000", "address": "北京"},
        "service_type": "night repair", "priority": "urgent", "zone": "urban",
        "channel": "phone", "billing": "paid", "description": "停电",
        "occurred_at": iso(arrive - timedelta(hours=2)),
    }), 201).json()["id"]  # fmt: skip

    def command(name: str, when: Any, **body: Any) -> None:
        actor = dispatcher if name == "assign" else tech
        ok(actor.post(f"/work-orders/{order}/{name}", {**body, "occurred_at": iso(when)}))

    command("assign", arrive - timedelta(hours=1), technician_id="tech-3")
    command("confirm", arrive - timedelta(minutes=50))
    command("depart", arrive - timedelta(minutes=40))
    command("arrive", arrive)
    command("start", arrive, identity_shown=True, risk_assessment="dark")
    command("hold", arrive + timedelta(minutes=30), reason="fuse on order")
    command("resume", arrive + timedelta(minutes=75))
    command("complete", arrive + timedelta(minutes=120), summary="fixed", parts_used=[])
    api.catch_up()
    supervisor = api.actor("sup-1", "supervisor")
    first = ok(supervisor.get("/reports/daily", date="2026-10-14")).json()["technicians"]
    second = ok(supervisor.get("/reports/daily", date="2026-10-15")).json()["technicians"]
    assert [(t["technician_id"], t["hours_on_site"], t["completed"]) for t in first] == [
        ("tech-3", 0.5, 0)
    ]
    assert [(t["technician_id"], t["hours_on_site"], t["completed"]) for t in second] == [
        ("tech-3", 0.75, 1)
    ]
