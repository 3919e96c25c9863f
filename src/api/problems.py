"""Every error as RFC 9457 problem+json; no stack trace ever reaches a client."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fieldledger.application.ledger import Busy, IdempotencyKeyReused, NotFound, VersionMismatch
from fieldledger.domain.errors import CommandNotAllowed, InvalidCommand, NotPermitted
from fieldledger.domain.policy import PolicyError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("fieldledger.api")
PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Command not allowed",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}" if slug else "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, detail, slug="invalid-request", errors=errors)

    @app.exception_handler(InvalidCommand)
    async def invalid_command(_: Request, exc: InvalidCommand) -> JSONResponse:
        return problem(
            422, str(exc), slug="invalid-request",
            errors=[{"field": exc.field, "message": exc.message}],
        )  # fmt: skip

    @app.exception_handler(CommandNotAllowed)
    async def not_allowed(_: Request, exc: CommandNotAllowed) -> JSONResponse:
        return problem(409, str(exc), slug="command-not-allowed")

    @app.exception_handler(NotPermitted)
    async def forbidden(_: Request, exc: NotPermitted) -> JSONResponse:
        return problem(403, str(exc), slug="forbidden")

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc), slug="not-found")

    @app.exception_handler(VersionMismatch)
    async def stale(_: Request, exc: VersionMismatch) -> JSONResponse:
        return problem(
            412, str(exc), slug="version-mismatch", headers={"ETag": f'"{exc.current}"'}
        )

    @app.exception_handler(IdempotencyKeyReused)
    async def key_reused(_: Request, exc: IdempotencyKeyReused) -> JSONResponse:
        return problem(422, str(exc), slug="idempotency-key-reused", title="Idempotency key reused")

    @app.exception_handler(Busy)
    async def busy(_: Request, exc: Busy) -> JSONResponse:
        return problem(409, str(exc), slug="busy", title="Busy", headers={"Retry-After": "1"})

    @app.exception_handler(PolicyError)
    async def bad_policy(_: Request, exc: PolicyError) -> JSONResponse:
        return problem(422, str(exc), slug="invalid-policy")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "the server met an unexpected error; it has been logged")


#: For route declarations: what each error answer looks like in /openapi.json.
def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"model": Problem, "description": TITLES.get(s, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for s in statuses
    }  # fmt: skip
