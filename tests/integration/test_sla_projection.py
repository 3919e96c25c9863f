"""The SLA projection: given events, expected rows; the board and compliance at an
instant; policies learnt from the events; rebuilt from zero equal to incremental."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from fieldledger.application.commands import WORK_ORDER_SWEEP_ESCALATE, SweepEscalation
from fieldledger.application.database import Database
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.application.sla import sla_targets
from fieldledger.domain.facts import Role
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.sla import Subject, target_names
from fieldledger.domain.sla import target as domain_target
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, Zone
from fieldledger.projections import sla
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings
from fieldledger.projections.sla import SlaView, stamp

from tests.integration.sla_lifecycles import STRICTER, Lifecycles
from tests.views import rows_of

SH = ZoneInfo("Asia/Shanghai")
DISPATCHER = Caller("disp-1", Role.DISPATCHER)
TECH = Caller("tech-1", Role.TECHNICIAN)
SETTINGS = ProjectionSettings(builtin_policy(), "Asia/Shanghai")


def sh(mo: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(2026, mo, d, hh, mm, tzinfo=SH)


class Clock:
    def __init__(self) -> None:
        self.now = sh(11, 23, 9)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(database_url: str, clock: Clock) -> Iterator[FieldLedger]:
    app = FieldLedger(database_url, clock=clock, max_backdate=None)  # months of history
    yield app
    app.close()


def book(ledger: FieldLedger, when: datetime, priority: str = "priority") -> UUID:
    return ledger.book_work_order(
        DISPATCHER, occurred_at=when, customer=Customer("王芳", "138"), service_type="repair",
        priority=Priority(priority), zone=Zone.URBAN, channel=Channel.PHONE,
        billing=Billing.PAID, description="",
    ).id  # fmt: skip


def rows(projections: Projections, aggregate_id: UUID) -> dict[str, dict[str, Any]]:
    with projections.reading(sla.NAME) as (tx, t):
        return {r["target"]: r for r in sla.stored_targets(tx, t, aggregate_id)}


def test_an_order_becomes_three_target_rows(ledger: FieldLedger) -> None:
    projections = Projections(ledger, [SlaView], SETTINGS)
    # Wed 09-30 16:00 priority: response 2 h = 1.5 + 0.5 -> Thu 10-08 09:00 (holiday week
    # in between); assigned Thu 10-08 08:45: met in time.
    order = book(ledger, sh(9, 30, 16))
    ledger.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-1"},
                              occurred_at=sh(10, 8, 8, 45))  # fmt: skip
    projections.catch_up(sla.NAME)
    got = rows(projections, order)
    assert set(got) == {"response", "arrival", "resolution"}
    response = got["response"]
    assert response["due_at"] == stamp(sh(10, 8, 9))
    assert response["met_at"] == stamp(sh(10, 8, 8, 45))
    assert response["policy_version"] == builtin_policy().version
    assert (response["priority"], response["zone"], response["owner_id"]) == (
        "priority", "urban", "tech-1",
    )  # fmt: skip
    # arrival 6 h: 1.5 + 4.5 -> Thu 10-08 13:00, open.
    assert (got["arrival"]["due_at"], got["arrival"]["met_at"]) == (stamp(sh(10, 8, 13)), None)


def test_the_projection_stores_what_the_aggregate_computes(ledger: FieldLedger) -> None:
    projections = Projections(ledger, [SlaView], SETTINGS)
    order = book(ledger, sh(10, 12, 9))
    for command, args, at in [
        ("assign", {"technician_id": "tech-1"}, sh(10, 12, 9, 30)),
        ("hold", {"reason": "customer away"}, sh(10, 12, 10)),
        ("resume", {}, sh(10, 13, 10)),
    ]:
        ledger.work_order_command(DISPATCHER, order, command, args, occurred_at=at)
    projections.catch_up(sla.NAME)
    stored = rows(projections, order)
    for target in sla_targets(ledger, order):
        row = stored[target.target]
        assert row["due_at"] == stamp(target.due_at) if target.due_at else row["due_at"] is None
        assert row["paused_seconds"] == target.paused_seconds
    assert stored["resolution"]["paused_seconds"] == 9 * 3600
    assert stored["resolution"]["due_at"] == stamp(sh(10, 14, 16))


def test_the_board_at_an_instant_shows_what_was_open_then(ledger: FieldLedger) -> None:
    projections = Projections(ledger, [SlaView], SETTINGS)
    # Thu 10-08 09:00 priority: response due 11:00 (yellow from 10:36); assigned at 12:00.
    late = book(ledger, sh(10, 8, 9))
    ledger.work_order_command(DISPATCHER, late, "assign", {"technician_id": "tech-1"},
                              occurred_at=sh(10, 8, 12))  # fmt: skip
    # Routine, booked at 10:00: response due 14:00.
    later = book(ledger, sh(10, 8, 10), "routine")
    projections.catch_up(sla.NAME)
    with projections.reading(sla.NAME) as (tx, t):
        at_1040 = sla.board(tx, t, sh(10, 8, 10, 40))
        at_1130_red = sla.board(tx, t, sh(10, 8, 11, 30), ["red"])
        at_1300 = sla.board(tx, t, sh(10, 8, 13))
        before_booking = sla.board(tx, t, sh(10, 8, 8))
    status = {(str(i.aggregate_id), i.target): i.status for i in at_1040}
    assert status[(str(late), "response")] == "yellow"
    assert status[(str(later), "response")] == "blue"
    # Met at 12:00, so at 11:30 it was open, and red: "what was red then".
    assert [(i.aggregate_id, i.target, i.owner_id) for i in at_1130_red] == [
        (str(late), "response", None)  # assigned only later
    ]
    assert (str(late), "response") not in {(i.aggregate_id, i.target) for i in at_1300}
    assert before_booking == []
    # Red first, then the rest by due time.
    with projections.reading(sla.NAME) as (tx, t):
        at_1130 = sla.board(tx, t, sh(10, 8, 11, 30))
    assert (at_1130[0].aggregate_id, at_1130[0].status) == (str(late), "red")
    assert {i.status for i in at_1130[1:]} == {"blue"}
    dues = [i.due_at for i in at_1130[1:]]
    assert dues == sorted(d for d in dues if d is not None)


def test_escalation_level_and_owner_on_the_board_are_as_of_the_instant(
    ledger: FieldLedger,
) -> None:
    projections = Projections(ledger, [SlaView], SETTINGS)
    order = book(ledger, sh(10, 8, 9))
    ledger.work_order_command(Caller("sup", Role.SUPERVISOR), order, "escalate",
                              {"level": 2, "reason": "vip"}, occurred_at=sh(10, 8, 10))  # fmt: skip
    ledger.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-7"},
                              occurred_at=sh(10, 8, 10, 30))  # fmt: skip
    projections.catch_up(sla.NAME)
    with projections.reading(sla.NAME) as (tx, t):
        (early,) = [i for i in sla.board(tx, t, sh(10, 8, 9, 30)) if i.target == "arrival"]
        (later,) = [i for i in sla.board(tx, t, sh(10, 8, 11)) if i.target == "arrival"]
    assert (early.escalation_level, early.owner_id) == (0, None)
    assert (later.escalation_level, later.owner_id) == (2, "tech-7")


def owners_then(ledger: FieldLedger, aggregate_id: str, at: datetime) -> tuple[Any, ...]:
    """Level, owner and coordinator as the aggregate's own events up to `at` say
    (an aggregate's events never go back in time, so they are a prefix)."""
    events = [e for e in ledger.events.get(UUID(aggregate_id)) if e.occurred_at <= at]
    subject = Subject.from_events(events)
    assert subject is not None
    return (subject.escalation_level, subject.owner_id, subject.coordinator_id)


def board_owners(projections: Projections, at: datetime, **filters: Any) -> dict[str, set[Any]]:
    with projections.reading(sla.NAME) as (tx, t):
        items = sla.board(tx, t, at, **filters)
    found: dict[str, set[Any]] = {}
    for i in items:
        found.setdefault(i.aggregate_id, set()).add(
            (i.escalation_level, i.owner_id, i.coordinator_id)
        )
    return found


def test_owner_level_and_coordinator_change_on_the_board_exactly_at_their_events(
    ledger: FieldLedger,
) -> None:
    # Every event here is reported weeks late (the clock says 11-23): backdated,
    # some at the very same instant as the one before, split over batches of 2
    # and over several catch-ups, so rows are ended both within a batch and by
    # a later one.
    projections = Projections(ledger, [SlaView], SETTINGS, batch_size=2)
    sweep = Caller("sweep", Role.SYSTEM)
    a = book(ledger, sh(10, 8, 9))
    projections.catch_up(sla.NAME)
    b = book(ledger, sh(10, 8, 9, 30))
    ledger.work_order_command(DISPATCHER, b, "assign", {"technician_id": "tech-9"},
                              occurred_at=sh(10, 8, 9, 30))  # fmt: skip  # as it was booked
    # Coordinators are appointed by the sweep's escalations (its own command).
    ledger.execute(WORK_ORDER_SWEEP_ESCALATE, sweep, a, SweepEscalation(
        level=1, reason="vip", target="response", coordinator_id="coord-a",
    ), occurred_at=sh(10, 8, 10))  # fmt: skip
    ledger.work_order_command(DISPATCHER, a, "assign", {"technician_id": "tech-1"},
                              occurred_at=sh(10, 8, 10))  # fmt: skip
    projections.catch_up(sla.NAME)
    ledger.work_order_command(DISPATCHER, a, "assign", {"technician_id": "tech-2"},
                              occurred_at=sh(10, 8, 10, 30))  # fmt: skip
    ledger.execute(WORK_ORDER_SWEEP_ESCALATE, sweep, a, SweepEscalation(
        level=2, reason="still", target="arrival", coordinator_id="coord-b",
    ), occurred_at=sh(10, 8, 10, 30))  # fmt: skip
    ledger.work_order_command(DISPATCHER, a, "assign", {"technician_id": "tech-3"},
                              occurred_at=sh(11, 1, 11, 15))  # fmt: skip
    projections.catch_up(sla.NAME)

    us = timedelta(microseconds=1)
    moments = sorted({e.occurred_at for k in (a, b) for e in ledger.events.get(k)})
    instants = sorted({m + d for m in moments for d in (-us, 0 * us, us, timedelta(minutes=7))})
    seen = set()
    for at in instants:
        on_board = board_owners(projections, at)
        for key, found in on_board.items():
            assert found == {owners_then(ledger, key, at)}, (key, at)
            seen.add((key, *owners_then(ledger, key, at)))
        for owner in ("tech-1", "tech-2", "tech-9"):
            only = board_owners(projections, at, owner_id=owner)
            assert only == {k: v for k, v in on_board.items() if {o[1] for o in v} == {owner}}
    # The board went through every state in turn, ties resolved to the later event.
    assert {(k, lvl, o, c) for k, lvl, o, c in seen if k == str(a)} == {
        (str(a), 0, None, None), (str(a), 1, "tech-1", "coord-a"),
        (str(a), 2, "tech-2", "coord-b"), (str(a), 2, "tech-3", "coord-b"),
    }  # fmt: skip
    assert {(k, lvl, o, c) for k, lvl, o, c in seen if k == str(b)} == {(str(b), 0, "tech-9", None)}
    assert board_owners(projections, sh(10, 8, 10, 30) - us)[str(a)] == {(1, "tech-1", "coord-a")}
    assert board_owners(projections, sh(10, 8, 10, 30))[str(a)] == {(2, "tech-2", "coord-b")}

    # Rebuilt from zero in one batch: the same rows, the same spans.
    generation = projections.live_generation(sla.NAME)
    assert generation is not None
    incremental = rows_of(projections, sla.NAME, generation)
    fresh = Projections(ledger, [SlaView], SETTINGS, batch_size=500)
    assert rows_of(fresh, sla.NAME, fresh.rebuild(sla.NAME)) == incremental
    spans = sorted((r["version"], r["occurred_at"], r["valid_until"])
                   for r in _owner_rows(projections, a))  # fmt: skip
    assert [(v, until) for v, _, until in spans] == [
        (1, stamp(sh(10, 8, 10))), (2, stamp(sh(10, 8, 10))), (3, stamp(sh(10, 8, 10, 30))),
        (4, stamp(sh(10, 8, 10, 30))), (5, stamp(sh(11, 1, 11, 15))), (6, sla.OPEN_END),
    ]  # fmt: skip


def open_then(rows: list[dict[str, Any]], at: datetime) -> set[tuple[str, str]]:
    """The targets open at `at`, by the definition: started, and neither met nor
    closed yet."""
    t = stamp(at)
    return {
        (r["aggregate_id"], r["target"]) for r in rows
        if r["started_at"] <= t < min(r["met_at"] or "9999", r["closed_at"] or "9999")
    }  # fmt: skip


def test_the_board_at_any_instant_holds_targets_of_every_span(ledger: FieldLedger) -> None:
    # Orders cancelled after a microsecond, minutes, hours, days, months and
    # years (each a span class of its own), and one still open: at instants
    # around every start and end, the board has exactly the targets open then.
    projections = Projections(ledger, [SlaView], SETTINGS, batch_size=3)
    end = sh(11, 20, 10)
    lifetimes = [timedelta(microseconds=1), timedelta(hours=3), timedelta(hours=10),
                 timedelta(days=2), timedelta(days=10), timedelta(days=20),
                 timedelta(days=100), timedelta(days=365), timedelta(days=3 * 365),
                 timedelta(days=10 * 365)]  # fmt: skip
    for lifetime in lifetimes:
        order = book(ledger, end - lifetime)
        ledger.work_order_command(DISPATCHER, order, "cancel", {"reason": "x"}, occurred_at=end)
    book(ledger, end - timedelta(days=9))
    projections.catch_up(sla.NAME)
    with projections.reading(sla.NAME) as (tx, t):
        stored = tx.query(f"SELECT * FROM {t.sla_targets}")
    assert {r["span_class"] for r in stored} == {*range(len(sla.SPAN_BOUNDS) + 1), None}
    us = timedelta(microseconds=1)
    moments = {datetime.fromisoformat(r[c]) for r in stored for c in ("started_at", "closed_at")
               if r[c] is not None}  # fmt: skip
    instants = {m + d for m in moments for d in (-us, 0 * us, us, timedelta(hours=5))}
    for at in sorted(instants) + [end - lifetime / 2 for lifetime in lifetimes]:
        with projections.reading(sla.NAME) as (tx, t):
            shown = {(i.aggregate_id, i.target) for i in sla.board(tx, t, at)}
        assert shown == open_then(stored, at), at


def test_the_board_s_span_ranges_pass_over_ended_targets_in_the_index(
    ledger: FieldLedger,
) -> None:
    """The span index, which the board reads one range of start times per class
    of, ends with when each target stopped being open: the targets of a range
    that ended before the instant are passed over in the index, their rows
    never read (at 1M events, 782 heap pages for 103 rows before)."""
    projections = Projections(ledger, [SlaView], SETTINGS)
    projections.catch_up(sla.NAME)
    with projections.reading(sla.NAME) as (tx, t):
        *schema, table = (part.strip('"') for part in t.sla_targets.split("."))
        if tx.dialect == "postgres":
            found = tx.query(
                "SELECT indexdef AS sql FROM pg_indexes WHERE tablename = ? "
                "AND schemaname = COALESCE(?, current_schema()) AND indexname LIKE '%span'",
                (table, schema[0] if schema else None),
            )
            end = "LEAST(COALESCE(met_at"
        else:
            found = tx.query(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND name LIKE '%span'",
                (table,),
            )
            end = "MIN(COALESCE(met_at"
    (index,) = found
    columns = str(index["sql"]).split("(", 1)[1].replace(" ", "")
    assert columns.startswith(f"span_class,started_at,{end.replace(' ', '')}"), index["sql"]


def _owner_rows(projections: Projections, aggregate_id: UUID) -> list[Any]:
    with projections.reading(sla.NAME) as (tx, t):
        return tx.query(
            f"SELECT * FROM {t.sla_owners} WHERE aggregate_id = ?", (str(aggregate_id),)
        )


def test_compliance_counts_met_breached_and_open(ledger: FieldLedger, clock: Clock) -> None:
    projections = Projections(ledger, [SlaView], SETTINGS)
    clock.now = sh(10, 8, 12)
    on_time = book(ledger, sh(10, 8, 9))  # response due 11:00
    ledger.work_order_command(DISPATCHER, on_time, "assign", {"technician_id": "tech-1"},
                              occurred_at=sh(10, 8, 10))  # fmt: skip
    late = book(ledger, sh(10, 8, 9, 10))  # due 11:10, assigned 11:30
    ledger.work_order_command(DISPATCHER, late, "assign", {"technician_id": "tech-2"},
                              occurred_at=sh(10, 8, 11, 30))  # fmt: skip
    book(ledger, sh(10, 8, 9, 20))  # unassigned, due 11:20: past due at 12:00
    cancelled = book(ledger, sh(10, 8, 11), "routine")  # cancelled before anything was due
    ledger.work_order_command(DISPATCHER, cancelled, "cancel", {"reason": "x"},
                              occurred_at=sh(10, 8, 11, 5))  # fmt: skip
    projections.catch_up(sla.NAME)
    with projections.reading(sla.NAME) as (tx, t):
        by_target = sla.compliance(tx, t, start=sh(10, 8), end=sh(10, 9), now=sh(10, 8, 12),
                                   group_by="target")  # fmt: skip
        by_technician = sla.compliance(tx, t, start=None, end=None, now=sh(10, 8, 12),
                                       group_by="technician")  # fmt: skip
        nothing = sla.compliance(tx, t, start=sh(10, 9), end=None, now=sh(10, 8, 12))
    response = next(g for g in by_target if g.key == "response")
    assert (response.met, response.breached, response.open) == (1, 2, 0)
    assert response.rate == 33.33
    arrival = next(g for g in by_target if g.key == "arrival")
    assert (arrival.met, arrival.breached, arrival.open, arrival.rate) == (0, 0, 3, None)
    assert [g.key for g in by_technician] == ["tech-1", "tech-2", None]
    assert nothing == []


def test_rows_use_the_policy_each_order_was_booked_under_even_after_a_change(
    ledger: FieldLedger,
) -> None:
    old = book(ledger, sh(10, 8, 9))  # builtin: priority response 2 h -> 11:00
    ledger.adopt_policy(STRICTER)
    # As if the service restarted with a stricter policy file:
    ledger.policy, ledger.policy_version = STRICTER, STRICTER.version
    new = book(ledger, sh(10, 8, 9))  # stricter: 1 h -> 10:00
    # A service that now runs yet another policy rebuilds from zero: both orders
    # keep their own, learnt from the PolicyAdopted events.
    projections = Projections(ledger, [SlaView], ProjectionSettings(STRICTER, "Asia/Shanghai"))
    projections.rebuild(sla.NAME)
    assert rows(projections, old)["response"]["due_at"] == stamp(sh(10, 8, 11))
    assert rows(projections, new)["response"]["due_at"] == stamp(sh(10, 8, 10))
    assert rows(projections, new)["response"]["policy_version"] == STRICTER.version
    with projections.reading(sla.NAME) as (tx, t):
        assert sla.known_policies(tx, t) == sorted([builtin_policy().version, STRICTER.version])


def test_a_policy_is_recorded_once_before_the_first_booking(database_url: str) -> None:
    first = FieldLedger(database_url, max_backdate=None)  # books in October 2026
    second = FieldLedger(database_url, max_backdate=None)  # another process on the same store
    try:
        book(first, sh(10, 8, 9))  # adopts the policy first
        assert first.adopt_policy() is None
        assert second.adopt_policy() is None  # recorded already
        book(second, sh(10, 8, 10))
        topics = [n.topic for n in first.recorder.select_notifications(start=1, limit=10)]
        assert [t.rsplit(".", 1)[-1] for t in topics] == ["PolicyAdopted", "Booked", "Booked"]
        assert second.policy_by_version(builtin_policy().version) == builtin_policy()
    finally:
        first.close()
        second.close()


# -- rebuilt from zero equals built incrementally ---------------------------------------


def build_and_compare(database_url: str, lifecycles: int, seed: int) -> None:
    ledger = FieldLedger(database_url)
    try:
        live = Projections(ledger, [SlaView], SETTINGS, batch_size=37)
        rng = random.Random(seed)

        def maybe_catch_up() -> None:
            if rng.random() < 0.3:
                live.catch_up(sla.NAME)

        generator = Lifecycles(ledger, seed)
        generator.run(lifecycles, between_saves=maybe_catch_up)
        live.catch_up(sla.NAME)
        generation = live.live_generation(sla.NAME)
        assert generation is not None
        incremental = rows_of(live, sla.NAME, generation)
        assert len(incremental["sla_subjects"]) == lifecycles
        assert len(incremental["sla_policies"]) == 2
        statuses = {r[0] for r in _column(incremental, "closed_as")}
        assert {None, "cancelled", "waived"} <= statuses  # the generator reached every end

        # From zero, other batches, a fresh process (no cached policies).
        fresh = Projections(ledger, [SlaView], SETTINGS, batch_size=500)
        rebuilt_generation = fresh.rebuild(sla.NAME)
        assert rows_of(fresh, sla.NAME, rebuilt_generation) == incremental

        # And equal to the view without its shortcuts (every target of every
        # event computed afresh by the domain): every row and every version
        # in the history, so a shortcut that set any column otherwise fails.
        reference = Projections(ledger, [EveryTargetRecomputed], SETTINGS, batch_size=53)
        assert rows_of(reference, sla.NAME, reference.rebuild(sla.NAME)) == incremental

        # The board's level, owner and coordinator at instants around the
        # sampled aggregates' events: what their own events said then.
        picked = random.Random(seed).sample(generator.ids, min(12, len(generator.ids)))
        histories = {k: list(ledger.events.get(UUID(k))) for k in picked}
        us = timedelta(microseconds=1)
        instants = {e.occurred_at + d for h in histories.values() for e in h for d in (-us, us)}
        checked = 0
        with fresh.reading(sla.NAME) as (tx, t):
            stored = tx.query(f"SELECT * FROM {t.sla_targets}")
        for at in sorted(instants):
            with fresh.reading(sla.NAME) as (tx, t):
                shown = {(i.aggregate_id, i.target) for i in sla.board(tx, t, at)}
            assert shown == open_then(stored, at), at
            for key, found in board_owners(fresh, at).items():
                if key in histories:
                    events = [e for e in histories[key] if e.occurred_at <= at]
                    then = Subject.from_events(events)
                    assert then is not None
                    assert found == {(then.escalation_level, then.owner_id, then.coordinator_id)}
                    checked += 1
        assert checked > len(picked)

        # And the stored rows are what each aggregate computes from its own events.
        sample = random.Random(seed).sample(generator.ids, min(40, len(generator.ids)))
        for aggregate_id in sample:
            stored = rows(fresh, UUID(aggregate_id))
            for target in sla_targets(ledger, UUID(aggregate_id)):
                row = stored[target.target]
                assert (row["due_at"], row["met_at"], row["closed_at"], row["paused_seconds"]) == (
                    target.due_at and stamp(target.due_at),
                    target.met_at and stamp(target.met_at),
                    target.closed_at and stamp(target.closed_at),
                    target.paused_seconds,
                )
    finally:
        ledger.close()


class EveryTargetRecomputed(SlaView):
    """The SLA view without its shortcuts: at every event that changes a
    subject, each of its targets computed afresh by the domain's `target` and
    put as a whole row (written only when some column differs)."""

    def _set_targets(
        self,
        batch: Any,
        key: str,
        subject: Subject,
        position: int,
        before: Any,
    ) -> None:
        rows = batch.state.targets
        rows.position = position
        policy, calendar = self._policy_of(batch, subject)
        for name in target_names(subject.kind):
            rows.put_values(sla._row(subject, domain_target(subject, policy, calendar, name)))


def _column(view: dict[str, list[Any]], name: str) -> list[tuple[Any]]:
    return [tuple(v for k, v in row if k == name) for row in view["sla_targets"]]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rebuilt_from_zero_equals_incremental_on_sqlite(tmp_path: Path, seed: int) -> None:
    # 3 x 1000 randomized lifecycles, ~7 events each, split so xdist can spread them.
    build_and_compare(f"sqlite:///{tmp_path / 'sla.db'}", 1000, seed)


@pytest.mark.postgres
def test_rebuilt_from_zero_equals_incremental_on_postgres(pg_url: str) -> None:
    build_and_compare(pg_url, 150, 4)


def test_the_board_at_the_ends_of_the_calendar(ledger: FieldLedger) -> None:
    projections = Projections(ledger, [SlaView], SETTINGS)
    order = book(ledger, sh(10, 8, 9))
    projections.catch_up(sla.NAME)
    first, last = datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    with projections.reading(sla.NAME) as (tx, t):
        assert sla.board(tx, t, first) == []  # the span classes reach back past year 1
        assert {i.aggregate_id for i in sla.board(tx, t, last)} == {str(order)}


def test_board_queries_compare_instants_as_text_correctly() -> None:
    # Fixed-width UTC text sorts as time does, microseconds or not.
    a, b = sh(10, 8, 9), sh(10, 8, 9) + timedelta(microseconds=1)
    assert stamp(a) < stamp(b) < stamp(sh(10, 8, 9, 0) + timedelta(seconds=1))


def test_a_batch_takes_the_subject_the_last_one_wrote_only_while_the_table_holds_it(
    ledger: FieldLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subject written by one batch is not decoded again by the next when
    the table still holds the very text written (the object kept is taken);
    when the table holds anything else (a rolled-back batch's object, another
    writer's row), it is decoded from the table. The rows are the same."""
    projections = Projections(ledger, [SlaView], SETTINGS)
    view = projections.models[sla.NAME]
    assert isinstance(view, SlaView)
    decoded: list[str] = []
    from_data = Subject.from_data.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Subject], data: dict[str, Any]) -> Subject:
        decoded.append(data["aggregate_id"])
        return from_data(cls, data)  # type: ignore[no-any-return]

    monkeypatch.setattr(Subject, "from_data", classmethod(counting))
    order = book(ledger, sh(9, 30, 16))
    projections.catch_up(sla.NAME)
    ledger.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-1"},
                              occurred_at=sh(10, 8, 8, 45))  # fmt: skip
    projections.catch_up(sla.NAME)
    assert decoded == []  # the booking's batch wrote it; the assignment's took it
    assert rows(projections, order)["response"]["met_at"] == stamp(sh(10, 8, 8, 45))
    # What a batch rolled back after its end left: an object the table does not hold.
    ((key, (_text, kept)),) = view._written.items()
    stale = Subject.from_data({**kept.to_data(), "owner_id": "someone-else"})
    decoded.clear()
    view._written[key] = ("not what the table holds", stale)
    for command in ("confirm", "depart", "arrive"):
        ledger.work_order_command(TECH, order, command, {}, occurred_at=sh(10, 8, 9))
    projections.catch_up(sla.NAME)
    assert decoded == [str(order)]
    got = rows(projections, order)
    assert got["arrival"]["met_at"] == stamp(sh(10, 8, 9))
    assert got["arrival"]["owner_id"] == "tech-1"


