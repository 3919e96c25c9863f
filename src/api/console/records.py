"""Work order and complaint pages: state, SLA targets, the verified timeline, the
state at any event, and the commands a dispatcher or supervisor may give (If-Match)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fieldledger.api.console.context import (
    PageForbidden,
    SessionDep,
    View,
    allow,
    check_csrf,
    error_page,
    router,
)
from fieldledger.api.console.i18n import (
    N_,
    gettext_for,
)
from fieldledger.api.console.sessions import Session
from fieldledger.api.routes.views import complaint_view, work_order_view
from fieldledger.application.commands import COMPLAINT, WORK_ORDER, Command, CommandSet
from fieldledger.application.ledger import FieldLedger, NotFound, VersionMismatch
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.customers import ContactAccess, contact_access
from fieldledger.domain.errors import DomainError
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import WorkOrder
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

# The commands the console offers on a record page are those of the registry
# with a `label` (their bodies are simple fields); the labels are translated here.
_LABELS = {c.name: c.label for kind in (WORK_ORDER, COMPLAINT) for c in kind if c.label}
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


@dataclass(frozen=True)
class RecordKind:
    kind: type[Any]
    path: str
    title: str
    #: The commands offered, by name: those of the registry with a console label.
    commands: dict[str, Command[Any, Any]]


def _offered(commands: CommandSet[Any]) -> dict[str, Command[Any, Any]]:
    return {c.name: c for c in commands if c.routed and c.label is not None}


KINDS = {
    "work-orders": RecordKind(WorkOrder, "work-orders", N_("Work order"), _offered(WORK_ORDER)),
    "complaints": RecordKind(Complaint, "complaints", N_("Complaint"), _offered(COMPLAINT)),
}


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
    try:
        found: Any = page.ledger.get(record.kind, id)
    except NotFound:
        raise
    except Exception:  # its events no longer decode: the timeline says which
        page.ledger.verified_history(record.kind, id)  # NotFound for another kind
        found = None
    if session.caller.role is Role.TECHNICIAN and (
        found is None or getattr(found, "technician_id", None) != session.caller.actor
    ):
        raise PageForbidden("records")
    return page, found


def _render_record(
    page: View, session: Session, kind_path: str, id: UUID, *, status: int = 200,
    message: str | None = None, error: str | None = None, at_version: int | None = None,
) -> HTMLResponse:  # fmt: skip
    record = KINDS[kind_path]
    ledger = page.ledger
    late_after = timedelta(minutes=page.settings.late_report_minutes)
    history = ledger.verified_history(record.kind, id)
    try:
        current: Any = ledger.get(record.kind, id)
    except NotFound:
        raise
    except Exception:  # its events no longer decode (edited below the API)
        current = None
    caller = session.caller
    # Contacts are shown as the API shows them to this role (docs/api.md).
    access = contact_access(caller.role, caller.actor, getattr(current, "technician_id", None))
    data = None if current is None else _as_view(ledger, current, None, access)
    readable_entries = [e for e in history if e.entry is not None]
    shown = ledger.personal_data.disclose(
        [e.entry.data for e in readable_entries if e.entry is not None], access
    )
    disclosed = {e.version: d for e, d in zip(readable_entries, shown, strict=True)}
    timeline = [
        {"event": e, "entry": e.entry, "data": disclosed.get(e.version), "problem": e.problem,
         "late": e.entry is not None and e.entry.recorded_at - e.entry.occurred_at > late_after}
        for e in history
    ]  # fmt: skip
    state_at = None
    readable = {e.version: e.entry for e in history if e.entry is not None}
    if data is not None and at_version in readable:
        then = ledger.get_at_version(record.kind, id, at_version)
        state_at = _as_view(ledger, then, readable[at_version].occurred_at, access)
    role = session.caller.role
    commands = [
        {"name": c.name, "label": c.label, "fields": _form_fields(c.body)}
        for c in record.commands.values()
        if role in c.roles
    ]
    return page.render(
        "record.html", status=status, record=record, id=id, data=data,
        timeline=timeline, commands=commands, message=message, error=error,
        state_at=state_at, at_version=at_version,
        broken=sum(1 for t in timeline if t["problem"] is not None),
    )  # fmt: skip


def _as_view(
    ledger: FieldLedger, aggregate: Any, as_of: datetime | None, access: ContactAccess
) -> dict[str, Any]:
    if isinstance(aggregate, WorkOrder):
        return work_order_view(ledger, aggregate, as_of, access).model_dump(mode="json")
    return complaint_view(ledger, aggregate, as_of, access).model_dump(mode="json")


def _record_page(request: Request, session: Session, kind_path: str, id: UUID,
                 version: int | None) -> HTMLResponse:  # fmt: skip
    try:
        page, _found = _record(request, session, kind_path, id)
    except NotFound as e:
        return error_page(request, 404, str(e))
    done = request.query_params.get("done")
    _ = gettext_for(page.language)
    message = None
    label = _LABELS.get(done or "")
    if label is not None:
        message = _("Done: %(command)s.", command=_(label))
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
    check_csrf(session, str(form.get("csrf", "")) or request.headers.get("X-CSRF-Token"))
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
    chosen = record.commands[command]
    values = {k: v for k, v in form.items() if k not in ("csrf", "if_match") and v != ""}
    try:
        body = chosen.body.model_validate(values)
    except ValidationError as e:
        problems = "; ".join(
            f"{_(FIELD_LABELS.get(str(err['loc'][0]), str(err['loc'][0])))}: {err['msg']}"
            for err in e.errors()
        )
        return await run_in_threadpool(
            _render_record, page, session, kind_path, id, status=422, error=problems
        )
    try:
        await run_in_threadpool(
            lambda: page.ledger.execute(chosen, session.caller, id, body, expected_version=expected)
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
