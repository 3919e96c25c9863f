"""Customers' personal data in the store (docs/privacy.md), on SQLite and PostgreSQL:
sealed in the events, erased by destroying the customer's data key, and nothing
else about the history changes."""

from __future__ import annotations

import base64
import dataclasses
import threading
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import JSONTranscoder
from fieldledger.application.database import Database
from fieldledger.application.event_store import DATA_KEYS_TABLE, register_value_types
from fieldledger.application.hash_chain import verify_chain
from fieldledger.application.ledger import VALUE_TYPES, FieldLedger, NotFound
from fieldledger.application.personal_data import (
    MasterKey,
    MasterKeyError,
    MasterKeyRotated,
    new_master_key_text,
    parse_master_key,
)
from fieldledger.domain.customers import ERASED, ContactAccess, CustomerRecord, SealedPersonalData
from fieldledger.domain.errors import InvalidCommand, NotPermitted
from fieldledger.domain.work_orders import Customer, WorkOrder
from fieldledger.projections.audit import AuditFilter, AuditTrail
from fieldledger.projections.projector import Projections

from tests.integration.conftest import open_world
from tests.integration.field import CLIENT, DISPATCHER, SUPERVISOR, Clock, Field, utc
from tests.integration.histories import History
from tests.integration.procedure_service import ROSTER, open_service, sh
from tests.store_dump import dump_database, found_in
from tests.views import rows_of

# What tests.integration.field books and lodges with.
ZHANG = ["张三", "13800000000", "北京"]
LI = ["李四", "13900000000"]
REPORTS = ("sla", "satisfaction", "appraisal", "callbacks", "customer_files")


def key(name: str) -> MasterKey:
    return MasterKey(parse_master_key(new_master_key_text(), name), name)


def audit_data(projections: Projections, ledger: FieldLedger, access: ContactAccess) -> list[Any]:
    projections.catch_up("audit")
    with projections.reading("audit") as (tx, t):
        records = AuditTrail.search(tx, t, AuditFilter(), before=None, limit=100_000,
                                    late_after=timedelta(minutes=5))
    return [ledger.personal_data.disclose(r.data, access) for r in records]


def all_rows(projections: Projections) -> dict[str, Any]:
    out = {}
    for name in REPORTS:
        projections.catch_up(name)
        generation = projections.live_generation(name)
        assert generation is not None
        out[name] = rows_of(projections, name, generation)
    return out


def contacts(data: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "customer_id" in value and "phone" in value:
                found.append(value)
            else:
                for v in value.values():
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data)
    return found


