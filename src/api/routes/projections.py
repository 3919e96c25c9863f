"""`/projections`: each read model's position and lag behind the event store."""

from __future__ import annotations

from fastapi import APIRouter
from fieldledger.api.deps import CallerDep, ProjectionsDep
from fieldledger.api.problems import responses
from pydantic import BaseModel

router = APIRouter(tags=["operations"])


class ProjectionStatus(BaseModel):
    name: str
    position: int
    lag: int
    error: str | None
    generation: int | None
    stale: bool


class ProjectionsView(BaseModel):
    projections: list[ProjectionStatus]


@router.get(
    "/projections",
    response_model=ProjectionsView,
    summary="Each projection's position, lag and last error",
    responses=responses(401),
)
def projection_status(projections: ProjectionsDep, caller: CallerDep) -> ProjectionsView:
    return ProjectionsView(
        projections=[
            ProjectionStatus(
                name=s.name,
                position=s.position,
                lag=s.lag,
                error=s.error,
                generation=s.generation,
                stale=s.stale,
            )
            for s in projections.status()
        ]
    )
