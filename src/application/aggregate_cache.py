"""A bounded cache of aggregates for the command path: no read before a command.

A command on an existing aggregate used to read all its events first (one
query and a replay per command). Here each worker keeps the aggregates it last
read or wrote, as they were stored, at most `maxsize` of them (least recently
used first out). The cache is only ever a guess: the store stays the arbiter.

- A command decided on a cached copy is saved with the next version number;
  if another process wrote that version meanwhile, the insert's uniqueness
  check refuses it (as it refuses any lost race), the entry is dropped and the
  command runs again on what the store holds (`FieldLedger._update`).
- A command *refused* on a cached copy (a rule, a role, an If-Match) is decided
  again on what the store holds before the refusal is answered: a stale copy
  can never refuse what the store would allow.
- A command takes its aggregate out of the cache (`take`) and, once saved,
  hands it back (`put(..., copy=False)`): the entry is the object the command
  decided on, and no other command ever holds it meanwhile (another command on
  the same aggregate misses and reads the store). A command that fails half-way
  hands nothing back, so what it changed is never kept; an aggregate read from
  the store is kept as a deep copy (the command goes on to change its own).
  No copy on the way of a command that hits the cache: two deep copies of a
  work order were a tenth of a command's CPU (docs/benchmarks.md).
- Personal data: aggregates read from the store hold customers' data sealed
  (`SealedPersonalData`), never in clear. After a save whose events carried
  personal data in clear, the aggregate's state is given the sealed form just
  written (a booking's customer; an acceptance's signature never reaches the
  state) and it is kept only if nothing in its state is still in clear;
  otherwise it is read again from the store when next needed
  (`FieldLedger._save`). An erasure empties this process's cache (rare, and
  simplest to reason about); other processes' entries hold that customer's
  data sealed only, which the destroyed key no longer opens.

Only commands read through this cache; queries (`FieldLedger.get`, history,
`as_of`) read the store as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from copy import deepcopy
from typing import Any
from uuid import UUID

#: Aggregates kept per worker unless FIELDLEDGER_AGGREGATE_CACHE says otherwise
#: (0 turns the cache off). A work order is a few KB in memory.
DEFAULT_MAXSIZE = 1000


class AggregateCache:
    def __init__(self, maxsize: int = DEFAULT_MAXSIZE) -> None:
        self.maxsize = max(0, maxsize)
        self._entries: OrderedDict[UUID, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        return self.maxsize > 0

    def get(self, aggregate_id: UUID) -> Any | None:
        """A deep copy of the cached aggregate (the caller may change it), or None."""
        with self._lock:
            found = self._entries.get(aggregate_id)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(aggregate_id)
            self.hits += 1
        return deepcopy(found)

    def take(self, aggregate_id: UUID) -> Any | None:
        """The cached aggregate itself, out of the cache (the caller may change
        it, and `put`s it back once saved), or None."""
        with self._lock:
            found = self._entries.pop(aggregate_id, None)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
        return found

    def put(self, aggregate: Any, copy: bool = True) -> None:
        """Keep `aggregate` as it is now (as stored): a copy, or with `copy=False`
        the object itself, which its caller then no longer changes."""
        if not self.enabled:
            return
        kept = deepcopy(aggregate) if copy else aggregate
        with self._lock:
            current = self._entries.get(kept.id)
            if current is not None and current.version > kept.version:
                return  # a newer one is kept already
            self._entries[kept.id] = kept
            self._entries.move_to_end(kept.id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def evict(self, aggregate_id: UUID) -> None:
        with self._lock:
            self._entries.pop(aggregate_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
