"""The customer's side of personal data (docs/privacy.md, docs/api.md
"Customers' contact details"): who sees what, masks, erasure records, customer
ids and master keys - no database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from fieldledger.application.personal_data import (
    MasterKeyError,
    normalized_phone,
    parse_master_key,
    resolve_master_key,
)
from fieldledger.domain.customers import (
    ERASED,
    ContactAccess,
    CustomerRecord,
    contact_access,
    mask_name,
    mask_phone,
    masked_contact,
)
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Context, Role

FULL, MASKED = ContactAccess.FULL, ContactAccess.MASKED


def test_the_matrix_of_who_sees_contact_details() -> None:
    assert contact_access(Role.CLIENT_APP, "app") is FULL
    assert contact_access(Role.DISPATCHER, "d") is FULL
    assert contact_access(Role.SUPERVISOR, "s") is FULL
    assert contact_access(Role.TECHNICIAN, "tech-1", "tech-1") is FULL
    assert contact_access(Role.TECHNICIAN, "tech-1", "tech-2") is MASKED
    assert contact_access(Role.TECHNICIAN, "tech-1", None) is MASKED  # not assigned yet
    assert contact_access(Role.TECHNICIAN, "tech-1") is MASKED  # complaints
    assert contact_access(Role.ANALYST, "a") is MASKED
    assert contact_access(Role.SYSTEM, "system") is MASKED


def test_masks() -> None:
    assert mask_phone("13800000000") == "138****0000"
    assert mask_phone("+8613800000000") == "+86****0000"
    assert mask_phone("12345") == "***45"
    assert mask_phone("1") == "*"
    assert mask_phone(ERASED) == ERASED
    assert mask_name("张三") == "张*" and mask_name("Zhang San") == "Z*"
    assert mask_name(ERASED) == ERASED
    contact = {"customer_id": "c", "name": "张三", "phone": "13800000000", "address": "北京"}
    assert masked_contact(contact, FULL) == contact
    assert masked_contact(contact, MASKED) == {
        "customer_id": "c", "name": "张*", "phone": "138****0000", "address": None}  # fmt: skip


def test_an_erasure_says_why_without_the_phone_and_can_happen_again() -> None:
    ctx = Context("sup-1", Role.SUPERVISOR, datetime(2026, 10, 1, tzinfo=UTC))
    with pytest.raises(InvalidCommand, match="reason"):
        CustomerRecord.erase_first(ctx, uuid4(), "", 1)
    with pytest.raises(InvalidCommand, match="phone"):
        CustomerRecord.erase_first(ctx, uuid4(), "call from 138-0000-0000", 1, "13800000000")
    record = CustomerRecord.erase_first(ctx, uuid4(), "consent withdrawn", 1, "13800000000")
    record.erase(ctx, "came back, asked again", 1)
    events = record.collect_events()
    assert [type(e).__name__ for e in events] == ["Erased", "Erased"]
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert isinstance(replayed, CustomerRecord)
    assert (replayed.erasures, replayed.version) == (2, 2)


def test_one_customer_however_the_phone_is_written() -> None:
    same = {normalized_phone(p) for p in (
        "13800000000", "138 0000 0000", "138-0000-0000", "+86 138 0000 0000",
        "008613800000000", "+86-13800000000")}  # fmt: skip
    assert same == {"13800000000"}
    assert normalized_phone("010-12345678") == "01012345678"
    assert normalized_phone("+44 20 7946 0000") == "+442079460000"


def test_master_keys_from_the_environment_a_file_or_generated(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="not a master key"):
        parse_master_key("c2hvcnQ=", "FIELDLEDGER_MASTER_KEY")
    postgres = {"PERSISTENCE_MODULE": "eventsourcing.postgres"}
    with pytest.raises(MasterKeyError, match="refusing to start on PostgreSQL"):
        resolve_master_key(postgres)
    memory = resolve_master_key({"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                                 "SQLITE_DBNAME": "file:x?mode=memory&cache=shared"})  # fmt: skip
    assert memory.generated and memory.path is None
    sqlite = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "f.db")}
    made = resolve_master_key(sqlite)
    assert made.generated and made.path == tmp_path / "f.db.key"
    again = resolve_master_key(sqlite)
    assert not again.generated and again.key == made.key and again.key_id == made.key_id
    from_file = resolve_master_key(postgres, key_file=made.path)
    assert from_file.key == made.key and "key file" in from_file.origin
    assert resolve_master_key(postgres, key=made.path.read_text()).key == made.key  # type: ignore[union-attr]
