"""The `fieldledger` command line (contract §2)."""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import typer
from fieldledger.application.event_store import StoreConfigError
from fieldledger.application.settings import Settings
from fieldledger.domain.errors import DomainError, InvalidCommand
from fieldledger.domain.policy import PolicyError
from fieldledger.projections.projector import ProjectionFailed, Projections, RebuildSuperseded
from pydantic import ValidationError
from rich.console import Console

if TYPE_CHECKING:
    from fieldledger.api.service import Service
    from fieldledger.application.ledger import FieldLedger
    from fieldledger.application.tokens import TokenBook

app = typer.Typer(
    help="fieldledger: work orders and complaints as an event-sourced ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
projections_app = typer.Typer(help="Read models: status and rebuilds.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
sla_app = typer.Typer(help="SLA: automatic escalation.", no_args_is_help=True)
app.add_typer(sla_app, name="sla")
customers_app = typer.Typer(
    help="Customers' personal data: find, erase (docs/privacy.md).", no_args_is_help=True
)
app.add_typer(customers_app, name="customers")
keys_app = typer.Typer(help="The master key of customers' data keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def fail(message: str, code: int = 2) -> NoReturn:
    """A one-line message on stderr and a non-zero exit (a driver's multi-line
    message, e.g. psycopg's connection failure with its hint, is folded)."""
    typer.echo(f"fieldledger: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        settings = Settings()
        settings.loaded_policy  # noqa: B018 - validate the policy before anything starts
    except ValidationError as e:
        first = e.errors()[0]
        key = "FIELDLEDGER_" + ".".join(str(p) for p in first["loc"]).upper()
        fail(f"{key}: {first['msg']}")
    except PolicyError as e:
        fail(str(e))
    return settings


def redacted(database_url: str) -> str:
    """The URL as it may be shown: without its password."""
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _key_generated(path: Path) -> None:
    typer.echo(
        f"fieldledger: generated a master key for the embedded database at {path}: keep a "
        "copy of it (without it the customers' personal data cannot be read)",
        err=True,
    )


@contextmanager
def opening(settings: Settings) -> Iterator[None]:
    """A one-line error when the store cannot open (no master key, or the wrong one,
    included)."""
    from eventsourcing.persistence import PersistenceError
    from fieldledger.application.personal_data import MasterKeyError

    try:
        yield
    except StoreConfigError as e:
        fail(f"FIELDLEDGER_DATABASE_URL: {e}")
    except MasterKeyError as e:
        fail(str(e))
    except PersistenceError as e:
        fail(f"cannot open the database {redacted(settings.database_url)}: {e}")


def name_connections(part: str) -> None:
    """Name this process's PostgreSQL connections `fieldledger <part>` in
    `pg_stat_activity` (libpq's PGAPPNAME, which a process started from here
    inherits), unless PGAPPNAME or the URL's `application_name` names them:
    an operator tells the API workers', the projector's and a rebuild's
    backends apart (docs/api.md)."""
    os.environ.setdefault("PGAPPNAME", f"fieldledger {part}")


def open_ledger(settings: Settings) -> FieldLedger:
    """The ledger on FIELDLEDGER_DATABASE_URL (api/service.py), or a one-line error."""
    from fieldledger.api import service

    with opening(settings):
        return service.open_ledger(settings, _key_generated)
    raise AssertionError("unreachable")  # pragma: no cover - fail() exits


#: How long uvicorn's supervisor waits for a worker's answer before it kills it.
WORKER_HEALTHCHECK_SECONDS = 60


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="API worker processes")] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="log a line per request (off: the audit trail records every command; "
            "a reverse proxy usually logs requests)",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API on the database of FIELDLEDGER_DATABASE_URL."""
    import uvicorn

    name_connections("api")
    settings = load_settings()
    # Open the store once before serving, so that a bad URL or an unreachable
    # database is a one-line error here rather than a traceback from a worker.
    open_ledger(settings).close()
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    typer.echo(
        f"fieldledger on {redacted(settings.database_url)}: API docs at http://{shown}:{port}/docs"
        f", console at http://{shown}:{port}/console",
        err=True,
    )
    warn_about_calendar(settings)
    uvicorn.run("fieldledger.api.app:create_app", factory=True, host=host, port=port,
                **uvicorn_options(workers=workers, access_log=access_log))  # fmt: skip


def uvicorn_options(*, workers: int = 1, access_log: bool = False) -> dict[str, Any]:
    """uvicorn's options as `serve` runs it (bench/edge_cpu.py serves alike)."""
    options: dict[str, Any] = {}
    try:
        from fieldledger.api.http_protocol import OneWriteProtocol
    except ImportError:  # no httptools: uvicorn's own choice (h11), unchanged
        pass
    else:
        # httptools, as uvicorn picks it when installed, with each answer's
        # head and body in one write (http_protocol.py).
        options["http"] = OneWriteProtocol
    return {
        **options,
        "workers": workers,
        "log_level": "info",
        "access_log": access_log,
        # No `server: uvicorn` header on every answer: nothing a client needs,
        # and it tells an attacker what runs here. (`date` stays: HTTP wants it
        # from an origin server with a clock.)
        "server_header": False,
        # The console's live streams stay open; a stop closes them after this.
        "timeout_graceful_shutdown": 5,
        # uvicorn's supervisor kills a worker that does not answer its ping in
        # 5 s: on a busy machine a starting worker (imports, the app's models,
        # the collector's start-up pass) can hold its interpreter that long, and
        # the workers were killed and restarted without end (docs/benchmarks.md).
        "timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS,
    }


def warn_about_calendar(settings: Settings) -> None:
    """One warning line when this year or next lacks official make-up working days."""
    from zoneinfo import ZoneInfo

    from fieldledger.domain.sla import calendar_report

    year = datetime.now(ZoneInfo(settings.timezone)).year
    report = calendar_report(settings.loaded_policy, settings.timezone, (year, year + 1))
    missing = report["years_without_makeup_data"]
    if missing:
        typer.echo(
            f"fieldledger: warning: the {report['country']} calendar data has no official "
            f"make-up working days for {', '.join(map(str, missing))}; SLA due times there "
            "are computed without them (update the holidays package when they are published)",
            err=True,
        )


@contextmanager
def opened_tokens() -> Iterator[tuple[TokenBook, Settings]]:
    from fieldledger.api.service import token_book

    settings = load_settings()
    ledger = open_ledger(settings)
    try:
        yield token_book(ledger), settings
    except DomainError as e:
        fail(str(e))
    finally:
        ledger.close()


@token_app.command("issue")
def token_issue(
    actor: Annotated[str, typer.Option(help="the actor id the token speaks for")],
    role: Annotated[str, typer.Option(help="client_app, dispatcher, technician, ...")],
    expires_in: Annotated[
        str, typer.Option(help="validity: 30d, 12h, 90m, ...; `none`: never expires")
    ] = "90d",
) -> None:
    """Issue an API token; prints the token alone on stdout (its id, expiry and
    database on stderr)."""
    from fieldledger.application.tokens import token_id
    from fieldledger.domain.facts import parse_interval

    try:
        lifetime = parse_interval(expires_in)
    except ValueError as e:
        fail(f"--expires-in: {e}")
    with opened_tokens() as (tokens, settings):
        token = tokens.issue(actor, role, datetime.now(UTC), expires_in=lifetime)
    until = "never expires" if lifetime is None else (
        f"expires {(datetime.now(UTC) + lifetime).isoformat(timespec='seconds')}"
    )  # fmt: skip
    typer.echo(
        f"issued {token_id(token)} for {actor} ({role}), {until}, "
        f"in {redacted(settings.database_url)}",
        err=True,
    )
    sys.stdout.write(token + "\n")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str | None, typer.Argument(help="the id `token list` shows")] = None,
    actor: Annotated[str | None, typer.Option(help="revoke every token of this actor")] = None,
) -> None:
    """Revoke a token by its id, or every token of an actor (refused by every worker at once)."""
    if (token_id is None) == (actor is None):
        fail("name a TOKEN_ID or --actor ACTOR (one of them)")
    with opened_tokens() as (tokens, settings):
        now = datetime.now(UTC)
        if token_id is not None:
            if not tokens.revoke(token_id, now):
                fail(f"no active token {token_id} in {redacted(settings.database_url)}", 1)
            typer.echo(f"revoked {token_id}")
        else:
            assert actor is not None
            count = tokens.revoke_actor(actor, now)
            if count == 0:
                fail(f"no active token of {actor} in {redacted(settings.database_url)}", 1)
            typer.echo(f"revoked {count} token{'s' if count != 1 else ''} of {actor}")


