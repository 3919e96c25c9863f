"""Customer files: which records name which customer (by pseudonymous id only).

One row per (customer, record): every event carrying a sealed contact (a work
order's `Booked`, a complaint's `Lodged`, any later aggregate whose events name
a customer) files its aggregate under the customer id the contact was sealed
for. No personal data is kept here - only the pseudonym - so this view needs no
redaction on erasure. `GET /customers/{id}/data` reads it to find everything
held about a person (docs/privacy.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

from fieldledger.application.database import Tx
from fieldledger.domain.customers import SealedPersonalData
from fieldledger.projections.audit import kind_of
from fieldledger.projections.read_model import Batch, ReadModel, Tables
from fieldledger.projections.reporting import index_name
from fieldledger.projections.unit_of_work import insert_rows


class CustomerFiles(ReadModel):
    name = "customer_files"
    schema_version = 1
    tables: ClassVar[tuple[str, ...]] = ("customer_files",)

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.customer_files} ("
            "customer_id TEXT NOT NULL, aggregate_id TEXT NOT NULL, kind TEXT NOT NULL, "
            "first_position BIGINT NOT NULL, PRIMARY KEY (customer_id, aggregate_id))"
        )
        tx.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(t.customer_files, 'record')} "
            f"ON {t.customer_files} (aggregate_id)"
        )

    def begin_batch(self, batch: Batch) -> None:
        # (customer, record) → the row, first event first: one statement per batch.
        batch.state = {}

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        rows: dict[tuple[str, str], tuple[Any, ...]] = batch.state
        for value in vars(event).values():
            if isinstance(value, SealedPersonalData):
                key = (value.customer_id, batch.ids[position])
                if key not in rows:
                    rows[key] = (*key, kind_of(event), position)

    def end_batch(self, batch: Batch) -> None:
        rows: dict[tuple[str, str], tuple[Any, ...]] = batch.state
        if rows:
            insert_rows(
                batch.tx, batch.t.customer_files,
                ("customer_id", "aggregate_id", "kind", "first_position"), list(rows.values()),
                "ON CONFLICT (customer_id, aggregate_id) DO NOTHING",
            )  # fmt: skip

    @staticmethod
    def records_of(tx: Tx, t: Tables, customer_id: str) -> list[dict[str, Any]]:
        """The customer's records, oldest first: `aggregate_id`, `kind`."""
        return tx.query(
            f"SELECT aggregate_id, kind FROM {t.customer_files} WHERE customer_id = ? "
            "ORDER BY first_position",
            (customer_id,),
        )
