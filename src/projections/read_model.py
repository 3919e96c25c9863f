"""What every read model is: tables, handlers that map events to rows, queries.

A read model names its tables by their base names; the projector gives it the
physical names of one *generation* of those tables (`sla_targets_g3`). A
rebuild fills a fresh generation while the live one keeps serving, then swaps
them in one transaction, so readers never see a half-built view.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from fieldledger.application.database import Tx
from fieldledger.domain.policy import Policy


@dataclass(frozen=True)
class Tables:
    """Physical (generation-qualified, schema-qualified) names of a read model's tables."""

    names: Mapping[str, str]
    generation: int

    def __getitem__(self, base: str) -> str:
        return self.names[base]

    def __getattr__(self, base: str) -> str:
        try:
            return self.names[base]
        except KeyError:
            raise AttributeError(base) from None


class EventTypes:
    """`isinstance(event, classes)`, remembered per type of event: a handler
    asks it of every event, and the events come in a few dozen types (a test
    against a tuple of classes walks each class's hierarchy every time)."""

    __slots__ = ("_known", "classes")

    def __init__(self, *classes: type[Any]) -> None:
        self.classes = classes
        self._known: dict[type[Any], bool] = {}

    def __call__(self, event: Any) -> bool:
        return self.of_type(type(event))

    def of_type(self, kind: type[Any]) -> bool:
        """Whether events of type `kind` are among them."""
        found = self._known.get(kind)
        if found is None:
            found = self._known[kind] = issubclass(kind, self.classes)
        return found


def event_ids(events: Sequence[tuple[int, Any]]) -> dict[int, str]:
    """`str(event.originator_id)` of each event, by position: the key most views
    file an event's rows under. Turning a UUID into text costs more than most
    of what a view does with an event, and every view needs it; so it is done
    once per event for all the views a batch is fed to. (An event that could
    not be decoded has none: no view is given it.)"""
    ids: dict[int, str] = {}
    for position, event in events:
        originator = getattr(event, "originator_id", None)
        if originator is not None:
            ids[position] = str(originator)
    return ids


class Batch:
    """One batch of events for one generation of one read model: the transaction it
    is applied in, the generation's tables, and whatever the read model keeps for
    the length of the batch (`state`, set by its `begin_batch`), e.g. the rows it
    writes together at `end_batch`. A fresh object per batch, so two builds of one
    read model (the live catch-up and a scratch build for `as_of`) never share it.
    """

    __slots__ = ("bulk", "copies", "events", "ids", "state", "t", "tx")

    def __init__(
        self,
        tx: Tx,
        t: Tables,
        events: Sequence[tuple[int, Any]] = (),
        *,
        bulk: bool = False,
        ids: Mapping[int, str] | None = None,
    ) -> None:
        self.tx = tx
        self.t = t
        #: The batch's (position, event) pairs, for a view that loads at
        #: `begin_batch` the rows they will touch.
        self.events = events
        #: Each event's aggregate id as text, by position (`event_ids`): given
        #: by the feed, which computes them once for every view of the batch.
        self.ids: Mapping[int, str] = event_ids(events) if ids is None else ids
        self.state: Any = None
        #: Rows that only grow are bulk-loaded after the batch's statements: a
        #: fresh generation filled from zero (a rebuild, a scratch build) or
        #: the live views fed together in a projector's round (which, should
        #: a load fail, catches each view up by itself, without it).
        self.bulk = bulk
        #: Rows to bulk-load after the batch's other statements (`append`).
        self.copies: list[tuple[str, tuple[str, ...], Sequence[Sequence[Any]]]] = []

    def release(self) -> None:
        """Drop what the batch holds once it is written. A view's state often
        points back at its batch (`VersionedRows.batch`), a reference cycle
        that only the cyclic garbage collector would free: the batch's events
        and rows would pile up between its collections (a rebuild's process
        spent about a sixth of its time in them), and memory with them."""
        self.state = None
        self.copies = []
        self.events = ()
        self.ids = {}

    def append(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """New rows for a table, none of which can already be there (keyed by the
        event that made them): in a bulk batch loaded with `COPY` (PostgreSQL)
        once the batch's other statements are sent; otherwise inserted now, with
        `ON CONFLICT DO NOTHING`."""
        if not rows:
            return
        if self.bulk:
            self.copies.append((table, tuple(columns), rows))
            return
        self.tx.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)}) ON CONFLICT DO NOTHING",
            rows,
        )


@dataclass(frozen=True)
class ProjectionSettings:
    """What read models may depend on besides the events: policy and time zone."""

    policy: Policy
    timezone: str


class ReadModel(ABC):
    #: Used in table names, tracking keys, the CLI and /projections.
    name: ClassVar[str]
    #: Bump when tables or handlers change meaning: the live view is then stale.
    schema_version: ClassVar[int] = 1
    #: Base names of the tables, each created by `create_tables`.
    tables: ClassVar[tuple[str, ...]]
    #: Tables that keep when each row became true (`projections.versions`):
    #: versioned ones (with a history table, `<base>_history`, among `tables`)
    #: and appended ones, each with the columns a report may read. A read model
    #: with any answers `as_of` a position by a query over them; the others by
    #: a replay into scratch tables.
    versioned: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    appended: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: Columns of those tables that later events rewrite in place (so their
    #: stored value may come from after a position asked for): per table, per
    #: column, the SQL that works it out as of a position instead, over the
    #: row `cur` and the table `{table}`, visible rows being those with
    #: `valid_from <= {position}`.
    as_of_columns: ClassVar[Mapping[str, Mapping[str, str]]] = {}

    def __init__(self, settings: ProjectionSettings) -> None:
        self.settings = settings

    @abstractmethod
    def create_tables(self, tx: Tx, t: Tables) -> None:
        """Create this generation's tables and indexes (IF NOT EXISTS)."""

    @abstractmethod
    def handle(self, batch: Batch, event: Any, position: int) -> None:
        """Apply one event, in the batch's transaction (`batch.tx`, `batch.t`).
        Must be deterministic: a rebuild from zero must come out identical to the
        incremental view."""

    def begin_batch(self, batch: Batch) -> None:  # noqa: B027 - optional hook
        """Called before a batch's events (e.g. to set up `batch.state`)."""

    def end_batch(self, batch: Batch) -> None:  # noqa: B027 - optional hook
        """Called after a batch's events, before its tracking is written (e.g. to
        write the rows kept in `batch.state` with one `executemany`)."""
