"""Staff appraisal: points per staff member per calendar month, every point traced
to the event that caused it (contract §6).

The tables keep facts, not points: arrivals (minutes late, notified or not),
surveys (praise, csat), complaints and the findings that charge staff,
conduct records. Points, months and discipline are worked out when asked, from
the service's current policy and time zone (`ProjectionSettings`): a changed
policy applies at once to every month, with no rebuild, and an answer always
says which policy version computed it.

A month starts at the policy's `appraisal.base_points` (100). Items:

- `late_arrival`: the order's technician arrived after the appointment start
  without a prior `LatenessNotified`: the policy's lateness band for the minutes
  late. After a notice: no points, but still counted late in the indicators.
- `company_at_fault`: findings with `company_at_fault` name the staff member:
  the policy's fault points for the complaint's severity. Findings recorded
  again replace the earlier ones: a staff member still named keeps the charge of
  the findings that first named them (no double counting), one no longer named
  loses it, one newly named is charged by the new findings.
- `praise`: feedback with praise: `appraisal.praise` to the order's technician.
- `conduct`: a supervisor's `ConductRecorded`, with its recorded points; and
  `discipline_step`: the extra points the policy gives when the Nth record of one
  kind in one month reaches a step of the ladder (the 3rd personal call: -10).

An item belongs to the month of its event's `occurred_at` in the time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from fieldledger.application.database import Tx
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.periods import Period, month_of
from fieldledger.domain.policy import Policy
from fieldledger.domain.staff import StaffMember
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.read_model import Batch, ReadModel, Tables
from fieldledger.projections.reporting import (
    between,
    exact,
    index_name,
    mean,
    number,
    numeric,
    percentage,
    utc_text,
)
from fieldledger.projections.unit_of_work import TableRows

LATE_ARRIVAL = "late_arrival"
COMPANY_AT_FAULT = "company_at_fault"
PRAISE = "praise"
CONDUCT = "conduct"
DISCIPLINE_STEP = "discipline_step"


class StaffUnknown(LookupError):
    """No event names this staff member (as technician, staff record or findings)."""


@dataclass(frozen=True)
class Item:
    """One contribution to a staff member's points, and the event that caused it."""

    staff_id: str
    rule: str
    points: Decimal
    aggregate_id: str
    version: int
    event_type: str
    occurred_at: str
    month: str
    detail: str
    kind: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "points": number(self.points),
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "kind": self.kind,
            "month": self.month,
            "detail": self.detail,
        }


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


ORDER_COLUMNS = (
    "work_order_id", "technician_id", "lateness_reason", "arrived_at", "arrival_version",
    "minutes_late", "lateness_notified", "rejections", "accepted_at", "first_time_fix",
    "feedback_at", "feedback_version", "csat", "praise",
)  # fmt: skip
COMPLAINT_COLUMNS = ("complaint_id", "work_order_id", "severity", "lodged_at", "resolved")


@dataclass
class _Rows:
    """A batch's unit of work: the rows it touches, written at its end."""

    batch: Batch
    staff: TableRows
    orders: TableRows
    complaints: TableRows
    #: Per complaint whose findings the batch records: the staff charged so far.
    charged: dict[str, set[str]] = field(default_factory=dict)
    conduct: list[tuple[Any, ...]] = field(default_factory=list)


def _staff_named(e: Any) -> list[str]:
    if isinstance(e, WorkOrder.Assigned):
        return [e.technician_id]
    if isinstance(e, Complaint.InvestigationRecorded):
        return list(e.responsible_staff_ids)
    if isinstance(e, StaffMember.Registered | StaffMember.ConductRecorded):
        return [e.staff_id]
    return []


