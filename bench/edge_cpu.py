"""uvicorn's and the thread hop's CPU per command-shaped request, without the app.

    python bench/edge_cpu.py --runs 3 --seconds 8
    python bench/edge_cpu.py --variants serve,inline

Serves, with uvicorn as `fieldledger serve` runs it (one worker), an ASGI app
that does only what `CommandGate` does around a command: reads the body,
hands a function that does nothing to a `CommandThreads` pool and awaits it,
and answers with a command's headers and body (start, then body). wrk posts
a command-sized JSON body with a token, 16 connections. Prints one JSON line
per variant and run: requests/s, the worker's CPU microseconds per request
(utime + stime, /proc), wrk's own (on loopback the client's wake-ups are paid
on the same cores) and the load average; then the medians. The
app's own work is left out on purpose: what is left is uvicorn's parsing,
scope, task and writes, and the hop, the part `bench/command_inprocess.py`
cannot count.

Variants (alternated run by run):
- serve: uvicorn's options as `fieldledger serve` passes them (cli.py): its
  `OneWriteProtocol` (api/http_protocol.py), no `server` header;
- twowrites: as serve with uvicorn's own httptools protocol (an answer's head
  and body written apart), the one write's gain;
- serverheader: as serve with uvicorn's `server: uvicorn` header;
- h11: as serve with uvicorn's pure-Python h11 protocol;
- noproxy: as serve, without uvicorn's proxy headers layer (measured, not
  taken: see docs/benchmarks.md);
- inline: as serve, the function called on the event loop (no hop): the hop's cost;
- uvicorn: uvicorn's defaults (the bare baseline's server);
- healthz@TREE: the real app's `/healthz` (GET, `bench/trivial.lua`) served by
  TREE's `fieldledger serve` (TREE/.venv/bin/fieldledger, one worker, on
  FIELDLEDGER_DATABASE_URL; FIELDLEDGER_BACKGROUND=false keeps its projector
  threads out): two checkouts alternated, e.g.
  `--variants healthz@/work/main,healthz@.`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from command_cpu import cpu_seconds
from run_all import free_port

BODY = json.dumps({
    "summary": "done", "parts_used": [], "occurred_at": "2026-11-28T10:00:00+08:00",
    "checklist": [{"item": "tested", "done": True}, {"item": "cleaned", "done": True}],
})  # fmt: skip
ANSWER = b'{"id":"0b0e8f9c-4d4e-4f37-9a53-6a4b1c1f4c6e","version":7,"state":"completed"}'
HEADERS = [
    (b"etag", b'"7"'), (b"x-position", b"123456"),
    (b"content-length", b"%d" % len(ANSWER)), (b"content-type", b"application/json"),
]  # fmt: skip
LUA = """
wrk.method = "POST"
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer fl_0123456789012345678901234567890123456789012"
wrk.headers["If-Match"] = '"6"'
"""


def children_cpu_seconds() -> float:
    """utime + stime of this process's finished children (wrk's runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def app_for(hop: bool) -> Any:
    from fieldledger.api.command_threads import CommandThreads

    threads = CommandThreads()

    def nothing() -> None:
        return None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if hop and scope["method"] == "POST":
            await threads.run(nothing)
        else:
            nothing()
        await send({"type": "http.response.start", "status": 200, "headers": list(HEADERS)})
        await send({"type": "http.response.body", "body": ANSWER})

    return app


def serve(variant: str, port: int) -> None:
    import uvicorn
    from fieldledger.api import cli

    options: dict[str, Any] = {"log_level": "warning"}
    if variant != "uvicorn":
        options.update(cli.uvicorn_options(access_log=False))
    if variant == "twowrites":
        options["http"] = "httptools"
    if variant == "serverheader":
        options["server_header"] = True
    if variant == "h11":
        options["http"] = "h11"
    if variant == "noproxy":
        options["proxy_headers"] = False
    options.pop("workers", None)
    uvicorn.run(app_for(hop=variant != "inline"), host="127.0.0.1", port=port, **options)


def measure(variant: str, seconds: int, script: str) -> dict[str, Any]:
    port = free_port()
    tree = variant.removeprefix("healthz@") if variant.startswith("healthz@") else None
    if tree is None:
        proc = subprocess.Popen([sys.executable, __file__, "--serve", variant, "--port", str(port)])
        probe = "/"
    else:
        fieldledger = Path(tree).resolve() / ".venv" / "bin" / "fieldledger"
        proc = subprocess.Popen([str(fieldledger), "serve", "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        probe = "/healthz"
        script = str(Path(__file__).resolve().parent / "trivial.lua")
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(base + probe, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        subprocess.run(["wrk", "-t2", "-c16", "-d2s", "-s", script, base],
                       check=True, capture_output=True)  # fmt: skip
        load = os.getloadavg()[0]
        before = cpu_seconds(proc.pid)
        client_before = children_cpu_seconds()
        out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", script, base],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
        used = cpu_seconds(proc.pid) - before
        client = children_cpu_seconds() - client_before
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    requests = int(out.split(" requests in")[0].split()[-1])
    return {"variant": variant, "rps": round(requests / seconds), "requests": requests,
            "cpu_us_per_request": round(used * 1e6 / requests, 1),
            "wrk_cpu_us_per_request": round(client * 1e6 / requests, 1),
            "load_average": round(load, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="serve,twowrites,inline,uvicorn")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(LUA % json.dumps(BODY))
    results: dict[str, list[float]] = {}
    clients: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for variant in args.variants.split(","):
            found = measure(variant, args.seconds, lua.name)
            print(json.dumps(found), flush=True)
            results.setdefault(variant, []).append(found["cpu_us_per_request"])
            clients.setdefault(variant, []).append(found["wrk_cpu_us_per_request"])
    print(json.dumps({"server": {v: statistics.median(r) for v, r in results.items()},
                      "wrk": {v: statistics.median(r) for v, r in clients.items()}}))  # fmt: skip
    os.unlink(lua.name)


if __name__ == "__main__":
    main()
