"""The SLA read model: every target of every work order and complaint, with its
due time, met time, pauses and the policy version that computed it (contract §6,
§7: `/sla/board`, `/sla/compliance`, and the sweep's candidates).

Each row holds instants, not a status: a target's status at any T follows from
`started_at`, `yellow_from`, `due_at`, `met_at` and `closed_at` alone
(`domain.sla.SlaTarget.status_at`), so "what was red last Friday at 10:00" is
one query. Rows are recomputed by the domain's own `targets()` from what the SLA
knows of the aggregate (`Subject`, kept as JSON per aggregate), with the policy
the order was booked under, learnt from the `PolicyAdopted` events: the view the
HTTP API computes at request time and this one hold the same values, and a
rebuild from zero equals the incremental view.
"""

from __future__ import annotations

import json
import json.encoder
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, Literal
from uuid import UUID

from fieldledger.application.database import Row, Tx
from fieldledger.application.ledger import UnknownPolicy
from fieldledger.application.sla_sweep import RedTarget
from fieldledger.application.transcoder import sorted_json
from fieldledger.domain.adopted_policies import AdoptedPolicy
from fieldledger.domain.business_calendar import BusinessCalendar
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.policy import Policy, builtin_policy, policy_from_document
from fieldledger.domain.sla import (
    OPEN_STATUSES,
    Kind,
    SlaTarget,
    Status,
    Subject,
    TargetFacts,
    calendar_for,
    only_the_end_moved,
    target,
    target_facts,
    target_names,
)
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import Batch, EventTypes, ReadModel, Tables
from fieldledger.projections.unit_of_work import Pending, json_rows, rows_pending, upsert_rows
from fieldledger.projections.versions import VALID_FROM, VersionedRows, create_versioned

NAME = "sla"

#: Subjects kept as last written (`SlaView._written`), at most about this many.
_WRITTEN_KEPT = 4096

#: Events that change what the SLA knows of an aggregate after its creation.
_CHANGES = EventTypes(
    WorkOrder.Assigned, WorkOrder.Arrived, WorkOrder.Accepted, WorkOrder.ResolvedRemotely,
    WorkOrder.Cancelled, WorkOrder.PutOnHold, WorkOrder.Resumed, WorkOrder.Escalated,
    Complaint.Acknowledged, Complaint.Assigned, Complaint.Resolved, Complaint.Closed,
    Complaint.Escalated, WorkOrder.HandedOver, Complaint.HandedOver, WorkOrder.ReminderIssued,
    Complaint.ReminderIssued,
)  # fmt: skip
#: Events that start a subject (`Subject.start`): asked of every event, so by
#: type once, not by `Subject.start`'s test against a union made per call.
_STARTS = EventTypes(WorkOrder.Booked, Complaint.Lodged)
#: Events after which the owner or escalation level may be different.
_OWNER_OR_LEVEL = EventTypes(
    WorkOrder.Assigned, WorkOrder.Escalated, Complaint.Assigned, Complaint.Escalated
)

#: Per type of event, what `SlaView.handle` asks of it: a policy adopted,
#: starts a subject (`_STARTS`), changes one (`_CHANGES`), may change its
#: owner or level (`_OWNER_OR_LEVEL`): answered once per type.
_ASKED: dict[type[Any], tuple[bool, bool, bool, bool]] = {}


def _asked_of(kind: type[Any]) -> tuple[bool, bool, bool, bool]:
    found = _ASKED.get(kind)
    if found is None:
        found = _ASKED[kind] = (
            issubclass(kind, AdoptedPolicy.PolicyAdopted), _STARTS.of_type(kind),
            _CHANGES.of_type(kind), _OWNER_OR_LEVEL.of_type(kind),
        )  # fmt: skip
    return found


GroupBy = Literal["priority", "zone", "technician", "severity", "target", "kind"]
GROUP_COLUMNS: dict[str, tuple[str, Kind | None]] = {
    "priority": ("priority", "work_order"),
    "zone": ("zone", "work_order"),
    "technician": ("owner_id", "work_order"),
    "severity": ("severity", "complaint"),
    "target": ("target", None),
    "kind": ("kind", None),
}


#: `json.dumps(data, sort_keys=True)`, its encoder made once.
_SUBJECT_JSON = sorted_json(ensure_ascii=True)


def _text(value: str | None) -> str:
    return "null" if value is None else _quoted(value)


def _when(value: datetime | None) -> str:
    """`Subject.to_data`'s instant (`isoformat` in UTC) as JSON: that text
    holds no character JSON escapes."""
    if value is None:
        return "null"
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return f'"{value.isoformat()}"'


_quoted = json.encoder.encode_basestring_ascii
_int = int.__repr__


