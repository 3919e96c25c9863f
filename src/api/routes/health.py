"""`/healthz`: the service answers, and says what it knows of its calendar."""

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness, with details (no token needed)")
def healthz(request: Request) -> dict[str, Any]:
    details: dict[str, Any] = dict(getattr(request.app.state, "health_details", {}))
    return {"status": "ok", **details}
