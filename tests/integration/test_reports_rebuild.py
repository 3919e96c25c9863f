"""Satisfaction, appraisal and callbacks: a rebuild from zero equals the view built
incrementally, batch by batch, while the history was being written; and a
scratch generation at a past position equals the view as it was there; and
every view rebuilt in one pass (or shared out between two processes) equals
its incremental view."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fieldledger.api.cli import share_out
from fieldledger.application.database import Tx
from fieldledger.projections.batches import Target
from fieldledger.projections.catalog import EVENT_TYPES, READ_MODELS, topics_for
from fieldledger.projections.projector import BackgroundProjector, Projections, RebuildSuperseded
from fieldledger.projections.read_model import Tables

from tests.integration.conftest import open_world
from tests.integration.field import utc
from tests.integration.histories import History
from tests.views import rows_of

READ_MODEL_NAMES = tuple(m.name for m in READ_MODELS)

REPORTS = ("satisfaction", "appraisal", "callbacks", "reports")


def rows(tx: Tx, tables: Tables) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for base, table in tables.names.items():
        found = tx.query(f"SELECT * FROM {table}")
        out[base] = sorted((tuple(sorted(r.items())) for r in found), key=repr)
    return out


def live_rows(projections: Projections, name: str) -> dict[str, list[Any]]:
    generation = projections.live_generation(name)
    assert generation is not None
    return rows_of(projections, name, generation)


def check_rebuild_equals_incremental(url: str, seed: int, rounds: int, steps: int) -> None:
    world, ledger = open_world(url, batch_size=7)
    try:
        history = History(world.field, seed, utc("2026-09-20T00:00"))
        projections = world.projections
        snapshots: dict[str, tuple[int, dict[str, list[Any]]]] = {}
        for round_ in range(rounds):
            history.run(steps)
            for name in REPORTS:
                projections.catch_up(name)
                if round_ == rounds // 2:
                    snapshots[name] = (projections.head(), live_rows(projections, name))
        assert projections.head() > rounds * steps  # a real history was written
        for name in REPORTS:
            incremental = live_rows(projections, name)
            assert any(incremental.values()), f"{name} saw nothing"
            projections.rebuild(name)
            assert live_rows(projections, name) == incremental, name
            position, then = snapshots[name]
            with projections.scratch(name, position) as (tx, tables):
                assert rows(tx, tables) == then, name
    finally:
        ledger.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rebuild_equals_incremental_on_sqlite(sqlite_url: str, seed: int) -> None:
    check_rebuild_equals_incremental(sqlite_url, seed, rounds=6, steps=80)


@pytest.mark.postgres
def test_rebuild_equals_incremental_on_postgres(pg_url: str) -> None:
    check_rebuild_equals_incremental(pg_url, seed=4, rounds=4, steps=50)


def test_scratch_tables_are_dropped_and_the_live_view_untouched(sqlite_url: str) -> None:
    world, ledger = open_world(sqlite_url)
    try:
        History(world.field, 5, utc("2026-09-20T00:00")).run(60)
        projections = world.projections
        projections.catch_up("appraisal")
        before = live_rows(projections, "appraisal")
        with projections.scratch("appraisal", 10) as (tx, tables):
            scratch_names = list(tables.names.values())
            assert tables.generation < 0
        with projections.db.transaction(commit=False) as tx:
            for table in scratch_names:
                assert tx.scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = ?", (table,)) == 0
            assert (
                tx.scalar("SELECT COUNT(*) FROM projection_generations WHERE state = 'scratch'")
                == 0
            )
        assert live_rows(projections, "appraisal") == before
        assert [s.lag for s in projections.status() if s.name == "appraisal"] == [0]
    finally:
        ledger.close()


def test_position_at_finds_the_last_event_recorded_by_an_instant(sqlite_url: str) -> None:
    world, ledger = open_world(sqlite_url)
    try:
        f = world.field
        assert world.projections.position_at(utc("2026-10-01T00:00")) == 0
        ledger.adopt_policy()  # position 1, recorded at the clock's start (2026-01-01)
        f.book(utc("2026-10-01T02:00"), technician=None)  # position 2
        f.book(utc("2026-10-02T02:00"))  # positions 3, 4 (booked, assigned)
        f.book(utc("2026-10-03T02:00"))  # positions 5, 6
        p = world.projections.position_at
        assert p(utc("2025-12-31T23:59")) == 0
        assert p(utc("2026-10-01T01:59")) == 1
        assert p(utc("2026-10-01T02:00")) == 2
        assert p(utc("2026-10-02T12:00")) == 4
        assert p(utc("2026-10-03T02:00")) == 6
        assert p(utc("2030-01-01T00:00")) == 6
    finally:
        ledger.close()


@pytest.mark.parametrize("batch_size", [7, 500])
def test_one_pass_rebuild_of_every_view_equals_the_incremental_views(
    database_url: str, batch_size: int
) -> None:
    """`rebuild_many` decodes each event once and feeds every view, into
    unlogged tables (PostgreSQL) whose secondary indexes are built at the end."""
    world, ledger = open_world(database_url, batch_size=batch_size)
    try:
        History(world.field, 6, utc("2026-09-20T00:00")).run(120)
        projections = world.projections
        names = list(projections.models)
        incremental = {}
        for name in names:
            projections.catch_up(name)
            incremental[name] = live_rows(projections, name)
        for name in ("sla", "satisfaction", "appraisal", "callbacks", "audit"):
            assert any(incremental[name].values()), f"{name} saw nothing"
        generations = projections.rebuild_many(names)
        assert generations == dict.fromkeys(names, 2)
        for name in names:
            assert live_rows(projections, name) == incremental[name], name
        assert all(s.lag == 0 and s.building_generation is None for s in projections.status())
        if ledger.recorder.datastore.__class__.__name__.startswith("Postgres"):  # type: ignore[attr-defined]
            with projections.db.transaction(commit=False) as tx:
                schema = projections.db.schema
                unlogged = tx.scalar(
                    "SELECT COUNT(*) FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE c.relpersistence = 'u' AND n.nspname = ?",
                    (schema,),
                )
                indexes = tx.scalar(
                    "SELECT COUNT(*) FROM pg_indexes "
                    "WHERE tablename = 'sla_targets_g2' AND schemaname = ?",
                    (schema,),
                )
            assert unlogged == 0  # made durable before the swap
            assert indexes == 5  # the primary key and the four held back until the end
    finally:
        ledger.close()


@pytest.mark.parametrize("batch_size", [7, 500])
def test_a_rebuild_of_the_views_that_need_few_types_of_event_equals_the_live_views(
    database_url: str, batch_size: int
) -> None:
    """The views of `catalog.EVENT_TYPES` rebuilt in one pass that reads only
    the events of their types (as the SLA view's process of a two-process
    rebuild does) equal their incremental views, fed every event."""
    world, ledger = open_world(database_url, batch_size=batch_size)
    try:
        History(world.field, 9, utc("2026-09-20T00:00")).run(120)
        projections = world.projections
        names = list(EVENT_TYPES)
        topics = topics_for(projections.models[n] for n in names)
        events = ledger.recorder.events_table_name  # type: ignore[attr-defined]
        with projections.db.transaction(commit=False) as tx:
            stored = {
                r["topic"] for r in tx.query(f"SELECT DISTINCT topic FROM {tx.table(events)}")
            }
        assert stored - set(topics), "the history has events of other types too"
        incremental = {}
        for name in names:
            projections.catch_up(name)
            incremental[name] = live_rows(projections, name)
        for name in ("sla", "notifications", "callbacks"):
            assert any(incremental[name].values()), f"{name} saw nothing"
        read: list[int] = []
        select = ledger.recorder.select_notifications

        def counted(*args: Any, **kwargs: Any) -> Any:
            found = select(*args, **kwargs)
            read.extend(n.id for n in found)
            return found

        ledger.recorder.select_notifications = counted  # type: ignore[method-assign]
        generations = projections.rebuild_many(names)
        assert len(read) < projections.head()  # the other events were not read
        assert generations == dict.fromkeys(names, 2)
        for name in names:
            assert live_rows(projections, name) == incremental[name], name
        lags = {s.name: s.lag for s in projections.status()}
        assert all(lags[name] == 0 for name in names)  # tracked to the head
    finally:
        ledger.close()


def test_a_rebuild_shared_out_between_two_processes_equals_the_live_views(
    database_url: str,
) -> None:
    """`fieldledger projections rebuild --jobs 2`: the views in two groups of about
    equal cost, each group rebuilt in one pass by a process of its own."""
    names = list(READ_MODEL_NAMES)
    five = ["sla", "satisfaction", "appraisal", "callbacks", "audit"]
    assert share_out(five, 2) == [["sla", "satisfaction"], ["appraisal", "callbacks", "audit"]]
    # All nine: the SLA view, the heaviest, with views that need few types of
    # event (that process reads only those); the audit trail's process reads
    # every event.
    assert share_out(names, 2) == [
        ["sla", "satisfaction", "callbacks", "notifications", "maintenance_contracts"],
        ["appraisal", "audit", "customer_files", "reports"],
    ]
    # Many processes: each group found greedily, the heaviest first.
    assert share_out(names, 9) == [[n] for n in names]
    assert share_out(["audit"], 2) == [["audit"]]
    world, ledger = open_world(database_url)
    try:
        History(world.field, 7, utc("2026-09-20T00:00")).run(60)
        projections = world.projections
        projections.catch_up_all()
        before = {name: live_rows(projections, name) for name in names}
        result = subprocess.run(
            [str(Path(sys.executable).with_name("fieldledger")), "projections", "rebuild",
             "--jobs", "2"],
            env={**os.environ, "FIELDLEDGER_DATABASE_URL": database_url},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        for name in names:
            assert f"{name}: generation 2 is live" in result.stderr
            assert live_rows(projections, name) == before[name], name
        if projections.db.dialect == "postgres":
            # Once both processes were done, every page was marked visible
            # (Projections.vacuum): index-only scans skip the heap.
            for name in names:
                with projections.reading(name) as (tx, t):
                    for table in t.names.values():
                        row = tx.query(
                            "SELECT relpages, relallvisible FROM pg_class"
                            " WHERE oid = ?::regclass",
                            (table,),
                        )[0]
                        assert row["relallvisible"] == row["relpages"], table
    finally:
        ledger.close()


def test_a_rebuild_whose_fresh_tables_another_rebuild_replaced_stops_and_says_so(
    sqlite_url: str,
) -> None:
    world, ledger = open_world(sqlite_url, batch_size=5)
    try:
        History(world.field, 8, utc("2026-09-20T00:00")).run(30)
        projections = world.projections
        abandoned = projections.generations.start_build("callbacks")
        assert projections.rebuild("callbacks") == abandoned.generation + 1  # drops it
        with pytest.raises(RebuildSuperseded, match="live views are unchanged"):
            projections.batches.feed([Target("callbacks", abandoned.generation)])
        assert projections.live_generation("callbacks") == abandoned.generation + 1
    finally:
        ledger.close()


@pytest.mark.parametrize("batch_size", [7, 500])
def test_the_projector_s_rounds_build_every_view_as_a_rebuild_does(
    database_url: str, batch_size: int
) -> None:
    """The live views fed together, one transaction per batch for all of them
    (new rows bulk-loaded), round after round while the history is written,
    equal their rebuilds; and every round took that path, none fell back to
    the views' catch-ups one by one."""
    world, ledger = open_world(database_url, batch_size=batch_size)
    try:
        history = History(world.field, 8, utc("2026-09-20T00:00"))
        projections = world.projections
        names = set(projections.models)
        for _ in range(4):
            history.run(40)
            assert projections.batches.live_round(projections.head()) == names
        BackgroundProjector(projections).round()
        assert all(s.lag == 0 and s.error is None for s in projections.status())
        incremental = {name: live_rows(projections, name) for name in names}
        for name in ("sla", "satisfaction", "appraisal", "callbacks", "audit", "reports"):
            assert any(incremental[name].values()), f"{name} saw nothing"
        projections.rebuild_many(list(names))
        for name in names:
            assert live_rows(projections, name) == incremental[name], name
    finally:
        ledger.close()
