"""`/reports/daily`, `/reports/weekly`, `/reports/monthly` (contract §11.5):
the technicians' daily report (003 第十/十一條), the weekly meeting's figures
(002: 每周五下午例會) and the monthly 《服務監督報告》 (002 篇三).

All read read models — never the event store per request: the `reports` view,
and for the monthly report also the SLA, satisfaction and appraisal views, each
through its own query. JSON by default; `Accept: text/csv` gives CSV (daily:
one row per technician; weekly and monthly: one row per figure, as
`section,key,measure,value`). `as_of` answers as the views stood at an instant
(each view replayed up to it), `min_position` reads a command's writes. Who:
supervisors and analysts (docs/reports.md says why).
"""

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fieldledger.api.deps import CallerDep, LedgerDep, ProjectionsDep
from fieldledger.api.problems import responses
from fieldledger.api.reading import AsOf, MinPosition, reading
from fieldledger.application.fields import MonthName, QueryDate, WeekName
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.domain.errors import NotPermitted
from fieldledger.domain.periods import (
    local_date,
    month_of,
    parse_period,
    parse_week,
    require_business_date,
    week_of,
)
from fieldledger.domain.permissions import REPORT_READERS
from fieldledger.projections import sla
from fieldledger.projections.projector import Projections
from fieldledger.projections.reporting import percentage
from fieldledger.projections.reports import COMPLAINT_MEASURES, ORDER_MEASURES
from pydantic import BaseModel, Field

router = APIRouter(prefix="/reports", tags=["reports"])

CSV = "text/csv"
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {CSV: {"schema": {"type": "string"}}},
          "description": "JSON, or CSV with `Accept: text/csv`"},
}  # fmt: skip
WHO = ", ".join(sorted(r.value for r in REPORT_READERS))


# -- response shapes ------------------------------------------------------------


class ServiceTypeLine(BaseModel):
    service_type: str
    orders_worked: int
    completed: int
    hours_on_site: float


class TechnicianLine(BaseModel):
    technician_id: str
    orders_worked: int = Field(description="orders the technician acted on or was on site for")
    completed: int = Field(description="orders completed on site or resolved remotely")
    late: int = Field(description="arrivals after the appointment start")
    hours_on_site: float = Field(description="from arrival to completion (or hold), 2 decimals")
    by_service_type: list[ServiceTypeLine]


class Totals(BaseModel):
    orders_worked: int
    completed: int
    late: int
    hours_on_site: float


class DailyReport(BaseModel):
    date: date
    as_of: datetime | None
    technicians: list[TechnicianLine]
    totals: Totals


class OrderCounts(BaseModel):
    booked: int
    completed: int
    accepted: int
    resolved_remotely: int
    cancelled: int
    rejected: int
    escalated: int
    feedback: int


class CategoryLine(BaseModel):
    category: str
    lodged: int
    resolved: int
    closed: int
    reopened: int


class ComplaintCounts(BaseModel):
    lodged: int
    resolved: int
    closed: int
    reopened: int
    by_category: list[CategoryLine]


class Dimensions(BaseModel):
    attitude: float | None
    skill: float | None
    punctuality: float | None
    promise: float | None


class Comment(BaseModel):
    work_order_id: str
    day: date
    technician_id: str | None
    csat: int
    comment: str


class FeedbackSummary(BaseModel):
    received: int = Field(description="surveys received in the week")
    csat_pct: float | None
    mean_csat: float | None
    dimensions: Dimensions
    praised: int
    comments: list[Comment]


class WeeklyReport(BaseModel):
    week: str
    from_: date = Field(serialization_alias="from", description="Monday")
    to: date = Field(description="Sunday (inclusive)")
    as_of: datetime | None
    orders: OrderCounts
    complaints: ComplaintCounts
    feedback: FeedbackSummary
    technicians: list[TechnicianLine]


class ComplianceLine(BaseModel):
    key: str | None
    met: int
    breached: int
    open: int
    rate: float | None


class KindCompliance(BaseModel):
    overall: ComplianceLine
    targets: list[ComplianceLine]


class SlaCompliance(BaseModel):
    work_orders: KindCompliance
    complaints: KindCompliance


class TechnicianSatisfaction(BaseModel):
    technician_id: str | None
    csat_pct: float | None
    first_time_fix_pct: float | None
    first_contact_resolution_pct: float | None
    surveys_expected: int
    surveys_received: int


class Satisfaction(BaseModel):
    csat_pct: float | None = Field(description="share of surveys with csat >= good_csat")
    first_time_fix_pct: float | None
    first_contact_resolution_pct: float | None = Field(
        description="004 問題一次性解決率, from the satisfaction view (null while it has none)"
    )
    surveys_expected: int
    surveys_received: int
    technicians: list[TechnicianSatisfaction]


