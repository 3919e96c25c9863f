"""Randomized lifecycles of work orders and complaints, written through the ledger.

A seeded generator drives many aggregates at once along random valid paths
(holds, cancellations, remote fixes, rework, reopened complaints, escalations),
on one advancing clock around National Day 2026 and into 2027, under two
policies adopted one after the other. Aggregates are saved through the
ledger in small interleaved groups, so the store holds their events mixed, as
in production; `between_saves` lets a test project incrementally meanwhile.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from fieldledger.application.ledger import FieldLedger
from fieldledger.domain.complaints import Complainant, Complaint, ComplaintChannel, Severity
from fieldledger.domain.complaints import ComplaintState as C
from fieldledger.domain.facts import Context, LedgerAggregate, Role
from fieldledger.domain.policy import Policy, builtin_policy, builtin_policy_text, parse_policy
from fieldledger.domain.work_orders import (
    Appointment,
    Billing,
    Channel,
    Customer,
    Priority,
    WorkOrder,
    Zone,
)
from fieldledger.domain.work_orders import WorkOrderState as S

START = datetime(2026, 9, 14, 0, 30, tzinfo=UTC)  # Mon 08:30 in Shanghai

STRICTER = parse_policy(
    builtin_policy_text()
    .replace('name = "builtin"', 'name = "stricter"')
    .replace("yellow_at = 0.8", "yellow_at = 0.75")
    .replace(
        'priority = { clock = "business", hours = 2 }', 'priority = { clock = "business", hours = 1 }'
    )
)


class Lifecycles:
    def __init__(self, ledger: FieldLedger, seed: int) -> None:
        self.ledger = ledger
        self.rng = random.Random(seed)
        self.now = START
        self.policy: Policy = builtin_policy()
        self.policy_version = self.policy.version  # a digest: computed once
        self.live: list[LedgerAggregate] = []
        self.ids: list[str] = []

    def ctx(self, role: Role = Role.DISPATCHER, actor: str = "disp-1") -> Context:
        return Context(actor, role, self.now)

    def tick(self) -> None:
        # Mostly minutes, sometimes hours: with hundreds of records alive at once, each
        # one's life spans days and crosses nights, weekends and holidays.
        if self.rng.random() < 0.95:
            step = timedelta(minutes=self.rng.randint(1, 12))
        else:
            step = timedelta(hours=self.rng.randint(1, 3))
        self.now += step

    def run(
        self,
        aggregates: int,
        between_saves: Callable[[], None] = lambda: None,
        group: int = 7,
    ) -> None:
        """Create `aggregates` records and drive them all to an end or a standstill."""
        self.ledger.adopt_policy(self.policy)
        created = 0
        pending: dict[object, LedgerAggregate] = {}
        switched = False
        while created < aggregates or self.live:
            self.tick()
            if not switched and created >= aggregates // 2:
                # Half-way the company adopts a stricter policy: later bookings use it.
                self.ledger.adopt_policy(STRICTER)
                self.policy, self.policy_version, switched = STRICTER, STRICTER.version, True
            if created < aggregates and (not self.live or self.rng.random() < 0.25):
                aggregate = self.create()
                created += 1
            else:
                aggregate = self.rng.choice(self.live)
                if not self.step(aggregate):
                    self.live.remove(aggregate)
                    continue
            pending[aggregate.id] = aggregate
            if len(pending) >= group:
                self.ledger.save(*pending.values())
                pending.clear()
                between_saves()
        if pending:
            self.ledger.save(*pending.values())
            between_saves()

    def create(self) -> LedgerAggregate:
        rng = self.rng
        aggregate: LedgerAggregate
        if rng.random() < 0.7:
            appointment = None
            if rng.random() < 0.3:
                start = self.now + timedelta(hours=rng.randint(-2, 120))
                appointment = Appointment(start, start + timedelta(hours=2))
            aggregate = WorkOrder.book(
                self.ctx(),
                id=uuid4(),
                customer=Customer("客户", "13800000000"),
                service_type="repair",
                priority=rng.choice(list(Priority)),
                zone=rng.choice(list(Zone)),
                channel=Channel.PHONE,
                billing=Billing.PAID,
                description="",
                policy_version=self.policy_version,
                appointment=appointment,
            )
        else:
            aggregate = Complaint.lodge(
                self.ctx(),
                id=uuid4(),
                customer=Complainant("客户", "13800000000"),
                channel=ComplaintChannel.PHONE,
                category="service",
                severity=rng.choice(list(Severity)),
                description="complaint",
                policy_version=self.policy_version,
            )
        self.live.append(aggregate)
        self.ids.append(str(aggregate.id))
        return aggregate

    def step(self, aggregate: LedgerAggregate) -> bool:
        """One random valid command; False when the aggregate is finished with."""
        if isinstance(aggregate, WorkOrder):
            return self.step_order(aggregate)
        assert isinstance(aggregate, Complaint)
        return self.step_complaint(aggregate)

    def escalate(self, aggregate: WorkOrder | Complaint, targets: tuple[str, ...]) -> None:
        left = [t for t in targets if t not in aggregate.escalated_targets]
        target = self.rng.choice([*left, None])
        level = min(aggregate.escalation_level + 1, 3)
        aggregate.escalate(self.ctx(Role.SYSTEM, "system"), level, "late", target)

    def step_order(self, wo: WorkOrder) -> bool:
        rng = self.rng
        tech = wo.technician_id or "tech-1"

        def t() -> Context:
            return self.ctx(Role.TECHNICIAN, tech)

        choices: list[Callable[[], None]] = []
        state = wo.state
        if state in (S.ACCEPTED, S.CANCELLED, S.RESOLVED_REMOTELY):
            return False
        if state in (S.BOOKED, S.ASSIGNED, S.CONFIRMED):
            choices += [lambda: wo.assign(self.ctx(), rng.choice(["tech-1", "tech-2", "tech-3"]))] * 3
        if state is S.ASSIGNED:
            choices += [lambda: wo.confirm(t())] * 3
        if state is S.CONFIRMED:
            choices += [lambda: wo.depart(t())] * 3
        if state is S.EN_ROUTE:
            choices += [lambda: wo.arrive(t())] * 3
        if state is S.ON_SITE:
            choices += [lambda: wo.start(t(), True, "ok")] * 3
        if state is S.IN_SERVICE:
            choices += [lambda: wo.complete(t(), "done", [])] * 3
        if state is S.COMPLETED:
            choices += [lambda: wo.accept(t(), "客户")] * 4
            choices += [lambda: wo.reject(t(), ["still broken"])]
        if state in (S.BOOKED, S.ASSIGNED, S.CONFIRMED, S.EN_ROUTE):
            choices += [lambda: wo.resolve_remotely(self.ctx(), "fixed by phone")]
        if state not in (S.ON_HOLD, S.COMPLETED):
            choices += [lambda: wo.hold(self.ctx(), "waiting")]
        if state is S.ON_HOLD:
            choices += [lambda: wo.resume(self.ctx())] * 4
        if state not in (S.IN_SERVICE, S.COMPLETED):
            choices += [lambda: wo.cancel(self.ctx(), "no longer needed")]
        choices += [lambda: self.escalate(wo, ("response", "arrival", "resolution"))]
        rng.choice(choices)()
        return True

    def step_complaint(self, c: Complaint) -> bool:
        rng = self.rng
        state = c.state
        if state is C.CLOSED:
            return False
        choices: list[Callable[[], None]] = []
        if state is C.LODGED:
            choices += [lambda: c.acknowledge(self.ctx())] * 3
        if state is C.ACKNOWLEDGED or state is C.ASSIGNED:
            choices += [lambda: c.assign(self.ctx(), "quality", rng.choice(["sup-1", "sup-2"]))]
        if state in (C.ASSIGNED, C.REOPENED):
            choices += [lambda: c.record_findings(self.ctx(), "cause", [], ["tech-1"], True)] * 2
        if state in (C.INVESTIGATED, C.PLANNED, C.REOPENED):
            choices += [lambda: c.resolve(self.ctx(), "fixed")] * 2
        if state is C.INVESTIGATED:
            choices += [lambda: c.plan(self.ctx(), "train", "sup-1", self.now + timedelta(days=2))]
        if state is C.RESOLVED:
            choices += [lambda: c.confirm(self.ctx(), rng.random() < 0.8, rng.randint(1, 5))] * 3
        choices += [lambda: self.escalate(c, ("acknowledgement", "resolution", "closure"))]
        rng.choice(choices)()
        return True
