"""Write realistic fieldledger histories into a store, fast.

    python bench/generate.py --events 1000000 [--database-url URL] [--seed 7]

Histories are made by the domain's own commands (so every event is one the
service could have written: same rules, same validation), on simulated time
spread over the months before `--end`, and saved through the application in
batches of many aggregates per transaction (the library's recorder, one round
trip per batch). A mix of priorities and zones, appointments, late arrivals
with and without notice, rejections and rework, feedback, remote fixes,
cancellations, holds, callbacks, complaints (some critical, some escalated,
some reopened) and supervisors' conduct records.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from fieldledger.application.ledger import FieldLedger
from fieldledger.domain.complaints import Complainant, Complaint, ComplaintChannel, Severity
from fieldledger.domain.facts import Context, LedgerAggregate, Role
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.staff import StaffMember
from fieldledger.domain.work_orders import (
    Appointment,
    Billing,
    Channel,
    Customer,
    Feedback,
    Part,
    Priority,
    WorkOrder,
    Zone,
)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
SERVICES = [
    "空调维修",
    "洗衣机维修",
    "冰箱维修",
    "热水器安装",
    "燃气灶维修",
    "管道疏通",
    "电路检修",
]
CONDUCT = [("uniform", None), ("grooming", Decimal("-0.5")), ("posture", None),
           ("sleeping", Decimal("-3")), ("personal_call", None), ("chatting", None),
           ("reading", None), ("absence", None)]  # fmt: skip


class Simulation:
    def __init__(self, rng: random.Random, end: datetime, technicians: list[str]) -> None:
        self.rng = rng
        self.end = end
        self.technicians = technicians
        self.policy_version = builtin_policy().version
        self.orders: list[UUID] = []

    def ctx(self, actor: str, role: Role, at: datetime) -> Context:
        return Context(actor, role, at + timedelta(seconds=self.rng.randint(0, 90)), at)

    def work_order(self) -> tuple[WorkOrder, str]:
        r = self.rng
        t = self.end - timedelta(days=r.uniform(1, 400))
        appointment = None
        if r.random() < 0.7:
            start = (t + timedelta(hours=r.randint(2, 48))).replace(
                minute=0, second=0, microsecond=0
            )
            appointment = Appointment(start, start + timedelta(hours=2))
        wo = WorkOrder.book(
            self.ctx("app-1", Role.CLIENT_APP, t),
            id=uuid4(),
            customer=Customer(
                r.choice(SURNAMES) + r.choice("先生女士小姐"),
                f"1{r.randint(3000000000, 9999999999)}",
                f"{r.randint(1, 999)}号",
            ),
            service_type=r.choice(SERVICES),
            priority=r.choices(list(Priority), weights=[1, 3, 6])[0],
            zone=r.choices(list(Zone), weights=[7, 3])[0],
            channel=r.choice(list(Channel)),
            billing=r.choice(list(Billing)),
            description="客户报修",
            policy_version=self.policy_version,
            appointment=appointment,
        )
        tech = r.choice(self.technicians)
        fate = r.random()
        t += timedelta(minutes=r.randint(5, 180))
        if fate < 0.04:
            wo.cancel(self.ctx("disp-1", Role.DISPATCHER, t), "客户取消")
            return wo, tech
        if fate < 0.10:
            wo.resolve_remotely(self.ctx("disp-1", Role.DISPATCHER, t), "电话指导解决")
            return wo, tech
        wo.assign(self.ctx("disp-1", Role.DISPATCHER, t), tech)
        if r.random() < 0.05:
            t += timedelta(minutes=r.randint(30, 600))
            wo.escalate(self.ctx("system", Role.SYSTEM, t), 1, "response is red", target="response")
        t += timedelta(minutes=r.randint(5, 60))
        wo.confirm(self.ctx(tech, Role.TECHNICIAN, t))
        if r.random() < 0.05:
            wo.hold(self.ctx("disp-1", Role.DISPATCHER, t), "等待配件")
            t += timedelta(hours=r.randint(1, 48))
            wo.resume(self.ctx("disp-1", Role.DISPATCHER, t))
        arrive_at = (appointment.start if appointment else t + timedelta(hours=2)) + timedelta(
            minutes=r.choice([-15, -12, -10, -5, 0, 3, 7, 12, 25])
        )
        depart_at = max(t, arrive_at - timedelta(minutes=40))
        wo.depart(self.ctx(tech, Role.TECHNICIAN, depart_at))
        if r.random() < 0.1:
            wo.notify_late(self.ctx(tech, Role.TECHNICIAN, depart_at + timedelta(minutes=1)),
                           arrive_at, "堵车")  # fmt: skip
        t = max(arrive_at, depart_at + timedelta(minutes=2))
        wo.arrive(self.ctx(tech, Role.TECHNICIAN, t))
        t += timedelta(minutes=3)
        wo.start(self.ctx(tech, Role.TECHNICIAN, t), True, "已断电, 已检查")
        if r.random() < 0.1:
            t += timedelta(minutes=20)
            wo.change_scope(
                self.ctx(tech, Role.TECHNICIAN, t), "需更换压缩机", t + timedelta(hours=2)
            )
        for round_ in range(3):
            t += timedelta(minutes=r.randint(20, 120))
            parts = (
                [Part("配件", r.randint(1, 3), Decimal(r.randint(100, 99999)) / 100)]
                if r.random() < 0.5
                else []
            )
            wo.complete(self.ctx(tech, Role.TECHNICIAN, t), "已修复", parts)
            t += timedelta(minutes=5)
            if round_ < 2 and r.random() < 0.12:
                wo.reject(self.ctx("app-1", Role.CLIENT_APP, t), ["仍有异响"])
                continue
            wo.accept(self.ctx(tech, Role.TECHNICIAN, t), "客户")
            break
        else:
            return wo, tech
        if r.random() < 0.8:
            t += timedelta(hours=r.randint(1, 72))
            wo.give_feedback(
                self.ctx("app-1", Role.CLIENT_APP, t),
                Feedback(r.choices([1, 2, 3, 4, 5], weights=[1, 1, 2, 6, 10])[0],
                         r.randint(2, 4), r.randint(2, 4), r.randint(1, 4), r.randint(2, 4),
                         r.random() < 0.15, "满意"),
            )  # fmt: skip
        if r.random() < 0.3:
            t += timedelta(days=r.randint(25, 40))
            if t < self.end:
                wo.log_callback(self.ctx("disp-1", Role.DISPATCHER, t), "reached", "运行正常")
        return wo, tech

    def complaint(self, order: UUID | None, tech: str) -> Complaint:
        r = self.rng
        t = self.end - timedelta(days=r.uniform(1, 300))
        severity = r.choices(list(Severity), weights=[6, 3, 1])[0]
        c = Complaint.lodge(
            self.ctx("app-1", Role.CLIENT_APP, t),
            id=uuid4(),
            customer=Complainant(r.choice(SURNAMES) + "先生", "139"),
            channel=r.choice(list(ComplaintChannel)),
            category=r.choice(["attitude", "quality", "delay", "price"]),
            severity=severity,
            description="投诉",
            policy_version=self.policy_version,
            work_order_id=order,
            staff_ids=[tech],
        )
        desk = ("desk-1", Role.DISPATCHER)
        for step in range(8):
            t += timedelta(hours=r.randint(1, 30))
            if step == 0:
                c.acknowledge(self.ctx(*desk, t))
            elif step == 1:
                c.assign(self.ctx(*desk, t), "客服部", "sup-1")
            elif step == 2:
                c.record_findings(self.ctx(*desk, t), "沟通不足", ["录音"],
                                  [tech] if r.random() < 0.5 else [], r.random() < 0.5)  # fmt: skip
            elif step == 3:
                if r.random() < 0.1 and c.escalation_level < 3:
                    c.escalate(
                        self.ctx("sup-1", Role.SUPERVISOR, t),
                        min(3, c.escalation_level + 1),
                        "超时",
                    )
                c.plan(self.ctx(*desk, t), "上门致歉", "sup-1", t + timedelta(days=3))
            elif step == 4:
                c.update_progress(self.ctx(*desk, t), "已联系客户")
            elif step == 5:
                c.resolve(self.ctx(*desk, t), "已解决")
            elif step == 6:
                satisfied = r.random() < 0.85
                c.confirm(self.ctx("app-1", Role.CLIENT_APP, t), satisfied, 4 if satisfied else 2)
                if satisfied:
                    break
            elif step == 7:
                c.resolve(self.ctx(*desk, t), "再次处理")
                t += timedelta(hours=5)
                c.confirm(self.ctx("app-1", Role.CLIENT_APP, t), True, 4)
        return c

    def conduct(self, staff: dict[str, StaffMember]) -> StaffMember:
        r = self.rng
        tech = r.choice(self.technicians)
        t = self.end - timedelta(days=r.uniform(1, 300))
        member = staff.get(tech)
        if member is None:
            member = StaffMember.register(self.ctx("sup-1", Role.SUPERVISOR, t), tech)
            staff[tech] = member
        t = max(t, member.last_occurred_at or t)
        kind, points = r.choice(CONDUCT)
        member.record_conduct(self.ctx("sup-1", Role.SUPERVISOR, t), builtin_policy().conduct,
                              kind, points, "")  # fmt: skip
        return member

    def aggregates(self) -> Iterator[LedgerAggregate]:
        staff: dict[str, StaffMember] = {}
        while True:
            wo, tech = self.work_order()
            yield wo
            roll = self.rng.random()
            if roll < 0.08:
                yield self.complaint(wo.id, tech)
            elif roll < 0.10:
                yield self.complaint(None, tech)
            if self.rng.random() < 0.03:
                member = self.conduct(staff)
                yield member


def generate(ledger: FieldLedger, events: int, seed: int, batch_events: int = 2000,
             progress: bool = True, job: int = 0, jobs: int = 1) -> int:  # fmt: skip
    """Write `events` events; job `job` of `jobs` works with its own share of the
    200 technicians, so parallel writers never touch the same staff record."""
    technicians = [f"tech-{i:03d}" for i in range(200) if i % jobs == job]
    sim = Simulation(random.Random(seed), datetime(2026, 11, 1, tzinfo=UTC), technicians)
    written = 0
    batch: list[LedgerAggregate] = []
    pending = 0
    started = time.perf_counter()
    staff_pending: dict[UUID, LedgerAggregate] = {}
    for aggregate in sim.aggregates():
        if isinstance(aggregate, StaffMember):
            staff_pending[aggregate.id] = aggregate  # one save per batch, all its new events
        else:
            batch.append(aggregate)
        pending += 1 if isinstance(aggregate, StaffMember) else len(aggregate._pending_events)
        if pending >= batch_events or written + pending >= events:
            ledger.save(*batch, *staff_pending.values())
            written += pending
            batch, pending = [], 0
            staff_pending = {}
            if progress:
                rate = written / (time.perf_counter() - started)
                print(f"\r{written:>10,} events  {rate:>8,.0f}/s", end="", file=sys.stderr)
            if written >= events:
                break
    if progress:
        print(file=sys.stderr)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--database-url", default=os.environ.get("FIELDLEDGER_DATABASE_URL"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2, help="writer processes")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url or set FIELDLEDGER_DATABASE_URL")
    # Create the tables once, before the writers, and record the policy in force
    # (as the service does at start): read models learn policies from the events.
    ledger = FieldLedger(args.database_url, max_backdate=None)  # history is imported
    ledger.adopt_policy()
    ledger.close()
    started = time.perf_counter()
    share = args.events // args.jobs
    shares = [share + (args.events - share * args.jobs if i == 0 else 0) for i in range(args.jobs)]
    with ProcessPoolExecutor(args.jobs) as pool:
        written = sum(pool.map(_job, [(args.database_url, n, args.seed + i, i, args.jobs)
                                      for i, n in enumerate(shares)]))  # fmt: skip
    elapsed = time.perf_counter() - started
    print(f"wrote {written:,} events in {elapsed:.1f}s ({written / elapsed:,.0f}/s)")


def _job(job: tuple[str, int, int, int, int]) -> int:
    url, events, seed, index, jobs = job
    ledger = FieldLedger(url, env={"CREATE_TABLE": "false"}, max_backdate=None)
    try:
        return generate(ledger, events, seed, progress=index == 0, job=index, jobs=jobs)
    finally:
        ledger.close()


if __name__ == "__main__":
    main()
