"""What tests use to look at read models: every row of a generation, and a
condition awaited (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fieldledger.projections.projector import Projections


def rows_of(projections: Projections, name: str, generation: int) -> dict[str, list[Any]]:
    """Every row of every table of one generation, sorted: for comparing views."""
    out: dict[str, list[Any]] = {}
    tables = projections.tables(name, generation)
    with projections.db.transaction(commit=False) as tx:
        for base, table in tables.names.items():
            rows = tx.query(f"SELECT * FROM {table}")
            out[base] = sorted((tuple(sorted(r.items())) for r in rows), key=repr)
    return out


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a predicate until it holds; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)
