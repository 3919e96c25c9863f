"""`POST /what-if`: the history replayed under a candidate policy, a report
answered side by side with the actual one (analysts and supervisors)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fieldledger.api.deps import CallerDep, LedgerDep, ProjectionsDep, SettingsDep
from fieldledger.api.problems import responses
from fieldledger.api.routes.sla import parse_instant
from fieldledger.application.fields import DayOrInstant
from fieldledger.application.ledger import Caller
from fieldledger.domain.errors import InvalidCommand, NotPermitted
from fieldledger.domain.facts import Role
from fieldledger.domain.policy import PolicyError, parse_policy
from fieldledger.projections.projector import Projections
from fieldledger.projections.what_if import Question, check_group_by, what_if
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(tags=["reports"])

ANALYSTS = frozenset({Role.ANALYST, Role.SUPERVISOR})


def require_analyst(caller: CallerDep) -> Caller:
    if caller.role not in ANALYSTS:
        raise NotPermitted(
            f"role {caller.role.value} may not run what-if replays; allowed: "
            + ", ".join(sorted(r.value for r in ANALYSTS))
        )
    return caller


def figure_text(value: object, *, signed: bool = False, empty: str = "-") -> str:
    """A what-if figure as shown in a table (CLI, console): a difference signed."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or empty
    if signed and isinstance(value, int | float) and value > 0:
        return f"+{value}"
    return str(value)


def period_bounds(from_: str, to: str, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of a what-if period: dates are whole local days (`to`
    included), instants as given; `to` after `from`; years 0001-9999."""
    bounds = []
    for name, value, end_of_day in (("from", from_, False), ("to", to, True)):
        bounds.append(parse_instant(name, value, timezone, end_of_day=end_of_day))
    start, end = bounds
    if end <= start:
        raise InvalidCommand("to", "must be after from")
    return start, end


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: str = Field(
        min_length=1, max_length=200_000,
        description="the candidate policy: a whole policy TOML document (as FIELDLEDGER_POLICY); "
        "one that does not parse or validate is refused (422 rule-violated, field `policy`)",
    )  # fmt: skip
    from_: DayOrInstant = Field(
        alias="from", description="start of the report period: a date (local) or an ISO instant"
    )
    to: DayOrInstant = Field(
        description="end: a date (included, local) or an ISO instant (excluded)"
    )
    report: Literal["sla", "appraisal", "satisfaction"] = "sla"
    group_by: (
        Literal["priority", "zone", "technician", "severity", "target", "kind", "staff",
                "service_type"] | None
    ) = Field(
        default=None,
        description="sla: priority (default), zone, technician, severity, target, kind; "
        "satisfaction: technician (default) or service_type; appraisal: staff",
    )  # fmt: skip


class WhatIfGroup(BaseModel):
    key: str | None
    actual: dict[str, Any] | None = Field(description="the live report's group (null: absent)")
    candidate: dict[str, Any] | None = Field(description="the same group under the candidate")
    difference: dict[str, Any] = Field(description="candidate - actual, per number")


class WhatIfAnswer(BaseModel):
    report: str
    from_: datetime = Field(alias="from")
    to: datetime
    group_by: str
    events_replayed: int
    actual_policy_version: str
    candidate_policy_version: str
    groups: list[WhatIfGroup]


@router.post(
    "/what-if",
    response_model=WhatIfAnswer,
    summary="Replay the history under a candidate policy: actual vs candidate per group",
    description=(
        "Replays every event into scratch tables with the candidate policy and answers "
        "the chosen report (`sla` compliance, `appraisal` points, `satisfaction` summary) "
        "for the period both ways. Live views are never touched; the scratch tables are "
        "dropped afterwards. Takes a replay of the whole store (minutes at millions of "
        "events). Analysts and supervisors. The body may be up to 4 MiB (other routes: "
        "64 KiB); larger answers 413."
    ),
    responses=responses(401, 403, 413, 422, 503),
)
def post_what_if(
    body: WhatIfRequest,
    projections: ProjectionsDep,
    ledger: LedgerDep,
    settings: SettingsDep,
    _caller: Annotated[Caller, Depends(require_analyst)],
) -> dict[str, Any]:
    return answer_what_if(body, projections, timezone=settings.timezone, now=ledger.clock())


def answer_what_if(
    body: WhatIfRequest, projections: Projections, *, timezone: str, now: datetime
) -> dict[str, Any]:
    """The what-if asked by `body` answered (the API's route and the console's
    form): InvalidCommand naming the field when the policy or period is bad."""
    try:
        candidate = parse_policy(body.policy)
    except PolicyError as e:
        raise InvalidCommand("policy", str(e)) from None
    start, end = period_bounds(body.from_, body.to, timezone)
    check_group_by(body.report, body.group_by)
    question = Question(body.report, start, end, body.group_by)
    return what_if(projections, candidate, question, now=now)