def _subject_text(s: Subject) -> str:
    """`json.dumps(s.to_data(), sort_keys=True)`, the same text written
    directly: a subject is written at every batch that changes it, and its
    plain data and their encoding took 11 us, this 7 (the keys in order,
    each value as `to_data` makes it and the encoder writes it).
    Used while `Subject` has the fields it was written for (`_SUBJECT_FIELDS`);
    tests/unit/test_sla_subject_text.py compares the two."""
    met, q = s.met, _quoted
    return (
        f'{{"accountable_id": {_text(s.accountable_id)}, "aggregate_id": {q(s.aggregate_id)}, '
        f'"appointment_start": {_when(s.appointment_start)}, "closed_at": {_when(s.closed_at)}, '
        f'"closed_by": {_text(s.closed_by)}, "coordinator_id": {_text(s.coordinator_id)}, '
        f'"escalated_targets": [{", ".join(map(q, s.escalated_targets))}], '
        f'"escalation_level": {_int(s.escalation_level)}, "kind": {q(s.kind)}, '
        f'"last_occurred_at": {_when(s.last_occurred_at)}, '
        f'"met": {{{", ".join([f"{q(k)}: {_when(met[k])}" for k in sorted(met)])}}}, '
        f'"owner_id": {_text(s.owner_id)}, '
        f'"pauses": [{", ".join([f"[{_when(a)}, {_when(b)}]" for a, b in s.pauses])}], '
        f'"policy_version": {q(s.policy_version)}, "priority": {_text(s.priority)}, '
        f'"reminded_targets": [{", ".join(map(q, s.reminded_targets))}], '
        f'"severity": {_text(s.severity)}, "started_at": {_when(s.started_at)}, '
        f'"version": {_int(s.version)}, "zone": {_text(s.zone)}}}'
    )


#: The fields `_subject_text` writes: a `Subject` with others (a field added
#: since) is written by `to_data` and the encoder, as ever.
_SUBJECT_FIELDS = frozenset((
    "accountable_id", "aggregate_id", "appointment_start", "closed_at", "closed_by",
    "coordinator_id", "escalated_targets", "escalation_level", "kind", "last_occurred_at",
    "met", "owner_id", "pauses", "policy_version", "priority", "reminded_targets", "severity",
    "started_at", "version", "zone",
))  # fmt: skip


def _subject_data_text(s: Subject) -> str:
    return _SUBJECT_JSON(s.to_data())


#: A subject as stored: `json.dumps(s.to_data(), sort_keys=True)`.
subject_text: Callable[[Subject], str] = (
    _subject_text if frozenset(f.name for f in fields(Subject)) == _SUBJECT_FIELDS
    else _subject_data_text
)  # fmt: skip


def stamp(value: datetime) -> str:
    """An instant as stored: UTC ISO 8601, fixed width, so text order is time order."""
    if value.tzinfo is UTC:  # as decoded from the store: no conversion to make
        return value.isoformat(timespec="microseconds")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else stamp(value)


def _instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


#: The end of what has not ended (an owner row no later row ended, a target
#: still open): after every instant stored, 9999-12-31 included.
OPEN_END = "9999-99"
#: `valid_until` last: the handler's rows carry their position (valid_from)
#: before it, see `end_batch`.
OWNER_COLUMNS = (
    "aggregate_id", "version", "occurred_at", "escalation_level", "owner_id", "coordinator_id",
    "valid_until",
)  # fmt: skip
APPOINTMENT_COLUMNS = ("aggregate_id", "version", "level", "coordinator_id")
POLICY_COLUMNS = ("version", "name", "document", "adopted_at")
TARGET_KEY = ("aggregate_id", "target")
TARGET_COLUMNS = (
    "aggregate_id", "target", "kind", "policy_version", "clock", "started_at",
    "allowed_seconds", "due_at", "yellow_from", "met_at", "closed_at", "closed_as",
    "paused_seconds", "paused_since", "escalated", "calendar_warning", "priority", "zone",
    "severity", "owner_id", "reminded", "span_class",
)  # fmt: skip


