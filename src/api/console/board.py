"""The SLA board: filters, the time control, and live updates by server-sent events."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fieldledger.api.console.context import (
    STATUS_LABELS,
    STREAM_SECONDS,
    SessionDep,
    View,
    allow,
    router,
    sessions_of,
    sse,
)
from fieldledger.api.console.sessions import (
    COOKIE,
    Session,
)
from fieldledger.api.reading import reading
from fieldledger.application.settings import Settings
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Role
from fieldledger.domain.sla import OPEN_STATUSES
from fieldledger.domain.work_orders import Priority, Zone
from fieldledger.projections import sla
from fieldledger.projections.projector import Projections
from starlette.concurrency import run_in_threadpool


@dataclass(frozen=True)
class BoardQuery:
    at: datetime | None
    statuses: tuple[str, ...]
    kind: str | None
    zone: str | None
    priority: str | None
    technician: str | None

    def params(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.at is not None:
            out["at"] = self.at.isoformat()
        if self.statuses != tuple(OPEN_STATUSES):
            out["status"] = ",".join(self.statuses)
        for key in ("kind", "zone", "priority", "technician"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


def _parse_at(text: str | None, timezone: str) -> datetime | None:
    """The time control: a local date-time (the browser's datetime-local, read in the
    service's time zone) or an ISO instant with offset."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidCommand("at", f"{text!r} is not a date and time") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=ZoneInfo(timezone))
    return instant.astimezone(UTC)


def board_query(request: Request, session: Session, settings: Settings) -> BoardQuery:
    q = request.query_params
    chosen = {part for value in q.getlist("status") for part in value.split(",")}
    statuses = tuple(s for s in OPEN_STATUSES if s in chosen) or tuple(OPEN_STATUSES)
    kind = q.get("kind") if q.get("kind") in ("work_order", "complaint") else None
    zone = q.get("zone") if q.get("zone") in {z.value for z in Zone} else None
    priority = q.get("priority") if q.get("priority") in {p.value for p in Priority} else None
    technician = (q.get("technician") or "").strip()[:200] or None
    if session.caller.role is Role.TECHNICIAN:
        technician = session.caller.actor  # their own orders only
    return BoardQuery(_parse_at(q.get("at"), settings.timezone), statuses, kind, zone,
                      priority, technician)  # fmt: skip


def _board_items(
    projections: Projections, query: BoardQuery, now: datetime, min_position: int | None
) -> tuple[list[sla.BoardItem], int]:
    with reading(projections, sla.NAME, as_of=None, min_position=min_position) as (tx, t, _v):
        items = sla.board(
            tx, t, query.at or now, list(query.statuses), query.kind,  # type: ignore[arg-type]
            zone=query.zone, priority=query.priority, owner_id=query.technician,
        )  # fmt: skip
    generation = projections.live_generation(sla.NAME) or 1
    return items, projections.position(sla.NAME, generation)


@router.get("/board", response_class=HTMLResponse)
def board_page(request: Request, session: SessionDep) -> HTMLResponse:
    allow(session, "board")
    page = View(request, session)
    try:
        query = board_query(request, session, page.settings)
        items, position = _board_items(page.projections, query, page.ledger.clock(), None)
        error = None
    except InvalidCommand as e:
        query = BoardQuery(None, tuple(OPEN_STATUSES), None, None, None, None)
        items, position, error = [], 0, str(e)
    return page.render(
        "board.html", query=query, items=items[:MAX_ROWS], total=len(items), position=position,
        error=error, counts=_counts(items),
        zones=[z.value for z in Zone], priorities=[p.value for p in Priority],
        statuses=OPEN_STATUSES, status_labels=STATUS_LABELS,
        params=urlencode(query.params()),
        at_local=None if query.at is None else page.local(query.at).replace(" ", "T"),
    )  # fmt: skip


@router.get("/board/rows", response_class=HTMLResponse)
def board_rows(request: Request, session: SessionDep, min_position: int | None = None) -> Response:
    """The board's rows alone: what the page fetches when the stream says it changed."""
    allow(session, "board")
    page = View(request, session)
    query = board_query(request, session, page.settings)
    items, position = _board_items(page.projections, query, page.ledger.clock(), min_position)
    response = page.render("board_rows.html", items=items[:MAX_ROWS], total=len(items),
                           status_labels=STATUS_LABELS)  # fmt: skip
    response.headers["X-Counts"] = json.dumps(_counts(items))
    response.headers["X-Position"] = str(position)
    return response


def _counts(items: list[sla.BoardItem]) -> dict[str, int]:
    return {s: sum(1 for i in items if i.status == s) for s in OPEN_STATUSES}


def _next_colour_change(items: list[sla.BoardItem], now: datetime) -> datetime | None:
    moments = [
        m
        for i in items
        for m in (i.yellow_from, i.due_at)
        if m is not None and m > now
    ]
    return min(moments, default=None)


#: Rows drawn at most (red first, then by due time): a page stays quick to serve
#: and to read; the filters narrow the rest.
MAX_ROWS = 300
#: Seconds between reads of the SLA view's position, shared by every board stream
#: of a process (one small query whatever the number of open boards).
WATCH_INTERVAL = 0.1


class PositionWatch:
    """The SLA view's tracked position, read at most every `interval` seconds for
    all the board streams of this process together."""

    def __init__(self, projections: Projections, interval: float) -> None:
        self.projections = projections
        self.interval = interval
        self._lock = threading.Lock()
        self._value = 0
        self._read_at = 0.0

    def position(self) -> int:
        with self._lock:
            if time.monotonic() - self._read_at >= self.interval:
                generation = self.projections.live_generation(sla.NAME) or 1
                self._value = self.projections.position(sla.NAME, generation)
                self._read_at = time.monotonic()
            return self._value


def _watch(request: Request) -> PositionWatch:
    found: PositionWatch | None = getattr(request.app.state, "console_watch", None)
    if found is None:
        found = PositionWatch(request.app.state.projections, WATCH_INTERVAL)
        request.app.state.console_watch = found
    return found




@router.get("/board/stream")
async def board_stream(request: Request, session: SessionDep) -> StreamingResponse:
    """Server-sent events: `changed` with the SLA view's new position whenever it
    moves (a command landed) or a shown target changes colour; the page then
    fetches its rows once. Nothing is sent while nothing changes."""
    allow(session, "board")
    page = View(request, session)
    query = board_query(request, session, page.settings)
    watch = _watch(request)
    sessions = sessions_of(request)
    cookie = request.cookies.get(COOKIE)

    async def events() -> AsyncIterator[str]:
        started = time.monotonic()
        position = await run_in_threadpool(watch.position)
        items, _p = await run_in_threadpool(
            _board_items, page.projections, query, page.ledger.clock(), None
        )
        change = _next_colour_change(items, page.ledger.clock())
        yield "retry: 1000\n" + sse("ready", {"position": position})
        while time.monotonic() - started < STREAM_SECONDS:
            await asyncio.sleep(watch.interval)
            if await request.is_disconnected():
                return
            now = page.ledger.clock()
            latest = await run_in_threadpool(watch.position)
            turned = change is not None and now >= change
            if latest == position and not turned:
                continue
            still = await run_in_threadpool(sessions.find, cookie, datetime.now(UTC))
            if still is None:  # signed out or token revoked meanwhile
                yield sse("signed-out", {})
                return
            position = latest
            yield sse("changed", {"position": position})
            items, _p = await run_in_threadpool(_board_items, page.projections, query, now, None)
            change = _next_colour_change(items, now)

    return StreamingResponse(
        events(), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )  # fmt: skip
