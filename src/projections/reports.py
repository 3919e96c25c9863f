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

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, NamedTuple

from fieldledger.application.database import Tx
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.periods import local_date, local_midnight
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.read_model import Batch, EventTypes, ReadModel, Tables
from fieldledger.projections.reporting import index_name, mean, null_last, percentage, utc_text
from fieldledger.projections.unit_of_work import TableRows, insert_rows

NAME = "reports"
_ONE_DAY = timedelta(days=1)
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
_ON_SITE_FROM = EventTypes(WorkOrder.Arrived, WorkOrder.Rejected)
#: Events that end time on site.
_ON_SITE_UNTIL = EventTypes(WorkOrder.ServiceCompleted, WorkOrder.PutOnHold, WorkOrder.Cancelled)
#: A technician's events that complete an order that day.
_COMPLETING = EventTypes(WorkOrder.ServiceCompleted, WorkOrder.ResolvedRemotely)
_ARRIVED = EventTypes(WorkOrder.Arrived)
_OF_ORDERS = EventTypes(WorkOrder.Event)
_OF_COMPLAINTS = EventTypes(Complaint.Event)


class _OrderEvent(NamedTuple):
    """What the handler asks of a work order event, by its type: the tests
    above and the `isinstance`s, answered once per type instead of about
    eight calls per event."""

    booked: bool
    assigned: bool
    #: Ends time on site (`_ON_SITE_UNTIL`); `held`: by a hold.
    until: bool
    held: bool
    #: Begins it (`_ON_SITE_FROM`); `resumed`: begins it again if held on site.
    since: bool
    resumed: bool
    completing: bool
    arrived: bool
    #: The fact it counts as (`ORDER_FACTS`, by its exact type), if any.
    fact: str | None

    @classmethod
    def of(cls, kind: type[Any]) -> _OrderEvent:
        found = _ORDER_EVENTS.get(kind)
        if found is None:
            found = _ORDER_EVENTS[kind] = cls(
                booked=issubclass(kind, WorkOrder.Booked),
                assigned=issubclass(kind, WorkOrder.Assigned),
                until=_ON_SITE_UNTIL.of_type(kind),
                held=issubclass(kind, WorkOrder.PutOnHold),
                since=_ON_SITE_FROM.of_type(kind),
                resumed=issubclass(kind, WorkOrder.Resumed),
                completing=_COMPLETING.of_type(kind),
                arrived=_ARRIVED.of_type(kind),
                fact=ORDER_FACTS.get(kind),
            )
        return found


_ORDER_EVENTS: dict[type[Any], _OrderEvent] = {}


ORDER_COLUMNS = ("work_order_id", "service_type", "technician_id", "on_site_since", "held_on_site")
COMPLAINT_COLUMNS = ("complaint_id", "category", "severity")
FACT_COLUMNS = (
    "aggregate_id", "version", "day", "fact", "technician_id", "service_type", "category",
    "csat", "attitude", "skill", "punctuality", "promise", "praise", "comment",
)  # fmt: skip


