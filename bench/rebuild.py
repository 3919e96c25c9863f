"""One rebuild measurement in a process of its own (so that `/usr/bin/time -v`
can report its peak resident memory):

    python bench/rebuild.py URL decode        # read and decode every event, nothing else
    python bench/rebuild.py URL decode sla,callbacks   # only the events those views act on
    python bench/rebuild.py URL all           # `fieldledger projections rebuild`, as users get it
                                              # (one process per core by default)
    python bench/rebuild.py URL pass          # every read model, one pass, in this 1 process
    python bench/rebuild.py URL each          # every read model, one after the other
    python bench/rebuild.py URL one NAME      # one read model
    python bench/rebuild.py URL jobs 2        # `fieldledger projections rebuild --jobs 2`

Rebuilds take FIELDLEDGER_REBUILD_BATCH_SIZE events per batch (default 2000,
as the CLI). Under `/usr/bin/time -v`, the peak resident memory of `all` and
`jobs` is that of the largest process (each holds its own batch).

Prints one JSON line: events, seconds, events/s, and (PostgreSQL) the CPU
seconds of the database's backends during the run (`pg_cpu`: each backend
connected to the database, sampled from /proc every 50 ms, its last sample;
Linux, with the server on this machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
from fieldledger.application.ledger import FieldLedger
from fieldledger.domain.policy import builtin_policy
from fieldledger.projections.catalog import READ_MODELS
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


class BackendCpu:
    """The CPU seconds of the PostgreSQL backends serving one database while
    it runs: their pids from pg_stat_activity, their CPU from /proc, each
    sampled every `interval` seconds (a backend's last sample counts: what it
    spent in its last `interval` before exiting is missed; a backend already
    there at the start counts from its first sample)."""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        self.url = url
        self.interval = interval
        self.seen: dict[int, float] = {}
        self.base: dict[int, float] = {}
        self._first = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BackendCpu:
        self._conn = psycopg.connect(self.url, autocommit=True)
        self._own = self._conn.info.backend_pid
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                self._sample()
                return

    def _sample(self) -> None:
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        ).fetchall()
        for (pid,) in rows:
            if pid == self._own:
                continue
            cpu = _cpu_seconds(int(pid))
            if cpu is not None:
                if self._first:
                    self.base[int(pid)] = cpu
                self.seen[int(pid)] = max(cpu, self.seen.get(int(pid), 0.0))
        self._first = False

    @property
    def total(self) -> float:
        return sum(cpu - self.base.get(pid, 0.0) for pid, cpu in self.seen.items())


def _topics(names: list[str]) -> tuple[str, ...]:
    from fieldledger.projections.catalog import topics_for  # not in older code

    settings = ProjectionSettings(builtin_policy(), "Asia/Shanghai")
    models = {m.name: m for m in READ_MODELS}
    return topics_for(models[n](settings) for n in names)


def main() -> None:
    url, mode, *rest = sys.argv[1:]
    ledger = FieldLedger(url)
    try:
        head = ledger.recorder.max_notification_id() or 0
        per_model: dict[str, float] = {}
        backends = BackendCpu(url) if url.startswith("postgres") else None
        with backends or contextlib.nullcontext():
            if mode == "decode":
                started = time.perf_counter()
                position = 0
                # `decode VIEW,VIEW`: only the events of those views' types, as
                # a rebuild process of them reads (catalog.EVENT_TYPES).
                topics = list(_topics(rest[0].split(","))) if rest else []
                while True:
                    batch = ledger.recorder.select_notifications(
                        start=position + 1, limit=500, topics=topics
                    )
                    if not batch:
                        break
                    for n in batch:
                        ledger.mapper.to_domain_event(n)
                    position = batch[-1].id
            else:
                projections = Projections(
                    ledger,
                    READ_MODELS,
                    ProjectionSettings(builtin_policy(), "Asia/Shanghai"),
                    batch_size=int(os.environ.get("FIELDLEDGER_PROJECTION_BATCH_SIZE", "500")),
                    rebuild_batch_size=int(
                        os.environ.get("FIELDLEDGER_REBUILD_BATCH_SIZE", "2000")
                    ),
                )
                started = time.perf_counter()
                if mode in ("all", "jobs"):
                    subprocess.run(
                        [str(Path(sys.executable).with_name("fieldledger")), "projections",
                         "rebuild", *(["--jobs", rest[0]] if mode == "jobs" else [])],
                        env={**os.environ, "FIELDLEDGER_DATABASE_URL": url}, check=True,
                        stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                elif mode == "pass":
                    projections.rebuild_many(list(projections.models))
                elif mode == "each":
                    for name in projections.models:
                        t = time.perf_counter()
                        projections.rebuild(name)
                        per_model[name] = head / (time.perf_counter() - t)
                else:
                    projections.rebuild(rest[0])
            seconds = time.perf_counter() - started
    finally:
        ledger.close()
    pg_cpu = None if backends is None else round(backends.total, 2)
    print(json.dumps({"mode": mode, "events": head, "seconds": seconds, "per_s": head / seconds,
                      "per_model_per_s": per_model, "pg_cpu": pg_cpu}))  # fmt: skip


if __name__ == "__main__":
    main()
