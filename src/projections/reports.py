"""The periodic reports' read model: what technicians did each day, and the
day-stamped facts the weekly and monthly reports count (003 第十/十一條, 002).

Days are local dates (FIELDLEDGER_TIMEZONE) of each event's `occurred_at`.

- `report_tech_days`: one row per technician, day and work order the technician
  worked on that day — acted on it as a technician (confirmed, departed,
  arrived, started, completed, resolved remotely, ...) or spent time on its site.
  `completed`: the technician completed the work (`ServiceCompleted`) or resolved
  it remotely that day. `late_arrivals`: arrivals after the appointment start.
  `on_site_seconds`: time on site, from `Arrived` (or a rework's `Rejected`, or a
  `Resumed` hold that began on site) to `ServiceCompleted` (or `PutOnHold`,
  `Cancelled`), split at local midnight, credited to the order's technician.
  This is the 技術員工作日報表 (003 第十條: the kind of work and the time it took).
- `report_facts`: one row per counted event (booked, completed, accepted,
  resolved remotely, cancelled, rejected, escalated, feedback; complaints lodged,
  resolved, closed, reopened with their category), for the weekly meeting (002:
  每周五…本周客戶服務情況和客戶反映信息) and the monthly 《服務監督報告》.

No customer personal data is kept: orders by id, complaints by category.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from fieldledger.application.database import Tx
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.periods import local_date, local_midnight
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.read_model import Batch, ReadModel, Tables
from fieldledger.projections.reporting import index_name, mean, null_last, percentage, utc_text

NAME = "reports"
DIMENSIONS = ("attitude", "skill", "punctuality", "promise")

#: Work order events that count in the weekly and monthly reports, by fact name.
ORDER_FACTS: dict[type, str] = {
    WorkOrder.Booked: "booked",
    WorkOrder.ServiceCompleted: "completed",
    WorkOrder.Accepted: "accepted",
    WorkOrder.ResolvedRemotely: "resolved_remotely",
    WorkOrder.Cancelled: "cancelled",
    WorkOrder.Rejected: "rejected",
    WorkOrder.Escalated: "escalated",
    WorkOrder.FeedbackReceived: "feedback",
}
COMPLAINT_FACTS: dict[type, str] = {
    Complaint.Lodged: "lodged",
    Complaint.Resolved: "resolved",
    Complaint.Closed: "closed",
    Complaint.Reopened: "reopened",
}
ORDER_MEASURES = tuple(ORDER_FACTS.values())
COMPLAINT_MEASURES = tuple(COMPLAINT_FACTS.values())

#: Events after which a technician is on site (an interval begins).
_ON_SITE_FROM = (WorkOrder.Arrived, WorkOrder.Rejected)
#: Events that end time on site.
_ON_SITE_UNTIL = (WorkOrder.ServiceCompleted, WorkOrder.PutOnHold, WorkOrder.Cancelled)


def seconds_by_local_day(start: datetime, end: datetime, timezone: str) -> list[tuple[date, int]]:
    """The whole seconds of [start, end) falling on each local day."""
    spans: list[tuple[date, int]] = []
    day = local_date(start, timezone)
    cursor = start
    while cursor < end:
        midnight = local_midnight(day + timedelta(days=1), timezone)
        until = min(end, midnight)
        seconds = int((until - cursor).total_seconds())
        if seconds > 0:
            spans.append((day, seconds))
        cursor, day = until, day + timedelta(days=1)
    return spans


class ReportsView(ReadModel):
    name = NAME
    schema_version = 1
    tables: ClassVar[tuple[str, ...]] = (
        "report_orders",
        "report_complaints",
        "report_tech_days",
        "report_facts",
    )

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        #: What a batch read or wrote of each order and complaint, per thread (a
        #: scratch build may run beside the live catch-up): one read per record
        #: per batch, not one per event.
        self._batch = threading.local()

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.report_orders} ("
            "work_order_id TEXT PRIMARY KEY, service_type TEXT NOT NULL, technician_id TEXT, "
            "on_site_since TEXT, held_on_site INTEGER NOT NULL DEFAULT 0)"
        )
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.report_complaints} ("
            "complaint_id TEXT PRIMARY KEY, category TEXT NOT NULL, severity TEXT NOT NULL)"
        )
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.report_tech_days} ("
            "day TEXT NOT NULL, technician_id TEXT NOT NULL, work_order_id TEXT NOT NULL, "
            "service_type TEXT NOT NULL, completed INTEGER NOT NULL DEFAULT 0, "
            "late_arrivals INTEGER NOT NULL DEFAULT 0, on_site_seconds INTEGER NOT NULL DEFAULT 0, "
            "PRIMARY KEY (day, technician_id, work_order_id))"
        )
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.report_facts} ("
            "aggregate_id TEXT NOT NULL, version INTEGER NOT NULL, day TEXT NOT NULL, "
            "fact TEXT NOT NULL, technician_id TEXT, service_type TEXT, category TEXT, "
            "csat INTEGER, attitude INTEGER, skill INTEGER, punctuality INTEGER, "
            "promise INTEGER, praise INTEGER, comment TEXT, "
            "PRIMARY KEY (aggregate_id, version))"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.report_facts, 'day')} "
            f"ON {t.report_facts} (day, fact)"
        )

    # -- handlers ------------------------------------------------------------

    def begin_batch(self, batch: Batch) -> None:
        self._batch.orders = {}
        self._batch.categories = {}

    def _order(self, tx: Tx, t: Tables, order_id: str) -> dict[str, Any] | None:
        orders: dict[str, dict[str, Any]] = self._batch.orders
        found = orders.get(order_id)
        if found is None:
            rows = tx.query(
                "SELECT service_type, technician_id, on_site_since, held_on_site "
                f"FROM {t.report_orders} WHERE work_order_id = ?",
                (order_id,),
            )
            if not rows:
                return None
            found = orders[order_id] = rows[0]
        return found

    def _set_order(self, tx: Tx, t: Tables, order_id: str, **values: Any) -> None:
        tx.execute(
            f"UPDATE {t.report_orders} SET {', '.join(f'{c} = ?' for c in values)} "
            "WHERE work_order_id = ?",
            (*values.values(), order_id),
        )
        cached = self._batch.orders.get(order_id)
        if cached is not None:
            cached.update(values)

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        tx, t = batch.tx, batch.t
        if isinstance(event, WorkOrder.Event):
            self._work_order_event(tx, t, event)
        elif isinstance(event, Complaint.Event):
            self._complaint_event(tx, t, event)

    def _day(self, instant: datetime) -> str:
        return local_date(instant, self.settings.timezone).isoformat()

    def _work_order_event(self, tx: Tx, t: Tables, e: Any) -> None:
        order_id = str(e.originator_id)
        if isinstance(e, WorkOrder.Booked):
            tx.execute(
                f"INSERT INTO {t.report_orders} (work_order_id, service_type) VALUES (?, ?) "
                "ON CONFLICT (work_order_id) DO NOTHING",
                (order_id, e.service_type),
            )
            self._batch.orders[order_id] = {
                "service_type": e.service_type, "technician_id": None,
                "on_site_since": None, "held_on_site": 0,
            }  # fmt: skip
        row = self._order(tx, t, order_id)
        if row is None:  # pragma: no cover - every order is booked first
            return
        if isinstance(e, WorkOrder.Assigned):
            self._set_order(tx, t, order_id, technician_id=e.technician_id)
        self._on_site(tx, t, e, row)
        if e.role == "technician":
            completed = isinstance(e, WorkOrder.ServiceCompleted | WorkOrder.ResolvedRemotely)
            late = isinstance(e, WorkOrder.Arrived) and (e.minutes_late or 0) > 0
            self._tech_day(
                tx, t, self._day(e.occurred_at), e.actor, order_id, row["service_type"],
                completed=int(completed), late=int(late), seconds=0,
            )  # fmt: skip
        fact = ORDER_FACTS.get(type(e))
        if fact is not None:
            feedback = getattr(e, "feedback", None)
            self._fact(
                tx, t, e, fact, technician_id=row["technician_id"],
                service_type=row["service_type"],
                **({} if feedback is None else {
                    "csat": feedback.csat, "attitude": feedback.attitude,
                    "skill": feedback.skill, "punctuality": feedback.punctuality,
                    "promise": feedback.promise, "praise": int(feedback.praise),
                    "comment": feedback.comment or None,
                }),
            )  # fmt: skip

    def _on_site(self, tx: Tx, t: Tables, e: Any, row: dict[str, Any]) -> None:
        """Open or close the technician's interval on site."""
        since = row["on_site_since"]
        order_id = str(e.originator_id)
        if isinstance(e, _ON_SITE_UNTIL) and since is not None:
            technician = row["technician_id"] or e.actor
            start = datetime.fromisoformat(since)
            for day, seconds in seconds_by_local_day(start, e.occurred_at, self.settings.timezone):
                self._tech_day(
                    tx, t, day.isoformat(), technician, order_id, row["service_type"],
                    completed=0, late=0, seconds=seconds,
                )  # fmt: skip
            held = int(isinstance(e, WorkOrder.PutOnHold))
            self._set_order(tx, t, order_id, on_site_since=None, held_on_site=held)
        elif isinstance(e, _ON_SITE_FROM) or (
            isinstance(e, WorkOrder.Resumed) and row["held_on_site"]
        ):
            self._set_order(tx, t, order_id, on_site_since=utc_text(e.occurred_at), held_on_site=0)

    def _tech_day(
        self, tx: Tx, t: Tables, day: str, technician_id: str, order_id: str, service_type: str,
        *, completed: int, late: int, seconds: int,
    ) -> None:  # fmt: skip
        tx.execute(
            f"INSERT INTO {t.report_tech_days} AS d (day, technician_id, work_order_id, "
            "service_type, completed, late_arrivals, on_site_seconds) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (day, technician_id, work_order_id) DO UPDATE SET "
            "completed = CASE WHEN excluded.completed > d.completed "
            "THEN excluded.completed ELSE d.completed END, "
            "late_arrivals = d.late_arrivals + excluded.late_arrivals, "
            "on_site_seconds = d.on_site_seconds + excluded.on_site_seconds",
            (day, technician_id, order_id, service_type, completed, late, seconds),
        )

    def _complaint_event(self, tx: Tx, t: Tables, e: Any) -> None:
        complaint_id = str(e.originator_id)
        if isinstance(e, Complaint.Lodged):
            tx.execute(
                f"INSERT INTO {t.report_complaints} VALUES (?, ?, ?) "
                "ON CONFLICT (complaint_id) DO NOTHING",
                (complaint_id, e.category, e.severity.value),
            )
            self._batch.categories[complaint_id] = e.category
        fact = COMPLAINT_FACTS.get(type(e))
        if fact is None:
            return
        categories: dict[str, str | None] = self._batch.categories
        if complaint_id not in categories:
            categories[complaint_id] = tx.scalar(
                f"SELECT category FROM {t.report_complaints} WHERE complaint_id = ?",
                (complaint_id,),
            )
        category = categories[complaint_id]
        self._fact(tx, t, e, fact, category=category, csat=getattr(e, "csat", None))

    def _fact(self, tx: Tx, t: Tables, e: Any, fact: str, **values: Any) -> None:
        columns = ["aggregate_id", "version", "day", "fact", *values]
        tx.execute(
            f"INSERT INTO {t.report_facts} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)}) "
            "ON CONFLICT (aggregate_id, version) DO NOTHING",
            (str(e.originator_id), e.originator_version, self._day(e.occurred_at), fact,
             *values.values()),
        )  # fmt: skip

    # -- queries -------------------------------------------------------------

    @staticmethod
    def technicians(tx: Tx, t: Tables, first: date, end: date) -> list[dict[str, Any]]:
        """Per technician over the local days [first, end): orders worked,
        completed, late arrivals, hours on site, and the same per service type."""
        bounds = (first.isoformat(), end.isoformat())
        per: dict[str, dict[str, Any]] = {}
        for r in tx.query(
            "SELECT technician_id, service_type, COUNT(DISTINCT work_order_id) AS worked, "
            "COUNT(DISTINCT CASE WHEN completed = 1 THEN work_order_id END) AS completed, "
            "SUM(late_arrivals) AS late, SUM(on_site_seconds) AS seconds "
            f"FROM {t.report_tech_days} WHERE day >= ? AND day < ? "
            "GROUP BY technician_id, service_type ORDER BY technician_id, service_type",
            bounds,
        ):
            entry = per.setdefault(r["technician_id"], {
                "technician_id": r["technician_id"], "orders_worked": 0, "completed": 0,
                "late": 0, "seconds": 0, "by_service_type": [],
            })  # fmt: skip
            seconds = int(r["seconds"] or 0)
            entry["by_service_type"].append({
                "service_type": r["service_type"], "orders_worked": int(r["worked"]),
                "completed": int(r["completed"]), "hours_on_site": _hours(seconds),
            })  # fmt: skip
            entry["late"] += int(r["late"] or 0)
            entry["seconds"] += seconds
        # An order counts once per technician even when it spans service types or days.
        for r in tx.query(
            "SELECT technician_id, COUNT(DISTINCT work_order_id) AS worked, "
            "COUNT(DISTINCT CASE WHEN completed = 1 THEN work_order_id END) AS completed "
            f"FROM {t.report_tech_days} WHERE day >= ? AND day < ? GROUP BY technician_id",
            bounds,
        ):
            entry = per[r["technician_id"]]
            entry["orders_worked"] = int(r["worked"])
            entry["completed"] = int(r["completed"])
        result = []
        for key in sorted(per):
            entry = per[key]
            seconds = entry.pop("seconds")
            result.append({**entry, "hours_on_site": _hours(seconds)})
        return result

    @staticmethod
    def counts(tx: Tx, t: Tables, first: date, end: date) -> dict[str, int]:
        """How many orders or complaints had each fact on the local days [first,
        end): an order completed twice (rework) or escalated twice counts once."""
        rows = tx.query(
            "SELECT fact, COUNT(DISTINCT aggregate_id) AS n "
            f"FROM {t.report_facts} WHERE day >= ? AND day < ? GROUP BY fact",
            (first.isoformat(), end.isoformat()),
        )
        return {r["fact"]: int(r["n"]) for r in rows}

    @staticmethod
    def complaints_by_category(tx: Tx, t: Tables, first: date, end: date) -> list[dict[str, Any]]:
        rows = tx.query(
            f"SELECT category, fact, COUNT(DISTINCT aggregate_id) AS n FROM {t.report_facts} "
            "WHERE day >= ? AND day < ? AND category IS NOT NULL GROUP BY category, fact",
            (first.isoformat(), end.isoformat()),
        )
        per: dict[str, dict[str, Any]] = {}
        for r in rows:
            entry = per.setdefault(
                r["category"], {"category": r["category"], **dict.fromkeys(COMPLAINT_MEASURES, 0)}
            )
            entry[r["fact"]] = int(r["n"])
        return [per[k] for k in sorted(per, key=null_last)]

    def feedback(self, tx: Tx, t: Tables, first: date, end: date) -> dict[str, Any]:
        """Surveys received on the local days [first, end), and what customers wrote."""
        good = self.settings.policy.satisfaction.good_csat
        bounds = (first.isoformat(), end.isoformat())
        row = tx.query(
            "SELECT COUNT(*) AS received, SUM(CASE WHEN csat >= ? THEN 1 ELSE 0 END) AS good, "
            "SUM(csat) AS csat_total, "
            + "".join(f"SUM({d}) AS {d}, " for d in DIMENSIONS)
            + "SUM(praise) AS praised "
            f"FROM {t.report_facts} WHERE fact = 'feedback' AND day >= ? AND day < ?",
            (good, *bounds),
        )[0]
        received = int(row["received"] or 0)
        comments = tx.query(
            "SELECT aggregate_id, day, technician_id, csat, comment "
            f"FROM {t.report_facts} WHERE fact = 'feedback' AND day >= ? AND day < ? "
            "AND comment IS NOT NULL ORDER BY day, aggregate_id",
            bounds,
        )
        return {
            "received": received,
            "csat_pct": percentage(int(row["good"] or 0), received),
            "mean_csat": mean(row["csat_total"] or 0, received),
            "dimensions": {d: mean(row[d] or 0, received) for d in DIMENSIONS},
            "praised": int(row["praised"] or 0),
            "comments": [
                {"work_order_id": c["aggregate_id"], "day": c["day"],
                 "technician_id": c["technician_id"], "csat": int(c["csat"]),
                 "comment": c["comment"]}
                for c in comments
            ],
        }  # fmt: skip


def _hours(seconds: int) -> float:
    return round(seconds / 3600, 2)