@dataclass
class _Rows:
    """What one batch reads and writes (`ReportsView.begin_batch`)."""

    orders: TableRows
    complaints: TableRows
    #: A technician's day on an order (day, technician, order) → service type,
    #: completed (the greatest), late arrivals and seconds on site (summed):
    #: upserted once per batch, adding to the stored row as each event did.
    days: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)
    #: One row per counted event (FACT_COLUMNS), new: appended.
    facts: list[list[Any]] = field(default_factory=list)

    def tech_day(
        self, day: str, technician_id: str, order_id: str, service_type: str,
        *, completed: int, late: int, seconds: int,
    ) -> None:  # fmt: skip
        found = self.days.get((day, technician_id, order_id))
        if found is None:
            self.days[(day, technician_id, order_id)] = [service_type, completed, late, seconds]
            return
        found[1] = max(found[1], completed)
        found[2] += late
        found[3] += seconds


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
    #: The local day `_day` found last: its first instant, the next day's, its text.
    _known_day: tuple[datetime, datetime, str] | None = None
    tables: ClassVar[tuple[str, ...]] = (
        "report_orders",
        "report_complaints",
        "report_tech_days",
        "report_facts",
    )

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
    #
    # A unit of work per batch (`unit_of_work.py`): the orders and complaints
    # the batch's events touch are loaded with one query each at its start and
    # changed in memory; a technician's day is summed in memory and upserted
    # once per batch; facts (one per event, keyed by it) are appended, with
    # `COPY` into a fresh generation. Statements per batch: a handful, not one
    # or two per event.

    def begin_batch(self, batch: Batch) -> None:
        tx, t = batch.tx, batch.t
        state = batch.state = _Rows(
            orders=TableRows(tx, t.report_orders, "work_order_id", ORDER_COLUMNS, batch),
            complaints=TableRows(tx, t.report_complaints, "complaint_id", COMPLAINT_COLUMNS, batch),
        )
        ids, events = batch.ids, batch.events
        # Tested once per type of event, not per event (a few dozen types).
        kinds = {type(e) for _, e in events}
        of_orders = {kind for kind in kinds if _OF_ORDERS.of_type(kind)}
        of_complaints = {
            kind for kind in kinds if _OF_COMPLAINTS.of_type(kind) and kind in COMPLAINT_FACTS
        }
        state.orders.prefetch(ids[p] for p, e in events if type(e) in of_orders)
        state.complaints.prefetch(ids[p] for p, e in events if type(e) in of_complaints)

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        if _OF_ORDERS(event):
            self._work_order_event(batch.state, event, batch.ids[position])
        elif _OF_COMPLAINTS(event):
            self._complaint_event(batch.state, event, batch.ids[position])

    def end_batch(self, batch: Batch) -> None:
        state: _Rows = batch.state
        state.orders.flush()
        state.complaints.flush()
        if state.days:
            insert_rows(  # one statement on PostgreSQL: the days' keys are unique
                batch.tx, batch.t.report_tech_days,
                ("day", "technician_id", "work_order_id", "service_type", "completed",
                 "late_arrivals", "on_site_seconds"),
                [[*key, *values] for key, values in state.days.items()],
                "ON CONFLICT (day, technician_id, work_order_id) DO UPDATE SET "
                "completed = CASE WHEN excluded.completed > d.completed "
                "THEN excluded.completed ELSE d.completed END, "
                "late_arrivals = d.late_arrivals + excluded.late_arrivals, "
                "on_site_seconds = d.on_site_seconds + excluded.on_site_seconds",
                alias="d",
            )  # fmt: skip
        batch.append(batch.t.report_facts, FACT_COLUMNS, state.facts)

    def _day(self, instant: datetime) -> str:
        """`local_date(instant, timezone).isoformat()`. The local day last
        found is kept with the instants it spans (local midnight to the next,
        as `local_midnight` gives them), when it is 24 hours long (no change
        of the zone's offset in it: every instant between has that date): a
        round's events mostly fall on one day, so most are placed in it by two
        comparisons instead of a conversion to local time."""
        known = self._known_day
        if known is not None and known[0] <= instant < known[1]:
            return known[2]
        timezone = self.settings.timezone
        day = local_date(instant, timezone)
        text = day.isoformat()
        start, end = local_midnight(day, timezone), local_midnight(day + _ONE_DAY, timezone)
        if end - start == _ONE_DAY:
            self._known_day = (start, end, text)
        return text

    def _work_order_event(self, rows: _Rows, e: Any, order_id: str) -> None:
        kind = _OrderEvent.of(type(e))
        if kind.booked:
            rows.orders.insert(order_id, service_type=e.service_type, held_on_site=0)
        row = rows.orders.get(order_id)
        if row is None:  # pragma: no cover - every order is booked first
            return
        if kind.assigned:
            rows.orders.update(order_id, technician_id=e.technician_id)
        self._on_site(rows, e, kind, row, order_id)
        fact = kind.fact
        technician = e.role == "technician"
        if not technician and fact is None:
            return
        day = self._day(e.occurred_at)  # the event's local day, once for both uses
        if technician:
            late = kind.arrived and (e.minutes_late or 0) > 0
            rows.tech_day(
                day, e.actor, order_id, row["service_type"],
                completed=int(kind.completing), late=int(late), seconds=0,
            )  # fmt: skip
        if fact is not None:
            feedback = getattr(e, "feedback", None)
            # FACT_COLUMNS, in order.
            rows.facts.append(
                [order_id, e.originator_version, day, fact, row["technician_id"],
                 row["service_type"], None, None, None, None, None, None, None, None]
                if feedback is None else
                [order_id, e.originator_version, day, fact, row["technician_id"],
                 row["service_type"], None, feedback.csat, feedback.attitude, feedback.skill,
                 feedback.punctuality, feedback.promise, int(feedback.praise),
                 feedback.comment or None]
            )  # fmt: skip

    def _on_site(
        self, rows: _Rows, e: Any, kind: _OrderEvent, row: dict[str, Any], order_id: str
    ) -> None:
        """Open or close the technician's interval on site."""
        since = row["on_site_since"]
        if kind.until and since is not None:
            technician = row["technician_id"] or e.actor
            start = datetime.fromisoformat(since)
            for day, seconds in seconds_by_local_day(start, e.occurred_at, self.settings.timezone):
                rows.tech_day(
                    day.isoformat(), technician, order_id, row["service_type"],
                    completed=0, late=0, seconds=seconds,
                )  # fmt: skip
            rows.orders.update(order_id, on_site_since=None, held_on_site=int(kind.held))
        elif kind.since or (kind.resumed and row["held_on_site"]):
            rows.orders.update(order_id, on_site_since=utc_text(e.occurred_at), held_on_site=0)

    def _complaint_event(self, rows: _Rows, e: Any, complaint_id: str) -> None:
        if isinstance(e, Complaint.Lodged):
            rows.complaints.insert(complaint_id, category=e.category, severity=e.severity.value)
        fact = COMPLAINT_FACTS.get(type(e))
        if fact is None:
            return
        row = rows.complaints.get(complaint_id)
        category = None if row is None else row["category"]
        # FACT_COLUMNS, in order.
        rows.facts.append(
            [complaint_id, e.originator_version, self._day(e.occurred_at), fact, None, None,
             category, getattr(e, "csat", None), None, None, None, None, None, None]
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