class SlaView(ReadModel):
    name = NAME
    # 2: the open_until index the board reads by; 3: reminders and coordinators;
    # 4: versions (valid_from, the targets' history) for reports as of a position
    # 5: owner rows carry `valid_until`, so the board joins them once per target;
    # targets their `span_class`, so the board at a past instant reads by index
    # 6: the span index ends with when a target stopped being open, so that the
    # board's ranges skip the targets ended before the instant in the index
    schema_version = 6
    tables: ClassVar[tuple[str, ...]] = (
        "sla_policies",
        "sla_subjects",
        "sla_targets",
        "sla_owners",
        "sla_appointments",
        "sla_targets_history",
    )
    #: What the board and compliance read, as of a past position. The subjects
    #: (what the SLA knows of each aggregate) are the handlers' working state,
    #: read by no report: not versioned.
    versioned: ClassVar[Mapping[str, tuple[str, ...]]] = {"sla_targets": TARGET_COLUMNS}
    appended: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "sla_owners": OWNER_COLUMNS,
        "sla_appointments": APPOINTMENT_COLUMNS,
        "sla_policies": POLICY_COLUMNS,
    }
    #: An owner row's `valid_until` is set when a later row of its aggregate is
    #: written: as of a position, only the later rows seen by then end it.
    as_of_columns: ClassVar[Mapping[str, Mapping[str, str]]] = {
        "sla_owners": {
            "valid_until": "COALESCE((SELECT MIN(n.occurred_at) FROM {table} n "
            "WHERE n.aggregate_id = cur.aggregate_id AND n.version > cur.version "
            f"AND n.valid_from <= {{position}}), '{OPEN_END}')"
        }
    }

    def __init__(self, settings: Any, *, policy_override: Policy | None = None) -> None:
        super().__init__(settings)
        #: A what-if replay: every subject's targets under this policy instead of
        #: the one it was booked under.
        self.policy_override = policy_override
        self._override_version = None if policy_override is None else policy_override.version
        #: Policies by version; a version is a digest of its content, so a cache
        #: shared by generations cannot differ from what each would read.
        self._policies: dict[str, Policy] = {}
        #: The subjects last written, by (table, aggregate id): the text
        #: stored and the object it was encoded from, taken (not shared) by
        #: the next batch that loads that very text (`begin_batch`).
        self._written: dict[tuple[str, str], tuple[str, Subject]] = {}

    def create_tables(self, tx: Tx, t: Tables) -> None:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.sla_policies} ("
            "version TEXT PRIMARY KEY, name TEXT NOT NULL, document TEXT NOT NULL, "
            "adopted_at TEXT NOT NULL, valid_from INTEGER NOT NULL)"
        )
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.sla_subjects} ("
            "aggregate_id TEXT PRIMARY KEY, kind TEXT NOT NULL, data TEXT NOT NULL)"
        )
        # The board asks for targets still open at T: those whose end (met or
        # closed, whichever came first) lies after T. Indexed, so that the board
        # reads the few open targets instead of scanning every target ever set
        # (a profile at 1M events: a 160 ms sequential scan for 801 open rows).
        # The history has the same indexes: the board as of a position reads both.
        create_versioned(
            tx, t.sla_targets, t.sla_targets_history,
            "aggregate_id TEXT NOT NULL, target TEXT NOT NULL, kind TEXT NOT NULL, "
            "policy_version TEXT NOT NULL, clock TEXT NOT NULL, started_at TEXT NOT NULL, "
            "allowed_seconds REAL NOT NULL, due_at TEXT, yellow_from TEXT, met_at TEXT, "
            "closed_at TEXT, closed_as TEXT, paused_seconds INTEGER NOT NULL, "
            "paused_since TEXT, escalated INTEGER NOT NULL, calendar_warning TEXT, "
            "priority TEXT, zone TEXT, severity TEXT, owner_id TEXT, "
            "reminded INTEGER NOT NULL DEFAULT 0, span_class INTEGER",
            ("aggregate_id", "target"),
            # And those open at a past instant by how long each stayed open (see
            # `span_class`): a range of start times per class instead of every
            # target that ended after the instant (half the table mid-history).
            # The range's entries carry when each target stopped being open, so
            # those that ended before the instant are passed over in the index,
            # their rows never read (at 1M events, the board's query read 782
            # heap pages of two classes' ranges for 103 rows: now 421 pages,
            # executed in 3.4 ms against 10.0).
            {"started_at": "started_at", "due_at": "due_at", "open_until": _open_until(tx),
             "span": f"span_class, started_at, {_open_until(tx)}"},
        )  # fmt: skip
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.sla_owners} ("
            "aggregate_id TEXT NOT NULL, version INTEGER NOT NULL, occurred_at TEXT NOT NULL, "
            "escalation_level INTEGER NOT NULL, owner_id TEXT, coordinator_id TEXT, "
            "valid_until TEXT NOT NULL, valid_from INTEGER NOT NULL, "
            "PRIMARY KEY (aggregate_id, version))"
        )
        # Coordinators appointed by escalations (004 二(二)): the sweep takes
        # turns through a level's roster by how many were appointed at it.
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {t.sla_appointments} ("
            "aggregate_id TEXT NOT NULL, version INTEGER NOT NULL, level INTEGER NOT NULL, "
            "coordinator_id TEXT NOT NULL, valid_from INTEGER NOT NULL, "
            "PRIMARY KEY (aggregate_id, version))"
        )

    # -- events --------------------------------------------------------------

    def begin_batch(self, batch: Batch) -> None:
        """Load in one query the subjects the batch's events change, and in one
        more their targets."""
        t = batch.t
        touched = batch.state = _Touched(
            VersionedRows(batch, t.sla_targets, t.sla_targets_history, TARGET_KEY, TARGET_COLUMNS)
        )
        ids, events = batch.ids, batch.events
        # Tested once per type of event, not per event (a few dozen types).
        changing = {kind for kind in {type(e) for _, e in events} if _CHANGES.of_type(kind)}
        wanted = sorted({ids[p] for p, e in events if type(e) in changing})
        touched.targets.prefetch(wanted)
        touched.loaded.update(wanted)
        # Read at the batch's first event (`_settle`): in a pipeline, with
        # every other view's prefetches, in one round trip.
        touched.pending = rows_pending(
            batch.tx, "aggregate_id, data", t.sla_subjects, "aggregate_id", wanted
        )

    def _settle(self, batch: Batch, touched: _Touched) -> None:
        """The subjects the batch loads, decoded (or taken as last written)."""
        pending, touched.pending = touched.pending, None
        assert pending is not None
        written, table = self._written, batch.t.sla_subjects
        for row in pending.rows():
            key, data = row["aggregate_id"], row["data"]
            # The object a batch wrote this very text from, when the table
            # still holds it (in the live projector, an order's next events
            # come a round or two later): not decoded again. Taken, so no two
            # batches share it; any other text (a rolled-back batch's, another
            # process's) is decoded as ever.
            kept = written.pop((table, key), None)
            touched.subjects[key] = (
                kept[1] if kept is not None and kept[0] == data
                else Subject.from_data(json.loads(data))
            )  # fmt: skip

    def handle(self, batch: Batch, event: Any, position: int) -> None:
        tx, t, touched = batch.tx, batch.t, batch.state
        if touched.pending is not None:
            self._settle(batch, touched)
        adopted, starts, changes, owner_or_level = _asked_of(type(event))
        if adopted:
            tx.execute(
                f"INSERT INTO {t.sla_policies} VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (version) DO NOTHING",
                (event.version, event.name, json.dumps(event.document, sort_keys=True),
                 stamp(event.occurred_at), position),
            )  # fmt: skip
            self._policies.setdefault(event.version, policy_from_document(event.document))
            return
        subject = Subject.start(event) if starts else None
        before: dict[str, TargetFacts] | None = None
        if subject is not None:
            key = subject.aggregate_id  # str(event.originator_id)
            touched.subjects[key] = subject
            touched.targets.known_absent(key)  # its first event: no targets yet
            touched.fresh.add(key)
        elif changes:
            key = batch.ids[position]
            subject = self._subject(batch, key)
            if subject is None:
                return
            # The facts before the event, of the targets that have a row (only
            # those are compared): none yet, none to compute.
            group = touched.targets.group(key)
            before = {
                name: target_facts(subject, name)
                for name in target_names(subject.kind)
                if (key, name) in group
            }
            if not subject.apply(event):
                return
        else:
            return
        touched.dirty[key] = None
        self._set_targets(batch, key, subject, position, before)
        if subject.version == 1 or owner_or_level:
            touched.owners.append(
                (key, event.originator_version, stamp(event.occurred_at),
                 subject.escalation_level, subject.owner_id, subject.coordinator_id, position),
            )  # fmt: skip
        coordinator = getattr(event, "coordinator_id", None)
        if coordinator is not None:
            touched.appointments.append(
                (key, event.originator_version, event.level, coordinator, position)
            )

    def _set_targets(
        self,
        batch: Batch,
        key: str,
        subject: Subject,
        position: int,
        before: Mapping[str, TargetFacts] | None,
    ) -> None:
        """The aggregate's targets as of this event: a target whose row changes
        keeps its previous version in the history.

        Only a target whose facts (`TargetFacts`: met, ended, holds) the event
        changed is computed afresh; in the others the event can change only
        the columns the subject holds directly (owner, escalated, reminded),
        which are set as they are (most events meet one target, or change
        none: a reminder, a handover, an escalation). A target only met or
        ended by the event, its holds the same, gets those columns set and
        keeps its times (`only_the_end_moved`). `before`: the facts before
        the event (None: the aggregate's first event)."""
        rows: VersionedRows = batch.state.targets
        rows.position = position
        names = target_names(subject.kind)
        group = rows.group(key)
        computed: list[SlaTarget] = []
        rules: tuple[Policy, BusinessCalendar] | None = None
        owner, escalated, reminded = (
            subject.owner_id, subject.escalated_targets, subject.reminded_targets
        )  # fmt: skip
        for name in names:
            facts = target_facts(subject, name)
            old = group.get((key, name))
            if before is not None and old is not None:
                was = before[name]
                esc, rem = int(name in escalated), int(name in reminded)
                if was == facts:  # at most the columns the subject holds
                    if old["owner_id"] != owner or old["escalated"] != esc or (
                        old["reminded"] != rem
                    ):
                        rows.update(key, name, owner_id=owner, escalated=esc, reminded=rem)
                    continue
                if only_the_end_moved(was, facts, _instant(old["due_at"])):
                    rows.update(  # compares them with the row's: written only if any differs
                        key, name, owner_id=owner, escalated=esc, reminded=rem,
                        met_at=_stamp(facts.met_at),
                        closed_at=_stamp(facts.closed_at), closed_as=facts.closed_as,
                        span_class=span_class(subject.started_at, facts.met_at or facts.closed_at),
                    )  # fmt: skip
                    continue
            if rules is None:
                rules = self._policy_of(batch, subject)
            computed.append(target(subject, *rules, name, facts))
        for found in [k for k in group if k[1] not in names]:  # pragma: no cover - fixed names
            rows.delete(*found)
        for fresh in computed:
            rows.put_values(_row(subject, fresh))

    def _policy_of(self, batch: Batch, subject: Subject) -> tuple[Policy, BusinessCalendar]:
        """The policy the subject's targets are computed under, and its calendar."""
        if self.policy_override is not None:
            policy = self.policy_override
            return policy, calendar_for(policy, self.settings.timezone, self._override_version)
        policy = self._policy(batch.tx, batch.t, subject.policy_version)
        return policy, calendar_for(policy, self.settings.timezone, subject.policy_version)

    def end_batch(self, batch: Batch) -> None:
        """The batch's writes, one statement per table: the owners seen, the
        subjects changed, and their targets computed afresh."""
        tx, t, touched = batch.tx, batch.t, batch.state
        if touched.pending is not None:
            self._settle(batch, touched)
        owners, ends = _owner_validity(touched.owners)
        end_owners(  # rows of earlier batches, before this batch's are added
            tx, t.sla_owners,
            [(key, first, occurred) for key, (first, occurred) in ends.items()
             if key not in touched.fresh],
        )  # fmt: skip
        batch.append(t.sla_owners, (*OWNER_COLUMNS[:-1], VALID_FROM, "valid_until"), owners)
        batch.append(t.sla_appointments, (*APPOINTMENT_COLUMNS, VALID_FROM), touched.appointments)
        fresh = touched.fresh
        subjects: list[tuple[str, str, str]] = []
        started: list[tuple[str, str, str]] = []  # first stored now: appended
        written, table = self._written, t.sla_subjects
        if len(written) > _WRITTEN_KEPT:
            written.clear()
        for key in touched.dirty:
            s = touched.subjects[key]
            data = subject_text(s)
            (started if key in fresh else subjects).append((key, s.kind, data))
            written[table, key] = (data, s)
        upsert_rows(tx, t.sla_subjects, ("aggregate_id", "kind", "data"), ("aggregate_id",),
                    subjects, ("data",))  # fmt: skip
        batch.append(t.sla_subjects, ("aggregate_id", "kind", "data"), started)
        touched.targets.flush()

    def _subject(self, batch: Batch, key: str) -> Subject | None:
        tx, t = batch.tx, batch.t
        subjects: dict[str, Subject] = batch.state.subjects
        found = subjects.get(key)
        if found is None and key not in batch.state.loaded:
            data = tx.scalar(f"SELECT data FROM {t.sla_subjects} WHERE aggregate_id = ?", (key,))
            if data is None:
                return None
            found = subjects[key] = Subject.from_data(json.loads(data))
        return found

    def _policy(self, tx: Tx, t: Tables, version: str) -> Policy:
        found = self._policies.get(version)
        if found is None:
            document = tx.scalar(
                f"SELECT document FROM {t.sla_policies} WHERE version = ?", (version,)
            )
            if document is not None:
                found = policy_from_document(json.loads(document))
            else:
                # Orders booked before policies were recorded: a version is the
                # digest of its content, so a policy at hand with that version is it.
                at_hand = [self.settings.policy, builtin_policy()]
                found = next((p for p in at_hand if p.version == version), None)
                if found is None:
                    raise UnknownPolicy(f"policy {version} was never recorded as adopted")
            self._policies[version] = found
        return found


