"""`/projections`: each read model's position and lag behind the event store."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fieldledger.api.deps import CallerDep, ProjectionsDep
from fieldledger.api.problems import responses
from fieldledger.projections.projector import BackgroundProjector
from pydantic import BaseModel

router = APIRouter(tags=["operations"])


class Rebuild(BaseModel):
    """A rebuild under way in some process (or one killed or failed, until rerun)."""

    generation: int
    position: int
    error: str | None


class ProjectionStatus(BaseModel):
    name: str
    position: int
    lag: int
    #: Why the projection is stopped (recorded, with its position) or, failing
    #: that, the last database error the background projector is retrying past.
    error: str | None
    error_position: int | None
    generation: int | None
    stale: bool
    rebuild: Rebuild | None


class ProjectionsView(BaseModel):
    projections: list[ProjectionStatus]


@router.get(
    "/projections",
    response_model=ProjectionsView,
    summary="Each projection's position, lag and last error",
    responses=responses(401),
)
def projection_status(
    request: Request, projections: ProjectionsDep, caller: CallerDep
) -> ProjectionsView:
    projector: BackgroundProjector | None = getattr(request.app.state, "projector", None)
    retrying = {} if projector is None else dict(projector.last_errors)
    return ProjectionsView(
        projections=[
            ProjectionStatus(
                name=s.name,
                position=s.position,
                lag=s.lag,
                error=s.error if s.error is not None else retrying.get(s.name),
                error_position=s.error_position,
                generation=s.generation,
                stale=s.stale,
                rebuild=(
                    None
                    if s.building_generation is None
                    else Rebuild(
                        generation=s.building_generation,
                        position=s.building_position or 0,
                        error=s.building_error,
                    )
                ),
            )
            for s in projections.status()
        ]
    )
