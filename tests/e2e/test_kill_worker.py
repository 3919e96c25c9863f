"""`kill -9` of the API worker in the middle of a burst of commands loses no
acknowledged command: every 2xx answer's event is in the store, and the hash
chain verifies (`fieldledger audit verify`), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
from fieldledger.application.database import Database
from fieldledger.application.hash_chain import verify_chain
from fieldledger.application.ledger import FieldLedger
from fieldledger.application.tokens import TokenBook

from tests.e2e.scenarios import booking
from tests.servers import free_port
from tests.views import wait_until


def test_a_killed_worker_loses_no_acknowledged_command(database_url: str) -> None:
    executable = shutil.which("fieldledger", path=str(Path(sys.executable).parent))
    assert executable is not None
    ledger = FieldLedger(database_url)
    try:
        tokens = TokenBook(Database(ledger.recorder))
        dispatcher = tokens.issue("disp-1", "dispatcher", datetime.now(UTC))
    finally:
        ledger.close()
    port = free_port()
    env = {**os.environ, "FIELDLEDGER_DATABASE_URL": database_url,
           "FIELDLEDGER_BACKGROUND": "false"}  # fmt: skip
    server = subprocess.Popen(
        [executable, "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    acknowledged: list[tuple[UUID, int]] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 60  # bounds the whole burst, start included

        def serving() -> bool:
            assert server.poll() is None, "serve stopped before it started"
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(serving, timeout=60)

        def burst() -> None:
            headers = {"Authorization": f"Bearer {dispatcher}"}
            with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
                while not stop.is_set():
                    try:
                        r = client.post("/work-orders", json=booking())
                        if r.status_code >= 300:
                            continue
                        order = r.json()["id"]
                        with lock:
                            acknowledged.append((UUID(order), r.json()["version"]))
                        r = client.post(f"/work-orders/{order}/assign",
                                        json={"technician_id": "tech-1"})  # fmt: skip
                        if r.status_code < 300:
                            with lock:
                                acknowledged.append((UUID(order), r.json()["version"]))
                    except httpx.HTTPError:
                        return  # the worker is gone

        clients = [threading.Thread(target=burst) for _ in range(8)]
        for c in clients:
            c.start()
        while len(acknowledged) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(server.pid, signal.SIGKILL)  # mid-burst: commands are in flight
        server.wait(timeout=30)
        stop.set()
        for c in clients:
            c.join(timeout=30)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
    assert len(acknowledged) >= 20
    ledger = FieldLedger(database_url)
    try:
        for order, version in acknowledged:
            stored = ledger.recorder.select_events(order)
            assert version in [s.originator_version for s in stored], (order, version)
        # What `fieldledger audit verify` runs (in process: a CLI start costs seconds).
        verdict = verify_chain(ledger.recorder)
        assert verdict.intact, verdict.broken
    finally:
        ledger.close()
