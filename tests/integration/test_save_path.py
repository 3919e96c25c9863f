"""The fast save path keeps the store's promises (issue 11), on SQLite and
PostgreSQL: no projector skips a committed event however writers race (group
commits, rolled-back saves, two workers), the hash chain the server-side save
writes verifies, and the per-worker aggregate cache is bounded, never decides a
command on a stale version and never holds personal data in clear."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from fieldledger.application.database import Tx
from fieldledger.application.event_store import (
    DATA_KEYS_USED,
    DataKeyErased,
    LedgerPostgresRecorder,
    Receipt,
    _save_cursor,
)
from fieldledger.application.hash_chain import chain_rows, verify_chain
from fieldledger.application.ledger import (
    Busy,
    Caller,
    FieldLedger,
    Idempotency,
    VersionMismatch,
)
from fieldledger.domain.customers import SealedPersonalData
from fieldledger.domain.errors import DomainError
from fieldledger.domain.facts import Role
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, WorkOrder, Zone
from fieldledger.projections.projector import BackgroundProjector, Projections
from fieldledger.projections.read_model import Batch, ProjectionSettings, ReadModel, Tables

from tests.procedure import CHECKLIST, ON_SITE_CHECKS

DISPATCHER = Caller("disp-1", Role.DISPATCHER)
TECH = Caller("tech-1", Role.TECHNICIAN)
SUPERVISOR = Caller("sup-1", Role.SUPERVISOR)
SETTINGS = ProjectionSettings(builtin_policy(), "Asia/Shanghai")


class Seen(ReadModel):
    """Every position the projector handed over, once: a second time would
    break the primary key and stop the view."""

    name = "seen_positions"
    tables: ClassVar[tuple[str, ...]] = ("seen_positions",)

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(f"CREATE TABLE IF NOT EXISTS {t.seen_positions} (position INTEGER PRIMARY KEY)")

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        batch.tx.execute(f"INSERT INTO {batch.t.seen_positions} VALUES (?)", (position,))


@pytest.fixture
def ledgers(database_url: str) -> Iterator[tuple[FieldLedger, FieldLedger]]:
    """Two ledgers on one store: two API workers, each with its own cache."""
    first = FieldLedger(database_url)
    second = FieldLedger(database_url)
    yield first, second
    first.close()
    second.close()


def book(ledger: FieldLedger, name: str = "c") -> UUID:
    return ledger.book_work_order(
        DISPATCHER, customer=Customer(name, "13800000000", "上海"), service_type="repair",
        priority=Priority.ROUTINE, zone=Zone.URBAN, channel=Channel.PHONE,
        billing=Billing.PAID, description="",
    ).id  # fmt: skip


def stored_positions(ledger: FieldLedger) -> list[int]:
    head = ledger.recorder.max_notification_id() or 0
    found = ledger.recorder.select_notifications(start=1, limit=head + 1, stop=head)
    return [n.id for n in found]


def test_no_projector_skips_an_event_while_writers_race(
    ledgers: tuple[FieldLedger, FieldLedger],
) -> None:
    first, second = ledgers
    orders = [book(first, f"c{i}") for i in range(4)]
    projections = Projections(first, [Seen], SETTINGS, batch_size=3)
    done = threading.Event()
    failures: list[BaseException] = []

    def project() -> None:
        while not done.is_set():
            try:
                projections.catch_up("seen_positions")
            except BaseException as e:  # pragma: no cover - reported below
                failures.append(e)
                return

    def write(ledger: FieldLedger, seed: int) -> None:
        rng = random.Random(seed)
        try:
            for i in range(8):
                order = rng.choice(orders)
                if i % 3 == 0:
                    # A stale If-Match: refused, or (on a stale cached copy) its
                    # insert is rolled back and it is refused on the store's state.
                    with contextlib.suppress(VersionMismatch):
                        ledger.work_order_command(
                            DISPATCHER, order, "assign", {"technician_id": "tech-1"},
                            expected_version=1,
                        )  # fmt: skip
                    continue
                if i % 4 == 0:
                    book(ledger, f"n{seed}-{i}")
                    continue
                # Group commits with conflicting versions: retried, or Busy.
                with contextlib.suppress(Busy, DomainError):
                    ledger.work_order_command(
                        DISPATCHER, order, "assign", {"technician_id": f"t{seed}"}
                    )
        except BaseException as e:  # pragma: no cover - reported below
            failures.append(e)

    projector = threading.Thread(target=project)
    projector.start()
    writers = [
        threading.Thread(target=write, args=(ledger, seed))
        for seed, ledger in enumerate([first, second, first, second, first, second])
    ]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    projector.join()
    assert failures == []
    projections.catch_up("seen_positions")
    with projections.reading("seen_positions") as (tx, t):
        seen = [int(r["position"]) for r in tx.query(
            f"SELECT position FROM {t.seen_positions} ORDER BY position")]  # fmt: skip
    stored = stored_positions(first)
    assert len(stored) > 30
    assert seen == stored  # every stored event once, none twice, none skipped


class SeenToo(ReadModel):
    """A second such view: the views of a projector round share one read of the
    store (`Batches.recent`)."""

    name = "seen_too"
    tables: ClassVar[tuple[str, ...]] = ("seen_too",)

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(f"CREATE TABLE IF NOT EXISTS {t.seen_too} (position INTEGER PRIMARY KEY)")

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        batch.tx.execute(f"INSERT INTO {batch.t.seen_too} VALUES (?)", (position,))


def test_no_view_skips_an_event_when_the_views_share_their_reads(
    ledgers: tuple[FieldLedger, FieldLedger],
) -> None:
    """The background projector's rounds (one read per round, handed to every
    view) and a second projector's catch-ups, while two workers write."""
    first, second = ledgers
    orders = [book(first, f"c{i}") for i in range(3)]
    projections = Projections(first, [Seen, SeenToo], SETTINGS, batch_size=4)
    other = Projections(second, [Seen, SeenToo], SETTINGS, batch_size=3)
    background = BackgroundProjector(projections, interval=0.001)
    background.start()
    done = threading.Event()
    failures: list[BaseException] = []

    def project() -> None:
        while not done.is_set():
            try:
                other.catch_up("seen_too")
            except BaseException as e:  # pragma: no cover - reported below
                failures.append(e)
                return

    def write(ledger: FieldLedger, seed: int) -> None:
        try:
            for i in range(10):
                if i % 3 == 0:
                    book(ledger, f"n{seed}-{i}")
                    continue
                with contextlib.suppress(Busy, DomainError):
                    ledger.work_order_command(
                        DISPATCHER, orders[(seed + i) % 3], "assign", {"technician_id": f"t{i}"}
                    )
        except BaseException as e:  # pragma: no cover - reported below
            failures.append(e)

    threads = [threading.Thread(target=project)] + [
        threading.Thread(target=write, args=(ledger, seed))
        for seed, ledger in enumerate([first, second, first, second])
    ]
    for t in threads[1:]:
        t.start()
    threads[0].start()
    for t in threads[1:]:
        t.join()
    done.set()
    threads[0].join()
    background.stop()
    assert failures == []
    assert background.last_errors == {}
    projections.catch_up_all()
    stored = stored_positions(first)
    assert len(stored) > 30
    for name in ("seen_positions", "seen_too"):
        with projections.reading(name) as (tx, t):
            seen = [int(r["position"]) for r in tx.query(
                f"SELECT position FROM {t[name]} ORDER BY position")]  # fmt: skip
        assert seen == stored, name  # every stored event once, none twice, none skipped