def test_erasure_leaves_no_personal_data_and_changes_nothing_else(database_url: str) -> None:
    world, ledger = open_world(database_url, batch_size=50)
    try:
        History(world.field, 7, utc("2026-09-20T00:00")).run(150)
        projections = world.projections
        vault = ledger.personal_data
        zhang = vault.customer_id(ZHANG[1])

        # Sealed from the start: no table holds the contact details in clear,
        # not the events, not the audit view, not the receipts.
        before_dump = dump_database(database_url)
        assert found_in(before_dump, ZHANG + LI) == []
        assert str(zhang) in before_dump  # the pseudonym is what is stored
        before_rows = all_rows(projections)
        before_audit = audit_data(projections, ledger, ContactAccess.FULL)
        shown = contacts(before_audit)
        assert {c["name"] for c in shown} == {"张三", "李四"}  # opened for those who may

        result = ledger.erase_customer(SUPERVISOR, zhang, "consent withdrawn, ticket 17")
        assert result.id == zhang and result.position is not None
        assert vault.key_count(zhang) == 0
        record = ledger.repository.get(zhang)
        assert isinstance(record, CustomerRecord) and record.erasures == 1
        erased_event = next(iter(ledger.events.get(zhang)))
        assert type(erased_event).__name__ == "Erased"
        assert erased_event.reason == "consent withdrawn, ticket 17"  # type: ignore[attr-defined]

        # No table holds Zhang's data in a readable form any more; Li's stays sealed.
        after_dump = dump_database(database_url)
        assert found_in(after_dump, ZHANG + LI) == []
        with Database(ledger.recorder).transaction(commit=False) as tx:
            assert tx.query(
                f"SELECT * FROM {tx.table(DATA_KEYS_TABLE)} WHERE customer_id = ?", (str(zhang),)
            ) == []

        # The chain covers what is stored, and what is stored did not change.
        verdict = verify_chain(ledger.recorder)
        assert verdict.broken is None and verdict.events == projections.head()

        # Every figure is as it was (the read models never held personal data).
        assert all_rows(projections) == before_rows
        after_audit = audit_data(projections, ledger, ContactAccess.FULL)
        assert len(after_audit) == len(before_audit) + 1  # the Erased event
        for then, now in zip(before_audit, after_audit[1:], strict=True):
            for a, b in zip(contacts(then), contacts(now), strict=True):
                if a["customer_id"] == str(zhang):
                    assert b == {"customer_id": str(zhang), "name": ERASED, "phone": ERASED,
                                 "address": ERASED}  # fmt: skip
                else:
                    assert a == b
            assert _without_contacts(then) == _without_contacts(now)
            if "signed_by" in then:  # every order here is Zhang's: signed for him
                assert (then["signed_by"], now["signed_by"]) == ("customer", ERASED)

        # A rebuild of every read model brings nothing back.
        for name in projections.models:
            projections.rebuild(name)
        assert all_rows(projections) == before_rows
        rebuilt = contacts(audit_data(projections, ledger, ContactAccess.FULL))
        assert {c["name"] for c in rebuilt} == {ERASED, "李四"}
        assert found_in(dump_database(database_url), ZHANG + LI) == []

        # The aggregates load; their customer reads [erased].
        order = next(UUID(c["aggregate_id"]) for c in _files(projections, zhang))
        assert vault.reveal(ledger.get(WorkOrder, order).customer)["phone"] == ERASED
    finally:
        ledger.close()


def _files(projections: Projections, customer_id: UUID) -> list[dict[str, Any]]:
    from fieldledger.projections.customer_files import CustomerFiles

    projections.catch_up("customer_files")
    with projections.reading("customer_files") as (tx, t):
        return CustomerFiles.records_of(tx, t, str(customer_id))


def _without_contacts(data: Any) -> Any:
    if isinstance(data, dict):
        if "customer_id" in data and "phone" in data:
            return "<contact>"
        return {k: "<signature>" if k == "signed_by" else _without_contacts(v)
                for k, v in data.items()}  # fmt: skip
    if isinstance(data, list):
        return [_without_contacts(v) for v in data]
    return data


def test_erasure_is_for_supervisors_needs_a_reason_and_an_existing_customer(
    database_url: str,
) -> None:
    world, ledger = open_world(database_url)
    try:
        world.field.book(utc("2026-10-01T02:00"))
        zhang = ledger.personal_data.customer_id("+86 138-0000-0000")  # the same person
        head = ledger.recorder.max_notification_id()
        with pytest.raises(NotPermitted):
            ledger.erase_customer(DISPATCHER, zhang, "asked")
        with pytest.raises(InvalidCommand, match="reason"):
            ledger.erase_customer(SUPERVISOR, zhang, "  ")
        with pytest.raises(InvalidCommand, match="phone number"):
            ledger.erase_customer(SUPERVISOR, zhang, "asked on 138 0000 0000", phone=ZHANG[1])
        with pytest.raises(NotFound):
            ledger.erase_customer(SUPERVISOR, ledger.personal_data.customer_id("1"), "asked")
        assert ledger.recorder.max_notification_id() == head  # nothing written
        assert ledger.personal_data.key_count(zhang) == 1

        first = ledger.erase_customer(SUPERVISOR, zhang, "asked")
        again = ledger.erase_customer(SUPERVISOR, zhang, "asked twice")
        assert (again.version, again.position) == (first.version, None)  # nothing new
        # The customer comes back: new data under a new key, erasable in turn.
        order = world.field.book(utc("2026-10-02T02:00"))
        shown = ledger.personal_data.reveal(ledger.get(WorkOrder, order).customer)
        assert shown["name"] == "张三" and shown["customer_id"] == str(zhang)
        second = ledger.erase_customer(SUPERVISOR, zhang, "asked again")
        assert second.version == 2
        assert ledger.personal_data.reveal(ledger.get(WorkOrder, order).customer)["name"] == ERASED
    finally:
        ledger.close()


