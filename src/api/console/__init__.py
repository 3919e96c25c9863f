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
    from fieldledger.api.console import pages

    app.include_router(pages.router)
    app.mount(
        "/console/static",
        StaticFiles(directory=str(Path(__file__).parent / "static")),
        name="console-static",
    )
    pages.install_handlers(app)
