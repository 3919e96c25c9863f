"""The API process's own CPU per command, without HTTP or a load generator.

    python bench/command_inprocess.py --lifecycles 300 --concurrency 8

Makes the app (`create_app`, PostgreSQL, no background threads) on a fresh
database, starts it through its ASGI lifespan and drives work-order
lifecycles (the nine commands of `lifecycle.lua`) straight through its ASGI
interface, `--concurrency` at a time: no socket, no uvicorn, no wrk, so that the
process's CPU time (and, under `valgrind --tool=callgrind`, its instructions)
is the app's, its ledger's and its database client's alone. Prints one JSON
line: commands, the process's CPU milliseconds per command (after a warm-up of
one lifecycle per task), and the load average. Runs on any checkout whose
`create_app` takes `Settings` (compare branches with the same script). With
`--callgrind`, under `valgrind --tool=callgrind --instr-atstart=no`, only the
measured lifecycles are counted: instructions per command, steady however
busy the machine is (callgrind_annotate the output file, divide by commands).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_all import bench_database, fresh_database

BOOK = {
    "customer": {"name": "王先生", "phone": "13800000000", "address": "上海"},
    "service_type": "空调维修", "priority": "routine", "zone": "urban",
    "channel": "phone", "billing": "paid", "description": "不制冷",
}  # fmt: skip
STEPS: list[tuple[str, str, dict[str, Any]]] = [
    ("", "disp", BOOK),
    ("/assign", "disp", {"technician_id": "tech-bench"}),
    ("/confirm", "tech", {}),
    ("/depart", "tech", {}),
    ("/arrive", "tech", {}),
    ("/start", "tech", {"identity_shown": True, "customer_identity_verified": True,
                        "site_safe": True, "tools_complete": True, "risk_assessment": "ok"}),
    ("/complete", "tech", {"summary": "done", "parts_used": [],
                           "checklist": [{"item": "tested", "done": True}]}),
    ("/accept", "tech", {"signed_by": "王先生"}),
    ("/feedback", "app", {"csat": 5, "attitude": 4, "skill": 4, "punctuality": 4,
                          "promise": 4, "praise": False}),
]  # fmt: skip


async def post(app: Any, path: str, token: str, body: bytes) -> tuple[int, bytes]:
    """One request through the app's ASGI interface, as uvicorn would give it."""
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1", "method": "POST", "scheme": "http", "path": path,
        "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 40000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", b"Bearer " + token.encode()),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
        "state": {},
    }  # fmt: skip
    sent = False
    answer: dict[str, Any] = {}
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = answer.get("body", b"") + message.get("body", b"")
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    return answer["status"], answer["body"]


async def lifecycles(app: Any, tokens: dict[str, str], count: int) -> int:
    commands = 0
    encoded = [(path, who, json.dumps(body).encode()) for path, who, body in STEPS]
    for _ in range(count):
        order = ""
        for path, who, body in encoded:
            status, answer = await post(app, f"/work-orders{order}{path}" if order or path
                                        else "/work-orders", tokens[who], body)  # fmt: skip
            if status >= 300:
                raise RuntimeError(f"{path}: {status} {answer!r}")
            if not order:
                order = "/" + json.loads(answer)["id"]
            commands += 1
    return commands


@contextlib.asynccontextmanager
async def started_app(url: str) -> AsyncIterator[Any]:
    """The app (`create_app`, PostgreSQL at `url`, no background threads),
    started through its ASGI lifespan, and stopped through it at the end."""
    from fieldledger.api.app import create_app
    from fieldledger.application.settings import Settings

    app = create_app(Settings(database_url=url, background=False, sweep_interval=0))
    started = asyncio.Event()
    stopping = asyncio.Event()
    messages = [{"type": "lifespan.startup"}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await stopping.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"] == "lifespan.startup.failed":
            raise RuntimeError(message.get("message"))

    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                        "state": {}}, receive, send))  # fmt: skip
    await started.wait()
    try:
        yield app
    finally:
        stopping.set()
        await lifespan


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    async with started_app(fresh_database(bench_database("inprocess"))) as app:
        return await measure(app, args)


async def measure(app: Any, args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC)
    book = app.state.tokens
    tokens = {"disp": book.issue("disp-bench", "dispatcher", now),
              "tech": book.issue("tech-bench", "technician", now),
              "app": book.issue("app-bench", "client_app", now)}  # fmt: skip
    await asyncio.gather(*(lifecycles(app, tokens, 1) for _ in range(args.concurrency)))
    load = os.getloadavg()[0]
    if args.callgrind:  # instructions of the measured lifecycles alone
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True,
                       capture_output=True)  # fmt: skip
    cpu, wall = time.process_time(), time.perf_counter()
    per_task = max(1, args.lifecycles // args.concurrency)
    done = await asyncio.gather(
        *(lifecycles(app, tokens, per_task) for _ in range(args.concurrency))
    )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if args.callgrind:
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True,
                       capture_output=True)  # fmt: skip
    commands = sum(done)
    return {"commands": commands, "cpu_ms_per_command": round(cpu * 1000 / commands, 4),
            "commands_per_s": round(commands / wall, 1),
            "load_average": [round(load, 2), round(os.getloadavg()[0], 2)]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--callgrind", action="store_true",
                        help="run under `valgrind --tool=callgrind --instr-atstart=no`: "
                        "instructions are counted for the measured lifecycles only")  # fmt: skip
    print(json.dumps(asyncio.run(main_async(parser.parse_args()))))


if __name__ == "__main__":
    main()
