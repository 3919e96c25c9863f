"""Where a command's CPU goes, in the recommended deployment.

    python bench/command_cpu.py                 # 15 s of lifecycles, fresh store
    python bench/command_cpu.py --seconds 30 --url postgresql://.../fl_copy

Starts `fieldledger serve --workers 2` (FIELDLEDGER_BACKGROUND=false) and one
`fieldledger projections run` on a fresh database (or `--url`, an existing one;
export the FIELDLEDGER_MASTER_KEY it was written under), warms up, then drives
wrk's lifecycles (`bench/lifecycle.lua`, 16 connections) and reads, before and
after, the CPU time (utime + stime, /proc) of:

- the API workers (the serve process and every process under it),
- the projector process,
- the PostgreSQL backends connected to the database (pg_stat_activity),
  and of those the projector's own (`projector_pg_cpu_ms`: its connections
  are named by `fieldledger projections run`, `run_all.PROJECTOR_APP`),

and the database's commits and rollbacks (pg_stat_database). Prints one JSON
line: commands/s, and per command the CPU milliseconds of each part and the
transactions; and each API worker's resident memory after the run. On a
shared machine the load average is printed beside it: CPU per command is far
steadier under load than the rate is, which is why this probe reports it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_all import (
    PROJECTOR_APP,
    bench_database,
    fieldledger,
    fresh_database,
    serving,
    worker_rss_mb,
    wrk,
)

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 if it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)],
                         capture_output=True, text=True).stdout  # fmt: skip
    return [int(line) for line in out.split()]


def is_projector(pid: int) -> bool:
    """`fieldledger projections run` (not the serve process, nor `ps` itself)."""
    try:
        return b"projections" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def descendants(pid: int) -> list[int]:
    found = children(pid)
    return found + [d for c in found for d in descendants(c)]


def backends(url: str) -> dict[int, str]:
    """The database's client backends (but this one): their `application_name`
    by pid."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, application_name FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}


def projector_backends(found: dict[int, str]) -> list[int]:
    """The separate projector's backends (`run_all.PROJECTOR_APP`)."""
    return [pid for pid, name in found.items() if name == PROJECTOR_APP]


