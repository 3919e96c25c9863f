"""What a booking costs against the other commands of a lifecycle.

    python bench/booking_cost.py --lifecycles 200 [--customers distinct]
    valgrind --tool=callgrind --instr-atstart=no python bench/booking_cost.py \
        --callgrind book|others

The in-process app of `command_inprocess.py` (`create_app`, PostgreSQL, no
background threads, its ASGI interface, no socket) on a fresh database, and a
`fieldledger projections run` process beside it (so that a booking's
repeat-call lookup finds the earlier orders, as under wrk). Whole lifecycles
(`lifecycle.lua`'s nine commands) one command at a time; per command kind:
the app process's CPU (`time.process_time` around the request alone), the
CPU of the app's PostgreSQL backends (every client backend of the database
but the projector's: /proc before and after each request, summed) and the
wall time. `--customers same` books every order for the one phone of
`lifecycle.lua` (one customer, one data key: wrk's lifecycles);
`distinct` gives each order a phone of its own (a new customer, a new data
key per booking: a dispatcher's day). `--bookings-only` books and gives no
other command. With `--callgrind`, under `valgrind --tool=callgrind
--instr-atstart=no`, the measured commands' instructions are counted (one
span: toggling per command would count the toggles' own `subprocess.run`);
a run `--bookings-only` against one of whole lifecycles gives a booking's
instructions and the other commands' (the difference over 8 x lifecycles).
`--profile PATH` writes cProfile statistics of the measured bookings: the
command thread's side (the ledger's `book_work_order`) to `PATH.ledger`, the
event loop's (the requests, their waits included) to `PATH.loop`.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from command_cpu import backends, cpu_seconds, projector_backends
from command_inprocess import STEPS, post, started_app
from run_all import VENV_BIN, bench_database, fresh_database


def body_of(kind: str, body: dict[str, Any], customers: str, n: int) -> bytes:
    if kind == "book" and customers == "distinct":
        customer = {**body["customer"], "phone": f"139{n:08d}"}
        body = {**body, "customer": customer}
    return json.dumps(body).encode()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    url = fresh_database(bench_database("booking_cost"))
    async with started_app(url) as app:
        return await measure(app, url, args)


async def measure(app: Any, url: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {**{k: v for k, v in os.environ.items() if k != "PGAPPNAME"},
           "FIELDLEDGER_DATABASE_URL": url}  # fmt: skip
    projector = subprocess.Popen([str(VENV_BIN / "fieldledger"), "projections", "run"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    now = datetime.now(UTC)
    book = app.state.tokens
    tokens = {"disp": book.issue("disp-bench", "dispatcher", now),
              "tech": book.issue("tech-bench", "technician", now),
              "app": book.issue("app-bench", "client_app", now)}  # fmt: skip
    api: dict[str, float] = defaultdict(float)
    pg: dict[str, float] = defaultdict(float)
    wall: dict[str, float] = defaultdict(float)
    done: dict[str, int] = defaultdict(int)

    ledger_profile = loop_profile = None
    if args.profile:
        # CPU time of the thread profiled (not its waits for PostgreSQL).
        ledger_profile = cProfile.Profile(time.thread_time)
        loop_profile = cProfile.Profile(time.thread_time)
        ledger = app.state.ledger
        unprofiled = ledger.book_work_order
        profiling = False

        def book_work_order(*args: Any, **kwargs: Any) -> Any:
            # In the command thread; one command at a time, so one profile.
            if not profiling:
                return unprofiled(*args, **kwargs)
            assert ledger_profile is not None
            ledger_profile.enable()
            try:
                return unprofiled(*args, **kwargs)
            finally:
                ledger_profile.disable()

        ledger.book_work_order = book_work_order

    def toggle(on: bool) -> None:
        subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                       check=True, capture_output=True)  # fmt: skip

    async def lifecycle(n: int, measure: bool) -> None:
        order = ""
        # Not under callgrind: the query's connection (its authentication) is
        # counted there, once per lifecycle.
        found = {} if args.callgrind else backends(url)
        ours = [pid for pid in found if pid not in set(projector_backends(found))]
        for path, who, body in STEPS:
            kind = path.strip("/") or "book"
            encoded = body_of(kind, body, args.customers, n)
            target = f"/work-orders{order}{path}" if order or path else "/work-orders"
            if kind != "book" and args.bookings_only:
                break
            pg0 = 0.0 if args.callgrind else sum(map(cpu_seconds, ours))
            profiled = loop_profile is not None and measure and kind == "book"
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if profiled:
                assert loop_profile is not None
                loop_profile.enable()
            status, answer = await post(app, target, tokens[who], encoded)
            if profiled:
                assert loop_profile is not None
                loop_profile.disable()
            cpu1, wall1 = time.process_time(), time.perf_counter()
            pg1 = 0.0 if args.callgrind else sum(map(cpu_seconds, ours))
            if status >= 300:
                raise RuntimeError(f"{target}: {status} {answer!r}")
            if not order:
                order = "/" + json.loads(answer)["id"]
            if measure:
                api[kind] += cpu1 - cpu0
                pg[kind] += pg1 - pg0
                wall[kind] += wall1 - wall0
                done[kind] += 1

    try:
        for n in range(args.warm_up):
            await lifecycle(n, False)
        time.sleep(1)  # the projector catches up with the warm-up
        load = os.getloadavg()[0]
        if args.callgrind:
            toggle(True)
        profiling = True
        for n in range(args.warm_up, args.warm_up + args.lifecycles):
            await lifecycle(n, True)
        profiling = False
        if args.callgrind:
            toggle(False)
    finally:
        projector.terminate()
        projector.wait(timeout=20)

    if ledger_profile is not None and loop_profile is not None:
        ledger_profile.dump_stats(f"{args.profile}.ledger")
        loop_profile.dump_stats(f"{args.profile}.loop")

    def ms(table: dict[str, float], kinds: list[str]) -> float:
        return round(sum(table[k] for k in kinds) * 1000 / sum(done[k] for k in kinds), 4)

    others = [k for k in done if k != "book"]
    result: dict[str, Any] = {"customers": args.customers, "lifecycles": args.lifecycles,
                              "commands": dict(done)}  # fmt: skip
    for label, table in (("api_cpu_ms", api), ("pg_cpu_ms", pg), ("wall_ms", wall)):
        result[label] = {"book": ms(table, ["book"])}
        if others:
            result[label].update(others=ms(table, others), **{k: ms(table, [k]) for k in others})
    result["load_average"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", type=int, default=200)
    parser.add_argument("--warm-up", type=int, default=5)
    parser.add_argument("--customers", choices=("same", "distinct"), default="same")
    parser.add_argument(
        "--bookings-only", action="store_true", help="book, and give no other command"
    )
    parser.add_argument("--callgrind", action="store_true",
                        help="under `valgrind --tool=callgrind --instr-atstart=no`: count "
                        "the measured commands' instructions (no /proc reads)")  # fmt: skip
    parser.add_argument("--profile", metavar="PATH",
                        help="write cProfile statistics of the measured bookings to "
                        "PATH.ledger (the command thread's side) and PATH.loop")  # fmt: skip
    print(json.dumps(asyncio.run(main_async(parser.parse_args()))))


if __name__ == "__main__":
    main()
