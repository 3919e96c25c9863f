"""Maintenance contracts: which are due a renewal notice, and when (003 第十五條).

One row per contract with its dates (local dates, ISO text, so text order is
date order), whether the renewal notice for its current end was recorded, and
how many work orders were booked under it. `renewals_due(on)` lists the active
contracts whose notice date (one month before the end) is on or before `on` —
including lapsed ones (end passed, neither renewed nor ended), which still need
someone to win the renewal (派員前往爭取續約); `notices_pending(on)` are the
sweep's candidates. Customer details stay in the contract's events
(`GET /maintenance-contracts/{id}`): this view keeps no personal data.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar
from uuid import UUID

from fieldledger.application.database import Tx
from fieldledger.domain.maintenance_contracts import MaintenanceContract, renewal_notice_on
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import Batch, ReadModel, Tables
from fieldledger.projections.reporting import index_name, utc_text

NAME = "maintenance_contracts"


class MaintenanceContractsView(ReadModel):
    name = NAME
    schema_version = 1
    tables: ClassVar[tuple[str, ...]] = ("maintenance_contracts",)

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.maintenance_contracts} ("
            "contract_id TEXT PRIMARY KEY, state TEXT NOT NULL, starts_on TEXT NOT NULL, "
            "ends_on TEXT NOT NULL, notice_on TEXT NOT NULL, visits_per_year INTEGER NOT NULL, "
            "renewals INTEGER NOT NULL DEFAULT 0, noticed_ends_on TEXT, noticed_at TEXT, "
            "orders INTEGER NOT NULL DEFAULT 0, signed_at TEXT NOT NULL, ended_at TEXT)"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.maintenance_contracts, 'notice')} "
            f"ON {t.maintenance_contracts} (notice_on)"
        )

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, batch.tx, batch.t, event)

    def _signed(self, tx: Tx, t: Tables, e: MaintenanceContract.Signed) -> None:
        tx.execute(
            f"INSERT INTO {t.maintenance_contracts} (contract_id, state, starts_on, ends_on, "
            "notice_on, visits_per_year, signed_at) VALUES (?, 'active', ?, ?, ?, ?, ?) "
            "ON CONFLICT (contract_id) DO NOTHING",
            (str(e.originator_id), e.starts_on.isoformat(), e.ends_on.isoformat(),
             renewal_notice_on(e.ends_on).isoformat(), e.visits_per_year,
             utc_text(e.occurred_at)),
        )  # fmt: skip

    def _renewed(self, tx: Tx, t: Tables, e: MaintenanceContract.Renewed) -> None:
        tx.execute(
            f"UPDATE {t.maintenance_contracts} SET ends_on = ?, notice_on = ?, "
            "renewals = renewals + 1 WHERE contract_id = ?",
            (e.ends_on.isoformat(), renewal_notice_on(e.ends_on).isoformat(),
             str(e.originator_id)),
        )  # fmt: skip

    def _noticed(self, tx: Tx, t: Tables, e: MaintenanceContract.RenewalNoticeDue) -> None:
        tx.execute(
            f"UPDATE {t.maintenance_contracts} SET noticed_ends_on = ?, noticed_at = ? "
            "WHERE contract_id = ?",
            (e.ends_on.isoformat(), utc_text(e.occurred_at), str(e.originator_id)),
        )

    def _ended(self, tx: Tx, t: Tables, e: MaintenanceContract.Ended) -> None:
        tx.execute(
            f"UPDATE {t.maintenance_contracts} SET state = 'ended', ended_at = ? "
            "WHERE contract_id = ?",
            (utc_text(e.occurred_at), str(e.originator_id)),
        )

    def _booked(self, tx: Tx, t: Tables, e: WorkOrder.Booked) -> None:
        contract_id = getattr(e, "contract_id", None)
        if contract_id is not None:
            tx.execute(
                f"UPDATE {t.maintenance_contracts} SET orders = orders + 1 WHERE contract_id = ?",
                (str(contract_id),),
            )

    _handlers: ClassVar[dict[type, Callable[[MaintenanceContractsView, Tx, Tables, Any], None]]] = {
        MaintenanceContract.Signed: _signed,
        MaintenanceContract.Renewed: _renewed,
        MaintenanceContract.RenewalNoticeDue: _noticed,
        MaintenanceContract.Ended: _ended,
        WorkOrder.Booked: _booked,
    }

    # -- queries -------------------------------------------------------------

    @staticmethod
    def renewals_due(tx: Tx, t: Tables, on: date) -> list[dict[str, Any]]:
        """Active contracts whose renewal notice is due on or before `on`, the
        soonest end first."""
        rows = tx.query(
            f"SELECT * FROM {t.maintenance_contracts} WHERE state = 'active' "
            "AND notice_on <= ? ORDER BY ends_on, contract_id",
            (on.isoformat(),),
        )
        return [
            {
                "contract_id": r["contract_id"],
                "starts_on": r["starts_on"],
                "ends_on": r["ends_on"],
                "notice_on": r["notice_on"],
                "days_left": (date.fromisoformat(r["ends_on"]) - on).days,
                "lapsed": r["ends_on"] < on.isoformat(),
                "notice_recorded": r["noticed_ends_on"] == r["ends_on"],
                "notice_recorded_at": (
                    r["noticed_at"] if r["noticed_ends_on"] == r["ends_on"] else None
                ),
                "visits_per_year": int(r["visits_per_year"]),
                "renewals": int(r["renewals"]),
                "orders": int(r["orders"]),
            }
            for r in rows
        ]

    @staticmethod
    def notices_pending(tx: Tx, t: Tables, on: date) -> list[UUID]:
        day = on.isoformat()
        rows = tx.query(
            f"SELECT contract_id FROM {t.maintenance_contracts} WHERE state = 'active' "
            "AND notice_on <= ? AND ends_on >= ? "
            "AND (noticed_ends_on IS NULL OR noticed_ends_on <> ends_on) "
            "ORDER BY ends_on, contract_id",
            (day, day),
        )
        return [UUID(r["contract_id"]) for r in rows]


class ContractRenewals:
    """The maintenance contracts view as the sweep's source of renewal notices."""

    def __init__(self, projections: Projections) -> None:
        self.projections = projections

    def catch_up(self) -> None:
        self.projections.catch_up(NAME)

    def notices_pending(self, on: date) -> list[UUID]:
        with self.projections.reading(NAME) as (tx, t):
            return MaintenanceContractsView.notices_pending(tx, t, on)