class RankingLine(BaseModel):
    staff_id: str
    points: int | float
    rank: int


class MonthlyReport(BaseModel):
    period: str
    from_: date = Field(serialization_alias="from")
    to: date = Field(description="last day (inclusive)")
    as_of: datetime | None
    orders: OrderCounts
    sla: SlaCompliance
    satisfaction: Satisfaction
    complaints: ComplaintCounts
    appraisal_ranking: list[RankingLine]
    missing: list[str] = Field(
        description="measures the report cannot give yet, and why (empty when complete)"
    )


# -- routes ---------------------------------------------------------------------


@router.get(
    "/daily",
    response_model=DailyReport,
    summary="Technicians' daily report: orders worked, completed, late, hours on site",
    description="Per technician, for one local day (FIELDLEDGER_TIMEZONE): orders worked, "
    "completed, late arrivals and hours on site, also per service type (003 第十/十一條). "
    f"Who: {WHO}. `Accept: text/csv` for CSV.",
    responses={**CSV_RESPONSE, **responses(401, 403, 422, 503)},
)
def daily(
    request: Request,
    projections: ProjectionsDep,
    ledger: LedgerDep,
    caller: CallerDep,
    date_: Annotated[
        QueryDate | None, Query(alias="date", description="the local day (default: today)")
    ] = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
) -> Any:
    _may_read(caller)
    day = require_business_date("date", date_ or local_date(ledger.clock(), ledger.timezone))
    with reading(projections, "reports", as_of=as_of, min_position=min_position) as (
        tx, tables, view,
    ):  # fmt: skip
        technicians = view.technicians(tx, tables, day, day + timedelta(days=1))
    report = DailyReport(
        date=day, as_of=as_of,
        technicians=[TechnicianLine.model_validate(t) for t in technicians],
        totals=_totals(technicians),
    )  # fmt: skip
    if _wants_csv(request):
        rows = (
            [day.isoformat(), t.technician_id, t.orders_worked, t.completed, t.late,
             t.hours_on_site]
            for t in report.technicians
        )  # fmt: skip
        header = ["date", "technician_id", "orders_worked", "completed", "late", "hours_on_site"]
        return _csv(f"daily-{day.isoformat()}.csv", header, rows)
    return report


@router.get(
    "/weekly",
    response_model=WeeklyReport,
    summary="The weekly meeting's report: orders, complaints, customer feedback",
    description="For one ISO week (Monday to Sunday, local days): orders booked, completed, "
    "accepted, ...; complaints by category; the surveys received and what customers wrote; "
    f"each technician's week (002: 每周五下午例會). Who: {WHO}. `Accept: text/csv` for CSV.",
    responses={**CSV_RESPONSE, **responses(401, 403, 422, 503)},
)
def weekly(
    request: Request,
    projections: ProjectionsDep,
    ledger: LedgerDep,
    caller: CallerDep,
    week: Annotated[
        WeekName | None, Query(description="YYYY-Www (default: this week)", examples=["2026-W42"])
    ] = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
) -> Any:
    _may_read(caller)
    name = week or week_of(local_date(ledger.clock(), ledger.timezone))
    first, end = parse_week(name)
    with reading(projections, "reports", as_of=as_of, min_position=min_position) as (
        tx, tables, view,
    ):  # fmt: skip
        counts = view.counts(tx, tables, first, end)
        categories = view.complaints_by_category(tx, tables, first, end)
        feedback = view.feedback(tx, tables, first, end)
        technicians = view.technicians(tx, tables, first, end)
    report = WeeklyReport(
        week=name.strip(), from_=first, to=end - timedelta(days=1), as_of=as_of,
        orders=_orders(counts), complaints=_complaints(counts, categories),
        feedback=FeedbackSummary.model_validate(feedback),
        technicians=[TechnicianLine.model_validate(t) for t in technicians],
    )  # fmt: skip
    if _wants_csv(request):
        return _csv(f"weekly-{report.week}.csv", LONG_HEADER, _long_rows(_weekly_figures(report)))
    return report


@router.get(
    "/monthly",
    response_model=MonthlyReport,
    summary="The monthly supervision report (服務監督報告): SLA, CSAT, first-contact "
    "resolution, complaints by category, appraisal ranking",
    description="For one calendar month (local days). SLA compliance of the targets whose "
    "clock started in the month (as `/sla/compliance`), satisfaction of the orders completed "
    "in it (as `/satisfaction/summary`), complaints by category, and the month's appraisal "
    f"ranking (as `/appraisal`) (002 篇三). Who: {WHO}. `Accept: text/csv` for CSV.",
    responses={**CSV_RESPONSE, **responses(401, 403, 422, 503)},
)
def monthly(
    request: Request,
    projections: ProjectionsDep,
    ledger: LedgerDep,
    caller: CallerDep,
    period: Annotated[
        MonthName | None, Query(description="YYYY-MM (default: this month)", examples=["2026-10"])
    ] = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
) -> Any:
    _may_read(caller)
    report = monthly_report(projections, ledger, period, as_of=as_of, min_position=min_position)
    return monthly_csv(report) if _wants_csv(request) else report


