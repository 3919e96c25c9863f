"""The composition root: the one place the service's parts are built and wired.

`fieldledger serve` (the app's lifespan, src/api/app.py) and every CLI command
(src/api/cli.py) open the ledger, the token book, the read models and the
background workers here, so the two cannot drift apart: the same master key
handling, the same schema lock, the same wiring of the read models commands
consult.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fieldledger.api.background import Workers, wire, workers
from fieldledger.application.database import Database
from fieldledger.application.event_store import schema_lock
from fieldledger.application.ledger import FieldLedger
from fieldledger.application.settings import Settings
from fieldledger.application.tokens import TokenBook
from fieldledger.projections.catalog import READ_MODELS
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings

#: Told where a master key was generated for the embedded database (keep a copy).
KeyNotice = Callable[[Path], None]


def open_ledger(settings: Settings, key_generated: KeyNotice) -> FieldLedger:
    """The ledger on the settings' database, under the schema lock (several
    processes may start at once). Raises what opening raises: StoreConfigError,
    MasterKeyError, PersistenceError."""
    # Resolved here, not when the app is made: describing the API (/openapi.json,
    # docs/reference.md) needs no key, and must not generate one.
    master_key = settings.resolved_master_key
    if master_key.generated and master_key.path is not None:
        key_generated(master_key.path)
    with schema_lock(settings.database_url):
        return FieldLedger(
            settings.database_url, policy=settings.loaded_policy, timezone=settings.timezone,
            master_key=master_key, max_backdate=settings.backdate_bound,
        )  # fmt: skip


def token_book(ledger: FieldLedger) -> TokenBook:
    """The tokens, kept in the ledger's database."""
    return TokenBook(Database(ledger.recorder))


def open_projections(settings: Settings, ledger: FieldLedger) -> Projections:
    """Every read model of the catalogue over the ledger's store."""
    with schema_lock(settings.database_url):
        return _projections(settings, ledger)


def _projections(settings: Settings, ledger: FieldLedger) -> Projections:
    return Projections(
        ledger,
        READ_MODELS,
        ProjectionSettings(policy=settings.loaded_policy, timezone=settings.timezone),
        batch_size=settings.projection_batch_size,
        rebuild_batch_size=settings.rebuild_batch_size,
    )


@dataclass
class Service:
    """The ledger, its read models and (for the HTTP service) its tokens, wired."""

    settings: Settings
    ledger: FieldLedger
    projections: Projections
    tokens: TokenBook | None = None

    @classmethod
    def open(
        cls, settings: Settings, key_generated: KeyNotice, *, serving: bool = False
    ) -> Service:
        """Open and wire everything. `serving`: the HTTP service, which records
        the policy in force before any request and answers with tokens (hand-overs
        then check the staff id against the token holders)."""
        ledger = open_ledger(settings, key_generated)
        try:
            tokens = None
            with schema_lock(settings.database_url):
                if serving:
                    ledger.adopt_policy()  # read models learn each policy from the events
                    tokens = token_book(ledger)
                    tokens.listen()  # PostgreSQL: hear of revocations by any process
                projections = _projections(settings, ledger)
            wire(projections, tokens)
        except BaseException:
            if tokens is not None:
                tokens.close()
            ledger.close()
            raise
        return cls(settings, ledger, projections, tokens)

    def workers(self) -> Workers:
        """The background workers the settings ask for (not started)."""
        return workers(self.settings, self.projections)

    def close(self) -> None:
        if self.tokens is not None:
            self.tokens.close()
        self.ledger.close()
