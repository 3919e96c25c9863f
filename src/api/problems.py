"""Every error as RFC 9457 problem+json; no stack trace ever reaches a client.

Each kind of problem has a stable `type`, `/problems/{slug}` (a URI reference
resolved against the service's own address), and `GET /problems/{slug}` says
what it means. Errors that are plain HTTP (an unknown route, a wrong method) use
the same types where one fits, else `about:blank` with the status's phrase.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fieldledger.application.ledger import Busy, IdempotencyKeyReused, NotFound, VersionMismatch
from fieldledger.domain.errors import CommandNotAllowed, InvalidCommand, NotPermitted
from fieldledger.domain.policy import PolicyError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("fieldledger.api")
PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the extension members fieldledger uses."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    #: 422: each offending field (`customer.phone`, `reasons[0]`, `If-Match`, ...).
    errors: list[FieldError] | None = None
    #: 409 command-not-allowed: the aggregate's state and the refused command.
    state: str | None = None
    command: str | None = None
    #: 412 version-mismatch: what If-Match said and what the version is.
    expected_version: int | None = None
    current_version: int | None = None


class InvalidRequest(Exception):
    """A request that does not match /openapi.json, found outside pydantic (a
    header read by hand): 422 `/problems/invalid-request` naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ProblemType:
    status: int
    title: str
    description: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    "invalid-request": ProblemType(
        422, "Invalid request",
        "The body, a path or query parameter or a header does not match /openapi.json "
        "(a type, a bound, a pattern, a control character, an unknown field). `errors` "
        "names each offending field; nothing was written.",
    ),
    "rule-violated": ProblemType(
        422, "Rule violated",
        "The request matches /openapi.json but breaks a rule the schema cannot state: "
        "`occurred_at` outside its bounds (FIELDLEDGER_MAX_BACKDATE before the time of "
        "recording, 2 minutes after it, or before the record's previous event), an "
        "order between two fields, an id that must name an existing record, a value "
        "the policy does not allow. `errors` names each field; nothing was written.",
    ),
    "malformed-json": ProblemType(
        422, "Malformed JSON",
        "The request body is not JSON (RFC 8259: `NaN` and `Infinity` are not JSON "
        "either). `errors` says where parsing stopped; nothing was written.",
    ),
    "invalid-encoding": ProblemType(
        422, "Invalid encoding",
        "The request body is not valid UTF-8, the only encoding of JSON (RFC 8259). "
        "`errors` gives the offset of the first bad byte; nothing was written.",
    ),
    "too-deeply-nested": ProblemType(
        422, "JSON nested too deeply",
        "The request body nests arrays and objects deeper than 32 levels; no command "
        "needs more than 4. Nothing was written.",
    ),
    "unsupported-media-type": ProblemType(
        415, "Unsupported media type",
        "A request body must be `Content-Type: application/json` (charset utf-8 if one "
        "is given). Nothing was written.",
    ),
    "idempotency-key-reused": ProblemType(
        422, "Idempotency key reused",
        "The Idempotency-Key was used before by the same actor for another request "
        "(another path or body). Nothing was written; use a fresh key.",
    ),
    "invalid-policy": ProblemType(
        422, "Invalid policy", "The policy given is not valid; `detail` says where.",
    ),
    "unauthenticated": ProblemType(
        401, "Not authenticated",
        "Send `Authorization: Bearer TOKEN` with a token from `fieldledger token issue`.",
    ),
    "forbidden": ProblemType(
        403, "Forbidden",
        "The token's role may not give this command, or a technician acted on a work "
        "order not assigned to them. Nothing was written.",
    ),
    "not-found": ProblemType(
        404, "Not found", "No resource at this address (an unknown or malformed id)."
    ),
    "method-not-allowed": ProblemType(
        405, "Method not allowed", "The resource does not answer this HTTP method."
    ),
    "command-not-allowed": ProblemType(
        409, "Command not allowed",
        "The command is not allowed in the aggregate's current state; `state` and "
        "`command` say which. Nothing was written.",
    ),
    "busy": ProblemType(
        409, "Busy",
        "Other writers changed the same record at the same moment, several times in a "
        "row, and the command could not be applied to a settled state. Nothing was "
        "written; retry after `Retry-After` seconds.",
    ),
    "version-mismatch": ProblemType(
        412, "Precondition failed",
        "If-Match named a version that is not the current one (the `ETag` header of "
        "the answer has the current one). Nothing was written: read, decide, retry.",
    ),
    "body-too-large": ProblemType(
        413, "Request body too large", "Request bodies are limited to 64 KiB."
    ),
    "unavailable": ProblemType(
        503, "Service unavailable",
        "The read model this answer needs is stopped at an event it could not project "
        "(`GET /projections` shows which and why); commands and the records' own queries "
        "still work.",
    ),
    "internal-error": ProblemType(
        500, "Internal error",
        "The server met an unexpected error; it has been logged. No details are given "
        "to clients.",
    ),
}  # fmt: skip

