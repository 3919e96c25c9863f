"""Staff appraisal: points per staff member per calendar month, every point traced
to the event that caused it (contract §6).

A month starts at the policy's `appraisal.base_points` (100). Items:

- `late_arrival`: the order's technician arrived after the appointment start
  without a prior `LatenessNotified`: the policy's lateness band for the minutes
  late. After a notice: no points, but still counted late in the indicators.
- `company_at_fault`: findings with `company_at_fault` name the staff member:
  the policy's fault points for the complaint's severity. Findings recorded
  again replace the earlier ones: a staff member still named keeps the item of
  the findings that first named them (no double counting), one no longer named
  loses it, one newly named gets an item citing the new findings.
- `praise`: feedback with praise: +`appraisal.praise` to the order's technician.
- `conduct`: a supervisor's `ConductRecorded`, with its points; and
  `discipline_step`: the extra points the policy gives when the Nth record of one
  kind in the month reaches a step of the ladder (the 3rd personal call: -10).

The month of an item is the month of its event's `occurred_at` in the policy's
time zone. The rules are the current policy's (`ProjectionSettings.policy`):
after a policy change, rebuild this projection to apply it to all months.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from fieldledger.application.database import Tx
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.periods import Period, month_of
from fieldledger.domain.staff import StaffMember
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.read_model import ReadModel, Tables
from fieldledger.projections.reporting import (
    exact,
    index_name,
    mean,
    number,
    numeric,
    percentage,
    utc_text,
)

LATE_ARRIVAL = "late_arrival"
COMPANY_AT_FAULT = "company_at_fault"
PRAISE = "praise"
CONDUCT = "conduct"
DISCIPLINE_STEP = "discipline_step"


class StaffUnknown(LookupError):
    """No event names this staff member (as technician, staff record or findings)."""


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class AppraisalView(ReadModel):
    name = "appraisal"
    schema_version = 1
    tables: ClassVar[tuple[str, ...]] = (
        "appraisal_items",
        "appraisal_staff",
        "appraisal_orders",
        "appraisal_complaints",
        "appraisal_complaint_staff",
    )

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_items} ("
            "staff_id TEXT NOT NULL, period TEXT NOT NULL, rule TEXT NOT NULL, kind TEXT, "
            "points NUMERIC NOT NULL, aggregate_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "event_type TEXT NOT NULL, occurred_at TEXT NOT NULL, position INTEGER NOT NULL, "
            "detail TEXT NOT NULL, PRIMARY KEY (aggregate_id, version, rule, staff_id))"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_items, 'period')} "
            f"ON {t.appraisal_items} (period, staff_id)"
        )
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_staff} ("
            "staff_id TEXT PRIMARY KEY, first_seen_at TEXT NOT NULL)"
        )
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_orders} ("
            "work_order_id TEXT PRIMARY KEY, technician_id TEXT, lateness_reason TEXT, "
            "arrived_period TEXT, arrived_at TEXT, minutes_late INTEGER, "
            "lateness_notified INTEGER, rejections INTEGER NOT NULL DEFAULT 0, "
            "accepted_period TEXT, first_time_fix INTEGER, feedback_period TEXT, csat INTEGER)"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_orders, 'technician')} "
            f"ON {t.appraisal_orders} (technician_id)"
        )
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_complaints} ("
            "complaint_id TEXT PRIMARY KEY, work_order_id TEXT, severity TEXT NOT NULL, "
            "lodged_period TEXT NOT NULL, resolved INTEGER NOT NULL DEFAULT 0)"
        )
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_complaint_staff} ("
            "complaint_id TEXT NOT NULL, source TEXT NOT NULL, staff_id TEXT NOT NULL, "
            "PRIMARY KEY (complaint_id, source, staff_id))"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_complaint_staff, 'staff')} "
            f"ON {t.appraisal_complaint_staff} (staff_id)"
        )

    # -- handlers ------------------------------------------------------------

    def handle(self, tx: Tx, t: Tables, event: Any, position: int) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, tx, t, event, position)

    def _month(self, instant: datetime) -> str:
        return month_of(instant, self.settings.timezone)

    def _seen(self, tx: Tx, t: Tables, staff_id: str, at: datetime) -> None:
        """The staff member is known from the earliest event naming them."""
        tx.execute(
            f"INSERT INTO {t.appraisal_staff} (staff_id, first_seen_at) VALUES (?, ?) "
            "ON CONFLICT (staff_id) DO UPDATE SET first_seen_at = CASE "
            f"WHEN excluded.first_seen_at < {t.appraisal_staff}.first_seen_at "
            f"THEN excluded.first_seen_at ELSE {t.appraisal_staff}.first_seen_at END",
            (staff_id, utc_text(at)),
        )

    def _item(
        self,
        tx: Tx,
        t: Tables,
        e: Any,
        position: int,
        *,
        staff_id: str,
        rule: str,
        points: Decimal,
        detail: str,
        kind: str | None = None,
    ) -> None:
        self._seen(tx, t, staff_id, e.occurred_at)
        tx.execute(
            f"INSERT INTO {t.appraisal_items} (staff_id, period, rule, kind, points, "
            "aggregate_id, version, event_type, occurred_at, position, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                staff_id,
                self._month(e.occurred_at),
                rule,
                kind,
                numeric(tx, points),
                str(e.originator_id),
                e.originator_version,
                type(e).__name__,
                utc_text(e.occurred_at),
                position,
                detail,
            ),
        )

    def _order(self, tx: Tx, t: Tables, work_order_id: Any) -> dict[str, Any] | None:
        tx.execute(
            f"SELECT * FROM {t.appraisal_orders} WHERE work_order_id = ?", (str(work_order_id),)
        )
        return tx.fetchone()

    def _set_order(self, tx: Tx, t: Tables, e: Any, **values: Any) -> None:
        columns = ", ".join(f"{c} = ?" for c in values)
        tx.execute(
            f"UPDATE {t.appraisal_orders} SET {columns} WHERE work_order_id = ?",
            (*values.values(), str(e.originator_id)),
        )

    def _booked(self, tx: Tx, t: Tables, e: WorkOrder.Booked, position: int) -> None:
        tx.execute(
            f"INSERT INTO {t.appraisal_orders} (work_order_id) VALUES (?) "
            "ON CONFLICT (work_order_id) DO NOTHING",
            (str(e.originator_id),),
        )

    def _assigned(self, tx: Tx, t: Tables, e: WorkOrder.Assigned, position: int) -> None:
        self._seen(tx, t, e.technician_id, e.occurred_at)
        self._set_order(tx, t, e, technician_id=e.technician_id)

    def _lateness_notified(
        self, tx: Tx, t: Tables, e: WorkOrder.LatenessNotified, position: int
    ) -> None:
        self._set_order(tx, t, e, lateness_reason=e.reason)

    def _arrived(self, tx: Tx, t: Tables, e: WorkOrder.Arrived, position: int) -> None:
        self._set_order(
            tx, t, e, arrived_period=self._month(e.occurred_at),
            arrived_at=utc_text(e.occurred_at), minutes_late=e.minutes_late,
            lateness_notified=int(e.lateness_notified),
        )  # fmt: skip
        order = self._order(tx, t, e.originator_id)
        technician = None if order is None else order["technician_id"]
        late = e.minutes_late or 0
        if technician is None or late <= 0 or e.lateness_notified:
            return
        self._item(
            tx, t, e, position, staff_id=technician, rule=LATE_ARRIVAL,
            points=self.settings.policy.appraisal.lateness_points(late),
            detail=f"arrived {late} min after the appointment start without notice",
        )  # fmt: skip

    def _rejected(self, tx: Tx, t: Tables, e: WorkOrder.Rejected, position: int) -> None:
        self._set_order(tx, t, e, rejections=e.rejection_count)

    def _accepted(self, tx: Tx, t: Tables, e: WorkOrder.Accepted, position: int) -> None:
        order = self._order(tx, t, e.originator_id)
        rejections = 0 if order is None else int(order["rejections"])
        self._set_order(
            tx, t, e, accepted_period=self._month(e.occurred_at),
            first_time_fix=int(rejections == 0),
        )  # fmt: skip

    def _feedback(self, tx: Tx, t: Tables, e: WorkOrder.FeedbackReceived, position: int) -> None:
        self._set_order(tx, t, e, feedback_period=self._month(e.occurred_at), csat=e.feedback.csat)
        order = self._order(tx, t, e.originator_id)
        technician = None if order is None else order["technician_id"]
        if technician is None or not e.feedback.praise:
            return
        self._item(
            tx, t, e, position, staff_id=technician, rule=PRAISE,
            points=self.settings.policy.appraisal.praise,
            detail="praised in the customer's feedback",
        )  # fmt: skip

    def _lodged(self, tx: Tx, t: Tables, e: Complaint.Lodged, position: int) -> None:
        complaint_id = str(e.originator_id)
        tx.execute(
            f"INSERT INTO {t.appraisal_complaints} (complaint_id, work_order_id, severity, "
            "lodged_period) VALUES (?, ?, ?, ?) ON CONFLICT (complaint_id) DO NOTHING",
            (
                complaint_id,
                None if e.work_order_id is None else str(e.work_order_id),
                e.severity.value,
                self._month(e.occurred_at),
            ),
        )
        self._name_staff(tx, t, complaint_id, "lodged", e.staff_ids)

    def _findings(
        self, tx: Tx, t: Tables, e: Complaint.InvestigationRecorded, position: int
    ) -> None:
        complaint_id = str(e.originator_id)
        self._name_staff(tx, t, complaint_id, "findings", e.responsible_staff_ids)
        for staff_id in e.responsible_staff_ids:
            self._seen(tx, t, staff_id, e.occurred_at)
        at_fault = set(e.responsible_staff_ids) if e.company_at_fault else set()
        charged = {
            r["staff_id"]
            for r in tx.query(
                f"SELECT staff_id FROM {t.appraisal_items} WHERE aggregate_id = ? AND rule = ?",
                (complaint_id, COMPANY_AT_FAULT),
            )
        }
        for staff_id in sorted(charged - at_fault):
            tx.execute(
                f"DELETE FROM {t.appraisal_items} "
                "WHERE aggregate_id = ? AND rule = ? AND staff_id = ?",
                (complaint_id, COMPANY_AT_FAULT, staff_id),
            )
        newly = at_fault - charged
        if not newly:
            return
        tx.execute(
            f"SELECT severity FROM {t.appraisal_complaints} WHERE complaint_id = ?",
            (complaint_id,),
        )
        row = tx.fetchone()
        if row is None:  # pragma: no cover - findings always follow lodging
            return
        severity = str(row["severity"])
        points = getattr(self.settings.policy.appraisal.fault, severity)
        for staff_id in sorted(newly):
            self._item(
                tx, t, e, position, staff_id=staff_id, rule=COMPANY_AT_FAULT, points=points,
                detail=f"{severity} complaint: findings name them, company at fault",
            )  # fmt: skip

    def _name_staff(
        self, tx: Tx, t: Tables, complaint_id: str, source: str, staff_ids: Iterable[str]
    ) -> None:
        tx.execute(
            f"DELETE FROM {t.appraisal_complaint_staff} WHERE complaint_id = ? AND source = ?",
            (complaint_id, source),
        )
        tx.executemany(
            f"INSERT INTO {t.appraisal_complaint_staff} (complaint_id, source, staff_id) "
            "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(complaint_id, source, s) for s in staff_ids],
        )

    def _complaint_resolved(self, tx: Tx, t: Tables, e: Any, position: int) -> None:
        resolved = not isinstance(e, Complaint.Reopened)
        tx.execute(
            f"UPDATE {t.appraisal_complaints} SET resolved = ? WHERE complaint_id = ?",
            (int(resolved), str(e.originator_id)),
        )

    def _registered(self, tx: Tx, t: Tables, e: StaffMember.Registered, position: int) -> None:
        self._seen(tx, t, e.staff_id, e.occurred_at)

    def _conduct(self, tx: Tx, t: Tables, e: StaffMember.ConductRecorded, position: int) -> None:
        month = self._month(e.occurred_at)
        # One staff member's records are one aggregate: occurred_at never goes
        # back, so the count so far is the repeat number within the month.
        before = int(
            tx.scalar(
                f"SELECT COUNT(*) FROM {t.appraisal_items} "
                "WHERE staff_id = ? AND period = ? AND rule = ? AND kind = ?",
                (e.staff_id, month, CONDUCT, e.kind),
            )
        )
        repeat = before + 1
        self._item(
            tx, t, e, position, staff_id=e.staff_id, rule=CONDUCT, kind=e.kind, points=e.points,
            detail=f"{e.kind} ({_ordinal(repeat)} this month)" + (f": {e.note}" if e.note else ""),
        )  # fmt: skip
        conduct = self.settings.policy.conduct
        step = conduct.step_for(repeat)
        if step is None:
            return
        extra = conduct.step_points.get(e.kind, {}).get(step)
        if extra is None or extra == 0:
            return
        self._item(
            tx, t, e, position, staff_id=e.staff_id, rule=DISCIPLINE_STEP, kind=e.kind,
            points=extra, detail=f"{_ordinal(repeat)} {e.kind} this month: {step}",
        )  # fmt: skip

    _handlers: ClassVar[dict[type, Callable[[AppraisalView, Tx, Tables, Any, int], None]]] = {
        WorkOrder.Booked: _booked,
        WorkOrder.Assigned: _assigned,
        WorkOrder.LatenessNotified: _lateness_notified,
        WorkOrder.Arrived: _arrived,
        WorkOrder.Rejected: _rejected,
        WorkOrder.Accepted: _accepted,
        WorkOrder.FeedbackReceived: _feedback,
        Complaint.Lodged: _lodged,
        Complaint.InvestigationRecorded: _findings,
        Complaint.Resolved: _complaint_resolved,
        Complaint.Closed: _complaint_resolved,
        Complaint.Reopened: _complaint_resolved,
        StaffMember.Registered: _registered,
        StaffMember.ConductRecorded: _conduct,
    }

    # -- queries -------------------------------------------------------------

    def knows(self, tx: Tx, t: Tables, staff_id: str) -> bool:
        return (
            tx.scalar(f"SELECT 1 FROM {t.appraisal_staff} WHERE staff_id = ?", (staff_id,))
            is not None
        )

    def appraisal(self, tx: Tx, t: Tables, staff_id: str, period: Period) -> dict[str, Any]:
        """One staff member's points, items, discipline and indicators for a period
        (a month, or a quarter: 100 + the deltas of its three months)."""
        if not self.knows(tx, t, staff_id):
            raise StaffUnknown(staff_id)
        months = period.months
        marks = ", ".join("?" for _ in months)
        items = tx.query(
            "SELECT rule, kind, points, aggregate_id, version, event_type, occurred_at, "
            f"period, detail FROM {t.appraisal_items} "
            f"WHERE staff_id = ? AND period IN ({marks}) "
            "ORDER BY occurred_at, aggregate_id, version, rule",
            (staff_id, *months),
        )
        base = self.settings.policy.appraisal.base_points
        total = base + sum((exact(i["points"]) for i in items), Decimal(0))
        return {
            "staff_id": staff_id,
            "period": period.name,
            "points": number(total),
            "base_points": number(base),
            "items": [
                {
                    "rule": i["rule"],
                    "points": number(exact(i["points"])),
                    "aggregate_id": i["aggregate_id"],
                    "version": int(i["version"]),
                    "event_type": i["event_type"],
                    "occurred_at": i["occurred_at"],
                    "kind": i["kind"],
                    "month": i["period"],
                    "detail": i["detail"],
                }
                for i in items
            ],
            "discipline": self._discipline(items),
            "indicators": self._indicators(tx, t, staff_id, months),
            "policy_version": self.settings.policy.version,
        }

    def _discipline(self, items: list[dict[str, Any]]) -> dict[str, str]:
        """Per conduct kind, the highest step of the ladder reached in any month."""
        counts: dict[tuple[str, str], int] = {}
        for i in items:
            if i["rule"] == CONDUCT:
                key = (str(i["kind"]), str(i["period"]))
                counts[key] = counts.get(key, 0) + 1
        ladder = self.settings.policy.conduct.ladder
        reached: dict[str, int] = {}
        for (kind, _month), count in counts.items():
            rungs = [n for n in ladder if n <= count]
            if rungs:
                reached[kind] = max(reached.get(kind, 0), max(rungs))
        return {kind: ladder[rung] for kind, rung in sorted(reached.items())}

    def _indicators(
        self, tx: Tx, t: Tables, staff_id: str, months: tuple[str, ...]
    ) -> dict[str, Any]:
        marks = ", ".join("?" for _ in months)
        arrivals = tx.query(
            "SELECT work_order_id, arrived_at, minutes_late, lateness_notified, lateness_reason "
            f"FROM {t.appraisal_orders} WHERE technician_id = ? AND arrived_period IN ({marks}) "
            "ORDER BY arrived_at, work_order_id",
            (staff_id, *months),
        )
        measured = [a for a in arrivals if a["minutes_late"] is not None]
        late = [a for a in measured if int(a["minutes_late"]) > 0]
        accepted = tx.query(
            f"SELECT first_time_fix FROM {t.appraisal_orders} "
            f"WHERE technician_id = ? AND accepted_period IN ({marks})",
            (staff_id, *months),
        )
        surveys = tx.query(
            f"SELECT csat FROM {t.appraisal_orders} "
            f"WHERE technician_id = ? AND feedback_period IN ({marks})",
            (staff_id, *months),
        )
        complaints = tx.query(
            f"SELECT c.complaint_id, c.resolved FROM {t.appraisal_complaints} c "
            f"WHERE c.lodged_period IN ({marks}) AND ("
            f"EXISTS (SELECT 1 FROM {t.appraisal_complaint_staff} s "
            "WHERE s.complaint_id = c.complaint_id AND s.staff_id = ?) "
            f"OR EXISTS (SELECT 1 FROM {t.appraisal_orders} o "
            "WHERE o.work_order_id = c.work_order_id AND o.technician_id = ?))",
            (*months, staff_id, staff_id),
        )
        return {
            "on_time_arrival_pct": percentage(len(measured) - len(late), len(measured)),
            "late_arrivals": len(late),
            "first_time_fix_pct": percentage(
                sum(1 for a in accepted if a["first_time_fix"] == 1), len(accepted)
            ),
            "mean_csat": mean(sum(int(s["csat"]) for s in surveys), len(surveys)),
            "complaints_against": len(complaints),
            "complaints_resolved": sum(1 for c in complaints if c["resolved"] == 1),
            "arrivals": len(arrivals),
            "lateness": [
                {
                    "work_order_id": a["work_order_id"],
                    "arrived_at": a["arrived_at"],
                    "minutes_late": int(a["minutes_late"]),
                    "notified": a["lateness_notified"] == 1,
                    "reason": a["lateness_reason"] if a["lateness_notified"] == 1 else None,
                }
                for a in late
            ],
        }

    def ranking(self, tx: Tx, t: Tables, period: Period) -> list[dict[str, Any]]:
        """Every staff member known by the end of the period, by points (100 + the
        period's deltas), best first; equal points share a rank (1, 2, 2, 4)."""
        staff = [
            r["staff_id"]
            for r in tx.query(
                f"SELECT staff_id FROM {t.appraisal_staff} WHERE first_seen_at < ?",
                (utc_text(period.ends_at(self.settings.timezone)),),
            )
        ]
        months = period.months
        marks = ", ".join("?" for _ in months)
        deltas: dict[str, Decimal] = dict.fromkeys(staff, Decimal(0))
        for r in tx.query(
            f"SELECT staff_id, points FROM {t.appraisal_items} WHERE period IN ({marks})",
            months,
        ):
            deltas[r["staff_id"]] = deltas.get(r["staff_id"], Decimal(0)) + exact(r["points"])
        base = self.settings.policy.appraisal.base_points
        ordered = sorted(((base + d, s) for s, d in deltas.items()), key=lambda p: (-p[0], p[1]))
        ranking: list[dict[str, Any]] = []
        rank, previous = 0, None
        for place, (points, staff_id) in enumerate(ordered, start=1):
            if points != previous:
                rank, previous = place, points
            ranking.append({"staff_id": staff_id, "points": number(points), "rank": rank})
        return ranking
