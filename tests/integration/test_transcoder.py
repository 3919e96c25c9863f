"""The ledger's transcoder (application/transcoder.py) writes exactly the bytes
the library's `JSONTranscoder` writes, for every kind of value our events hold,
and the sealing's shortcuts (personal_data.py) seal exactly as before."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError
from fieldledger.application import personal_data
from fieldledger.application.commands import WORK_ORDER
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.application.transcoder import LedgerTranscoder
from fieldledger.domain.complaints import Complainant, ComplaintChannel, Severity
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import (
    Appointment,
    Billing,
    Channel,
    Customer,
    Priority,
    Zone,
)

from tests.procedure import CHECKLIST, ON_SITE_CHECKS

DISPATCHER = Caller("disp-1", Role.DISPATCHER)
TECH = Caller("tech-1", Role.TECHNICIAN)
SUPERVISOR = Caller("sup-1", Role.SUPERVISOR)
APP = Caller("app-1", Role.CLIENT_APP)


def library_transcoder(ledger: FieldLedger) -> JSONTranscoder:
    """The library's own transcoder, with the ledger's transcodings."""
    plain = JSONTranscoder()
    ledger.register_transcodings(plain)
    return plain


def state_of(event: Any) -> dict[str, Any]:
    """What `Mapper.to_stored_event` encodes of an event."""
    state = dict(vars(event))
    del state["originator_id"], state["originator_version"]
    class_version = getattr(type(event), "class_version", 1)
    if class_version > 1:
        state["class_version"] = class_version
    return state


def give_everything(ledger: FieldLedger) -> None:
    """Events holding every kind of value: enums, value objects (nested, with
    lists, decimals and dates), instants, UUIDs, None, sealed personal data."""
    order = ledger.book_work_order(
        DISPATCHER, customer=Customer("王先生", "+86 138-0000-0000", "上海 \"路\"\n1号"),
        service_type="空调维修", priority=Priority.URGENT, zone=Zone.URBAN,
        channel=Channel.PHONE, billing=Billing.PAID, description="不制冷 \u2028 é",
        model="KFR-35", purchase_date=date(2024, 2, 29),
        appointment=Appointment(ledger.clock(), ledger.clock() + timedelta(hours=2)),
    ).id  # fmt: skip
    ledger.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-1"})
    for command in ("confirm", "depart", "arrive"):
        ledger.work_order_command(TECH, order, command, {})
    ledger.work_order_command(TECH, order, "start", {
        "identity_shown": True, "risk_assessment": "ok", **ON_SITE_CHECKS})  # fmt: skip
    complete = WORK_ORDER["complete"]
    ledger.execute(complete, TECH, order, complete.body.model_validate({
        "summary": "done", "checklist": [dataclasses.asdict(c) for c in CHECKLIST],
        "parts_used": [{"name": "电容", "quantity": 2, "unit_price": 12.5,
                        "replaced_serial_numbers": ["A1", "B2"]}]}))  # fmt: skip
    ledger.work_order_command(TECH, order, "accept", {"signed_by": "王先生"})
    ledger.work_order_command(APP, order, "feedback", {
        "csat": 5, "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4,
        "praise": False})  # fmt: skip
    ledger.lodge_complaint(
        SUPERVISOR, customer=Complainant("c", "1"), channel=ComplaintChannel.EMAIL,
        category="billing", severity=Severity.CRITICAL, description="charged twice",
        work_order_id=order,
    )  # fmt: skip
    ledger.record_conduct(SUPERVISOR, "tech-1", kind="sleeping", points=Decimal("-3"),
                          note="asleep")  # fmt: skip


def test_the_ledger_encodes_with_its_transcoder(sqlite_url: str) -> None:
    ledger = FieldLedger(sqlite_url)
    try:
        assert type(ledger.mapper.transcoder) is LedgerTranscoder
    finally:
        ledger.close()


def test_every_stored_event_encodes_to_the_same_bytes_as_the_librarys(sqlite_url: str) -> None:
    ledger = FieldLedger(sqlite_url)
    try:
        give_everything(ledger)
        ours, theirs = ledger.mapper.transcoder, library_transcoder(ledger)
        stored = ledger.recorder.select_notifications(start=1, limit=1000)
        kinds = set()
        for record in stored:
            state = state_of(ledger.mapper.to_domain_event(record))
            assert ours.encode(state) == theirs.encode(state) == record.state, record.topic
            kinds.add(record.topic.rsplit(".", 1)[-1])
        assert {"Booked", "ServiceCompleted", "Accepted", "Lodged", "ConductRecorded"} <= kinds
    finally:
        ledger.close()


def test_events_in_clear_seal_to_the_same_bytes(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A booking's and an acceptance's events, personal data in clear: sealed
    by our transcoder as by the library's (the nonce fixed, so the bytes compare)."""
    ledger = FieldLedger(sqlite_url)
    try:
        captured: list[Any] = []
        save = ledger.committer.save

        def capture(events: Any, receipt: Any) -> Any:
            captured.extend(events)
            return save(events, receipt)

        monkeypatch.setattr(ledger.committer, "save", capture)
        give_everything(ledger)
        monkeypatch.setattr(personal_data.secrets, "token_bytes", lambda n: b"\x01" * n)
        ours, theirs = ledger.mapper.transcoder, library_transcoder(ledger)
        clear = [e for e in captured if ledger.personal_data.holds_in_clear(e)]
        assert {type(e).__name__ for e in clear} >= {"Booked", "Accepted", "Lodged"}
        with ledger.personal_data.sealing():
            for event in clear:
                assert ours.encode(state_of(event)) == theirs.encode(state_of(event))
    finally:
        ledger.close()


