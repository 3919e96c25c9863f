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

from fastapi import APIRouter, Depends, Response
from fieldledger.api.deps import (
    CallerDep,
    ExpectedVersionDep,
    IdempotencyDep,
    LedgerDep,
    permits,
)
from fieldledger.api.fields import Instant, RecordId
from fieldledger.api.problems import responses
from fieldledger.application.ledger import Caller, CommandResult, FieldLedger, Idempotency
from fieldledger.domain.facts import Role
from pydantic import BaseModel, ConfigDict


class CommandBody(BaseModel):
    """Every command may say when it happened in the field."""

    model_config = ConfigDict(extra="forbid")

    occurred_at: Instant | None = None

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


#: What a command's success answer carries besides its body, for /openapi.json.
ANSWER_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {"description": 'the new version, "N": send it as If-Match with the next command',
             "schema": {"type": "string"}},
    "X-Position": {"description": "store position of the last event written: a "
                   "read-your-writes token for read models", "schema": {"type": "integer"}},
    "Idempotent-Replayed": {"description": "`true` when this is the stored answer to an "
                            "earlier request with the same Idempotency-Key",
                            "schema": {"type": "string", "enum": ["true"]}},
}  # fmt: skip
#: The ETag of a query's answer.
READ_ETAG: dict[str, Any] = {
    "description": 'the version answered, "N": send it as If-Match with a command',
    "schema": {"type": "string"},
}
CREATED_HEADERS: dict[str, dict[str, Any]] = {
    "Location": {"description": "the new resource", "schema": {"type": "string"}},
    **ANSWER_HEADERS,
}


def command_responses(status: int, *errors: int) -> dict[int | str, dict[str, Any]]:
    """The success answer (with its headers) and the error answers of a command."""
    headers = CREATED_HEADERS if status == 201 else ANSWER_HEADERS
    return {status: {"headers": headers}, **responses(*errors)}


def add_command_route(
    router: APIRouter,
    *,
    command: str,
    body_model: type[CommandBody],
    run: Runner,
    summary: str,
    who: frozenset[Role],
    table: dict[str, frozenset[Role]],
) -> None:
    # A command whose body has required fields needs a body; one without may be
    # sent with none at all (or `{}`, or `{"occurred_at": ...}`).
    needs_body = any(f.is_required() for f in body_model.model_fields.values())

    def endpoint(
        id: RecordId,
        response: Response,
        ledger: LedgerDep,
        caller: CallerDep,
        expected_version: ExpectedVersionDep,
        idempotency: IdempotencyDep,
        body: body_model,  # type: ignore[valid-type]
    ) -> CommandAnswer:
        given: CommandBody = body
        result = run(
            ledger, caller, id, command, given.to_args(), given.occurred_at,
            expected_version, idempotency,
        )  # fmt: skip
        return answer(result, response)

    def endpoint_optional_body(
        id: RecordId,
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

    chosen = endpoint if needs_body else endpoint_optional_body
    chosen.__name__ = f"{command.replace('-', '_')}"
    roles = ", ".join(sorted(r.value for r in who))
    router.add_api_route(
        f"/{{id}}/{command}",
        chosen,
        methods=["POST"],
        response_model=CommandAnswer,
        summary=summary,
        description=f"{summary}. Who: {roles}.",
        dependencies=[Depends(permits(table, command))],
        responses=command_responses(200, 401, 403, 404, 409, 412, 413, 415, 422),
        operation_id=f"{router.prefix.strip('/').replace('-', '_')}_{command.replace('-', '_')}",
    )