def monthly_report(
    projections: Projections,
    ledger: FieldLedger,
    period: str | None,
    *,
    as_of: datetime | None = None,
    min_position: int | None = None,
) -> MonthlyReport:
    """The monthly supervision report of `period` (default: this month), from the
    read models (the API's route and the console's page); InvalidCommand names
    the field when the month is not one."""
    timezone = ledger.timezone
    month = parse_period(period or month_of(ledger.clock(), timezone), quarters=False)
    first, end = require_business_date("period", month.first_day), month.end_day
    start_at, end_at = month.starts_at(timezone), month.ends_at(timezone)
    now = as_of or ledger.clock()

    def view_of(name: str) -> Any:
        return reading(projections, name, as_of=as_of, min_position=min_position)

    with view_of("reports") as (tx, tables, view):
        counts = view.counts(tx, tables, first, end)
        categories = view.complaints_by_category(tx, tables, first, end)
    with view_of("sla") as (tx, tables, _view):
        compliance = {
            kind: (
                sla.compliance(tx, tables, start=start_at, end=end_at, now=now, kind=kind),
                sla.compliance(tx, tables, start=start_at, end=end_at, now=now, kind=kind,
                               group_by="target"),
            )
            for kind in ("work_order", "complaint")
        }
    with view_of("satisfaction") as (tx, tables, view):
        groups = view.summary(tx, tables, start=start_at, end=end_at, group_by="technician")
    with view_of("appraisal") as (tx, tables, view):
        ranking = view.ranking(tx, tables, month)
    satisfaction, missing = satisfaction_of(groups)
    report = MonthlyReport(
        period=month.name, from_=first, to=end - timedelta(days=1), as_of=as_of,
        orders=_orders(counts),
        sla=SlaCompliance(
            work_orders=_kind_compliance(*compliance["work_order"]),
            complaints=_kind_compliance(*compliance["complaint"]),
        ),
        satisfaction=satisfaction,
        complaints=_complaints(counts, categories),
        appraisal_ranking=[RankingLine.model_validate(r) for r in ranking],
        missing=missing,
    )  # fmt: skip
    return report


def monthly_csv(report: MonthlyReport) -> Response:
    """The report as CSV, one row per figure (`section,key,measure,value`)."""
    return _csv(f"monthly-{report.period}.csv", LONG_HEADER, _long_rows(_monthly_figures(report)))


# -- building the reports ------------------------------------------------------


def satisfaction_of(groups: list[dict[str, Any]]) -> tuple[Satisfaction, list[str]]:
    """The month's satisfaction from the satisfaction view's groups per technician
    (each completed order is in exactly one group, so the counts add up).

    First-contact resolution (004 問題一次性解決率) is the satisfaction view's
    measure: taken per technician from `first_contact_resolution_pct`, and overall
    from its counts (`first_contact_resolutions` of `resolved`) when the view gives
    them. Until the view measures it, the report says so in `missing`.
    """
    received = sum(int(g["surveys_received"]) for g in groups)
    good = sum(int(g.get("surveys_good", 0)) for g in groups)
    accepted = sum(int(g["accepted"]) for g in groups)
    fixed = sum(int(g["first_time_fixes"]) for g in groups)
    missing: list[str] = []
    fcr: float | None = None
    if groups and all("first_contact_resolution_pct" not in g for g in groups):
        missing.append(
            "first_contact_resolution_pct: the satisfaction read model does not measure "
            "first-contact resolution yet"
        )
    elif groups and all("first_contact_resolutions" in g and "resolved" in g for g in groups):
        fcr = percentage(
            sum(int(g["first_contact_resolutions"]) for g in groups),
            sum(int(g["resolved"]) for g in groups),
        )
    elif groups:
        missing.append(
            "first_contact_resolution_pct (overall): the satisfaction read model gives it per "
            "technician only"
        )
    return Satisfaction(
        csat_pct=percentage(good, received),
        first_time_fix_pct=percentage(fixed, accepted),
        first_contact_resolution_pct=fcr,
        surveys_expected=sum(int(g["surveys_expected"]) for g in groups),
        surveys_received=received,
        technicians=[
            TechnicianSatisfaction(
                technician_id=g["key"], csat_pct=g["csat_pct"],
                first_time_fix_pct=g["first_time_fix_pct"],
                first_contact_resolution_pct=g.get("first_contact_resolution_pct"),
                surveys_expected=g["surveys_expected"], surveys_received=g["surveys_received"],
            )
            for g in groups
            if int(g["surveys_expected"]) > 0  # technicians with completed orders
        ],
    ), missing