class AppraisalView(ReadModel):
    name = "appraisal"
    schema_version = 1
    tables: ClassVar[tuple[str, ...]] = (
        "appraisal_staff",
        "appraisal_orders",
        "appraisal_complaints",
        "appraisal_complaint_staff",
        "appraisal_faults",
        "appraisal_conduct",
    )

    def create_tables(self, tx: Tx, t: Tables) -> None:
        statements = [
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_staff} ("
            "staff_id TEXT PRIMARY KEY, first_seen_at TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_orders} ("
            "work_order_id TEXT PRIMARY KEY, technician_id TEXT, lateness_reason TEXT, "
            "arrived_at TEXT, arrival_version INTEGER, minutes_late INTEGER, "
            "lateness_notified INTEGER, rejections INTEGER NOT NULL DEFAULT 0, "
            "accepted_at TEXT, first_time_fix INTEGER, "
            "feedback_at TEXT, feedback_version INTEGER, csat INTEGER, praise INTEGER)",
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_orders, 'technician')} "
            f"ON {t.appraisal_orders} (technician_id)",
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_orders, 'arrived')} "
            f"ON {t.appraisal_orders} (arrived_at)",
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_orders, 'accepted')} "
            f"ON {t.appraisal_orders} (accepted_at)",
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_orders, 'feedback')} "
            f"ON {t.appraisal_orders} (feedback_at)",
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_complaints} ("
            "complaint_id TEXT PRIMARY KEY, work_order_id TEXT, severity TEXT NOT NULL, "
            "lodged_at TEXT NOT NULL, resolved INTEGER NOT NULL DEFAULT 0)",
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_complaints, 'lodged')} "
            f"ON {t.appraisal_complaints} (lodged_at)",
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_complaint_staff} ("
            "complaint_id TEXT NOT NULL, source TEXT NOT NULL, staff_id TEXT NOT NULL, "
            "PRIMARY KEY (complaint_id, source, staff_id))",
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_complaint_staff, 'staff')} "
            f"ON {t.appraisal_complaint_staff} (staff_id)",
            # The charges standing: who the findings hold responsible, company at
            # fault, and which findings first charged them.
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_faults} ("
            "complaint_id TEXT NOT NULL, staff_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "occurred_at TEXT NOT NULL, PRIMARY KEY (complaint_id, staff_id))",
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_faults, 'occurred')} "
            f"ON {t.appraisal_faults} (occurred_at)",
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_conduct} ("
            "aggregate_id TEXT NOT NULL, version INTEGER NOT NULL, staff_id TEXT NOT NULL, "
            "kind TEXT NOT NULL, points NUMERIC NOT NULL, note TEXT NOT NULL, "
            "occurred_at TEXT NOT NULL, PRIMARY KEY (aggregate_id, version))",
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_conduct, 'occurred')} "
            f"ON {t.appraisal_conduct} (occurred_at)",
        ]
        for statement in statements:
            tx.execute(statement)

    # -- handlers: facts only, one unit of work per batch -----------------------

    def begin_batch(self, batch: Batch) -> None:
        tx, t = batch.tx, batch.t
        state = batch.state = _Rows(
            batch,
            TableRows(tx, t.appraisal_staff, "staff_id", ("staff_id", "first_seen_at")),
            TableRows(tx, t.appraisal_orders, "work_order_id", ORDER_COLUMNS),
            TableRows(tx, t.appraisal_complaints, "complaint_id", COMPLAINT_COLUMNS),
        )
        mine = [e for _, e in batch.events if type(e) in self._handlers]
        state.orders.prefetch(str(e.originator_id) for e in mine if isinstance(e, WorkOrder.Event))
        state.complaints.prefetch(
            str(e.originator_id) for e in mine if isinstance(e, Complaint.Event)
        )
        state.staff.prefetch(s for e in mine for s in _staff_named(e))
        investigated = sorted(
            {str(e.originator_id) for e in mine if isinstance(e, Complaint.InvestigationRecorded)}
        )
        for complaint_id in investigated:
            state.charged[complaint_id] = set()
        for start in range(0, len(investigated), 500):
            chunk = investigated[start : start + 500]
            for r in tx.query(
                f"SELECT complaint_id, staff_id FROM {t.appraisal_faults} "
                f"WHERE complaint_id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            ):
                state.charged[r["complaint_id"]].add(r["staff_id"])

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, batch.state, event)

    def end_batch(self, batch: Batch) -> None:
        state: _Rows = batch.state
        state.staff.flush()
        state.orders.flush()
        state.complaints.flush()
        batch.append(
            batch.t.appraisal_conduct,
            ("aggregate_id", "version", "staff_id", "kind", "points", "note", "occurred_at"),
            state.conduct,
        )

    def _seen(self, r: _Rows, staff_id: str, at: datetime) -> None:
        """The staff member is known from the earliest event naming them."""
        seen = utc_text(at)
        if not r.staff.insert(staff_id, first_seen_at=seen):
            row = r.staff.get(staff_id)
            if row is not None and seen < row["first_seen_at"]:
                r.staff.update(staff_id, first_seen_at=seen)

    def _booked(self, r: _Rows, e: WorkOrder.Booked) -> None:
        r.orders.insert(str(e.originator_id), rejections=0)

    def _assigned(self, r: _Rows, e: WorkOrder.Assigned) -> None:
        self._seen(r, e.technician_id, e.occurred_at)
        r.orders.update(str(e.originator_id), technician_id=e.technician_id)

    def _lateness_notified(self, r: _Rows, e: WorkOrder.LatenessNotified) -> None:
        r.orders.update(str(e.originator_id), lateness_reason=e.reason)

    def _arrived(self, r: _Rows, e: WorkOrder.Arrived) -> None:
        r.orders.update(
            str(e.originator_id), arrived_at=utc_text(e.occurred_at),
            arrival_version=e.originator_version, minutes_late=e.minutes_late,
            lateness_notified=int(e.lateness_notified),
        )  # fmt: skip

    def _rejected(self, r: _Rows, e: WorkOrder.Rejected) -> None:
        r.orders.update(str(e.originator_id), rejections=e.rejection_count)

    def _accepted(self, r: _Rows, e: WorkOrder.Accepted) -> None:
        row = r.orders.get(str(e.originator_id))
        if row is not None:
            r.orders.update(
                str(e.originator_id), accepted_at=utc_text(e.occurred_at),
                first_time_fix=1 if row["rejections"] == 0 else 0,
            )  # fmt: skip

    def _feedback(self, r: _Rows, e: WorkOrder.FeedbackReceived) -> None:
        r.orders.update(
            str(e.originator_id), feedback_at=utc_text(e.occurred_at),
            feedback_version=e.originator_version, csat=e.feedback.csat,
            praise=int(e.feedback.praise),
        )  # fmt: skip

    def _lodged(self, r: _Rows, e: Complaint.Lodged) -> None:
        complaint_id = str(e.originator_id)
        r.complaints.insert(
            complaint_id,
            work_order_id=None if e.work_order_id is None else str(e.work_order_id),
            severity=e.severity.value,
            lodged_at=utc_text(e.occurred_at),
            resolved=0,
        )
        self._name_staff(r, complaint_id, "lodged", e.staff_ids)

    def _findings(self, r: _Rows, e: Complaint.InvestigationRecorded) -> None:
        complaint_id = str(e.originator_id)
        tx, t = r.batch.tx, r.batch.t
        self._name_staff(r, complaint_id, "findings", e.responsible_staff_ids)
        for staff_id in e.responsible_staff_ids:
            self._seen(r, staff_id, e.occurred_at)
        at_fault = set(e.responsible_staff_ids) if e.company_at_fault else set()
        charged = r.charged[complaint_id]
        for staff_id in sorted(charged - at_fault):
            tx.execute(
                f"DELETE FROM {t.appraisal_faults} WHERE complaint_id = ? AND staff_id = ?",
                (complaint_id, staff_id),
            )
        tx.executemany(
            f"INSERT INTO {t.appraisal_faults} (complaint_id, staff_id, version, occurred_at) "
            "VALUES (?, ?, ?, ?)",
            [
                (complaint_id, s, e.originator_version, utc_text(e.occurred_at))
                for s in sorted(at_fault - charged)
            ],
        )
        r.charged[complaint_id] = at_fault

    def _name_staff(
        self, r: _Rows, complaint_id: str, source: str, staff_ids: Iterable[str]
    ) -> None:
        tx, t = r.batch.tx, r.batch.t
        tx.execute(
            f"DELETE FROM {t.appraisal_complaint_staff} WHERE complaint_id = ? AND source = ?",
            (complaint_id, source),
        )
        tx.executemany(
            f"INSERT INTO {t.appraisal_complaint_staff} (complaint_id, source, staff_id) "
            "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(complaint_id, source, s) for s in staff_ids],
        )

    def _complaint_confirmed(self, r: _Rows, e: Any) -> None:
        resolved = not isinstance(e, Complaint.Reopened)
        r.complaints.update(str(e.originator_id), resolved=int(resolved))

    def _registered(self, r: _Rows, e: StaffMember.Registered) -> None:
        self._seen(r, e.staff_id, e.occurred_at)

    def _conduct(self, r: _Rows, e: StaffMember.ConductRecorded) -> None:
        self._seen(r, e.staff_id, e.occurred_at)
        r.conduct.append((
            str(e.originator_id), e.originator_version, e.staff_id, e.kind,
            numeric(r.batch.tx, e.points), e.note, utc_text(e.occurred_at),
        ))  # fmt: skip

    _handlers: ClassVar[dict[type, Callable[[AppraisalView, _Rows, Any], None]]] = {
        WorkOrder.Booked: _booked,
        WorkOrder.Assigned: _assigned,
        WorkOrder.LatenessNotified: _lateness_notified,
        WorkOrder.Arrived: _arrived,
        WorkOrder.Rejected: _rejected,
        WorkOrder.Accepted: _accepted,
        WorkOrder.FeedbackReceived: _feedback,
        Complaint.Lodged: _lodged,
        Complaint.InvestigationRecorded: _findings,
        Complaint.Resolved: _complaint_confirmed,
        Complaint.Closed: _complaint_confirmed,
        Complaint.Reopened: _complaint_confirmed,
        StaffMember.Registered: _registered,
        StaffMember.ConductRecorded: _conduct,
    }

    # -- the rules, applied when asked ---------------------------------------

    @property
    def policy(self) -> Policy:
        return self.settings.policy

    def _month(self, occurred_at: str) -> str:
        return month_of(datetime.fromisoformat(occurred_at), self.settings.timezone)

    def items(self, tx: Tx, t: Tables, period: Period, staff_id: str | None = None) -> list[Item]:
        """Every item of the period, for one staff member or all, in time order
        (with those of no points, which count for the ladder but are not shown)."""
        start = period.starts_at(self.settings.timezone)
        end = period.ends_at(self.settings.timezone)
        found = [
            *self._late_arrivals(tx, t, start, end, staff_id),
            *self._faults(tx, t, start, end, staff_id),
            *self._praise(tx, t, start, end, staff_id),
            *self._conduct_items(tx, t, start, end, staff_id),
        ]
        found.sort(key=lambda i: (i.occurred_at, i.aggregate_id, i.version, i.rule))
        return found

    def _late_arrivals(
        self, tx: Tx, t: Tables, start: datetime, end: datetime, staff_id: str | None
    ) -> list[Item]:
        where, params = between("arrived_at", start, end)
        who, whom = _staff_filter("technician_id", staff_id)
        rows = tx.query(
            "SELECT work_order_id, technician_id, arrival_version, arrived_at, minutes_late "
            f"FROM {t.appraisal_orders} WHERE minutes_late > 0 AND lateness_notified = 0 "
            f"AND technician_id IS NOT NULL{where}{who}",
            (*params, *whom),
        )
        bands = self.policy.appraisal
        return [
            Item(
                staff_id=r["technician_id"],
                rule=LATE_ARRIVAL,
                points=bands.lateness_points(int(r["minutes_late"])),
                aggregate_id=r["work_order_id"],
                version=int(r["arrival_version"]),
                event_type="Arrived",
                occurred_at=r["arrived_at"],
                month=self._month(r["arrived_at"]),
                detail=f"arrived {r['minutes_late']} min after the appointment start "
                "without notice",
            )
            for r in rows
        ]

    def _faults(
        self, tx: Tx, t: Tables, start: datetime, end: datetime, staff_id: str | None
    ) -> list[Item]:
        where, params = between("f.occurred_at", start, end)
        who, whom = _staff_filter("f.staff_id", staff_id)
        rows = tx.query(
            "SELECT f.complaint_id, f.staff_id, f.version, f.occurred_at, c.severity "
            f"FROM {t.appraisal_faults} f JOIN {t.appraisal_complaints} c "
            f"ON c.complaint_id = f.complaint_id WHERE 1 = 1{where}{who}",
            (*params, *whom),
        )
        fault = self.policy.appraisal.fault
        return [
            Item(
                staff_id=r["staff_id"],
                rule=COMPANY_AT_FAULT,
                points=getattr(fault, r["severity"]),
                aggregate_id=r["complaint_id"],
                version=int(r["version"]),
                event_type="InvestigationRecorded",
                occurred_at=r["occurred_at"],
                month=self._month(r["occurred_at"]),
                detail=f"{r['severity']} complaint: the findings name them, company at fault",
            )
            for r in rows
        ]

    def _praise(
        self, tx: Tx, t: Tables, start: datetime, end: datetime, staff_id: str | None
    ) -> list[Item]:
        where, params = between("feedback_at", start, end)
        who, whom = _staff_filter("technician_id", staff_id)
        rows = tx.query(
            "SELECT work_order_id, technician_id, feedback_version, feedback_at "
            f"FROM {t.appraisal_orders} WHERE praise = 1 AND technician_id IS NOT NULL"
            f"{where}{who}",
            (*params, *whom),
        )
        return [
            Item(
                staff_id=r["technician_id"],
                rule=PRAISE,
                points=self.policy.appraisal.praise,
                aggregate_id=r["work_order_id"],
                version=int(r["feedback_version"]),
                event_type="FeedbackReceived",
                occurred_at=r["feedback_at"],
                month=self._month(r["feedback_at"]),
                detail="praised in the customer's feedback",
            )
            for r in rows
        ]

    def _conduct_items(
        self, tx: Tx, t: Tables, start: datetime, end: datetime, staff_id: str | None
    ) -> list[Item]:
        """Conduct as recorded, and the ladder's extra points: records of one kind
        are numbered within each month in the order they occurred (one staff
        member's records are one aggregate, whose events never go back in time)."""
        where, params = between("occurred_at", start, end)
        who, whom = _staff_filter("staff_id", staff_id)
        rows = tx.query(
            "SELECT aggregate_id, version, staff_id, kind, points, note, occurred_at "
            f"FROM {t.appraisal_conduct} WHERE 1 = 1{where}{who} "
            "ORDER BY staff_id, occurred_at, version",
            (*params, *whom),
        )
        conduct = self.policy.conduct
        repeats: dict[tuple[str, str, str], int] = {}
        items: list[Item] = []
        for r in rows:
            month = self._month(r["occurred_at"])
            key = (r["staff_id"], r["kind"], month)
            repeat = repeats[key] = repeats.get(key, 0) + 1
            common = {
                "staff_id": r["staff_id"], "aggregate_id": r["aggregate_id"],
                "version": int(r["version"]), "event_type": "ConductRecorded",
                "occurred_at": r["occurred_at"], "month": month, "kind": r["kind"],
            }  # fmt: skip
            note = f": {r['note']}" if r["note"] else ""
            items.append(
                Item(rule=CONDUCT, points=exact(r["points"]),
                     detail=f"{r['kind']} ({_ordinal(repeat)} this month){note}", **common)
            )  # fmt: skip
            step = conduct.step_for(repeat)
            extra = None if step is None else conduct.step_points.get(r["kind"], {}).get(step)
            if extra is not None:
                items.append(
                    Item(rule=DISCIPLINE_STEP, points=extra,
                         detail=f"{_ordinal(repeat)} {r['kind']} this month: {step}", **common)
                )  # fmt: skip
        return items

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
        items = self.items(tx, t, period, staff_id)
        base = self.policy.appraisal.base_points
        return {
            "staff_id": staff_id,
            "period": period.name,
            "points": number(base + sum((i.points for i in items), Decimal(0))),
            "base_points": number(base),
            "items": [i.view() for i in items if i.points != 0],
            "discipline": self._discipline(items),
            "indicators": self._indicators(tx, t, staff_id, period),
            "policy_version": self.policy.version,
        }

    def _discipline(self, conduct: Sequence[Item]) -> dict[str, str]:
        """Per conduct kind, the highest step of the ladder reached in any month."""
        counts: dict[tuple[str, str], int] = {}
        for i in conduct:
            if i.rule == CONDUCT and i.kind is not None:
                counts[(i.kind, i.month)] = counts.get((i.kind, i.month), 0) + 1
        ladder = self.policy.conduct.ladder
        reached: dict[str, int] = {}
        for (kind, _month), count in counts.items():
            rungs = [n for n in ladder if n <= count]
            if rungs:
                reached[kind] = max(reached.get(kind, 0), max(rungs))
        return {kind: ladder[rung] for kind, rung in sorted(reached.items())}

    def _indicators(self, tx: Tx, t: Tables, staff_id: str, period: Period) -> dict[str, Any]:
        start = period.starts_at(self.settings.timezone)
        end = period.ends_at(self.settings.timezone)
        where, params = between("arrived_at", start, end)
        arrivals = tx.query(
            "SELECT work_order_id, arrived_at, minutes_late, lateness_notified, lateness_reason "
            f"FROM {t.appraisal_orders} WHERE technician_id = ? AND arrived_at IS NOT NULL"
            f"{where} ORDER BY arrived_at, work_order_id",
            (staff_id, *params),
        )
        measured = [a for a in arrivals if a["minutes_late"] is not None]
        late = [a for a in measured if int(a["minutes_late"]) > 0]
        where, params = between("accepted_at", start, end)
        accepted = tx.query(
            f"SELECT first_time_fix FROM {t.appraisal_orders} "
            f"WHERE technician_id = ? AND accepted_at IS NOT NULL{where}",
            (staff_id, *params),
        )
        where, params = between("feedback_at", start, end)
        surveys = tx.query(
            f"SELECT csat FROM {t.appraisal_orders} "
            f"WHERE technician_id = ? AND feedback_at IS NOT NULL{where}",
            (staff_id, *params),
        )
        where, params = between("c.lodged_at", start, end)
        complaints = tx.query(
            f"SELECT c.complaint_id, c.resolved FROM {t.appraisal_complaints} c "
            f"WHERE (EXISTS (SELECT 1 FROM {t.appraisal_complaint_staff} s "
            "WHERE s.complaint_id = c.complaint_id AND s.staff_id = ?) "
            f"OR EXISTS (SELECT 1 FROM {t.appraisal_orders} o "
            f"WHERE o.work_order_id = c.work_order_id AND o.technician_id = ?)){where}",
            (staff_id, staff_id, *params),
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
        known = tx.query(
            f"SELECT staff_id FROM {t.appraisal_staff} WHERE first_seen_at < ?",
            (utc_text(period.ends_at(self.settings.timezone)),),
        )
        deltas: dict[str, Decimal] = {r["staff_id"]: Decimal(0) for r in known}
        for item in self.items(tx, t, period):
            deltas[item.staff_id] = deltas.get(item.staff_id, Decimal(0)) + item.points
        base = self.policy.appraisal.base_points
        ordered = sorted(((base + d, s) for s, d in deltas.items()), key=lambda p: (-p[0], p[1]))
        ranking: list[dict[str, Any]] = []
        rank, previous = 0, None
        for place, (points, staff_id) in enumerate(ordered, start=1):
            if points != previous:
                rank, previous = place, points
            ranking.append({"staff_id": staff_id, "points": number(points), "rank": rank})
        return ranking


def _staff_filter(column: str, staff_id: str | None) -> tuple[str, tuple[str, ...]]:
    return ("", ()) if staff_id is None else (f" AND {column} = ?", (staff_id,))
