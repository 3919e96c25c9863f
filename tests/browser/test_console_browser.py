"""The console in a real browser (Chromium via Playwright), against the real
service. Few and fast: one server and one browser for the module."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fieldledger.application.settings import Settings
from fieldledger.domain.policy import builtin_policy_text
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, shot
from tests.e2e.scenarios import booking, lodging
from tests.procedure import CHECKLIST_JSON, ON_SITE_CHECKS

LIVE_TIMEOUT_MS = 2000


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    made = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        yield made
    finally:
        made.close()


def sign_in(context: Any, server: Server, actor: str, role: str, path: str = "/console") -> Page:
    page: Page = context.new_page()
    page.goto(server.base + path)
    expect(page).to_have_url(re.compile("/console/sign-in"))
    page.get_by_label("令牌").fill(server.token(actor, role))
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#sign-out")).to_be_visible()
    return page


def book(server: Server, **overrides: Any) -> dict[str, Any]:
    with server.api("disp-api", "dispatcher") as api:
        r = api.post("/work-orders", json=booking(**overrides))
        assert r.status_code == 201, r.text
        return dict(r.json())


def test_sign_in_and_sign_out(context: Any, server: Server) -> None:
    page: Page = context.new_page()
    page.goto(server.base + "/console/board")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    shot(page, "sign-in")
    page.get_by_label("令牌").fill("fl_not-a-token")
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#sign-in-error")).to_be_visible()
    page.get_by_label("令牌").fill(server.token("sup-1", "supervisor"))
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name="时限看板")).to_be_visible()
    cookie = next(c for c in context.cookies() if c["name"] == "fl_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.locator("#sign-out").click()
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    page.goto(server.base + "/console/board")
    expect(page).to_have_url(re.compile("/console/sign-in"))


def test_board_gains_a_row_live_without_reload(context: Any, server: Server) -> None:
    book(server)  # something on the board already
    page = sign_in(context, server, "sup-1", "supervisor", "/console/board")
    page.wait_for_function("document.querySelectorAll('#board-rows tr[data-key]').length > 0")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_timeout(300)  # the stream is open
    blue = int(page.locator('#counts [data-status="blue"]').inner_text())
    order = book(server, priority="urgent", zone="suburban")
    row = page.locator(f'#board-rows tr[data-key^="{order["id"]}"]').first
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    # Its three targets start blue: the counts follow the rows.
    expect(page.locator('#counts [data-status="blue"]')).to_have_text(str(blue + 3))
    assert page.evaluate("window.__notReloaded") is True
    shot(page, "board")
    # The time control: the board as it was before that booking has no such row.
    page.locator("#f-at").fill("2020-01-01T08:00:00")
    page.get_by_role("button", name="应用").click()
    expect(page.locator("#as-of")).to_be_visible()
    expect(page.locator(f'#board-rows tr[data-key^="{order["id"]}"]')).to_have_count(0)


def test_board_filters_by_zone_priority_and_technician_and_stays_live(
    context: Any, server: Server
) -> None:
    urgent = book(server, priority="urgent", zone="urban")
    routine = book(server, priority="routine", zone="suburban")
    with server.api("disp-api", "dispatcher") as api:
        r = api.post(f"/work-orders/{routine['id']}/assign", json={"technician_id": "tech-flt"})
        assert r.status_code == 200, r.text
    page = sign_in(context, server, "sup-1", "supervisor", "/console/board")

    def shown(order: dict[str, Any]) -> Any:
        return page.locator(f'#board-rows tr[data-key^="{order["id"]}"]')

    page.get_by_label("区域").select_option("suburban")
    page.get_by_role("button", name="应用").click()
    expect(page).to_have_url(re.compile("zone=suburban"))
    expect(shown(routine).first).to_be_visible()
    expect(shown(urgent)).to_have_count(0)
    page.get_by_label("区域").select_option("")
    page.get_by_label("优先级").select_option("urgent")
    page.get_by_role("button", name="应用").click()
    expect(shown(urgent).first).to_be_visible()
    expect(shown(routine)).to_have_count(0)
    page.get_by_label("优先级").select_option("")
    page.get_by_label("技师").fill("tech-flt")
    page.get_by_role("button", name="应用").click()
    expect(shown(routine).first).to_be_visible()
    expect(shown(urgent)).to_have_count(0)
    # Live with the filter on: an order of someone else changes nothing shown; one
    # assigned to the technician appears, without a reload.
    page.evaluate("window.__notReloaded = true")
    page.wait_for_timeout(300)  # the stream is open
    elsewhere = book(server)
    theirs = book(server)
    with server.api("disp-api", "dispatcher") as api:
        r = api.post(f"/work-orders/{theirs['id']}/assign", json={"technician_id": "tech-flt"})
        assert r.status_code == 200, r.text
    expect(shown(theirs).first).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(shown(elsewhere)).to_have_count(0)
    owners = page.locator("#board-rows tr[data-key] td", has_text="tech-flt")
    assert owners.count() == page.locator("#board-rows tr[data-key]").count()
    assert page.evaluate("window.__notReloaded") is True


def test_complaint_page_targets_timeline_and_commands(context: Any, server: Server) -> None:
    with server.api("sup-api", "supervisor") as api:
        r = api.post("/complaints", json=lodging())
        assert r.status_code == 201, r.text
        complaint = r.json()
    page = sign_in(context, server, "sup-1", "supervisor", f"/console/complaints/{complaint['id']}")
    expect(page.locator("#timeline tbody tr.verified")).to_have_count(1)
    expect(page.locator("#chain-intact")).to_be_visible()
    targets = page.locator("section[aria-labelledby=h-sla] tbody tr")
    expect(targets.first.locator("td").nth(2)).to_have_text(
        re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
    )  # a due time, in the service's zone
    page.locator("form.command", has=page.locator("h3#c-acknowledge")).get_by_role(
        "button", name="受理").click()
    expect(page.locator("#message")).to_be_visible()
    expect(page.locator("#version")).to_have_text("2")
    assign = page.locator("form.command", has=page.locator("h3#c-assign"))
    assign.get_by_label("部门").fill("service")
    assign.get_by_label("负责人").fill("owner-7")
    assign.get_by_role("button", name="派单").click()
    expect(page.locator("#message")).to_be_visible()
    expect(page.locator("#version")).to_have_text("3")
    expect(page.locator("#timeline tbody tr.verified")).to_have_count(3)
    expect(page.locator("#v3")).to_contain_text("Assigned")
    expect(page.locator("#v3")).to_contain_text("sup-1")  # the signed-in actor, not a token's
    with server.api("sup-api", "supervisor") as api:
        assert api.get(f"/complaints/{complaint['id']}").json()["owner_id"] == "owner-7"
    shot(page, "complaint")
    # The state as it was right after the first event.
    page.locator("#v1").get_by_role("link").click()
    expect(page.locator("#state-then")).to_be_visible()
    expect(page.locator("#v1")).to_have_class(re.compile("current"))


def test_each_role_sees_only_its_pages(context: Any, server: Server) -> None:
    mine, other = book(server), book(server)
    with server.api("disp-api", "dispatcher") as api:
        for order, tech in ((mine, "tech-own"), (other, "tech-else")):
            r = api.post(f"/work-orders/{order['id']}/assign", json={"technician_id": tech})
            assert r.status_code == 200, r.text
    page = sign_in(context, server, "disp-1", "dispatcher", "/console/board")
    nav = page.get_by_role("navigation").get_by_role("link")
    expect(nav).to_have_text(["时限看板", "报表"])
    page.goto(server.base + "/console/operations")
    expect(page.get_by_text("您的角色无权查看此页面。")).to_be_visible()
    expect(page.locator("#operations")).to_have_count(0)
    page.locator("#sign-out").click()
    page = sign_in(context, server, "tech-own", "technician", "/console/board")
    expect(page.locator(f'#board-rows tr[data-key^="{mine["id"]}"]').first).to_be_visible()
    expect(page.locator(f'#board-rows tr[data-key^="{other["id"]}"]')).to_have_count(0)
    expect(page.locator("#f-technician")).to_have_count(0)  # no choosing someone else
    page.goto(server.base + f"/console/work-orders/{other['id']}")
    expect(page.get_by_text("您的角色无权查看此页面。")).to_be_visible()
    expect(page.locator("#timeline")).to_have_count(0)
    page.goto(server.base + f"/console/work-orders/{mine['id']}")
    expect(page.locator("#timeline tbody tr.verified")).to_have_count(2)


def test_timeline_verifies_every_event_and_shows_a_tampered_one(
    context: Any, server: Server
) -> None:
    order = book(server)
    with server.api("disp-api", "dispatcher") as api:
        r = api.post(f"/work-orders/{order['id']}/assign", json={"technician_id": "tech-tamper"})
        assert r.status_code == 200
        api.post(f"/work-orders/{order['id']}/hold", json={"reason": "parts"})
    page = sign_in(context, server, "sup-1", "supervisor", f"/console/work-orders/{order['id']}")
    rows = page.locator("#timeline tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#timeline tbody tr.verified")).to_have_count(3)
    expect(page.locator("#chain-intact")).to_be_visible()
    shot(page, "work-order")
    # Edit the stored assignment below the API, as someone with database access could.
    with sqlite3.connect(server.database) as db:
        changed = db.execute(
            "UPDATE stored_events SET state = CAST(REPLACE(CAST(state AS TEXT), "
            "'tech-tamper', 'tech-tampex') AS BLOB) WHERE originator_version = 2 "
            "AND CAST(state AS TEXT) LIKE '%tech-tamper%'"
        ).rowcount
    assert changed == 1
    page.reload()
    expect(page.locator("#v2")).to_have_class("broken")
    expect(page.locator("#chain-broken")).to_be_visible()
    expect(page.locator("#timeline tbody tr.verified")).to_have_count(2)
    shot(page, "work-order-tampered")


def test_stale_form_shows_changed_meanwhile(context: Any, server: Server) -> None:
    order = book(server)
    page = sign_in(context, server, "disp-1", "dispatcher", f"/console/work-orders/{order['id']}")
    with server.api("disp-api", "dispatcher") as api:  # someone else acts meanwhile
        api.post(f"/work-orders/{order['id']}/assign", json={"technician_id": "tech-2"})
    form = page.locator("form.command", has=page.locator("h3#c-assign"))
    form.get_by_label("技师").fill("tech-3")
    form.get_by_role("button", name="派单").click()
    error = page.locator("#command-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("此期间已被修改")
    expect(page.locator("#version")).to_have_text("2")
    shot(page, "stale-form")
    # The reloaded form carries the new version and goes through.
    page.locator("form.command", has=page.locator("h3#c-hold")).get_by_label("原因").fill("parts")
    page.locator("form.command", has=page.locator("h3#c-hold")).get_by_role(
        "button", name="挂起").click()
    expect(page.locator("#message")).to_be_visible()
    expect(page.locator("#state")).to_have_text("已挂起")


def test_audit_filter_and_csv(context: Any, server: Server) -> None:
    with server.api("disp-audit", "dispatcher") as api:
        assert api.post("/work-orders", json=booking()).status_code == 201
    page = sign_in(context, server, "sup-1", "supervisor", "/console/audit")
    page.get_by_label("操作人").fill("disp-audit")
    page.get_by_role("button", name="查询").click()
    rows = page.locator("#audit tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Booked")
    shot(page, "audit")
    with page.expect_download() as download:
        page.locator("#audit-csv").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    found = list(csv.DictReader(io.StringIO(text)))
    assert [(r["actor"], r["type"]) for r in found] == [("disp-audit", "Booked")]


def test_appraisal_drill_down_reaches_the_source_event(context: Any, server: Server) -> None:
    with server.api("sup-api", "supervisor") as api:
        r = api.post("/staff/tech-drill/conduct", json={"kind": "uniform", "note": "no badge"})
        assert r.status_code in (200, 201), r.text
    page = sign_in(context, server, "sup-1", "supervisor", "/console/appraisal")
    shot(page, "appraisal")
    page.get_by_role("link", name="tech-drill").click()
    expect(page.locator("#points")).to_have_text("99")
    shot(page, "appraisal-staff")
    page.locator("a.source-event").first.click()
    # A staff record has no page of its own: its events are read in the audit.
    expect(page.locator("#audit tbody tr", has_text="ConductRecorded")).to_have_count(1)
    expect(page.locator("#audit tbody tr", has_text="tech-drill")).to_have_count(0)


def test_work_order_source_event_opens_its_timeline_row(context: Any, server: Server) -> None:
    start = datetime.now(UTC) - timedelta(hours=3)
    order = book(server, appointment={"start": start.isoformat(),
                                      "end": (start + timedelta(hours=1)).isoformat()})
    with server.api("disp-api", "dispatcher") as api:
        api.post(f"/work-orders/{order['id']}/assign", json={"technician_id": "tech-late"})
    with server.api("tech-late", "technician") as tech:
        for command in ("confirm", "depart", "arrive"):
            assert tech.post(f"/work-orders/{order['id']}/{command}").status_code == 200
    page = sign_in(context, server, "sup-1", "supervisor", "/console/appraisal/tech-late")
    link = page.locator("a.source-event", has_text="Arrived")
    expect(link).to_have_count(1, timeout=5000)
    link.click()
    expect(page).to_have_url(re.compile(re.escape(f"/console/work-orders/{order['id']}#v5")))
    expect(page.locator("#v5")).to_contain_text("Arrived")


def served_with_feedback(server: Server, technician: str, csat: int) -> None:
    """A work order done and surveyed: something for the satisfaction report."""
    order = book(server)
    with server.api("disp-api", "dispatcher") as api:
        api.post(f"/work-orders/{order['id']}/assign", json={"technician_id": technician})
    steps: list[tuple[str, dict[str, Any] | None]] = [
        ("confirm", None), ("depart", None), ("arrive", None),
        ("start", {"identity_shown": True, "risk_assessment": "ok", **ON_SITE_CHECKS}),
        ("complete", {"summary": "fixed", "checklist": CHECKLIST_JSON}),
        ("accept", {"signed_by": "customer"}),
    ]  # fmt: skip
    with server.api(technician, "technician") as tech:
        for command, body in steps:
            assert tech.post(f"/work-orders/{order['id']}/{command}", json=body).status_code == 200
    with server.api("app-1", "client_app") as app:
        r = app.post(f"/work-orders/{order['id']}/feedback", json={
            "csat": csat, "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4})
        assert r.status_code == 200, r.text


def test_chinese_and_english_switch(context: Any, server: Server) -> None:
    served_with_feedback(server, "tech-happy", 5)
    served_with_feedback(server, "tech-sad", 2)
    page = sign_in(context, server, "analyst-1", "analyst", "/console/board")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.locator("#switch-language").click()
    expect(page.get_by_role("heading", name="SLA board")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    projections = server.app.state.projections
    projections.wait_for("satisfaction", projections.head())
    page.goto(server.base + "/console/reports")
    expect(page.get_by_role("heading", name="Satisfaction and SLA reports")).to_be_visible()
    # The three charts and first-contact resolution, now the satisfaction view measures it.
    expect(page.locator("svg.chart")).to_have_count(4)
    # This month's CSAT: one survey of two is good, 50%, drawn under the 85% line.
    expect(page.locator("svg.chart").first.locator("rect.bar.below")).to_have_count(1)
    shot(page, "reports")
    page.locator("#switch-language").click()
    expect(page.get_by_role("heading", name="满意度与时限报表")).to_be_visible()


def test_rebuild_progress_is_watched_live(context: Any, server: Server) -> None:
    book(server)
    page = sign_in(context, server, "analyst-1", "analyst", "/console/operations")
    row = page.locator('#operations tr[data-name="audit"]')
    row.get_by_role("button", name="重建 audit").click()
    expect(row.locator(".run")).to_contain_text("✓", timeout=10000)
    shot(page, "operations")


def test_what_if_form_answers_on_the_operations_page(context: Any, server: Server) -> None:
    book(server)
    page = sign_in(context, server, "analyst-1", "analyst", "/console/operations")
    # The form's dates are the service's local days (Asia/Shanghai by default):
    # from 16:00 UTC on, UTC's date is the day before the booking's local one.
    today = datetime.now(ZoneInfo(Settings().timezone)).date().isoformat()
    page.get_by_label(re.compile("^候选策略")).fill("name = 'x'\n[sla\n")
    page.get_by_label("起始").fill(today)
    page.get_by_label("截止").fill(today)
    page.get_by_label("分组").select_option("target")
    page.get_by_role("button", name="运行假设推演").click()
    expect(page.locator("#what-if-error")).to_contain_text("候选策略")
    # The policy in force as the candidate: every difference is nought.
    page.get_by_label(re.compile("^候选策略")).fill(builtin_policy_text())
    page.get_by_role("button", name="运行假设推演").click()
    expect(page.locator("#what-if-answer")).to_be_visible()
    differences = page.locator("#what-if-answer td.difference").all_inner_texts()
    assert differences and set(differences) <= {"0", ""}
    shot(page, "what-if")


def test_monthly_supervision_report_from_the_reports_page(context: Any, server: Server) -> None:
    book(server)
    page = sign_in(context, server, "sup-1", "supervisor", "/console/reports")
    page.get_by_role("link", name="服务监督月报").click()
    expect(page.get_by_role("heading", name="服务监督月报")).to_be_visible()
    month = page.get_by_label("月份").input_value()  # this month, in the service's zone
    assert re.fullmatch(r"[0-9]{4}-[0-9]{2}", month)
    page.get_by_label("月份").fill(month)
    page.get_by_role("button", name="显示").click()
    expect(page).to_have_url(re.compile(f"period={month}"))
    booked = page.locator('#monthly-orders tr[data-measure="booked"] td')
    assert int(booked.inner_text()) >= 1
    with page.expect_download() as download:
        page.locator("#monthly-report-csv").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    assert rows[0] == ["section", "key", "measure", "value"]
    assert ["orders", "", "booked", booked.inner_text()] in rows
    shot(page, "monthly")


def test_keyboard_only_board_and_labelled_fields(context: Any, server: Server) -> None:
    order = book(server)
    page: Page = context.new_page()
    page.goto(server.base + "/console/board")
    page.keyboard.type(server.token("sup-1", "supervisor"))  # the token field has focus
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="时限看板")).to_be_visible()
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
              .map(e => e.name)"""
    )
    assert unlabelled == []
    target = f'/console/work-orders/{order["id"]}'
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == target:
            break
    else:
        pytest.fail("the board's row link is not reachable by Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(target)))
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
              .map(e => e.name)"""
    )
    assert unlabelled == []
