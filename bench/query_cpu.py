"""Where a query's time goes: latency and CPU per request of the 1M queries.

    python bench/query_cpu.py URL [--requests 300] [--tree /path/to/other/worktree]

Serves the store at URL (export the FIELDLEDGER_MASTER_KEY it was written
under) with one API worker (`fieldledger serve --workers 1`,
FIELDLEDGER_BACKGROUND=false; no projector: nothing is written), by this
tree's code or `--tree`'s (its `.venv`), so that two versions of the code can
be measured alternately on the same store. For each of `bench/run_all.py
--only queries`' endpoints (`/healthz`, a work order's history, `/audit` by
actor and for one day, `/sla/board`): after 30 warm requests, p50/p99 of
`--requests` sequential requests, and per request the CPU milliseconds
(utime + stime, /proc) of the API worker and of the PostgreSQL backends
connected to the database, and the answer's size. Prints one JSON line with
the load average before and after: on a busy machine CPU per request is far
steadier than latency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from command_cpu import backends, cpu_seconds
from run_all import free_port

HERE = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tree", type=Path, default=HERE)
    args = parser.parse_args()
    n: int = args.requests
    binary = str(args.tree / ".venv" / "bin" / "fieldledger")
    with psycopg.connect(args.url) as conn:
        row = conn.execute(
            "SELECT originator_id FROM fieldledger_events WHERE originator_version = 10 LIMIT 1"
        ).fetchone()
    assert row is not None, "the store has no order with 10 events"
    endpoints = {
        "healthz": ("/healthz", {}),
        "history": (f"/work-orders/{row[0]}/history", {}),
        "audit_by_actor": ("/audit", {"actor": "tech-017"}),
        "audit_by_day": ("/audit", {"from": "2026-06-01T00:00:00+08:00",
                                    "to": "2026-06-02T00:00:00+08:00"}),
        "sla_board": ("/sla/board", {"at": "2026-10-30T10:00:00+08:00",
                                     "status": "red,yellow"}),
    }  # fmt: skip
    port = free_port()
    env = {**os.environ, "FIELDLEDGER_DATABASE_URL": args.url, "FIELDLEDGER_BACKGROUND": "false"}
    server = subprocess.Popen(
        [binary, "serve", "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        token = subprocess.run(
            [binary, "token", "issue", "--actor", "sup-bench", "--role", "supervisor"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        result: dict[str, object] = {"tree": str(args.tree), "load_before": os.getloadavg()[0]}
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for name, (path, params) in endpoints.items():
                for _ in range(30):
                    client.get(path, params=params).raise_for_status()
                pids = list(backends(args.url))
                worker = cpu_seconds(server.pid)
                database = sum(map(cpu_seconds, pids))
                samples = []
                size = 0
                for _ in range(n):
                    started = time.perf_counter()
                    answer = client.get(path, params=params)
                    answer.raise_for_status()
                    samples.append((time.perf_counter() - started) * 1000)
                    size = len(answer.content)
                worker = cpu_seconds(server.pid) - worker
                database = sum(map(cpu_seconds, pids)) - database
                samples.sort()
                result[name] = {
                    "p50_ms": round(statistics.median(samples), 2),
                    "p99_ms": round(samples[int(n * 0.99) - 1], 2),
                    "worker_cpu_ms": round(worker * 1000 / n, 3),
                    "postgres_cpu_ms": round(database * 1000 / n, 3),
                    "bytes": size,
                }
        result["load_after"] = os.getloadavg()[0]
        print(json.dumps(result))
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
