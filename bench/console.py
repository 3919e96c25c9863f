"""The console's speed on a large store: every page's server time, the board's
first paint in the browser, and a live update's delay after a command.

    .venv/bin/python bench/console.py --events 1000000     # about 15 minutes here
    .venv/bin/python bench/console.py --events 20000       # checks the harness

Each figure is set against a baseline measured in the same run:
- pages: p50/p99 over `--requests` sequential requests on a warm server (the
  deployment of docs/benchmarks.md: one API worker, one projector process),
  against `/healthz` on the same server (the floor of a request) and against the
  API query each page is built on (e.g. /console/board vs /sla/board);
- first paint (Chromium via Playwright): the board's first contentful paint
  against the sign-in page's (no data read);
- live update: from sending a booking over the API until its row is in the
  open board page, against the booking's own answer time.
Targets (issue 16): page p99 <= 300 ms, first paint <= 1 s, live update <= 1 s.
Results go to bench/results/console-*.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run_all import (  # noqa: E402
    RESULTS,
    _wait_caught_up,
    bench_database,
    fieldledger,
    fresh_database,
    generate,
    serving,
)

CHROMIUM = "/usr/bin/chromium"


def timed(client: httpx.Client, path: str, params: dict[str, Any], n: int) -> dict[str, float]:
    for _ in range(10):
        client.get(path, params=params).raise_for_status()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 1),
            "p99_ms": round(samples[max(0, int(len(samples) * 0.99) - 1)], 1)}  # fmt: skip


def board_baselines(api: httpx.Client, n: int) -> dict[str, dict[str, float]]:
    """`/healthz` (the floor of a request) and the API's board now, at a busy
    past instant and mid-history (most targets ever set ended after it)."""
    return {
        "healthz": timed(api, "/healthz", {}, n),
        "api_sla_board": timed(api, "/sla/board", {}, n),
        "api_sla_board_as_of": timed(api, "/sla/board", {"at": "2026-10-30T10:00:00+08:00"}, n),
        "api_sla_board_as_of_mid": timed(
            api, "/sla/board", {"at": "2026-04-15T10:00:00+08:00"}, n
        ),
    }


def ids(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        order = conn.execute(
            "SELECT originator_id FROM fieldledger_events WHERE originator_version = 10 LIMIT 1"
        ).fetchone()
        complaint = conn.execute(
            "SELECT originator_id FROM fieldledger_events WHERE topic LIKE '%Complaint.Lodged' "
            "LIMIT 1"
        ).fetchone()
    assert order is not None and complaint is not None
    return {"order": str(order[0]), "complaint": str(complaint[0])}


def _wait_for_sla_view(client: httpx.Client, seconds: float = 300) -> None:
    """Until the SLA view (what the board reads) has no lag: the other views may
    still be digesting the sweep's writes, which on a large generated store go
    on for minutes, so that all of them are rarely at lag 0 at once."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.get("/projections").json()["projections"]
        if any(p["name"] == "sla" and p["lag"] == 0 for p in status):
            return
        time.sleep(0.2)
    raise RuntimeError("the SLA view did not catch up")


