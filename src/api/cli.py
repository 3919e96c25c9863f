"""The `fieldledger` command line (contract §2)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, NoReturn

import typer
from fieldledger.application.event_store import StoreConfigError
from fieldledger.application.settings import Settings
from fieldledger.domain.errors import DomainError
from fieldledger.domain.policy import PolicyError
from pydantic import ValidationError

app = typer.Typer(
    help="fieldledger: work orders and complaints as an event-sourced ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


def fail(message: str, code: int = 2) -> NoReturn:
    """A one-line message on stderr and a non-zero exit."""
    typer.echo(f"fieldledger: {message}", err=True)
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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="API worker processes")] = 1,
) -> None:
    """Serve the HTTP API on the database of FIELDLEDGER_DATABASE_URL."""
    import uvicorn

    settings = load_settings()
    try:
        from fieldledger.application.event_store import store_environment

        store_environment(settings.database_url)
    except StoreConfigError as e:
        fail(str(e))
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    typer.echo(
        f"fieldledger on {settings.database_url}: API docs at http://{shown}:{port}/docs",
        err=True,
    )
    uvicorn.run(
        "fieldledger.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


@token_app.command("issue")
def token_issue(
    actor: Annotated[str, typer.Option(help="the actor id the token speaks for")],
    role: Annotated[str, typer.Option(help="client_app, dispatcher, technician, ...")],
) -> None:
    """Issue an API token; prints the token alone on stdout."""
    from fieldledger.application.database import Database
    from fieldledger.application.ledger import FieldLedger
    from fieldledger.application.tokens import TokenBook

    settings = load_settings()
    try:
        ledger = FieldLedger(settings.database_url, policy=settings.loaded_policy)
    except StoreConfigError as e:
        fail(str(e))
    try:
        token = TokenBook(Database(ledger.recorder)).issue(actor, role, datetime.now(UTC))
    except DomainError as e:
        fail(str(e))
    finally:
        ledger.close()
    sys.stdout.write(token + "\n")


def main() -> None:
    app()
