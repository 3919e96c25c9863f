"""What sealing customers' personal data costs (docs/privacy.md), as ratios.

    .venv/bin/python bench/personal_data.py [--orders N] [--database-url URL]

Books N work orders (each a new customer: a data key made per booking, the
worst case) and loads each back, with the ledger as it is and with the same
ledger storing customers in clear (the baseline), alternately on fresh
databases of the same kind, in the same run. Prints throughputs and
sealed/clear ratios. Without --database-url it runs on SQLite files in a
temporary directory; give a PostgreSQL URL whose database may be written to
(each round uses a fresh schema).
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from eventsourcing.persistence import JSONTranscoder
from fieldledger.application.event_store import register_value_types
from fieldledger.application.ledger import VALUE_TYPES, Caller, FieldLedger
from fieldledger.application.personal_data import MasterKey
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, WorkOrder, Zone

DISPATCHER = Caller("disp-1", Role.DISPATCHER)


class ClearLedger(FieldLedger):
    """The baseline: customers stored in clear, as before sealing."""

    name = "FieldLedger"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super(FieldLedger, self).register_transcodings(transcoder)
        register_value_types(transcoder, VALUE_TYPES)


def measure(ledger: FieldLedger, orders: int) -> tuple[float, float]:
    """(bookings/s, loads/s)."""
    ledger.adopt_policy()
    started = time.perf_counter()
    ids = [
        ledger.book_work_order(
            DISPATCHER, customer=Customer("张三", f"139{i:08d}", "北京市朝阳区 1 号"),
            service_type="repair", priority=Priority.ROUTINE, zone=Zone.URBAN,
            channel=Channel.PHONE, billing=Billing.PAID, description="漏水",
        ).id
        for i in range(orders)
    ]  # fmt: skip
    booked = time.perf_counter() - started
    started = time.perf_counter()
    for order in ids:
        ledger.personal_data.reveal(ledger.get(WorkOrder, order).customer)
    loaded = time.perf_counter() - started
    return orders / booked, orders / loaded


def fresh_url(base: str | None, workdir: Path, schemas: list[str]) -> str:
    if base is None:
        return f"sqlite:///{workdir / uuid.uuid4().hex}.db"
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_bare(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    schemas.append(schema)
    return f"{_bare(base)}?schema={schema}"


def _bare(url: str) -> str:
    return urlsplit(url)._replace(query="").geturl()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    key = MasterKey(secrets.token_bytes(32), "bench")
    results: dict[str, list[tuple[float, float]]] = {"clear": [], "sealed": []}
    makers: dict[str, Callable[[str], FieldLedger]] = {
        "clear": lambda url: ClearLedger(url, master_key=key),
        "sealed": lambda url: FieldLedger(url, master_key=key),
    }
    schemas: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _round in range(args.rounds):
                for kind, make in makers.items():  # alternate: drift hits both alike
                    ledger = make(fresh_url(args.database_url, Path(tmp), schemas))
                    try:
                        results[kind].append(measure(ledger, args.orders))
                    finally:
                        ledger.close()
    finally:
        if schemas and args.database_url is not None:
            with psycopg.connect(_bare(args.database_url), autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    best = {kind: (max(r[0] for r in rs), max(r[1] for r in rs)) for kind, rs in results.items()}
    where = "SQLite" if args.database_url is None else "PostgreSQL"
    print(f"{where}, {args.orders} orders x {args.rounds} rounds (best of each):")
    for i, what in enumerate(("bookings/s (a new customer each)", "loads+opens/s")):
        clear, sealed = best["clear"][i], best["sealed"][i]
        print(f"  {what:34} clear {clear:8.0f}  sealed {sealed:8.0f}  ratio {sealed / clear:.2f}")


if __name__ == "__main__":
    main()
