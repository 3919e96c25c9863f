"""The console's pages: each reads through the application and the read models'
query functions (never HTTP to itself) and renders a Jinja2 template."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from fieldledger.api.console import charts
from fieldledger.api.console.i18n import (
    COOKIE as LANG_COOKIE,
)
from fieldledger.api.console.i18n import (
    HTML_LANG,
    LANGUAGES,
    N_,
    gettext_for,
    language_of,
)
from fieldledger.api.console.sessions import (
    CONSOLE_ROLES,
    COOKIE,
    Session,
    SessionBook,
)
from fieldledger.api.reading import instant_or_day, reading
from fieldledger.api.routes import complaints as complaint_routes
from fieldledger.api.routes import work_orders as work_order_routes
from fieldledger.api.routes.views import complaint_view, work_order_view
from fieldledger.application.ledger import FieldLedger, NotFound, VersionMismatch
from fieldledger.application.settings import Settings
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.errors import DomainError, InvalidCommand
from fieldledger.domain.facts import Role
from fieldledger.domain.periods import add_months, month_of, parse_period
from fieldledger.domain.permissions import COMPLAINT_COMMANDS, WORK_ORDER_COMMANDS
from fieldledger.domain.sla import OPEN_STATUSES
from fieldledger.domain.work_orders import Priority, WorkOrder, Zone
from fieldledger.projections import sla
from fieldledger.projections.appraisal import StaffUnknown
from fieldledger.projections.audit import AuditFilter, AuditTrail, known_event_types
from fieldledger.projections.projector import ProjectionFailed, Projections
from markupsafe import Markup
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(prefix="/console", include_in_schema=False)

#: Which roles see which page (a technician: the board and records of their own
#: orders, and their own appraisal).
PAGES: dict[str, frozenset[Role]] = {
    "board": frozenset({Role.SUPERVISOR, Role.ANALYST, Role.DISPATCHER, Role.TECHNICIAN}),
    "records": frozenset({Role.SUPERVISOR, Role.ANALYST, Role.DISPATCHER, Role.TECHNICIAN}),
    "audit": frozenset({Role.SUPERVISOR, Role.ANALYST}),
    "appraisal": frozenset({Role.SUPERVISOR, Role.ANALYST, Role.TECHNICIAN}),
    "reports": frozenset({Role.SUPERVISOR, Role.ANALYST, Role.DISPATCHER}),
    "operations": frozenset({Role.ANALYST}),
}
NAV = (
    ("board", N_("SLA board")),
    ("audit", N_("Audit")),
    ("appraisal", N_("Appraisal")),
    ("reports", N_("Reports")),
    ("operations", N_("Operations")),
)
#: Commands the console offers on a record page (those whose body is simple fields).
WORK_ORDER_CONSOLE_COMMANDS = ("assign", "hold", "resume", "escalate", "cancel", "log-callback")
COMPLAINT_CONSOLE_COMMANDS = ("acknowledge", "assign", "update-progress", "escalate")
COMMAND_LABELS = {
    "assign": N_("Assign"),
    "hold": N_("Put on hold"),
    "resume": N_("Resume"),
    "escalate": N_("Escalate"),
    "cancel": N_("Cancel"),
    "log-callback": N_("Log a callback"),
    "acknowledge": N_("Acknowledge"),
    "update-progress": N_("Note progress"),
}
FIELD_LABELS = {
    "technician_id": N_("Technician"),
    "reason": N_("Reason"),
    "level": N_("Escalation level"),
    "outcome": N_("Outcome"),
    "note": N_("Note"),
    "department": N_("Department"),
    "owner_id": N_("Owner"),
    "summary": N_("Summary"),
    "progress": N_("Progress"),
}
STATUS_LABELS = {"red": N_("red"), "yellow": N_("yellow"), "blue": N_("blue")}
PAGE_SIZE = 50
#: An SSE stream ends after this long; the browser reconnects by itself.
STREAM_SECONDS = 300.0


class SignInRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class PageForbidden(Exception):
    pass


# -- request context -----------------------------------------------------------


def _now(request: Request) -> datetime:
    ledger: FieldLedger = request.app.state.ledger
    return ledger.clock()


def _sessions(request: Request) -> SessionBook:
    book: SessionBook | None = getattr(request.app.state, "console_sessions", None)
    if book is None:
        from fieldledger.application.database import Database

        book = SessionBook(Database(request.app.state.ledger.recorder), request.app.state.tokens)
        request.app.state.console_sessions = book
    return book


def current_session(request: Request) -> Session:
    found = _sessions(request).find(request.cookies.get(COOKIE), datetime.now(UTC))
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return found


SessionDep = Annotated[Session, Depends(current_session)]


def allow(session: Session, page: str) -> None:
    if session.caller.role not in PAGES[page]:
        raise PageForbidden(page)


@dataclass
class View:
    request: Request
    session: Session | None
    language: str = field(init=False)

    def __post_init__(self) -> None:
        self.language = language_of(self.request.cookies.get(LANG_COOKIE))

    @property
    def settings(self) -> Settings:
        settings: Settings = self.request.app.state.settings
        return settings

    @property
    def ledger(self) -> FieldLedger:
        ledger: FieldLedger = self.request.app.state.ledger
        return ledger

    @property
    def projections(self) -> Projections:
        projections: Projections = self.request.app.state.projections
        return projections

    def local(self, value: datetime | str | None) -> str:
        if value is None:
            return "—"
        instant = datetime.fromisoformat(value) if isinstance(value, str) else value
        zone = ZoneInfo(self.settings.timezone)
        return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        _ = gettext_for(self.language)
        role = None if self.session is None else self.session.caller.role
        nav = [(page, _(label)) for page, label in NAV if role is not None and role in PAGES[page]]
        here = self.request.url.path + (
            f"?{self.request.url.query}" if self.request.url.query else ""
        )
        return TEMPLATES.TemplateResponse(
            self.request,
            template,
            {
                "_": _,
                "lang": self.language,
                "html_lang": HTML_LANG[self.language],
                "session": self.session,
                "nav": nav,
                "here": here,
                "local": self.local,
                "timezone": self.settings.timezone,
                **context,
            },
            status_code=status,
        )


def view(request: Request) -> View:
    return View(request, None)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    try:
        session: Session | None = current_session(request)
    except SignInRequired:
        session = None
    return View(request, session).render("error.html", status=status, message=message)


def install_handlers(app: Any) -> None:
    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        if request.url.path.endswith(("/stream", "/rows")) or request.method != "GET":
            return Response(status_code=401)
        return RedirectResponse(
            "/console/sign-in?" + urlencode({"next": exc.next_url}), status_code=303
        )

    async def forbidden(request: Request, exc: Exception) -> Response:
        _ = gettext_for(language_of(request.cookies.get(LANG_COOKIE)))
        return error_page(request, 403, _("Your role may not see this page."))

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(PageForbidden, forbidden)


# -- sign-in, sign-out, language ------------------------------------------------------


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str | None = None) -> HTMLResponse:
    return View(request, None).render("sign_in.html", next=_safe_next(next), error=None)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=500)],
    next: Annotated[str, Form(max_length=2000)] = "/console",
) -> Response:
    page = View(request, None)
    _ = gettext_for(page.language)
    opened = _sessions(request).open(token, datetime.now(UTC))
    if opened is None:
        return page.render(
            "sign_in.html", status=401, next=_safe_next(next),
            error=_("That token is not valid (unknown, expired or revoked)."),
        )  # fmt: skip
    session_id, session = opened
    if session.caller.role not in CONSOLE_ROLES:
        _sessions(request).close(session_id)
        return page.render(
            "sign_in.html", status=403, next=_safe_next(next),
            error=_("The role %(role)s works through the API, not the console.",
                    role=session.caller.role.value),
        )  # fmt: skip
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE, session_id, httponly=True, samesite="strict", path="/console",
        secure=request.url.scheme == "https", max_age=int(
            (session.expires_at - datetime.now(UTC)).total_seconds()),
    )  # fmt: skip
    return response


def _check_csrf(session: Session, given: str | None) -> None:
    if not session.csrf_ok(given):
        raise InvalidCommand("csrf", "the form is stale or forged: reload the page")


@router.post("/sign-out")
def sign_out(
    request: Request, session: SessionDep, csrf: Annotated[str, Form(max_length=200)]
) -> Response:
    _check_csrf(session, csrf)
    _sessions(request).close(request.cookies.get(COOKIE))
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.post("/language")
def switch_language(
    request: Request,
    language: Annotated[str, Form(max_length=5)],
    next: Annotated[str, Form(max_length=2000)] = "/console",
) -> Response:
    """Not a change of state on the server: a cookie the pages read (no session needed,
    so the sign-in page can switch too)."""
    chosen = language if language in LANGUAGES else language_of(None)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        LANG_COOKIE, chosen, samesite="strict", path="/console", max_age=365 * 86400,
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.get("", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    first = next((p for p, _label in NAV if session.caller.role in PAGES[p]), "board")
    return RedirectResponse(f"/console/{first}", status_code=303)


# -- the SLA board ---------------------------------------------------------------


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
        "board.html", query=query, items=items, position=position, error=error,
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
    response = page.render("board_rows.html", items=items, status_labels=STATUS_LABELS)
    response.headers["X-Position"] = str(position)
    return response


def _next_colour_change(items: list[sla.BoardItem], now: datetime) -> datetime | None:
    moments = [
        m
        for i in items
        for m in (i.yellow_from, i.due_at)
        if m is not None and m > now
    ]
    return min(moments, default=None)


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
        settings: Settings = request.app.state.settings
        found = PositionWatch(request.app.state.projections, min(settings.poll_interval, 0.5))
        request.app.state.console_watch = found
    return found


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@router.get("/board/stream")
async def board_stream(request: Request, session: SessionDep) -> StreamingResponse:
    """Server-sent events: `changed` with the SLA view's new position whenever it
    moves (a command landed) or a shown target changes colour; the page then
    fetches its rows once. Nothing is sent while nothing changes."""
    allow(session, "board")
    page = View(request, session)
    query = board_query(request, session, page.settings)
    watch = _watch(request)
    sessions = _sessions(request)
    cookie = request.cookies.get(COOKIE)

    async def events() -> AsyncIterator[str]:
        started = time.monotonic()
        position = await run_in_threadpool(watch.position)
        items, _p = await run_in_threadpool(
            _board_items, page.projections, query, page.ledger.clock(), None
        )
        change = _next_colour_change(items, page.ledger.clock())
        yield "retry: 1000\n" + _sse("ready", {"position": position})
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
                yield _sse("signed-out", {})
                return
            position = latest
            yield _sse("changed", {"position": position})
            items, _p = await run_in_threadpool(_board_items, page.projections, query, now, None)
            change = _next_colour_change(items, now)

    return StreamingResponse(
        events(), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )  # fmt: skip


# -- work orders and complaints ------------------------------------------------------


@dataclass(frozen=True)
class RecordKind:
    kind: type[Any]
    path: str
    title: str
    commands: tuple[str, ...]
    table: dict[str, frozenset[Role]]
    bodies: dict[str, Any]


KINDS = {
    "work-orders": RecordKind(
        WorkOrder, "work-orders", N_("Work order"), WORK_ORDER_CONSOLE_COMMANDS,
        WORK_ORDER_COMMANDS, work_order_routes.COMMAND_BODIES,
    ),
    "complaints": RecordKind(
        Complaint, "complaints", N_("Complaint"), COMPLAINT_CONSOLE_COMMANDS,
        COMPLAINT_COMMANDS, complaint_routes.COMMAND_BODIES,
    ),
}  # fmt: skip


def _form_fields(body: Any) -> list[dict[str, Any]]:
    fields = []
    for name, info in body.model_fields.items():
        if name == "occurred_at":
            continue
        annotation = info.annotation
        kind = "number" if annotation is int else "text"
        bounds: dict[str, Any] = {}
        for m in info.metadata:
            if getattr(m, "ge", None) is not None:
                bounds["min"] = m.ge
            if getattr(m, "le", None) is not None:
                bounds["max"] = m.le
        fields.append({"name": name, "type": kind, "required": info.is_required(),
                       "label": FIELD_LABELS.get(name, name), **bounds})  # fmt: skip
    return fields


def _record(request: Request, session: Session, kind_path: str, id: UUID) -> tuple[View, Any]:
    allow(session, "records")
    page = View(request, session)
    record = KINDS[kind_path]
    found = page.ledger.get(record.kind, id)
    if (
        session.caller.role is Role.TECHNICIAN
        and getattr(found, "technician_id", None) != session.caller.actor
    ):
        raise PageForbidden("records")
    return page, found


def _render_record(
    page: View, session: Session, kind_path: str, id: UUID, *, status: int = 200,
    message: str | None = None, error: str | None = None, at_version: int | None = None,
) -> HTMLResponse:  # fmt: skip
    record = KINDS[kind_path]
    ledger = page.ledger
    current = ledger.get(record.kind, id)
    late_after = timedelta(minutes=page.settings.late_report_minutes)
    history = ledger.verified_history(record.kind, id)
    timeline = [
        {"entry": entry, "problem": problem, "late": entry.recorded_at - entry.occurred_at
         > late_after}
        for entry, problem in history
    ]  # fmt: skip
    state_at = None
    if at_version is not None and 1 <= at_version <= current.version:
        then = ledger.get_at_version(record.kind, id, at_version)
        occurred = next(e.occurred_at for e, _p in history if e.version == at_version)
        state_at = _as_view(ledger, then, occurred)
    role = session.caller.role
    commands = [
        {"name": c, "label": COMMAND_LABELS[c], "fields": _form_fields(record.bodies[c][0])}
        for c in record.commands
        if role in record.table[c]
    ]
    return page.render(
        "record.html", status=status, record=record, id=id, data=_as_view(ledger, current, None),
        timeline=timeline, commands=commands, message=message, error=error,
        state_at=state_at, at_version=at_version,
        broken=sum(1 for t in timeline if t["problem"] is not None),
    )  # fmt: skip


def _as_view(ledger: FieldLedger, aggregate: Any, as_of: datetime | None) -> dict[str, Any]:
    if isinstance(aggregate, WorkOrder):
        return work_order_view(ledger, aggregate, as_of)
    return complaint_view(ledger, aggregate, as_of)


def _record_page(request: Request, session: Session, kind_path: str, id: UUID,
                 version: int | None) -> HTMLResponse:  # fmt: skip
    try:
        page, _found = _record(request, session, kind_path, id)
    except NotFound as e:
        return error_page(request, 404, str(e))
    done = request.query_params.get("done")
    _ = gettext_for(page.language)
    message = None
    if done in COMMAND_LABELS:
        message = _("Done: %(command)s.", command=_(COMMAND_LABELS[done]))
    return _render_record(page, session, kind_path, id, message=message, at_version=version)


@router.get("/work-orders/{id}", response_class=HTMLResponse)
def work_order_page(
    request: Request, session: SessionDep, id: UUID, version: int | None = None
) -> HTMLResponse:
    return _record_page(request, session, "work-orders", id, version)


@router.get("/complaints/{id}", response_class=HTMLResponse)
def complaint_page(
    request: Request, session: SessionDep, id: UUID, version: int | None = None
) -> HTMLResponse:
    return _record_page(request, session, "complaints", id, version)


@router.get("/records/{id}")
def any_record(request: Request, session: SessionDep, id: UUID) -> Response:
    """A link to an event of any aggregate (from the audit or the appraisal)."""
    allow(session, "records")
    ledger: FieldLedger = request.app.state.ledger
    suffix = f"#v{request.query_params['version']}" if "version" in request.query_params else ""
    for path, record in KINDS.items():
        try:
            ledger.get(record.kind, id)
        except NotFound:
            continue
        return RedirectResponse(f"/console/{path}/{id}{suffix}", status_code=303)
    return RedirectResponse(
        "/console/audit?" + urlencode({"aggregate_id": str(id)}), status_code=303
    )


async def _command(request: Request, session: Session, kind_path: str, id: UUID,
                   command: str) -> Response:  # fmt: skip
    record = KINDS[kind_path]
    page = View(request, session)
    _ = gettext_for(page.language)
    form = await request.form()
    _check_csrf(session, str(form.get("csrf", "")) or request.headers.get("X-CSRF-Token"))
    if command not in record.commands:
        return error_page(request, 404, _("No such command."))
    given = request.headers.get("If-Match") or str(form.get("if_match", ""))
    try:
        expected = int(given.strip().strip('W/').strip('"'))
    except ValueError:
        return await run_in_threadpool(
            _render_record, page, session, kind_path, id, status=428,
            error=_("The form did not say which version it was made from; reload the page."),
        )  # fmt: skip
    body_model = record.bodies[command][0]
    values = {k: v for k, v in form.items() if k not in ("csrf", "if_match") and v != ""}
    try:
        body = body_model.model_validate(values)
    except ValidationError as e:
        problems = "; ".join(
            f"{_(FIELD_LABELS.get(str(err['loc'][0]), str(err['loc'][0])))}: {err['msg']}"
            for err in e.errors()
        )
        return await run_in_threadpool(
            _render_record, page, session, kind_path, id, status=422, error=problems
        )
    run = page.ledger.work_order_command if record.kind is WorkOrder else (
        page.ledger.complaint_command)  # fmt: skip
    try:
        await run_in_threadpool(
            lambda: run(session.caller, id, command, body.to_args(), expected_version=expected)
        )
    except VersionMismatch as e:
        return await run_in_threadpool(
            _render_record, page, session, kind_path, id, status=412,
            error=_("This record changed meanwhile: you saw version %(expected)s, it is now at "
                    "version %(current)s. Read the new events below, then try again.",
                    expected=e.expected, current=e.current),
        )  # fmt: skip
    except NotFound as e:
        return error_page(request, 404, str(e))
    except DomainError as e:
        return await run_in_threadpool(
            _render_record, page, session, kind_path, id, status=409, error=str(e)
        )
    return RedirectResponse(f"/console/{kind_path}/{id}?done={command}", status_code=303)


@router.post("/work-orders/{id}/commands/{command}")
async def work_order_command(
    request: Request, session: SessionDep, id: UUID, command: str
) -> Response:
    allow(session, "records")
    return await _command(request, session, "work-orders", id, command)


@router.post("/complaints/{id}/commands/{command}")
async def complaint_command(
    request: Request, session: SessionDep, id: UUID, command: str
) -> Response:
    allow(session, "records")
    return await _command(request, session, "complaints", id, command)


# -- audit ---------------------------------------------------------------------------


def _audit_filter(request: Request, timezone: str) -> tuple[AuditFilter, dict[str, str]]:
    q = request.query_params
    given = {k: q[k].strip() for k in ("actor", "role", "type", "aggregate_id", "kind", "from",
                                        "to", "late") if q.get(k, "").strip()}  # fmt: skip
    role = given.get("role")
    if role is not None and role not in {r.value for r in Role}:
        raise InvalidCommand("role", f"unknown role {role!r}")
    types: tuple[str, ...] = ()
    if "type" in given:
        types = tuple(sorted({t.strip() for t in given["type"].split(",") if t.strip()}))
        unknown = [t for t in types if t not in known_event_types()]
        if unknown:
            raise InvalidCommand("type", f"unknown event type {unknown[0]!r}")
    aggregate = given.get("aggregate_id")
    if aggregate is not None:
        try:
            aggregate = str(UUID(aggregate))
        except ValueError:
            raise InvalidCommand("aggregate_id", f"{aggregate!r} is not an id") from None
    kind = given.get("kind")
    if kind is not None and kind not in ("work_order", "complaint", "staff", "policy"):
        raise InvalidCommand("kind", f"unknown kind {kind!r}")
    start = instant_or_day(given.get("from"), "from", timezone, end=False)
    end = instant_or_day(given.get("to"), "to", timezone, end=True)
    late = {"true": True, "false": False}.get(given.get("late", ""))
    return AuditFilter(
        actor=given.get("actor"), role=role, types=types, aggregate_id=aggregate, kind=kind,
        occurred_from=start, occurred_to=end, late=late,
    ), given  # fmt: skip


def _audit_rows(page: View, query: AuditFilter, before: int | None, limit: int) -> list[Any]:
    with reading(page.projections, AuditTrail.name, as_of=None, min_position=None) as (
        tx, t, _v,
    ):  # fmt: skip
        return AuditTrail.search(
            tx, t, query, before=before, limit=limit,
            late_after=timedelta(minutes=page.settings.late_report_minutes),
        )  # fmt: skip


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep, before: int | None = None) -> HTMLResponse:
    allow(session, "audit")
    page = View(request, session)
    try:
        query, given = _audit_filter(request, page.settings.timezone)
    except InvalidCommand as e:
        return page.render("audit.html", status=422, rows=[], given={}, error=str(e),
                           next_before=None, params="", types=sorted(known_event_types()),
                           roles=[r.value for r in Role])  # fmt: skip
    rows = _audit_rows(page, query, before, PAGE_SIZE + 1)
    next_before = rows[PAGE_SIZE - 1].position if len(rows) > PAGE_SIZE else None
    return page.render(
        "audit.html", rows=rows[:PAGE_SIZE], given=given, error=None, next_before=next_before,
        params=urlencode(given), types=sorted(known_event_types()),
        roles=[r.value for r in Role],
    )  # fmt: skip


CSV_COLUMNS = ("position", "recorded_at", "occurred_at", "late", "kind", "aggregate_id",
               "version", "type", "actor", "role", "hash", "data")  # fmt: skip


@router.get("/audit.csv")
def audit_csv(request: Request, session: SessionDep) -> Response:
    """Every event the filters match, newest first, read page by page (keyset on the
    store position, so events recorded meanwhile neither shift nor repeat rows)."""
    allow(session, "audit")
    page = View(request, session)
    query, _given = _audit_filter(request, page.settings.timezone)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        before: int | None = None
        while True:
            rows = _audit_rows(page, query, before, 1000)
            for r in rows:
                writer.writerow([
                    r.position, r.recorded_at.isoformat(), r.occurred_at.isoformat(),
                    str(r.late).lower(), r.kind, r.aggregate_id, r.version, r.type, r.actor,
                    r.role, r.hash or "", json.dumps(r.data, ensure_ascii=False, sort_keys=True),
                ])  # fmt: skip
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(rows) < 1000:
                return
            before = rows[-1].position

    return StreamingResponse(
        lines(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )  # fmt: skip


# -- appraisal -----------------------------------------------------------------------


def _period_text(request: Request, page: View) -> str:
    timezone = page.settings.timezone
    text = (request.query_params.get("period") or "").strip()
    return text or month_of(page.ledger.clock(), timezone)


@router.get("/appraisal", response_class=HTMLResponse)
def appraisal_page(request: Request, session: SessionDep) -> HTMLResponse:
    allow(session, "appraisal")
    page = View(request, session)
    text = _period_text(request, page)
    try:
        period = parse_period(text)
    except InvalidCommand as e:
        return page.render("appraisal.html", status=422, ranking=[], period=text, error=str(e))
    with reading(page.projections, "appraisal", as_of=None, min_position=None) as (tx, t, v):
        ranking = v.ranking(tx, t, period)
    if session.caller.role is Role.TECHNICIAN:
        ranking = [e for e in ranking if e["staff_id"] == session.caller.actor]
    return page.render("appraisal.html", ranking=ranking, period=period.name, error=None)


@router.get("/appraisal/{staff_id}", response_class=HTMLResponse)
def staff_page(request: Request, session: SessionDep, staff_id: str) -> HTMLResponse:
    allow(session, "appraisal")
    page = View(request, session)
    if session.caller.role is Role.TECHNICIAN and staff_id != session.caller.actor:
        raise PageForbidden("appraisal")
    text = _period_text(request, page)
    try:
        period = parse_period(text)
        with reading(page.projections, "appraisal", as_of=None, min_position=None) as (
            tx, t, v,
        ):  # fmt: skip
            found = v.appraisal(tx, t, staff_id, period)
    except InvalidCommand as e:
        return error_page(request, 422, str(e))
    except StaffUnknown:
        _ = gettext_for(page.language)
        return error_page(request, 404, _("No staff member %(id)s is known.", id=staff_id))
    flags = {k: v for k, v in found.items() if k in ("training", "training_flags",
                                                    "retraining_required") and v}  # fmt: skip
    return page.render("staff.html", a=found, staff_id=staff_id, period=period.name,
                       flags=flags)  # fmt: skip


# -- reports -------------------------------------------------------------------------


def _months(page: View, count: int) -> list[str]:
    this = parse_period(month_of(page.ledger.clock(), page.settings.timezone)).first_day
    return [
        f"{d.year:04d}-{d.month:02d}"
        for d in (add_months(this, -i) for i in range(count - 1, -1, -1))
    ]


@dataclass(frozen=True)
class MonthFigures:
    month: str
    csat_pct: float | None
    first_time_fix_pct: float | None
    first_contact_resolution_pct: float | None
    sla_rate: float | None
    surveys: int
    met: int
    breached: int


def _share(groups: list[dict[str, Any]], pct_key: str, count_key: str) -> float | None:
    """The whole's percentage from groups' percentages and sizes."""
    total = sum(int(g.get(count_key) or 0) for g in groups if g.get(pct_key) is not None)
    if not total:
        return None
    hits = sum(float(g[pct_key]) * int(g.get(count_key) or 0) / 100 for g in groups
               if g.get(pct_key) is not None)  # fmt: skip
    return round(hits * 100 / total, 2)


def _month_figures(page: View, months: list[str]) -> list[MonthFigures]:
    timezone = page.settings.timezone
    now = page.ledger.clock()
    out = []
    with reading(page.projections, "satisfaction", as_of=None, min_position=None) as (tx, t, v):
        satisfaction = {
            m: v.summary(tx, t, start=parse_period(m).starts_at(timezone),
                         end=parse_period(m).ends_at(timezone), group_by="service_type")
            for m in months
        }  # fmt: skip
    with reading(page.projections, sla.NAME, as_of=None, min_position=None) as (tx, t, _v):
        compliance = {
            m: sla.compliance(tx, t, start=parse_period(m).starts_at(timezone),
                              end=parse_period(m).ends_at(timezone), now=now, group_by=None,
                              kind=None)
            for m in months
        }  # fmt: skip
    for m in months:
        groups = satisfaction[m]
        decided = compliance[m]
        met = sum(g.met for g in decided)
        breached = sum(g.breached for g in decided)
        out.append(MonthFigures(
            month=m,
            csat_pct=_share(groups, "csat_pct", "surveys_received"),
            first_time_fix_pct=_share(groups, "first_time_fix_pct", "accepted"),
            first_contact_resolution_pct=_share(groups, "first_contact_resolution_pct",
                                                "accepted"),
            sla_rate=None if not (met + breached) else round(met * 100 / (met + breached), 2),
            surveys=sum(int(g.get("surveys_received") or 0) for g in groups),
            met=met, breached=breached,
        ))  # fmt: skip
    return out


SLA_REFERENCE_PCT = 90.0


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, session: SessionDep) -> HTMLResponse:
    allow(session, "reports")
    page = View(request, session)
    _ = gettext_for(page.language)
    figures = _month_figures(page, _months(page, 6))
    policy = page.projections.models["satisfaction"].settings.policy.satisfaction
    no_data = _("no data")
    chart_list: list[tuple[str, Markup]] = [
        (_("CSAT"), charts.bar_chart(
            _("CSAT by month"), [charts.Bar(f.month, f.csat_pct) for f in figures],
            float(policy.csat_target_pct), no_data)),
        (_("First-time fix"), charts.bar_chart(
            _("First-time fix by month"),
            [charts.Bar(f.month, f.first_time_fix_pct) for f in figures],
            float(policy.first_time_fix_target_pct), no_data)),
        (_("SLA compliance"), charts.bar_chart(
            _("SLA compliance by month"), [charts.Bar(f.month, f.sla_rate) for f in figures],
            SLA_REFERENCE_PCT, no_data)),
    ]  # fmt: skip
    if any(f.first_contact_resolution_pct is not None for f in figures):
        chart_list.insert(2, (_("First-contact resolution"), charts.bar_chart(
            _("First-contact resolution by month"),
            [charts.Bar(f.month, f.first_contact_resolution_pct) for f in figures],
            float(policy.first_time_fix_target_pct), no_data)))  # fmt: skip
    return page.render("reports.html", charts=chart_list, figures=figures,
                       thresholds={"csat": f"{float(policy.csat_target_pct):g}",
                                   "ftf": f"{float(policy.first_time_fix_target_pct):g}",
                                   "sla": f"{SLA_REFERENCE_PCT:g}"})  # fmt: skip


@router.get("/reports.csv")
def reports_csv(request: Request, session: SessionDep) -> Response:
    allow(session, "reports")
    page = View(request, session)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("month", "csat_pct", "first_time_fix_pct", "first_contact_resolution_pct",
                     "sla_compliance_pct", "surveys", "sla_met", "sla_breached"))  # fmt: skip
    for f in _month_figures(page, _months(page, 12)):
        writer.writerow("" if x is None else x for x in (
            f.month, f.csat_pct, f.first_time_fix_pct, f.first_contact_resolution_pct,
            f.sla_rate, f.surveys, f.met, f.breached))  # fmt: skip
    return Response(
        buffer.getvalue(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="monthly.csv"'},
    )


# -- operations ----------------------------------------------------------------------


@dataclass
class RebuildRun:
    name: str
    head: int
    started: float
    position: int = 0
    events: int = 0
    finished: bool = False
    error: str | None = None
    generation: int | None = None


def _runs(request: Request) -> dict[str, RebuildRun]:
    found: dict[str, RebuildRun] | None = getattr(request.app.state, "console_rebuilds", None)
    if found is None:
        found = {}
        request.app.state.console_rebuilds = found
    return found


def _operations_snapshot(request: Request) -> dict[str, Any]:
    projections: Projections = request.app.state.projections
    projector = getattr(request.app.state, "projector", None)
    retrying = {} if projector is None else dict(projector.last_errors)
    runs = _runs(request)
    rows = []
    for s in projections.status():
        run = runs.get(s.name)
        rows.append({
            "name": s.name, "position": s.position, "lag": s.lag, "generation": s.generation,
            "error": s.error if s.error is not None else retrying.get(s.name),
            "stale": s.stale,
            "building": None if s.building_generation is None else {
                "generation": s.building_generation, "position": s.building_position or 0},
            "run": None if run is None else {
                "position": run.position, "head": run.head, "events": run.events,
                "finished": run.finished, "error": run.error, "generation": run.generation,
                "percent": 100 if run.finished else (
                    0 if not run.head else min(99, int(run.position * 100 / run.head))),
                "rate": round(run.events / max(0.001, time.monotonic() - run.started)),
            },
        })  # fmt: skip
    return {"head": projections.head(), "projections": rows}


@router.get("/operations", response_class=HTMLResponse)
def operations_page(request: Request, session: SessionDep) -> HTMLResponse:
    allow(session, "operations")
    return View(request, session).render("operations.html", snapshot=_operations_snapshot(request))


@router.post("/operations/rebuild")
def start_rebuild(
    request: Request,
    session: SessionDep,
    name: Annotated[str, Form(max_length=100)],
    csrf: Annotated[str, Form(max_length=200)],
) -> Response:
    allow(session, "operations")
    _check_csrf(session, csrf)
    projections: Projections = request.app.state.projections
    if name not in projections.models:
        return error_page(request, 404, f"no read model {name}")
    runs = _runs(request)
    current = runs.get(name)
    if current is None or current.finished:
        run = RebuildRun(name, projections.head(), time.monotonic())
        runs[name] = run

        def progress(count: int, position: int) -> None:
            run.events += count
            run.position = position

        def work() -> None:
            try:
                run.generation = projections.rebuild(name, progress=progress)
            except (ProjectionFailed, Exception) as e:  # shown on the page, never lost
                run.error = f"{type(e).__name__}: {e}"
            finally:
                run.finished = True

        threading.Thread(target=work, name=f"console-rebuild-{name}", daemon=True).start()
    return RedirectResponse("/console/operations", status_code=303)


@router.get("/operations/stream")
async def operations_stream(request: Request, session: SessionDep) -> StreamingResponse:
    """Server-sent events: the operations table whenever it changes (checked twice a
    second while a rebuild runs, every two seconds otherwise)."""
    allow(session, "operations")

    async def events() -> AsyncIterator[str]:
        started = time.monotonic()
        last = ""
        while time.monotonic() - started < STREAM_SECONDS:
            snapshot = await run_in_threadpool(_operations_snapshot, request)
            text = json.dumps(snapshot, sort_keys=True)
            if text != last:
                last = text
                yield _sse("status", snapshot)
            busy = any(r["run"] and not r["run"]["finished"] for r in snapshot["projections"])
            await asyncio.sleep(0.5 if busy else 2.0)
            if await request.is_disconnected():
                return

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})
