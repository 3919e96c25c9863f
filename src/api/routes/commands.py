"""Command endpoints: parse the body, call the ledger, answer `{id, version, state}`.

One function builds every `POST /{resource}/{id}/{command}` route, so that each
command gets the same conventions (occurred_at, If-Match, Idempotency-Key,
ETag) and its own body model in /openapi.json.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint's
# annotations at definition time, and the body model is a closure variable.

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response
from fieldledger.api.deps import CallerDep, ExpectedVersionDep, IdempotencyDep, LedgerDep
from fieldledger.api.problems import responses
from fieldledger.application.ledger import Caller, CommandResult, FieldLedger, Idempotency
from pydantic import AwareDatetime, BaseModel, ConfigDict


class CommandBody(BaseModel):
    """Every command may say when it happened in the field."""

    model_config = ConfigDict(extra="forbid")

    occurred_at: AwareDatetime | None = None

    def to_args(self) -> dict[str, Any]:
        """The domain command's arguments."""
        return self.model_dump(exclude={"occurred_at"})


class CommandAnswer(BaseModel):
    id: UUID
    version: int
    state: str


Runner = Callable[
    [FieldLedger, Caller, UUID, str, Mapping[str, Any], datetime | None, int | None,
     Idempotency | None],
    CommandResult,
]  # fmt: skip


def answer(result: CommandResult, response: Response) -> CommandAnswer:
    response.headers["ETag"] = f'"{result.version}"'
    if result.position is not None:
        # A read-your-writes token: read models can be asked to catch up to it.
        response.headers["X-Position"] = str(result.position)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return CommandAnswer(id=result.id, version=result.version, state=result.state)


def add_command_route(
    router: APIRouter,
    *,
    command: str,
    body_model: type[CommandBody],
    run: Runner,
    summary: str,
    who: str,
) -> None:
    def endpoint(
        id: UUID,
        response: Response,
        ledger: LedgerDep,
        caller: CallerDep,
        expected_version: ExpectedVersionDep,
        idempotency: IdempotencyDep,
        body: body_model | None = None,  # type: ignore[valid-type]
    ) -> CommandAnswer:
        given = body if body is not None else body_model()
        result = run(
            ledger, caller, id, command, given.to_args(), given.occurred_at,
            expected_version, idempotency,
        )  # fmt: skip
        return answer(result, response)

    endpoint.__name__ = f"{command.replace('-', '_')}"
    router.add_api_route(
        f"/{{id}}/{command}",
        endpoint,
        methods=["POST"],
        response_model=CommandAnswer,
        summary=summary,
        description=f"{summary}. Who: {who}.",
        responses=responses(401, 403, 404, 409, 412, 413, 422),
        operation_id=f"{router.prefix.strip('/').replace('-', '_')}_{command.replace('-', '_')}",
    )
