"""What-if policy replay: the history replayed under a candidate policy, and a
report answered side by side with the actual one.

The candidate view is built from the first event into scratch tables (a scratch
generation: never tracked, never read by anyone else, dropped afterwards) by the
read model configured with the candidate policy; the actual answer comes from
the live view. Per group: actual, candidate, and the difference (candidate -
actual) of every number.

- `sla`: compliance of the targets whose clock started in [from, to), grouped
  (default by priority). Actual targets were set under the policy each order or
  complaint was booked under; candidate targets all under the candidate policy.
- `appraisal`: every staff member's points over the months from the month of
  `from` through the month of `to`, and their rank.
- `satisfaction`: the satisfaction summary of [from, to) per technician (or
  service type): CSAT shares, thresholds missed, first-time fixes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.periods import Period, add_months, local_date
from fieldledger.domain.policy import Policy
from fieldledger.projections.appraisal import AppraisalView
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings
from fieldledger.projections.satisfaction import SatisfactionView
from fieldledger.projections.sla import GroupBy as SlaGroupBy
from fieldledger.projections.sla import SlaView, compliance

Report = Literal["sla", "appraisal", "satisfaction"]
REPORTS: tuple[Report, ...] = ("sla", "appraisal", "satisfaction")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Question:
    report: Report
    start: datetime
    end: datetime
    #: sla: priority (default), zone, technician, severity, target, kind;
    #: satisfaction: technician (default) or service_type; appraisal: staff.
    group_by: str | None = None


GROUPINGS: dict[Report, tuple[str, ...]] = {
    "sla": ("priority", "zone", "technician", "severity", "target", "kind"),
    "appraisal": ("staff",),
    "satisfaction": ("technician", "service_type"),
}


def check_group_by(report: Report, group_by: str | None) -> None:
    """A grouping the report knows, or InvalidCommand naming the allowed ones."""
    if group_by is not None and group_by not in GROUPINGS[report]:
        raise InvalidCommand(
            "group_by", f"{report} groups by one of: {', '.join(GROUPINGS[report])}"
        )


def what_if(
    projections: Projections,
    candidate: Policy,
    question: Question,
    *,
    now: datetime,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Replay the store under `candidate` and answer `question` both ways."""
    check_group_by(question.report, question.group_by)
    name = {"sla": "sla", "appraisal": "appraisal", "satisfaction": "satisfaction"}[question.report]
    live = projections.models[name]
    settings = replace(live.settings, policy=candidate)
    head = projections.head()
    answer: Callable[[Any, Any, Any], list[dict[str, Any]]]
    if question.report == "sla":
        group_by = question.group_by or "priority"
        model: Any = SlaView(settings, policy_override=candidate)
        answer = _sla_answer(question, group_by, now)
    elif question.report == "appraisal":
        group_by = "staff"
        model = AppraisalView(settings, policy_override=candidate)
        answer = _appraisal_answer(_months(question, settings))
    else:
        group_by = question.group_by or "technician"
        model = SatisfactionView(settings)
        answer = _satisfaction_answer(question, group_by)
    # The actual side is the live view, first brought up to the head replayed.
    projections.wait_for(name, head)
    with projections.reading(name) as (tx, tables):
        actual = answer(tx, tables, live)
    with projections.scratch(name, head, model=model, progress=progress) as (tx, tables):
        candidate_groups = answer(tx, tables, model)
    return {
        "report": question.report,
        "from": question.start,
        "to": question.end,
        "group_by": group_by,
        "events_replayed": head,
        "actual_policy_version": live.settings.policy.version,
        "candidate_policy_version": candidate.version,
        "groups": _side_by_side(actual, candidate_groups),
    }


def _sla_answer(
    question: Question, group_by: str, now: datetime
) -> Callable[[Any, Any, Any], list[dict[str, Any]]]:
    def answer(tx: Any, tables: Any, _model: Any) -> list[dict[str, Any]]:
        groups = compliance(
            tx, tables, start=question.start, end=question.end, now=now,
            group_by=_sla_group(group_by),
        )  # fmt: skip
        return [
            {"key": g.key, "met": g.met, "breached": g.breached, "open": g.open, "rate": g.rate}
            for g in groups
        ]

    return answer


def _sla_group(group_by: str) -> SlaGroupBy:
    allowed: dict[str, SlaGroupBy] = {
        "priority": "priority", "zone": "zone", "technician": "technician",
        "severity": "severity", "target": "target", "kind": "kind",
    }  # fmt: skip
    return allowed[group_by]


def _appraisal_answer(period: Period) -> Callable[[Any, Any, Any], list[dict[str, Any]]]:
    def answer(tx: Any, tables: Any, model: Any) -> list[dict[str, Any]]:
        return [
            {"key": r["staff_id"], "points": r["points"], "rank": r["rank"]}
            for r in model.ranking(tx, tables, period)
        ]

    return answer


def _satisfaction_answer(
    question: Question, group_by: str
) -> Callable[[Any, Any, Any], list[dict[str, Any]]]:
    def answer(tx: Any, tables: Any, model: Any) -> list[dict[str, Any]]:
        groups = model.summary(
            tx, tables, start=question.start, end=question.end, group_by=group_by
        )
        return [
            {
                "key": g["key"],
                "csat_pct": g["csat_pct"],
                "first_time_fix_pct": g["first_time_fix_pct"],
                "below_threshold": g["below_threshold"],
                "surveys_received": g["surveys_received"],
                "complaints": g["complaints"],
            }
            for g in groups
        ]

    return answer


def _months(question: Question, settings: ProjectionSettings) -> Period:
    """The months from that of `from` through that of the last instant before `to`."""
    first = local_date(question.start, settings.timezone).replace(day=1)
    last = local_date(question.end - timedelta(microseconds=1), settings.timezone)
    months: list[str] = []
    day = first
    while day <= last:
        months.append(f"{day.year:04d}-{day.month:02d}")
        day = add_months(day, 1)
    name = months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"
    return Period(name, tuple(months))


def _side_by_side(
    actual: Sequence[dict[str, Any]], candidate: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per group key (every key of either side): both answers and the difference
    of their numbers (candidate - actual; None where either side has none)."""
    by_key_actual = {g["key"]: g for g in actual}
    by_key_candidate = {g["key"]: g for g in candidate}
    keys = list(by_key_actual) + [k for k in by_key_candidate if k not in by_key_actual]
    keys.sort(key=lambda k: (k is None, str(k)))
    rows = []
    for key in keys:
        a = {k: v for k, v in by_key_actual.get(key, {}).items() if k != "key"}
        c = {k: v for k, v in by_key_candidate.get(key, {}).items() if k != "key"}
        difference: dict[str, int | float | None] = {}
        for field in sorted(set(a) | set(c)):
            x, y = a.get(field), c.get(field)
            if isinstance(x, int | float) and isinstance(y, int | float):
                difference[field] = _number(Decimal(str(y)) - Decimal(str(x)))
            elif not isinstance(x, list | str) and not isinstance(y, list | str):
                difference[field] = None
        rows.append(
            {"key": key, "actual": a or None, "candidate": c or None, "difference": difference}
        )
    return rows


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)
