"""What a batch works out once for all its views, and how views load their rows
by key: `event_ids` (each event's aggregate id as text, by position) and
`rows_with` (one `= ANY(array)` statement on PostgreSQL, `IN` lists on SQLite)
answer exactly what `str(event.originator_id)` and a `SELECT ... IN (...)` of
the keys made storable answer, on both databases."""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest
from fieldledger.application.database import REPLACEMENT, Database
from fieldledger.application.ledger import FieldLedger
from fieldledger.projections.batches import ProjectionFailed
from fieldledger.projections.read_model import Batch, Tables, event_ids
from fieldledger.projections.unit_of_work import (
    IN_CHUNK,
    Pending,
    TableRows,
    copy_rows,
    rows_with,
    upsert_rows,
)
from fieldledger.projections.versions import VersionedRows, create_versioned


def test_event_ids_are_each_events_aggregate_id_as_text_and_skip_undecoded_events() -> None:
    ids = [uuid4() for _ in range(3)]
    events: list[tuple[int, Any]] = [
        (4, SimpleNamespace(originator_id=ids[0])),
        (5, ProjectionFailed("?", 5, "ValueError: undecodable")),
        (7, SimpleNamespace(originator_id=ids[1])),
        (9, SimpleNamespace(originator_id=ids[0])),
    ]
    assert event_ids(events) == {4: str(ids[0]), 7: str(ids[1]), 9: str(ids[0])}
    # A batch given none works them out itself; one given them keeps them.
    tables = Tables({}, 1)
    assert Batch(None, tables, events).ids == event_ids(events)  # type: ignore[arg-type]
    given = {4: "x"}
    assert Batch(None, tables, events, ids=given).ids is given  # type: ignore[arg-type]


@pytest.fixture
def db(database_url: str) -> Any:
    ledger = FieldLedger(database_url)
    try:
        yield Database(ledger.recorder)
    finally:
        ledger.close()


def test_rows_with_reads_every_key_asked_for_however_many(db: Database) -> None:
    keys = [f"k{i:05d}" for i in range(2 * IN_CHUNK + 7)]
    with db.transaction(commit=False) as tx:
        table = tx.table("batch_keys_probe")
        tx.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        tx.executemany(f"INSERT INTO {table} VALUES (?, ?)", [(k, i) for i, k in enumerate(keys)])
        wanted = [*keys[::2], "absent"]
        found = {r["k"]: r["n"] for r in rows_with(tx, "k, n", table, "k", wanted)}
        assert found == {k: keys.index(k) for k in keys[::2]}
        assert list(rows_with(tx, "k, n", table, "k", [])) == []
        one = list(rows_with(tx, "k, n", table, "k", [keys[3]]))
        assert one == [{"k": keys[3], "n": 3}]


def test_a_key_with_unstorable_text_finds_the_row_stored_for_it(db: Database) -> None:
    """Text no column can hold (NUL, a lone surrogate) is stored replaced by
    U+FFFD; a key holding it finds that row, as a parameter of its own did."""
    with db.transaction(commit=False) as tx:
        table = tx.table("batch_keys_hostile")
        rows = TableRows(tx, table, "k", ("k", "v"))
        tx.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, v TEXT)")
        tx.execute(f"INSERT INTO {table} VALUES (?, ?)", (f"a{REPLACEMENT}b", "nul"))
        tx.execute(f"INSERT INTO {table} VALUES (?, ?)", (f"c{REPLACEMENT}", "surrogate"))
        tx.execute(f"INSERT INTO {table} VALUES (?, ?)", ("plain", "plain"))
        found = {r["v"] for r in rows_with(tx, "k, v", table, "k", ["a\x00b", "c\ud800", "plain"])}
        assert found == {"nul", "surrogate", "plain"}
        rows.prefetch(["plain", "gone"])
        assert rows.get("plain") == {"k": "plain", "v": "plain"}
        assert rows.get("gone") is None


@pytest.mark.parametrize("bulk", [True, False])
def test_table_rows_append_the_rows_new_to_the_table_and_upsert_the_others(
    db: Database, bulk: bool
) -> None:
    """Given its batch, a `TableRows` appends the rows it inserted (with `COPY`
    once the batch's statements are sent, in a bulk batch; at once otherwise)
    and upserts the rows the table held: the table ends the same either way."""
    with db.transaction(commit=False) as tx:
        table = tx.table("batch_keys_rows")
        tx.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, v TEXT)")
        tx.execute(f"INSERT INTO {table} VALUES (?, ?)", ("old", "1"))
        batch = Batch(tx, Tables({}, 1), bulk=bulk)
        rows = TableRows(tx, table, "k", ("k", "v"), batch)
        rows.prefetch(["old", "new"])
        assert rows.insert("new", v="n") and not rows.insert("old", v="x")
        rows.update("old", v="2")
        rows.update("new", v="n2")
        rows.flush()
        if bulk:
            assert batch.copies == [(table, ("k", "v"), [["new", "n2"]])]
            for copied, columns, values in batch.copies:
                tx.copy_rows(copied, columns, values)
        else:
            assert batch.copies == []
        # Later in the batch the new row is stored: an update of it is upserted.
        rows.update("new", v="n3")
        rows.flush()
        assert batch.copies == ([(table, ("k", "v"), [["new", "n2"]])] if bulk else [])
        found = {r["k"]: r["v"] for r in tx.query(f"SELECT k, v FROM {table}")}
        assert found == {"old": "2", "new": "n3"}


