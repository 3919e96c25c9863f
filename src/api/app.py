"""The HTTP service: `create_app()` wires settings, the ledger and the routes."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from fieldledger.api import console, problems
from fieldledger.api.body_limit import BodyLimit
from fieldledger.api.command_threads import CommandThreads
from fieldledger.api.routes import (
    appraisal,
    audit,
    callbacks,
    complaints,
    customers,
    health,
    maintenance_contracts,
    notifications,
    projections,
    reports,
    satisfaction,
    sla,
    staff,
    training,
    what_if,
    work_orders,
)
from fieldledger.api.routes.commands import CommandGate, CommandShortcut
from fieldledger.api.service import Service
from fieldledger.application.settings import Settings
from fieldledger.domain.sla import calendar_report
from starlette.types import Receive, Scope, Send

DESCRIPTION = """\
An event-sourced system of record for on-site service work orders and customer
complaints. Every request carries `Authorization: Bearer TOKEN` (issue one with
`fieldledger token issue --actor ID --role ROLE`). Errors are RFC 9457
`application/problem+json`. Commands accept `occurred_at`, `If-Match` and
`Idempotency-Key`; see the contract for the conventions.
"""


def calendar_health(settings: Settings, year: int) -> dict[str, Any]:
    """The calendar's country, and which of this year and next lack official
    make-up working days (an SLA computed in them may be off)."""
    return calendar_report(settings.loaded_policy, settings.timezone, (year, year + 1))


#: Whether this process has frozen what its first app's start-up made.
_FROZEN: list[bool] = []


def freeze_start_up() -> None:
    """Once per process: what start-up made (the routes, their models, the
    policy, the ledger) lives as long as the worker, so it is taken out of the
    cyclic collector's way (`gc.freeze`); its full collections walked all of it,
    about 4% of a command's CPU (docs/benchmarks.md). Only once: a process that
    makes many apps (the tests) would otherwise freeze each one's garbage."""
    if not _FROZEN:
        _FROZEN.append(True)
        gc.collect()
        gc.freeze()


class LedgerApp(FastAPI):
    """The app: FastAPI, with a plainly valid command answered in front of its
    layers (`CommandGate`, routes/commands.py); everything else, and any
    command the gate does not answer, goes through them as in FastAPI."""

    command_gate: CommandGate | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self.command_gate
        if gate is not None and scope["type"] == "http" and scope["method"] == "POST":
            await gate(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def routed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request through FastAPI's layers, its router and the route."""
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    policy = settings.loaded_policy  # validated before anything starts

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def key_generated(path: Path) -> None:
            logging.getLogger("fieldledger").warning(
                "generated a master key for the embedded database at %s: keep a copy of it "
                "(without it the customers' personal data cannot be read)", path
            )

        service = Service.open(settings, key_generated, serving=True)
        ledger = service.ledger
        app.state.ledger = ledger
        app.state.tokens = service.tokens
        projections = service.projections
        calendars: dict[int, dict[str, Any]] = {}

        def calendar_now() -> dict[str, Any]:
            # This year and next, as the clock turns; worked out once per year.
            year = ledger.clock().year
            found = calendars.get(year)
            if found is None:
                found = calendars[year] = calendar_health(settings, year)
            return found

        app.state.health_details = {"policy_version": policy.version, "calendar": calendar_now}
        app.state.projections = projections
        background = service.workers()
        app.state.projector = background.projector
        app.state.sweeper = background.sweeper if settings.background else None
        app.state.delivery = background.delivery if settings.background else None
        if settings.background:
            background.start()
        freeze_start_up()
        try:
            yield
        finally:
            background.stop()
            service.close()

    # /docs and /redoc load Swagger UI and ReDoc from the service itself (the
    # fastapi-offline package bundles them): no request leaves the machine.
    app = FastAPIOffline(
        title="fieldledger",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.settings = settings
    app.state.command_threads = CommandThreads()
    problems.install(app)
    for module in (health, work_orders, complaints, staff, audit, projections, sla):
        app.include_router(module.router)
    for module in (maintenance_contracts, satisfaction, appraisal, training, callbacks,
                   customers, notifications, reports, what_if):
        app.include_router(module.router)
    console.install(app)
    # Commands go to their route without the router's matching, once it has
    # sent one there (routes/commands.py): inside the exception middleware.
    shortcut = CommandShortcut(app.router.middleware_stack)
    app.router.middleware_stack = shortcut
    app.add_middleware(BodyLimit)
    app.add_middleware(health.HealthProbes)  # outside the body guard: probes carry no body
    # A plainly valid command of a route the shortcut knows is answered before
    # all of these layers, which it does alike for such a request (the body
    # guard's checks); FastAPIOffline makes a FastAPI, which becomes the
    # subclass that puts the gate in front.
    app.__class__ = LedgerApp
    assert isinstance(app, LedgerApp)
    app.command_gate = CommandGate(app, shortcut, app.routed)
    return app
