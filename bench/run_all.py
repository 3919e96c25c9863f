"""Reproduce docs/benchmarks.md: every figure against a baseline in the same run.

    bench/run_all            # the whole table (about 15-20 minutes on 2 cores)
    bench/run_all --quick    # small sizes, to check the harness (a minute or two)

Phases (each also runnable alone: --only commands|rebuild|as_of|queries):
- commands: `fieldledger serve` on PostgreSQL driven by wrk (16 clients running
  whole lifecycles) vs pgbench's one-row INSERT at the same concurrency, and the
  client's own ceiling against /healthz;
- rebuild: all projections from zero in one pass (and, at the smaller size, one
  after the other) vs reading and decoding the same events; peak memory of each;
- as_of: the reports as of an instant vs the same reports live (smaller size);
- queries: p50/p99 of /history, /audit by actor and by day, /sla/board, warm,
  beside /healthz on the same server (the baseline) and the load average.
Sizes: 100k and 1M events (scaling), 1 and 2 API workers.

`--database URL` measures an existing store instead of generating one (its read
models are brought up to date first; export the FIELDLEDGER_MASTER_KEY it was
written under):

    bench/run_all --only queries --database postgresql://postgres@127.0.0.1/fl_gen_copy
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VENV_BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get(
    "FIELDLEDGER_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
CLIENTS = 16
EXTERNAL_ENVIRON = dict(os.environ)  # before the run's own master key below
# The run's databases are fresh: a fresh master key for them (docs/privacy.md),
# inherited by every process the run starts (serve, projector, generator, CLI).
os.environ.setdefault(
    "FIELDLEDGER_MASTER_KEY", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
)


def db_url(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


# Benchmark databases are named `<prefix>_<phase>`; set FIELDLEDGER_BENCH_PREFIX
# so that two benchmark runs at once (two checkouts) never drop each other's.
BENCH_PREFIX = os.environ.get("FIELDLEDGER_BENCH_PREFIX", "fl_bench")


def bench_database(phase: str) -> str:
    """The name of this run's database for one phase."""
    return f"{BENCH_PREFIX}_{phase}"