def end_owners(tx: Tx, table: str, ends: Sequence[tuple[str, int, str]]) -> None:
    """End the owner rows of earlier batches: for each (aggregate, first
    version of this batch, its occurred_at), the aggregate's rows before that
    version that are valid past that instant become valid until it.

    On PostgreSQL, more than one aggregate in one statement (the triples as
    one JSON parameter, `json_rows`, as the upserts send theirs; each
    aggregate once, so each row is matched by at most one), not a statement
    per aggregate: a bind and an execution each in PostgreSQL. Otherwise,
    and for one, an `executemany`."""
    if tx.dialect == "postgres" and len(ends) > 1:
        text = json_rows(("aggregate_id", "version", "occurred"), ends)
        if text is not None:
            tx.execute(
                f"UPDATE {table} AS o SET valid_until = v.occurred "
                "FROM json_to_recordset(?::json) AS v(aggregate_id text, version integer, "
                "occurred text) "
                "WHERE o.aggregate_id = v.aggregate_id AND o.version < v.version "
                "AND o.valid_until > v.occurred",
                (text,),
            )
            return
    tx.executemany(
        f"UPDATE {table} SET valid_until = ? "
        "WHERE aggregate_id = ? AND version < ? AND valid_until > ?",
        [(occurred, key, first, occurred) for key, first, occurred in ends],
    )