@token_app.command("list")
def token_list() -> None:
    """Every token issued: id, actor, role, issued, expires, status (never the token)."""
    from rich.table import Table

    with opened_tokens() as (tokens, _settings):
        records = tokens.records()
    now = datetime.now(UTC)
    table = Table("id", "actor", "role", "issued", "expires", "status")
    for r in records:
        table.add_row(
            r.token_id, r.actor, r.role, r.issued_at.isoformat(timespec="seconds"),
            "never" if r.expires_at is None else r.expires_at.isoformat(timespec="seconds"),
            r.status(now),
        )  # fmt: skip
    Console(width=160).print(table)


@contextmanager
def opened_projections() -> Iterator[Projections]:
    with opened_service() as service:
        yield service.projections


@contextmanager
def opened_service() -> Iterator[Service]:
    """The ledger and its read models, wired (api/service.py), or a one-line error."""
    from fieldledger.api.service import Service

    settings = load_settings()
    with opening(settings):
        service = Service.open(settings, _key_generated)
    try:
        yield service
    finally:
        service.close()


@projections_app.command("run")
def projections_run() -> None:
    """Keep every read model caught up, and sweep SLAs, until stopped (SIGTERM or
    Ctrl-C): the one projector process beside API workers started with
    FIELDLEDGER_BACKGROUND=false (docs/benchmarks.md says why)."""
    import signal
    import threading

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    name_connections("projector")
    with opened_service() as service:
        background = service.workers()
        background.start()
        models = ", ".join(service.projections.models)
        typer.echo(f"projecting {models}; stop with Ctrl-C", err=True)
        stopping.wait()
        background.stop()


