"""The notification outbox (contract §11.6): who must hear of what, delivered at
least once.

A read model of the events that call for someone's attention: reminders of
targets turned yellow (004 二(二): 主動提醒處理人), coordinators appointed by red
escalations (立即派專人協調), escalations, and maintenance contracts' renewal
notices (003 第十五條: to the person who signed the contract). Which events
notify, of what kind and whom, is the one list `OUTBOX`: a new kind of notice is one line there.

Each notification has a stable id (`position * 16 + n`, n its place among the
notifications of the event at that store position), so a rebuild of the view
gives the same ids and the delivery state (`notification_delivery.py`), kept
outside the view's generations, still applies. Recipients are staff ids; a
notification with no recipient (an escalation of an order nobody holds yet)
still goes to the webhook.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from fieldledger.application.database import Tx
from fieldledger.application.ledger import history_entry, plain
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.maintenance_contracts import MaintenanceContract
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.read_model import Batch, ReadModel, Tables
from fieldledger.projections.reporting import index_name, utc_text
from fieldledger.projections.unit_of_work import TableRows

NAME = "notifications"
#: Notifications per event at most (ids are position * PER_EVENT + n).
PER_EVENT = 16

Recipients = Callable[[Any, "str | None"], list["str | None"]]


def _handler(event: Any, handler: str | None) -> list[str | None]:
    """The person handling the record: its technician or owner, else its accountable."""
    return [handler]


def _reminded(event: Any, handler: str | None) -> list[str | None]:
    return [event.owner_id]


def _coordinator(event: Any, handler: str | None) -> list[str | None]:
    return [] if event.coordinator_id is None else [event.coordinator_id]


@dataclass(frozen=True)
class Notifies:
    """An event that notifies: the kind of notice and whom it is for."""

    event: type[Any]
    kind: str
    recipients: Recipients = _handler


#: Every event that notifies someone, in the order its notices get ids.
OUTBOX: tuple[Notifies, ...] = (
    Notifies(WorkOrder.ReminderIssued, "reminder", _reminded),
    Notifies(Complaint.ReminderIssued, "reminder", _reminded),
    Notifies(WorkOrder.Escalated, "coordinator_appointed", _coordinator),
    Notifies(Complaint.Escalated, "coordinator_appointed", _coordinator),
    Notifies(WorkOrder.Escalated, "escalation"),
    Notifies(Complaint.Escalated, "escalation"),
    # 003 第十五條: the service centre sends the notice and seeks the renewal;
    # the person who signed the contract hears of it.
    Notifies(MaintenanceContract.RenewalNoticeDue, "renewal_notice"),
)

NOTIFICATION_COLUMNS = (
    "id", "position", "kind", "recipient_id", "aggregate_id", "event_type", "occurred_at",
    "payload",
)  # fmt: skip

HANDLER_COLUMNS = ("aggregate_id", "owner_id", "accountable_id")

#: Events that change who handles a record (for `_handler`).
_HANDLING = (
    WorkOrder.Booked, WorkOrder.Assigned, WorkOrder.HandedOver,
    Complaint.Lodged, Complaint.Assigned, Complaint.HandedOver, MaintenanceContract.Signed,
)  # fmt: skip


class NotificationOutbox(ReadModel):
    name = NAME
    schema_version = 1
    tables: ClassVar[tuple[str, ...]] = ("notifications", "notification_handlers")

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._by_event: dict[type[Any], list[Notifies]] = {}
        for entry in OUTBOX:
            self._by_event.setdefault(entry.event, []).append(entry)

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.notifications} ("
            "id INTEGER PRIMARY KEY, position INTEGER NOT NULL, kind TEXT NOT NULL, "
            "recipient_id TEXT, aggregate_id TEXT NOT NULL, event_type TEXT NOT NULL, "
            "occurred_at TEXT NOT NULL, payload TEXT NOT NULL)"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.notifications, 'recipient')} "
            f"ON {t.notifications} (recipient_id, id)"
        )
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.notification_handlers} ("
            "aggregate_id TEXT PRIMARY KEY, owner_id TEXT, accountable_id TEXT)"
        )
        create_delivery_table(tx)

    def begin_batch(self, batch: Batch) -> None:
        """Who handles each record the batch's events touch: loaded with one
        query, changed in memory, upserted once in `end_batch` (a query per
        notifying event waited, mid-batch, for every statement sent before it)."""
        handlers = batch.state = TableRows(
            batch.tx, batch.t.notification_handlers, "aggregate_id", HANDLER_COLUMNS, batch
        )
        ids = batch.ids
        handlers.prefetch(
            ids[p] for p, e in batch.events if isinstance(e, _HANDLING) or type(e) in self._by_event
        )

    def end_batch(self, batch: Batch) -> None:
        batch.state.flush()

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        t = batch.t
        if isinstance(event, _HANDLING):
            self._handling(batch.state, event, batch.ids[position])
        entries = self._by_event.get(type(event))
        if not entries:
            return
        key = batch.ids[position]
        handler = self._handler_of(batch.state, key)
        entry = history_entry(event)
        n = 0
        rows: list[tuple[Any, ...]] = []
        for notifies in entries:
            for recipient in notifies.recipients(event, handler):
                notification_id = position * PER_EVENT + n
                n += 1
                payload = {
                    "id": notification_id,
                    "kind": notifies.kind,
                    "recipient_id": recipient,
                    "aggregate_id": key,
                    "event_type": entry.type,
                    "version": entry.version,
                    "occurred_at": plain(entry.occurred_at),
                    "data": entry.data,
                }
                rows.append((
                    notification_id, position, notifies.kind, recipient,
                    key, entry.type, utc_text(entry.occurred_at),
                    json.dumps(payload, sort_keys=True),
                ))  # fmt: skip
        batch.append(t.notifications, NOTIFICATION_COLUMNS, rows)  # keyed by position

    def _handling(self, handlers: TableRows, event: Any, key: str) -> None:
        if isinstance(event, WorkOrder.Booked | Complaint.Lodged | MaintenanceContract.Signed):
            # Who took the call; for a contract, who signed it.
            first = (
                event.actor
                if isinstance(event, MaintenanceContract.Signed)
                else event.first_responder_id
            )
            handlers.insert(key, accountable_id=first)
        elif isinstance(event, WorkOrder.HandedOver | Complaint.HandedOver):
            handlers.update(key, accountable_id=event.to_staff_id)
        else:
            owner = event.technician_id if isinstance(event, WorkOrder.Assigned) else event.owner_id
            handlers.update(key, owner_id=owner)

    def _handler_of(self, handlers: TableRows, aggregate_id: str) -> str | None:
        row = handlers.get(aggregate_id)
        if row is None:
            return None
        return row["owner_id"] or row["accountable_id"]  # type: ignore[no-any-return]

    # -- queries ---------------------------------------------------------------

    def for_staff(
        self, tx: Tx, t: Tables, staff_id: str, after: int, limit: int
    ) -> list[dict[str, Any]]:
        """The staff member's notifications after the cursor `after`, oldest first,
        with when each was delivered to the webhook (null: not yet, or no webhook)."""
        deliveries = tx.table(DELIVERIES)
        rows = tx.query(
            f"SELECT n.payload, d.delivered_at FROM {t.notifications} n "
            f"LEFT JOIN {deliveries} d ON d.notification_id = n.id "
            "WHERE n.recipient_id = ? AND n.id > ? ORDER BY n.id LIMIT ?",
            (staff_id, after, limit),
        )
        return [{**json.loads(r["payload"]), "delivered_at": r["delivered_at"]} for r in rows]


#: The delivery state, kept outside the view's generations (a rebuild keeps it).
DELIVERIES = "notification_deliveries"


def create_delivery_table(tx: Tx) -> None:
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {tx.table(DELIVERIES)} ("
        "notification_id INTEGER PRIMARY KEY, attempts INTEGER NOT NULL, "
        "next_attempt_at TEXT, delivered_at TEXT, last_error TEXT)"
    )
