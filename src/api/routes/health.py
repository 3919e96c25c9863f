"""`/healthz` (liveness, with what is wrong) and `/readyz` (readiness): no token.

- `/healthz` answers 200 while the process serves: `status` is `ok`, or
  `degraded` with `reasons` (a read model stopped at an event it could not
  project, or stale after an upgrade), plus what it knows of its calendar.
- `/readyz` answers 503 while any read model is stopped (its reads would
  answer 503 or stale data), else 200: a load balancer sends traffic elsewhere.
"""

import json
import threading
import time
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fieldledger.api.problems import problem, responses
from fieldledger.projections.projector import Projections
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded"]
    #: What is wrong, one line each (empty when ok).
    reasons: list[str]


class Ready(BaseModel):
    status: Literal["ready"]


def troubles(projections: Projections) -> tuple[list[str], list[str]]:
    """(read models stopped at an error, read models stale), one line each."""
    return _troubles(projections, projections.generations.rows())


def _troubles(projections: Projections, rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    stopped: list[str] = []
    stale: list[str] = []
    live = {r["name"]: r for r in rows if r["state"] == "live"}
    for name, model in projections.models.items():
        row = live.get(name)
        if row is None:
            continue
        if row["error"] is not None:
            stopped.append(f"read model {name} is stopped at position {row['error_position']}: "
                           f"{row['error']}")  # fmt: skip
        elif int(row["schema_version"]) != model.schema_version:
            stale.append(f"read model {name} is stale: its code changed; rebuild it")
    return stopped, stale


class GenerationRows:
    """The read models' generation rows as /healthz and /readyz see them: read
    at most once per `SECONDS` (a probe every few ms costs no query each), and
    at once after this process changed one (a projection stopped here). A read
    model stopped by another process (`fieldledger projections run`) shows
    within `SECONDS`."""

    SECONDS = 1.0

    def __init__(self, projections: Projections) -> None:
        self.projections = projections
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._until = 0.0
        self._changes = -1

    def fresh(self) -> list[dict[str, Any]] | None:
        """The remembered rows if still current, else None."""
        if (time.monotonic() < self._until
                and self._changes == self.projections.generations.changes):  # fmt: skip
            return self._rows
        return None

    def read(self) -> list[dict[str, Any]]:
        with self._lock:
            found = self.fresh()
            if found is not None:
                return found
            changes = self.projections.generations.changes
            rows = self.projections.generations.rows()
            self._rows, self._changes = rows, changes
            self._until = time.monotonic() + self.SECONDS
            return rows


async def _current_troubles(request: Request) -> tuple[list[str], list[str]]:
    projections: Projections = request.app.state.projections
    cache: GenerationRows | None = getattr(request.app.state, "generation_rows", None)
    if cache is None or cache.projections is not projections:
        cache = request.app.state.generation_rows = GenerationRows(projections)
    rows = cache.fresh()
    if rows is None:  # a query: off the event loop
        rows = await run_in_threadpool(cache.read)
    return _troubles(projections, rows)


def _health_body(state: State, troubles: tuple[list[str], list[str]]) -> bytes:
    details: dict[str, Any] = {
        key: value() if callable(value) else value
        for key, value in getattr(state, "health_details", {}).items()
    }
    stopped, stale = troubles
    reasons = stopped + stale
    body = {"status": "degraded" if reasons else "ok", "reasons": reasons, **details}
    return json.dumps(body, ensure_ascii=False).encode()


@router.get("/healthz", response_model=Health, summary="Liveness, with what is wrong (no token)")
async def healthz(request: Request) -> Any:
    body = _health_body(request.app.state, await _current_troubles(request))
    # Answered as encoded: the body is the model's by construction (a test
    # checks /healthz against /openapi.json), validating it per probe is waste.
    return Response(body, media_type="application/json")


class HealthProbes:
    """Pure ASGI, outside every other layer: a `GET /healthz` without a body,
    while the read models' rows are remembered (`GenerationRows`), is answered
    here with the route's own body, without routing, the body guard or
    FastAPI's request handling (a probe every few milliseconds, and the one
    figure a load balancer waits on). Any other request, and a probe whose rows
    need reading, goes on to the app and the route above."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/healthz" and scope["method"] == "GET":
            body = _probe_answer(scope)
            if body is not None:
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json")]})  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _probe_answer(scope: Scope) -> bytes | None:
    """The body of a plain probe answered at once, or None (the route answers)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return None  # a body: the body guard and the route judge it
    state: State = scope["app"].state
    projections: Projections | None = getattr(state, "projections", None)
    cache: GenerationRows | None = getattr(state, "generation_rows", None)
    if projections is None or cache is None or cache.projections is not projections:
        return None
    rows = cache.fresh()
    if rows is None:
        return None
    return _health_body(state, _troubles(projections, rows))


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness: 503 while a read model is stopped (no token)",
    responses=responses(503),
)
async def readyz(request: Request) -> Any:
    stopped, _stale = await _current_troubles(request)
    if stopped:
        return problem(503, "; ".join(stopped), slug="unavailable")
    return {"status": "ready"}