def test_the_server_side_save_writes_a_chain_that_verifies(
    ledgers: tuple[FieldLedger, FieldLedger],
) -> None:
    first, second = ledgers
    if isinstance(first.recorder, LedgerPostgresRecorder):
        assert first.recorder.one_trip  # the path under test is the one taken
    orders = [book(first), book(second)]
    threads = [
        threading.Thread(
            target=lambda lg=lg, o=o: lg.work_order_command(
                DISPATCHER, o, "assign", {"technician_id": "tech-1"}
            )
        )
        for lg in (first, second)
        for o in orders
    ]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = verify_chain(first.recorder)
    assert verdict.intact, verdict.broken
    assert verdict.events == len(stored_positions(first))


def test_a_save_of_several_aggregates_chains_as_the_hash_chain_module_does(
    database_url: str,
) -> None:
    """One save of several events (a group commit's: two aggregates
    interleaved, a new one of two events), the server-side save's path for
    several (its events' INSERT of the arrays, the hashes in a loop, one
    INSERT of the hash rows): each event's hash is the one
    `hash_chain.chain_rows` computes (the aggregate's previous event in the
    store, or earlier in the same save) and the chain verifies. A save of
    several whose one version is taken writes nothing, and the store goes on
    after it."""
    ledger = FieldLedger(database_url)
    try:
        recorder = ledger.ledger_recorder
        if isinstance(recorder, LedgerPostgresRecorder):
            assert recorder.one_trip  # the path under test is the one taken
        first, second = book(ledger, "a"), book(ledger, "b")
        a, b = recorder.select_events(first)[-1], recorder.select_events(second)[-1]
        stored_before = {first: recorder.event_hashes(first), second: recorder.event_hashes(second)}
        head = recorder.max_notification_id()
        verdict = verify_chain(recorder)
        new = UUID(int=random.getrandbits(128), version=4)

        def later(event: Any, by: int, state: bytes) -> Any:
            return dataclasses.replace(
                event, originator_version=event.originator_version + by, state=state
            )

        save = [
            later(a, 1, b"a+1"), later(b, 1, b"b+1"), later(a, 2, b"a+2"),
            dataclasses.replace(a, originator_id=new, originator_version=1, state=b""),
            dataclasses.replace(a, originator_id=new, originator_version=2, state=b"n2"),
        ]  # fmt: skip
        positions = list(recorder.insert_events(save))
        assert positions == sorted(positions) and positions[0] > head
        expected = chain_rows(save, positions, verdict.head_chain_hash, {
            str(first): stored_before[first][a.originator_version],
            str(second): stored_before[second][b.originator_version],
        })  # fmt: skip
        for row in expected:
            assert recorder.event_hashes(row.originator_id)[row.originator_version] == (
                row.event_hash
            )
            assert recorder.position_of(row.originator_id, row.originator_version) == row.position
        verdict = verify_chain(recorder)
        assert verdict.intact, verdict.broken
        assert verdict.head_chain_hash == expected[-1].chain_hash
        # Its second event's version is taken: nothing of it is written.
        with pytest.raises(IntegrityError):
            recorder.insert_events([later(b, 2, b"b+2"), later(a, 2, b"again")])
        assert recorder.max_notification_id() == positions[-1]
        assert set(recorder.event_hashes(second)) == {b.originator_version, b.originator_version + 1}
        recorder.insert_events([later(b, 2, b"b+2"), later(a, 3, b"a+3")])
        verdict = verify_chain(recorder)
        assert verdict.intact, verdict.broken
        assert verdict.events == len(stored_positions(ledger))
    finally:
        ledger.close()