def test_upsert_rows_writes_what_a_statement_per_row_writes(db: Database) -> None:
    """`upsert_rows` (one JSON statement on PostgreSQL for more than one row)
    inserts the new keys and sets only the columns named of the others, with
    text, NULL, integers and floats as they are, and text no column can hold
    (NUL, a lone surrogate) replaced as any parameter's is; a value JSON cannot
    carry goes row by row. The same on both databases."""
    from decimal import Decimal

    with db.transaction(commit=False) as tx:
        table = tx.table("batch_keys_upsert")
        tx.execute(
            f"CREATE TABLE {table} (k TEXT NOT NULL, j INTEGER NOT NULL, t TEXT, n INTEGER, "
            "r REAL, kept TEXT, PRIMARY KEY (k, j))"
        )
        tx.execute(f"INSERT INTO {table} VALUES ('old', 1, 'was', 1, 0.5, 'kept')")
        columns = ("k", "j", "t", "n", "r", "kept")
        upsert_rows(
            tx, table, columns, ("k", "j"),
            [("old", 1, "王\"\\u0000'", None, 2.25, "not this"),
             ("new", 1, "a\x00b", 7, 1e-3, "x"),
             ("new", 2, "c\ud800", 2**30, -3.0, None)],
            ("t", "n", "r"),
        )  # fmt: skip
        upsert_rows(tx, table, columns, ("k", "j"), [("one", 1, None, 1, None, None)])
        upsert_rows(tx, table, columns, ("k", "j"), [])
        found = {
            (r["k"], r["j"]): (r["t"], r["n"], r["r"], r["kept"])
            for r in tx.query(f"SELECT * FROM {table}")
        }
        assert found == {
            ("old", 1): ("王\"\\u0000'", None, 2.25, "kept"),
            ("new", 1): (f"a{REPLACEMENT}b", 7, pytest.approx(1e-3), "x"),
            ("new", 2): (f"c{REPLACEMENT}", 2**30, -3.0, None),
            ("one", 1): (None, 1, None, None),
        }
        # A float for an integer column is rounded, as a parameter of its own is.
        upsert_rows(tx, table, ("k", "j", "n"), ("k", "j"), [("new", 1, 7.6), ("flt", 1, 2.0)])
        found_n = {r["k"]: r["n"] for r in tx.query(f"SELECT k, n FROM {table} WHERE j = 1")}
        if tx.dialect == "postgres":
            assert found_n["new"] == 8 and found_n["flt"] == 2
        if tx.dialect != "postgres":  # SQLite binds no Decimal at all
            return
        # Not JSON's (a Decimal): row by row, as before.
        upsert_rows(
            tx, table, ("k", "j", "r"), ("k", "j"),
            [("new", 1, Decimal("0.5")), ("dec", 1, Decimal("1.5"))],
        )  # fmt: skip
        found_r = {r["k"]: r["r"] for r in tx.query(f"SELECT k, r FROM {table} WHERE j = 1")}
        assert found_r["new"] == 0.5 and found_r["dec"] == 1.5