@projections_app.command("status")
def projections_status() -> None:
    """Position, lag behind the event store and last error of each projection."""
    from rich.console import Console
    from rich.table import Table

    troubled: list[str] = []
    with opened_projections() as projections:
        table = Table("projection", "generation", "position", "lag", "error", "rebuild")
        for s in projections.status():
            error = "" if s.error is None else f"stopped at {s.error_position}: {s.error}"
            if s.stale:
                error = (error + " " if error else "") + "(stale: rebuild it)"
            rebuild = ""
            if s.building_generation is not None:
                rebuild = f"generation {s.building_generation} at {s.building_position}"
                if s.building_error is not None:
                    rebuild += f", failed: {s.building_error}"
                else:
                    rebuild += " (under way, or killed: run the rebuild again)"
            table.add_row(s.name, str(s.generation), str(s.position), str(s.lag), error, rebuild)
            if s.error is not None:
                troubled.append(f"{s.name} stopped at {s.error_position}")
            elif s.stale:
                troubled.append(f"{s.name} stale")
        Console(width=160).print(table)
    if troubled:
        # Scripts and monitors read the exit status: 1 while any view needs attention.
        fail("read models need attention: " + ", ".join(troubled), 1)


#: Relative cost of rebuilding each view in a one-pass rebuild, for sharing
#: views out between processes: the CPU of each view's batch hooks in the
#: process (tenths of a second per 30k events of a generated store, the audit
#: trail's with its rows' COPY; 2026-11-28, branch i12j); a view not listed
#: counts 1. The SLA view is the heaviest by far.
REBUILD_WEIGHTS = {
    "sla": 20, "audit": 12, "reports": 9, "satisfaction": 5, "appraisal": 5,
    "callbacks": 3, "notifications": 3, "customer_files": 2, "maintenance_contracts": 1,
}  # fmt: skip


def default_jobs() -> int:
    """`projections rebuild --jobs` by default: one process per core (2 when the
    count is unknown), so a rebuild uses the whole machine."""
    return max(1, min(16, os.cpu_count() or 2))


#: A rebuild process's reading and decoding of every event, in the units of
#: `REBUILD_WEIGHTS` (measured with them); a process whose views are all
#: listed in `catalog.EVENT_TYPES` reads only their types of event, about
#: half (`READ_FILTERED`).
READ_WEIGHT = 10.0
READ_FILTERED = 0.5
#: Above this many ways to share the views out, the greedy way is taken.
SHARE_OUT_SEARCH = 1_000