@pytest.mark.postgres
def test_a_save_sends_no_notification(pg_url: str) -> None:
    """Nothing listens to the store's channel: a NOTIFY per save only woke every
    LISTENing backend of the database (`LedgerPostgresRecorder._notify_channel`)."""
    ledger = FieldLedger(pg_url)
    try:
        recorder = ledger.recorder
        assert isinstance(recorder, LedgerPostgresRecorder)
        with recorder.datastore.get_connection() as conn:
            conn.execute(f'LISTEN "{recorder.channel_name}"')
            order = book(ledger)  # the one-trip save
            ledger.work_order_command(DISPATCHER, order, "assign", {"technician_id": "t"})
            recorder.one_trip = False  # the library's insert path (erasures)
            book(ledger)
            assert list(conn.notifies(timeout=0.5)) == []
            conn.execute("UNLISTEN *")
    finally:
        ledger.close()


def test_idempotency_and_if_match_behave_as_before_on_the_fast_path(
    ledgers: tuple[FieldLedger, FieldLedger],
) -> None:
    first, second = ledgers
    order = book(first)
    key = Idempotency("k-1", "fp")
    a = first.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-1"},
                                 idempotency=key)  # fmt: skip
    again = second.work_order_command(DISPATCHER, order, "assign",
                                      {"technician_id": "tech-1"}, idempotency=key)  # fmt: skip
    assert again.replayed and again.version == a.version and again.position == a.position
    with pytest.raises(VersionMismatch) as refused:
        first.work_order_command(TECH, order, "confirm", {}, expected_version=a.version - 1)
    assert refused.value.current == a.version


def test_the_cache_is_bounded(database_url: str) -> None:
    ledger = FieldLedger(database_url, aggregate_cache=3)
    try:
        for _ in range(6):
            order = book(ledger)
            ledger.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-1"})
        assert 0 < len(ledger.aggregate_cache) <= 3
    finally:
        ledger.close()


