"""A ledger with a test-driven clock and the service's read models over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fieldledger.application.ledger import FieldLedger
from fieldledger.domain.policy import builtin_policy
from fieldledger.projections.catalog import READ_MODELS
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings

from tests.integration.field import Clock, Field, utc

SETTINGS = ProjectionSettings(builtin_policy(), "Asia/Shanghai")


@dataclass
class World:
    field: Field
    projections: Projections


def open_world(url: str, batch_size: int = 500) -> tuple[World, FieldLedger]:
    clock = Clock(utc("2026-01-01T00:00"))
    # The worlds write months of history through one clock: no backdating bound.
    ledger = FieldLedger(url, clock=clock, max_backdate=None)
    return World(Field(ledger, clock), Projections(ledger, READ_MODELS, SETTINGS, batch_size)), ledger


@pytest.fixture
def world(sqlite_url: str) -> Iterator[World]:
    """On SQLite: the rules do not depend on the database (the stores' tests and
    the end-to-end tests run both)."""
    w, ledger = open_world(sqlite_url)
    yield w
    ledger.close()
