"""Staff appraisal: points per staff member per calendar month, every point traced
to the event that caused it and the rule's source (contract §6, §11.1, §11.2,
§11.4, §11.7).

The tables keep facts, not points: arrivals (minutes late, when notice was
given, the appointment start), surveys (praise, csat, the four ratings),
complaints and the findings that charge staff, conduct records with the
supervisor's choices, spot checks, retraining, training records, and the
policies adopted. Points, months and discipline are worked out when asked, by
the rules of `fieldledger.domain.appraisal`, under the policy in force for
each month (the latest adopted before the month ended; the service's current
policy for months before any was recorded), in the service's time zone.

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
- `ratings`: the month's mean of the four 1-4 ratings of feedback on the
  technician's orders: +2 / -2 by the policy's thresholds.
- `conduct`: a supervisor's `ConductRecorded`, with its recorded points; and
  `discipline_step`: the extra points of the kind's ladder when the Nth record
  of one kind in one month reaches a step with extra points (chosen by the
  supervisor, else the mildest).
- `training`: a training record's points in the month it was held.

An item belongs to the month of its event's `occurred_at` in the time zone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from fieldledger.application.database import Tx
from fieldledger.domain.adopted_policies import AdoptedPolicy
from fieldledger.domain.appraisal import (
    SEVERITY,
    ConductFact,
    TrainingFact,
    fault_standing,
    judge_conduct,
    late_arrival_points,
    notice_in_advance,
    ordinal,
    pass_rates,
    ratings_points,
    training_points,
)
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.periods import Period, month_of, parse_period
from fieldledger.domain.policy import ConductPolicy, Discipline, Policy, policy_from_document
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
from fieldledger.projections.versions import (
    VALID_FROM,
    VersionedRows,
    create_versioned,
    history_of,
)

LATE_ARRIVAL = "late_arrival"
COMPANY_AT_FAULT = "company_at_fault"
PRAISE = "praise"
CONDUCT = "conduct"
DISCIPLINE_STEP = "discipline_step"
RATINGS = "ratings"
TRAINING = "training"


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
    #: The rulebook and section the points apply, or "policy" where they are ours.
    source: str = "policy"
    #: The step of discipline this record reaches (conduct only).
    discipline: Discipline | None = None

    def view(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "source": self.source,
            "points": number(self.points),
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "kind": self.kind,
            "month": self.month,
            "detail": self.detail,
        }


ORDER_COLUMNS = (
    "work_order_id", "technician_id", "lateness_reason", "arrived_at", "arrival_version",
    "minutes_late", "lateness_notified", "rejections", "accepted_at", "first_time_fix",
    "feedback_at", "feedback_version", "csat", "praise", "appointment_start", "notified_at",
    "ratings_sum",
)  # fmt: skip
COMPLAINT_COLUMNS = ("complaint_id", "work_order_id", "severity", "lodged_at", "resolved")
NAMED_KEY = ("complaint_id", "source", "staff_id")
FAULT_KEY = ("complaint_id", "staff_id")
FAULT_COLUMNS = ("complaint_id", "staff_id", "version", "occurred_at")
STAFF_COLUMNS = ("staff_id", "first_seen_at")
CONDUCT_COLUMNS = (
    "aggregate_id", "version", "staff_id", "kind", "points", "note", "occurred_at", "minutes",
    "discipline", "extra_points",
)  # fmt: skip
RECORD_COLUMNS = (
    "aggregate_id", "version", "staff_id", "what", "passed", "note", "training_kind",
    "requirement", "on_day", "occurred_at",
)  # fmt: skip
TRAINING_COLUMNS = (
    "aggregate_id", "version", "staff_id", "training_kind", "held_on", "attended",
    "disciplined", "form_completed", "test_passed", "attempt", "deadline", "occurred_at",
)  # fmt: skip
POLICY_COLUMNS = ("version", "adopted_at", "document")


@dataclass
class _Rows:
    """A batch's unit of work: the rows its events touch, versioned event by event,
    and the facts it appends."""

    batch: Batch
    staff: VersionedRows
    orders: VersionedRows
    complaints: VersionedRows
    named: VersionedRows
    faults: VersionedRows
    position: int = 0
    #: The aggregate id (as text) of the event being applied.
    key: str = ""
    conduct: list[tuple[Any, ...]] = field(default_factory=list)
    records: list[tuple[Any, ...]] = field(default_factory=list)
    training: list[tuple[Any, ...]] = field(default_factory=list)

    def at(self, position: int) -> None:
        self.position = position
        self.key = self.batch.ids[position]
        for rows in (self.staff, self.orders, self.complaints, self.named, self.faults):
            rows.position = position

    def flush(self) -> None:
        for rows in (self.staff, self.orders, self.complaints, self.named, self.faults):
            rows.flush()
        t = self.batch.t
        self.batch.append(t.appraisal_conduct, (*CONDUCT_COLUMNS, VALID_FROM), self.conduct)
        self.batch.append(t.appraisal_staff_records, (*RECORD_COLUMNS, VALID_FROM), self.records)
        self.batch.append(t.appraisal_training, (*TRAINING_COLUMNS, VALID_FROM), self.training)


class AppraisalView(ReadModel):
    name = "appraisal"
    # 3: versions (valid_from, history tables) for reports as of a position
    schema_version = 3
    tables: ClassVar[tuple[str, ...]] = (
        "appraisal_staff",
        "appraisal_orders",
        "appraisal_complaints",
        "appraisal_complaint_staff",
        "appraisal_faults",
        "appraisal_conduct",
        "appraisal_staff_records",
        "appraisal_training",
        "appraisal_policies",
        "appraisal_staff_history",
        "appraisal_orders_history",
        "appraisal_complaints_history",
        "appraisal_complaint_staff_history",
        "appraisal_faults_history",
    )
    versioned: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "appraisal_staff": STAFF_COLUMNS,
        "appraisal_orders": ORDER_COLUMNS,
        "appraisal_complaints": COMPLAINT_COLUMNS,
        "appraisal_complaint_staff": NAMED_KEY,
        "appraisal_faults": FAULT_COLUMNS,
    }
    appended: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "appraisal_conduct": CONDUCT_COLUMNS,
        "appraisal_staff_records": RECORD_COLUMNS,
        "appraisal_training": TRAINING_COLUMNS,
        "appraisal_policies": POLICY_COLUMNS,
    }

    def __init__(self, settings: Any, *, policy_override: Policy | None = None) -> None:
        super().__init__(settings)
        #: Policies by version (a version is a digest of its content).
        self._parsed: dict[str, Policy] = {}
        self._current_version: str | None = None
        #: A what-if replay: every month under this policy instead of the one
        #: in force then.
        self.policy_override = policy_override

    def create_tables(self, tx: Tx, t: Tables) -> None:
        create_versioned(
            tx, t.appraisal_staff, t.appraisal_staff_history,
            "staff_id TEXT NOT NULL, first_seen_at TEXT NOT NULL", ("staff_id",),
        )  # fmt: skip
        create_versioned(
            tx, t.appraisal_orders, t.appraisal_orders_history,
            "work_order_id TEXT NOT NULL, technician_id TEXT, lateness_reason TEXT, "
            "arrived_at TEXT, arrival_version INTEGER, minutes_late INTEGER, "
            "lateness_notified INTEGER, rejections INTEGER NOT NULL DEFAULT 0, "
            "accepted_at TEXT, first_time_fix INTEGER, "
            "feedback_at TEXT, feedback_version INTEGER, csat INTEGER, praise INTEGER, "
            "appointment_start TEXT, notified_at TEXT, ratings_sum INTEGER",
            ("work_order_id",),
            {"technician": "technician_id", "arrived": "arrived_at", "accepted": "accepted_at",
             "feedback": "feedback_at"},
        )  # fmt: skip
        create_versioned(
            tx, t.appraisal_complaints, t.appraisal_complaints_history,
            "complaint_id TEXT NOT NULL, work_order_id TEXT, severity TEXT NOT NULL, "
            "lodged_at TEXT NOT NULL, resolved INTEGER NOT NULL DEFAULT 0",
            ("complaint_id",), {"lodged": "lodged_at"},
        )  # fmt: skip
        create_versioned(
            tx, t.appraisal_complaint_staff, t.appraisal_complaint_staff_history,
            "complaint_id TEXT NOT NULL, source TEXT NOT NULL, staff_id TEXT NOT NULL",
            NAMED_KEY, {"staff": "staff_id"},
        )  # fmt: skip
        # The charges standing: who the findings hold responsible, company at
        # fault, and which findings first charged them.
        create_versioned(
            tx, t.appraisal_faults, t.appraisal_faults_history,
            "complaint_id TEXT NOT NULL, staff_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "occurred_at TEXT NOT NULL",
            FAULT_KEY, {"occurred": "occurred_at"},
        )  # fmt: skip
        statements = [
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_conduct} ("
            "aggregate_id TEXT NOT NULL, version INTEGER NOT NULL, staff_id TEXT NOT NULL, "
            "kind TEXT NOT NULL, points NUMERIC NOT NULL, note TEXT NOT NULL, "
            "occurred_at TEXT NOT NULL, minutes INTEGER, discipline TEXT, extra_points NUMERIC, "
            "valid_from INTEGER NOT NULL, PRIMARY KEY (aggregate_id, version))",
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_conduct, 'occurred')} "
            f"ON {t.appraisal_conduct} (occurred_at)",
            # Spot checks, retraining, reassignment, joining, training overdue
            # and dismissals: one row per event.
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_staff_records} ("
            "aggregate_id TEXT NOT NULL, version INTEGER NOT NULL, staff_id TEXT NOT NULL, "
            "what TEXT NOT NULL, passed INTEGER, note TEXT, training_kind TEXT, "
            "requirement TEXT, on_day TEXT, occurred_at TEXT NOT NULL, "
            "valid_from INTEGER NOT NULL, PRIMARY KEY (aggregate_id, version))",
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_staff_records, 'staff')} "
            f"ON {t.appraisal_staff_records} (staff_id, occurred_at)",
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_training} ("
            "aggregate_id TEXT NOT NULL, version INTEGER NOT NULL, staff_id TEXT NOT NULL, "
            "training_kind TEXT NOT NULL, held_on TEXT NOT NULL, attended INTEGER NOT NULL, "
            "disciplined INTEGER NOT NULL, form_completed INTEGER NOT NULL, test_passed INTEGER, "
            "attempt INTEGER, deadline TEXT, occurred_at TEXT NOT NULL, "
            "valid_from INTEGER NOT NULL, PRIMARY KEY (aggregate_id, version))",
            f"CREATE INDEX IF NOT EXISTS {index_name(t.appraisal_training, 'held')} "
            f"ON {t.appraisal_training} (held_on)",
            f"CREATE TABLE IF NOT EXISTS {t.appraisal_policies} ("
            "version TEXT PRIMARY KEY, adopted_at TEXT NOT NULL, document TEXT NOT NULL, "
            "valid_from INTEGER NOT NULL)",
        ]
        for statement in statements:
            tx.execute(statement)

    # -- handlers: facts only, one unit of work per batch --------------------

    def begin_batch(self, batch: Batch) -> None:
        t = batch.t

        def rows(base: str, key: tuple[str, ...], columns: tuple[str, ...]) -> VersionedRows:
            return VersionedRows(batch, t[base], t[history_of(base)], key, columns)

        state = batch.state = _Rows(
            batch,
            rows("appraisal_staff", ("staff_id",), STAFF_COLUMNS),
            rows("appraisal_orders", ("work_order_id",), ORDER_COLUMNS),
            rows("appraisal_complaints", ("complaint_id",), COMPLAINT_COLUMNS),
            rows("appraisal_complaint_staff", NAMED_KEY, NAMED_KEY),
            rows("appraisal_faults", FAULT_KEY, FAULT_COLUMNS),
        )
        ids, handlers = batch.ids, self._handlers
        mine = [(p, e) for p, e in batch.events if type(e) in handlers]
        state.orders.prefetch(ids[p] for p, e in mine if isinstance(e, WorkOrder.Event))
        complaints = [ids[p] for p, e in mine if isinstance(e, Complaint.Event)]
        state.complaints.prefetch(complaints)
        state.named.prefetch(complaints)
        state.faults.prefetch(complaints)
        staff: list[str] = []
        for _, e in mine:
            if isinstance(e, WorkOrder.Assigned):
                staff.append(e.technician_id)
            elif isinstance(e, Complaint.InvestigationRecorded):
                staff.extend(e.responsible_staff_ids)
            elif isinstance(e, StaffMember.Event):
                staff.append(getattr(e, "staff_id", ""))
        state.staff.prefetch(staff)

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            batch.state.at(position)
            handler(self, batch.state, event)

    def end_batch(self, batch: Batch) -> None:
        batch.state.flush()

    def _seen(self, r: _Rows, staff_id: str, at: datetime) -> None:
        """The staff member is known from the earliest event naming them."""
        when = utc_text(at)
        row = r.staff.get(staff_id)
        if row is None:
            r.staff.insert(staff_id, first_seen_at=when)
        elif when < row["first_seen_at"]:
            r.staff.update(staff_id, first_seen_at=when)

    def _set_order(self, r: _Rows, e: Any, **values: Any) -> None:
        r.orders.update(r.key, **values)

    def _booked(self, r: _Rows, e: WorkOrder.Booked) -> None:
        start = None if e.appointment is None else utc_text(e.appointment.start)
        r.orders.insert(r.key, appointment_start=start, rejections=0)

    def _assigned(self, r: _Rows, e: WorkOrder.Assigned) -> None:
        self._seen(r, e.technician_id, e.occurred_at)
        self._set_order(r, e, technician_id=e.technician_id)

    def _lateness_notified(self, r: _Rows, e: WorkOrder.LatenessNotified) -> None:
        # The first notice is the one that may have come in advance (§11.2).
        row = r.orders.get(r.key)
        if row is not None:
            notified = row["notified_at"] or utc_text(e.occurred_at)
            self._set_order(r, e, lateness_reason=e.reason, notified_at=notified)

    def _arrived(self, r: _Rows, e: WorkOrder.Arrived) -> None:
        self._set_order(
            r, e, arrived_at=utc_text(e.occurred_at), arrival_version=e.originator_version,
            minutes_late=e.minutes_late, lateness_notified=int(e.lateness_notified),
        )  # fmt: skip

    def _rejected(self, r: _Rows, e: WorkOrder.Rejected) -> None:
        self._set_order(r, e, rejections=e.rejection_count)

    def _accepted(self, r: _Rows, e: WorkOrder.Accepted) -> None:
        row = r.orders.get(r.key)
        if row is not None:
            first_time = 1 if int(row["rejections"] or 0) == 0 else 0
            self._set_order(r, e, accepted_at=utc_text(e.occurred_at), first_time_fix=first_time)

    def _feedback(self, r: _Rows, e: WorkOrder.FeedbackReceived) -> None:
        self._set_order(
            r, e, feedback_at=utc_text(e.occurred_at), feedback_version=e.originator_version,
            csat=e.feedback.csat, praise=int(e.feedback.praise),
            ratings_sum=e.feedback.attitude + e.feedback.skill + e.feedback.punctuality
            + e.feedback.promise,
        )  # fmt: skip

    def _lodged(self, r: _Rows, e: Complaint.Lodged) -> None:
        complaint_id = r.key
        r.complaints.insert(
            complaint_id,
            work_order_id=None if e.work_order_id is None else str(e.work_order_id),
            severity=e.severity.value,
            lodged_at=utc_text(e.occurred_at),
            resolved=0,
        )
        self._name_staff(r, complaint_id, "lodged", e.staff_ids)

    def _findings(self, r: _Rows, e: Complaint.InvestigationRecorded) -> None:
        complaint_id = r.key
        self._name_staff(r, complaint_id, "findings", e.responsible_staff_ids)
        for staff_id in e.responsible_staff_ids:
            self._seen(r, staff_id, e.occurred_at)
        at_fault = set(e.responsible_staff_ids) if e.company_at_fault else set()
        charged = {k[1] for k in r.faults.group(complaint_id)}
        for staff_id in sorted(charged - at_fault):
            r.faults.delete(complaint_id, staff_id)
        for staff_id in sorted(at_fault - charged):
            r.faults.insert(
                complaint_id, staff_id, version=e.originator_version,
                occurred_at=utc_text(e.occurred_at),
            )  # fmt: skip

    def _name_staff(
        self, r: _Rows, complaint_id: str, source: str, staff_ids: Iterable[str]
    ) -> None:
        named = set(staff_ids)
        for key in [k for k in r.named.group(complaint_id) if k[1] == source]:
            if key[2] not in named:
                r.named.delete(*key)
        for staff_id in sorted(named):
            r.named.insert(complaint_id, source, staff_id)

    def _complaint_confirmed(self, r: _Rows, e: Any) -> None:
        resolved = not isinstance(e, Complaint.Reopened)
        r.complaints.update(r.key, resolved=int(resolved))

    def _registered(self, r: _Rows, e: StaffMember.Registered) -> None:
        self._seen(r, e.staff_id, e.occurred_at)

    def _conduct(self, r: _Rows, e: StaffMember.ConductRecorded) -> None:
        self._seen(r, e.staff_id, e.occurred_at)
        tx = r.batch.tx
        extra = None if e.extra_points is None else numeric(tx, e.extra_points)
        r.conduct.append(
            (r.key, e.originator_version, e.staff_id, e.kind,
             numeric(tx, e.points), e.note, utc_text(e.occurred_at), e.minutes,
             e.discipline, extra, r.position),
        )  # fmt: skip

    def _staff_record(self, r: _Rows, e: Any) -> None:
        self._seen(r, e.staff_id, e.occurred_at)
        what = _STAFF_RECORDS[type(e)]
        passed = getattr(e, "passed", None)
        on_day = (
            getattr(e, "on", None) or getattr(e, "due_on", None) or getattr(e, "deadline", None)
        )
        r.records.append(
            (r.key, e.originator_version, e.staff_id, what,
             None if passed is None else int(passed),
             getattr(e, "notes", None) or getattr(e, "note", None),
             getattr(e, "training_kind", None), getattr(e, "requirement", None),
             None if on_day is None else on_day.isoformat(), utc_text(e.occurred_at),
             r.position),
        )  # fmt: skip

    def _training(self, r: _Rows, e: StaffMember.TrainingRecorded) -> None:
        self._seen(r, e.staff_id, e.occurred_at)
        r.training.append(
            (r.key, e.originator_version, e.staff_id, e.training_kind,
             e.held_on.isoformat(), int(e.attended), int(e.disciplined),
             int(e.form_completed), None if e.test_passed is None else int(e.test_passed),
             e.attempt, None if e.deadline is None else e.deadline.isoformat(),
             utc_text(e.occurred_at), r.position),
        )  # fmt: skip

    def _policy_adopted(self, r: _Rows, e: AdoptedPolicy.PolicyAdopted) -> None:
        tx, t = r.batch.tx, r.batch.t
        tx.execute(
            f"INSERT INTO {t.appraisal_policies} (version, adopted_at, document, valid_from) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (version) DO NOTHING",
            (e.version, utc_text(e.occurred_at), json.dumps(e.document, sort_keys=True),
             r.position),
        )  # fmt: skip

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
        StaffMember.QualityChecked: _staff_record,
        StaffMember.Retrained: _staff_record,
        StaffMember.Reassigned: _staff_record,
        StaffMember.Joined: _staff_record,
        StaffMember.TrainingOverdue: _staff_record,
        StaffMember.Dismissed: _staff_record,
        StaffMember.TrainingRecorded: _training,
        AdoptedPolicy.PolicyAdopted: _policy_adopted,
    }

    # -- the policy of a month -------------------------------------------------

    def policy_for(self, tx: Tx, t: Tables, month: str) -> Policy:
        """The policy in force for a month (see `in_force`)."""
        return self.in_force(tx, t, month)[1]

    def in_force(self, tx: Tx, t: Tables, month: str) -> tuple[str, Policy]:
        """The version and policy in force for a month: the latest adopted before
        the month ended; the service's current policy if none was recorded by
        then. The version is the one recorded (a policy of an earlier shape is
        read into the current models, whose digest would differ)."""
        if self.policy_override is not None:
            if self._current_version is None:
                self._current_version = self.policy_override.version
            return self._current_version, self.policy_override
        end = parse_period(month).ends_at(self.settings.timezone)
        row = tx.query(
            f"SELECT version, document FROM {t.appraisal_policies} WHERE adopted_at < ? "
            "ORDER BY adopted_at DESC, version LIMIT 1",
            (utc_text(end),),
        )
        if not row:
            current = self.settings.policy
            version = self._current_version
            if version is None:
                version = self._current_version = current.version
            return version, current
        version = row[0]["version"]
        found = self._parsed.get(version)
        if found is None:
            found = self._parsed[version] = policy_from_document(json.loads(row[0]["document"]))
        return version, found

    def _month(self, occurred_at: str) -> str:
        return month_of(datetime.fromisoformat(occurred_at), self.settings.timezone)

    def items(self, tx: Tx, t: Tables, period: Period, staff_id: str | None = None) -> list[Item]:
        """Every item of the period, for one staff member or all, in time order
        (with those of no points, which count for the ladder but are not shown),
        each month under its own policy."""
        found: list[Item] = []
        policies = {m: self.policy_for(tx, t, m) for m in period.months}
        for month, policy in policies.items():
            one = parse_period(month)
            start = one.starts_at(self.settings.timezone)
            end = one.ends_at(self.settings.timezone)
            found += self._late_arrivals(tx, t, policy, start, end, staff_id)
            found += self._faults(tx, t, policy, start, end, staff_id)
            found += self._praise(tx, t, policy, start, end, staff_id)
            found += self._ratings(tx, t, policy, month, start, end, staff_id)
            found += self._training_items(tx, t, policy, one, staff_id)
        found += self._conduct_items(tx, t, period, policies, staff_id)
        found.sort(key=lambda i: (i.occurred_at, i.aggregate_id, i.version, i.rule, i.detail))
        return found

    def _late_arrivals(
        self, tx: Tx, t: Tables, policy: Policy, start: datetime, end: datetime,
        staff_id: str | None,
    ) -> list[Item]:  # fmt: skip
        where, params = between("arrived_at", start, end)
        who, whom = _staff_filter("technician_id", staff_id)
        rows = tx.query(
            "SELECT work_order_id, technician_id, arrival_version, arrived_at, minutes_late, "
            f"notified_at, appointment_start FROM {t.appraisal_orders} WHERE minutes_late > 0 "
            f"AND technician_id IS NOT NULL{where}{who}",
            (*params, *whom),
        )
        items = []
        for r in rows:
            notified = notice_in_advance(
                _instant(r["notified_at"]), _instant(r["appointment_start"])
            )
            points = late_arrival_points(policy.appraisal, int(r["minutes_late"]), notified)
            if points == 0:
                continue
            late_notice = " (notice came after the start)" if r["notified_at"] else ""
            items.append(Item(
                staff_id=r["technician_id"], rule=LATE_ARRIVAL, points=points,
                aggregate_id=r["work_order_id"], version=int(r["arrival_version"]),
                event_type="Arrived", occurred_at=r["arrived_at"],
                month=self._month(r["arrived_at"]),
                detail=f"arrived {r['minutes_late']} min after the appointment start "
                f"without notice in advance{late_notice}",
                source=policy.appraisal.sources.late_arrival,
            ))  # fmt: skip
        return items

    def _faults(
        self, tx: Tx, t: Tables, policy: Policy, start: datetime, end: datetime,
        staff_id: str | None,
    ) -> list[Item]:  # fmt: skip
        where, params = between("f.occurred_at", start, end)
        who, whom = _staff_filter("f.staff_id", staff_id)
        rows = tx.query(
            "SELECT f.complaint_id, f.staff_id, f.version, f.occurred_at, c.severity "
            f"FROM {t.appraisal_faults} f JOIN {t.appraisal_complaints} c "
            f"ON c.complaint_id = f.complaint_id WHERE 1 = 1{where}{who}",
            (*params, *whom),
        )
        fault = policy.appraisal.fault
        return [
            Item(
                staff_id=r["staff_id"], rule=COMPANY_AT_FAULT,
                points=getattr(fault, r["severity"]), aggregate_id=r["complaint_id"],
                version=int(r["version"]), event_type="InvestigationRecorded",
                occurred_at=r["occurred_at"], month=self._month(r["occurred_at"]),
                detail=f"{r['severity']} complaint: the findings name them, company at fault",
                source=policy.appraisal.sources.company_at_fault,
            )
            for r in rows
        ]  # fmt: skip

    def _praise(
        self, tx: Tx, t: Tables, policy: Policy, start: datetime, end: datetime,
        staff_id: str | None,
    ) -> list[Item]:  # fmt: skip
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
                staff_id=r["technician_id"], rule=PRAISE, points=policy.appraisal.praise,
                aggregate_id=r["work_order_id"], version=int(r["feedback_version"]),
                event_type="FeedbackReceived", occurred_at=r["feedback_at"],
                month=self._month(r["feedback_at"]), detail="praised in the customer's feedback",
                source=policy.appraisal.sources.praise,
            )
            for r in rows
        ]  # fmt: skip

    def _ratings(
        self, tx: Tx, t: Tables, policy: Policy, month: str, start: datetime, end: datetime,
        staff_id: str | None,
    ) -> list[Item]:  # fmt: skip
        """One item per technician and month: the mean of the four ratings over the
        month's feedback on their orders; it cites the month's last feedback."""
        ratings = policy.appraisal.ratings
        if ratings is None:
            return []
        where, params = between("feedback_at", start, end)
        who, whom = _staff_filter("technician_id", staff_id)
        rows = tx.query(
            "SELECT work_order_id, technician_id, feedback_version, feedback_at, ratings_sum "
            f"FROM {t.appraisal_orders} WHERE ratings_sum IS NOT NULL "
            f"AND technician_id IS NOT NULL{where}{who} "
            "ORDER BY technician_id, feedback_at, work_order_id",
            (*params, *whom),
        )
        by_staff: dict[str, list[Any]] = {}
        for r in rows:
            by_staff.setdefault(r["technician_id"], []).append(r)
        items = []
        for technician, surveys in by_staff.items():
            total = sum(int(r["ratings_sum"]) for r in surveys)
            average = Decimal(total) / (4 * len(surveys))
            points = ratings_points(ratings, average)
            if points == 0:
                continue
            last = surveys[-1]
            items.append(Item(
                staff_id=technician, rule=RATINGS, points=points,
                aggregate_id=last["work_order_id"], version=int(last["feedback_version"]),
                event_type="FeedbackReceived", occurred_at=last["feedback_at"], month=month,
                detail=f"mean rating {average.quantize(Decimal('0.01'))} over {len(surveys)} "
                f"survey(s) this month (good from {ratings.good_from}, poor below "
                f"{ratings.poor_below})",
                source=ratings.source,
            ))  # fmt: skip
        return items

    def _training_items(
        self, tx: Tx, t: Tables, policy: Policy, month: Period, staff_id: str | None
    ) -> list[Item]:
        """Training records' points, in the month the training was held."""
        who, whom = _staff_filter("staff_id", staff_id)
        rows = tx.query(
            f"SELECT * FROM {t.appraisal_training} WHERE held_on >= ? AND held_on < ?{who}",
            (month.first_day.isoformat(), month.end_day.isoformat(), *whom),
        )
        items = []
        for r in rows:
            for why, points in training_points(policy.training, _training_fact(r)):
                items.append(Item(
                    staff_id=r["staff_id"], rule=TRAINING, points=points,
                    aggregate_id=r["aggregate_id"], version=int(r["version"]),
                    event_type="TrainingRecorded", occurred_at=r["occurred_at"],
                    month=month.name, kind=r["training_kind"],
                    detail=f"{r['training_kind']} training held {r['held_on']}: {why}",
                    source=policy.training.source,
                ))  # fmt: skip
        return items

    def _conduct_items(
        self, tx: Tx, t: Tables, period: Period, policies: dict[str, Policy],
        staff_id: str | None,
    ) -> list[Item]:  # fmt: skip
        """Conduct as recorded, and the ladder's extra points: the domain numbers
        records of one kind within each month in the order they occurred (one
        staff member's records are one aggregate, whose events never go back in
        time) and judges them under the month's policy."""
        start = period.starts_at(self.settings.timezone)
        end = period.ends_at(self.settings.timezone)
        where, params = between("occurred_at", start, end)
        who, whom = _staff_filter("staff_id", staff_id)
        rows = tx.query(
            "SELECT aggregate_id, version, staff_id, kind, points, note, occurred_at, minutes, "
            f"discipline, extra_points FROM {t.appraisal_conduct} WHERE 1 = 1{where}{who} "
            "ORDER BY staff_id, occurred_at, version",
            (*params, *whom),
        )
        facts = [
            ConductFact(
                r["staff_id"], r["kind"], self._month(r["occurred_at"]), exact(r["points"]),
                r["discipline"], None if r["extra_points"] is None else exact(r["extra_points"]),
            )
            for r in rows
        ]  # fmt: skip

        def conduct_of(month: str) -> ConductPolicy:
            return policies[month].conduct

        items: list[Item] = []
        for r, judged in zip(rows, judge_conduct(conduct_of, facts), strict=True):
            fact = judged.fact
            common = {
                "staff_id": fact.staff_id, "aggregate_id": r["aggregate_id"],
                "version": int(r["version"]), "event_type": "ConductRecorded",
                "occurred_at": r["occurred_at"], "month": fact.month, "kind": fact.kind,
                "source": judged.source,
            }  # fmt: skip
            note = f": {r['note']}" if r["note"] else ""
            minutes = f", {r['minutes']} min late for the shift" if r["minutes"] is not None else ""
            items.append(Item(
                rule=CONDUCT, points=fact.points,
                detail=f"{fact.kind} ({ordinal(judged.repeat)} this month{minutes}){note}",
                discipline=judged.discipline, **common,
            ))  # fmt: skip
            if judged.extra is not None and judged.step is not None:
                items.append(Item(
                    rule=DISCIPLINE_STEP, points=judged.extra,
                    detail=f"{ordinal(judged.repeat)} {fact.kind} this month: "
                    f"{judged.step.discipline}, a further {judged.extra}", **common,
                ))  # fmt: skip
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
        version, policy = self.in_force(tx, t, period.months[-1])
        base = policy.appraisal.base_points
        steps = self._discipline_steps(tx, t, period, staff_id, items)
        faults = self._service_faults(tx, t, staff_id, period, policy)
        return {
            "staff_id": staff_id,
            "period": period.name,
            "points": number(base + sum((i.points for i in items), Decimal(0))),
            "base_points": number(base),
            "items": [i.view() for i in items if i.points != 0],
            "discipline": _highest(steps),
            "discipline_steps": steps,
            "retraining_required": faults["retraining_required"],
            "service_faults": faults,
            "training": self._training_of(tx, t, staff_id, period),
            "indicators": self._indicators(tx, t, staff_id, period),
            "policy_version": version,
            "policy_versions": {m: self.in_force(tx, t, m)[0] for m in period.months},
        }

    def _discipline_steps(
        self, tx: Tx, t: Tables, period: Period, staff_id: str, items: Sequence[Item]
    ) -> list[dict[str, Any]]:
        """Every step of discipline reached in the period, with its source event:
        the ladder's and chosen steps of conduct, and training dismissals."""
        steps = [
            {"kind": i.kind, "discipline": i.discipline, "month": i.month,
             "aggregate_id": i.aggregate_id, "version": i.version, "event_type": i.event_type,
             "occurred_at": i.occurred_at, "source": i.source}
            for i in items if i.rule == CONDUCT and i.discipline is not None
        ]  # fmt: skip
        where, params = between("occurred_at", period.starts_at(self.settings.timezone),
                                period.ends_at(self.settings.timezone))  # fmt: skip
        for r in tx.query(
            f"SELECT * FROM {t.appraisal_staff_records} WHERE staff_id = ? AND what = ?"
            f"{where} ORDER BY occurred_at, version",
            (staff_id, "dismissed", *params),
        ):
            steps.append({
                "kind": f"training:{r['training_kind']}", "discipline": "dismissal",
                "month": self._month(r["occurred_at"]), "aggregate_id": r["aggregate_id"],
                "version": int(r["version"]), "event_type": "Dismissed",
                "occurred_at": r["occurred_at"],
                "source": self.policy_for(tx, t, self._month(r["occurred_at"])).training.source,
            })  # fmt: skip
        return steps

    def _service_faults(
        self, tx: Tx, t: Tables, staff_id: str, period: Period, policy: Policy
    ) -> dict[str, Any]:
        """Service faults counted up to the end of the period, cumulatively, since
        the last retraining or reassignment (004 4.1.3)."""
        end = utc_text(period.ends_at(self.settings.timezone))
        rows = [
            {"what": r["what"], "aggregate_id": r["aggregate_id"], "version": int(r["version"]),
             "occurred_at": r["occurred_at"],
             "event_type": _EVENT_OF[r["what"]]}
            for r in tx.query(
                f"SELECT what, aggregate_id, version, occurred_at FROM "
                f"{t.appraisal_staff_records} WHERE staff_id = ? AND occurred_at < ? AND "
                "(what IN ('retrained', 'reassigned') OR (what = 'quality_check' AND passed = 0))",
                (staff_id, end),
            )
        ] + [
            {"what": "complaint_at_fault", "aggregate_id": r["complaint_id"],
             "version": int(r["version"]), "occurred_at": r["occurred_at"],
             "event_type": "InvestigationRecorded"}
            for r in tx.query(
                f"SELECT complaint_id, version, occurred_at FROM {t.appraisal_faults} "
                "WHERE staff_id = ? AND occurred_at < ?",
                (staff_id, end),
            )
        ]  # fmt: skip
        rows.sort(key=lambda r: (r["occurred_at"], r["aggregate_id"], r["version"]))
        rule = policy.service_faults
        standing = fault_standing(
            (r["what"] not in ("retrained", "reassigned") for r in rows), rule.retraining_after
        )
        cleared = [i for i, r in enumerate(rows) if r["what"] in ("retrained", "reassigned")]
        since = rows[cleared[-1] + 1 :] if cleared else rows
        return {
            "count": standing.count,
            "retraining_required": standing.retraining_required,
            "retraining_after": rule.retraining_after,
            "source": rule.source,
            "faults": since,
            "last_cleared": rows[cleared[-1]] if cleared else None,
        }

    def _training_of(self, tx: Tx, t: Tables, staff_id: str, period: Period) -> dict[str, Any]:
        joined = tx.scalar(
            f"SELECT on_day FROM {t.appraisal_staff_records} WHERE staff_id = ? AND what = ?",
            (staff_id, "joined"),
        )
        records = tx.query(
            f"SELECT * FROM {t.appraisal_training} WHERE staff_id = ? AND held_on >= ? "
            "AND held_on < ? ORDER BY held_on, version",
            (staff_id, period.first_day.isoformat(), period.end_day.isoformat()),
        )
        where, params = between("occurred_at", period.starts_at(self.settings.timezone),
                                period.ends_at(self.settings.timezone))  # fmt: skip
        overdue = tx.query(
            f"SELECT * FROM {t.appraisal_staff_records} WHERE staff_id = ? AND what = ?"
            f"{where} ORDER BY occurred_at, version",
            (staff_id, "training_overdue", *params),
        )
        return {
            "joined_on": joined,
            "records": [
                {"aggregate_id": r["aggregate_id"], "version": int(r["version"]),
                 "kind": r["training_kind"], "held_on": r["held_on"],
                 "attended": r["attended"] == 1, "disciplined": r["disciplined"] == 1,
                 "form_completed": r["form_completed"] == 1,
                 "test_passed": None if r["test_passed"] is None else r["test_passed"] == 1,
                 "attempt": r["attempt"], "deadline": r["deadline"]}
                for r in records
            ],
            "overdue": [
                {"requirement": r["requirement"], "kind": r["training_kind"],
                 "due_on": r["on_day"], "aggregate_id": r["aggregate_id"],
                 "version": int(r["version"]), "occurred_at": r["occurred_at"]}
                for r in overdue
            ],
        }  # fmt: skip

    def staff_to_check(self, tx: Tx, t: Tables) -> list[str]:
        """Staff ids the training sweep looks at: who joined, or who has a final
        training deadline."""
        rows = tx.query(
            f"SELECT staff_id FROM {t.appraisal_staff_records} WHERE what = 'joined' UNION "
            f"SELECT staff_id FROM {t.appraisal_training} WHERE deadline IS NOT NULL "
            "ORDER BY staff_id"
        )
        return [r["staff_id"] for r in rows]

    def training_summary(self, tx: Tx, t: Tables, period: Period) -> dict[str, Any]:
        """Pass rates per training kind and attempt for tests held in the period,
        against the targets of the policy in force at the period's end."""
        version, policy = self.in_force(tx, t, period.months[-1])
        rows = tx.query(
            f"SELECT training_kind, attempt, test_passed FROM {t.appraisal_training} "
            "WHERE test_passed IS NOT NULL AND held_on >= ? AND held_on < ?",
            (period.first_day.isoformat(), period.end_day.isoformat()),
        )
        rates = pass_rates(
            policy.training,
            ((r["training_kind"], int(r["attempt"]), r["test_passed"] == 1) for r in rows),
        )
        groups = []
        for r in rates:
            rate = percentage(r.passed, r.tests)
            groups.append({
                "kind": r.training_kind, "attempt": r.attempt, "tests": r.tests,
                "passed": r.passed, "pass_rate_pct": rate, "target_pct": number(r.target_pct),
                "below_target": rate is not None and Decimal(str(rate)) < r.target_pct,
            })  # fmt: skip
        return {"period": period.name, "groups": groups, "source": policy.training.source,
                "policy_version": version}  # fmt: skip

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
        base = self.policy_for(tx, t, period.months[-1]).appraisal.base_points
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


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _training_fact(r: Any) -> TrainingFact:
    return TrainingFact(
        r["training_kind"], date.fromisoformat(r["held_on"]), r["attended"] == 1,
        r["disciplined"] == 1, r["form_completed"] == 1,
        None if r["test_passed"] is None else r["test_passed"] == 1,
        None if r["attempt"] is None else int(r["attempt"]),
    )  # fmt: skip