TITLES = {
    401: "Not authenticated (missing or unknown token)",
    403: "Forbidden (role, or a work order not assigned to the technician)",
    404: "Not found (unknown or malformed id)",
    409: "Command not allowed in the current state, or busy",
    412: "Precondition failed (If-Match names a stale version)",
    413: "Request body too large (over 64 KiB)",
    415: "Unsupported media type (a body must be application/json)",
    422: "Invalid request, malformed body, or a rule violated (the field is named)",
    503: "A read model the answer needs is stopped",
    500: "Internal error (no details given)",
}


#: For route declarations: what each error answer looks like in /openapi.json.
def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"model": Problem, "description": TITLES.get(s, HTTPStatus(s).phrase),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for s in statuses
    }  # fmt: skip


#: Plain HTTP errors that have a problem type of their own.
STATUS_TYPES = {401: "unauthenticated", 403: "forbidden", 404: "not-found",
                405: "method-not-allowed", 413: "body-too-large", 415: "unsupported-media-type",
                422: "invalid-request", 500: "internal-error", 503: "unavailable"}  # fmt: skip


def problem_body(
    status: int, detail: str, *, slug: str | None = None, **extensions: Any
) -> dict[str, Any]:
    if slug is not None:
        kind = PROBLEM_TYPES[slug]
        type_, title = f"/problems/{slug}", kind.title
    else:
        type_, title = "about:blank", HTTPStatus(status).phrase
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extensions.items() if v is not None})
    return body


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, slug=slug, **extensions),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


#: Validation errors of a path parameter that mean "no such record" (404).
NOT_AN_ID = frozenset({"uuid_parsing", "uuid_type", "uuid_version"})


def _field(error: dict[str, Any]) -> str:
    """`customer.name`, `reasons[0]`, `as_of`, `If-Match`: the field as the client wrote it."""
    if error.get("type") == "json_invalid":
        return "body"
    name = ""
    for part in error.get("loc", ()):
        if part in ("body", "query", "path", "header", "cookie") and not name:
            continue
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error")
        return f"not valid JSON: {reason}" if reason else "not valid JSON"
    return message


problem_router = APIRouter(tags=["problems"])


class ProblemTypeView(BaseModel):
    type: str
    title: str
    status: int
    description: str