class PreSealingLedger(FieldLedger):
    """The ledger as it was before sealing: customers stored in clear."""

    name = "FieldLedger"  # the same tables

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super(FieldLedger, self).register_transcodings(transcoder)
        register_value_types(transcoder, VALUE_TYPES)


def test_events_recorded_before_sealing_stay_readable(database_url: str) -> None:
    old = PreSealingLedger(database_url, record_policy=False)
    try:
        order = Field(old, Clock(utc("2026-10-01T02:00"))).book(utc("2026-10-01T02:00"))
    finally:
        old.close()
    ledger = FieldLedger(database_url)
    try:
        wo = ledger.get(WorkOrder, order)
        assert wo.customer == Customer(*ZHANG)  # the old plain value, as recorded
        assert ledger.personal_data.reveal(wo.customer) == {
            "customer_id": str(ledger.personal_data.customer_id(ZHANG[1])),
            "name": "张三", "phone": "13800000000", "address": "北京",
        }  # fmt: skip
        masked = ledger.personal_data.disclose(
            [e.data for e in ledger.history(WorkOrder, order)], ContactAccess.MASKED
        )
        assert masked[0]["customer"]["phone"] == "138****0000"
        assert masked[0]["customer"]["address"] is None
        # New bookings of the same person are sealed, under the same customer id.
        new = ledger.book_work_order(
            CLIENT, customer=Customer(*ZHANG), service_type="repair",
            **{k: getattr(wo, k) for k in ("priority", "zone", "channel", "billing")},
            description="again",
        )  # fmt: skip
        sealed = ledger.get(WorkOrder, new.id).customer
        assert isinstance(sealed, SealedPersonalData)
        assert sealed.customer_id == str(ledger.personal_data.customer_id(ZHANG[1]))
    finally:
        ledger.close()


def test_a_wrong_master_key_is_refused_and_rotation_rewraps_the_keys(database_url: str) -> None:
    first, second = key("first"), key("second")
    ledger = FieldLedger(database_url, master_key=first)
    try:
        order = Field(ledger, Clock(utc("2026-10-01T02:00"))).book(utc("2026-10-01T02:00"))
    finally:
        ledger.close()
    with pytest.raises(MasterKeyError, match="wrong key") as refused:
        FieldLedger(database_url, master_key=second)
    assert "\n" not in str(refused.value)
    assert first.key_id in str(refused.value) and second.key_id in str(refused.value)

    ledger = FieldLedger(database_url, master_key=first)
    try:
        assert ledger.personal_data.rotate_master(second) == 1
        assert ledger.personal_data.reveal(ledger.get(WorkOrder, order).customer)["name"] == "张三"
    finally:
        ledger.close()
    with pytest.raises(MasterKeyError, match="wrong key"):
        FieldLedger(database_url, master_key=first)
    # A process still holding the old key cannot seal under it any more.
    stale = FieldLedger(database_url, master_key=second)
    try:
        stale.personal_data._master = first
        with pytest.raises(MasterKeyRotated):
            stale.personal_data.seal(Customer("王五", "13700000000", ""))
    finally:
        stale.close()
    ledger = FieldLedger(database_url, master_key=second)
    try:
        sealed = ledger.get(WorkOrder, order).customer
        assert ledger.personal_data.reveal(sealed)["phone"] == "13800000000"
        # Tampered ciphertext never opens to garbage: it is refused.
        raw = bytearray(base64.b64decode(sealed.ciphertext))
        raw[-1] ^= 1
        forged = dataclasses.replace(
            sealed, ciphertext=base64.b64encode(bytes(raw)).decode()
        )
        with pytest.raises(ValueError, match="does not authenticate"):
            ledger.personal_data.reveal(forged)
        # Moved to another customer, it does not open either.
        moved = dataclasses.replace(sealed, customer_id=str(UUID(int=1)))
        with pytest.raises(ValueError, match="does not authenticate"):
            ledger.personal_data.reveal(moved)
    finally:
        ledger.close()


