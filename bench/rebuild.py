"""One rebuild measurement in a process of its own (so that `/usr/bin/time -v`
can report its peak resident memory):

    python bench/rebuild.py URL decode        # read and decode every event, nothing else
    python bench/rebuild.py URL all           # `fieldledger projections rebuild`, as users get it
                                              # (one process per core by default)
    python bench/rebuild.py URL pass          # every read model, one pass, in this 1 process
    python bench/rebuild.py URL each          # every read model, one after the other
    python bench/rebuild.py URL one NAME      # one read model
    python bench/rebuild.py URL jobs 2        # `fieldledger projections rebuild --jobs 2`

Rebuilds take FIELDLEDGER_REBUILD_BATCH_SIZE events per batch (default 2000,
as the CLI). Under `/usr/bin/time -v`, the peak resident memory of `all` and
`jobs` is that of the largest process (each holds its own batch).

Prints one JSON line: events, seconds, events/s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fieldledger.application.ledger import FieldLedger
from fieldledger.domain.policy import builtin_policy
from fieldledger.projections.catalog import READ_MODELS
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings


def main() -> None:
    url, mode, *rest = sys.argv[1:]
    ledger = FieldLedger(url)
    try:
        head = ledger.recorder.max_notification_id() or 0
        per_model: dict[str, float] = {}
        if mode == "decode":
            started = time.perf_counter()
            position = 0
            while True:
                batch = ledger.recorder.select_notifications(start=position + 1, limit=500)
                if not batch:
                    break
                for n in batch:
                    ledger.mapper.to_domain_event(n)
                position = batch[-1].id
        else:
            projections = Projections(
                ledger, READ_MODELS, ProjectionSettings(builtin_policy(), "Asia/Shanghai"),
                batch_size=int(os.environ.get("FIELDLEDGER_PROJECTION_BATCH_SIZE", "500")),
                rebuild_batch_size=int(os.environ.get("FIELDLEDGER_REBUILD_BATCH_SIZE", "2000")),
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
    print(json.dumps({"mode": mode, "events": head, "seconds": seconds,
                      "per_s": head / seconds, "per_model_per_s": per_model}))  # fmt: skip


if __name__ == "__main__":
    main()