def share_out(names: list[str], jobs: int) -> list[list[str]]:
    """The views in `jobs` groups (processes) of about equal cost: each group
    costs its views' weights and its reading of the store (less where its views
    need few types of event). The cheapest sharing (least cost of the costliest
    group, then least in all, then fewest types of event read) by trying every
    way where there are few, else greedily (heaviest first, each to the lightest
    group so far); the views in their given order within each group, the groups
    by their first view."""
    from fieldledger.projections.catalog import EVENT_TYPES

    count = max(1, min(jobs, len(names)))

    def cost(group: Sequence[str]) -> float:
        filtered = all(n in EVENT_TYPES for n in group)
        reading = READ_WEIGHT * (READ_FILTERED if filtered else 1.0)
        return sum(REBUILD_WEIGHTS.get(n, 1) for n in group) + reading

    def types_read(group: Sequence[str]) -> int:
        if not all(n in EVENT_TYPES for n in group):
            return 1000  # every event
        return len({t for n in group for t in EVENT_TYPES[n]})

    groups: list[list[str]]
    if count ** len(names) <= SHARE_OUT_SEARCH:
        best: tuple[float, float, int] | None = None
        groups = [list(names)]
        for assignment in itertools.product(range(count), repeat=len(names)):
            if len(set(assignment)) < count or assignment[0] != 0:
                continue  # an idle process, or the same sharing numbered otherwise
            trial = [[n for n, g in zip(names, assignment, strict=True) if g == i]
                     for i in range(count)]  # fmt: skip
            costs = [cost(g) for g in trial]
            # Of equal costs, the sharing that reads the fewest types of event.
            score = (max(costs), sum(costs), sum(types_read(g) for g in trial))
            if best is None or score < best:
                best, groups = score, trial
    else:
        groups = [[] for _ in range(count)]
        loads = [0] * count
        for name in sorted(names, key=lambda n: -REBUILD_WEIGHTS.get(n, 1)):
            lightest = loads.index(min(loads))
            groups[lightest].append(name)
            loads[lightest] += REBUILD_WEIGHTS.get(name, 1)
        groups = [[n for n in names if n in group] for group in groups]
    return sorted((g for g in groups if g), key=lambda g: names.index(g[0]))


#: prctl(2)'s option: the signal a process gets when its parent ends.
PR_SET_PDEATHSIG = 1


def end_with_parent(parent: int) -> None:
    """In a rebuild process of `--jobs`: end when the `projections rebuild` that
    started it does, even by SIGKILL (Linux's parent-death signal; elsewhere
    only a parent that exits normally ends its daemon processes). Its
    generation, unfinished, is left as the parent's own would be: the live one
    goes on serving and the next rebuild drops it. Without this, a killed
    rebuild's processes went on to finish and swap in their views."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != parent:  # the parent ended before the signal was asked for
        os._exit(1)


def _rebuild_group(parent: int, index: int, names: list[str], queue: Any) -> None:
    """A rebuild process of `--jobs`: its views in one pass; reports to `queue`."""
    end_with_parent(parent)
    try:
        with opened_projections() as projections:
            generations = projections.rebuild_many(
                names, progress=lambda count, position: queue.put(("progress", index, position))
            )
        queue.put(("done", index, generations))
    except typer.Exit as e:  # its one line is already on stderr
        queue.put(("exit", index, e.exit_code))
    except Exception as e:  # reported by the parent as one line
        queue.put(("failed", index, str(e)))


@projections_app.command("rebuild")
def projections_rebuild(
    names: Annotated[list[str] | None, typer.Argument(help="projections (all when none)")] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=16,
            help="processes to share the views out between (each makes one pass over the "
            "store); default: one per core (PostgreSQL; SQLite has one writer at a time, "
            "so there the views are rebuilt in one process); 1: one process, one pass",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Rebuild projections from zero into fresh tables, swapped in when complete
    (all those named in one pass over the store: each event read once)."""
    import multiprocessing

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    name_connections("rebuild")
    with opened_projections() as projections:
        chosen = names or list(projections.models)
        unknown = [n for n in chosen if n not in projections.models]
        if unknown:
            fail(f"unknown projection {unknown[0]!r}; known: " + ", ".join(projections.models))
        head = projections.head()
    # SQLite has one writer at a time: processes would only wait for each other.
    sqlite = load_settings().database_url.startswith("sqlite")
    groups = share_out(chosen, 1 if sqlite else jobs or default_jobs())
    processes: list[Any] = []
    queue: Any = None
    if len(groups) > 1:
        # Forked where the platform can: each process starts with the modules
        # this one has imported (spawned, each imported them all again, about
        # half a second of CPU, before reading its first event). Started before
        # the progress bar's thread exists: a fork copies only this thread.
        context = (
            multiprocessing.get_context("fork")
            if "fork" in multiprocessing.get_all_start_methods()
            else multiprocessing.get_context("spawn")
        )
        queue = context.Queue()
        processes = [
            context.Process(
                target=_rebuild_group, args=(os.getpid(), i, group, queue), daemon=True
            )
            for i, group in enumerate(groups)
        ]
        for process in processes:
            process.start()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.0f} events/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        tasks = [
            bar.add_task(
                group[0] if len(group) == 1 else f"{', '.join(group)} (one pass)",
                total=max(head, 1),
                rate=0.0,
            )
            for group in groups
        ]
        started = time.monotonic()

        def advance(index: int, position: int) -> None:
            elapsed = max(time.monotonic() - started, 1e-9)
            bar.update(tasks[index], completed=min(position, head), rate=position / elapsed)

        generations: dict[str, int] = {}
        if len(groups) == 1:
            with opened_projections() as projections:
                try:
                    generations = projections.rebuild_many(
                        groups[0], progress=lambda count, position: advance(0, position)
                    )
                except (ProjectionFailed, RebuildSuperseded) as e:
                    fail(str(e), code=1)
                projections.vacuum(generations)
        else:
            failures: list[str] = []
            exits: list[int] = []
            pending = len(processes)
            while pending:
                kind, index, value = queue.get()
                if kind == "progress":
                    advance(index, value)
                    continue
                pending -= 1
                if kind == "done":
                    generations.update(value)
                elif kind == "exit":
                    exits.append(value)
                else:
                    failures.append(value)
            for process in processes:
                process.join()
            if failures:
                fail(failures[0], code=1)
            if exits:
                raise typer.Exit(exits[0])
            with opened_projections() as projections:
                projections.vacuum(generations)
        for task in tasks:
            bar.update(task, completed=max(head, 1))
        for name in chosen:
            bar.console.print(f"{name}: generation {generations[name]} is live")