@dataclasses.dataclass(frozen=True)
class ContractHolder:
    """A value object another aggregate (a maintenance contract) might name a customer with."""

    name: str
    phone: str
    site: str


def test_any_aggregates_customer_goes_through_the_same_step(database_url: str) -> None:
    """What docs/privacy.md tells a new aggregate to do: add its value object to
    the personal data types; sealing, ids, masking and erasure follow."""
    from fieldledger.application import personal_data

    types = [*personal_data.PERSONAL_DATA_TYPES, ContractHolder]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(personal_data, "PERSONAL_DATA_TYPES", types)
        ledger = FieldLedger(database_url)
    try:
        vault = ledger.personal_data
        sealed = vault.seal(ContractHolder("张三", "+86 13800000000", "北京工厂"))
        # The same customer as their work orders, by the phone.
        assert sealed.customer_id == str(vault.customer_id("13800000000"))
        stored = ledger.mapper.transcoder.encode({"holder": ContractHolder("张三", "13800000000", "x")})
        assert b"\\u5f20" not in stored and "张三".encode() not in stored
        assert isinstance(ledger.mapper.transcoder.decode(stored)["holder"], SealedPersonalData)
        shown = vault.disclose({"holder": dataclasses.asdict(sealed)}, ContactAccess.MASKED)
        assert shown["holder"] == {"customer_id": sealed.customer_id, "name": "张*",
                                   "phone": "+86****0000", "site": "北京工厂"}  # fmt: skip
        Field(ledger, Clock(utc("2026-10-01T02:00"))).book(utc("2026-10-01T02:00"))
        ledger.erase_customer(SUPERVISOR, UUID(sealed.customer_id), "asked")
        assert vault.reveal(sealed) == {"customer_id": sealed.customer_id, "name": ERASED,
                                        "phone": ERASED, "site": ERASED}  # fmt: skip
    finally:
        ledger.close()


def test_each_customer_has_one_data_key_whoever_makes_it(database_url: str) -> None:
    """Two ledgers on one store (two API workers), neither remembering any key:
    a customer's key is made once, by whichever asks first, and the other
    reads that one; many customers asked for by both at the same moment still
    get one key each, the same in both (PostgreSQL: one statement that reads
    the stored key or inserts a new one, and reads again when another
    process's insert won)."""
    first, second = FieldLedger(database_url), FieldLedger(database_url)
    try:
        made = first.personal_data._data_key(first.personal_data.customer_id("13800000000"))
        read = second.personal_data._data_key(second.personal_data.customer_id("13800000000"))
        assert read == made
        phones = [f"1370000{n:04d}" for n in range(40)]
        found: dict[int, list[tuple[str, bytes]]] = {0: [], 1: []}
        start = threading.Barrier(2)

        def ask(side: int, ledger: FieldLedger) -> None:
            start.wait()
            vault = ledger.personal_data
            found[side] = [vault._data_key(vault.customer_id(phone)) for phone in phones]

        threads = [threading.Thread(target=ask, args=pair) for pair in enumerate((first, second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert found[0] == found[1] and len(found[0]) == len(phones)
        for phone in [ZHANG[1], *phones]:
            assert first.personal_data.key_count(first.personal_data.customer_id(phone)) == 1
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_a_key_is_never_made_under_a_master_key_a_rotation_is_replacing(pg_url: str) -> None:
    """A new customer's key asked for while a rotation holds the keys table
    (`rotate_master`: the vault row, then the table's lock) waits for it, then
    sees the rotation's master key and refuses to wrap a key under the old one:
    nothing is inserted. A stored key wrapped under another master key is
    refused too."""
    ledger = FieldLedger(pg_url, master_key=key("first"))
    base, schema = pg_url.split("?schema=")
    vault_table, keys_table = f'"{schema}".personal_data_vault', f'"{schema}".{DATA_KEYS_TABLE}'
    try:
        vault = ledger.personal_data
        customer = vault.customer_id("13600000000")
        outcome: list[BaseException | tuple[str, bytes]] = []
        with psycopg.connect(base) as rotation:
            rotation.execute(f"UPDATE {vault_table} SET master_key_id = 'next'")
            rotation.execute(f"LOCK TABLE {keys_table} IN EXCLUSIVE MODE")

            def fetch() -> None:
                try:
                    outcome.append(vault._fetch_data_key(str(customer)))
                except BaseException as e:  # handed to the test
                    outcome.append(e)

            asking = threading.Thread(target=fetch)
            asking.start()
            asking.join(0.5)
            assert asking.is_alive()  # waiting for the rotation's lock
            rotation.commit()
        asking.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], MasterKeyRotated)
        assert "next" in str(outcome[0])
        assert vault.key_count(customer) == 0
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"UPDATE {vault_table} SET master_key_id = %s", (vault.master.key_id,))
            vault._fetch_data_key(str(customer))  # made now
            conn.execute(f"UPDATE {keys_table} SET master_key_id = 'next'")
        with pytest.raises(MasterKeyRotated, match="next"):
            vault._fetch_data_key(str(customer))
        assert vault.key_count(customer) == 1
    finally:
        ledger.close()