def fresh_database(name: str) -> str:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return db_url(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fieldledger(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [str(VENV_BIN / "fieldledger"), *args], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def worker_rss_mb(parent: int) -> list[float]:
    """Resident memory of each process under `parent` (uvicorn's workers), in MB."""
    out = subprocess.run(["ps", "-o", "pid=,rss=", "--ppid", str(parent)],
                         capture_output=True, text=True).stdout  # fmt: skip
    sizes = [int(line.split()[1]) / 1024 for line in out.splitlines() if line.strip()]
    if not sizes:  # one worker: uvicorn serves in the process itself
        own = Path(f"/proc/{parent}/status").read_text()
        found = re.search(r"VmRSS:\s+(\d+) kB", own)
        sizes = [int(found.group(1)) / 1024] if found else []
    return sizes


@contextmanager
def bare_serving(workers: int) -> Iterator[str]:
    """The baseline: `bench/bare_app.py` (one `async def` endpoint) on uvicorn."""
    port = free_port()
    proc = subprocess.Popen(
        # uvicorn's defaults, but for the access log: off, as `fieldledger serve`
        # runs by default (README, "Running it in production").
        [str(VENV_BIN / "uvicorn"), "bare_app:app", "--app-dir", str(BENCH), "--port",
         str(port), "--workers", str(workers), "--no-access-log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _wait_until_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    # Two workers and a projector importing at load 14 took over a minute.
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"the server for {base} did not start")
        time.sleep(0.2)


#: The `application_name` of the separate projector's connections.
#: How `fieldledger serve` and `fieldledger projections run` name their
#: connections in pg_stat_activity (`cli.name_connections`): a probe tells the
#: projector's backends from the workers' by them.
API_APP = "fieldledger api"
PROJECTOR_APP = "fieldledger projector"


@contextmanager
def serving(
    url: str, workers: int, separate_projector: bool = False
) -> Iterator[tuple[str, dict[str, str]]]:
    """`fieldledger serve` on `url`; with `separate_projector`, the deployment the
    docs recommend: API workers without background threads
    (FIELDLEDGER_BACKGROUND=false) and one `fieldledger projections run`."""
    port = free_port()
    # Without PGAPPNAME, so that each process names its connections itself.
    env = {**{k: v for k, v in os.environ.items() if k != "PGAPPNAME"},
           "FIELDLEDGER_DATABASE_URL": url}
    serve_env = {**env, "FIELDLEDGER_BACKGROUND": "false"} if separate_projector else env
    procs = [
        subprocess.Popen(
            [str(VENV_BIN / "fieldledger"), "serve", "--port", str(port),
             "--workers", str(workers)],
            env=serve_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    if separate_projector:
        procs.append(
            subprocess.Popen(
                [str(VENV_BIN / "fieldledger"), "projections", "run"],
                env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, procs[0])
        env["FIELDLEDGER_BENCH_SERVER_PID"] = str(procs[0].pid)
        yield base, env
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def wrk(base: str, script: str, seconds: int, args: list[str]) -> dict[str, float]:
    cmd = ["wrk", f"-t{CLIENTS}", f"-c{CLIENTS}", f"-d{seconds}s", "--latency", "-s",
           str(BENCH / script), base, "--", *args]  # fmt: skip
    out = subprocess.run(
        cmd, check=True, capture_output=True, text=True, timeout=seconds + 60
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if m is None:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99"), "requests": total,
            "errors": int(non2xx.group(1)) if non2xx else 0}  # fmt: skip


def pgbench_insert(seconds: int) -> float:
    url = fresh_database(bench_database("pgbench"))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_insert (id bigserial PRIMARY KEY, payload text)")
    out = subprocess.run(
        ["pgbench", "-n", "-c", str(CLIENTS), "-j", "2", "-T", str(seconds), "-f",
         str(BENCH / "insert.sql"), url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]


#: (API workers, projector in a process of its own): every deployment measured;
#: `--deployments recommended` measures the last one only.
DEPLOYMENTS = ((1, False), (2, False), (1, True), (2, True))


def load_average() -> float:
    return os.getloadavg()[0]


def phase_commands(seconds: int, deployments: str = "all") -> dict[str, Any]:
    """Each figure beside its baselines of the same run: the bare endpoint on the
    same worker count (which is also the client's own ceiling here: wrk, the
    server and PostgreSQL share the cores) and pgbench's one-row INSERT."""
    result: dict[str, Any] = {"load_average_before": load_average(),
                              "pgbench_insert_tps": pgbench_insert(seconds), "runs": {},
                              "bare": {}}  # fmt: skip
    chosen = DEPLOYMENTS if deployments == "all" else DEPLOYMENTS[-1:]
    for workers in sorted({1, *(w for w, _ in chosen)}):
        with bare_serving(workers) as base:
            result["bare"][workers] = wrk(base, "trivial.lua", max(5, seconds // 2), [])
    # /healthz against the bare endpoint, both on one worker (no projector thread).
    url = fresh_database(bench_database("commands"))
    with serving(url, 1, separate_projector=True) as (base, _env):
        healthz_1 = wrk(base, "trivial.lua", max(5, seconds // 2), [])
    bare_1 = result["bare"][1]["rps"]
    result["healthz_1_worker"] = {**healthz_1, "vs_bare": healthz_1["rps"] / bare_1,
                                  "load_average": load_average()}  # fmt: skip
    print("healthz, 1 worker", json.dumps(result["healthz_1_worker"]), flush=True)
    for workers, separate in chosen:
        url = fresh_database(bench_database("commands"))
        with serving(url, workers, separate_projector=separate) as (base, env):
            disp, tech, app = (
                fieldledger("token", "issue", "--actor", actor, "--role", role, env=env)
                for actor, role in (("disp-bench", "dispatcher"), ("tech-bench", "technician"),
                                    ("app-bench", "client_app"))
            )  # fmt: skip
            healthz = wrk(base, "trivial.lua", max(5, seconds // 2), [])
            commands = wrk(base, "lifecycle.lua", seconds, [disp, tech, app])
            rss = worker_rss_mb(int(env["FIELDLEDGER_BENCH_SERVER_PID"]))
        label = f"{workers} worker{'s' if workers > 1 else ''}" + (
            " + projector process" if separate else " (projector in process)"
        )
        bare = result["bare"][workers]["rps"]
        result["runs"][label] = {
            "healthz": healthz, "commands": commands, "worker_rss_mb": rss,
            "commands_vs_bare": commands["rps"] / bare,
            "healthz_vs_bare": healthz["rps"] / bare,
            "commands_vs_pgbench": commands["rps"] / result["pgbench_insert_tps"],
            "load_average": load_average(),
        }  # fmt: skip
        print(label, json.dumps(result["runs"][label]), flush=True)
    return result


def measured(*args: str) -> dict[str, Any]:
    """One `bench/rebuild.py` or `bench/as_of.py` run in a process of its own,
    under `/usr/bin/time -v` for its peak resident memory."""
    out = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    result["peak_rss_mb"] = int(rss.group(1)) / 1024 if rss else None
    return result


def phase_rebuild(url: str, each: bool) -> dict[str, Any]:
    """Read-and-decode (the baseline), then every view rebuilt as users get it
    (`fieldledger projections rebuild`: one process per core by default) and in
    one pass by one process; with `each`, also one view after the other (the
    old way)."""
    script = str(BENCH / "rebuild.py")
    decode = measured(script, url, "decode")
    default = measured(script, url, "all")
    result = {"events": decode["events"], "read_decode_per_s": decode["per_s"],
              "rebuild_all_per_s": default["per_s"],
              "rebuild_all_ratio": default["per_s"] / decode["per_s"],
              "rebuild_peak_rss_mb": default["peak_rss_mb"],
              "decode_peak_rss_mb": decode["peak_rss_mb"]}  # fmt: skip
    one = measured(script, url, "pass")
    result["rebuild_one_process_per_s"] = one["per_s"]
    result["rebuild_one_process_ratio"] = one["per_s"] / decode["per_s"]
    result["rebuild_one_process_peak_rss_mb"] = one["peak_rss_mb"]
    if each:
        serial = measured(script, url, "each")
        result["rebuild_each_per_s"] = serial["per_s"]
        result["per_model_per_s"] = serial["per_model_per_s"]
    return result


def phase_as_of(url: str, samples: int) -> dict[str, Any]:
    return measured(str(BENCH / "as_of.py"), url, "--samples", str(samples))


def latencies(client: httpx.Client, path: str, params: dict[str, Any], n: int) -> dict[str, float]:
    for _ in range(20):  # warm
        client.get(path, params=params).raise_for_status()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return {"p50_ms": statistics.median(samples), "p99_ms": samples[int(len(samples) * 0.99) - 1]}


def phase_queries(url: str, n: int) -> dict[str, Any]:
    """p50/p99 of the supervisors' queries against a warm service."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT originator_id FROM fieldledger_events WHERE originator_version = 10 LIMIT 1"
        ).fetchone()
    assert row is not None, "the generated store has no order with 10 events"
    order_id = row[0]
    board = {"at": "2026-10-30T10:00:00+08:00", "status": "red,yellow"}
    one_day = {"from": "2026-06-01T00:00:00+08:00", "to": "2026-06-02T00:00:00+08:00"}
    with serving(url, 1, separate_projector=True) as (base, env):
        token = fieldledger(
            "token", "issue", "--actor", "sup-bench", "--role", "supervisor", env=env
        )
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            _wait_caught_up(client)
            load_before = load_average()
            result = {
                # The baseline: the same server's cheapest answer, same client.
                "healthz": latencies(client, "/healthz", {}, n),
                "history": latencies(client, f"/work-orders/{order_id}/history", {}, n),
                "audit_by_actor": latencies(client, "/audit", {"actor": "tech-017"}, n),
                "audit_by_day": latencies(client, "/audit", one_day, n),
                "sla_board": latencies(client, "/sla/board", board, n),
            }
            result["loadavg"] = {"before": load_before, "after": load_average()}
            # Memory at this store's size: the worker after 2,500 queries of it.
            result["worker_rss_mb"] = worker_rss_mb(int(env["FIELDLEDGER_BENCH_SERVER_PID"]))
            return result


def _wait_caught_up(client: httpx.Client) -> None:
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        status = client.get("/projections").json()["projections"]
        if all(p["lag"] == 0 for p in status):
            return
        time.sleep(1)
    raise RuntimeError("projections did not catch up")


def generate(url: str, events: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(BENCH / "generate.py"), "--events", str(events),
                    "--database-url", url], check=True)  # fmt: skip
    return events / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["commands", "rebuild", "as_of", "queries"])
    parser.add_argument("--deployments", choices=["all", "recommended"], default="all",
                        help="commands: every deployment, or only the recommended one")
    parser.add_argument("--sizes", help="comma-separated event counts (default 100k,1M)")
    parser.add_argument("--database", metavar="URL",
                        help="measure this existing store (rebuild, as_of, queries) instead "
                        "of generating one per size; FIELDLEDGER_MASTER_KEY must be its key")
    args = parser.parse_args()
    if args.database:
        if "FIELDLEDGER_MASTER_KEY" not in EXTERNAL_ENVIRON:
            sys.exit("--database: export the FIELDLEDGER_MASTER_KEY the store was written under")
        if args.only in (None, "commands"):
            sys.exit("--database: name a phase that reads a store (--only rebuild|as_of|queries)")
    if shutil.which("wrk") is None or shutil.which("pgbench") is None:
        sys.exit("bench needs wrk and pgbench (bench/run_all installs them)")
    sizes = [5_000, 20_000] if args.quick else [100_000, 1_000_000]
    if args.sizes:
        sizes = [int(n) for n in args.sizes.split(",")]
    seconds = 5 if args.quick else 20
    n = 100 if args.quick else 500
    report: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "sizes": {}}
    if args.only in (None, "commands"):
        report["commands"] = phase_commands(seconds, args.deployments)
        print(json.dumps(report["commands"], indent=1), flush=True)
    for size in sizes if args.only != "commands" else []:
        if args.database:
            url, size = args.database, 0  # one existing store, reported as size 0
            entry: dict[str, Any] = {"database": args.database}
        else:
            url = fresh_database(bench_database(str(size)))
            entry = {"generate_per_s": generate(url, size)}
        if args.only in (None, "rebuild"):
            entry["rebuild"] = phase_rebuild(url, each=size == sizes[0])
        if args.only in (None, "as_of") and (args.database or size == sizes[0]):
            # Linear in the events replayed: measured at the smaller size only.
            entry["as_of"] = phase_as_of(url, 3)
        if args.only in (None, "queries"):
            entry["queries"] = phase_queries(url, n)
        report["sizes"][size] = entry
        print(json.dumps({size: entry}, indent=1), flush=True)
        if args.database:
            break
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