@app.command("what-if")
def what_if_command(
    policy: Annotated[str, typer.Option(help="the candidate policy: a policy TOML file")],
    from_: Annotated[
        str, typer.Option("--from", help="start of the period: a date (local) or an ISO instant")
    ],
    to: Annotated[str, typer.Option(help="end: a date (included) or an ISO instant (excluded)")],
    report: Annotated[str, typer.Option(help="sla, appraisal or satisfaction")] = "sla",
    group_by: Annotated[
        str | None,
        typer.Option(
            help="sla: priority (default), zone, technician, severity, target, kind; "
            "satisfaction: technician (default) or service_type"
        ),
    ] = None,
) -> None:
    """Replay the history under a candidate policy into scratch tables and show a
    report for the period as it is and as it would have been, per group, with
    the difference. Live views are not touched."""
    from fieldledger.api.routes.what_if import figure_text, period_bounds
    from fieldledger.domain.policy import parse_policy
    from fieldledger.projections.what_if import REPORTS, Question, check_group_by, what_if
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    if report not in REPORTS:
        fail(f"--report: {report!r} is not one of {', '.join(REPORTS)}")
    try:
        text = Path(policy).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"--policy: cannot read {policy}: {e}")
    settings = load_settings()
    try:
        candidate = parse_policy(text)
        start, end = period_bounds(from_, to, settings.timezone)
        check_group_by(report, group_by)
    except PolicyError as e:
        fail(f"--policy: {e}")
    except InvalidCommand as e:
        fail(f"--{e.field.replace('_', '-')}: {e.message}")
    question = Question(report, start, end, group_by)
    with opened_projections() as projections:
        head = projections.head()
        columns = (
            TextColumn("replaying under the candidate"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(),
        )  # fmt: skip
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task("what-if", total=max(head, 1))
            try:
                answer = what_if(
                    projections, candidate, question, now=projections.ledger.clock(),
                    progress=lambda n, position: bar.update(task, completed=position),
                )  # fmt: skip
            except ProjectionFailed as e:
                fail(str(e), code=1)
    table = Table(
        title=f"what-if: {report} from {start.isoformat()} to {end.isoformat()}, "
        f"policy {answer['actual_policy_version'][:12]} -> "
        f"{answer['candidate_policy_version'][:12]} ({answer['events_replayed']} events)"
    )
    table.add_column(answer["group_by"])
    table.add_column("measure")
    for heading in ("actual", "candidate", "difference"):
        table.add_column(heading, justify="right")
    for group in answer["groups"]:
        actual, candidate_side = group["actual"] or {}, group["candidate"] or {}
        for measure in sorted(set(actual) | set(candidate_side)):
            table.add_row(
                "-" if group["key"] is None else str(group["key"]), measure,
                figure_text(actual.get(measure)), figure_text(candidate_side.get(measure)),
                figure_text(group["difference"].get(measure), signed=True),
            )  # fmt: skip
    Console().print(table)


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        list[str] | None,
        typer.Option(
            help="POSITION:CHAIN_HASH noted earlier outside the database (repeatable); "
            "each must still match"
        ),
    ] = None,
) -> None:
    """Check the tamper-evident hash chain of every event; exit 0 only when intact."""
    from fieldledger.application.hash_chain import verify_chain
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    anchors: dict[int, str] = {}
    for given in anchor or []:
        position, _, chained = given.partition(":")
        if not position.isdigit() or len(chained) != 64:
            fail(f"--anchor {given!r}: expected POSITION:CHAIN_HASH (64 hex digits)")
        anchors[int(position)] = chained.lower()
    ledger = open_ledger(load_settings())
    try:
        head = ledger.recorder.max_notification_id() or 0
        columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn())
        console = Console(stderr=True)
        with Progress(
            *columns, console=console, transient=True, disable=not console.is_terminal
        ) as bar:
            task = bar.add_task("verify", total=max(head, 1))
            verdict = verify_chain(
                ledger.recorder,
                anchors=anchors,
                progress=lambda position: bar.update(task, completed=position),
            )
    finally:
        ledger.close()
    if verdict.broken is not None:
        fail(str(verdict.broken), code=1)
    typer.echo(
        f"audit trail intact: {verdict.events} events up to position {verdict.head}; "
        f"to anchor it outside the database, keep {verdict.head}:{verdict.head_chain_hash or '-'}"
    )