def _may_read(caller: Caller) -> None:
    if caller.role not in REPORT_READERS:
        raise NotPermitted(f"role {caller.role.value} may not read the reports; allowed: {WHO}")


def _totals(technicians: list[dict[str, Any]]) -> Totals:
    return Totals(
        orders_worked=sum(t["orders_worked"] for t in technicians),
        completed=sum(t["completed"] for t in technicians),
        late=sum(t["late"] for t in technicians),
        hours_on_site=round(sum(t["hours_on_site"] for t in technicians), 2),
    )


def _orders(counts: Mapping[str, int]) -> OrderCounts:
    return OrderCounts.model_validate({m: counts.get(m, 0) for m in ORDER_MEASURES})


def _complaints(counts: Mapping[str, int], categories: list[dict[str, Any]]) -> ComplaintCounts:
    return ComplaintCounts.model_validate(
        {**{m: counts.get(m, 0) for m in COMPLAINT_MEASURES}, "by_category": categories}
    )


def _kind_compliance(
    overall: list[sla.ComplianceGroup], targets: list[sla.ComplianceGroup]
) -> KindCompliance:
    def line(g: sla.ComplianceGroup | None, key: str | None) -> ComplianceLine:
        if g is None:
            return ComplianceLine(key=key, met=0, breached=0, open=0, rate=None)
        return ComplianceLine(key=key, met=g.met, breached=g.breached, open=g.open, rate=g.rate)

    return KindCompliance(
        overall=line(overall[0] if overall else None, "all"),
        targets=[line(g, g.key) for g in targets],
    )


# -- CSV -----------------------------------------------------------------------

LONG_HEADER = ["section", "key", "measure", "value"]
Figure = tuple[str, str | None, str, Any]


def _wants_csv(request: Request) -> bool:
    return CSV in request.headers.get("accept", "").lower()


def _csv(filename: str, header: list[str], rows: Iterable[Iterable[Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _long_rows(figures: Iterable[Figure]) -> Iterator[list[Any]]:
    for section, key, measure, value in figures:
        yield [section, key, measure, value]


def _technician_figures(technicians: list[TechnicianLine]) -> Iterator[Figure]:
    for t in technicians:
        for measure in ("orders_worked", "completed", "late", "hours_on_site"):
            yield "technicians", t.technician_id, measure, getattr(t, measure)


def _count_figures(report: WeeklyReport | MonthlyReport) -> Iterator[Figure]:
    for measure, value in report.orders.model_dump().items():
        yield "orders", None, measure, value
    for measure in COMPLAINT_MEASURES:
        yield "complaints", None, measure, getattr(report.complaints, measure)
    for c in report.complaints.by_category:
        for measure in COMPLAINT_MEASURES:
            yield "complaints_by_category", c.category, measure, getattr(c, measure)


def _weekly_figures(report: WeeklyReport) -> Iterator[Figure]:
    yield from _count_figures(report)
    f = report.feedback
    for measure in ("received", "csat_pct", "mean_csat", "praised"):
        yield "feedback", None, measure, getattr(f, measure)
    for dimension, value in f.dimensions.model_dump().items():
        yield "feedback", None, dimension, value
    for c in f.comments:
        yield "feedback_comments", c.work_order_id, "comment", c.comment
    yield from _technician_figures(report.technicians)


def _monthly_figures(report: MonthlyReport) -> Iterator[Figure]:
    yield from _count_figures(report)
    for section, kind in (("sla_work_orders", report.sla.work_orders),
                          ("sla_complaints", report.sla.complaints)):  # fmt: skip
        for line in (kind.overall, *kind.targets):
            for measure in ("met", "breached", "open", "rate"):
                yield section, line.key, measure, getattr(line, measure)
    s = report.satisfaction
    for measure in ("csat_pct", "first_time_fix_pct", "first_contact_resolution_pct",
                    "surveys_expected", "surveys_received"):  # fmt: skip
        yield "satisfaction", None, measure, getattr(s, measure)
    for t in s.technicians:
        for measure in ("csat_pct", "first_time_fix_pct", "first_contact_resolution_pct"):
            yield "satisfaction_by_technician", t.technician_id, measure, getattr(t, measure)
    for r in report.appraisal_ranking:
        yield "appraisal_ranking", r.staff_id, "points", r.points
        yield "appraisal_ranking", r.staff_id, "rank", r.rank
    for note in report.missing:
        yield "missing", None, "note", note
