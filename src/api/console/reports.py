"""Satisfaction and SLA reports by month, as SVG charts against their thresholds, and CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fieldledger.api.console import charts
from fieldledger.api.console.context import (
    CURRENT_SECONDS,
    PAGES,
    PAST_SECONDS,
    SessionDep,
    View,
    allow,
    reused,
    router,
)
from fieldledger.api.console.i18n import gettext_for
from fieldledger.api.reading import reading
from fieldledger.domain.periods import add_months, month_of, parse_period
from fieldledger.projections import sla
from markupsafe import Markup


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


def _one_month(page: View, month: str) -> MonthFigures:
    return _month_figures(page, [month])[0]


def _figures(request: Request, page: View, count: int) -> list[MonthFigures]:
    months = _months(page, count)
    cache = reused(request)
    return [
        cache.get(
            ("figures", month),
            CURRENT_SECONDS if month == months[-1] else PAST_SECONDS,
            partial(_one_month, page, month),
        )
        for month in months
    ]


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, session: SessionDep) -> HTMLResponse:
    allow(session, "reports")
    page = View(request, session)
    _ = gettext_for(page.language)
    figures = _figures(request, page, 6)
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
                       monthly=session.caller.role in PAGES["monthly"],
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
    for f in _figures(request, page, 12):
        writer.writerow("" if x is None else x for x in (
            f.month, f.csat_pct, f.first_time_fix_pct, f.first_contact_resolution_pct,
            f.sla_rate, f.surveys, f.met, f.breached))  # fmt: skip
    return Response(
        buffer.getvalue(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="monthly.csv"'},
    )
