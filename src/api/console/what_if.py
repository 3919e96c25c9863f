"""What-if on the operations page: a candidate policy replayed over the history
and a report for a period shown as it is, as it would have been, and the
difference, per group (the same answer as `POST /what-if`)."""

from __future__ import annotations

from typing import Any

from fieldledger.api.console.context import View
from fieldledger.api.console.i18n import N_, gettext_for
from fieldledger.api.routes.what_if import WhatIfRequest, answer_what_if, figure_text
from fieldledger.domain.errors import InvalidCommand
from fieldledger.projections.projector import ProjectionFailed
from fieldledger.projections.what_if import GROUPINGS, REPORTS
from pydantic import ValidationError

#: The form's fields, named as the page labels them (in error messages too).
FIELDS = {
    "policy": N_("Candidate policy (TOML)"),
    "from": N_("From"),
    "to": N_("To"),
    "report": N_("Report"),
    "group_by": N_("Group by"),
}
REPORT_LABELS = {
    "sla": N_("SLA compliance"),
    "appraisal": N_("Appraisal points"),
    "satisfaction": N_("Satisfaction"),
}
GROUP_LABELS = {
    "priority": N_("Priority"),
    "zone": N_("Zone"),
    "technician": N_("Technician"),
    "severity": N_("Severity"),
    "target": N_("Target"),
    "kind": N_("Kind"),
    "staff": N_("Staff"),
    "service_type": N_("Service type"),
}
MEASURE_LABELS = {
    "met": N_("met"),
    "breached": N_("breached"),
    "open": N_("open"),
    "rate": N_("compliance %"),
    "points": N_("Points"),
    "rank": N_("Rank"),
    "csat_pct": N_("CSAT %"),
    "first_time_fix_pct": N_("first-time fix %"),
    "below_threshold": N_("below threshold"),
    "surveys_received": N_("surveys received"),
    "complaints": N_("complaints"),
}
#: The form as first shown: the SLA report, grouped as the report does by default.
BLANK = {"policy": "", "from": "", "to": "", "report": "sla", "group_by": ""}


def what_if_form(values: dict[str, str] | None = None) -> dict[str, Any]:
    """What the operations template needs to show the what-if form."""
    return {
        "given": values or BLANK,
        "reports": [(r, REPORT_LABELS[r]) for r in REPORTS],
        "groupings": [
            (g, GROUP_LABELS[g]) for g in dict.fromkeys(g for r in REPORTS for g in GROUPINGS[r])
        ],
        "fields": FIELDS,
    }


def rows_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per group and measure: actual, candidate, difference (signed)."""
    rows = []
    for group in answer["groups"]:
        actual, candidate = group["actual"] or {}, group["candidate"] or {}
        for measure in sorted(set(actual) | set(candidate)):
            rows.append({
                "key": "—" if group["key"] is None else str(group["key"]),
                "measure": MEASURE_LABELS.get(measure, measure),
                "actual": figure_text(actual.get(measure), empty="—"),
                "candidate": figure_text(candidate.get(measure), empty="—"),
                "difference": figure_text(group["difference"].get(measure), signed=True),
            })  # fmt: skip
    return rows


def ask(page: View, values: dict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    """The form's what-if answered through the API's own function (never over
    HTTP): the answer, or the error to show under the form (nothing written)."""
    _ = gettext_for(page.language)
    try:
        body = WhatIfRequest.model_validate({**values, "group_by": values["group_by"] or None})
        answer = answer_what_if(
            body, page.projections, timezone=page.settings.timezone, now=page.ledger.clock()
        )
    except ValidationError as e:
        return None, "; ".join(
            f"{_(FIELDS.get(str(err['loc'][0]), str(err['loc'][0])))}: {err['msg']}"
            for err in e.errors()
        )
    except InvalidCommand as e:
        return None, f"{_(FIELDS.get(e.field, e.field))}: {e.message}"
    except ProjectionFailed as e:
        return None, str(e)
    return answer, None


def shown(answer: dict[str, Any]) -> dict[str, Any]:
    """What the operations template needs to show an answer."""
    return {
        "answer": answer,
        "rows": rows_of(answer),
        "report": REPORT_LABELS[answer["report"]],
        "group": GROUP_LABELS.get(answer["group_by"], answer["group_by"]),
    }
