"""The audit trail: every event of every aggregate, searchable (contract §7 `/audit`).

One row per event, keyed by its store position (the order events were
recorded, which never changes and only grows: the key of stable pagination),
with the columns the search filters on indexed, and the event's hash from the
tamper-evident chain. Whether an event was reported late is decided at query
time from `delay_seconds` (recorded_at - occurred_at), so a changed threshold
needs no rebuild. docs/audit.md gives the decisions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from fieldledger.application.database import Tx
from fieldledger.application.hash_chain import HASHES_TABLE
from fieldledger.application.ledger import history_data, utc_iso
from fieldledger.application.transcoder import sorted_json
from fieldledger.domain.adopted_policies import AdoptedPolicy
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.customers import CustomerRecord
from fieldledger.domain.facts import LedgerAggregate
from fieldledger.domain.maintenance_contracts import MaintenanceContract
from fieldledger.domain.staff import StaffMember
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.read_model import Batch, ReadModel, Tables
from fieldledger.projections.unit_of_work import Pending

#: The `kind` of an event: which aggregate it belongs to.
KINDS: dict[type[Any], str] = {
    WorkOrder.Event: "work_order",
    Complaint.Event: "complaint",
    StaffMember.Event: "staff",
    AdoptedPolicy.Event: "policy",
    CustomerRecord.Event: "customer",
    MaintenanceContract.Event: "maintenance_contract",
}


def kind_of(event: Any) -> str:
    """The kind of an event, by its type (worked out once per type)."""
    found = _KIND_OF_TYPE.get(type(event))
    if found is None:
        found = _KIND_OF_TYPE[type(event)] = _kind_of_type(type(event))
    return found


_KIND_OF_TYPE: dict[type[Any], str] = {}


def _kind_of_type(event_type: type[Any]) -> str:
    for base, kind in KINDS.items():
        if issubclass(event_type, base):
            return kind
    # An aggregate added later (e.g. a policy record): its class in snake_case.
    outer = event_type.__qualname__.split(".")[0]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", outer).lower()


def known_event_types() -> frozenset[str]:
    """The type names events can have (for validating the `type` filter)."""
    names: set[str] = set()
    pending: list[type[Any]] = [LedgerAggregate.Event]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            pending.append(sub)
            # Not the bases, nor the `Created` class the library adds to every
            # aggregate (ours are created by Booked, Lodged, Registered).
            if sub.__name__ not in ("Event", "Created"):
                names.add(sub.__name__)
    return frozenset(names)


@dataclass(frozen=True)
class AuditFilter:
    """What a search asks for; every field left None matches everything."""

    actor: str | None = None
    role: str | None = None
    types: tuple[str, ...] = ()
    aggregate_id: str | None = None
    kind: str | None = None
    #: On occurred_at (when it happened in the field): from inclusive, to exclusive.
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    late: bool | None = None


@dataclass(frozen=True)
class AuditRecord:
    position: int
    aggregate_id: str
    kind: str
    type: str
    version: int
    actor: str
    role: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]
    hash: str | None
    late: bool


#: `json.dumps(data, sort_keys=True, ensure_ascii=False)`, its encoder made once.
_DATA_JSON = sorted_json(ensure_ascii=False)

COLUMNS = (
    "position", "aggregate_id", "kind", "type", "version", "actor", "role", "occurred_at",
    "recorded_at", "delay_seconds", "data", "hash",
)  # fmt: skip


@dataclass
class _Pending:
    """One batch of the audit trail: the events' hashes (their query, read at
    `end_batch`) and the rows, inserted together in `end_batch`."""

    hashes: Pending | None
    rows: list[list[Any]] = field(default_factory=list)


class AuditTrail(ReadModel):
    name = "audit"
    tables: ClassVar[tuple[str, ...]] = ("audit_events",)

    #: Columns searched by equality, each indexed together with the position.
    INDEXED: ClassVar[tuple[str, ...]] = ("actor", "role", "type", "aggregate_id", "kind")

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.audit_events} ("
            "position BIGINT PRIMARY KEY, aggregate_id TEXT NOT NULL, kind TEXT NOT NULL, "
            "type TEXT NOT NULL, version INTEGER NOT NULL, actor TEXT NOT NULL, "
            "role TEXT NOT NULL, occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, "
            "delay_seconds DOUBLE PRECISION NOT NULL, data TEXT NOT NULL, hash TEXT)"
        )
        prefix = f"audit_events_g{t.generation}"
        for column in self.INDEXED:
            tx.execute(
                f"CREATE INDEX IF NOT EXISTS {prefix}_by_{column} "
                f"ON {t.audit_events} ({column}, position)"
            )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {prefix}_by_time "
            f"ON {t.audit_events} (occurred_at, position)"
        )

    # -- projecting ------------------------------------------------------------

    def begin_batch(self, batch: Batch) -> None:
        """The hashes were committed with the events: one query for the batch,
        sent with the batch's other reads (`Pending`: in a pipeline, answered
        with them in one round trip; sent in `end_batch` it would wait for
        every write sent before it), read at `end_batch`."""
        tx, events = batch.tx, batch.events
        hashes = None
        if events:
            hashes = Pending(
                tx,
                f"SELECT position, event_hash FROM {tx.table(HASHES_TABLE)} "
                "WHERE position >= ? AND position <= ?",
                (events[0][0], events[-1][0]),
            )
        batch.state = _Pending(hashes)

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        # `history_entry`'s fields, without building one per event.
        occurred_at, recorded_at = event.occurred_at, event.timestamp
        pending: _Pending = batch.state
        pending.rows.append([
            position, batch.ids[position], kind_of(event), type(event).__name__,
            event.originator_version, event.actor, event.role, utc_iso(occurred_at),
            utc_iso(recorded_at), (recorded_at - occurred_at).total_seconds(),
            _DATA_JSON(history_data(event)), None,  # the hash: `end_batch`
        ])  # fmt: skip

    def end_batch(self, batch: Batch) -> None:
        pending: _Pending = batch.state
        if pending.hashes is not None and pending.rows:
            hashes = {int(r["position"]): r["event_hash"] for r in pending.hashes.rows()}
            for row in pending.rows:
                row[-1] = hashes.get(row[0])
        batch.append(batch.t.audit_events, COLUMNS, pending.rows)

    # -- querying --------------------------------------------------------------

    @staticmethod
    def search(
        tx: Tx,
        t: Tables,
        query: AuditFilter,
        *,
        before: int | None,
        limit: int,
        late_after: timedelta,
    ) -> list[AuditRecord]:
        """Newest first (by store position), `limit` events before position `before`."""
        where: list[str] = []
        params: list[Any] = []
        for column in ("actor", "role", "aggregate_id", "kind"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.types:
            where.append(f"type IN ({', '.join('?' for _ in query.types)})")
            params.extend(query.types)
        if query.occurred_from is not None:
            where.append("occurred_at >= ?")
            params.append(utc_iso(query.occurred_from))
        if query.occurred_to is not None:
            where.append("occurred_at < ?")
            params.append(utc_iso(query.occurred_to))
        threshold = late_after.total_seconds()
        if query.late is not None:
            where.append("delay_seconds > ?" if query.late else "delay_seconds <= ?")
            params.append(threshold)
        if before is not None:
            where.append("position < ?")
            params.append(before)
        sql = f"SELECT * FROM {t.audit_events}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY position DESC LIMIT ?"
        params.append(limit)
        if query.occurred_from is not None and query.occurred_to is not None:
            # A time window is a range of the (occurred_at, position) index, not
            # in position order: pick the page's positions from the window's
            # index range (a top-N of integers), then read only those rows;
            # sorting the window's whole rows grew with the window's size. The
            # window's matches are gathered first (`OFFSET 0` keeps PostgreSQL
            # from merging the subquery): otherwise the planner, taking the
            # window for spread evenly over the positions, walked the primary
            # key backwards from the newest event to the window, filtering
            # every event recorded since (29k rows for a day 4 months back at
            # 100k events, 10x the buffers). Its cost now grows with the
            # window's events, not with the events after it.
            matches = f"SELECT position FROM {t.audit_events} WHERE " + " AND ".join(where)
            if tx.dialect == "postgres":
                matches += " OFFSET 0"  # SQLite has no OFFSET without LIMIT
            sql = (f"SELECT * FROM {t.audit_events} WHERE position IN ("
                   f"SELECT position FROM ({matches}) AS w "
                   "ORDER BY position DESC LIMIT ?) ORDER BY position DESC")  # fmt: skip
        elif query.occurred_from is not None or query.occurred_to is not None:
            # One bound: the planner's choice (from a date on, the newest events
            # by the primary key are usually the page already).
            sql = (f"SELECT * FROM {t.audit_events} WHERE position IN ("
                   f"{sql.replace('SELECT *', 'SELECT position', 1)}) "
                   "ORDER BY position DESC")  # fmt: skip
        return [
            AuditRecord(
                position=int(r["position"]),
                aggregate_id=r["aggregate_id"],
                kind=r["kind"],
                type=r["type"],
                version=int(r["version"]),
                actor=r["actor"],
                role=r["role"],
                occurred_at=datetime.fromisoformat(r["occurred_at"]),
                recorded_at=datetime.fromisoformat(r["recorded_at"]),
                data=json.loads(r["data"]),
                hash=r["hash"],
                late=float(r["delay_seconds"]) > threshold,
            )
            for r in tx.query(sql, params)
        ]
