"""Maintenance contracts (contract §11.5): signing, renewal, ending, and the
renewal notice one month before the end (003 第十五條)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4

import pytest
from fieldledger.domain.errors import CommandNotAllowed, InvalidCommand
from fieldledger.domain.facts import Context, Role
from fieldledger.domain.maintenance_contracts import (
    ContractState,
    MaintenanceContract,
    renewal_notice_on,
)
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, WorkOrder, Zone

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
CUSTOMER = Customer("王五", "13900000000", "上海市浦东新区1号")


def desk() -> Context:
    return Context("disp-1", Role.DISPATCHER, NOW)


def system() -> Context:
    return Context("system", Role.SYSTEM, NOW)


def contract(starts_on: date = date(2026, 1, 1), ends_on: date = date(2026, 12, 31),
             visits: int = 4) -> MaintenanceContract:  # fmt: skip
    return MaintenanceContract.sign(
        desk(), id=uuid4(), customer=CUSTOMER, starts_on=starts_on, ends_on=ends_on,
        visits_per_year=visits,
    )  # fmt: skip


def test_signing_records_the_customer_dates_and_visits() -> None:
    c = contract()
    (signed,) = c.collect_events()
    assert isinstance(signed, MaintenanceContract.Signed)
    assert (signed.customer, signed.starts_on, signed.ends_on, signed.visits_per_year) == (
        CUSTOMER, date(2026, 1, 1), date(2026, 12, 31), 4,
    )  # fmt: skip
    assert (signed.actor, signed.role) == ("disp-1", "dispatcher")
    assert c.state is ContractState.ACTIVE


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("ends_on", {"ends_on": date(2026, 1, 1)}),
        ("ends_on", {"ends_on": date(2025, 12, 31)}),
        ("visits_per_year", {"visits": 0}),
        ("visits_per_year", {"visits": 367}),
        # Dates whose month before, or local midnight in UTC, would not exist.
        ("starts_on", {"starts_on": date(1, 1, 1)}),
        ("ends_on", {"ends_on": date(9999, 12, 31)}),
    ],
)
def test_a_contract_that_cannot_hold_is_refused(field: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidCommand) as refused:
        contract(**kwargs)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_a_contract_needs_the_customers_address() -> None:
    with pytest.raises(InvalidCommand) as refused:
        MaintenanceContract.sign(
            desk(), id=uuid4(), customer=Customer("王五", "139", " "),
            starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31), visits_per_year=4,
        )  # fmt: skip
    assert refused.value.field == "customer.address"


@pytest.mark.parametrize(
    ("ends_on", "notice_on"),
    [
        (date(2026, 12, 31), date(2026, 11, 30)),
        (date(2027, 3, 31), date(2027, 2, 28)),  # a shorter month: its last day
        (date(2028, 3, 30), date(2028, 2, 29)),
        (date(2027, 1, 15), date(2026, 12, 15)),
    ],
)
def test_the_renewal_notice_is_due_one_month_before_the_end_003_15(
    ends_on: date, notice_on: date
) -> None:
    assert renewal_notice_on(ends_on) == notice_on


def test_the_notice_is_pending_from_a_month_before_the_end_through_the_end_003_15() -> None:
    c = contract(ends_on=date(2026, 12, 31))
    assert not c.renewal_notice_pending(date(2026, 11, 29))
    assert c.renewal_notice_pending(date(2026, 11, 30))
    assert c.renewal_notice_pending(date(2026, 12, 31))
    assert not c.renewal_notice_pending(date(2027, 1, 1))  # lapsed: past noticing


def test_the_notice_is_recorded_once_per_end_date_003_15() -> None:
    c = contract(ends_on=date(2026, 12, 31))
    c.record_renewal_notice(system(), date(2026, 12, 1))
    notice = c.collect_events()[-1]
    assert isinstance(notice, MaintenanceContract.RenewalNoticeDue)
    assert (notice.ends_on, notice.due_on, notice.actor) == (
        date(2026, 12, 31), date(2026, 11, 30), "system",
    )  # fmt: skip
    assert not c.renewal_notice_pending(date(2026, 12, 2))
    with pytest.raises(CommandNotAllowed):
        c.record_renewal_notice(system(), date(2026, 12, 2))


def test_a_notice_before_its_due_date_is_refused_003_15() -> None:
    c = contract(ends_on=date(2026, 12, 31))
    with pytest.raises(CommandNotAllowed):
        c.record_renewal_notice(system(), date(2026, 11, 29))


def test_a_renewal_brings_a_new_notice_before_the_new_end_003_15() -> None:
    c = contract(ends_on=date(2026, 12, 31))
    c.record_renewal_notice(system(), date(2026, 12, 1))
    c.renew(desk(), date(2027, 12, 31))
    assert c.ends_on == date(2027, 12, 31)
    assert not c.renewal_notice_pending(date(2026, 12, 2))
    assert c.renewal_notice_pending(date(2027, 11, 30))


def test_a_renewal_beyond_the_calendar_is_refused() -> None:
    with pytest.raises(InvalidCommand) as refused:
        contract().renew(desk(), date(9999, 12, 31))
    assert refused.value.field == "ends_on"


@pytest.mark.parametrize("ends_on", [date(2026, 12, 31), date(2026, 6, 30)])
def test_a_renewal_not_after_the_current_end_is_refused(ends_on: date) -> None:
    c = contract(ends_on=date(2026, 12, 31))
    with pytest.raises(InvalidCommand) as refused:
        c.renew(desk(), ends_on)
    assert refused.value.field == "ends_on"
    assert "2026-12-31" in refused.value.message


def test_an_ended_contract_is_neither_renewed_nor_noticed_nor_ended_again() -> None:
    c = contract()
    c.end(desk(), "customer moved")
    assert c.state is ContractState.ENDED
    with pytest.raises(CommandNotAllowed):
        c.renew(desk(), date(2027, 12, 31))
    with pytest.raises(CommandNotAllowed):
        c.end(desk())
    assert not c.renewal_notice_pending(date(2026, 12, 1))


def test_a_contract_covers_the_days_it_runs_while_active() -> None:
    c = contract(starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))
    assert c.covers(date(2026, 1, 1)) is None
    assert c.covers(date(2026, 12, 31)) is None
    assert "runs from 2026-01-01 to 2026-12-31" in (c.covers(date(2027, 1, 1)) or "")
    c.end(desk())
    assert "has ended" in (c.covers(date(2026, 6, 1)) or "")


def book(billing: Billing, contract_id: object) -> WorkOrder:
    return WorkOrder.book(
        desk(), id=uuid4(), customer=CUSTOMER, service_type="保養", priority=Priority.ROUTINE,
        zone=Zone.URBAN, channel=Channel.PHONE, billing=billing, description="年度保養",
        policy_version="v", contract_id=contract_id,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_contract_order_may_name_its_contract_003_1() -> None:
    contract_id = uuid4()
    order = book(Billing.CONTRACT, contract_id)
    assert order.contract_id == contract_id
    assert book(Billing.CONTRACT, None).contract_id is None


@pytest.mark.parametrize("billing", [Billing.PAID, Billing.WARRANTY])
def test_only_a_contract_order_names_a_contract(billing: Billing) -> None:
    with pytest.raises(InvalidCommand) as refused:
        book(billing, uuid4())
    assert refused.value.field == "contract_id"