def _highest(steps: Iterable[dict[str, Any]]) -> dict[str, Discipline]:
    """Per kind, the most severe step reached."""
    found: dict[str, Discipline] = {}
    for step in steps:
        kind, reached = step["kind"], step["discipline"]
        if kind not in found or SEVERITY[reached] > SEVERITY[found[kind]]:
            found[kind] = reached
    return dict(sorted(found.items()))


_STAFF_RECORDS: dict[type, str] = {
    StaffMember.QualityChecked: "quality_check",
    StaffMember.Retrained: "retrained",
    StaffMember.Reassigned: "reassigned",
    StaffMember.Joined: "joined",
    StaffMember.TrainingOverdue: "training_overdue",
    StaffMember.Dismissed: "dismissed",
}
_EVENT_OF: dict[str, str] = {
    "quality_check": "QualityChecked",
    "retrained": "Retrained",
    "reassigned": "Reassigned",
}


class AppraisalTrainingWatch:
    """The appraisal view as the training sweep's source of candidates."""

    def __init__(self, projections: Any) -> None:
        self.projections = projections

    def catch_up(self) -> None:
        self.projections.catch_up(AppraisalView.name)

    def staff_to_check(self) -> list[str]:
        with self.projections.reading(AppraisalView.name) as (tx, t):
            found: list[str] = self.projections.models[AppraisalView.name].staff_to_check(tx, t)
            return found