@pytest.mark.parametrize("many", [True, False])
def test_owner_rows_are_ended_by_one_statement_as_by_one_per_aggregate(
    ledger: FieldLedger, many: bool
) -> None:
    """`sla.end_owners` (on PostgreSQL one statement for a batch's aggregates)
    ends exactly the rows one UPDATE per aggregate ended: each aggregate's
    rows before the batch's first version still valid past its instant, and
    no other aggregate's; the same on both databases."""
    db = Database(ledger.recorder)
    with db.transaction(commit=False) as tx:
        table = tx.table("sla_owners_probe")
        tx.execute(
            f"CREATE TABLE {table} (aggregate_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "occurred_at TEXT NOT NULL, valid_until TEXT NOT NULL, "
            "PRIMARY KEY (aggregate_id, version))"
        )
        tx.executemany(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?)",
            [("a", 1, "2026-01-01", "2026-01-03"), ("a", 3, "2026-01-03", sla.OPEN_END),
             ("a", 5, "2026-01-05", sla.OPEN_END), ("b", 1, "2026-01-01", sla.OPEN_END),
             ("b", 2, "2026-01-02", "2026-01-09"), ("c", 1, "2026-01-01", sla.OPEN_END)],
        )  # fmt: skip
        ends = (
            [("a", 5, "2026-01-04"), ("b", 3, "2026-01-08")] if many else [("a", 5, "2026-01-04")]
        )
        sla.end_owners(tx, table, ends)
        sla.end_owners(tx, table, [])
        found = {
            (r["aggregate_id"], r["version"]): r["valid_until"]
            for r in tx.query(f"SELECT * FROM {table}")
        }
    assert found == {
        ("a", 1): "2026-01-03",  # already ended before the instant
        ("a", 3): "2026-01-04",
        ("a", 5): sla.OPEN_END,  # the batch's own
        ("b", 1): "2026-01-08" if many else sla.OPEN_END,
        ("b", 2): "2026-01-08" if many else "2026-01-09",
        ("c", 1): sla.OPEN_END,
    }
