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
from fieldledger.projections.read_model import ReadModel, Tables
from fieldledger.projections.reporting import (
    between,
    index_name,
    mean,
    null_last,
    percentage,
    utc_text,
)

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

    # -- handlers ------------------------------------------------------------

    def handle(self, tx: Tx, t: Tables, event: Any, position: int) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, tx, t, event)

    def _booked(self, tx: Tx, t: Tables, e: WorkOrder.Booked) -> None:
        tx.execute(
            f"INSERT INTO {t.satisfaction_orders} (work_order_id, service_type) VALUES (?, ?) "
            "ON CONFLICT (work_order_id) DO NOTHING",
            (str(e.originator_id), e.service_type),
        )

    def _assigned(self, tx: Tx, t: Tables, e: WorkOrder.Assigned) -> None:
        self._set_order(tx, t, e, technician_id=e.technician_id)

    def _rejected(self, tx: Tx, t: Tables, e: WorkOrder.Rejected) -> None:
        self._set_order(tx, t, e, rejections=e.rejection_count)

    def _accepted(self, tx: Tx, t: Tables, e: WorkOrder.Accepted) -> None:
        self._set_order(tx, t, e, outcome="accepted", completed_at=utc_text(e.occurred_at))

    def _resolved_remotely(self, tx: Tx, t: Tables, e: WorkOrder.ResolvedRemotely) -> None:
        self._set_order(tx, t, e, outcome="resolved_remotely", completed_at=utc_text(e.occurred_at))

    def _feedback(self, tx: Tx, t: Tables, e: WorkOrder.FeedbackReceived) -> None:
        f = e.feedback
        self._set_order(
            tx, t, e, csat=f.csat, attitude=f.attitude, skill=f.skill,
            punctuality=f.punctuality, promise=f.promise, praise=int(f.praise),
            comment=f.comment, feedback_at=utc_text(e.occurred_at),
        )  # fmt: skip

    def _set_order(self, tx: Tx, t: Tables, e: Any, **values: Any) -> None:
        columns = ", ".join(f"{c} = ?" for c in values)
        tx.execute(
            f"UPDATE {t.satisfaction_orders} SET {columns} WHERE work_order_id = ?",
            (*values.values(), str(e.originator_id)),
        )

    def _lodged(self, tx: Tx, t: Tables, e: Complaint.Lodged) -> None:
        complaint_id = str(e.originator_id)
        tx.execute(
            f"INSERT INTO {t.satisfaction_complaints} (complaint_id, work_order_id, severity, "
            "lodged_at) VALUES (?, ?, ?, ?) ON CONFLICT (complaint_id) DO NOTHING",
            (
                complaint_id,
                None if e.work_order_id is None else str(e.work_order_id),
                e.severity.value,
                utc_text(e.occurred_at),
            ),
        )
        self._name_staff(tx, t, complaint_id, "lodged", e.staff_ids)

    def _findings(self, tx: Tx, t: Tables, e: Complaint.InvestigationRecorded) -> None:
        # The latest findings replace the earlier ones.
        self._name_staff(tx, t, str(e.originator_id), "findings", e.responsible_staff_ids)

    def _name_staff(
        self, tx: Tx, t: Tables, complaint_id: str, source: str, staff_ids: list[str]
    ) -> None:
        tx.execute(
            f"DELETE FROM {t.satisfaction_complaint_staff} WHERE complaint_id = ? AND source = ?",
            (complaint_id, source),
        )
        tx.executemany(
            f"INSERT INTO {t.satisfaction_complaint_staff} (complaint_id, source, staff_id) "
            "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(complaint_id, source, s) for s in staff_ids],
        )

    def _closed(self, tx: Tx, t: Tables, e: Complaint.Closed) -> None:
        self._confirmed(tx, t, e, e.csat, satisfied=True)

    def _reopened(self, tx: Tx, t: Tables, e: Complaint.Reopened) -> None:
        self._confirmed(tx, t, e, e.csat, satisfied=False)

    def _confirmed(self, tx: Tx, t: Tables, e: Any, csat: int, *, satisfied: bool) -> None:
        tx.execute(
            f"UPDATE {t.satisfaction_complaints} SET confirmations = confirmations + 1, "
            "last_csat = ?, satisfied = ? WHERE complaint_id = ?",
            (csat, int(satisfied), str(e.originator_id)),
        )

    _handlers: ClassVar[dict[type, Callable[[SatisfactionView, Tx, Tables, Any], None]]] = {
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
