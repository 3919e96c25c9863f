"""Refuse a request body that is not JSON before any route parses it.

Each way a body can be malformed has its own problem type, so that a client
can tell them apart (`src/api/problems.py`):

- a `Content-Type` other than `application/json` (or `application/*+json`), or
  a charset other than UTF-8: 415 `/problems/unsupported-media-type`;
- bytes that are not UTF-8: 422 `/problems/invalid-encoding`;
- text that is not JSON (`NaN` and `Infinity` included): 422
  `/problems/malformed-json`;
- arrays and objects nested deeper than `MAX_DEPTH`: 422
  `/problems/too-deeply-nested`.

A request without a body, or without a `Content-Type`, passes (a body without a
type is read as JSON). `BodyLimit` calls `check_body` once it has read the
whole body (at most 64 KiB), before it hands the same bytes on to the route.
"""

from __future__ import annotations

import json
from typing import Any

from fieldledger.api.problems import PROBLEM_JSON, problem_body
from starlette.types import Message, Receive, Send

#: Deepest nesting of arrays and objects a body may have (no command needs more than 4).
MAX_DEPTH = 32
#: Methods whose body a route may read.
WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotJson(Exception):
    def __init__(self, status: int, slug: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.slug = slug
        self.message = message


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _depth(value: Any) -> int:
    """The nesting depth of a parsed JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item if isinstance(child, dict | list))
    return deepest


#: Where `BodyLimit` leaves a checked body and its parsed JSON in the request's
#: scope, so that a command route need not parse it again (routes/commands.py).
PARSED_BODY = "fieldledger.parsed_body"


def check_body(content_type: str | None, body: bytes) -> Any:
    """The parsed JSON of `body` (None when it is empty); raise `NotJson` unless
    `body` is empty or UTF-8 JSON of the right type."""
    if not body.strip():
        return None
    if content_type is not None:
        media, *params = (part.strip().lower() for part in content_type.split(";"))
        kind, _, subtype = media.partition("/")
        if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
            raise NotJson(415, "unsupported-media-type",
                          f"a body must be application/json, not {media or 'empty'}")  # fmt: skip
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
                raise NotJson(415, "unsupported-media-type", "JSON is UTF-8: charset=utf-8")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotJson(422, "invalid-encoding", f"not UTF-8 at byte {e.start}") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise NotJson(422, "too-deeply-nested", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise NotJson(422, "malformed-json", f"not valid JSON: {e}") from None
    if _depth(value) > MAX_DEPTH:
        raise NotJson(422, "too-deeply-nested", f"nested deeper than {MAX_DEPTH} levels")
    return value


async def refuse(send: Send, error: NotJson) -> None:
    field = "Content-Type" if error.status == 415 else "body"
    content = problem_body(
        error.status, error.message, slug=error.slug,
        errors=[{"field": field, "message": error.message}],
    )  # fmt: skip
    body = json.dumps(content).encode()
    await send({
        "type": "http.response.start",
        "status": error.status,
        "headers": [(b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def replayed(body: bytes, receive: Receive) -> Receive:
    """`receive`, with the body already read given first (then it waits for
    `http.disconnect`, as a server would)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
