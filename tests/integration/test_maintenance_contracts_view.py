"""The maintenance contracts view: what it lists, the sweep step's candidates,
and a rebuild from zero equal to the incremental view (003 第十五條)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import pytest
from fieldledger.application.ledger import SYSTEM, Caller, FieldLedger
from fieldledger.application.renewal_notices import record_renewal_notices
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, Zone
from fieldledger.projections.maintenance_contracts import ContractRenewals

from tests.integration.conftest import open_world
from tests.integration.field import utc
from tests.integration.test_reports_rebuild import live_rows

DESK = Caller("disp-1", Role.DISPATCHER)
CUSTOMER = Customer("王五", "13900000000", "上海")


def sign(ledger: FieldLedger, ends_on: date) -> UUID:
    return ledger.sign_maintenance_contract(
        DESK, customer=CUSTOMER, starts_on=date(2026, 1, 1), ends_on=ends_on, visits_per_year=4
    ).id


def contract_order(ledger: FieldLedger, contract: UUID) -> None:
    ledger.book_work_order(
        DESK, customer=CUSTOMER, service_type="保養", priority=Priority.ROUTINE,
        zone=Zone.URBAN, channel=Channel.PHONE, billing=Billing.CONTRACT,
        description="季度保養", contract_id=contract,
    )  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_view_lists_candidates_and_rebuilds_equal_003_15(
    request: pytest.FixtureRequest, backend: str
) -> None:
    url = str(request.getfixturevalue(f"{'sqlite' if backend == 'sqlite' else 'pg'}_url"))
    world, ledger = open_world(url, batch_size=3)
    try:
        world.field.at(utc("2026-11-10T02:00"))
        soon = sign(ledger, date(2026, 12, 5))  # notice due 5 November
        later = sign(ledger, date(2027, 3, 31))  # notice due 28 February
        ended = sign(ledger, date(2026, 11, 30))
        ledger.maintenance_contract_command(DESK, ended, "end", {"reason": "sold the house"})
        contract_order(ledger, soon)
        contract_order(ledger, soon)
        renewals = ContractRenewals(world.projections)
        renewals.catch_up()
        assert renewals.notices_pending(date(2026, 11, 10)) == [soon]
        assert renewals.notices_pending(date(2027, 3, 1)) == [later]

        recorded = record_renewal_notices(ledger, renewals, utc("2026-11-10T02:00"))
        assert [(n.contract_id, n.ends_on, n.due_on) for n in recorded] == [
            (soon, date(2026, 12, 5), date(2026, 11, 5))
        ]
        assert record_renewal_notices(ledger, renewals, utc("2026-11-10T03:00")) == []
        events = list(ledger.events.get(soon))
        assert (events[-1].actor, events[-1].role) == (SYSTEM.actor, "system")

        projections = world.projections
        projections.catch_up("maintenance_contracts")
        with projections.reading("maintenance_contracts") as (tx, t):
            due: list[dict[str, Any]] = projections.models["maintenance_contracts"].renewals_due(
                tx, t, date(2026, 11, 10)
            )
        assert [(d["contract_id"], d["notice_recorded"], d["orders"]) for d in due] == [
            (str(soon), True, 2)
        ]
        incremental = live_rows(projections, "maintenance_contracts")
        projections.rebuild("maintenance_contracts")
        assert live_rows(projections, "maintenance_contracts") == incremental
    finally:
        ledger.close()
