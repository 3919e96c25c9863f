"""The projector: batches tracked exactly once, rebuilds into fresh tables and
swapped in, a failing event stops the projection and is reported."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import pytest
from fieldledger.application.database import Tx
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.domain.facts import Role
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, Zone
from fieldledger.projections.batches import Target
from fieldledger.projections.generations import FRESH_STATISTICS_TARGET
from fieldledger.projections.projector import BackgroundProjector, ProjectionFailed, Projections
from fieldledger.projections.read_model import Batch, ProjectionSettings, ReadModel, Tables

from tests.views import rows_of

DISPATCHER = Caller("disp-1", Role.DISPATCHER)


class EventCounts(ReadModel):
    """A toy read model: how many events of each type."""

    name = "event_counts"
    tables: ClassVar[tuple[str, ...]] = ("event_counts",)
    fail_on: ClassVar[str | None] = None

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.event_counts} "
            "(type TEXT PRIMARY KEY, n INTEGER NOT NULL, last_position INTEGER NOT NULL)"
        )

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        if type(event).__name__ == self.fail_on:
            raise ValueError("cannot count this")
        tx, t = batch.tx, batch.t
        tx.execute(
            f"INSERT INTO {t.event_counts} VALUES (?, 1, ?) ON CONFLICT (type) DO UPDATE "
            "SET n = excluded.n + " + t.event_counts + ".n, last_position = excluded.last_position",
            (type(event).__name__, position),
        )


SETTINGS = ProjectionSettings(builtin_policy(), "Asia/Shanghai")


@pytest.fixture
def ledger(database_url: str) -> Iterator[FieldLedger]:
    app = FieldLedger(database_url)
    yield app
    app.close()


def book(ledger: FieldLedger, n: int) -> None:
    """n orders booked and assigned: 2n events, after the ledger's PolicyAdopted
    (recorded once, before the first booking)."""
    for i in range(n):
        r = ledger.book_work_order(
            DISPATCHER, customer=Customer(f"c{i}", "1"), service_type="repair",
            priority=Priority.ROUTINE, zone=Zone.URBAN, channel=Channel.PHONE,
            billing=Billing.PAID, description="",
        )  # fmt: skip
        ledger.work_order_command(DISPATCHER, r.id, "assign", {"technician_id": "t"})


def counts(projections: Projections) -> dict[str, int]:
    with projections.reading("event_counts") as (tx, t):
        return {r["type"]: r["n"] for r in tx.query(f"SELECT type, n FROM {t.event_counts}")}


def test_events_are_projected_in_batches_exactly_once(ledger: FieldLedger) -> None:
    projections = Projections(ledger, [EventCounts], SETTINGS, batch_size=7)
    book(ledger, 10)
    assert projections.catch_up("event_counts") == projections.head()
    assert projections.catch_up("event_counts") == projections.head()  # nothing twice
    assert counts(projections) == {"PolicyAdopted": 1, "Booked": 10, "Assigned": 10}
    # A second projector over the same store (another process) adds nothing.
    other = Projections(ledger, [EventCounts], SETTINGS, batch_size=3)
    other.catch_up("event_counts")
    assert counts(projections) == {"PolicyAdopted": 1, "Booked": 10, "Assigned": 10}
    (status,) = projections.status()
    assert (status.position, status.lag, status.error) == (projections.head(), 0, None)


def test_wait_for_brings_the_view_up_to_a_position(ledger: FieldLedger) -> None:
    projections = Projections(ledger, [EventCounts], SETTINGS)
    book(ledger, 2)
    (status,) = projections.status()
    assert status.lag == 5
    projections.wait_for("event_counts", 4)
    assert projections.position("event_counts", 1) == 4


def test_a_rebuild_fills_a_fresh_generation_and_swaps_it_in(ledger: FieldLedger) -> None:
    projections = Projections(ledger, [EventCounts], SETTINGS, batch_size=4)
    book(ledger, 5)
    projections.catch_up("event_counts")
    before = rows_of(projections, "event_counts", 1)
    seen: list[int] = []
    generation = projections.rebuild("event_counts", progress=lambda n, pos: seen.append(pos))
    assert generation == 2
    assert projections.live_generation("event_counts") == 2
    assert seen[-1] == projections.head()
    assert rows_of(projections, "event_counts", 2) == before
    # The old generation's tables are gone.
    with pytest.raises(Exception):  # noqa: B017 - dialects raise different errors
        rows_of(projections, "event_counts", 1)


def test_a_failing_event_stops_the_projection_there_and_is_reported(ledger: FieldLedger) -> None:
    book(ledger, 3)

    class Failing(EventCounts):
        fail_on = "Assigned"

    projections = Projections(ledger, [Failing], SETTINGS, batch_size=100)
    with pytest.raises(ProjectionFailed, match="position 3"):
        projections.catch_up("event_counts")
    (status,) = projections.status()
    assert status.position == 2  # stopped at the failing event, not before its batch
    assert counts(projections) == {"PolicyAdopted": 1, "Booked": 1}
    assert status.error_position == 3
    assert status.error is not None and "cannot count this" in status.error
    # It does not skip the event on the next run either.
    with pytest.raises(ProjectionFailed):
        projections.catch_up("event_counts")


class BadStatement(EventCounts):
    """Fails in the database, not in Python: its SQL for one event type is wrong."""

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        if type(event).__name__ == "Assigned":
            batch.tx.execute(
                f"INSERT INTO {batch.t.event_counts} (no_such_column) VALUES (?)", (1,)
            )
            return
        super().handle(batch, event, position)


def test_a_failing_statement_is_pinned_to_its_event_even_when_pipelined(
    ledger: FieldLedger,
) -> None:
    book(ledger, 3)  # after the ledger's PolicyAdopted: Booked at 2, Assigned at 3, ...
    projections = Projections(ledger, [BadStatement], SETTINGS, batch_size=100)
    with pytest.raises(ProjectionFailed, match="position 3"):
        projections.catch_up("event_counts")
    (status,) = projections.status()
    assert (status.position, status.error_position) == (2, 3)
    assert counts(projections) == {"PolicyAdopted": 1, "Booked": 1}


@pytest.mark.parametrize("feed_batch_size", [1, 3, 500])
def test_a_feed_of_some_topics_only_reads_those_and_tracks_every_event(
    ledger: FieldLedger, feed_batch_size: int
) -> None:
    """A one-pass feed given topics (a rebuild of views that act on a few types
    of event) feeds only their events, and its tracked position still moves
    over the others: to the head, the last events being of other topics."""
    book(ledger, 4)
    for i in range(2):  # the store ends with events of no topic read
        ledger.book_work_order(
            DISPATCHER, customer=Customer(f"d{i}", "1"), service_type="repair",
            priority=Priority.ROUTINE, zone=Zone.URBAN, channel=Channel.PHONE,
            billing=Billing.PAID, description="",
        )  # fmt: skip
    projections = Projections(ledger, [EventCounts], SETTINGS, rebuild_batch_size=feed_batch_size)
    head = projections.head()
    assigned = "fieldledger.domain.work_orders:WorkOrder.Assigned"
    build = projections.generations.start_build("event_counts")
    seen: list[int] = []
    failures = projections.batches.feed(
        [Target("event_counts", build.generation)],
        topics=(assigned,),
        progress=lambda n, position: seen.append(position),
    )
    assert failures == {}
    assert projections.position("event_counts", build.generation) == head
    assert seen[-1] == head and seen == sorted(seen)
    with projections.db.transaction(commit=False) as tx:
        t = projections.tables("event_counts", build.generation)
        found = {r["type"]: r["n"] for r in tx.query(f"SELECT type, n FROM {t.event_counts}")}
    assert found == {"Assigned": 4}
    # Events committed after the feed are caught up unfiltered, as ever.
    book(ledger, 1)  # booked and assigned
    assert projections.catch_up("event_counts", generation=build.generation) == head + 2


class EventPositions(ReadModel):
    """A toy read model: one row per event it was given, keyed by its position
    (an event applied twice breaks the key)."""

    name = "event_positions"
    tables: ClassVar[tuple[str, ...]] = ("event_positions",)

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(f"CREATE TABLE IF NOT EXISTS {t.event_positions} (position INTEGER PRIMARY KEY)")

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        batch.tx.execute(f"INSERT INTO {batch.t.event_positions} VALUES (?)", (position,))


def test_a_rebuilt_generation_is_analyzed_from_a_small_sample(pg_url: str) -> None:
    """The finish's ANALYZE runs at FRESH_STATISTICS_TARGET, not the server's
    default of 100: 121 distinct positions get a histogram of at most 11
    bounds (at 100 they would get 101)."""
    app = FieldLedger(pg_url)
    try:
        projections = Projections(app, [EventPositions], SETTINGS, batch_size=50)
        book(app, 60)
        generation = projections.rebuild("event_positions")
        with projections.reading("event_positions") as (tx, t):
            table = t.event_positions.rpartition(".")[2].strip('"')
            bounds = tx.scalar(
                "SELECT cardinality(histogram_bounds) FROM pg_stats "
                "WHERE tablename = ? AND attname = 'position'",
                (table,),
            )
        assert generation == 2
        assert bounds is not None and 2 <= bounds <= FRESH_STATISTICS_TARGET + 1
    finally:
        app.close()


def test_a_rebuilt_generation_is_vacuumed_with_its_visibility_map_set(pg_url: str) -> None:
    """The finish VACUUMs a fresh generation's tables: every page is marked
    all-visible (`pg_class.relallvisible`, which VACUUM sets and ANALYZE only
    keeps), so index-only scans of the new view need not visit the heap. Before,
    no page was marked until autovacuum came by (and the benchmark's server
    runs without it)."""
    app = FieldLedger(pg_url)
    try:
        projections = Projections(app, [EventPositions], SETTINGS, batch_size=50)
        book(app, 300)
        projections.rebuild("event_positions")
        with projections.reading("event_positions") as (tx, t):
            row = tx.query(
                "SELECT relpages, relallvisible FROM pg_class WHERE oid = ?::regclass",
                (t.event_positions,),
            )[0]
        assert row["relpages"] >= 2  # more than one page to mark
        assert row["relallvisible"] == row["relpages"]
    finally:
        app.close()


def test_after_overlapping_finishes_the_rebuild_marks_every_page_visible(pg_url: str) -> None:
    """A finish's VACUUM cannot mark pages while an older transaction is open
    (as another rebuild process's finish is); `Projections.vacuum`, which
    `projections rebuild` runs once every process has finished, marks them."""
    import psycopg

    app = FieldLedger(pg_url)
    try:
        projections = Projections(app, [EventPositions], SETTINGS, batch_size=50)
        book(app, 300)

        def visibility() -> tuple[int, int]:
            with projections.reading("event_positions") as (tx, t):
                row = tx.query(
                    "SELECT relpages, relallvisible FROM pg_class WHERE oid = ?::regclass",
                    (t.event_positions,),
                )[0]
            return row["relpages"], row["relallvisible"]

        with psycopg.connect(pg_url.split("?")[0]) as older:  # same database
            older.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            older.execute("SELECT 1")  # its snapshot: older than the new rows
            generations = projections.rebuild_many(["event_positions"])
            pages, visible = visibility()
            assert pages >= 2 and visible == 0  # the finish's VACUUM could not mark
            older.rollback()
        projections.vacuum(generations)
        pages, visible = visibility()
        assert visible == pages
        projections.vacuum({"event_positions": generations["event_positions"] + 1})  # not live
    finally:
        app.close()


def positions(projections: Projections) -> list[int]:
    with projections.reading("event_positions") as (tx, t):
        return sorted(
            r["position"] for r in tx.query(f"SELECT position FROM {t.event_positions}")
        )


def test_a_round_feeds_the_live_views_together_one_transaction_per_batch(
    ledger: FieldLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    projections = Projections(ledger, [EventCounts, EventPositions], SETTINGS, batch_size=4)
    book(ledger, 5)  # 11 events: batches of 4, 4 and 3
    transactions = 0
    opened = projections.db.transaction

    def counted(*, commit: bool = True) -> Any:
        nonlocal transactions
        transactions += commit  # (SQLite's reads are transactions not committed)
        return opened(commit=commit)

    monkeypatch.setattr(projections.db, "transaction", counted)
    projector = BackgroundProjector(projections)
    projector.round()
    assert transactions == 3  # one per batch for both views, not one per view
    head = projections.head()
    assert [projections.position(n, 1) for n in ("event_counts", "event_positions")] == [head, head]
    assert counts(projections) == {"PolicyAdopted": 1, "Booked": 5, "Assigned": 5}
    assert positions(projections) == list(range(1, head + 1))
    # Nothing twice: a round at the head writes nothing, nor does another
    # projector's catch-up; the next events are fed once.
    projector.round()
    assert transactions == 3
    Projections(ledger, [EventCounts, EventPositions], SETTINGS).catch_up_all()
    book(ledger, 1)
    projector.round()
    assert counts(projections) == {"PolicyAdopted": 1, "Booked": 6, "Assigned": 6}
    assert positions(projections) == list(range(1, projections.head() + 1))
    assert projector.last_errors == {}


def test_a_view_standing_elsewhere_catches_up_by_itself_in_a_round(ledger: FieldLedger) -> None:
    projections = Projections(ledger, [EventCounts, EventPositions], SETTINGS, batch_size=4)
    book(ledger, 5)
    # Another projector (or a read-your-writes wait) moved one view ahead.
    Projections(ledger, [EventCounts, EventPositions], SETTINGS).catch_up("event_positions", until=6)
    assert projections.batches.live_round(projections.head()) == {"event_counts"}
    projector = BackgroundProjector(projections)
    projector.round()
    head = projections.head()
    assert [projections.position(n, 1) for n in ("event_counts", "event_positions")] == [head, head]
    assert counts(projections) == {"PolicyAdopted": 1, "Booked": 5, "Assigned": 5}
    assert positions(projections) == list(range(1, head + 1))


@pytest.mark.parametrize("failing", ["handler", "statement"])
def test_a_view_failing_in_a_round_stops_there_while_the_others_advance(
    ledger: FieldLedger, failing: str
) -> None:
    book(ledger, 3)  # after the ledger's PolicyAdopted: Booked at 2, Assigned at 3, ...

    class Failing(EventCounts):
        fail_on = "Assigned"

    model = Failing if failing == "handler" else BadStatement
    projections = Projections(ledger, [model, EventPositions], SETTINGS, batch_size=100)
    projector = BackgroundProjector(projections)
    projector.round()
    head = projections.head()
    assert positions(projections) == list(range(1, head + 1))
    assert projections.position("event_positions", 1) == head
    (failed, fine) = projections.status()
    assert (failed.position, failed.error_position) == (2, 3)
    assert counts(projections) == {"PolicyAdopted": 1, "Booked": 1}
    assert list(projector.last_errors) == ["event_counts"]
    assert "position 3" in projector.last_errors["event_counts"]
    # Later rounds: the stopped view stays at its event, the other goes on.
    book(ledger, 1)
    projector.round()
    assert positions(projections) == list(range(1, projections.head() + 1))
    assert projections.position("event_counts", 1) == 2
    assert counts(projections) == {"PolicyAdopted": 1, "Booked": 1}
    assert fine.error is None


def highest_position(t: Tables) -> str:
    """A one-value query of `EventPositions` (`Generations.scalar`)."""
    return f"SELECT position FROM {t.event_positions} WHERE position <= ? ORDER BY position DESC"


def slow_count(t: Tables) -> str:
    """`EventPositions`' rows, counted half a second after the read began."""
    return f"SELECT count(*) FROM {t.event_positions}, pg_sleep(0.5)"


def missing_table(t: Tables) -> str:
    return "SELECT 1 FROM no_such_table_here"


def test_a_one_statement_read_answers_from_the_live_generation(ledger: FieldLedger) -> None:
    """`Generations.scalar` (a booking's repeat-call lookup) on both databases:
    the query's first value, None when it finds no row, from the generation
    that is live, also after a rebuild swapped in a new one."""
    projections = Projections(ledger, [EventPositions], SETTINGS, batch_size=50)
    book(ledger, 5)
    projections.catch_up("event_positions")
    generations = projections.generations
    assert generations.scalar("event_positions", highest_position, (7,)) == 7
    assert generations.scalar("event_positions", highest_position, (0,)) is None
    assert projections.rebuild("event_positions") == 2
    book(ledger, 1)
    projections.catch_up("event_positions")
    head = projections.head()
    assert generations.scalar("event_positions", highest_position, (head,)) == head


def test_a_one_statement_read_keeps_a_cursor_per_connection_and_gives_it_back(
    pg_url: str,
) -> None:
    """PostgreSQL: `Generations.scalar` takes a connection from the store's
    pool and gives it back (also when its statement fails), with one cursor
    kept on the connection for its reads; a cursor found closed is replaced,
    and a pool not opened yet is opened by the library's path."""
    from eventsourcing.postgres import PostgresDatastore
    from fieldledger.projections import generations as module

    app = FieldLedger(pg_url)
    try:
        projections = Projections(app, [EventPositions], SETTINGS, batch_size=50)
        book(app, 5)
        projections.catch_up("event_positions")
        generations = projections.generations
        datastore = generations.db.datastore
        assert isinstance(datastore, PostgresDatastore)
        pool = datastore.pool
        idle = pool.get_stats()["pool_available"]
        assert generations.scalar("event_positions", highest_position, (4,)) == 4
        cursors = {id(c.__dict__[module._SCALAR_CURSOR]) for c in pool._pool
                   if module._SCALAR_CURSOR in c.__dict__}  # fmt: skip
        assert len(cursors) == 1
        for wanted in (3, 2, 1):
            assert generations.scalar("event_positions", highest_position, (wanted,)) == wanted
        with pytest.raises(Exception, match="no_such_table"):
            generations.scalar("event_positions", missing_table, ())
        assert pool.get_stats()["pool_available"] == idle  # every connection given back
        for conn in pool._pool:
            kept = conn.__dict__.get(module._SCALAR_CURSOR)
            if kept is not None:
                kept.close()
        assert generations.scalar("event_positions", highest_position, (5,)) == 5
    finally:
        app.close()
    closed = FieldLedger(pg_url)
    try:
        unopened = PostgresDatastore(
            dbname=closed.ledger_recorder.datastore.pool.kwargs["dbname"],
            host="127.0.0.1", port="5432", user="postgres", password="",
            schema=closed.ledger_recorder.datastore.schema,
        )  # fmt: skip
        try:
            assert unopened.pool.closed
            assert module._scalar_row(unopened, "SELECT 41 + %s AS v", (1,)) == {"v": 42}
            assert not unopened.pool.closed
            assert module._scalar_row(unopened, "SELECT 41 + %s AS v", (1,)) == {"v": 42}
        finally:
            unopened.close()
    finally:
        closed.close()


def test_a_one_statement_read_in_flight_survives_a_rebuild_and_the_next_follows_it(
    pg_url: str,
) -> None:
    """PostgreSQL: `Generations.scalar` sends its query on the generation the
    process last knew live, beside the lookup of the live one, in autocommit.
    A read in flight holds its tables: the rebuild's drop waits for it and it
    answers from its generation. A read on a generation swapped out but not yet
    dropped, or already dropped, is sent again on the new one."""
    import psycopg

    app = FieldLedger(pg_url)
    try:
        projections = Projections(app, [EventPositions], SETTINGS, batch_size=50)
        book(app, 5)
        projections.catch_up("event_positions")
        generations = projections.generations
        head = projections.head()
        assert generations.scalar("event_positions", slow_count, ()) == head  # knows g1

        # A read in flight while a rebuild swaps and drops its generation.
        with ThreadPoolExecutor(max_workers=1) as pool:
            reading = pool.submit(generations.scalar, "event_positions", slow_count, ())
            with psycopg.connect(pg_url.split("?")[0], autocommit=True) as watch:
                while not watch.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE '%pg_sleep(0.5)%' AND pid <> pg_backend_pid()"
                ).fetchone():
                    time.sleep(0.01)
            book(app, 1)  # the new generation has one more event than g1 when it began
            assert projections.rebuild("event_positions") == 2
            assert reading.done()  # the drop waited for it
            assert reading.result() == head
        # The process still knows g1, now dropped: sent again on g2.
        assert generations._known_live["event_positions"] == 1
        assert generations.scalar("event_positions", slow_count, ()) == head + 2
        assert generations._known_live["event_positions"] == 2
        # A query naming a table that is not there fails at once, not as a drop.
        with pytest.raises(Exception, match="no_such_table"):
            generations.scalar("event_positions", missing_table, ())

        # Swapped out but not dropped yet (a reading holds the drop lock): the
        # lookup beside the query sees the swap, and the read goes to g3.
        other = Projections(app, [EventPositions], SETTINGS, batch_size=50)
        with ThreadPoolExecutor(max_workers=1) as pool:
            with projections.reading("event_positions") as (_tx, t):
                assert t.generation == 2
                rebuilding = pool.submit(other.rebuild, "event_positions")
                while other.live_generation("event_positions") != 3:
                    time.sleep(0.01)
                assert not rebuilding.done()  # its drop waits for this reading
                book(app, 1)
                projections.catch_up("event_positions", generation=3)
                assert generations.scalar("event_positions", highest_position, (10**6,)) == (
                    projections.head()
                )
                assert generations._known_live["event_positions"] == 3
            assert rebuilding.result() == 3
    finally:
        app.close()
