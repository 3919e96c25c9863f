"""Several processes starting at once on one PostgreSQL (`serve --workers N`)
create their tables without tripping over each other."""

from __future__ import annotations

import threading

import pytest
from fieldledger.application.database import Database
from fieldledger.application.event_store import schema_lock
from fieldledger.application.ledger import FieldLedger
from fieldledger.application.tokens import TokenBook
from fieldledger.domain.policy import builtin_policy
from fieldledger.projections.catalog import READ_MODELS
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings


@pytest.mark.postgres
def test_workers_starting_at_once_on_a_fresh_schema_all_start(pg_url: str) -> None:
    starters = 4
    barrier = threading.Barrier(starters)
    errors: list[BaseException] = []
    opened: list[FieldLedger] = []

    def start() -> None:
        barrier.wait()
        try:
            with schema_lock(pg_url):
                ledger = FieldLedger(pg_url)
                TokenBook(Database(ledger.recorder))
                Projections(
                    ledger, READ_MODELS, ProjectionSettings(builtin_policy(), "Asia/Shanghai")
                )
            opened.append(ledger)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for ledger in opened:
        ledger.close()
    assert errors == []
    assert len(opened) == starters
