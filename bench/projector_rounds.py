"""The live projector's CPU per event, in rounds as under load, without HTTP.

    python bench/projector_rounds.py --lifecycles 300 --round 250
    python bench/projector_rounds.py --lifecycles 3000 --together 64 --template fl_tpl

First (not measured) writes `--lifecycles` work-order lifecycles through
the ledger on a fresh database (the nine commands of `lifecycle.lua`;
`--together N`: N orders at a time, their commands taking turns, as wrk's
connections do, so an order's events fall in different rounds). With
`--template NAME` the written database is kept as that template and copied,
not written again, by the next run that names it (two checkouts then feed
the very same events; drop it when done). Then
opens every read model in this process, its connections named by PGAPPNAME,
and brings the live views up in rounds of `--round` events, as the
projector's poll does under load (each round to the head as it stood at its
start), and measures over the rounds this process's CPU and that of its
PostgreSQL backends (/proc, by `application_name` in pg_stat_activity), and
the database's transactions (a read in autocommit is one). Prints one JSON
line: per event and per command, CPU milliseconds of the projector and of
its backends, transactions per round, the waits per round of this process
and of its backends (voluntary context switches: about one per round trip
on each side), and the load average. Runs on any
checkout (on one without `BackgroundProjector.round` the round is the views'
catch-ups one after the other, as its poll did): run it with each
checkout's Python, back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from command_cpu import backends, cpu_seconds, transactions
from command_inprocess import STEPS as LIFECYCLE
from run_all import ADMIN_URL, bench_database, db_url, fresh_database

APP = "fieldledger-probe-projector"
#: The lifecycle after the booking, as `command_inprocess.py` posts it.
STEPS = [(path.lstrip("/"), who, body) for path, who, body in LIFECYCLE[1:]]


def write_lifecycles(url: str, n: int, together: int = 1) -> int:
    """`n` lifecycles through the ledger, `together` at a time (their commands
    taking turns, as wrk's connections do: an order's events then fall in
    different rounds); the number of commands."""
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
        for first in range(0, n, together):
            orders: list[UUID] = []
            for i in range(first, min(n, first + together)):
                booked = ledger.book_work_order(
                    callers["disp"], customer=Customer("王先生", f"1380000{i:04d}", "上海"),
                    service_type="空调维修", priority=Priority.ROUTINE, zone=Zone.URBAN,
                    channel=Channel.PHONE, billing=Billing.PAID, description="不制冷",
                )  # fmt: skip
                orders.append(booked.id)
            for command, who, args in STEPS:
                given = WORK_ORDER[command]  # validated as the API does
                for order in orders:
                    ledger.execute(given, callers[who], order, given.body.model_validate(args))
            commands += len(orders) * (1 + len(STEPS))
    finally:
        ledger.close()
    return commands


def from_template(name: str, template: str) -> tuple[str, int] | None:
    """A copy of the database `template` as `name`: its URL and the number of
    commands written to it; None when there is no such template yet."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        found = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (template,),
        ).fetchone()
        if found is None:
            return None
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return db_url(name), int(found[0])


def save_template(name: str, template: str, commands: int) -> None:
    """Keep the database `name` as written, as `template` (its commands in its comment)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{template}" TEMPLATE "{name}"')
        conn.execute(f"COMMENT ON DATABASE \"{template}\" IS '{commands}'")


def probe_backends(url: str) -> list[int]:
    """This process's backends (named APP)."""
    return [pid for pid, name in backends(url).items() if name == APP]


def waits(pid: int | str) -> int:
    """Voluntary context switches of a process so far (/proc/PID/status): a
    wait for the other side's answer is one (a round trip costs one on each
    side); 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", type=int, default=300)
    parser.add_argument("--round", type=int, default=250, help="events per round")
    parser.add_argument(
        "--together", type=int, default=1,
        help="lifecycles written at a time, their commands taking turns (default 1: one"
        " after the other, an order's nine events in one round)",
    )  # fmt: skip
    parser.add_argument(
        "--template",
        help="a database holding the written lifecycles: copied when it exists (the"
        " writing skipped, `--lifecycles` ignored), else saved as it after writing",
    )
    parser.add_argument("--profile", help="write a cProfile of the rounds to this file")
    parser.add_argument(
        "--callgrind", action="store_true",
        help="run under `valgrind --tool=callgrind --instr-atstart=no`: this process's"
        " instructions are counted for the measured rounds only (steady however busy"
        " the machine is; callgrind_annotate the output file, divide by events)",
    )  # fmt: skip
    args = parser.parse_args()
    name = bench_database("projector_rounds")
    copied = from_template(name, args.template) if args.template else None
    if copied is None:
        url = fresh_database(name)
        commands = write_lifecycles(url, args.lifecycles, args.together)
        if args.template:
            save_template(name, args.template, commands)
    else:
        url, commands = copied

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
    pg = probe_backends(url)
    pg_before = sum(map(cpu_seconds, pg))
    pg_waits_before = sum(map(waits, pg))
    waits_before = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
    commits_before, _ = transactions(url)
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile(time.process_time)  # CPU, not waiting
        profile.enable()
    if args.callgrind:
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True,
                       capture_output=True)  # fmt: skip
    cpu_before = time.process_time()
    load = os.getloadavg()[0]
    for end in ends[1:]:
        round_to(end)
    cpu = time.process_time() - cpu_before
    if args.callgrind:
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True,
                       capture_output=True)  # fmt: skip
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    pg_after = set(pg) | set(probe_backends(url))
    pg_cpu = sum(map(cpu_seconds, pg_after)) - pg_before
    own_waits = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - waits_before
    pg_waits = sum(map(waits, pg_after)) - pg_waits_before
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
        # Round trips, roughly: a wait for an answer is a voluntary context
        # switch (of this process's threads: the rounds run in the main one).
        "waits_per_round": round(own_waits / rounds, 1),
        "backend_waits_per_round": round(pg_waits / rounds, 1),
        "load_average": [load, os.getloadavg()[0]],
    }))  # fmt: skip
    projections.ledger.close()


if __name__ == "__main__":
    main()
