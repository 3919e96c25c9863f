"""Reports as of an instant against the same reports live, in one process:

    python bench/as_of.py URL [--samples 20] [--replay]

For appraisal (ranking of a month), satisfaction (summary of a month per
technician), SLA compliance (a month per priority) and the SLA board: the live
answer's latency (the baseline, 20 samples) and the `as_of` answer's at three
instants (when the events a quarter, half and nine tenths through the store
were recorded), each p50/p99/max over `--samples`. `--replay`: also one answer
by the replay into scratch tables (the way before versioned views), at the
middle instant. A work order as of the middle instant (its own events replayed)
against the same order now. Prints JSON, with the load average before and
after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fieldledger.api.reading import reading
from fieldledger.application.ledger import FieldLedger, NotFound
from fieldledger.domain.periods import parse_period
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections import sla
from fieldledger.projections.catalog import READ_MODELS
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings

TZ = "Asia/Shanghai"


def timed(run: Callable[[], Any], samples: int) -> dict[str, float]:
    seconds = []
    for _ in range(samples):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    p99 = seconds[min(len(seconds) - 1, math.ceil(0.99 * len(seconds)) - 1)]
    return {"p50_ms": round(statistics.median(seconds) * 1000, 1),
            "p99_ms": round(p99 * 1000, 1), "max_ms": round(seconds[-1] * 1000, 1),
            "samples": samples}  # fmt: skip


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--replay", action="store_true")
    args = parser.parse_args()
    ledger = FieldLedger(args.url)
    projections = Projections(ledger, READ_MODELS, ProjectionSettings(builtin_policy(), TZ))
    try:
        # The views measured, brought to the head (one pass when far behind).
        head = projections.head()
        measured = ("appraisal", "satisfaction", "sla")
        behind = [
            n for n in measured
            if projections.position(n, projections.live_generation(n) or 0) < head - 10_000
        ]  # fmt: skip
        if behind:
            started = time.perf_counter()
            projections.rebuild_many(behind)
            print("rebuilt", behind, f"{head / (time.perf_counter() - started):.0f} events/s",
                  load(), flush=True)  # fmt: skip
        for name in measured:
            projections.catch_up(name)
        instants: list[datetime] = []
        for fraction in (0.25, 0.5, 0.9):
            found = ledger.recorder.select_notifications(start=int(head * fraction), limit=1)[0]
            instants.append(ledger.mapper.to_domain_event(found).timestamp)
        instant = instants[1]
        period = parse_period("2026-10")
        start, end = period.starts_at(TZ), period.ends_at(TZ)
        board_at = datetime(2026, 10, 15, 2, tzinfo=UTC)
        now = datetime.now(UTC)
        reports: dict[str, tuple[str, Callable[[Any, Any, Any], Any]]] = {
            "appraisal": ("appraisal", lambda tx, t, m: m.ranking(tx, t, period)),
            "satisfaction": ("satisfaction", lambda tx, t, m: m.summary(
                tx, t, start=start, end=end, group_by="technician")),
            "sla_compliance": ("sla", lambda tx, t, m: sla.compliance(
                tx, t, start=start, end=end, now=now, group_by="priority")),
            "sla_board": ("sla", lambda tx, t, m: sla.board(tx, t, board_at)),
        }  # fmt: skip
        result: dict[str, Any] = {
            "events": head, "load_before": load(),
            "as_of": [i.isoformat() for i in instants],
            "as_of_positions": [projections.position_at(i) for i in instants],
        }  # fmt: skip
        for label, (name, query) in reports.items():

            def ask(as_of: datetime | None, name: str = name, query: Any = query) -> None:
                with reading(projections, name, as_of=as_of, min_position=None) as (tx, t, m):
                    query(tx, t, m)

            ask(instant)  # warm: the first answer plans the views' queries
            result[label] = {"live": timed(lambda ask=ask: ask(None), 20)}
            for i, at in enumerate(instants):
                result[label][f"as_of_{i}"] = timed(lambda ask=ask, at=at: ask(at), args.samples)
            if args.replay:

                def replay(name: str = name, query: Any = query) -> None:
                    with projections.scratch(name, projections.position_at(instant)) as (tx, t):
                        query(tx, t, projections.models[name])

                result[label]["replay"] = timed(replay, 1)
            print(label, json.dumps(result[label]), flush=True)
        orders = [
            n.originator_id
            for n in ledger.recorder.select_notifications(start=head // 2, limit=200)
            if n.topic.endswith("WorkOrder.Booked")
        ]
        # An order that existed at the instant (the generator's writers record
        # their histories side by side, so the first booked one may be younger).
        orders = [o for o in orders if _existed(ledger, o, instant)]
        if orders:
            order = orders[0]
            result["work_order"] = {
                "now": timed(lambda: ledger.get(WorkOrder, order), 20),
                "as_of": timed(lambda: ledger.get_as_of(WorkOrder, order, instant), 20),
            }
            print("work_order", json.dumps(result["work_order"]), flush=True)
        result["load_after"] = load()
    finally:
        ledger.close()
    print(json.dumps(result))


def _existed(ledger: Any, order: Any, instant: datetime) -> bool:
    try:
        ledger.get_as_of(WorkOrder, order, instant)
    except NotFound:
        return False
    return True


if __name__ == "__main__":
    main()