def _owner_validity(
    rows: Sequence[tuple[Any, ...]],
) -> tuple[list[tuple[Any, ...]], dict[str, tuple[int, str]]]:
    """A batch's owner rows (in version order per aggregate) with their
    `valid_until`, and per aggregate the first version and earliest occurred_at
    of the batch, which end the rows written before it.

    A row holds from its `occurred_at` until the earliest `occurred_at` of any
    later row of its aggregate (an event's time never precedes the previous
    one's, so that is the next row's; a tie leaves the row an empty span). So at
    any instant T exactly one row has `occurred_at <= T < valid_until` if any row
    has `occurred_at <= T`, and it is the latest such row by version: the row
    the board read before with `ORDER BY version DESC LIMIT 1`."""
    out: list[tuple[Any, ...]] = []
    later: dict[str, str] = {}
    for row in reversed(rows):
        key, occurred = row[0], row[2]
        out.append((*row, later.get(key, OPEN_END)))
        later[key] = min(occurred, later.get(key, OPEN_END))
    out.reverse()
    ends: dict[str, tuple[int, str]] = {}
    for row in rows:
        ends.setdefault(row[0], (row[1], later[row[0]]))
    return out, ends


#: Upper bounds of how long a target stayed open, one per span class: 1 hour
#: times 4^k. A target open at T with class k started in (T - bound, T], so the
#: board at T reads, per class, one range of the (span_class, started_at) index:
#: at most about 4 times the rows it returns, whatever the store's size and T.
#: Longer spans take the last class, read from its start; open targets (no end
#: yet) have none and are read by the open_until index.
SPAN_BOUNDS = tuple(timedelta(hours=4**k) for k in range(9))