def test_the_sealed_plaintext_is_the_sorted_json_of_the_fields(sqlite_url: str) -> None:
    ledger = FieldLedger(sqlite_url)
    try:
        vault = ledger.personal_data
        customer = Customer('王先生 "x"', "13800000000", "上海\n1号")
        with vault.sealing():
            sealed = vault.seal(customer)
        key = vault._data_key(vault.customer_id(customer.phone))[1]
        raw = personal_data._unb64(sealed.ciphertext)
        plaintext = personal_data.AESGCM(key).decrypt(
            raw[: personal_data._NONCE], raw[personal_data._NONCE :],
            personal_data._aad(sealed.sealed, sealed.customer_id, sealed.key_id),
        )  # fmt: skip
        fields = dataclasses.asdict(customer)
        assert plaintext == json.dumps(fields, ensure_ascii=False, sort_keys=True).encode()
    finally:
        ledger.close()


def test_customer_ids_are_remembered_as_derived(sqlite_url: str) -> None:
    ledger = FieldLedger(sqlite_url)
    try:
        vault = ledger.personal_data
        first = vault.customer_id("+86 138-0000-0000")
        assert vault.customer_id("+86 138-0000-0000") == first == vault.customer_id("13800000000")
        vault._customer_ids.clear()
        assert vault.customer_id("+86 138-0000-0000") == first
        assert vault.customer_id("13900000000") != first
        assert isinstance(first, UUID)
    finally:
        ledger.close()


def test_a_type_without_transcoding_is_refused() -> None:
    @dataclasses.dataclass
    class Unknown:
        x: int

    with pytest.raises(TranscodingNotRegisteredError):
        LedgerTranscoder().encode({"a": Unknown(1)})


def test_a_type_registered_after_first_use_is_encoded_by_its_transcoding(
    sqlite_url: str,
) -> None:
    ledger = FieldLedger(sqlite_url)
    try:
        ours = ledger.mapper.transcoder
        assert isinstance(ours, LedgerTranscoder)
        assert (
            ours.encode({"d": date(2026, 1, 2)})
            == b'{"d":{"_type_":"date_iso","_data_":"2026-01-02"}}'
        )

        class Other:
            pass

        class OtherAsText:
            type = Other
            name = "other"

            def encode(self, obj: Other) -> str:
                return "o"

            def decode(self, data: str) -> Other:
                return Other()

        with pytest.raises(TranscodingNotRegisteredError):
            ours.encode([Other()])
        ours.register(OtherAsText())  # type: ignore[arg-type]
        assert ours.encode([Other(), 1.5, None]) == b'[{"_type_":"other","_data_":"o"},1.5,null]'
    finally:
        ledger.close()


def test_a_result_at_a_position_is_the_result_with_that_position() -> None:
    from fieldledger.application.ledger import CommandResult

    assert [f.name for f in dataclasses.fields(CommandResult)] == [
        "id", "version", "state", "position", "created", "replayed"]  # fmt: skip
    result = CommandResult(UUID(int=7), 3, "assigned", None, created=True, replayed=True)
    assert result.at(12) == dataclasses.replace(result, position=12)
    assert CommandResult(UUID(int=8), 1, "booked").at(None) == CommandResult(UUID(int=8), 1, "booked")


