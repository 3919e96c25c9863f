"""Projections: every read model over one ledger, kept current, rebuilt and
replayed.

Why not the library's `ProjectionRunner`: it handles one event per transaction
and starts threads per runner; we need batches (a rebuild over millions of
events), generations of tables for rebuilds without downtime, and an error
that stops the projection at the failing event and is reported in status. The
exactly-once part is the library's: the position is written with the library's
tracking recorder, in the same transaction as the rows, and a tracking row that
does not advance refuses the whole batch.

The work is split by job: `generations` (which tables are live, fresh builds,
swaps and drops), `batches` (catch-up and the one-pass feed), `status`. This
module ties them together for the service, the CLI and the API.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from fieldledger.application.database import Database, Tx
from fieldledger.application.ledger import FieldLedger
from fieldledger.projections.batches import (
    BATCH_SIZE,
    Batches,
    ProjectionFailed,
    Target,
    is_transient,
)
from fieldledger.projections.generations import (
    GENERATIONS,
    Build,
    Generations,
    RebuildSuperseded,
    tracking_key,
)
from fieldledger.projections.read_model import ProjectionSettings, ReadModel, Tables
from fieldledger.projections.status import Status, statuses
from fieldledger.projections.versions import as_of_tables

__all__ = [
    "GENERATIONS",
    "BackgroundProjector",
    "ProjectionFailed",
    "Projections",
    "RebuildSuperseded",
    "Status",
    "is_transient",
]

Progress = Callable[[int, int], None]

#: Fresh generations finished at once at the end of a rebuild (PostgreSQL).
FINISHING = 2


class Projections:
    """All read models over one ledger: their generations, positions and runs."""

    def __init__(
        self,
        ledger: FieldLedger,
        read_models: Sequence[type[ReadModel]],
        settings: ProjectionSettings,
        batch_size: int = BATCH_SIZE,
        rebuild_batch_size: int | None = None,
    ) -> None:
        """`batch_size`: events per transaction of a live view's catch-up;
        `rebuild_batch_size` (default: the same): of a one-pass build from zero
        (rebuilds, scratch builds)."""
        self.ledger = ledger
        self.db = Database(ledger.recorder)
        self.read_models = {m.name: m for m in read_models}
        self.models: dict[str, ReadModel] = {m.name: m(settings) for m in read_models}
        self.generations = Generations(self.db, self.models)
        self.batches = Batches(
            ledger, self.db, self.generations, self.models, batch_size, rebuild_batch_size
        )
        self.batch_size = batch_size
        for name in self.models:
            self.generations.ensure_live(name)

    # -- generations ---------------------------------------------------------

    def tables(self, name: str, generation: int) -> Tables:
        return self.generations.tables(name, generation)

    def tracking_key(self, name: str, generation: int) -> str:
        return tracking_key(name, generation)

    def live_generation(self, name: str) -> int | None:
        return self.generations.live(name)

    @contextmanager
    def reading(
        self, name: str, settings: Mapping[str, str] | None = None
    ) -> Iterator[tuple[Tx, Tables]]:
        """A read-only transaction on the live generation of a read model (on
        PostgreSQL with `settings` in force, at no extra round trip)."""
        with self.generations.reading(name, settings) as found:
            yield found

    # -- running -------------------------------------------------------------

    def position(self, name: str, generation: int) -> int:
        return self.batches.position(name, generation)

    def head(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0

    def catch_up(
        self,
        name: str,
        *,
        generation: int | None = None,
        until: int | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Project the events after the generation's position (default: the live
        one) up to `until` (default: the head); returns the new position."""
        generation = generation or self.live_generation(name)
        assert generation is not None
        return self.batches.catch_up(name, generation, until=until, progress=progress)

    def catch_up_all(self) -> dict[str, int]:
        return {name: self.catch_up(name) for name in self.models}

    def wait_for(self, name: str, position: int) -> None:
        """Read your writes: bring the live view up to `position` before answering
        (never past the head of the store)."""
        target = min(position, self.head())
        for _attempt in range(5):  # a rebuild may swap generations meanwhile
            generation = self.live_generation(name)
            assert generation is not None
            if self.position(name, generation) >= target:
                return
            self.catch_up(name, generation=generation, until=target)

    # -- rebuilding ----------------------------------------------------------

    def rebuild(self, name: str, progress: Progress | None = None) -> int:
        """Build one read model from zero into a fresh generation; see `rebuild_many`."""
        return self.rebuild_many([name], progress)[name]

    def rebuild_many(
        self, names: Sequence[str], progress: Progress | None = None
    ) -> dict[str, int]:
        """Build read models from zero into fresh generations while the live ones
        serve, in one pass over the store (each event decoded once, fed to every
        view, one transaction per batch; where every view is listed in
        `catalog.EVENT_TYPES`, only the events of their types), then swap each
        in atomically. Returns the new generation of each.

        A rebuild killed at any point leaves the live generations serving;
        running it again drops the abandoned ones and starts afresh. A view that
        fails on an event stops there (recorded in its status) while the others
        are finished and swapped in; its ProjectionFailed is raised at the end."""
        # Imported here: the catalogue imports the read models, which import this.
        from fieldledger.projections.catalog import topics_for

        builds = [self.generations.start_build(name) for name in names]
        failures = self.batches.feed(
            [Target(b.name, b.generation) for b in builds],
            progress=progress,
            # Views that act on a few types of event only: only those are read
            # and decoded (the views of the other process of a `--jobs 2`
            # rebuild, those of the audit trail's, read every event).
            topics=topics_for(self.models[name] for name in names),
        )
        built = [b for b in builds if b.name not in failures]
        if self.db.dialect != "postgres" or len(built) < 2:
            for build in built:
                self._finish(build, progress)
        else:
            # PostgreSQL's work at the end (`SET LOGGED`, index builds,
            # `ANALYZE`: 2.6 s of a backend's CPU at 100k events, as much as
            # the whole feed's) is one view after another in one backend:
            # two backends share it out, the largest views first.
            with ThreadPoolExecutor(max_workers=FINISHING, thread_name_prefix="finish") as pool:
                finishing = [
                    pool.submit(self._finish, build, progress)
                    for build in self.generations.by_size(built)
                ]
                for future in finishing:
                    future.result()
        if failures:
            raise next(iter(failures.values()))
        return {b.name: b.generation for b in builds}

    def _finish(self, build: Build, progress: Progress | None) -> None:
        self.generations.finish_build(build)
        name, generation = build.name, build.generation
        while not self._swap(name, generation):
            self.catch_up(name, generation=generation, progress=progress)
        self.catch_up(name, generation=generation, progress=progress)  # events since
        self.generations.drop_retired(name)

    def vacuum(self, generations: Mapping[str, int]) -> None:
        """PostgreSQL: VACUUM the tables of these generations that are live, once
        every rebuild process has finished. Each finish already vacuums its own
        tables, but a VACUUM marks a page all-visible only if no transaction
        still open began before the page's rows were committed, and a rebuild's
        finishes overlap (two processes, two threads each): at 100k events
        11,068 of 13,716 pages were marked. Run after the last one, this marks
        the rest (pages already marked are skipped), so index-only scans of the
        new views need not visit the heap, whether or not autovacuum runs."""
        if self.db.dialect != "postgres":
            return
        for name, generation in generations.items():
            if self.live_generation(name) == generation:
                self.generations.vacuum(list(self.tables(name, generation).names.values()))

    def _swap(self, name: str, generation: int) -> bool:
        """Make the built generation live if it is at least as far as the live
        one; in one transaction that holds off the live one's projectors."""
        with self.batches.locks[name], self.db.transaction() as tx:
            self.generations.lock(tx, name)
            live = self.generations.live_in(tx, name)
            live_position = 0 if live is None else self.batches.claim(tx, name, live)
            position = self.batches.claim(tx, name, generation)
            return self.generations.swap(tx, name, generation, position, live_position)

    # -- time travel and scratch builds --------------------------------------

    def position_at(self, instant: datetime) -> int:
        """The store position of the last event recorded at or before `instant`
        (0 when none was). A binary search over the store: positions follow the
        order of recording, so the recorded_at of events ascends with them (up to
        the milliseconds between a command's stamp and its commit)."""
        low, high = 0, self.head()  # the answer lies in [low, high]
        while low < high:
            middle = (low + high + 1) // 2
            found = self.ledger.recorder.select_notifications(start=middle, limit=1, stop=high)
            if found and _recorded_at(self.ledger.mapper.to_domain_event(found[0])) <= instant:
                low = found[0].id
            else:  # nothing recorded in [middle, high] is at or before the instant
                high = middle - 1
        return low

    @contextmanager
    def as_of(self, name: str, position: int) -> Iterator[tuple[Tx, Tables]]:
        """The read model as it was right after store position `position`, in one
        read-only transaction. A read model that keeps when each row became true
        (`ReadModel.versioned`, `appended`) answers with a query over its live
        tables and their history (`projections.versions`): its cost does not grow
        with the history. Any other is replayed into scratch tables up to there."""
        model = self.models[name]
        if not (model.versioned or model.appended):
            with self.scratch(name, position) as found:
                yield found
            return
        self.wait_for(name, position)
        with (
            self.reading(name) as (tx, tables),
            as_of_tables(
                tx, tables, model.versioned, model.appended, position, model.as_of_columns
            ) as then,
        ):
            yield tx, then

    @contextmanager
    def scratch(
        self,
        name: str,
        until: int | None,
        *,
        model: ReadModel | None = None,
        progress: Progress | None = None,
    ) -> Iterator[tuple[Tx, Tables]]:
        """A read model built from zero into a throwaway (scratch) generation of
        its tables, up to store position `until` (the head when None), read in
        one transaction, then dropped. Costs a replay of those events; nothing
        is tracked and the live generation is untouched. `model`: a read model
        configured otherwise (a what-if replay under a candidate policy)."""
        build = self.generations.create_scratch(name)
        try:
            self.batches.feed(
                [Target(name, build.generation, tracked=False, model=model)],
                until=self.head() if until is None else until,
                progress=progress,
            )
            # Read once and dropped: its held-back indexes would cost more to
            # build than the one report's scans they could save.
            with self.db.transaction(commit=False) as tx:
                yield tx, self.tables(name, build.generation)
        finally:
            self.generations.drop_scratch(name, build.generation)

    # -- status --------------------------------------------------------------

    def status(self) -> list[Status]:
        return statuses(self.models, self.generations, self.position, self.head())