@pytest.mark.postgres
def test_keys_made_by_one_statement_or_by_the_transaction_are_alike(pg_url: str) -> None:
    """The one statement PostgreSQL now makes a key with writes the row the
    transaction did (main's code, still SQLite's): a key made either way is
    found, not made again, by the other, and opens the orders sealed under
    it; a store written before keeps working."""
    first = FieldLedger(pg_url)
    try:
        vault = first.personal_data
        before = vault.customer_id(ZHANG[1])
        made_before = vault._fetch_or_make_key_in_transaction(str(before))
        vault._known[str(before)] = made_before
        order = Field(first, Clock(utc("2026-10-01T02:00"))).book(utc("2026-10-01T02:00"))
        now = vault.customer_id(LI[1])
        made_now = vault._fetch_data_key(str(now))
        assert vault._fetch_or_make_key_in_transaction(str(now)) == made_now
    finally:
        first.close()
    second = FieldLedger(pg_url)
    try:
        vault = second.personal_data
        assert vault._fetch_data_key(str(before)) == made_before
        assert vault._fetch_data_key(str(now)) == made_now
        sealed = second.get(WorkOrder, order).customer
        assert isinstance(sealed, SealedPersonalData) and sealed.key_id == made_before[0]
        assert vault.reveal(sealed)["name"] == ZHANG[0]
        assert vault.key_count(before) == 1 and vault.key_count(now) == 1
    finally:
        second.close()


def test_a_booking_of_a_customer_its_worker_does_not_remember_is_linked_as_before(
    database_url: str,
) -> None:
    """A booking for a customer whose key the worker does not remember (another
    worker's customer, or this one restarted) reads the stored key (PostgreSQL:
    one statement) and seals under it; a new customer gets a key of their own;
    the repeat call is linked exactly as before."""
    service = open_service(database_url, ROSTER)
    vault = service.ledger.personal_data
    try:
        first = service.book(sh(10, 8, 9))  # a new customer: a key made
        service.field.resolve_remotely(first, sh(10, 8, 10))
        vault._known.clear()
        again = service.book(sh(11, 6, 9), phone="138-0000-0000")  # the key stored
        other = service.book(sh(11, 6, 9), phone="13900000000")  # another new customer
        orders = {o: service.ledger.get(WorkOrder, o) for o in (first, again, other)}
        assert orders[again].repeat_of == first and orders[other].repeat_of is None
        assert orders[first].customer.key_id == orders[again].customer.key_id
        assert orders[other].customer.key_id != orders[first].customer.key_id
        for phone in ("13800000000", "13900000000"):
            assert vault.key_count(vault.customer_id(phone)) == 1
        assert vault.reveal(orders[again].customer)["phone"] == "138-0000-0000"
    finally:
        service.ledger.close()