def span_class(started_at: datetime, ended_at: datetime | None) -> int | None:
    """The class of a target that stayed open from `started_at` until `ended_at`
    (met or closed, whichever first); None while it is open."""
    if ended_at is None:
        return None
    # The first class whose bound the span does not exceed (len: none).
    return bisect_left(SPAN_BOUNDS, ended_at - started_at)


@dataclass
class _Touched:
    """What a batch touched: subjects by aggregate id, and the dirty ones in order."""

    #: The targets of the aggregates touched, versioned event by event.
    targets: VersionedRows
    subjects: dict[str, Subject] = field(default_factory=dict)
    dirty: dict[str, None] = field(default_factory=dict)
    #: Keys looked up at the start of the batch (absent from `subjects`: unknown).
    loaded: set[str] = field(default_factory=set)
    owners: list[tuple[Any, ...]] = field(default_factory=list)
    #: Coordinators appointed by the batch's escalations (004 二(二)).
    appointments: list[tuple[Any, ...]] = field(default_factory=list)
    #: Aggregates whose first event is in this batch (no owner rows before it).
    fresh: set[str] = field(default_factory=set)
    #: The subjects loaded at the start of the batch, sent and not yet read.
    pending: Pending | None = None


def _row(subject: Subject, target: SlaTarget) -> tuple[Any, ...]:
    return (
        target.aggregate_id, target.target, target.kind, target.policy_version, target.clock,
        stamp(target.started_at), target.allowed.total_seconds(), _stamp(target.due_at),
        _stamp(target.yellow_from), _stamp(target.met_at), _stamp(target.closed_at),
        target.closed_as, target.paused_seconds, _stamp(target.paused_since),
        int(target.escalated), target.calendar_warning, subject.priority, subject.zone,
        subject.severity, subject.owner_id, int(target.reminded),
        span_class(target.started_at, _ended(target.met_at, target.closed_at)),
    )  # fmt: skip


def _ended(met_at: datetime | None, closed_at: datetime | None) -> datetime | None:
    """When a target stopped being open: met or closed, whichever came first."""
    if met_at is None:
        return closed_at
    return met_at if closed_at is None else min(met_at, closed_at)


# -- queries -------------------------------------------------------------------


@dataclass(frozen=True)
class BoardItem:
    aggregate_id: str
    kind: Kind
    target: str
    started_at: datetime
    due_at: datetime | None
    status: Status
    escalation_level: int
    owner_id: str | None
    policy_version: str
    calendar_warning: str | None
    priority: str | None = None
    zone: str | None = None
    #: When it turns (or turned) yellow: the console schedules its live update by it.
    yellow_from: datetime | None = None
    #: The coordinator appointed by the latest escalation as of then (004 二(二)).
    coordinator_id: str | None = None


@dataclass(frozen=True)
class ComplianceGroup:
    key: str | None
    met: int
    breached: int
    open: int

    @property
    def rate(self) -> float | None:
        """Met on time as a percentage of the decided (met + breached), 2 decimals."""
        decided = self.met + self.breached
        if not decided:
            return None
        pct = (Decimal(self.met) * 100 / decided).quantize(Decimal("0.01"), ROUND_HALF_UP)
        return float(pct)


_STATUS_AT = (
    "CASE WHEN due_at IS NOT NULL AND due_at < ? THEN 'red' "
    "WHEN yellow_from IS NOT NULL AND yellow_from <= ? THEN 'yellow' ELSE 'blue' END"
)


def _open_until(tx: Tx) -> str:
    """When a target stopped being open: its met or closed time, whichever came
    first (OPEN_END while open; instants are ISO text, so they sort before it)."""
    least = "LEAST" if tx.dialect == "postgres" else "MIN"
    return f"{least}(COALESCE(met_at, '{OPEN_END}'), COALESCE(closed_at, '{OPEN_END}'))"


def _stamp_before(at: datetime, span: timedelta) -> str:
    """`at - span` as stored; before year 1, '' (sorts before every instant)."""
    try:
        return stamp(at - span)
    except OverflowError:
        return ""


