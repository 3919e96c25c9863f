"""The monthly supervision report (《服務監督報告》) as a page and CSV: the same
report as `GET /reports/monthly`, built by the same function."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from fieldledger.api.console.context import SessionDep, View, allow, router
from fieldledger.api.console.i18n import N_, gettext_for
from fieldledger.api.routes.reports import MonthlyReport, monthly_csv, monthly_report
from fieldledger.domain.errors import InvalidCommand
from starlette.concurrency import run_in_threadpool

ORDER_LABELS = {
    "booked": N_("booked"),
    "completed": N_("completed"),
    "accepted": N_("accepted"),
    "resolved_remotely": N_("resolved remotely"),
    "cancelled": N_("cancelled"),
    "rejected": N_("rejected"),
    "escalated": N_("escalated"),
    "feedback": N_("feedback received"),
}
COMPLAINT_LABELS = {
    "lodged": N_("lodged"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
    "reopened": N_("reopened"),
}
PeriodQuery = Annotated[str | None, Query(max_length=20)]


def _report(page: View, period: str | None) -> tuple[MonthlyReport | None, str | None]:
    _ = gettext_for(page.language)
    try:
        return monthly_report(page.projections, page.ledger, period or None), None
    except InvalidCommand as e:
        return None, f"{_('Month')}: {e.message}"


@router.get("/reports/monthly", response_class=HTMLResponse)
async def monthly_page(
    request: Request, session: SessionDep, period: PeriodQuery = None
) -> HTMLResponse:
    allow(session, "monthly")
    page = View(request, session)
    report, error = await run_in_threadpool(_report, page, period)
    return page.render(
        "monthly.html", status=422 if error else 200, report=report, error=error,
        period=report.period if report else (period or ""),
        orders=ORDER_LABELS, complaints=COMPLAINT_LABELS,
    )  # fmt: skip


@router.get("/reports/monthly.csv")
async def monthly_download(
    request: Request, session: SessionDep, period: PeriodQuery = None
) -> Response:
    allow(session, "monthly")
    page = View(request, session)
    report, error = await run_in_threadpool(_report, page, period)
    if report is None:
        return page.render("error.html", status=422, message=error)
    return monthly_csv(report)
