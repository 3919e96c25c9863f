"""The SLA sweep: each red target escalated once, as the system, even by two
sweeps at once; a sweep "at T" in the past; nothing escalated that is not red."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.application.sla_sweep import RedTarget, SweepReport, escalate_if_red, sweep
from fieldledger.domain.complaints import Complainant, ComplaintChannel, Severity
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Role
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, Zone
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings
from fieldledger.projections.sla import SlaRedTargets, SlaView

SH = ZoneInfo("Asia/Shanghai")
DISPATCHER = Caller("disp-1", Role.DISPATCHER)
SETTINGS = ProjectionSettings(builtin_policy(), "Asia/Shanghai")


def sh(mo: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(2026, mo, d, hh, mm, tzinfo=SH)


NOW = sh(10, 9, 12)  # Fri 10-09 12:00


@pytest.fixture
def ledger(database_url: str) -> Iterator[FieldLedger]:
    app = FieldLedger(database_url, clock=lambda: NOW)
    yield app
    app.close()


def book(ledger: FieldLedger, when: datetime, priority: str = "priority") -> UUID:
    return ledger.book_work_order(
        DISPATCHER, occurred_at=when, customer=Customer("王芳", "138"), service_type="repair",
        priority=Priority(priority), zone=Zone.URBAN, channel=Channel.PHONE,
        billing=Billing.PAID, description="",
    ).id  # fmt: skip


def act(ledger: FieldLedger, order: UUID, command: str, when: datetime, **args: Any) -> None:
    ledger.work_order_command(DISPATCHER, order, command, args, occurred_at=when)


def escalations(ledger: FieldLedger, aggregate_id: UUID) -> list[dict[str, Any]]:
    return [
        {"level": e.data["level"], "target": e.data["target"], "actor": e.actor, "role": e.role,
         "occurred_at": e.occurred_at}
        for e in ledger.history(_kind(ledger, aggregate_id), aggregate_id)
        if e.type == "Escalated"
    ]  # fmt: skip


def _kind(ledger: FieldLedger, aggregate_id: UUID) -> Any:
    return type(ledger.repository.get(aggregate_id))


def the_red_world(ledger: FieldLedger) -> dict[str, UUID]:
    """Thu 10-08 09:00 priority orders: response due 11:00, arrival 15:00, resolution
    Fri 10-09 16:00 (8.5 h Thu + 7.5 h Fri; yellow from 12:48). At Fri 12:00:"""
    a = book(ledger, sh(10, 8, 9))  # response and arrival red
    b = book(ledger, sh(10, 8, 9))
    act(ledger, b, "assign", sh(10, 8, 9, 30), technician_id="tech-1")  # arrival red only
    d = book(ledger, sh(10, 8, 9))
    act(ledger, d, "cancel", sh(10, 8, 10), reason="not needed")  # nothing open
    c = ledger.lodge_complaint(
        DISPATCHER, occurred_at=sh(10, 8, 9), customer=Complainant("李雷", "139"),
        channel=ComplaintChannel.PHONE, category="attitude", severity=Severity.CRITICAL,
        description="rude",
    ).id  # critical: level 3 at once; acknowledgement due 10:00  # fmt: skip
    return {"a": a, "b": b, "c": c, "d": d}


def run_sweep(ledger: FieldLedger, at: datetime | None = None) -> SweepReport:
    projections = Projections(ledger, [SlaView], SETTINGS)
    return sweep(ledger, SlaRedTargets(projections), at)


def test_each_red_target_is_escalated_once_by_the_system(ledger: FieldLedger) -> None:
    ids = the_red_world(ledger)
    report = run_sweep(ledger)
    assert report.at == NOW
    got = {(str(e.aggregate_id), e.target): e.level for e in report.escalated}
    assert got == {
        (str(ids["c"]), "acknowledgement"): 3,  # already at 3: stays at the top
        (str(ids["a"]), "response"): 1,
        (str(ids["a"]), "arrival"): 2,  # level = current + 1
        (str(ids["b"]), "arrival"): 1,
    }
    (first, second) = escalations(ledger, ids["a"])
    assert (first["level"], first["target"], first["actor"], first["role"]) == (
        1, "response", "system", "system",
    )  # fmt: skip
    assert (second["level"], second["target"]) == (2, "arrival")
    assert first["occurred_at"] == NOW
    assert escalations(ledger, ids["d"]) == []

    again = run_sweep(ledger)
    assert again.escalated == []
    assert len(escalations(ledger, ids["a"])) == 2


def test_levels_stop_at_three(ledger: FieldLedger) -> None:
    order = book(ledger, sh(10, 8, 9))
    ledger.work_order_command(Caller("sup", Role.SUPERVISOR), order, "escalate",
                              {"level": 3, "reason": "vip"}, occurred_at=sh(10, 8, 9, 5))  # fmt: skip
    run_sweep(ledger)
    assert [(e["level"], e["target"]) for e in escalations(ledger, order)] == [
        (3, None), (3, "response"), (3, "arrival"),
    ]  # fmt: skip


def test_a_sweep_at_a_past_instant(ledger: FieldLedger) -> None:
    a = book(ledger, sh(10, 8, 9))
    act(ledger, a, "hold", sh(10, 8, 14), reason="parts")  # after the response went red
    met_since = book(ledger, sh(10, 8, 9))
    act(ledger, met_since, "assign", sh(10, 8, 12), technician_id="tech-1")  # late, but met
    report = run_sweep(ledger, sh(10, 8, 11, 30))
    assert [(e.aggregate_id, e.target) for e in report.escalated] == [(a, "response")]
    # The escalation cannot occur before the order's previous event (its hold at 14:00).
    (escalation,) = escalations(ledger, a)
    assert escalation["occurred_at"] == sh(10, 8, 14)
    assert escalations(ledger, met_since) == []


def test_a_sweep_in_the_future_is_refused(ledger: FieldLedger) -> None:
    book(ledger, sh(10, 8, 9))
    with pytest.raises(InvalidCommand, match="future"):
        run_sweep(ledger, sh(10, 20))
    with pytest.raises(InvalidCommand, match="offset"):
        run_sweep(ledger, datetime(2026, 10, 9))


def test_the_aggregate_not_the_view_decides(ledger: FieldLedger) -> None:
    order = book(ledger, sh(10, 9, 11))  # response due 13:00: not red at 12:00
    stale = RedTarget(order, "work_order", "response")
    skipped = escalate_if_red(ledger, stale, NOW)
    assert getattr(skipped, "why", "").startswith("not red")
    assert escalate_if_red(ledger, RedTarget(order, "complaint", "response"), NOW).why == (  # type: ignore[union-attr]
        "no such record"
    )
    late = book(ledger, sh(10, 8, 9))
    assert escalate_if_red(ledger, RedTarget(late, "work_order", "response"), NOW).level == 1  # type: ignore[union-attr]
    again = escalate_if_red(ledger, RedTarget(late, "work_order", "response"), NOW)
    assert getattr(again, "why", "") == "already escalated for this target"


def test_two_sweeps_at_once_escalate_each_red_target_once(database_url: str) -> None:
    setup = FieldLedger(database_url, clock=lambda: NOW)
    ids = the_red_world(setup)
    for _ in range(6):
        ids[f"x{_}"] = book(setup, sh(10, 8, 9 + _ % 3))
    setup.close()

    # Two processes' worth of everything: ledgers, views, connections.
    # (Opened one after the other: creating the tracking tables at the same instant
    # is a race of the projector's start, not of the sweep.)
    sweepers = [FieldLedger(database_url, clock=lambda: NOW) for _ in range(2)]
    sources = [SlaRedTargets(Projections(s, [SlaView], SETTINGS)) for s in sweepers]
    barrier = threading.Barrier(2)
    reports: list[SweepReport] = []
    errors: list[BaseException] = []

    def run(ledger: FieldLedger, source: SlaRedTargets) -> None:
        try:
            barrier.wait(timeout=30)
            reports.append(sweep(ledger, source))  # each catches the view up first
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=pair) for pair in zip(sweepers, sources, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert errors == []
        done = [(e.aggregate_id, e.target) for r in reports for e in r.escalated]
        assert len(done) == len(set(done))
        checker = sweepers[0]
        seen = [
            (aggregate_id, e["target"])
            for aggregate_id in ids.values()
            for e in escalations(checker, aggregate_id)
            if e["target"] is not None
        ]
        assert sorted(map(str, seen)) == sorted(map(str, done))
        # a: response + arrival; b: arrival; c: acknowledgement; x0..x5: response + arrival.
        assert len(seen) == 2 + 1 + 1 + 6 * 2
        assert len(seen) == len(set(seen))
    finally:
        for s in sweepers:
            s.close()
