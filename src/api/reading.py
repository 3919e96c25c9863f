"""How report queries read a read model: the live view, or the view as of an instant.

- Live: the live generation, optionally first brought up to `min_position` (the
  `X-Position` of a command: read your writes).
- `as_of=T`: the view as it was right after the last event recorded at or before
  T. The appraisal, satisfaction and SLA views keep when each row became true,
  so this is a query over their tables and histories (`projections.versions`);
  other views replay the events up to T into a scratch generation dropped after
  the answer. `min_position` is moot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import HTTPException, Query, Response
from fieldledger.application.database import Tx
from fieldledger.application.fields import Instant, Position
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.periods import local_midnight
from fieldledger.projections.projector import ProjectionFailed, Projections
from fieldledger.projections.read_model import Tables
from pydantic import BaseModel

AsOf = Annotated[
    Instant | None,
    Query(
        description="the answer as it was at this instant: as of the last event recorded "
        "at or before it"
    ),
]
MinPosition = Annotated[
    Position | None,
    Query(description="read your writes: first catch up to this X-Position"),
]


@contextmanager
def reading(
    projections: Projections,
    name: str,
    *,
    as_of: datetime | None,
    min_position: int | None,
    settings: Mapping[str, str] | None = None,
) -> Iterator[tuple[Tx, Tables, Any]]:
    """(transaction, tables, read model) of the view asked for; the live view's
    transaction opened with PostgreSQL `settings` (`SET LOCAL`, in the round
    trip that begins it; a query checks `Tx.settings` before setting its own)."""
    model = projections.models[name]
    try:
        if as_of is not None:
            with projections.as_of(name, projections.position_at(as_of)) as (tx, tables):
                yield tx, tables, model
            return
        if min_position is not None:
            projections.wait_for(name, min_position)
    except ProjectionFailed as e:
        raise HTTPException(503, f"the {name} view is stopped: {e}") from None
    with projections.reading(name, settings) as (tx, tables):
        yield tx, tables, model


def instant_or_day(text: str | None, field: str, timezone: str, *, end: bool) -> datetime | None:
    """A bound of a time range: an ISO instant with offset, or a date — a local
    day in `timezone`, from its start (`from`) or through its end (`to`)."""
    if text is None:
        return None
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return local_midnight(day + timedelta(days=1) if end else day, timezone)
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidCommand(
            field, f"{text!r} is neither a date (YYYY-MM-DD) nor an ISO 8601 instant"
        ) from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidCommand(field, "an instant must carry a time zone offset")
    return instant


def json_response(answer: BaseModel) -> Response:
    """`answer` as the JSON FastAPI would send for the route's `response_model`
    (by alias, compact, UTF-8), without validating it a second time: it was
    validated when it was built. FastAPI's own path validates the returned model
    again, turns it into plain data and then into JSON: for a page of 50 audit
    events 0.9 ms of CPU against 0.1 ms here, a quarter of the request's Python.

    Encoded once: pydantic's serializer writes the UTF-8 bytes the answer is
    sent as (`model_dump_json` decodes them into a str, which `Response`
    encodes back into the same bytes)."""
    body: bytes = answer.__pydantic_serializer__.to_json(answer, by_alias=True)
    return Response(body, media_type="application/json")
