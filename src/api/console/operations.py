"""Operations for analysts: each read model's position, lag, error and generation;
rebuilds started here and followed live."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fieldledger.api.console.context import (
    STREAM_SECONDS,
    SessionDep,
    View,
    allow,
    check_csrf,
    error_page,
    router,
    sse,
)
from fieldledger.api.console.what_if import ask, shown, what_if_form
from fieldledger.projections.projector import ProjectionFailed, Projections
from starlette.concurrency import run_in_threadpool


@dataclass
class RebuildRun:
    name: str
    head: int
    started: float
    position: int = 0
    events: int = 0
    finished: bool = False
    error: str | None = None
    generation: int | None = None


def _runs(request: Request) -> dict[str, RebuildRun]:
    found: dict[str, RebuildRun] | None = getattr(request.app.state, "console_rebuilds", None)
    if found is None:
        found = {}
        request.app.state.console_rebuilds = found
    return found


def operations_snapshot(request: Request) -> dict[str, Any]:
    projections: Projections = request.app.state.projections
    projector = getattr(request.app.state, "projector", None)
    retrying = {} if projector is None else dict(projector.last_errors)
    runs = _runs(request)
    rows = []
    for s in projections.status():
        run = runs.get(s.name)
        rows.append({
            "name": s.name, "position": s.position, "lag": s.lag, "generation": s.generation,
            "error": s.error if s.error is not None else retrying.get(s.name),
            "stale": s.stale,
            "building": None if s.building_generation is None else {
                "generation": s.building_generation, "position": s.building_position or 0},
            "run": None if run is None else {
                "position": run.position, "head": run.head, "events": run.events,
                "finished": run.finished, "error": run.error, "generation": run.generation,
                "percent": 100 if run.finished else (
                    0 if not run.head else min(99, int(run.position * 100 / run.head))),
                "rate": round(run.events / max(0.001, time.monotonic() - run.started)),
            },
        })  # fmt: skip
    return {"head": projections.head(), "projections": rows}


@router.get("/operations", response_class=HTMLResponse)
def operations_page(request: Request, session: SessionDep) -> HTMLResponse:
    allow(session, "operations")
    return View(request, session).render(
        "operations.html", snapshot=operations_snapshot(request), what_if=what_if_form()
    )


@router.post("/operations/what-if", response_class=HTMLResponse)
async def run_what_if(
    request: Request,
    session: SessionDep,
    csrf: Annotated[str, Form(max_length=200)],
    policy: Annotated[str, Form(max_length=200_000)] = "",
    from_: Annotated[str, Form(alias="from", max_length=40)] = "",
    to: Annotated[str, Form(max_length=40)] = "",
    report: Annotated[str, Form(max_length=20)] = "sla",
    group_by: Annotated[str, Form(max_length=20)] = "",
) -> HTMLResponse:
    """Runs the replay (as long as over the API: minutes at millions of events)
    and shows the page with the answer, or the error, under the form."""
    allow(session, "operations")
    check_csrf(session, csrf)
    page = View(request, session)
    values = {"policy": policy, "from": from_, "to": to, "report": report, "group_by": group_by}
    answer, error = await run_in_threadpool(ask, page, values)
    return page.render(
        "operations.html", status=422 if error else 200,
        snapshot=await run_in_threadpool(operations_snapshot, request),
        what_if=what_if_form(values), what_if_error=error,
        what_if_answer=None if answer is None else shown(answer),
    )  # fmt: skip


@router.post("/operations/rebuild")
def start_rebuild(
    request: Request,
    session: SessionDep,
    name: Annotated[str, Form(max_length=100)],
    csrf: Annotated[str, Form(max_length=200)],
) -> Response:
    allow(session, "operations")
    check_csrf(session, csrf)
    projections: Projections = request.app.state.projections
    if name not in projections.models:
        return error_page(request, 404, f"no read model {name}")
    runs = _runs(request)
    current = runs.get(name)
    if current is None or current.finished:
        run = RebuildRun(name, projections.head(), time.monotonic())
        runs[name] = run

        def progress(count: int, position: int) -> None:
            run.events += count
            run.position = position

        def work() -> None:
            try:
                run.generation = projections.rebuild(name, progress=progress)
            except (ProjectionFailed, Exception) as e:  # shown on the page, never lost
                run.error = f"{type(e).__name__}: {e}"
            finally:
                run.finished = True

        threading.Thread(target=work, name=f"console-rebuild-{name}", daemon=True).start()
    return RedirectResponse("/console/operations", status_code=303)


@router.get("/operations/stream")
async def operations_stream(request: Request, session: SessionDep) -> StreamingResponse:
    """Server-sent events: the operations table whenever it changes (checked twice a
    second while a rebuild runs, every two seconds otherwise)."""
    allow(session, "operations")

    async def events() -> AsyncIterator[str]:
        started = time.monotonic()
        last = ""
        while time.monotonic() - started < STREAM_SECONDS:
            snapshot = await run_in_threadpool(operations_snapshot, request)
            text = json.dumps(snapshot, sort_keys=True)
            if text != last:
                last = text
                yield sse("status", snapshot)
            busy = any(r["run"] and not r["run"]["finished"] for r in snapshot["projections"])
            await asyncio.sleep(0.5 if busy else 2.0)
            if await request.is_disconnected():
                return

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})