def test_a_stale_cached_copy_never_decides_a_command(
    ledgers: tuple[FieldLedger, FieldLedger],
) -> None:
    first, second = ledgers
    order = book(first)
    first.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-1"})
    cached = first.aggregate_cache.get(order)
    assert cached is not None and cached.version == 2  # the next command reads no events
    # Another worker moves the order on: first's copy is now stale.
    second.work_order_command(TECH, order, "confirm", {})
    # If-Match with the store's version: the stale copy (2) must not refuse it.
    r = first.work_order_command(TECH, order, "depart", {}, expected_version=3)
    assert (r.version, r.state) == (4, "en_route")
    # A command only the fresh state allows (arrive after depart), and a stale
    # copy that would write a version already taken: both land on the store's state.
    second.work_order_command(TECH, order, "arrive", {})
    r = first.work_order_command(TECH, order, "start", {
        "identity_shown": True, "risk_assessment": "ok", **ON_SITE_CHECKS})  # fmt: skip
    assert r.version == 6
    assert first.get(WorkOrder, order).version == 6
    # If-Match naming the version second's stale copy holds (5), not the store's.
    assert second.aggregate_cache.get(order).version == 5
    with pytest.raises(VersionMismatch) as refused:
        second.work_order_command(TECH, order, "complete", {
            "summary": "done", "parts_used": [], "checklist": CHECKLIST}, expected_version=5)  # fmt: skip
    assert refused.value.current == 6


