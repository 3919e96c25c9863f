"""`/healthz`: the service answers, and says what it knows of its calendar."""

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness, with details (no token needed)")
def healthz(request: Request) -> dict[str, Any]:
    details: dict[str, Any] = {
        key: value() if callable(value) else value
        for key, value in getattr(request.app.state, "health_details", {}).items()
    }
    return {"status": "ok", **details}