@sla_app.command("sweep")
def sla_sweep(
    at: Annotated[
        str | None,
        typer.Option(help="the instant to sweep at, ISO 8601 with offset (default: now)"),
    ] = None,
) -> None:
    """One pass of automatic escalation: each target red at that instant, still
    open and not escalated yet, is escalated once (actor system); each
    maintenance contract's renewal notice due then is recorded once; and of the
    training deadlines: each passed unmet is recorded overdue once, each final
    test unpassed by its deadline a dismissal."""
    from fieldledger.application.sla_sweep import sweep
    from fieldledger.application.training_sweep import sweep_training
    from fieldledger.projections.appraisal import AppraisalTrainingWatch
    from fieldledger.projections.maintenance_contracts import ContractRenewals
    from fieldledger.projections.satisfaction import SatisfactionSources
    from fieldledger.projections.sla import SlaRedTargets

    instant: datetime | None = None
    if at is not None:
        try:
            instant = datetime.fromisoformat(at.strip())
        except ValueError:
            fail(f"--at: {at!r} is not an ISO 8601 time (e.g. 2026-10-09T10:00:00+08:00)")
        if instant.tzinfo is None or instant.utcoffset() is None:
            fail(f"--at: {at!r} needs a time zone offset (e.g. +08:00 or Z)")
    with opened_projections() as projections:
        try:
            report = sweep(
                projections.ledger, SlaRedTargets(projections), instant,
                surveys=SatisfactionSources(projections), renewals=ContractRenewals(projections),
            )  # fmt: skip
            training = sweep_training(
                projections.ledger, AppraisalTrainingWatch(projections), instant
            )
        except InvalidCommand as e:
            fail(f"--{e.field}: {e.message}")
        except ProjectionFailed as e:
            fail(str(e), code=1)
    for done in report.escalated:
        typer.echo(
            f"escalated {done.kind} {done.aggregate_id} to level {done.level}: "
            f"{done.target} past due (version {done.version})"
        )
    for reminder in report.reminded:
        typer.echo(
            f"reminded {reminder.owner_id or 'nobody'} of {reminder.kind} "
            f"{reminder.aggregate_id}: {reminder.target} turned yellow"
        )
    for notice in report.renewal_notices:
        typer.echo(
            f"renewal notice due for maintenance contract {notice.contract_id}: "
            f"ends {notice.ends_on} (version {notice.version})"
        )
    for staff_id, event_type, what in training.recorded:
        typer.echo(f"recorded {event_type} for {staff_id}: {what}")
    typer.echo(
        f"sla sweep at {report.at.isoformat()}: {len(report.escalated)} escalated, "
        f"{len(report.reminded)} reminded, {len(report.surveys_sent)} survey cards sent, "
        f"{len(report.skipped)} skipped, {len(report.renewal_notices)} renewal notices; "
        f"training: {len(training.recorded)} recorded",
        err=True,
    )


