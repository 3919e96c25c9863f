"""Customer satisfaction: survey cards, first-time fixes, first-contact resolution,
complaints.

Every ended call is surveyed, not a sample (003 第十八條): an order accepted,
resolved remotely or cancelled after the technician was on site gets its
survey card from the sweep the next day (`SurveySent`); `surveys_expected`
counts the cards sent, `surveys_received` those answered, `surveys_overdue`
those sent more than the policy's `survey_overdue_days` ago without an answer.
An order belongs to the period it ended in (the `occurred_at` of `Accepted`,
`ResolvedRemotely` or `Cancelled`), and its survey with it, whenever the survey
came in. A complaint belongs to the period it was lodged in.

First-contact resolution (004: 問題一次性解決率 ≥ 90%, contract §11.4): of the
orders resolved (accepted or resolved remotely), the share with no rejection
and no repeat call linked to them (a later booking naming them, or found by
customer and service type) within the policy's `repeat_call_days` of their
resolution. Remote resolutions count. The view also answers the booking's
question "which earlier order does this call repeat?" (`earlier_order_sql`,
asked by `SatisfactionSources.earlier_order` in one statement).

Groups: by the order's technician (its last `Assigned`; `null` for an order
resolved remotely before anyone was assigned) or by its service type. A
complaint counts for every staff member it is about — named at lodging
(`staff_ids`), named responsible by the latest findings, or the technician of
the work order it concerns — and for the service type of that work order
(`null` when it concerns none). See docs/appraisal.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from uuid import UUID

from fieldledger.application.database import Tx
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.periods import local_date, local_midnight
from fieldledger.domain.repeat_calls import customer_key, is_repeat_within
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.read_model import Batch, ReadModel, Tables
from fieldledger.projections.reporting import (
    between,
    mean,
    null_last,
    percentage,
    utc_text,
)
from fieldledger.projections.versions import VersionedRows, create_versioned

if TYPE_CHECKING:
    from fieldledger.projections.projector import Projections

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
    overdue: int = 0
    resolved: int = 0
    first_contact: int = 0


ORDER_COLUMNS = (
    "work_order_id", "service_type", "technician_id", "outcome", "completed_at", "rejections",
    "csat", "attitude", "skill", "punctuality", "promise", "praise", "comment", "feedback_at",
    "customer_key", "booked_at", "arrived", "ended_at", "survey_sent_at", "repeat_calls",
)  # fmt: skip
COMPLAINT_COLUMNS = (
    "complaint_id", "work_order_id", "severity", "lodged_at", "confirmations", "last_csat",
    "satisfied",
)  # fmt: skip


STAFF_KEY = ("complaint_id", "source", "staff_id")


@dataclass
class _Rows:
    """A batch's unit of work: the orders and complaints it touches, and who the
    complaints name."""

    batch: Batch
    orders: VersionedRows
    complaints: VersionedRows
    staff: VersionedRows
    #: The aggregate id (as text) of the event being applied.
    key: str = ""

    def at(self, position: int) -> None:
        self.orders.position = self.complaints.position = self.staff.position = position
        self.key = self.batch.ids[position]


class SatisfactionView(ReadModel):
    name = "satisfaction"
    # 2: survey cards, repeat calls, first-contact resolution; 3: versions
    # (valid_from and history tables) for reports as of a past position
    schema_version = 3
    tables: ClassVar[tuple[str, ...]] = (
        "satisfaction_orders",
        "satisfaction_complaints",
        "satisfaction_complaint_staff",
        "satisfaction_orders_history",
        "satisfaction_complaints_history",
        "satisfaction_complaint_staff_history",
    )
    versioned: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "satisfaction_orders": ORDER_COLUMNS,
        "satisfaction_complaints": COMPLAINT_COLUMNS,
        "satisfaction_complaint_staff": STAFF_KEY,
    }

    def create_tables(self, tx: Tx, t: Tables) -> None:
        create_versioned(
            tx, t.satisfaction_orders, t.satisfaction_orders_history,
            "work_order_id TEXT NOT NULL, service_type TEXT NOT NULL, technician_id TEXT, "
            "outcome TEXT, completed_at TEXT, rejections INTEGER NOT NULL DEFAULT 0, "
            "csat INTEGER, attitude INTEGER, skill INTEGER, punctuality INTEGER, "
            "promise INTEGER, praise INTEGER, comment TEXT, feedback_at TEXT, "
            "customer_key TEXT, booked_at TEXT, arrived INTEGER NOT NULL DEFAULT 0, "
            "ended_at TEXT, survey_sent_at TEXT, repeat_calls INTEGER NOT NULL DEFAULT 0",
            ("work_order_id",),
            {
                "completed": "completed_at",
                "ended": "ended_at",
                # The sweep's question, "which ended orders have no survey card
                # yet?", reads the few unsent ones, not every order ever ended.
                "unsurveyed": "survey_sent_at, ended_at",
                "customer": "customer_key, service_type, completed_at",
            },
        )  # fmt: skip
        create_versioned(
            tx, t.satisfaction_complaints, t.satisfaction_complaints_history,
            "complaint_id TEXT NOT NULL, work_order_id TEXT, severity TEXT NOT NULL, "
            "lodged_at TEXT NOT NULL, confirmations INTEGER NOT NULL DEFAULT 0, "
            "last_csat INTEGER, satisfied INTEGER",
            ("complaint_id",),
            {"lodged": "lodged_at"},
        )  # fmt: skip
        create_versioned(
            tx, t.satisfaction_complaint_staff, t.satisfaction_complaint_staff_history,
            "complaint_id TEXT NOT NULL, source TEXT NOT NULL, staff_id TEXT NOT NULL",
            STAFF_KEY,
        )  # fmt: skip

    # -- handlers: one unit of work per batch ---------------------------------

    def begin_batch(self, batch: Batch) -> None:
        t = batch.t
        state = batch.state = _Rows(
            batch,
            VersionedRows(batch, t.satisfaction_orders, t.satisfaction_orders_history,
                          ("work_order_id",), ORDER_COLUMNS),
            VersionedRows(batch, t.satisfaction_complaints, t.satisfaction_complaints_history,
                          ("complaint_id",), COMPLAINT_COLUMNS),
            VersionedRows(batch, t.satisfaction_complaint_staff,
                          t.satisfaction_complaint_staff_history, STAFF_KEY, STAFF_KEY),
        )  # fmt: skip
        ids, handlers = batch.ids, self._handlers
        mine = [(p, e) for p, e in batch.events if type(e) in handlers]
        state.orders.prefetch(
            [ids[p] for p, e in mine if isinstance(e, WorkOrder.Event)]
            + [
                str(e.repeat_of)  # the earlier order a repeat call counts against
                for _, e in mine
                if isinstance(e, WorkOrder.Booked) and e.repeat_of is not None
            ]
        )
        complaints = [ids[p] for p, e in mine if isinstance(e, Complaint.Event)]
        state.complaints.prefetch(complaints)
        state.staff.prefetch(
            ids[p]
            for p, e in mine
            if isinstance(e, Complaint.Lodged | Complaint.InvestigationRecorded)
        )

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            batch.state.at(position)
            handler(self, batch.state, event)

    def end_batch(self, batch: Batch) -> None:
        batch.state.orders.flush()
        batch.state.complaints.flush()
        batch.state.staff.flush()

    def _booked(self, r: _Rows, e: WorkOrder.Booked) -> None:
        r.orders.insert(
            r.key, service_type=e.service_type, rejections=0,
            customer_key=customer_key(e.customer), booked_at=utc_text(e.occurred_at),
            arrived=0, repeat_calls=0,
        )  # fmt: skip
        if e.repeat_of is None:
            return
        # A repeat call counts against the earlier order's first-contact
        # resolution when it came within the window after that resolution.
        earlier = r.orders.get(str(e.repeat_of))
        if earlier is None or earlier["completed_at"] is None:
            return
        if is_repeat_within(
            datetime.fromisoformat(earlier["completed_at"]),
            e.occurred_at,
            self.settings.policy.procedure,
        ):
            r.orders.update(str(e.repeat_of), repeat_calls=int(earlier["repeat_calls"] or 0) + 1)

    def _arrived(self, r: _Rows, e: WorkOrder.Arrived) -> None:
        r.orders.update(r.key, arrived=1)

    def _cancelled(self, r: _Rows, e: WorkOrder.Cancelled) -> None:
        # A call cancelled after the visit ended all the same: it is surveyed.
        row = r.orders.get(r.key)
        if row is not None and int(row["arrived"] or 0) == 1:
            r.orders.update(r.key, outcome="cancelled", ended_at=utc_text(e.occurred_at))

    def _survey_sent(self, r: _Rows, e: WorkOrder.SurveySent) -> None:
        r.orders.update(r.key, survey_sent_at=utc_text(e.occurred_at))

    def _assigned(self, r: _Rows, e: WorkOrder.Assigned) -> None:
        r.orders.update(r.key, technician_id=e.technician_id)

    def _rejected(self, r: _Rows, e: WorkOrder.Rejected) -> None:
        r.orders.update(r.key, rejections=e.rejection_count)

    def _accepted(self, r: _Rows, e: WorkOrder.Accepted) -> None:
        when = utc_text(e.occurred_at)
        r.orders.update(r.key, outcome="accepted", completed_at=when, ended_at=when)

    def _resolved_remotely(self, r: _Rows, e: WorkOrder.ResolvedRemotely) -> None:
        when = utc_text(e.occurred_at)
        r.orders.update(r.key, outcome="resolved_remotely", completed_at=when, ended_at=when)

    def _feedback(self, r: _Rows, e: WorkOrder.FeedbackReceived) -> None:
        f = e.feedback
        r.orders.update(
            r.key, csat=f.csat, attitude=f.attitude, skill=f.skill,
            punctuality=f.punctuality, promise=f.promise, praise=int(f.praise),
            comment=f.comment, feedback_at=utc_text(e.occurred_at),
        )  # fmt: skip

    def _lodged(self, r: _Rows, e: Complaint.Lodged) -> None:
        complaint_id = r.key
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
        self._name_staff(r, r.key, "findings", e.responsible_staff_ids)

    def _name_staff(self, r: _Rows, complaint_id: str, source: str, staff_ids: list[str]) -> None:
        named = set(staff_ids)
        for key in [k for k in r.staff.group(complaint_id) if k[1] == source]:
            if key[2] not in named:
                r.staff.delete(*key)
        for staff_id in sorted(named):
            r.staff.insert(complaint_id, source, staff_id)

    def _closed(self, r: _Rows, e: Complaint.Closed) -> None:
        self._confirmed(r, e, e.csat, satisfied=True)

    def _reopened(self, r: _Rows, e: Complaint.Reopened) -> None:
        self._confirmed(r, e, e.csat, satisfied=False)

    def _confirmed(self, r: _Rows, e: Any, csat: int, *, satisfied: bool) -> None:
        row = r.complaints.get(r.key)
        if row is not None:
            r.complaints.update(
                r.key, confirmations=int(row["confirmations"]) + 1,
                last_csat=csat, satisfied=int(satisfied),
            )  # fmt: skip

    _handlers: ClassVar[dict[type, Callable[[SatisfactionView, _Rows, Any], None]]] = {
        WorkOrder.Booked: _booked,
        WorkOrder.Assigned: _assigned,
        WorkOrder.Rejected: _rejected,
        WorkOrder.Accepted: _accepted,
        WorkOrder.ResolvedRemotely: _resolved_remotely,
        WorkOrder.FeedbackReceived: _feedback,
        WorkOrder.Arrived: _arrived,
        WorkOrder.Cancelled: _cancelled,
        WorkOrder.SurveySent: _survey_sent,
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
        now: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """One group per technician or service type with any ended order or
        complaint in [start, end); survey cards overdue as of `now`."""
        key = "o.technician_id" if group_by == "technician" else "o.service_type"
        good_csat = self.settings.policy.satisfaction.good_csat
        overdue_days = self.settings.policy.procedure.survey_overdue_days
        # Without `now`, nothing is overdue ('' sorts before every instant).
        overdue_before = "" if now is None else utc_text(now - timedelta(days=overdue_days))
        groups: dict[str | None, _Group] = {}

        where, params = between("o.ended_at", start, end)
        rows = tx.query(
            f"SELECT {key} AS key, COUNT(o.survey_sent_at) AS expected, "
            "COUNT(o.csat) AS received, "
            "SUM(CASE WHEN o.survey_sent_at < ? AND o.csat IS NULL THEN 1 ELSE 0 END) "
            "AS overdue, "
            "SUM(CASE WHEN o.outcome IN ('accepted', 'resolved_remotely') THEN 1 ELSE 0 END) "
            "AS resolved, "
            "SUM(CASE WHEN o.outcome IN ('accepted', 'resolved_remotely') AND o.rejections = 0 "
            "AND o.repeat_calls = 0 THEN 1 ELSE 0 END) AS first_contact, "
            "SUM(CASE WHEN o.csat >= ? THEN 1 ELSE 0 END) AS good, "
            "SUM(o.csat) AS csat_total, "
            + "".join(f"SUM(o.{d}) AS {d}, " for d in DIMENSIONS)
            + "SUM(CASE WHEN o.praise = 1 THEN 1 ELSE 0 END) AS praised, "
            "SUM(CASE WHEN o.outcome = 'accepted' THEN 1 ELSE 0 END) AS accepted, "
            "SUM(CASE WHEN o.outcome = 'accepted' AND o.rejections = 0 THEN 1 ELSE 0 END) "
            "AS fixed_first_time "
            f"FROM {t.satisfaction_orders} o WHERE o.ended_at IS NOT NULL{where} "
            f"GROUP BY {key}",
            (overdue_before, good_csat, *params),
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
            g.overdue = int(r["overdue"] or 0)
            g.resolved = int(r["resolved"] or 0)
            g.first_contact = int(r["first_contact"] or 0)

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
        first_contact_pct = percentage(g.first_contact, g.resolved)
        below: list[str] = []
        if csat_pct is not None and csat_pct < policy.csat_target_pct:
            below.append("csat_pct")
        if first_time_fix_pct is not None and first_time_fix_pct < policy.first_time_fix_target_pct:
            below.append("first_time_fix_pct")
        if (
            first_contact_pct is not None
            and first_contact_pct
            < self.settings.policy.procedure.first_contact_resolution_target_pct
        ):
            below.append("first_contact_resolution_pct")
        return {
            "key": key,
            "csat_pct": csat_pct,
            "dimensions": {d: mean(g.dimension_totals[d], g.received) for d in DIMENSIONS},
            "first_time_fix_pct": first_time_fix_pct,
            "complaints": g.complaints,
            "surveys_expected": g.expected,
            "surveys_received": g.received,
            "surveys_overdue": g.overdue,
            "first_contact_resolution_pct": first_contact_pct,
            "resolved": g.resolved,
            "first_contact_resolutions": g.first_contact,
            "surveys_good": g.good,
            "below_threshold": below,
            "mean_csat": mean(g.csat_total, g.received),
            "praised": g.praised,
            "accepted": g.accepted,
            "first_time_fixes": g.fixed_first_time,
            "complaints_closed": g.complaints_closed,
        }

    def surveys_due(self, tx: Tx, t: Tables, at: datetime) -> list[UUID]:
        """Orders ended on a local day before `at`'s without a survey card sent."""
        today = local_midnight(local_date(at, self.settings.timezone), self.settings.timezone)
        rows = tx.query(
            f"SELECT work_order_id FROM {t.satisfaction_orders} WHERE ended_at IS NOT NULL "
            "AND ended_at < ? AND survey_sent_at IS NULL ORDER BY ended_at, work_order_id",
            (utc_text(today),),
        )
        return [UUID(str(r["work_order_id"])) for r in rows]