def transactions(url: str) -> tuple[int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def settle(pid: int) -> None:
    """Wait until `pid` has caught up: idle (under 20 ms of CPU in 0.5 s)."""
    last = cpu_seconds(pid)
    for _ in range(120):
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last < 0.02:
            return
        last = now


def profile(into: str, pids: list[int], seconds: int) -> list[subprocess.Popen[bytes]]:
    """Profilers on each of `pids` (the workers, not the serve parent) for the
    run: py-spy (the thread holding the interpreter, every thread apart, the
    process not paused) and `perf record` (CPU samples, kernel and C included)."""
    Path(into).mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    spies = [
        subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(seconds),
                          "--rate", "200", "--gil", "--threads", "--nonblocking",
                          "--format", "raw", "--output", str(Path(into) / f"worker-{pid}.txt")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pid in pids
    ]  # fmt: skip
    perf = subprocess.Popen(
        ["perf", "record", "-q", "-F", "499", "-g", "-p", ",".join(map(str, pids)),
         "-o", str(Path(into) / "perf.data"), "--", "sleep", str(seconds)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return [*spies, perf]


SYSCALLS = ("write", "sendto", "recvfrom", "read", "futex", "epoll_wait", "epoll_pwait", "poll")


def syscalls(pids: list[int], seconds: int) -> subprocess.Popen[str]:
    """`perf stat` counting the workers' system calls and context switches
    for the run (CSV on stderr)."""
    events = ",".join([*(f"syscalls:sys_enter_{name}" for name in SYSCALLS), "context-switches"])
    return subprocess.Popen(
        ["perf", "stat", "-x", ",", "-e", events, "-p", ",".join(map(str, pids)),
         "--", "sleep", str(seconds)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def syscall_counts(csv: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in csv.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("syscalls:sys_enter_") and fields[0].isdigit():
            found[fields[2].removeprefix("syscalls:sys_enter_")] = int(fields[0])
        elif len(fields) > 2 and fields[2] == "context-switches" and fields[0].isdigit():
            found["context_switches"] = int(fields[0])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--warm-up", type=int, default=3)
    parser.add_argument("--url", help="an existing store (default: a fresh database)")
    parser.add_argument("--profile", metavar="DIR",
                        help="also record each API worker with py-spy during the run "
                        "(collapsed stacks, threads apart, idle off) into DIR")  # fmt: skip
    parser.add_argument("--syscalls", action="store_true",
                        help="also count the API workers' system calls per command "
                        "(perf stat on the syscalls tracepoints: writes, futexes, ...) and "
                        "context switches")  # fmt: skip
    args = parser.parse_args()
    url = args.url or fresh_database(bench_database("command_cpu"))
    with serving(url, 2, separate_projector=True) as (base, env):
        server = int(env["FIELDLEDGER_BENCH_SERVER_PID"])
        projector = next(p for p in children(os.getpid()) if is_projector(p))
        disp, tech, app = (
            fieldledger("token", "issue", "--actor", actor, "--role", role, env=env)
            for actor, role in (("disp-bench", "dispatcher"), ("tech-bench", "technician"),
                                ("app-bench", "client_app"))
        )  # fmt: skip
        wrk(base, "lifecycle.lua", args.warm_up, [disp, tech, app])
        settle(projector)
        workers = [server, *descendants(server)]
        # One worker answering /healthz does not mean all have started: on a
        # loaded machine another may still be importing, and its start-up
        # (seconds of CPU) would be counted as the run's.
        for pid in workers:
            settle(pid)
        pg = backends(url)
        before = {
            "api": sum(map(cpu_seconds, workers)),
            "projector": cpu_seconds(projector),
            "postgres": sum(map(cpu_seconds, pg)),
        }
        projector_pg_before = sum(map(cpu_seconds, projector_backends(pg)))
        commits0, rollbacks0 = transactions(url)
        load_before = os.getloadavg()[0]
        spies = profile(args.profile, workers[1:], args.seconds) if args.profile else []
        counting = syscalls(workers[1:], args.seconds) if args.syscalls else None
        run = wrk(base, "lifecycle.lua", args.seconds, [disp, tech, app])
        for spy in spies:
            spy.wait(timeout=60)
        counted = counting.communicate(timeout=60)[1] if counting is not None else ""
        settle(projector)  # the projector's backlog belongs to the run
        pg_after = {**pg, **backends(url)}
        after = {
            "api": sum(map(cpu_seconds, workers)),
            "projector": cpu_seconds(projector),
            # Backends that started during the run count from zero.
            "postgres": sum(map(cpu_seconds, pg_after)),
        }
        projector_pg_after = sum(map(cpu_seconds, projector_backends(pg_after)))
        commits1, rollbacks1 = transactions(url)
        rss = [round(mb, 1) for mb in worker_rss_mb(server)]
    n = max(run["requests"], 1)
    per_command = {f"{k}_cpu_ms": round((after[k] - before[k]) * 1000 / n, 3) for k in after}
    per_command["all_cpu_ms"] = round(sum(per_command.values()), 3)
    # Of the PostgreSQL figure, the projector's own backends' part.
    per_command["projector_pg_cpu_ms"] = round(
        (projector_pg_after - projector_pg_before) * 1000 / n, 3
    )
    print(json.dumps({
        "commands_per_s": run["rps"], "p50_ms": run["p50_ms"], "p99_ms": run["p99_ms"],
        "errors": run["errors"], "commands": run["requests"], **per_command,
        "commits_per_command": round((commits1 - commits0) / n, 2),
        "rollbacks_per_command": round((rollbacks1 - rollbacks0) / n, 2),
        **{f"{name}_per_command": round(count / n, 2)
           for name, count in syscall_counts(counted).items()},
        "worker_rss_mb": rss, "load_average": [load_before, os.getloadavg()[0]],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
