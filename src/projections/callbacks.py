"""Callbacks: completed work orders due a follow-up call to the customer.

An order is due callbacks from its completion — `Accepted`, and also
`ResolvedRemotely` (the customer had a problem all the same, and `log-callback`
is allowed on both) — monthly in its first year and quarterly after
(`policy.callbacks`: `monthly_for_months` = 12, `then_every_months` = 3).

Dates are local dates in the policy's time zone. With A the completion date and
B the date of the last `CallbackLogged` (A when none yet), the next callback is
due on B + 1 month while B lies in the first year (B < A + 12 months), else on
B + 3 months; a month later is the same day of the month, or the last day of a
shorter month. On a date D an order is listed when its next callback is due on
or before D, and overdue when it was due before D. See docs/appraisal.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar

from fieldledger.application.database import Tx
from fieldledger.domain.periods import add_months, local_date
from fieldledger.domain.policy import CallbackPolicy
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.read_model import Batch, ReadModel, Tables
from fieldledger.projections.reporting import index_name
from fieldledger.projections.unit_of_work import TableRows


def next_callback_due(
    completed_on: date, last_callback_on: date | None, policy: CallbackPolicy
) -> date:
    """When the next callback is due (see the module's docstring)."""
    base = last_callback_on or completed_on
    first_year_ends = add_months(completed_on, policy.monthly_for_months)
    return add_months(base, 1 if base < first_year_ends else policy.then_every_months)


COLUMNS = (
    "work_order_id", "outcome", "completed_on", "callbacks", "last_callback_on",
    "last_outcome", "next_due_on",
)  # fmt: skip


class CallbacksView(ReadModel):
    name = "callbacks"
    schema_version = 1
    tables: ClassVar[tuple[str, ...]] = ("callbacks",)

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.callbacks} ("
            "work_order_id TEXT PRIMARY KEY, outcome TEXT NOT NULL, completed_on TEXT NOT NULL, "
            "callbacks INTEGER NOT NULL DEFAULT 0, last_callback_on TEXT, last_outcome TEXT, "
            "next_due_on TEXT NOT NULL)"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.callbacks, 'due')} "
            f"ON {t.callbacks} (next_due_on)"
        )

    def begin_batch(self, batch: Batch) -> None:
        rows = batch.state = TableRows(batch.tx, batch.t.callbacks, "work_order_id", COLUMNS, batch)
        ids, handlers = batch.ids, self._handlers
        rows.prefetch(ids[p] for p, e in batch.events if type(e) in handlers)

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, batch.state, event)

    def end_batch(self, batch: Batch) -> None:
        batch.state.flush()

    def _local(self, e: Any) -> date:
        return local_date(e.occurred_at, self.settings.timezone)

    def _completed(self, rows: TableRows, e: Any) -> None:
        completed_on = self._local(e)
        outcome = "accepted" if isinstance(e, WorkOrder.Accepted) else "resolved_remotely"
        due = next_callback_due(completed_on, None, self.settings.policy.callbacks)
        rows.insert(
            str(e.originator_id), outcome=outcome, completed_on=completed_on.isoformat(),
            callbacks=0, next_due_on=due.isoformat(),
        )  # fmt: skip

    def _logged(self, rows: TableRows, e: WorkOrder.CallbackLogged) -> None:
        row = rows.get(str(e.originator_id))
        if row is None:  # pragma: no cover - callbacks follow completion
            return
        called_on = self._local(e)
        due = next_callback_due(
            date.fromisoformat(row["completed_on"]), called_on, self.settings.policy.callbacks
        )
        rows.update(
            str(e.originator_id), callbacks=int(row["callbacks"]) + 1,
            last_callback_on=called_on.isoformat(), last_outcome=e.outcome,
            next_due_on=due.isoformat(),
        )  # fmt: skip

    _handlers: ClassVar[dict[type, Callable[[CallbacksView, TableRows, Any], None]]] = {
        WorkOrder.Accepted: _completed,
        WorkOrder.ResolvedRemotely: _completed,
        WorkOrder.CallbackLogged: _logged,
    }

    def due(self, tx: Tx, t: Tables, on: date) -> list[dict[str, Any]]:
        """Orders whose next callback is due on or before `on`, the oldest first."""
        rows = tx.query(
            "SELECT work_order_id, outcome, completed_on, callbacks, last_callback_on, "
            f"last_outcome, next_due_on FROM {t.callbacks} WHERE next_due_on <= ? "
            "ORDER BY next_due_on, work_order_id",
            (on.isoformat(),),
        )
        return [
            {
                "work_order_id": r["work_order_id"],
                "due_on": r["next_due_on"],
                "overdue": r["next_due_on"] < on.isoformat(),
                "days_overdue": (on - date.fromisoformat(r["next_due_on"])).days,
                "completed_on": r["completed_on"],
                "outcome": r["outcome"],
                "callbacks": int(r["callbacks"]),
                "last_callback_on": r["last_callback_on"],
                "last_outcome": r["last_outcome"],
            }
            for r in rows
        ]
