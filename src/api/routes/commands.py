"""Command endpoints: parse the body, call the ledger, answer `{id, version, state}`.

One function builds every `POST /{resource}/{id}/{command}` route, so that each
command gets the same conventions (occurred_at, If-Match, Idempotency-Key,
ETag) and its own body model in /openapi.json.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint's
# annotations at definition time, and the body model is a closure variable.

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
from fieldledger.api.problems import responses
from fieldledger.application.commands import Command, CommandSet
from fieldledger.application.fields import RecordId
from fieldledger.application.ledger import CommandResult
from pydantic import BaseModel


class CommandAnswer(BaseModel):
    id: UUID
    version: int
    state: str


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


def add_command_route(router: APIRouter, command: Command[Any, Any]) -> None:
    """`POST {prefix}/{id}/{command.name}`: the command's body, its roles, its call."""
    body_model = command.body
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
        result = ledger.execute(command, caller, id, body, expected_version=expected_version,
                                idempotency=idempotency)  # fmt: skip
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
        result = ledger.execute(command, caller, id, given, expected_version=expected_version,
                                idempotency=idempotency)  # fmt: skip
        return answer(result, response)

    chosen = endpoint if needs_body else endpoint_optional_body
    chosen.__name__ = f"{command.name.replace('-', '_')}"
    router.add_api_route(
        f"/{{id}}/{command.name}",
        chosen,
        methods=["POST"],
        response_model=CommandAnswer,
        summary=command.summary,
        description=f"{command.summary}. Who: {command.who}.",
        dependencies=[Depends(permits(command))],
        responses=command_responses(200, 401, 403, 404, 409, 412, 413, 415, 422),
        operation_id=f"{router.prefix.strip('/').replace('-', '_')}_{chosen.__name__}",
    )


def add_command_routes(router: APIRouter, commands: CommandSet[Any]) -> None:
    """A route for each command of the set given over HTTP, in the set's order."""
    for command in commands.routed:
        add_command_route(router, command)