#: What `board` runs under on PostgreSQL. A few index ranges, for which parallel
#: workers cost more to start (tens of ms on a busy machine) than the whole
#: query takes alone. And planned once per connection: psycopg prepares the
#: statement on its 5th use, but PostgreSQL would still plan it afresh for
#: every execution (its generic plan's estimate is higher), 1.1-1.5 ms of a
#: 4 ms query at 1M events; the generic plan is the same shape (one index range
#: per span class, the owner row by the aggregate's key). A reader opens its
#: transaction with these (`Projections.reading(settings=)`) to save the round
#: trip of setting them.
BOARD_SETTINGS: Mapping[str, str] = {
    "max_parallel_workers_per_gather": "0",
    "plan_cache_mode": "force_generic_plan",
}


def board(
    tx: Tx,
    t: Tables,
    at: datetime,
    statuses: Sequence[Status] = OPEN_STATUSES,
    kind: Kind | None = None,
    *,
    zone: str | None = None,
    priority: str | None = None,
    owner_id: str | None = None,
) -> list[BoardItem]:
    """Targets open at `at` with their status then, and owner and level as of then;
    optionally only those of a zone, a priority, or an owner (as of then)."""
    rows = board_rows(tx, t, at, statuses, kind, zone=zone, priority=priority, owner_id=owner_id)
    return [
        BoardItem(
            aggregate_id=r["aggregate_id"],
            kind=r["kind"],
            target=r["target"],
            started_at=datetime.fromisoformat(r["started_at"]),
            due_at=_instant(r["due_at"]),
            status=r["status"],
            escalation_level=int(r["escalation_level"] or 0),
            owner_id=r["owner_id"],
            policy_version=r["policy_version"],
            calendar_warning=r["calendar_warning"],
            priority=r["priority"],
            zone=r["zone"],
            yellow_from=_instant(r["yellow_from"]),
            coordinator_id=r["coordinator_id"],
        )
        for r in rows
    ]


def board_rows(
    tx: Tx,
    t: Tables,
    at: datetime,
    statuses: Sequence[Status] = OPEN_STATUSES,
    kind: Kind | None = None,
    *,
    zone: str | None = None,
    priority: str | None = None,
    owner_id: str | None = None,
    last: bool = False,
) -> list[Row]:
    """`board`'s rows as stored (instants as `stamp` text, `escalation_level`
    NULL before any owner row), in its order: for a caller that writes them out
    without making a `BoardItem` and parsing three instants per row (the
    route, `/sla/board`). `last`: the transaction's last statement, sent with
    the `COMMIT` that ends a live read (`Tx.query_last`)."""
    s = stamp(at)
    wanted = [x for x in OPEN_STATUSES if x in statuses]
    if not wanted:
        return []
    if tx.dialect == "postgres" and tx.settings.get("max_parallel_workers_per_gather") != "0":
        # Unless the transaction was opened with BOARD_SETTINGS (a round trip less).
        tx.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    inner: list[str] = []
    inner_params: list[Any] = []
    for column, value in (("kind", kind), ("zone", zone), ("priority", priority)):
        if value is not None:
            inner.append(f"AND x.{column} = ? ")
            inner_params.append(value)
    kind_filter = "".join(inner)
    owner_filter = "" if owner_id is None else "AND owner_id = ? "
    # The targets open at `at`, as ranges of indexes (see SPAN_BOUNDS): those
    # still open by the open_until index, the ended ones per span class.
    ranges = [
        f"SELECT * FROM {t.sla_targets} WHERE {_open_until(tx)} = '{OPEN_END}' AND started_at <= ?"
    ]
    range_params = [s]
    for k, bound in enumerate(SPAN_BOUNDS):
        ranges.append(f"SELECT * FROM {t.sla_targets} "
                      f"WHERE span_class = {k} AND started_at > ? AND started_at <= ?")  # fmt: skip
        range_params += [_stamp_before(at, bound), s]
    ranges.append(
        f"SELECT * FROM {t.sla_targets} WHERE span_class = {len(SPAN_BOUNDS)} AND started_at <= ?"
    )
    range_params.append(s)
    return (tx.query_last if last else tx.query)(
        "SELECT * FROM ("
        "SELECT x.aggregate_id, x.kind, x.target, x.started_at, x.due_at, x.policy_version, "
        "x.priority, x.zone, x.yellow_from, "
        f"x.calendar_warning, {_STATUS_AT} AS status, "
        "o.escalation_level, o.owner_id, o.coordinator_id "
        # The owner row in force at `at` (see `_owner_validity`): one row, by
        # the aggregate's key, for each target.
        f"FROM ({' UNION ALL '.join(ranges)}) x LEFT JOIN {t.sla_owners} o "
        "ON o.aggregate_id = x.aggregate_id AND o.occurred_at <= ? AND o.valid_until > ? "
        f"WHERE {_open_until(tx)} > ? {kind_filter}"
        f") b WHERE status IN ({', '.join('?' for _ in wanted)}) {owner_filter}"
        "ORDER BY CASE status WHEN 'red' THEN 0 WHEN 'yellow' THEN 1 ELSE 2 END, "
        "CASE WHEN due_at IS NULL THEN 1 ELSE 0 END, due_at, aggregate_id, target",
        (s, s, *range_params, s, s, s, *inner_params, *wanted,
         *([] if owner_id is None else [owner_id])),
    )  # fmt: skip


