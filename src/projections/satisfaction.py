"""Customer satisfaction: surveys of completed work orders, first-time fixes, complaints.

Every completed work order (accepted, or resolved remotely) is surveyed; there
is no sampling, so `surveys_expected` counts them all and `surveys_received`
those with feedback. An order belongs to the period of its completion (the
`occurred_at` of `Accepted` or `ResolvedRemotely`), and its survey with it,
whenever the survey came in. A complaint belongs to the period it was lodged in.

Groups: by the order's technician (its last `Assigned`; `null` for an order
resolved remotely before anyone was assigned) or by its service type. A
complaint counts for every staff member it is about — named at lodging
(`staff_ids`), named responsible by the latest findings, or the technician of
the work order it concerns — and for the service type of that work order
(`null` when it concerns none). See docs/appraisal.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from fieldledger.application.database import Tx
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.read_model import Batch, ReadModel, Tables
from fieldledger.projections.reporting import (
    between,
    index_name,
    mean,
    null_last,
    percentage,
    utc_text,
)
from fieldledger.projections.unit_of_work import TableRows

GroupBy = Literal["technician", "service_type"]
DIMENSIONS = ("attitude", "skill", "punctuality", "promise")


@dataclass
class _Group:
    expected: int = 0
    received: int = 0
    good: int = 0
    csat_total: int = 0
    dimension_totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 0))
    praised: int = 0
    accepted: int = 0
    fixed_first_time: int = 0
    complaints: int = 0
    complaints_closed: int = 0


ORDER_COLUMNS = (
    "work_order_id", "service_type", "technician_id", "outcome", "completed_at", "rejections",
    "csat", "attitude", "skill", "punctuality", "promise", "praise", "comment", "feedback_at",
)  # fmt: skip
COMPLAINT_COLUMNS = (
    "complaint_id", "work_order_id", "severity", "lodged_at", "confirmations", "last_csat",
    "satisfied",
)  # fmt: skip


@dataclass
class _Rows:
    """A batch's unit of work: the orders and complaints it touches."""

    batch: Batch
    orders: TableRows
    complaints: TableRows


