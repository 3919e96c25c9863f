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
question "which earlier order does this call repeat?" (`earlier_order`).

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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from uuid import UUID

from fieldledger.application.database import Tx
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.periods import local_date, local_midnight
from fieldledger.domain.repeat_calls import customer_key, is_repeat_within
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


class SatisfactionView(ReadModel):
    name = "satisfaction"
    schema_version = 2  # 2: survey cards, repeat calls, first-contact resolution
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
            "promise INTEGER, praise INTEGER, comment TEXT, feedback_at TEXT, "
            "customer_key TEXT, booked_at TEXT, arrived INTEGER NOT NULL DEFAULT 0, "
            "ended_at TEXT, survey_sent_at TEXT, repeat_calls INTEGER NOT NULL DEFAULT 0)"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.satisfaction_orders, 'completed')} "
            f"ON {t.satisfaction_orders} (completed_at)"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.satisfaction_orders, 'ended')} "
            f"ON {t.satisfaction_orders} (ended_at)"
        )
        # The sweep's question, "which ended orders have no survey card yet?",
        # reads the few unsent ones, not every order ever ended.
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.satisfaction_orders, 'unsurveyed')} "
            f"ON {t.satisfaction_orders} (survey_sent_at, ended_at)"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.satisfaction_orders, 'customer')} "
            f"ON {t.satisfaction_orders} (customer_key, service_type, completed_at)"
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
            f"INSERT INTO {t.satisfaction_orders} (work_order_id, service_type, customer_key, "
            "booked_at) VALUES (?, ?, ?, ?) ON CONFLICT (work_order_id) DO NOTHING",
            (str(e.originator_id), e.service_type, customer_key(e.customer),
             utc_text(e.occurred_at)),
        )  # fmt: skip
        if e.repeat_of is None:
            return
        # A repeat call counts against the earlier order's first-contact
        # resolution when it came within the window after that resolution.
        completed = tx.scalar(
            f"SELECT completed_at FROM {t.satisfaction_orders} WHERE work_order_id = ?",
            (str(e.repeat_of),),
        )
        if completed is not None and is_repeat_within(
            datetime.fromisoformat(completed), e.occurred_at, self.settings.policy.procedure
        ):
            tx.execute(
                f"UPDATE {t.satisfaction_orders} SET repeat_calls = repeat_calls + 1 "
                "WHERE work_order_id = ?",
                (str(e.repeat_of),),
            )

    def _arrived(self, tx: Tx, t: Tables, e: WorkOrder.Arrived) -> None:
        self._set_order(tx, t, e, arrived=1)

    def _cancelled(self, tx: Tx, t: Tables, e: WorkOrder.Cancelled) -> None:
        # A call cancelled after the visit ended all the same: it is surveyed.
        tx.execute(
            f"UPDATE {t.satisfaction_orders} SET outcome = 'cancelled', ended_at = ? "
            "WHERE work_order_id = ? AND arrived = 1",
            (utc_text(e.occurred_at), str(e.originator_id)),
        )

    def _survey_sent(self, tx: Tx, t: Tables, e: WorkOrder.SurveySent) -> None:
        self._set_order(tx, t, e, survey_sent_at=utc_text(e.occurred_at))

    def _assigned(self, tx: Tx, t: Tables, e: WorkOrder.Assigned) -> None:
        self._set_order(tx, t, e, technician_id=e.technician_id)

    def _rejected(self, tx: Tx, t: Tables, e: WorkOrder.Rejected) -> None:
        self._set_order(tx, t, e, rejections=e.rejection_count)

    def _accepted(self, tx: Tx, t: Tables, e: WorkOrder.Accepted) -> None:
        when = utc_text(e.occurred_at)
        self._set_order(tx, t, e, outcome="accepted", completed_at=when, ended_at=when)

    def _resolved_remotely(self, tx: Tx, t: Tables, e: WorkOrder.ResolvedRemotely) -> None:
        when = utc_text(e.occurred_at)
        self._set_order(tx, t, e, outcome="resolved_remotely", completed_at=when, ended_at=when)

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
            "below_threshold": below,
            "mean_csat": mean(g.csat_total, g.received),
            "praised": g.praised,
            "accepted": g.accepted,
            "first_time_fixes": g.fixed_first_time,
            "complaints_closed": g.complaints_closed,
        }


    # -- the booking's question ------------------------------------------------

    def earlier_order(
        self, tx: Tx, t: Tables, customer: str, service_type: str, since: datetime,
        until: datetime,
    ) -> UUID | None:  # fmt: skip
        """The latest order of the customer and service type resolved (accepted or
        resolved remotely) in [since, until]: what a booking then repeats."""
        found = tx.scalar(
            f"SELECT work_order_id FROM {t.satisfaction_orders} WHERE customer_key = ? "
            "AND service_type = ? AND outcome IN ('accepted', 'resolved_remotely') "
            "AND completed_at >= ? AND completed_at <= ? "
            "ORDER BY completed_at DESC, work_order_id LIMIT 1",
            (customer, service_type, utc_text(since), utc_text(until)),
        )
        return None if found is None else UUID(str(found))

    def surveys_due(self, tx: Tx, t: Tables, at: datetime) -> list[UUID]:
        """Orders ended on a local day before `at`'s without a survey card sent."""
        today = local_midnight(local_date(at, self.settings.timezone), self.settings.timezone)
        rows = tx.query(
            f"SELECT work_order_id FROM {t.satisfaction_orders} WHERE ended_at IS NOT NULL "
            "AND ended_at < ? AND survey_sent_at IS NULL ORDER BY ended_at, work_order_id",
            (utc_text(today),),
        )
        return [UUID(str(r["work_order_id"])) for r in rows]


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
        # to call again), so commands stay as fast as the store.
        with self.projections.reading(self.NAME) as (tx, t):
            return self._view().earlier_order(tx, t, customer, service_type, since, until)

    def surveys_due(self, at: datetime) -> list[UUID]:
        with self.projections.reading(self.NAME) as (tx, t):
            return self._view().surveys_due(tx, t, at)
