"""Reports as of an instant against the same reports live, in one process:

    python bench/as_of.py URL [--samples 3]

For appraisal (ranking of a month), satisfaction (summary of a month per
technician), SLA compliance (a month per priority) and the SLA board: the live
answer's latency (the baseline, 20 samples) and the `as_of` answer's (the
instant: when the event halfway through the store was recorded). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fieldledger.api.reading import reading
from fieldledger.application.ledger import FieldLedger
from fieldledger.domain.periods import parse_period
from fieldledger.domain.policy import builtin_policy
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
    return {"p50_ms": statistics.median(seconds) * 1000, "max_ms": seconds[-1] * 1000,
            "samples": samples}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    ledger = FieldLedger(args.url)
    projections = Projections(ledger, READ_MODELS, ProjectionSettings(builtin_policy(), TZ))
    try:
        projections.catch_up_all()
        head = projections.head()
        middle = ledger.recorder.select_notifications(start=head // 2, limit=1)[0]
        instant: datetime = ledger.mapper.to_domain_event(middle).timestamp
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
        result: dict[str, Any] = {"events": head, "as_of": instant.isoformat(),
                                  "as_of_position": projections.position_at(instant)}  # fmt: skip
        for label, (name, query) in reports.items():

            def ask(as_of: datetime | None, name: str = name, query: Any = query) -> None:
                with reading(projections, name, as_of=as_of, min_position=None) as (tx, t, m):
                    query(tx, t, m)

            result[label] = {
                "live": timed(lambda ask=ask: ask(None), 20),
                "as_of": timed(lambda ask=ask: ask(instant), args.samples),
            }
            print(label, json.dumps(result[label]), flush=True)
    finally:
        ledger.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
