"""The supervisor console: server-rendered pages at /console (docs/console.md).

`install(app)` is the one line that mounts it: its routes, its static files
(served by the service itself: nothing loads from the internet) and its
sign-in redirects.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles


def install(app: FastAPI) -> None:
    # Each page module adds its routes to the console's router when imported.
    from fieldledger.api.console import (  # noqa: F401
        appraisal,
        audit,
        board,
        monthly,
        operations,
        records,
        reports,
        sign_in,
    )
    from fieldledger.api.console.context import install_handlers, router

    app.include_router(router)
    app.mount(
        "/console/static",
        StaticFiles(directory=str(Path(__file__).parent / "static")),
        name="console-static",
    )
    install_handlers(app)
