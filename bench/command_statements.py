"""The statements an API worker sends PostgreSQL for each command of the lifecycle.

    python bench/command_statements.py --url postgresql://.../fl_copy [--lifecycles 20]

Turns on `log_statement = 'all'` for the database (`ALTER DATABASE`, undone at
the end), starts the recommended deployment on it (`bench/run_all.serving`:
API workers named `fieldledger api` in pg_stat_activity, one projector),
runs whole lifecycles (`bench/lifecycle.lua`'s commands) one command at a
time with a pause between them, and reads the server's log: every statement
the API workers' backends logged while a command was in flight is that
command's. Prints, per command kind, the statements per command grouped by
what they are (the log's text, literals and parameters aside), and the round
trips: one per simple query (`statement:` lines, however many statements it
holds) and one per extended-protocol execution outside a pipeline (psycopg's
parameterised statements; a pipeline's executions share one). Also the
projector's statements over the same minutes, per command run (one command at
a time: its rounds are smaller than under load).

Needs read access to the server's log (`--log`, default Debian's).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from command_cpu import backends
from command_inprocess import STEPS as INPROCESS_STEPS
from run_all import ADMIN_URL, API_APP, PROJECTOR_APP, fieldledger, serving

# `lifecycle.lua`'s nine commands, each named by its path ("book" for the first).
STEPS = [(path.strip("/") or "book", path, who, body) for path, who, body in INPROCESS_STEPS]
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \w+ \[(\d+)\] (?:\S+ )?(\w+):\s+(.*)$")
SHAPE = [
    (re.compile(r"'[^']*'"), "'…'"),
    (re.compile(r"\$\d+"), "$n"),
    (re.compile(r"\b\d+\b"), "N"),
    (re.compile(r"_g\d+\b"), "_gN"),
]


def shape(statement: str) -> str:
    for pattern, replacement in SHAPE:
        statement = pattern.sub(replacement, statement)
    return " ".join(statement.split())[:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--lifecycles", type=int, default=20)
    parser.add_argument("--log", default="/var/log/postgresql/postgresql-15-main.log")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--customers", choices=("same", "distinct"), default="same",
                        help="book every order for lifecycle.lua's one phone, or each for "
                        "a phone of its own (a new customer: its data key is made)")  # fmt: skip
    args = parser.parse_args()
    database = args.url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" SET log_statement = \'all\'')
    try:
        run(args)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" RESET log_statement')


def run(args: argparse.Namespace) -> None:
    with serving(args.url, args.workers, separate_projector=True) as (base, env):
        tokens = {
            who: fieldledger("token", "issue", "--actor", actor, "--role", role, env=env)
            for who, actor, role in (("disp", "disp-bench", "dispatcher"),
                                     ("tech", "tech-bench", "technician"),
                                     ("app", "app-bench", "client_app"))
        }  # fmt: skip
        client = httpx.Client(base_url=base, timeout=30)

        booked = 0

        def lifecycle(spans: list[tuple[str, float, float]] | None) -> None:
            nonlocal booked
            order = ""
            for kind, path, who, body in STEPS:
                if kind == "book" and args.customers == "distinct":  # a new customer each
                    booked += 1
                    body = {**body, "customer": {**body["customer"], "phone": f"139{booked:08d}"}}
                url = "/work-orders" + (f"/{order}{path}" if order else "")
                time.sleep(0.05)
                started = time.time()
                headers = {"Authorization": f"Bearer {tokens[who]}"}
                answer = client.post(url, json=body, headers=headers)
                ended = time.time()
                answer.raise_for_status()
                if kind == "book":
                    order = answer.json()["id"]
                if spans is not None:
                    spans.append((kind, started, ended))

        for _ in range(3):
            lifecycle(None)
        time.sleep(1)
        offset = Path(args.log).stat().st_size
        spans: list[tuple[str, float, float]] = []
        for _ in range(args.lifecycles):
            lifecycle(spans)
        time.sleep(1)
        found = backends(args.url)
        workers = {pid for pid, app in found.items() if app == API_APP}
        projector = {pid for pid, app in found.items() if app == PROJECTOR_APP}
    with open(args.log, encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        lines = log.read().splitlines()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    trips: Counter[str] = Counter()
    outside = Counter[str]()
    projector_statements = Counter[str]()
    done = Counter(kind for kind, _, _ in spans)
    for line in lines:
        m = LINE.match(line)
        if m is None or m.group(3) != "LOG":
            continue
        text = m.group(4)
        if not (text.startswith("statement:") or text.startswith("execute")):
            continue
        if int(m.group(2)) in projector:
            projector_statements[shape(text)] += 1
            continue
        if int(m.group(2)) not in workers:
            continue
        at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        kind = next((k for k, s, e in spans if s - 0.002 <= at <= e + 0.002), None)
        if kind is None:
            outside[shape(text)] += 1
            continue
        counts[kind][shape(text)] += 1
        trips[kind] += 1
    report = {
        kind: {
            "round_trips_per_command": round(trips[kind] / done[kind], 2),
            "statements": {s: round(n / done[kind], 2) for s, n in counts[kind].most_common()},
        }
        for kind in done
    }
    report["_outside_commands"] = dict(outside.most_common(20))  # type: ignore[assignment]
    # The projector's statements over the same minutes, per command run.
    commands = len(spans)
    report["_projector_per_command"] = {  # type: ignore[assignment]
        s: round(n / commands, 3) for s, n in projector_statements.most_common(25)
    }
    report["_load"] = os.getloadavg()[0]  # type: ignore[assignment]
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
