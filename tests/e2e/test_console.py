"""The console over HTTP (no browser), on SQLite and PostgreSQL: sign-in and its
cookie, CSRF, roles, every page, the stale-version message, CSV. The browser
tests (tests/browser) cover what needs a real page: live updates, keyboard."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from fieldledger.api.console.sessions import COOKIE
from fieldledger.application.tokens import TokenBook, token_id

from tests.e2e.conftest import Api
from tests.e2e.scenarios import booking, lodging
from tests.e2e.test_what_if import SHORTER, three_orders


def sign_in(api: Api, actor: str, role: str) -> str:
    """Signs the client in; returns the page's CSRF token."""
    tokens: TokenBook = api.app.state.tokens
    token = tokens.issue(actor, role, datetime.now(UTC))
    form = csrf_of(api.client.get("/console/sign-in").text)
    r = api.client.post("/console/sign-in", data={"token": token, "next": "/console/board",
                                                  "csrf": form}, follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS it is Secure
    assert token not in cookie
    return csrf_of(api.client.get("/console/board").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def test_sign_in_sign_out_and_csrf(api: Api) -> None:
    assert api.client.get("/console/board", follow_redirects=False).headers["location"].startswith(
        "/console/sign-in?next=")
    form = csrf_of(api.client.get("/console/sign-in").text)
    bad = api.client.post("/console/sign-in", data={"token": "fl_nope", "csrf": form})
    assert bad.status_code == 401 and "sign-in-error" in bad.text
    # Signing in (or switching language) without the form's CSRF token is refused.
    tokens: TokenBook = api.app.state.tokens
    good = tokens.issue("sup-1", "supervisor", datetime.now(UTC))
    assert api.client.post("/console/sign-in", data={"token": good, "csrf": "x"}).status_code == 422
    assert api.client.post("/console/language", data={"language": "en"}).status_code == 422
    csrf = sign_in(api, "sup-1", "supervisor")
    page = api.client.get("/console/board")
    assert page.status_code == 200 and "sup-1" in page.text
    assert "<html lang=\"zh-CN\">" in page.text and "时限看板" in page.text
    # A form without the session's CSRF token is refused, and signs nobody out.
    forged = api.client.post("/console/sign-out", data={"csrf": "forged"})
    assert forged.status_code == 422
    assert api.client.get("/console/board").status_code == 200
    out = api.client.post("/console/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert api.client.get("/console/board", follow_redirects=False).status_code == 303


def test_client_apps_may_not_sign_in_and_roles_see_their_pages(api: Api) -> None:
    tokens: TokenBook = api.app.state.tokens
    app_token = tokens.issue("app-1", "client_app", datetime.now(UTC))
    form = csrf_of(api.client.get("/console/sign-in").text)
    refused = api.client.post("/console/sign-in", data={"token": app_token, "csrf": form})
    assert refused.status_code == 403
    sign_in(api, "disp-1", "dispatcher")
    assert api.client.get("/console/audit").status_code == 403
    assert api.client.get("/console/operations").status_code == 403
    assert api.client.get("/console/reports").status_code == 200
    sign_in(api, "analyst-1", "analyst")
    assert api.client.get("/console/operations").status_code == 200


def test_record_page_commands_and_stale_version(api: Api) -> None:
    disp = api.actor("disp-1", "dispatcher")
    order = disp.post("/work-orders", booking(priority="urgent")).json()
    csrf = sign_in(api, "disp-2", "dispatcher")
    page = api.client.get(f"/console/work-orders/{order['id']}")
    assert page.status_code == 200 and 'id="chain-intact"' in page.text
    assert 'data-if-match="1"' in page.text
    path = f"/console/work-orders/{order['id']}/commands/assign"
    done = api.client.post(path, data={"csrf": csrf, "if_match": "1", "technician_id": "tech-7"},
                           follow_redirects=False)
    assert done.status_code == 303, done.text
    # The same form again, made from version 1: refused with the message, nothing written.
    stale = api.client.post(path, data={"csrf": csrf, "if_match": "1", "technician_id": "tech-8"})
    assert stale.status_code == 412 and "第 1 版" in stale.text and "command-error" in stale.text
    assert disp.get(f"/work-orders/{order['id']}").json()["technician_id"] == "tech-7"
    # The If-Match header wins over the form field (the page's script sends it).
    header = api.client.post(path, data={"csrf": csrf, "if_match": "2", "technician_id": "x"},
                             headers={"If-Match": '"1"'})
    assert header.status_code == 412
    then = api.client.get(f"/console/work-orders/{order['id']}?version=1")
    assert 'id="state-then-value"' in then.text


def test_audit_csv_appraisal_reports_operations(api: Api) -> None:
    disp = api.actor("disp-1", "dispatcher")
    sup = api.actor("sup-1", "supervisor")
    disp.post("/work-orders", booking())
    complaint = sup.post("/complaints", lodging()).json()
    api.catch_up()
    sign_in(api, "analyst-1", "analyst")
    page = api.client.get("/console/audit", params={"actor": "sup-1"})
    assert page.status_code == 200 and complaint["id"][:8] in page.text
    rows = list(csv.DictReader(io.StringIO(api.client.get(
        "/console/audit.csv", params={"actor": "disp-1"}).text)))
    assert [r["type"] for r in rows] == ["Booked"] and rows[0]["actor"] == "disp-1"
    assert api.client.get("/console/audit", params={"type": "Nope"}).status_code == 422
    assert api.client.get("/console/appraisal").status_code == 200
    reports = api.client.get("/console/reports")
    assert reports.status_code == 200 and reports.text.count("<svg") >= 3
    monthly = api.client.get("/console/reports.csv").text.splitlines()
    assert monthly[0].startswith("month,csat_pct") and len(monthly) == 13
    ops = api.client.get("/console/operations")
    assert ops.status_code == 200 and 'data-name="sla"' in ops.text
    board = api.client.get("/console/board/rows", params={"kind": "complaint"})
    assert complaint["id"] in board.text


def test_a_revoked_token_ends_its_console_session(api: Api) -> None:
    tokens: TokenBook = api.app.state.tokens
    token = tokens.issue("sup-9", "supervisor", datetime.now(UTC))
    form = csrf_of(api.client.get("/console/sign-in").text)
    api.client.post("/console/sign-in", data={"token": token, "csrf": form})
    assert api.client.get("/console/board").status_code == 200
    assert tokens.revoke(token_id(token), datetime.now(UTC))
    assert api.client.get("/console/board", follow_redirects=False).status_code == 303
    form = csrf_of(api.client.get("/console/sign-in").text)
    again = api.client.post("/console/sign-in", data={"token": token, "csrf": form})
    assert again.status_code == 401


def test_console_forms_are_form_encoded_and_still_limited_in_size(api: Api) -> None:
    form = csrf_of(api.client.get("/console/sign-in").text)
    big = api.client.post("/console/sign-in", data={"token": "x" * 70_000, "csrf": form})
    assert big.status_code == 413
    # The API itself still takes JSON only.
    disp = api.actor("disp-1", "dispatcher")
    r = api.client.post("/work-orders", data={"priority": "urgent"}, headers=disp.headers)
    assert r.status_code == 415


def test_a_closed_session_cookie_is_refused(api: Api) -> None:
    sign_in(api, "sup-1", "supervisor")
    api.app.state.console_sessions.close(api.client.cookies.get(COOKIE))
    assert api.client.get("/console/board", follow_redirects=False).status_code == 303


def test_a_technician_sees_only_their_own_orders(api: Api) -> None:
    disp = api.actor("disp-1", "dispatcher")
    mine = disp.post("/work-orders", booking()).json()
    other = disp.post("/work-orders", booking()).json()
    disp.post(f"/work-orders/{mine['id']}/assign", {"technician_id": "tech-1"})
    disp.post(f"/work-orders/{other['id']}/assign", {"technician_id": "tech-2"})
    api.catch_up()
    sign_in(api, "tech-1", "technician")
    rows = api.client.get("/console/board/rows", params={"technician": "tech-2"}).text
    assert mine["id"] in rows and other["id"] not in rows
    assert api.client.get(f"/console/work-orders/{mine['id']}").status_code == 200
    assert api.client.get(f"/console/work-orders/{other['id']}").status_code == 403
    assert api.client.get("/console/appraisal/tech-2").status_code == 403
    assert api.client.get("/console/audit").status_code == 403


def test_the_board_stream_announces_a_new_position_after_a_command(api: Api) -> None:
    disp = api.actor("disp-1", "dispatcher")
    sign_in(api, "sup-1", "supervisor")
    with api.client.stream("GET", "/console/board/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: ready"
        order = disp.post("/work-orders", booking()).json()
        api.catch_up()
        assert next(line for line in lines if line.startswith("event:")) == "event: changed"
        data = next(line for line in lines if line.startswith("data:"))
    position = int(data.split(":")[-1].strip(" }"))
    assert position == api.head()
    rows = api.client.get("/console/board/rows", params={"min_position": position})
    assert order["id"] in rows.text and rows.headers["X-Position"] == str(position)


def test_over_tls_the_session_cookie_is_secure(api: Api) -> None:
    tokens: TokenBook = api.app.state.tokens
    token = tokens.issue("sup-1", "supervisor", datetime.now(UTC))
    page = api.client.get("https://testserver/console/sign-in")
    r = api.client.post("https://testserver/console/sign-in",
                        data={"token": token, "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    session_cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(COOKIE))
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie


def test_a_record_edited_past_decoding_still_shows_its_timeline(api: Api) -> None:
    from fieldledger.application.database import Database

    disp = api.actor("disp-1", "dispatcher")
    order = disp.post("/work-orders", booking()).json()
    disp.post(f"/work-orders/{order['id']}/assign", {"technician_id": "tech-1"})
    recorder = api.app.state.ledger.recorder
    db = Database(recorder)
    position = "rowid" if db.dialect == "sqlite" else "notification_id"
    with db.transaction() as tx:
        tx.execute(f"UPDATE {tx.table(recorder.events_table_name)} SET state = ? "
                   f"WHERE {position} = ?", (b"{not json", api.head()))
    sign_in(api, "sup-1", "supervisor")
    page = api.client.get(f"/console/work-orders/{order['id']}")
    assert page.status_code == 200
    assert 'id="unreadable"' in page.text and 'id="chain-broken"' in page.text
    assert 'class="verified"' in page.text  # the booking still verifies


def test_console_pages_load_only_their_own_assets(api: Api) -> None:
    sign_in(api, "analyst-1", "analyst")
    for path in ("/console/sign-in", "/console/board", "/console/audit", "/console/reports",
                 "/console/operations", "/console/appraisal"):
        page = api.client.get(path)
        assert page.status_code == 200, path
        for asset in re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text):
            assert not re.match(r"^([a-z]+:)?//", asset), (path, asset)
        for script in re.findall(r"""<(?:script|link)[^>]*(?:src|href)=["']([^"']+)["']""",
                                 page.text):
            assert api.client.get(script).status_code == 200, script


def test_the_staff_page_shows_discipline_steps_with_their_source(api: Api) -> None:
    sup = api.actor("sup-1", "supervisor")
    for _ in range(3):  # the third absence day in a month: dismissal (001 4.2.2-3)
        r = sup.post("/staff/tech-5/conduct", {"kind": "absence", "note": "absent"})
        assert r.status_code in (200, 201), r.text
    api.catch_up()
    sign_in(api, "sup-2", "supervisor")
    page = api.client.get("/console/appraisal/tech-5")
    assert page.status_code == 200
    table = page.text.split('id="discipline"')[1].split("</table>")[0]
    assert "辞退" in table and "001 4.2.2-3" in table and "source-event" in table
    assert 'id="retraining"' in page.text


def test_contacts_are_shown_as_the_role_may_see_them(api: Api) -> None:
    disp = api.actor("disp-1", "dispatcher")
    order = disp.post("/work-orders", booking()).json()
    sign_in(api, "sup-1", "supervisor")
    assert "13800000000" in api.client.get(f"/console/work-orders/{order['id']}").text
    sign_in(api, "analyst-1", "analyst")
    page = api.client.get(f"/console/work-orders/{order['id']}").text
    assert "13800000000" not in page and "138****0000" in page
    exported = api.client.get("/console/audit.csv", params={"aggregate_id": order["id"]}).text
    assert "13800000000" not in exported


def test_operations_what_if_form_shows_actual_candidate_and_difference(api: Api) -> None:
    # The hand-worked history of tests/e2e/test_what_if.py: three routine orders
    # answered at 09:30, 11:30 and 12:30 after a 09:00 booking; a 2-hour routine
    # response breaches two of the three the built-in 4 hours met.
    three_orders(api.app.state.ledger)
    api.catch_up()
    before = api.event_count()
    csrf = sign_in(api, "analyst-1", "analyst")
    page = api.client.get("/console/operations")
    assert 'id="what-if"' in page.text and '<label for="what-if-policy">' in page.text
    form = {"csrf": csrf, "policy": SHORTER, "from": "2026-10-14", "to": "2026-10-14",
            "report": "sla", "group_by": "target"}
    answer = api.client.post("/console/operations/what-if", data=form)
    assert answer.status_code == 200, answer.text
    cells = {
        (key, measure): values
        for key, measure, *values in re.findall(
            r'<tr data-key="([^"]+)" data-measure="([^"]+)">.*?<td class="actual">([^<]*)</td>'
            r'<td class="candidate">([^<]*)</td><td class="difference">([^<]*)</td>',
            answer.text,
        )
    }
    assert cells[("response", "met")] == ["3", "1", "-2"]
    assert cells[("response", "breached")] == ["0", "2", "+2"]
    assert cells[("response", "compliance %")] == ["100.0", "33.33", "-66.67"]
    assert "实际" in answer.text and "候选" in answer.text and "差值" in answer.text
    assert api.event_count() == before  # a replay writes no event

    # Bad input: the page says what is wrong, keeps what was typed, writes nothing.
    bad = api.client.post("/console/operations/what-if",
                          data={**form, "policy": "name = 'x'\n[sla\n"})
    assert bad.status_code == 422 and 'id="what-if-error"' in bad.text
    error = re.search(r'<p class="alert" role="alert" id="what-if-error">([^<]*)</p>', bad.text)
    assert error and error.group(1).startswith("候选策略") and "table declaration" in error.group(1)
    assert 'id="what-if-answer"' not in bad.text and "[sla" in bad.text  # kept in the form
    backwards = api.client.post("/console/operations/what-if",
                                data={**form, "from": "2026-10-15", "to": "2026-10-13"})
    assert backwards.status_code == 422 and "截止: must be after from" in backwards.text
    grouping = api.client.post("/console/operations/what-if",
                               data={**form, "report": "satisfaction", "group_by": "zone"})
    assert grouping.status_code == 422 and "technician, service_type" in grouping.text
    not_a_day = api.client.post("/console/operations/what-if", data={**form, "from": "soon"})
    assert not_a_day.status_code == 422 and "起始:" in not_a_day.text
    forged = api.client.post("/console/operations/what-if", data={**form, "csrf": "forged"})
    assert forged.status_code == 422 and 'id="what-if-answer"' not in forged.text
    assert api.event_count() == before
    # A policy as long as the API takes (200,000 characters) fits the form too.
    long = SHORTER + "\n# " + "x" * (200_000 - len(SHORTER) - 3)
    assert len(long) == 200_000
    assert api.client.post("/console/operations/what-if",
                           data={**form, "policy": long}).status_code == 200
    sign_in(api, "disp-1", "dispatcher")
    assert api.client.post("/console/operations/what-if", data=form).status_code == 403


def test_monthly_supervision_report_page_and_csv(api: Api) -> None:
    # October 2026: three routine orders booked, each answered within the
    # built-in 4-hour response time (tests/e2e/test_what_if.py).
    three_orders(api.app.state.ledger)
    api.catch_up()
    sign_in(api, "sup-1", "supervisor")
    assert 'href="/console/reports/monthly"' in api.client.get("/console/reports").text
    page = api.client.get("/console/reports/monthly", params={"period": "2026-10"})
    assert page.status_code == 200, page.text
    assert re.search(r'<tr data-measure="booked"><th scope="row">[^<]+</th><td>3</td>', page.text)
    response = re.search(
        r'id="monthly-sla-work-orders".*?<tr data-key="response">.*?<td class="met">(\d+)</td>'
        r'<td class="breached">(\d+)</td>', page.text, re.S)
    assert response and response.groups() == ("3", "0")
    assert 'href="/console/reports/monthly.csv?period=2026-10"' in page.text
    download = api.client.get("/console/reports/monthly.csv", params={"period": "2026-10"})
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["section", "key", "measure", "value"]
    assert ["orders", "", "booked", "3"] in rows
    assert ["sla_work_orders", "response", "met", "3"] in rows
    sup = api.actor("sup-2", "supervisor")
    api_csv = sup.client.get("/reports/monthly", params={"period": "2026-10"},
                             headers={**sup.headers, "Accept": "text/csv"})
    assert api_csv.text == download.text  # the same report as the API's
    bad = api.client.get("/console/reports/monthly", params={"period": "2026-13"})
    assert bad.status_code == 422 and 'id="monthly-error"' in bad.text and "2026-13" in bad.text
    assert api.client.get("/console/reports/monthly.csv",
                          params={"period": "soon"}).status_code == 422
    sign_in(api, "disp-1", "dispatcher")  # the reports page, not the supervision report
    assert 'href="/console/reports/monthly"' not in api.client.get("/console/reports").text
    assert api.client.get("/console/reports/monthly").status_code == 403


def test_audit_pages_are_stable_while_events_arrive(api: Api) -> None:
    disp = api.actor("disp-page", "dispatcher")
    for _ in range(53):
        assert disp.post("/work-orders", booking()).status_code == 201
    api.catch_up()
    sign_in(api, "sup-1", "supervisor")

    def positions(html: str) -> list[int]:
        return [int(p) for p in re.findall(r"<tr><td>([0-9]+)</td>", html)]

    first = api.client.get("/console/audit", params={"actor": "disp-page"}).text
    page_one = positions(first)
    assert len(page_one) == 50 and page_one == sorted(page_one, reverse=True)
    # Newer events land on top meanwhile: the next page still starts right
    # below the last row seen, neither repeating nor skipping one.
    for _ in range(3):
        disp.post("/work-orders", booking())
    api.catch_up()
    link = re.search(r'id="next-page" href="([^"]+)"', first)
    assert link is not None
    page_two = positions(api.client.get(link.group(1).replace("&amp;", "&")).text)
    everything = positions(api.client.get("/console/audit", params={"actor": "disp-page"}).text)
    assert len(page_two) == 3 and max(page_two) < min(page_one)
    assert everything[:3] != page_one[:3]  # the three new ones are on top now
    rows = list(csv.DictReader(io.StringIO(api.client.get(
        "/console/audit.csv", params={"actor": "disp-page"}).text)))
    assert sorted(int(r["position"]) for r in rows) == sorted(
        page_one + page_two + everything[:3])


def test_the_monthly_report_is_reused_like_the_reports_figures(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A month's supervision report sums several reports (about 0.6 s at a million
    events): the page and its CSV build it once per month and reuse it (5 minutes
    for a past month), like the reports page's figures; a refused month is not
    kept."""
    from fieldledger.api.console import monthly

    built: list[str | None] = []
    real = monthly.monthly_report

    def counted(*args: object, **kwargs: object) -> object:
        built.append(str(args[2]))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(monthly, "monthly_report", counted)
    api.app.state.console_reused = None  # this app's answers so far are not ours
    three_orders(api.app.state.ledger)
    api.catch_up()
    sign_in(api, "sup-1", "supervisor")
    for path in ("/console/reports/monthly", "/console/reports/monthly.csv") * 2:
        assert api.client.get(path, params={"period": "2026-10"}).status_code == 200
    assert built == ["2026-10"]
    for _ in range(2):
        bad = api.client.get("/console/reports/monthly", params={"period": "2026-13"})
        assert bad.status_code == 422
    assert built == ["2026-10", "2026-13", "2026-13"]
