"""`/healthz` (liveness, with what is wrong) and `/readyz` (readiness): no token.

- `/healthz` answers 200 while the process serves: `status` is `ok`, or
  `degraded` with `reasons` (a read model stopped at an event it could not
  project, or stale after an upgrade), plus what it knows of its calendar.
- `/readyz` answers 503 while any read model is stopped (its reads would
  answer 503 or stale data), else 200: a load balancer sends traffic elsewhere.
"""

from typing import Any, Literal

from fastapi import APIRouter, Request
from fieldledger.api.problems import problem, responses
from fieldledger.projections.projector import Projections
from pydantic import BaseModel, ConfigDict

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
    stopped: list[str] = []
    stale: list[str] = []
    for s in projections.status():
        if s.error is not None:
            stopped.append(f"read model {s.name} is stopped at position {s.error_position}: "
                           f"{s.error}")  # fmt: skip
        elif s.stale:
            stale.append(f"read model {s.name} is stale: its code changed; rebuild it")
    return stopped, stale


@router.get("/healthz", response_model=Health, summary="Liveness, with what is wrong (no token)")
def healthz(request: Request) -> dict[str, Any]:
    details: dict[str, Any] = {
        key: value() if callable(value) else value
        for key, value in getattr(request.app.state, "health_details", {}).items()
    }
    stopped, stale = troubles(request.app.state.projections)
    reasons = stopped + stale
    return {"status": "degraded" if reasons else "ok", "reasons": reasons, **details}


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness: 503 while a read model is stopped (no token)",
    responses=responses(503),
)
def readyz(request: Request) -> Any:
    stopped, _stale = troubles(request.app.state.projections)
    if stopped:
        return problem(503, "; ".join(stopped), slug="unavailable")
    return {"status": "ready"}