@pytest.mark.parametrize("formatter", [True, False], ids=["formatted-whole", "no-formatter"])
def test_copy_rows_loads_the_rows_with_unstorable_text_replaced(
    db: Database, formatter: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`copy_rows` (on PostgreSQL one `COPY`, its data formatted whole before
    it starts) loads text, NULL, integers and floats as they are; text no
    column can hold (NUL, a lone surrogate) is replaced as `storable` does, in
    any row of the batch. The same on both databases; nothing for no rows.
    The same again where psycopg's private row formatter cannot be imported
    (`Tx.copy_rows` then)."""
    if not formatter:
        monkeypatch.setattr("fieldledger.projections.unit_of_work.format_row_text", None)
    with db.transaction(commit=False) as tx:
        table = tx.table("batch_keys_copied")
        tx.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, n INTEGER, r REAL, t TEXT)")
        copy_rows(tx, table, ("k", "n", "r", "t"), [])
        copy_rows(
            tx, table, ("k", "n", "r", "t"),
            [("plain", 1, 0.5, "王\t\\ \n'\""), ("none", None, None, None)],
        )  # fmt: skip
        copy_rows(
            tx, table, ("k", "n", "r", "t"),
            [("ok", 2, 1.5, "fine"), ("nul", 3, None, "a\x00b"), ("sur\ud800", 4, None, "c")],
        )  # fmt: skip
        found = {(r["k"]): (r["n"], r["r"], r["t"]) for r in tx.query(f"SELECT * FROM {table}")}
    assert found == {
        "plain": (1, 0.5, "王\t\\ \n'\""),
        "none": (None, None, None),
        "ok": (2, 1.5, "fine"),
        "nul": (3, None, f"a{REPLACEMENT}b"),
        f"sur{REPLACEMENT}": (4, None, "c"),
    }


def test_prefetches_sent_in_a_pipeline_read_the_rows_as_they_stood_when_sent(
    db: Database,
) -> None:
    """Prefetches are sent, not waited for, in a pipeline (`Pending`): several
    tables' rows come back together at the first row asked for, each as the
    table stood when its query was sent (statements run in the order sent),
    and a key not prefetched is still loaded at once. The same outside a
    pipeline and on SQLite, where each is read at once."""
    for pipelined in (True, False):
        with db.transaction(commit=False) as tx:
            first, second = tx.table("batch_keys_first"), tx.table("batch_keys_second")
            for table in (first, second):
                tx.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, v TEXT)")
                tx.executemany(f"INSERT INTO {table} VALUES (?, ?)", [("a", "1"), ("b", "2")])
            with tx.pipelined() if pipelined else nullcontext():
                one = TableRows(tx, first, "k", ("k", "v"))
                two = TableRows(tx, second, "k", ("k", "v"))
                one.prefetch(["a", "x"])
                two.prefetch(["b"])
                # Sent after the prefetches: not in what they read.
                tx.execute(f"UPDATE {second} SET v = 'later' WHERE k = 'b'")
                assert one.get("a") == {"k": "a", "v": "1"} and one.get("x") is None
                assert two.get("b") == {"k": "b", "v": "2"}
                assert one.get("b") == {"k": "b", "v": "2"}  # not prefetched: loaded now
                one.update("a", v="3")
                one.flush()
            found = {r["k"]: r["v"] for r in tx.query(f"SELECT k, v FROM {first}")}
            assert found == {"a": "3", "b": "2"}
            tx.execute(f"DROP TABLE {first}")
            tx.execute(f"DROP TABLE {second}")


def test_versioned_rows_prefetched_in_a_pipeline_read_the_rows_stored(db: Database) -> None:
    """A `VersionedRows` prefetch sent in a pipeline is read before any row is
    looked at or written (`group`, `known_absent`, `flush`)."""
    with db.transaction(commit=False) as tx:
        table, history = tx.table("batch_keys_versioned"), tx.table("batch_keys_versioned_h")
        create_versioned(tx, table, history, "a TEXT NOT NULL, b TEXT NOT NULL, v TEXT", ("a", "b"))
        tx.execute(f"INSERT INTO {table} VALUES ('x', '1', 'old', 1)")
        batch = Batch(tx, Tables({}, 1))
        rows = VersionedRows(batch, table, history, ("a", "b"), ("a", "b", "v"))
        with tx.pipelined():
            rows.prefetch(["x", "y"])
            rows.known_absent("z")
            rows.position = 5
            assert rows.get("x", "1") == {"a": "x", "b": "1", "v": "old", "valid_from": 1}
            rows.update("x", "1", v="new")
            rows.insert("y", "2", v="n")
            rows.flush()
        found = {
            (r["a"], r["b"]): (r["v"], r["valid_from"]) for r in tx.query(f"SELECT * FROM {table}")
        }
        assert found == {("x", "1"): ("new", 5), ("y", "2"): ("n", 5)}
        kept = [
            (r["v"], r["valid_from"], r["valid_to"]) for r in tx.query(f"SELECT * FROM {history}")
        ]
        assert kept == [("old", 1, 5)]


def test_a_pending_read_in_a_pipeline_is_sent_and_read_later(db: Database) -> None:
    """In a pipeline (PostgreSQL) a `Pending` query is only sent: its rows are
    read when asked for, with those of every query sent before; elsewhere
    it is read at once. The rows are the same either way."""
    with db.transaction(commit=False) as tx:
        with tx.pipelined():
            first = Pending(tx, "SELECT 1 AS one", ())
            second = Pending(tx, "SELECT ? AS two", ("2",))
            assert (first._rows is None) == (tx.dialect == "postgres")
            assert (second._rows is None) == (tx.dialect == "postgres")
            assert second.rows() == [{"two": "2"}]
            assert first.rows() == [{"one": 1}]
        assert Pending(tx, "SELECT 3 AS three", ()).rows() == [{"three": 3}]
