"""The live projector's CPU per event, in rounds as under load, without HTTP.

    python bench/projector_rounds.py --lifecycles 300 --round 250

First (not measured) writes `--lifecycles` work-order lifecycles through
the ledger on a fresh database (the nine commands of `lifecycle.lua`). Then
opens every read model in this process, its connections named by PGAPPNAME,
and brings the live views up in rounds of `--round` events, as the
projector's poll does under load (each round to the head as it stood at its
start), and measures over the rounds this process's CPU and that of its
PostgreSQL backends (/proc, by `application_name` in pg_stat_activity), and
the database's transactions (a read in autocommit is one). Prints one JSON
line: per event and per command, CPU milliseconds of the projector and of
its backends, transactions per round, and the load average. Runs on any
checkout (on one without `BackgroundProjector.round` the round is the views'
catch-ups one after the other, as its poll did): run it with each
checkout's Python, back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from uuid import UUID

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from command_cpu import cpu_seconds, transactions
from command_inprocess import STEPS as LIFECYCLE
from run_all import bench_database, fresh_database

APP = "fieldledger-probe-projector"
#: The lifecycle after the booking, as `command_inprocess.py` posts it.
STEPS = [(path.lstrip("/"), who, body) for path, who, body in LIFECYCLE[1:]]


def write_lifecycles(url: str, n: int) -> int:
    """`n` lifecycles through the ledger; the number of commands."""
    from fieldledger.api.service import open_ledger
    from fieldledger.application.commands import WORK_ORDER
    from fieldledger.application.ledger import Caller
    from fieldledger.application.settings import Settings
    from fieldledger.domain.facts import Role
    from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, Zone

    callers = {
        "disp": Caller("disp-bench", Role.DISPATCHER),
        "tech": Caller("tech-bench", Role.TECHNICIAN),
        "app": Caller("app-bench", Role.CLIENT_APP),
    }
    ledger = open_ledger(Settings(database_url=url), lambda _: None)
    commands = 0
    try:
        for i in range(n):
            booked = ledger.book_work_order(
                callers["disp"], customer=Customer("王先生", f"1380000{i:04d}", "上海"),
                service_type="空调维修", priority=Priority.ROUTINE, zone=Zone.URBAN,
                channel=Channel.PHONE, billing=Billing.PAID, description="不制冷",
            )  # fmt: skip
            order: UUID = booked.id
            for command, who, args in STEPS:
                given = WORK_ORDER[command]  # validated as the API does
                ledger.execute(given, callers[who], order, given.body.model_validate(args))
            commands += 1 + len(STEPS)
    finally:
        ledger.close()
    return commands


def backends(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s",
            (APP,),
        ).fetchall()
    return [int(r[0]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", type=int, default=300)
    parser.add_argument("--round", type=int, default=250, help="events per round")
    args = parser.parse_args()
    url = fresh_database(bench_database("projector_rounds"))
    commands = write_lifecycles(url, args.lifecycles)

    os.environ["PGAPPNAME"] = APP
    from fieldledger.api.service import open_ledger, open_projections
    from fieldledger.application.settings import Settings
    from fieldledger.projections.projector import BackgroundProjector

    settings = Settings(database_url=url)
    ledger = open_ledger(settings, lambda _: None)
    projections = open_projections(settings, ledger)
    projector = BackgroundProjector(projections)
    head = projections.head()
    first = head // 10  # a warm-up: prepared statements, caches, the first rows
    ends = [first, *range(first + args.round, head, args.round), head]

    def round_to(until: int) -> None:
        if hasattr(projector, "round"):
            projector.round(until=until)
        else:  # the poll's body before rounds (each view by itself)
            for name in projections.models:
                projections.catch_up(name, until=until)

    round_to(ends[0])
    pg = backends(url)
    pg_before = sum(map(cpu_seconds, pg))
    commits_before, _ = transactions(url)
    cpu_before = time.process_time()
    load = os.getloadavg()[0]
    for end in ends[1:]:
        round_to(end)
    cpu = time.process_time() - cpu_before
    pg_after = set(pg) | set(backends(url))
    pg_cpu = sum(map(cpu_seconds, pg_after)) - pg_before
    commits_after, _ = transactions(url)
    events = head - ends[0]
    rounds = len(ends) - 1
    assert all(s.position == head for s in projections.status())
    per_command = commands / head  # commands per event
    print(json.dumps({
        "events": events, "rounds": rounds, "events_per_command": round(1 / per_command, 3),
        "projector_ms_per_event": round(cpu * 1000 / events, 4),
        "backends_ms_per_event": round(pg_cpu * 1000 / events, 4),
        "projector_ms_per_command": round(cpu * 1000 / events / per_command, 4),
        "backends_ms_per_command": round(pg_cpu * 1000 / events / per_command, 4),
        "transactions_per_round": round((commits_after - commits_before) / rounds, 2),
        "load_average": [load, os.getloadavg()[0]],
    }))  # fmt: skip
    projections.ledger.close()


if __name__ == "__main__":
    main()
