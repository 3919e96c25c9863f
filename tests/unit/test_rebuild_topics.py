"""The types of event that read models declare they act on (`catalog.EVENT_TYPES`):
a rebuild process whose views all declare theirs reads only those events from
the store, so each declaration must cover every event its view acts on. Held
here without a database: an event of any other type, fed to the view's
`begin_batch`, `handle` and `end_batch`, must leave no trace (the same
statements as a batch without it), and must not even be looked into (an
event of that type without any of its fields set goes through)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.catalog import (
    EVENT_TYPES,
    READ_MODELS,
    domain_event_classes,
    topics_for,
)
from fieldledger.projections.read_model import Batch, ProjectionSettings, ReadModel, Tables


class RecordingTx:
    """A transaction that answers every query with no rows and records every
    statement sent."""

    dialect = "postgres"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def table(self, name: str) -> str:
        return name

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        yield

    def execute(self, statement: str, params: Any = ()) -> None:
        self.sent.append((statement, params))

    def executemany(self, statement: str, rows: Sequence[Any]) -> None:
        self.sent.append((statement, list(rows)))

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
        self.sent.append((table, list(rows)))

    def query(self, statement: str, params: Any = ()) -> list[Any]:
        self.sent.append((statement, params))
        return []

    def fetchall(self) -> list[Any]:
        return []

    def scalar(self, statement: str, params: Any = ()) -> Any:
        self.sent.append((statement, params))
        return None


SETTINGS = ProjectionSettings(builtin_policy(), "Asia/Shanghai")
MODELS = {m.name: m for m in READ_MODELS}


def run_batch(model: ReadModel, events: list[tuple[int, Any]]) -> list[tuple[str, Any]]:
    tx = RecordingTx()
    tables = Tables({base: f"{base}_g1" for base in model.tables}, 1)
    batch = Batch(tx, tables, events)  # type: ignore[arg-type]
    model.begin_batch(batch)
    for position, event in events:
        model.handle(batch, event, position)
    model.end_batch(batch)
    return tx.sent


def test_the_declared_views_are_in_the_catalogue() -> None:
    assert set(EVENT_TYPES) <= set(MODELS)
    assert "audit" not in EVENT_TYPES  # it records every event


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_a_view_passes_over_every_event_of_a_type_it_does_not_declare(name: str) -> None:
    model = MODELS[name](SETTINGS)
    others = [c for c in domain_event_classes() if not issubclass(c, EVENT_TYPES[name])]
    assert WorkOrder.ServiceStarted in others
    # Events with none of their fields set: looking into one fails.
    events = [(i + 1, object.__new__(c)) for i, c in enumerate(others)]
    assert run_batch(model, events) == run_batch(model, [])


def test_the_topics_read_are_those_of_the_declared_types_and_their_subclasses() -> None:
    models = [MODELS[n](SETTINGS) for n in ("sla", "callbacks")]
    topics = topics_for(models)
    assert "fieldledger.domain.work_orders:WorkOrder.Booked" in topics
    assert "fieldledger.domain.work_orders:WorkOrder.CallbackLogged" in topics
    assert "fieldledger.domain.work_orders:WorkOrder.ServiceStarted" not in topics
    # A view that needs every event: every event is read.
    assert topics_for([*models, MODELS["audit"](SETTINGS)]) == ()

    class Elsewhere(ReadModel):  # a view of the same name that is not the catalogue's
        name = "callbacks"
        tables = ()

        def create_tables(self, tx: Any, t: Tables) -> None:
            pass

        def handle(self, batch: Batch, event: Any, position: int) -> None:
            pass

    assert topics_for([Elsewhere(SETTINGS)]) == ()


def test_a_batch_calls_a_declared_view_s_handler_only_for_its_types_of_event() -> None:
    """The projector's rounds and the rebuild's feed (`batches._Step`) pass an
    event of a type a view does not declare over without calling its `handle`
    (its declaration says it would do nothing); a view not declared, or not
    the catalogue's own, is given every event. An event that could not be
    decoded still stops every view."""
    from fieldledger.projections.batches import ProjectionFailed, _Step, _wanted

    def handled(model: ReadModel, events: list[tuple[int, Any]]) -> list[int]:
        seen: list[int] = []
        model.handle = lambda batch, event, position: seen.append(position)  # type: ignore[method-assign]
        batch = Batch(RecordingTx(), Tables({}, 1), events, ids={})  # type: ignore[arg-type]
        _Step(model.name, model, _wanted(model)).handle(batch)
        return seen

    booked, started = object.__new__(WorkOrder.Booked), object.__new__(WorkOrder.ServiceStarted)
    events: list[tuple[int, Any]] = [(1, booked), (2, started)]
    assert handled(MODELS["sla"](SETTINGS), events) == [1]  # ServiceStarted: not the SLA's
    assert handled(MODELS["audit"](SETTINGS), events) == [1, 2]  # every event

    class Elsewhere(MODELS["sla"]):  # type: ignore[misc,valid-type]
        pass

    assert handled(Elsewhere(SETTINGS), events) == [1, 2]
    with pytest.raises(ProjectionFailed, match="undecodable"):
        handled(MODELS["sla"](SETTINGS), [(3, ProjectionFailed("?", 3, "undecodable"))])
