"""Reports as of a past position, read from the versioned read models (current
rows and their history through temporary views), equal the same reports over a
replay of the events up to that position into scratch tables; on SQLite and
PostgreSQL, at several positions of a generated history, with the live view
built incrementally in small batches (so positions fall inside batches)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fieldledger.domain.periods import parse_period
from fieldledger.projections import sla
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ReadModel, Tables
from fieldledger.projections.versions import VALID_FROM

from tests.integration.conftest import open_world
from tests.integration.field import utc
from tests.integration.histories import History

VERSIONED = ("satisfaction", "appraisal", "sla")
TZ = "Asia/Shanghai"


def table_rows(tx: Any, tables: Tables, model: ReadModel) -> dict[str, list[Any]]:
    """The rows of every table a report may read as of a position (with
    `valid_from`), sorted."""
    out: dict[str, list[Any]] = {}
    for base, columns in {**model.versioned, **model.appended}.items():
        found = tx.query(f"SELECT {', '.join((*columns, VALID_FROM))} FROM {tables[base]}")
        out[base] = sorted((tuple(sorted(r.items())) for r in found), key=repr)
    return out


def reports(tx: Any, tables: Tables, model: Any, name: str, now: datetime) -> Any:
    """The reports each view answers, over the months the history spans."""
    months = ["2026-09", "2026-10", "2026-11"]
    if name == "appraisal":
        return [model.ranking(tx, tables, parse_period(m)) for m in months] + [
            model.ranking(tx, tables, parse_period("2026-Q4"))
        ]
    if name == "satisfaction":
        return [
            model.summary(tx, tables, start=parse_period(m).starts_at(TZ),
                          end=parse_period(m).ends_at(TZ), group_by=g, now=now)
            for m in months for g in ("technician", "service_type")
        ]  # fmt: skip
    boards = [
        sla.board(tx, tables, at)
        for at in (utc("2026-09-25T02:00"), utc("2026-10-08T09:30"), now)
    ]
    compliance = [
        sla.compliance(tx, tables, start=parse_period(m).starts_at(TZ),
                       end=parse_period(m).ends_at(TZ), now=now, group_by=g)
        for m in months for g in ("priority", "technician", "kind")
    ]  # fmt: skip
    return boards, compliance


def check_as_of_equals_replay(url: str, seed: int, steps: int, instants: int) -> None:
    world, ledger = open_world(url, batch_size=7)
    try:
        history = History(world.field, seed, utc("2026-09-20T00:00"))
        projections: Projections = world.projections
        positions: list[int] = []
        for _ in range(instants):
            history.run(steps)
            for name in VERSIONED:
                projections.catch_up(name)
            positions.append(projections.head())
        # Positions inside batches and before any event too.
        positions += [0, positions[0] // 2 + 3, positions[-1] - 5]
        now = history.now
        assert positions[-4] > instants * steps  # a real history was written
        compared = 0
        for name in VERSIONED:
            model = projections.models[name]
            assert model.versioned
            for position in positions:
                with projections.as_of(name, position) as (tx, tables):
                    assert tables.generation > 0  # the live tables, not a replay
                    versioned_rows = table_rows(tx, tables, model)
                    versioned_answer = reports(tx, tables, model, name, now)
                with projections.scratch(name, position) as (tx, tables):
                    assert tables.generation < 0
                    replayed_rows = table_rows(tx, tables, model)
                    replayed_answer = reports(tx, tables, model, name, now)
                assert versioned_rows == replayed_rows, (name, position)
                assert versioned_answer == replayed_answer, (name, position)
                compared += any(versioned_rows.values())
        assert compared >= 3 * (instants + 1)  # most positions saw rows
    finally:
        ledger.close()


@pytest.mark.parametrize("seed", [11, 12])
def test_as_of_equals_a_replay_on_sqlite(sqlite_url: str, seed: int) -> None:
    check_as_of_equals_replay(sqlite_url, seed, steps=70, instants=4)


@pytest.mark.postgres
def test_as_of_equals_a_replay_on_postgres(pg_url: str) -> None:
    check_as_of_equals_replay(pg_url, seed=13, steps=60, instants=4)


def test_a_report_as_of_reads_no_unversioned_table(sqlite_url: str) -> None:
    """The SLA subjects are the handlers' working state, not versioned: as of a
    position they are not offered, so no report can answer from the present."""
    world, ledger = open_world(sqlite_url)
    try:
        History(world.field, 3, utc("2026-09-20T00:00")).run(20)
        with world.projections.as_of("sla", 5) as (_tx, tables):
            with pytest.raises(KeyError):
                tables["sla_subjects"]
            assert "asof_sla_targets" in tables["sla_targets"]
    finally:
        ledger.close()