class BackgroundProjector:
    """Keeps every live view caught up: polls the store (SQLite has no push
    subscription; on PostgreSQL polling also covers a lost notification)."""

    def __init__(self, projections: Projections, interval: float = 0.2) -> None:
        self.projections = projections
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="projector", daemon=True)
        self.last_errors: dict[str, str] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.round()
            self._stop.wait(self.interval)

    def round(self, until: int | None = None) -> None:
        """One poll: every live view brought up to the head as it stands at
        the round's start (or to `until`), not chased past it. (Chasing the head, under load
        the first view went on with small batches of what arrived while it
        applied the last one, and each view read and decoded on its own.)

        The views that stand together are fed together, each batch in one
        transaction that moves all their tracking rows (`Batches.live_round`:
        the batch's events read and decoded once, one commit for every view).
        Any other view, and every view when such a batch fails, catches up by
        itself (`catch_up`, each from `Batches.recent`): a view that fails on
        an event stops there and is reported while the others advance."""
        head = until
        try:
            if head is None:
                head = self.projections.head()
        except Exception:  # a database hiccup: each view reads to the head
            head = None
        done = set() if head is None else self.projections.batches.live_round(head)
        for name in self.projections.models:
            if self._stop.is_set():
                return
            if name in done:
                self.last_errors.pop(name, None)
                continue
            try:
                self.projections.catch_up(name, until=head)
                self.last_errors.pop(name, None)
            except ProjectionFailed as e:
                self.last_errors[name] = str(e)
            except Exception as e:  # a database hiccup: try again next round
                self.last_errors[name] = f"{type(e).__name__}: {e}"


def _recorded_at(event: Any) -> datetime:
    recorded: datetime = event.timestamp
    return recorded
