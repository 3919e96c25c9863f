"""`/staff/{id}/...`: what a supervisor records about a staff member (contract
§11.1, §11.7): conduct, quality spot checks, retraining or reassignment,
joining, training. The staff member's record is opened by its first entry.

Each command is one body model, one roles set (`STAFF_COMMANDS`) and one
aggregate method (`STAFF_METHODS`), all routed by `_staff_route`.
"""

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Response
from fieldledger.api.deps import (
    CallerDep,
    ExpectedVersionDep,
    IdempotencyDep,
    LedgerDep,
    permits,
)
from fieldledger.api.fields import Code, Day, Flag, Minutes, Note, Points, StaffId, Text
from fieldledger.api.routes.commands import CommandAnswer, CommandBody, answer, command_responses
from fieldledger.domain.permissions import STAFF_COMMANDS
from pydantic import Field

router = APIRouter(prefix="/staff", tags=["staff"])


class Conduct(CommandBody):
    kind: Annotated[Code, Field(examples=["personal_call"])]
    #: Within the kind's range; may be left out for a kind with a single value.
    points: Points | None = Field(
        default=None, description="within the kind's range; computed for late_for_shift"
    )
    minutes: Minutes | None = Field(
        default=None, description="late_for_shift only: minutes late (over 10: an absence)"
    )
    discipline: Literal["warning", "demerit", "dismissal"] | None = Field(
        default=None, description="quarrel only: the discipline the supervisor decides"
    )
    extra_points: Points | None = Field(
        default=None,
        description="the 3rd/4th record of a laddered kind in a month: the further points, "
        "within the step's range (default the mildest)",
    )
    note: Note = ""


class QualityCheck(CommandBody):
    passed: Flag
    notes: Note = ""


class Retrained(CommandBody):
    note: Text = Field(description="what retraining was done")


class Reassigned(CommandBody):
    note: Text = Field(description="the new post, and why")


class Joined(CommandBody):
    on: Day = Field(description="the day the staff member took up the post (local date)")


class Training(CommandBody):
    kind: Literal["induction", "monthly", "fire_safety"]
    held_on: Day
    attended: Flag
    disciplined: Flag = Field(default=True, description="false: broke class discipline")
    form_completed: Flag = Field(default=True, description="false: feedback form not done")
    test_passed: Flag | None = Field(default=None, description="null: no test held")
    deadline: Day | None = Field(
        default=None,
        description="the 3rd failed test of a kind: the day by which it must be passed "
        "(default: the policy's retest_within_days after the test)",
    )

    def to_args(self) -> dict[str, Any]:
        args = super().to_args()
        args["training_kind"] = args.pop("kind")
        return args


def _staff_route(
    command: str,
    body_model: type[CommandBody],
    summary: str,
    description: str,
) -> None:
    roles = ", ".join(sorted(r.value for r in STAFF_COMMANDS[command]))

    def endpoint(
        staff_id: Annotated[StaffId, Path()],
        body: body_model,  # type: ignore[valid-type]
        response: Response,
        ledger: LedgerDep,
        caller: CallerDep,
        expected_version: ExpectedVersionDep,
        idempotency: IdempotencyDep,
    ) -> CommandAnswer:
        given: CommandBody = body
        args: Mapping[str, Any] = given.to_args()
        result = ledger.staff_command(
            caller, staff_id, command, args, occurred_at=given.occurred_at,
            expected_version=expected_version, idempotency=idempotency,
        )  # fmt: skip
        return answer(result, response)

    endpoint.__name__ = f"staff_{command.replace('-', '_')}"
    router.add_api_route(
        f"/{{staff_id}}/{command}",
        endpoint,
        methods=["POST"],
        response_model=CommandAnswer,
        summary=summary,
        description=f"{description} Who: {roles}. If-Match takes the ETag of the previous "
        'answer about this staff member ("0" before the first entry).',
        dependencies=[Depends(permits(STAFF_COMMANDS, command))],
        responses=command_responses(200, 401, 403, 409, 412, 413, 415, 422),
        operation_id=f"staff_{command.replace('-', '_')}",
    )


_staff_route(
    "conduct", Conduct, "Record conduct (points within the kind's range)",
    "Record a staff member's conduct (contract §11.1). `kind` is one of the policy's "
    "conduct kinds; `points` must lie within the kind's range and may be left out for a "
    "kind with a single value; `minutes` for `late_for_shift` (over 10: recorded as an "
    "`absence`); `discipline` for `quarrel`; `extra_points` for the 3rd/4th record of a "
    "laddered kind in a month.",
)  # fmt: skip
_staff_route(
    "quality-checks", QualityCheck, "Record a quality spot check",
    "A monthly random check of the staff member's work (004 4.1.1); a failed one is a "
    "service fault (004 4.1.3).",
)  # fmt: skip
_staff_route(
    "retrained", Retrained, "Record retraining: the service-fault count starts again",
    "Clears `retraining_required` (004 4.1.3).",
)  # fmt: skip
_staff_route(
    "reassigned", Reassigned, "Record a reassignment: the service-fault count starts again",
    "Clears `retraining_required` (004 4.1.3: 調崗).",
)  # fmt: skip
_staff_route(
    "joined", Joined, "Record the day the staff member joined",
    "Training deadlines run from it (001 第3篇); recorded once.",
)  # fmt: skip
_staff_route(
    "training", Training, "Record a training session: attendance, discipline, form, test",
    "Points in the month held (001 第3篇 6.0); a failed test counts per kind since the "
    "last pass, and the 3rd sets a deadline.",
)  # fmt: skip
