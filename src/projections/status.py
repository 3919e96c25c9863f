"""Where each read model stands: its live generation, position, lag, error, and
any rebuild under way (for `fieldledger projections status` and `/projections`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fieldledger.projections.generations import Generations
from fieldledger.projections.read_model import ReadModel


@dataclass(frozen=True)
class Status:
    name: str
    generation: int | None
    position: int
    lag: int
    error: str | None
    error_position: int | None
    stale: bool
    #: A rebuild under way (or killed, or failed): its generation and position.
    building_generation: int | None = None
    building_position: int | None = None
    building_error: str | None = None


def statuses(
    models: Mapping[str, ReadModel],
    generations: Generations,
    position: Callable[[str, int], int],
    head: int,
) -> list[Status]:
    rows = generations.rows()
    live = {r["name"]: r for r in rows if r["state"] == "live"}
    building = {r["name"]: r for r in rows if r["state"] == "building"}
    result = []
    for name, model in models.items():
        row = live.get(name)
        generation = None if row is None else int(row["generation"])
        at = 0 if generation is None else position(name, generation)
        build = building.get(name)
        result.append(
            Status(
                name=name,
                generation=generation,
                position=at,
                lag=max(0, head - at),
                error=None if row is None else row["error"],
                error_position=None if row is None else row["error_position"],
                stale=row is not None and int(row["schema_version"]) != model.schema_version,
                building_generation=None if build is None else int(build["generation"]),
                building_position=(
                    None if build is None else position(name, int(build["generation"]))
                ),
                building_error=None if build is None else build["error"],
            )
        )
    return result
