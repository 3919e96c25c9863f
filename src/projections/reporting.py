"""What the reports share: exact numbers, percentages 0-100 to two places, and
instants stored as UTC text.

Sums and counts are exact (integers, or decimals read back from NUMERIC
columns); only the final ratio is rounded, half up, to two decimals.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fieldledger.application.database import Tx
from fieldledger.application.ledger import utc_iso

_CENTS = Decimal("0.01")


def exact(value: Any) -> Decimal:
    """A NUMERIC column's value as an exact decimal (SQLite may hand back a float:
    its shortest repr is the decimal that was stored)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def numeric(tx: Tx, value: Decimal) -> Decimal | str:
    """A decimal as a parameter for a NUMERIC column: SQLite's driver takes no
    Decimal, but stores the text of a number as that number."""
    return str(value) if tx.dialect == "sqlite" else value


def number(value: Decimal) -> int | float:
    """A decimal as a JSON number: whole numbers stay integers."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def percentage(part: int, whole: int) -> float | None:
    """`part` of `whole` as a percentage 0-100 with up to two decimals; None of nothing."""
    if whole == 0:
        return None
    return float((Decimal(100) * part / whole).quantize(_CENTS, ROUND_HALF_UP))


def mean(total: Any, count: int) -> float | None:
    """The mean to two decimals; None of nothing."""
    if count == 0:
        return None
    return float((exact(total) / count).quantize(_CENTS, ROUND_HALF_UP))


def utc_text(instant: datetime) -> str:
    """An instant as read-model tables keep it: UTC ISO text, which sorts in time."""
    return utc_iso(instant)


def between(column: str, start: datetime | None, end: datetime | None) -> tuple[str, list[str]]:
    """` AND column >= ? AND column < ?` for the bounds given: a half-open range."""
    where, params = "", []
    if start is not None:
        where += f" AND {column} >= ?"
        params.append(utc_text(start))
    if end is not None:
        where += f" AND {column} < ?"
        params.append(utc_text(end))
    return where, params


def index_name(table: str, suffix: str) -> str:
    """An index's name next to its table's (unqualified: PostgreSQL keeps an index
    in its table's schema)."""
    bare = table.rsplit(".", 1)[-1].strip('"')
    return f'"{bare}_{suffix}"'


def null_last(key: str | None) -> tuple[bool, str]:
    """Sort key for group keys: by name, the null group last."""
    return (key is None, key or "")