@pytest.mark.parametrize(
    "fields",
    [
        {"name": '王先生 "x"', "phone": "13800000000", "address": "上海\n1号\t\x7f"},
        {"z": None, "a": 1.5, "m": [1, "二", {"b": True, "a": False}], "e": "", "n": -0.0},
        {},
    ],
)
def test_the_sealed_plaintext_is_json_encoders_text(fields: dict[str, Any]) -> None:
    """The encoder made once gives what `json.dumps(..., ensure_ascii=False,
    sort_keys=True)` gives, key order and separators included."""
    expected = json.dumps(fields, ensure_ascii=False, sort_keys=True).encode()
    assert personal_data._sealed_plaintext(fields) == expected


def test_a_data_keys_cipher_is_made_once_and_forgotten_with_the_key(sqlite_url: str) -> None:
    ledger = FieldLedger(sqlite_url)
    try:
        vault = ledger.personal_data
        first, second = Customer("王先生", "13800000000", "上海"), Customer("李", "139", "北京")
        sealed = [vault.seal(first), vault.seal(first), vault.seal(second)]
        assert set(vault._ciphers) == {sealed[0].key_id, sealed[2].key_id}
        assert sealed[0].key_id == sealed[1].key_id != sealed[2].key_id
        assert sealed[0].ciphertext != sealed[1].ciphertext  # a nonce each
        for one, customer in zip(sealed, (first, first, second), strict=True):
            assert vault.reveal(one) == {
                "customer_id": one.customer_id, **dataclasses.asdict(customer)}  # fmt: skip
        vault.forget([sealed[0].key_id])
        assert set(vault._ciphers) == {sealed[2].key_id}
        vault.forget_customer(UUID(sealed[2].customer_id))
        assert vault._ciphers == {}
        vault.seal(second)
        assert set(vault._ciphers) == {sealed[2].key_id}  # the same key, fetched again
    finally:
        ledger.close()


@dataclasses.dataclass
class _Holder:
    inside: Any


class _Items(list[Any]):
    pass


def test_holds_in_clear_passes_over_plain_types_only(sqlite_url: str) -> None:
    """The types learnt plain (enums, bools) are passed over; containers and
    objects are still walked into however often they were met, and personal
    data in clear is found at any depth."""
    ledger = FieldLedger(sqlite_url)
    try:
        vault = ledger.personal_data
        customer = Customer("王先生", "13800000000", "上海")

        class State:
            def __init__(self, **values: Any) -> None:
                self.__dict__.update(values)

        plain = {"p": Priority.URGENT, "flag": True, "n": 3, "when": date(2026, 1, 1),
                 "items": [], "pair": (), "more": _Items(), "d": {}, "h": _Holder(None)}  # fmt: skip
        for _ in range(3):  # the plain types are learnt on the first pass
            assert not vault.holds_in_clear(State(**plain))
        assert not personal_data._LOOK_AT[Priority] and not personal_data._LOOK_AT[bool]
        for where in (
            {"c": customer},
            {"items": [Priority.URGENT, customer]},
            {"pair": (1, (customer,))},
            {"more": _Items([customer])},
            {"d": {"k": customer}},
            {"d": {customer: 1}},
            {"d": {"k": [customer]}},
            {"h": _Holder([customer])},
            {"h": State(x=customer)},
        ):
            assert vault.holds_in_clear(State(**(plain | where))), where
        with vault.sealing():
            sealed = vault.seal(customer)
        state = State(**plain, c=customer, other=Customer("李", "139", "北京"))
        vault.seal_in_place(state)
        assert state.c == sealed  # sealed by this process: replaced
        assert isinstance(state.other, Customer)  # never sealed: left as it is
        assert state.p is Priority.URGENT and state.items == []
    finally:
        ledger.close()


def test_a_plain_type_cannot_be_personal_data() -> None:
    """Values of plain types (and their subclasses, learnt plain) are passed
    over by the sealing's checks: none can be a personal data type."""

    @dataclasses.dataclass(frozen=True)
    class Named(str):
        phone: str = ""

    with pytest.raises(TypeError, match="cannot be a plain type"):
        personal_data.PersonalDataVault([Named])
    assert personal_data.PersonalDataVault([Customer]).types
