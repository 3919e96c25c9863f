"""Delivery of the notification outbox to `FIELDLEDGER_WEBHOOK_URL`, at least once.

Each notification is POSTed as JSON (the body `GET /notifications` lists, with
headers `X-Fieldledger-Notification-Id` and `Idempotency-Key` carrying its id,
so a receiver can drop repeats) until the receiver answers 2xx. A failed attempt
(an answer other than 2xx, a refused connection, no answer within the timeout)
is retried after a backoff that doubles from `first_backoff` up to
`max_backoff`. Attempts, the next attempt's time and delivery are stored in
`notification_deliveries` beside the events, so a restart resumes where the last
process stopped: a notification whose 2xx was received but not yet stored when
the process died is sent again (at least once, never lost).

Delivery runs in a thread of its own (`BackgroundDelivery`), beside commands:
it holds no transaction while waiting for the receiver, and every attempt is
bounded by `timeout`, so a slow or silent receiver delays only the
notifications behind it, never a command.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from fieldledger.application.database import Database, Tx
from fieldledger.projections.notifications import DELIVERIES, NAME, create_delivery_table
from fieldledger.projections.projector import Projections
from fieldledger.projections.reporting import utc_text

log = logging.getLogger("fieldledger.notifications")

#: Where the delivery keeps how far every notification is delivered.
WATERMARK = "notification_watermark"


@dataclass(frozen=True)
class Attempt:
    notification_id: int
    delivered: bool
    error: str | None


@dataclass
class DeliveryReport:
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def delivered(self) -> list[int]:
        return [a.notification_id for a in self.attempts if a.delivered]

    @property
    def failed(self) -> list[int]:
        return [a.notification_id for a in self.attempts if not a.delivered]


class WebhookDelivery:
    """One pass at a time: every notification due an attempt, in id order."""

    def __init__(
        self,
        projections: Projections,
        url: str,
        *,
        clock: Callable[[], datetime] | None = None,
        timeout: float = 5.0,
        first_backoff: timedelta = timedelta(seconds=5),
        max_backoff: timedelta = timedelta(minutes=30),
        batch_size: int = 100,
    ) -> None:
        self.projections = projections
        self.url = url
        self.clock = clock or projections.ledger.clock
        self.timeout = timeout
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.batch_size = batch_size
        self.db = Database(projections.ledger.recorder)
        with self.db.transaction() as tx:
            create_delivery_table(tx)
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {tx.table(WATERMARK)} ("
                "name TEXT PRIMARY KEY, delivered_through INTEGER NOT NULL)"
            )
        self._client = httpx.Client(timeout=httpx.Timeout(timeout))

    def close(self) -> None:
        self._client.close()

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failure: doubling, capped."""
        wait: timedelta = self.first_backoff * (2 ** max(attempts - 1, 0))
        return min(wait, self.max_backoff)

    def deliver_due(self) -> DeliveryReport:
        """Try every notification due now (never attempted, or its backoff over)."""
        self.projections.catch_up(NAME)
        now = self.clock()
        report = DeliveryReport()
        for notification_id, attempts, body in self._due(now):
            error = self._post(notification_id, body)
            self._record(notification_id, attempts + 1, error, now)
            report.attempts.append(Attempt(notification_id, error is None, error))
        self._advance_watermark()
        return report

    def _due(self, now: datetime) -> list[tuple[int, int, str]]:
        with self.projections.reading(NAME) as (tx, t):
            through = self._watermark(tx)
            rows = tx.query(
                f"SELECT n.id, n.payload, d.attempts FROM {t.notifications} n "
                f"LEFT JOIN {tx.table(DELIVERIES)} d ON d.notification_id = n.id "
                "WHERE n.id > ? AND d.delivered_at IS NULL "
                "AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?) "
                "ORDER BY n.id LIMIT ?",
                (through, utc_text(now), self.batch_size),
            )
        return [(int(r["id"]), int(r["attempts"] or 0), str(r["payload"])) for r in rows]

    def _post(self, notification_id: int, body: str) -> str | None:
        """None when the receiver acknowledged with a 2xx, else what went wrong."""
        try:
            answer = self._client.post(
                self.url,
                content=body.encode(),
                headers={
                    "Content-Type": "application/json",
                    "X-Fieldledger-Notification-Id": str(notification_id),
                    "Idempotency-Key": f"notification-{notification_id}",
                },
            )
        except httpx.HTTPError as e:
            return f"{type(e).__name__}: {e}"[:500]
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}"

    def _record(
        self, notification_id: int, attempts: int, error: str | None, now: datetime
    ) -> None:
        delivered = utc_text(self.clock()) if error is None else None
        next_attempt = None if error is None else utc_text(now + self.backoff(attempts))
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO {tx.table(DELIVERIES)} VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (notification_id) DO UPDATE SET attempts = excluded.attempts, "
                "next_attempt_at = excluded.next_attempt_at, "
                "delivered_at = excluded.delivered_at, last_error = excluded.last_error",
                (notification_id, attempts, next_attempt, delivered, error),
            )

    def _watermark(self, tx: Tx) -> int:
        found = tx.scalar(
            f"SELECT delivered_through FROM {tx.table(WATERMARK)} WHERE name = ?", (self.url,)
        )
        return int(found or 0)

    def _advance_watermark(self) -> None:
        """Remember the id below which everything is delivered: later passes read
        only what lies above it."""
        with self.projections.reading(NAME) as (tx, t):
            through = self._watermark(tx)
            pending = tx.scalar(
                f"SELECT MIN(n.id) FROM {t.notifications} n "
                f"LEFT JOIN {tx.table(DELIVERIES)} d ON d.notification_id = n.id "
                "WHERE n.id > ? AND d.delivered_at IS NULL",
                (through,),
            )
            last = tx.scalar(f"SELECT MAX(id) FROM {t.notifications} WHERE id > ?", (through,))
        if last is None:
            return
        new = int(last) if pending is None else int(pending) - 1
        if new <= through:
            return
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO {tx.table(WATERMARK)} VALUES (?, ?) ON CONFLICT (name) "
                "DO UPDATE SET delivered_through = excluded.delivered_through",
                (self.url, new),
            )

    def delivery_state(self, notification_id: int) -> dict[str, object] | None:
        with self.db.transaction(commit=False) as tx:
            rows = tx.query(
                f"SELECT * FROM {tx.table(DELIVERIES)} WHERE notification_id = ?",
                (notification_id,),
            )
        return rows[0] if rows else None


class BackgroundDelivery:
    """Runs `WebhookDelivery.deliver_due` every `interval` seconds in a thread."""

    def __init__(self, delivery: WebhookDelivery, interval: float) -> None:
        self.delivery = delivery
        self.interval = interval
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.delivery.timeout + 30)
        self.delivery.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                report = self.delivery.deliver_due()
            except Exception as e:  # a database hiccup: the next round tries again
                self.last_error = f"{type(e).__name__}: {e}"
                log.warning("notification delivery failed: %s", self.last_error)
                continue
            self.last_error = None
            for attempt in report.attempts:
                if not attempt.delivered:
                    log.info("notification %d not delivered: %s", attempt.notification_id,
                             attempt.error)  # fmt: skip