def browser_figures(base: str, token: str, api_token: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    paint = "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(base + "/console/sign-in")
        page.wait_for_function(paint + " >= 0")
        sign_in_paint = float(page.evaluate(paint))
        page.fill("#token", token)
        page.click("form.stack button")
        page.wait_for_selector("#board")
        board_paints = []
        for _ in range(5):
            page.goto(base + "/console/board")
            page.wait_for_selector("#board-rows")
            page.wait_for_function(paint + " >= 0")
            board_paints.append(float(page.evaluate(paint)))
        page.wait_for_timeout(500)  # the stream is open
        delays, answers = [], []
        with httpx.Client(base_url=base, timeout=30,
                          headers={"Authorization": f"Bearer {api_token}"}) as api:  # fmt: skip
            for _ in range(5):
                # Measure the live path, not a backlog: on a freshly served store
                # the projector process's first sweep records thousands of
                # reminders and escalations, which the views digest first.
                with httpx.Client(base_url=base, timeout=60,
                                  headers={"Authorization": f"Bearer {token}"}) as sup:  # fmt: skip
                    _wait_for_sla_view(sup)
                body = {"customer": {"name": "b", "phone": "1", "address": "a"},
                        "service_type": "bench", "priority": "urgent", "zone": "urban",
                        "channel": "phone", "billing": "paid", "description": "bench"}  # fmt: skip
                started = time.perf_counter()
                answer = api.post("/work-orders", json=body)
                answers.append((time.perf_counter() - started) * 1000)
                order = answer.json()["id"]
                page.wait_for_selector(f'#board-rows tr[data-key^="{order}"]', timeout=30000)
                delays.append((time.perf_counter() - started) * 1000)
        browser.close()
    return {
        "sign_in_first_paint_ms": round(sign_in_paint, 1),
        "board_first_paint_ms": round(statistics.median(board_paints), 1),
        "live_update_ms": round(statistics.median(delays), 1),
        "command_answer_ms": round(statistics.median(answers), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--reuse", action="store_true",
                        help="use the database of an earlier run of this size as it is")
    parser.add_argument("--board-only", action="store_true",
                        help="with --reuse: only the board (pages and API), once the SLA view "
                             "is current; no projector, no browser")  # fmt: skip
    args = parser.parse_args()
    if args.board_only:
        board_only(args)
        return
    name = bench_database(f"console_{args.events}")
    report: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "events": args.events}
    if args.reuse:
        from run_all import db_url

        url = db_url(name)
    else:
        url = fresh_database(name)
        report["generate_per_s"] = generate(url, args.events)
    found = ids(url)
    month = "2026-10"
    with serving(url, 1, separate_projector=True) as (base, env):
        token = fieldledger("token", "issue", "--actor", "sup-bench", "--role", "supervisor",
                            env=env)  # fmt: skip
        analyst = fieldledger("token", "issue", "--actor", "an-bench", "--role", "analyst",
                              env=env)  # fmt: skip
        dispatcher = fieldledger("token", "issue", "--actor", "disp-bench", "--role",
                                 "dispatcher", env=env)  # fmt: skip
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as api:  # fmt: skip
            started = time.perf_counter()
            _wait_caught_up(api)
            report["catch_up_s"] = round(time.perf_counter() - started, 1)
            # Views kept by the projector (not rebuilt) get planner statistics only
            # when autovacuum comes round; do what it would, so that every run
            # measures the same plans (a rebuild ANALYZEs its tables itself).
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")
            n = args.requests
            baselines = {
                **board_baselines(api, n),
                "api_history": timed(api, f"/work-orders/{found['order']}/history", {}, n),
                "api_audit": timed(api, "/audit", {"actor": "tech-017"}, n),
                "api_ranking": timed(api, "/appraisal", {"period": month}, n),
                "api_monthly_report": timed(api, "/reports/monthly", {"period": month}, n),
            }
        pages: dict[str, dict[str, float]] = {}
        for who, tok, paths in (
            ("supervisor", token, {
                "board": ("/console/board", {}),
                "board_red_urban": ("/console/board", {"status": "red", "zone": "urban"}),
                "board_as_of": ("/console/board", {"at": "2026-10-30T10:00:00"}),
                "board_as_of_mid": ("/console/board", {"at": "2026-04-15T10:00:00"}),
                "work_order": (f"/console/work-orders/{found['order']}", {}),
                "complaint": (f"/console/complaints/{found['complaint']}", {}),
                "audit": ("/console/audit", {}),
                "audit_by_actor": ("/console/audit", {"actor": "tech-017"}),
                "appraisal": ("/console/appraisal", {"period": month}),
                "staff": ("/console/appraisal/tech-017", {"period": month}),
                "reports": ("/console/reports", {}),
                "monthly_report": ("/console/reports/monthly", {"period": month}),
            }),
            ("analyst", analyst, {"operations": ("/console/operations", {})}),
        ):  # fmt: skip
            with httpx.Client(base_url=base, timeout=60) as browser_like:
                form = browser_like.get("/console/sign-in").text
                csrf = form.split('name="csrf" value="')[1].split('"')[0]
                r = browser_like.post("/console/sign-in", data={"token": tok, "csrf": csrf})
                assert r.status_code in (200, 303), r.text
                for key, (path, params) in paths.items():
                    pages[key] = timed(browser_like, path, params, n)
                    print(who, key, pages[key], flush=True)
        report["baselines"] = baselines
        report["pages"] = pages
        report["worst_page_p99_ms"] = max(p["p99_ms"] for p in pages.values())
        report["worst_page_p99_vs_healthz"] = round(
            report["worst_page_p99_ms"] / max(0.1, baselines["healthz"]["p99_ms"]), 1
        )
        report["browser"] = browser_figures(base, token, dispatcher)
    print(json.dumps(report, indent=1))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"console-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"written {out}")


def board_only(args: argparse.Namespace) -> None:
    """The board alone: /sla/board now, at a busy past instant and mid-history, and
    the console's board pages, against /healthz; served without background work
    (nothing else loads the machine), on a store whose SLA view is current."""
    import os

    from run_all import db_url

    url = db_url(bench_database(f"console_{args.events}"))
    os.environ["FIELDLEDGER_BACKGROUND"] = "false"
    report: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "events": args.events,
                              "board_only": True}  # fmt: skip
    with serving(url, 1) as (base, env):
        token = fieldledger("token", "issue", "--actor", "sup-bench", "--role", "supervisor",
                            env=env)  # fmt: skip
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as api:  # fmt: skip
            sla = next(p for p in api.get("/projections").json()["projections"]
                       if p["name"] == "sla")  # fmt: skip
            assert sla["lag"] == 0, sla
            n = args.requests
            report["baselines"] = board_baselines(api, n)
            print(report["baselines"], flush=True)
        with httpx.Client(base_url=base, timeout=60) as browser_like:
            form = browser_like.get("/console/sign-in").text
            csrf = form.split('name="csrf" value="')[1].split('"')[0]
            r = browser_like.post("/console/sign-in", data={"token": token, "csrf": csrf})
            assert r.status_code in (200, 303), r.text
            report["pages"] = {
                key: timed(browser_like, "/console/board", params, args.requests)
                for key, params in (
                    ("board", {}),
                    ("board_red_urban", {"status": "red", "zone": "urban"}),
                    ("board_as_of", {"at": "2026-10-30T10:00:00"}),
                    ("board_as_of_mid", {"at": "2026-04-15T10:00:00"}),
                )
            }  # fmt: skip
    print(json.dumps(report, indent=1))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"console-board-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
