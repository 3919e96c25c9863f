"""The audit search: filters, stable paging by store position, CSV of every match."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fieldledger.api.console.context import (
    SessionDep,
    View,
    allow,
    router,
)
from fieldledger.api.reading import instant_or_day, reading
from fieldledger.domain.customers import contact_access
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Role
from fieldledger.projections.audit import AuditFilter, AuditTrail, known_event_types

PAGE_SIZE = 50

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

    access = contact_access(session.caller.role, session.caller.actor)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        before: int | None = None
        while True:
            rows = _audit_rows(page, query, before, 1000)
            # Contacts in the events as the API's audit shows them to this role.
            shown = page.ledger.personal_data.disclose([r.data for r in rows], access)
            for r, data in zip(rows, shown, strict=True):
                writer.writerow([
                    r.position, r.recorded_at.isoformat(), r.occurred_at.isoformat(),
                    str(r.late).lower(), r.kind, r.aggregate_id, r.version, r.type, r.actor,
                    r.role, r.hash or "", json.dumps(data, ensure_ascii=False, sort_keys=True),
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