@problem_router.get(
    "/problems/{slug}",
    response_model=ProblemTypeView,
    summary="What a problem `type` means (no token needed)",
    responses=responses(404),
)
def problem_type(slug: str) -> ProblemTypeView:
    kind = PROBLEM_TYPES.get(slug)
    if kind is None:
        raise StarletteHTTPException(404, f"no problem type {slug!r}")
    return ProblemTypeView(
        type=f"/problems/{slug}", title=kind.title, status=kind.status,
        description=kind.description,
    )  # fmt: skip


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        if any(tuple(e.get("loc", ()))[:1] == ("path",) and e.get("type") in NOT_AN_ID
               for e in raw):  # fmt: skip
            # A malformed record id names no resource, like an unknown one.
            return problem(404, f"no resource at {request.url.path}", slug="not-found")
        errors = [{"field": _field(e), "message": _message(e)} for e in raw]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, detail, slug="invalid-request", errors=errors)

    @app.exception_handler(InvalidCommand)
    async def invalid_command(_: Request, exc: InvalidCommand) -> JSONResponse:
        return problem(
            422, str(exc), slug="rule-violated",
            errors=[{"field": exc.field, "message": exc.message}],
        )  # fmt: skip

    @app.exception_handler(InvalidRequest)
    async def invalid_request_field(_: Request, exc: InvalidRequest) -> JSONResponse:
        return problem(
            422, str(exc), slug="invalid-request",
            errors=[{"field": exc.field, "message": exc.message}],
        )  # fmt: skip

    @app.exception_handler(CommandNotAllowed)
    async def not_allowed(_: Request, exc: CommandNotAllowed) -> JSONResponse:
        return problem(
            409, str(exc), slug="command-not-allowed", state=exc.state, command=exc.command
        )

    @app.exception_handler(NotPermitted)
    async def forbidden(_: Request, exc: NotPermitted) -> JSONResponse:
        return problem(403, str(exc), slug="forbidden")

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc), slug="not-found")

    @app.exception_handler(VersionMismatch)
    async def stale(_: Request, exc: VersionMismatch) -> JSONResponse:
        return problem(
            412, str(exc), slug="version-mismatch", headers={"ETag": f'"{exc.current}"'},
            expected_version=exc.expected, current_version=exc.current,
        )  # fmt: skip

    @app.exception_handler(IdempotencyKeyReused)
    async def key_reused(_: Request, exc: IdempotencyKeyReused) -> JSONResponse:
        return problem(
            422, str(exc), slug="idempotency-key-reused",
            errors=[{"field": "Idempotency-Key", "message": str(exc)}],
        )  # fmt: skip

    @app.exception_handler(Busy)
    async def busy(_: Request, exc: Busy) -> JSONResponse:
        return problem(409, str(exc), slug="busy", headers={"Retry-After": "1"})

    @app.exception_handler(PolicyError)
    async def bad_policy(_: Request, exc: PolicyError) -> JSONResponse:
        return problem(422, str(exc), slug="invalid-policy")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem(
            exc.status_code, str(exc.detail), slug=STATUS_TYPES.get(exc.status_code),
            headers=headers,
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500, "the server met an unexpected error; it has been logged", slug="internal-error"
        )

    app.include_router(problem_router)
    app.openapi = _problem_only_openapi(app)  # type: ignore[method-assign]


def _problem_only_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """/openapi.json as FastAPI builds it, with errors said to be problem+json only.

    FastAPI lists an error's model under `application/json` as well; our errors
    are never that. Every operation may also answer 500.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for parameter in operation.get("parameters", []):
                    _not_null(parameter)
                answers = operation.setdefault("responses", {})
                answers.setdefault("500", _problem_response(500))
                for status in [s for s in answers if s[:1] in "45"]:
                    content = answers[status].get("content", {})
                    if PROBLEM_JSON in content:
                        content.pop("application/json", None)
                        continue
                    # FastAPI's own 422 (HTTPValidationError): ours is problem+json,
                    # and a route with only path parameters answers 404 instead.
                    only_path = "requestBody" not in operation and all(
                        p.get("in") == "path" for p in operation.get("parameters", [])
                    )
                    if status == "422" and only_path:
                        del answers[status]
                    else:
                        answers[status] = _problem_response(int(status))
        schemas = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        return schema

    return openapi


def _not_null(parameter: dict[str, Any]) -> None:
    """A path, query or header parameter is a string or absent, never JSON null:
    `X | None = None` in a route means "may be left out", which `required: false`
    already says. (FastAPI writes it as `anyOf: [X, null]`.)"""
    schema = parameter.get("schema", {})
    options = schema.get("anyOf")
    if not options:
        return
    kept = [o for o in options if o.get("type") != "null"]
    if len(kept) == len(options):
        return
    del schema["anyOf"]
    if len(kept) == 1:
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": TITLES.get(status, HTTPStatus(status).phrase),
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