def _clear_values(value: Any, found: list[Any]) -> None:
    if isinstance(value, Customer) or type(value).__name__ == "Signature":
        found.append(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _clear_values(getattr(value, f.name), found)
    elif isinstance(value, list | tuple | set):
        for v in value:
            _clear_values(v, found)
    elif isinstance(value, dict):
        for v in value.values():
            _clear_values(v, found)


def test_the_cache_never_holds_personal_data_in_clear_and_forgets_on_erasure(
    database_url: str,
) -> None:
    ledger = FieldLedger(database_url)
    try:
        order = book(ledger, "王先生")
        # The booking's customer is in clear in the new aggregate: kept with it
        # sealed, as its save wrote it and as the store gives it back.
        booked = ledger.aggregate_cache.get(order)
        assert booked is not None and isinstance(booked.customer, SealedPersonalData)
        assert not ledger.personal_data.holds_in_clear(booked)
        assert vars(booked) == vars(ledger.get(WorkOrder, order))
        ledger.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-1"})
        for command in ("confirm", "depart", "arrive"):
            ledger.work_order_command(TECH, order, command, {})
        ledger.work_order_command(TECH, order, "start", {
            "identity_shown": True, "risk_assessment": "ok", **ON_SITE_CHECKS})  # fmt: skip
        ledger.work_order_command(TECH, order, "complete", {
            "summary": "done", "parts_used": [], "checklist": CHECKLIST})  # fmt: skip
        assert ledger.aggregate_cache.get(order) is not None
        # The acceptance's signature is in clear in its event, not in the
        # aggregate's state: kept, and holding the customer sealed, as stored.
        ledger.work_order_command(TECH, order, "accept", {"signed_by": "王先生"})
        cached = ledger.aggregate_cache.get(order)
        assert cached is not None
        found: list[Any] = []
        _clear_values(vars(cached), found)
        assert found == []
        assert any(isinstance(v, SealedPersonalData) for v in vars(cached).values())
        assert vars(cached) == vars(ledger.get(WorkOrder, order))  # as the store has it
        assert not ledger.personal_data.holds_in_clear(cached)
        customer = ledger.personal_data.customer_id("13800000000")
        ledger.erase_customer(SUPERVISOR, customer, "asked")
        assert len(ledger.aggregate_cache) == 0
    finally:
        ledger.close()


def test_a_data_key_is_remembered_and_seals_without_a_query(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer's data key is fetched once per process, not once per
    booking or acceptance: the save checks it still exists (the tests below)."""
    ledger = FieldLedger(database_url)
    try:
        book(ledger)  # the customer's data key is made and remembered
        vault = ledger.personal_data

        def no_query(cid: str) -> Any:
            raise AssertionError("a data key query while sealing")

        monkeypatch.setattr(vault, "_fetch_data_key", no_query)
        customer = Customer("王先生", "13800000000", "上海")
        vault.prepare([SimpleNamespace(customer=customer)])
        with vault.sealing() as used:
            sealed = [vault.seal(customer), vault.seal(customer)]
        assert all(isinstance(s, SealedPersonalData) for s in sealed)
        assert used == [sealed[0].key_id, sealed[1].key_id]
        book(ledger)  # a whole booking, no key query either
        with pytest.raises(AssertionError):  # another customer's key is fetched
            vault.seal(Customer("李四", "13900000000", ""))
    finally:
        ledger.close()


def _opened(ledger: FieldLedger, order: UUID) -> dict[str, Any]:
    return ledger.personal_data.reveal(ledger.get(WorkOrder, order).customer)


def test_a_data_key_erased_by_another_process_is_never_sealed_under(
    ledgers: tuple[FieldLedger, FieldLedger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ledgers on one store, as two API workers: the first remembers the
    customer's key, the second erases the customer. The first's next booking
    for that customer is refused by the save under the store's lock (nothing
    written), forgets the key and is sealed under a new one: readable, while
    the order booked before the erasure stays erased."""
    first, second = ledgers
    before = book(first, "王先生")
    customer = first.personal_data.customer_id("13800000000")
    erased_key = first.personal_data._known[str(customer)][0]
    second.erase_customer(SUPERVISOR, customer, "asked")
    assert first.personal_data._known[str(customer)][0] == erased_key  # not told
    refused: list[list[str]] = []
    forget = first.personal_data.forget

    def spy(key_ids: Any) -> None:
        refused.append(list(key_ids))
        forget(key_ids)

    monkeypatch.setattr(first.personal_data, "forget", spy)
    head = first.recorder.max_notification_id()
    after = book(first, "王先生")
    assert refused == [[erased_key]]
    sealed = first.get(WorkOrder, after).customer
    assert isinstance(sealed, SealedPersonalData) and sealed.key_id != erased_key
    assert _opened(second, after)["name"] == "王先生"
    assert _opened(second, before)["name"] == "[erased]"
    # The refused attempt wrote nothing: the booking alone (and its policy
    # record, none here) follows the erasure.
    assert stored_positions(first)[-1] == (head or 0) + 1
    verdict = verify_chain(first.recorder)
    assert verdict.intact, verdict.broken


def test_a_save_naming_an_erased_data_key_writes_nothing(database_url: str) -> None:
    """The store's own check, on each insert path (SQLite has one; PostgreSQL
    the server-side save and the library's, which erasures take): a save
    whose events were sealed under a key that no longer exists raises
    DataKeyErased naming it (an IntegrityError: a group commit then writes
    each of its saves alone), and nothing of the save (events, hash rows,
    receipt) is written."""
    ledger = FieldLedger(database_url)
    try:
        recorder = ledger.ledger_recorder
        paths = [True, False] if isinstance(recorder, LedgerPostgresRecorder) else [True]
        for one_trip in paths:
            if isinstance(recorder, LedgerPostgresRecorder):
                recorder.one_trip = one_trip
            _refused_then_written(ledger, recorder)
    finally:
        ledger.close()


def _refused_then_written(ledger: FieldLedger, recorder: Any) -> None:
    order = book(ledger)
    live_key = ledger.get(WorkOrder, order).customer.key_id
    head = recorder.max_notification_id()
    stored = stored_positions(ledger)
    last = recorder.select_events(order)[-1]
    later = dataclasses.replace(last, originator_version=last.originator_version + 1)
    with pytest.raises(DataKeyErased) as refused:
        recorder.insert_events(
            [later],
            receipts=[Receipt("disp-1", f"k-erased-{order}", "fp", {"id": str(order)})],
            **{DATA_KEYS_USED: [live_key, "no-such-key", live_key]},
        )
    assert isinstance(refused.value, IntegrityError)
    assert refused.value.key_ids == ["no-such-key"]
    assert recorder.max_notification_id() == head
    assert recorder.find_receipt("disp-1", f"k-erased-{order}") is None
    assert recorder.event_hashes(order).keys() == {last.originator_version}
    # The same save under keys that exist is written.
    recorder.insert_events([later], **{DATA_KEYS_USED: [live_key]})
    assert stored_positions(ledger)[:-1] == stored
    assert recorder.event_hashes(order).keys() == {
        last.originator_version,
        later.originator_version,
    }
    verdict = verify_chain(recorder)
    assert verdict.intact, verdict.broken


#: The server-side save as main's code (before the data-key check) created it:
#: a store it made, or a worker of it still running beside upgraded ones.
PREVIOUS_SAVE_FUNCTION = (
    'CREATE OR REPLACE FUNCTION "SCHEMA"."fieldledger_save_events"(ids uuid[], versions '
    "bigint[], topics text[], states bytea[], r_actors text[], r_keys text[], r_fingerprints "
    "text[], r_responses text[]) RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ DECLARE i int; "
    "pos bigint; prev text; own text; chained text;   id_bytes bytea; topic_bytes bytea; BEGIN "
    '  SET LOCAL lock_timeout = \'10s\';   LOCK TABLE "SCHEMA"."EVENTS" IN EXCLUSIVE MODE; '
    '  SELECT h.chain_hash INTO chained FROM "SCHEMA"."event_hashes" h     ORDER BY '
    "h.position DESC LIMIT 1;   FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP "
    '    INSERT INTO "SCHEMA"."EVENTS" (originator_id, originator_version, topic, state) '
    "      VALUES (ids[i], versions[i], topics[i], states[i])       RETURNING notification_id "
    "INTO pos;     prev := NULL;     IF versions[i] > 1 THEN       SELECT h.event_hash INTO "
    'prev FROM "SCHEMA"."event_hashes" h         WHERE h.originator_id = ids[i] AND '
    "h.originator_version = versions[i] - 1;     END IF;     id_bytes := "
    "convert_to(ids[i]::text, 'UTF8');     topic_bytes := convert_to(topics[i], 'UTF8'); "
    "    own := encode(sha256(decode(coalesce(prev, "
    "'0000000000000000000000000000000000000000000000000000000000000000'), 'hex') "
    "      || int8send(octet_length(id_bytes)::bigint) || id_bytes       || "
    "int8send(versions[i])       || int8send(octet_length(topic_bytes)::bigint) || "
    "topic_bytes       || int8send(octet_length(states[i])::bigint) || states[i]), 'hex'); "
    "    chained := encode(sha256(decode(coalesce(chained, "
    "'0000000000000000000000000000000000000000000000000000000000000000'), 'hex') "
    "      || int8send(pos) || decode(own, 'hex')), 'hex');     INSERT INTO "
    '"SCHEMA"."event_hashes" VALUES (pos, ids[i], versions[i], own, chained);     RETURN '
    'NEXT pos;   END LOOP;   INSERT INTO "SCHEMA"."idempotency_receipts"     SELECT a, k, '
    "f, r::jsonb FROM unnest(r_actors, r_keys, r_fingerprints, r_responses)     AS u(a, k, "
    "f, r); END; $BODY$"
)
PREVIOUS_SAVE_CALL = (
    'SELECT p FROM "SCHEMA"."fieldledger_save_events"(%s::uuid[], %s::bigint[], %s::text[], '
    "%s::bytea[], %s::text[], %s::text[], %s::text[], %s::text[]) AS p"
)


def _as_previous_code(ledger: FieldLedger) -> None:
    """Make `ledger` save as main's code did: through the previous function, by
    its eight arrays (no data keys to check)."""
    recorder = ledger.ledger_recorder
    assert isinstance(recorder, LedgerPostgresRecorder)
    schema, events = recorder.datastore.schema, recorder.events_table_name
    call = PREVIOUS_SAVE_CALL.replace("SCHEMA", schema)

    def insert_events(stored_events: Any, **kwargs: Any) -> list[int]:
        receipts = kwargs.get("receipts") or []
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(call, (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events], [bytes(e.state) for e in stored_events],
                [r.actor for r in receipts], [r.key for r in receipts],
                [r.fingerprint for r in receipts], [json.dumps(r.response) for r in receipts],
            ))  # fmt: skip
            return [int(row["p"]) for row in curs.fetchall()]

    with recorder.datastore.get_connection() as conn:
        conn.execute(PREVIOUS_SAVE_FUNCTION.replace("SCHEMA", schema).replace("EVENTS", events))
    recorder.insert_events = insert_events  # type: ignore[method-assign]


@pytest.mark.postgres
def test_a_store_saved_by_the_previous_save_function_keeps_working(pg_url: str) -> None:
    """A store main's code created and wrote (the save function of eight
    arrays), then opened by this code, which creates its own function (nine,
    the data keys) beside the previous one at start-up: both save, side by
    side, into one chain that verifies, with If-Match and Idempotency-Key as
    before; the previous function is left for workers of the previous code
    still running (a rolling upgrade)."""
    previous = FieldLedger(pg_url)
    _as_previous_code(previous)
    upgraded: FieldLedger | None = None
    try:
        order = book(previous)
        key = Idempotency("k-upgrade", "fp")
        assigned = previous.work_order_command(
            DISPATCHER, order, "assign", {"technician_id": "tech-1"}, idempotency=key
        )
        upgraded = FieldLedger(pg_url)  # start-up: CREATE OR REPLACE of its functions
        schema = upgraded.ledger_recorder.datastore.schema
        with upgraded.ledger_recorder.datastore.get_connection() as conn:
            signatures = conn.execute(
                "SELECT pronargs FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = %s AND p.proname = 'fieldledger_save_events' ORDER BY 1",
                (schema,),
            ).fetchall()
        assert [r["pronargs"] for r in signatures] == [8, 9]
        again = upgraded.work_order_command(
            DISPATCHER, order, "assign", {"technician_id": "tech-1"}, idempotency=key
        )
        assert again.replayed and again.position == assigned.position
        upgraded.work_order_command(TECH, order, "confirm", {}, expected_version=2)
        later = book(upgraded)  # sealed under the key the previous code made
        previous.work_order_command(TECH, order, "depart", {})  # the previous code, still
        previous.work_order_command(DISPATCHER, later, "assign", {"technician_id": "t"})
        with pytest.raises(VersionMismatch):
            upgraded.work_order_command(TECH, order, "arrive", {}, expected_version=3)
        upgraded.work_order_command(TECH, order, "arrive", {}, expected_version=4)
        assert upgraded.get(WorkOrder, order).version == 5
        assert _opened(upgraded, later)["name"] == "c"
        verdict = verify_chain(upgraded.recorder)
        assert verdict.intact, verdict.broken
        assert verdict.events == len(stored_positions(upgraded)) >= 8
    finally:
        previous.close()
        if upgraded is not None:
            upgraded.close()


@pytest.mark.postgres
def test_a_connection_keeps_one_save_cursor_through_refused_saves(pg_url: str) -> None:
    """The save's cursor is made once per pooled connection (psycopg chooses
    the arrays' dumpers per cursor): the same cursor serves every save on that
    connection, a refused save (a duplicate version) leaves it usable, and the
    saves it writes are the store's, in one chain that verifies."""
    ledger = FieldLedger(pg_url)
    try:
        recorder = ledger.ledger_recorder
        assert isinstance(recorder, LedgerPostgresRecorder)
        order = book(ledger)
        with recorder.datastore.get_connection() as conn:

            @contextlib.contextmanager
            def this_connection() -> Iterator[Any]:
                yield conn

            recorder.datastore.get_connection = this_connection  # type: ignore[method-assign]
            cursor = _save_cursor(conn)
            assert _save_cursor(conn) is cursor
            events = recorder.select_events(order)
            # Its version is taken (psycopg's error: the pool's wrapping is patched out).
            with pytest.raises(psycopg.IntegrityError):
                recorder.insert_events([events[-1]])
            assert _save_cursor(conn) is cursor
            again = dataclasses.replace(
                events[-1], originator_version=events[-1].originator_version + 1
            )
            (position,) = recorder.insert_events([again])
            assert _save_cursor(conn) is cursor
            assert cursor.statusmessage == "SELECT 1"  # the save ran on it
            # Saves without receipts or data keys send those arrays as NULLs;
            # one with both, on the same cursor and prepared statement, keeps them.
            receipt = Receipt("disp-1", "k-cursor", "fp", {"ok": True})
            later = dataclasses.replace(again, originator_version=again.originator_version + 1)
            keys = [str(r["key_id"]) for r in conn.execute(
                f'SELECT key_id FROM "{recorder.datastore.schema}".customer_data_keys'
            ).fetchall()]  # fmt: skip
            assert keys
            recorder.insert_events([later], receipts=[receipt], **{DATA_KEYS_USED: keys})
            assert recorder.find_receipt("disp-1", "k-cursor") == receipt
            assert recorder.position_of(order, again.originator_version) == position
            assert recorder.position_of(order, later.originator_version) is not None
            cursor.close()  # a closed one is replaced
            assert _save_cursor(conn) is not cursor
        del recorder.datastore.get_connection
        verdict = verify_chain(recorder)
        assert verdict.intact, verdict.broken
    finally:
        ledger.close()