def red_targets(tx: Tx, t: Tables, at: datetime) -> list[RedTarget]:
    """The sweep's candidates: red at `at`, still neither met nor ended, not escalated."""
    s = stamp(at)
    rows = tx.query(
        f"SELECT aggregate_id, kind, target FROM {t.sla_targets} "
        "WHERE started_at <= ? AND due_at IS NOT NULL AND due_at < ? "
        "AND met_at IS NULL AND closed_at IS NULL AND escalated = 0 "
        "ORDER BY due_at, aggregate_id, target",
        (s, s),
    )
    return [RedTarget(UUID(r["aggregate_id"]), r["kind"], r["target"]) for r in rows]


def yellow_targets(tx: Tx, t: Tables, at: datetime) -> list[RedTarget]:
    """The sweep's reminder candidates: yellow at `at` (time used past `yellow_at`,
    not yet due), still neither met nor ended, not reminded yet."""
    s = stamp(at)
    rows = tx.query(
        f"SELECT aggregate_id, kind, target FROM {t.sla_targets} "
        "WHERE started_at <= ? AND yellow_from IS NOT NULL AND yellow_from <= ? "
        "AND (due_at IS NULL OR due_at >= ?) "
        "AND met_at IS NULL AND closed_at IS NULL AND reminded = 0 "
        f"AND {_open_until(tx)} = '{OPEN_END}' "  # the open targets, by their index
        "ORDER BY yellow_from, aggregate_id, target",
        (s, s, s),
    )
    return [RedTarget(UUID(r["aggregate_id"]), r["kind"], r["target"]) for r in rows]


def appointments(tx: Tx, t: Tables, level: int) -> int:
    """How many coordinators escalations have appointed at `level` so far."""
    return int(
        tx.scalar(f"SELECT COUNT(*) FROM {t.sla_appointments} WHERE level = ?", (level,)) or 0
    )


def compliance(
    tx: Tx,
    t: Tables,
    *,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    group_by: GroupBy | None = None,
    kind: Kind | None = None,
) -> list[ComplianceGroup]:
    """Targets whose clock started in [start, end): met on time, breached (met
    late, ended late, or past due now), open (still running, not yet due).
    Targets ended in time (cancelled or waived) are not counted."""
    n = stamp(now)
    column, implied_kind = GROUP_COLUMNS[group_by] if group_by else ("'all'", None)
    conditions: list[str] = ["1 = 1"]
    params: list[str] = []
    if start is not None:
        conditions.append("started_at >= ?")
        params.append(stamp(start))
    if end is not None:
        conditions.append("started_at < ?")
        params.append(stamp(end))
    for k in (kind, implied_kind):
        if k is not None:
            conditions.append("kind = ?")
            params.append(k)
    rows = tx.query(
        f"SELECT {column} AS key, "
        "SUM(CASE WHEN met_at IS NOT NULL AND met_at <= due_at THEN 1 ELSE 0 END) AS met, "
        "SUM(CASE WHEN (met_at IS NOT NULL AND met_at > due_at) "
        "OR (met_at IS NULL AND closed_at IS NOT NULL AND due_at < closed_at) "
        "OR (met_at IS NULL AND closed_at IS NULL AND due_at < ?) THEN 1 ELSE 0 END) AS breached, "
        "SUM(CASE WHEN met_at IS NULL AND closed_at IS NULL "
        "AND (due_at IS NULL OR due_at >= ?) THEN 1 ELSE 0 END) AS open "
        f"FROM {t.sla_targets} WHERE {' AND '.join(conditions)}"
        + (f" GROUP BY {column}" if group_by else ""),
        (n, n, *params),
    )
    groups = [
        ComplianceGroup(r["key"], int(r["met"] or 0), int(r["breached"] or 0), int(r["open"] or 0))
        for r in rows
    ]
    groups = [g for g in groups if g.met or g.breached or g.open]
    return sorted(groups, key=lambda g: (g.key is None, g.key or ""))


def stored_targets(tx: Tx, t: Tables, aggregate_id: UUID | str) -> list[Row]:
    """The rows of one aggregate (for tests and diagnostics)."""
    return tx.query(
        f"SELECT * FROM {t.sla_targets} WHERE aggregate_id = ? ORDER BY target",
        (str(aggregate_id),),
    )


def known_policies(tx: Tx, t: Tables) -> list[str]:
    return [
        r["version"] for r in tx.query(f"SELECT version FROM {t.sla_policies} ORDER BY version")
    ]


class SlaRedTargets:
    """The SLA view as the sweep's source of candidates."""

    def __init__(self, projections: Projections) -> None:
        self.projections = projections

    def catch_up(self) -> None:
        self.projections.catch_up(NAME)

    def red_targets(self, at: datetime) -> list[RedTarget]:
        with self.projections.reading(NAME) as (tx, t):
            return red_targets(tx, t, at)

    def yellow_targets(self, at: datetime) -> list[RedTarget]:
        with self.projections.reading(NAME) as (tx, t):
            return yellow_targets(tx, t, at)

    def appointments(self, level: int) -> int:
        with self.projections.reading(NAME) as (tx, t):
            return appointments(tx, t, level)