class SatisfactionView(ReadModel):
    name = "satisfaction"
    schema_version = 1
    tables: ClassVar[tuple[str, ...]] = (
        "satisfaction_orders",
        "satisfaction_complaints",
        "satisfaction_complaint_staff",
    )

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.satisfaction_orders} ("
            "work_order_id TEXT PRIMARY KEY, service_type TEXT NOT NULL, technician_id TEXT, "
            "outcome TEXT, completed_at TEXT, rejections INTEGER NOT NULL DEFAULT 0, "
            "csat INTEGER, attitude INTEGER, skill INTEGER, punctuality INTEGER, "
            "promise INTEGER, praise INTEGER, comment TEXT, feedback_at TEXT)"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.satisfaction_orders, 'completed')} "
            f"ON {t.satisfaction_orders} (completed_at)"
        )
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.satisfaction_complaints} ("
            "complaint_id TEXT PRIMARY KEY, work_order_id TEXT, severity TEXT NOT NULL, "
            "lodged_at TEXT NOT NULL, confirmations INTEGER NOT NULL DEFAULT 0, "
            "last_csat INTEGER, satisfied INTEGER)"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.satisfaction_complaints, 'lodged')} "
            f"ON {t.satisfaction_complaints} (lodged_at)"
        )
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.satisfaction_complaint_staff} ("
            "complaint_id TEXT NOT NULL, source TEXT NOT NULL, staff_id TEXT NOT NULL, "
            "PRIMARY KEY (complaint_id, source, staff_id))"
        )

    # -- handlers: one unit of work per batch ---------------------------------

    def begin_batch(self, batch: Batch) -> None:
        state = batch.state = _Rows(
            batch,
            TableRows(batch.tx, batch.t.satisfaction_orders, "work_order_id", ORDER_COLUMNS),
            TableRows(batch.tx, batch.t.satisfaction_complaints, "complaint_id", COMPLAINT_COLUMNS),
        )
        mine = [e for _, e in batch.events if type(e) in self._handlers]
        state.orders.prefetch(str(e.originator_id) for e in mine if isinstance(e, WorkOrder.Event))
        state.complaints.prefetch(
            str(e.originator_id) for e in mine if isinstance(e, Complaint.Event)
        )

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, batch.state, event)

    def end_batch(self, batch: Batch) -> None:
        batch.state.orders.flush()
        batch.state.complaints.flush()

    def _booked(self, r: _Rows, e: WorkOrder.Booked) -> None:
        r.orders.insert(str(e.originator_id), service_type=e.service_type, rejections=0)

    def _assigned(self, r: _Rows, e: WorkOrder.Assigned) -> None:
        r.orders.update(str(e.originator_id), technician_id=e.technician_id)

    def _rejected(self, r: _Rows, e: WorkOrder.Rejected) -> None:
        r.orders.update(str(e.originator_id), rejections=e.rejection_count)

    def _accepted(self, r: _Rows, e: WorkOrder.Accepted) -> None:
        r.orders.update(
            str(e.originator_id), outcome="accepted", completed_at=utc_text(e.occurred_at)
        )

    def _resolved_remotely(self, r: _Rows, e: WorkOrder.ResolvedRemotely) -> None:
        r.orders.update(
            str(e.originator_id), outcome="resolved_remotely", completed_at=utc_text(e.occurred_at)
        )

    def _feedback(self, r: _Rows, e: WorkOrder.FeedbackReceived) -> None:
        f = e.feedback
        r.orders.update(
            str(e.originator_id), csat=f.csat, attitude=f.attitude, skill=f.skill,
            punctuality=f.punctuality, promise=f.promise, praise=int(f.praise),
            comment=f.comment, feedback_at=utc_text(e.occurred_at),
        )  # fmt: skip

    def _lodged(self, r: _Rows, e: Complaint.Lodged) -> None:
        complaint_id = str(e.originator_id)
        r.complaints.insert(
            complaint_id,
            work_order_id=None if e.work_order_id is None else str(e.work_order_id),
            severity=e.severity.value,
            lodged_at=utc_text(e.occurred_at),
            confirmations=0,
        )
        self._name_staff(r, complaint_id, "lodged", e.staff_ids)

    def _findings(self, r: _Rows, e: Complaint.InvestigationRecorded) -> None:
        # The latest findings replace the earlier ones.
        self._name_staff(r, str(e.originator_id), "findings", e.responsible_staff_ids)

    def _name_staff(self, r: _Rows, complaint_id: str, source: str, staff_ids: list[str]) -> None:
        tx, t = r.batch.tx, r.batch.t
        tx.execute(
            f"DELETE FROM {t.satisfaction_complaint_staff} WHERE complaint_id = ? AND source = ?",
            (complaint_id, source),
        )
        tx.executemany(
            f"INSERT INTO {t.satisfaction_complaint_staff} (complaint_id, source, staff_id) "
            "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(complaint_id, source, s) for s in staff_ids],
        )

    def _closed(self, r: _Rows, e: Complaint.Closed) -> None:
        self._confirmed(r, e, e.csat, satisfied=True)

    def _reopened(self, r: _Rows, e: Complaint.Reopened) -> None:
        self._confirmed(r, e, e.csat, satisfied=False)

    def _confirmed(self, r: _Rows, e: Any, csat: int, *, satisfied: bool) -> None:
        row = r.complaints.get(str(e.originator_id))
        if row is not None:
            r.complaints.update(
                str(e.originator_id), confirmations=int(row["confirmations"]) + 1,
                last_csat=csat, satisfied=int(satisfied),
            )  # fmt: skip

    _handlers: ClassVar[dict[type, Callable[[SatisfactionView, _Rows, Any], None]]] = {
        WorkOrder.Booked: _booked,
        WorkOrder.Assigned: _assigned,
        WorkOrder.Rejected: _rejected,
        WorkOrder.Accepted: _accepted,
        WorkOrder.ResolvedRemotely: _resolved_remotely,
        WorkOrder.FeedbackReceived: _feedback,
        Complaint.Lodged: _lodged,
        Complaint.InvestigationRecorded: _findings,
        Complaint.Closed: _closed,
        Complaint.Reopened: _reopened,
    }

    # -- queries -------------------------------------------------------------

    def summary(
        self,
        tx: Tx,
        t: Tables,
        *,
        start: datetime | None,
        end: datetime | None,
        group_by: GroupBy,
    ) -> list[dict[str, Any]]:
        """One group per technician or service type with any completed order or
        complaint in [start, end)."""
        key = "o.technician_id" if group_by == "technician" else "o.service_type"
        good_csat = self.settings.policy.satisfaction.good_csat
        groups: dict[str | None, _Group] = {}

        where, params = between("o.completed_at", start, end)
        rows = tx.query(
            f"SELECT {key} AS key, COUNT(*) AS expected, "
            "COUNT(o.csat) AS received, "
            "SUM(CASE WHEN o.csat >= ? THEN 1 ELSE 0 END) AS good, "
            "SUM(o.csat) AS csat_total, "
            + "".join(f"SUM(o.{d}) AS {d}, " for d in DIMENSIONS)
            + "SUM(CASE WHEN o.praise = 1 THEN 1 ELSE 0 END) AS praised, "
            "SUM(CASE WHEN o.outcome = 'accepted' THEN 1 ELSE 0 END) AS accepted, "
            "SUM(CASE WHEN o.outcome = 'accepted' AND o.rejections = 0 THEN 1 ELSE 0 END) "
            "AS fixed_first_time "
            f"FROM {t.satisfaction_orders} o WHERE o.completed_at IS NOT NULL{where} "
            f"GROUP BY {key}",
            (good_csat, *params),
        )
        for r in rows:
            g = groups.setdefault(r["key"], _Group())
            g.expected = int(r["expected"])
            g.received = int(r["received"])
            g.good = int(r["good"] or 0)
            g.csat_total = int(r["csat_total"] or 0)
            g.dimension_totals = {d: int(r[d] or 0) for d in DIMENSIONS}
            g.praised = int(r["praised"] or 0)
            g.accepted = int(r["accepted"] or 0)
            g.fixed_first_time = int(r["fixed_first_time"] or 0)

        for complaint_keys, closed in self._complaints(tx, t, start, end, group_by):
            for k in complaint_keys:
                g = groups.setdefault(k, _Group())
                g.complaints += 1
                g.complaints_closed += closed

        return [self._group_view(k, groups[k]) for k in sorted(groups, key=null_last)]

    def _complaints(
        self, tx: Tx, t: Tables, start: datetime | None, end: datetime | None, group_by: GroupBy
    ) -> list[tuple[set[str | None], int]]:
        """Each complaint lodged in [start, end): the group keys it counts for, and
        whether it was closed on a satisfied confirmation."""
        where, params = between("c.lodged_at", start, end)
        complaints = tx.query(
            "SELECT c.complaint_id, c.satisfied, o.technician_id, o.service_type "
            f"FROM {t.satisfaction_complaints} c LEFT JOIN {t.satisfaction_orders} o "
            f"ON o.work_order_id = c.work_order_id WHERE 1 = 1{where}",
            params,
        )
        named: dict[str, set[str]] = {}
        if group_by == "technician" and complaints:
            for r in tx.query(
                f"SELECT s.complaint_id, s.staff_id FROM {t.satisfaction_complaint_staff} s "
                f"JOIN {t.satisfaction_complaints} c ON c.complaint_id = s.complaint_id "
                f"WHERE 1 = 1{where}",
                params,
            ):
                named.setdefault(r["complaint_id"], set()).add(r["staff_id"])
        result: list[tuple[set[str | None], int]] = []
        for c in complaints:
            keys: set[str | None]
            if group_by == "technician":
                keys = set(named.get(c["complaint_id"], set()))
                if c["technician_id"] is not None:
                    keys.add(c["technician_id"])
                if not keys:
                    keys = {None}
            else:
                keys = {c["service_type"]}  # null: about no (known) work order
            result.append((keys, 1 if c["satisfied"] == 1 else 0))
        return result

    def _group_view(self, key: str | None, g: _Group) -> dict[str, Any]:
        policy = self.settings.policy.satisfaction
        csat_pct = percentage(g.good, g.received)
        first_time_fix_pct = percentage(g.fixed_first_time, g.accepted)
        below: list[str] = []
        if csat_pct is not None and csat_pct < policy.csat_target_pct:
            below.append("csat_pct")
        if first_time_fix_pct is not None and first_time_fix_pct < policy.first_time_fix_target_pct:
            below.append("first_time_fix_pct")
        return {
            "key": key,
            "csat_pct": csat_pct,
            "dimensions": {d: mean(g.dimension_totals[d], g.received) for d in DIMENSIONS},
            "first_time_fix_pct": first_time_fix_pct,
            "complaints": g.complaints,
            "surveys_expected": g.expected,
            "surveys_received": g.received,
            "surveys_good": g.good,
            "below_threshold": below,
            "mean_csat": mean(g.csat_total, g.received),
            "praised": g.praised,
            "accepted": g.accepted,
            "first_time_fixes": g.fixed_first_time,
            "complaints_closed": g.complaints_closed,
        }
