"""Browser tests: the real service (uvicorn, in a thread, on a random port of
127.0.0.1, SQLite, projector in the background) driven by Playwright through
Debian's Chromium (`apt-get install chromium`, launched by its path).

Without Chromium these tests are skipped with the reason, except under CI=true
(`.ci/run` installs it), where they fail. Screenshots go to the folder named by
FIELDLEDGER_SCREENSHOTS (`make screenshots` writes docs/console/).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fieldledger.api.app import create_app
from fieldledger.application.settings import Settings
from fieldledger.application.tokens import TokenBook

from tests.conftest import IN_CI
from tests.servers import free_port

CHROMIUM = os.environ.get("FIELDLEDGER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class Server:
    base: str
    app: FastAPI
    database: Path

    def token(self, actor: str, role: str) -> str:
        tokens: TokenBook = self.app.state.tokens
        return tokens.issue(actor, role, datetime.now(UTC))

    def api(self, actor: str, role: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, timeout=10,
            headers={"Authorization": f"Bearer {self.token(actor, role)}"},
        )  # fmt: skip



@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    database = tmp_path_factory.mktemp("console") / "fieldledger.db"
    settings = Settings(
        database_url=f"sqlite:///{database}", background=True, sweep_interval=0,
        poll_interval=0.05,
    )  # fmt: skip
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=1)  # fmt: skip
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, name="console-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console's server did not start")
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", app, database)
    finally:
        running.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + " under CI=true: the browser tests must run")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


def shot(page: Any, name: str) -> None:
    folder = os.environ.get("FIELDLEDGER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
