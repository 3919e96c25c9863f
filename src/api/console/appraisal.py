"""The appraisal: the ranking of a period and each staff member's items with their source events."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fieldledger.api.console.context import (
    CURRENT_SECONDS,
    PAST_SECONDS,
    PageForbidden,
    SessionDep,
    View,
    allow,
    error_page,
    reused,
    router,
)
from fieldledger.api.console.i18n import gettext_for
from fieldledger.api.reading import reading
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Role
from fieldledger.domain.periods import month_of, parse_period
from fieldledger.projections.appraisal import StaffUnknown


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

    def compute() -> list[dict[str, Any]]:
        with reading(page.projections, "appraisal", as_of=None, min_position=None) as (
            tx, t, v,
        ):  # fmt: skip
            ranked: list[dict[str, Any]] = v.ranking(tx, t, period)
            return ranked

    now = page.ledger.clock()
    timezone = page.settings.timezone
    current = period.starts_at(timezone) <= now < period.ends_at(timezone)
    ranking = reused(request).get(
        ("ranking", period.name), CURRENT_SECONDS if current else PAST_SECONDS, compute
    )
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
    return page.render("staff.html", a=found, staff_id=staff_id, period=period.name)
