"""A command's success answer as the gate and the routes send it (routes/commands.py):
the same body as FastAPI's encoding of `CommandAnswer`, the same headers as
Starlette's `Response` makes of them, in the same order."""

from __future__ import annotations

from uuid import uuid4

import pytest
from fieldledger.api.routes.commands import (
    CommandAnswer,
    FastCommand,
    answer_body,
    answer_headers,
    answer_parts,
)
from fieldledger.application.ledger import CommandResult
from pydantic import BaseModel
from starlette.responses import Response


def _never(*args: object) -> CommandResult:
    raise AssertionError("not run")


@pytest.mark.parametrize("state", ["booked", "in_service", "on-hold", "x1", "état", 'a"b',
                                   "a\\b", "line\nbreak", "空", ""])  # fmt: skip
@pytest.mark.parametrize("position", [None, 0, 123456789])
@pytest.mark.parametrize("replayed", [False, True])
@pytest.mark.parametrize("creates", [None, "/work-orders"])
def test_the_answer_is_starlettes_and_pydantics(
    state: str, position: int | None, replayed: bool, creates: str | None
) -> None:
    result = CommandResult(uuid4(), 7, state, position=position, replayed=replayed)
    command = FastCommand(frozenset(), BaseModel, _never, creates=creates)
    expected_body = CommandAnswer(id=result.id, version=7, state=state).model_dump_json().encode()
    assert answer_body(result) == expected_body
    headers = answer_headers(result)
    status = 200
    if creates is not None:
        status = 201
        headers = {"Location": f"{creates}/{result.id}", **headers}
    expected = Response(expected_body, status, headers=headers, media_type="application/json")
    assert answer_parts(command, result) == (status, expected.raw_headers, expected.body)