@customers_app.command("id")
def customers_id(
    phone: Annotated[str, typer.Option(help="the customer's phone number")],
) -> None:
    """Print the pseudonymous customer id of a phone number (for the HTTP API)."""
    ledger = open_ledger(load_settings())
    try:
        typer.echo(str(ledger.personal_data.customer_id(phone)))
    finally:
        ledger.close()


@customers_app.command("erase")
def customers_erase(
    phone: Annotated[str, typer.Option(help="the customer's phone number")],
    reason: Annotated[
        str, typer.Option(help="why (e.g. the request's ticket); never personal data")
    ],
    actor: Annotated[
        str, typer.Option(help="the supervisor erasing, as recorded in the Erased event")
    ] = "",
) -> None:
    """Erase a customer's personal data: destroy their data keys and record
    `Erased` (docs/privacy.md). Their name, phone and address then read
    `[erased]` everywhere, for good."""
    import getpass

    from fieldledger.application.ledger import Caller, NotFound
    from fieldledger.domain.facts import Role

    who = actor.strip() or f"cli:{getpass.getuser()}"
    ledger = open_ledger(load_settings())
    try:
        customer_id = ledger.personal_data.customer_id(phone)
        keys = ledger.personal_data.key_count(customer_id)
        result = ledger.erase_customer(
            Caller(who, Role.SUPERVISOR), customer_id, reason, phone=phone
        )
    except NotFound as e:
        fail(str(e), code=1)
    except InvalidCommand as e:
        fail(f"--{e.field}: {e.message}")
    except DomainError as e:
        fail(str(e), code=1)
    finally:
        ledger.close()
    if keys == 0:
        typer.echo(f"customer {customer_id} was erased before; nothing new to erase")
    else:
        typer.echo(
            f"customer {customer_id} erased: {keys} data key(s) destroyed, "
            f"Erased recorded at position {result.position}"
        )


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new master key (for FIELDLEDGER_MASTER_KEY or a key file)."""
    from fieldledger.application.personal_data import new_master_key_text

    sys.stdout.write(new_master_key_text() + "\n")


@keys_app.command("rotate-master")
def keys_rotate_master(
    new_key_file: Annotated[
        Path | None,
        typer.Option(
            help="the new master key's file: read when it exists, else generated there. "
            "Without it the current key file is replaced (required when the key comes "
            "from FIELDLEDGER_MASTER_KEY)"
        ),
    ] = None,
) -> None:
    """Re-wrap every customer data key under a new master key, in one transaction;
    the events are not touched. Restart the service with the new key afterwards."""
    from fieldledger.application.personal_data import (
        MasterKey,
        MasterKeyError,
        new_master_key_text,
        parse_master_key,
        read_key_file,
        write_key_file,
    )

    settings = load_settings()
    ledger = open_ledger(settings)
    current = ledger.personal_data.master
    try:
        replacing = new_key_file is None
        if new_key_file is None:
            if current.path is None:
                fail(
                    f"the master key comes from {current.origin}: give --new-key-file PATH "
                    "for the new one"
                )
            new_key_file = current.path
        target = new_key_file.with_name(new_key_file.name + ".new") if replacing else new_key_file
        if target.exists():
            new = read_key_file(target, "new master key file")
        else:
            text = new_master_key_text()
            write_key_file(target, text)  # first on disk: never a key only in memory
            new = MasterKey(parse_master_key(text, str(target)), f"key file {target}", target)
        count = ledger.personal_data.rotate_master(new)
        if replacing:
            target.replace(new_key_file)
    except MasterKeyError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write the new master key file: {e.strerror}")
    finally:
        ledger.close()
    typer.echo(
        f"master key rotated: {count} data key(s) re-wrapped under key {new.key_id} "
        f"(in {new_key_file}); restart the service with it"
        + (
            ""
            if replacing
            else " (set FIELDLEDGER_MASTER_KEY_FILE, or its content as FIELDLEDGER_MASTER_KEY)"
        )
    )


def main() -> None:
    app()