def earlier_order_sql(t: Tables) -> str:
    """The booking's question: the latest order of the customer and service
    type resolved (accepted or resolved remotely) in [since, until], what a
    booking then repeats (its parameters: `earlier_order_params`)."""
    return (
        f"SELECT work_order_id FROM {t.satisfaction_orders} WHERE customer_key = ? "
        "AND service_type = ? AND outcome IN ('accepted', 'resolved_remotely') "
        "AND completed_at >= ? AND completed_at <= ? "
        "ORDER BY completed_at DESC, work_order_id LIMIT 1"
    )


def earlier_order_params(
    customer: str, service_type: str, since: datetime, until: datetime
) -> tuple[str, str, str, str]:
    return (customer, service_type, utc_text(since), utc_text(until))


class SatisfactionSources:
    """The satisfaction view as the booking's repeat-call finder and the sweep's
    source of survey cards due."""

    NAME = "satisfaction"

    def __init__(self, projections: Projections) -> None:
        self.projections = projections

    def catch_up(self) -> None:
        self.projections.catch_up(self.NAME)

    def _view(self) -> SatisfactionView:
        view = self.projections.models[self.NAME]
        assert isinstance(view, SatisfactionView)
        return view

    def earlier_order(
        self, customer: str, service_type: str, since: datetime, until: datetime
    ) -> UUID | None:
        # The live view as it stands: a booking does not wait for the projector
        # (its lag, a fraction of a second, is far shorter than a customer takes
        # to call again), so commands stay as fast as the store. One statement
        # on PostgreSQL, one round trip, no transaction of its own to begin and
        # commit (`Generations.scalar`); it used to read in a transaction of its
        # own (BEGIN with the drop lock and the lookup, the query, COMMIT): three.
        found = self.projections.generations.scalar(
            self.NAME,
            earlier_order_sql,
            earlier_order_params(customer, service_type, since, until),
        )
        return None if found is None else UUID(str(found))

    def surveys_due(self, at: datetime) -> list[UUID]:
        with self.projections.reading(self.NAME) as (tx, t):
            return self._view().surveys_due(tx, t, at)
