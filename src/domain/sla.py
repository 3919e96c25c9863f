"""SLA targets (contract §6): due times and status, from an aggregate's own events.

Pure: given the events of one work order or complaint, the policy it was booked
under and that policy's calendar, `targets()` says for each target when its
clock started, how much time it allows, when it is due, when it turns yellow,
when (and whether) it was met. `SlaTarget.status_at(t)` answers for any
instant. The HTTP view computes this from the aggregate at request time; the SLA
projection stores the very same values (docs/sla.md has the rules and the
decisions taken where the contract is silent).

Rules as implemented
--------------------
* Work orders: `response` met by the first `Assigned`; `arrival` met by
  `Arrived`, due at the appointment start when the policy says
  `use_appointment` and the order has one (counted on a 24x7 clock), else after
  the zone's working hours; `resolution` met by `Accepted` or
  `ResolvedRemotely`. Complaints: `acknowledgement` met by `Acknowledged`,
  `resolution` by the first `Resolved` (a reopening does not reopen it),
  `closure` by `Closed`. Each clock starts at `Booked`/`Lodged`.
* Pauses: `PutOnHold` .. `Resumed` stops every target still open; the due time
  moves out by the paused time on the target's clock (working time on a business
  clock). While a hold is open and the target has time left, its due time is
  unknown (`due_at` None) and it cannot turn red.
* `Cancelled` ends every open target (`closed_as = "cancelled"`);
  `ResolvedRemotely` meets `resolution` and ends `response`/`arrival` when still
  open (`closed_as = "waived"`: no visit was needed).
* Status at t: `met` once met; `cancelled`/`waived` once ended; else `red` when t
  is after the due time, `yellow` from the instant `yellow_at` of the allowed
  time is used, else `blue`.
* A target met after its due time is `met` (it was met) and `breached` (for
  compliance); an ended target is breached when it ended after its due time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from fieldledger.domain.business_calendar import BusinessCalendar, Clock, Pause, RoundTheClock
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.policy import Clock as ClockKind
from fieldledger.domain.policy import Policy, Target
from fieldledger.domain.work_orders import WorkOrder

Kind = Literal["work_order", "complaint"]
Status = Literal["met", "blue", "yellow", "red", "cancelled", "waived"]
ClockName = Literal["24x7", "business", "appointment"]

WORK_ORDER_TARGETS = ("response", "arrival", "resolution")
COMPLAINT_TARGETS = ("acknowledgement", "resolution", "closure")
#: Statuses of a target still running (shown on the board).
OPEN_STATUSES: tuple[Status, ...] = ("red", "yellow", "blue")
STATUSES: tuple[Status, ...] = ("met", "red", "yellow", "blue", "cancelled", "waived")

_ROUND_THE_CLOCK = RoundTheClock()
_MICROSECOND = timedelta(microseconds=1)


# -- what the SLA knows of one aggregate ---------------------------------------


@dataclass
class Subject:
    """What the SLA needs of one work order or complaint, folded from its events."""

    aggregate_id: str
    kind: Kind
    policy_version: str
    started_at: datetime
    version: int
    last_occurred_at: datetime
    priority: str | None = None  # work orders
    zone: str | None = None
    appointment_start: datetime | None = None
    severity: str | None = None  # complaints
    #: The technician of a work order, the owner of a complaint.
    owner_id: str | None = None
    escalation_level: int = 0
    escalated_targets: list[str] = field(default_factory=list)
    #: The instant each target was met (first time).
    met: dict[str, datetime] = field(default_factory=dict)
    #: Holds, in order: [start, end or None while on hold].
    pauses: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    closed_at: datetime | None = None
    #: "cancelled" or "resolved_remotely".
    closed_by: str | None = None
    #: The first responder, or whom it was handed over to (002 篇三 首問負責制).
    accountable_id: str | None = None
    #: The coordinator last appointed by an escalation (004 二(二)).
    coordinator_id: str | None = None
    #: Targets whose handler was reminded when they turned yellow (004 二(二)).
    reminded_targets: list[str] = field(default_factory=list)

    @property
    def handler_id(self) -> str | None:
        """Whom a reminder goes to: the technician or owner, else the accountable."""
        return self.owner_id or self.accountable_id

    @classmethod
    def start(cls, event: Any) -> Subject | None:
        """The subject an event creates (`Booked`, `Lodged`), else None."""
        if not isinstance(event, WorkOrder.Booked | Complaint.Lodged):
            return None
        when = _utc(event.occurred_at)
        common: dict[str, Any] = {
            "aggregate_id": str(event.originator_id),
            "policy_version": event.policy_version,
            "started_at": when,
            "version": event.originator_version,
            "last_occurred_at": when,
            "accountable_id": event.first_responder_id,
        }
        if isinstance(event, WorkOrder.Booked):
            return cls(
                kind="work_order",
                priority=event.priority.value,
                zone=event.zone.value,
                appointment_start=(
                    None if event.appointment is None else _utc(event.appointment.start)
                ),
                **common,
            )
        return cls(kind="complaint", severity=event.severity.value, **common)

    @classmethod
    def from_events(cls, events: Iterable[Any]) -> Subject | None:
        subject: Subject | None = None
        for event in events:
            if subject is None:
                subject = cls.start(event)
            else:
                subject.apply(event)
        return subject

    def apply(self, event: Any) -> bool:
        """Fold one later event in; True when it changed what the SLA knows."""
        self.version = event.originator_version
        self.last_occurred_at = when = _utc(event.occurred_at)
        if isinstance(event, WorkOrder.Assigned):
            self.owner_id = event.technician_id
            self.met.setdefault("response", when)
        elif isinstance(event, WorkOrder.Arrived):
            self.met.setdefault("arrival", when)
        elif isinstance(event, WorkOrder.Accepted):
            self.met.setdefault("resolution", when)
        elif isinstance(event, WorkOrder.ResolvedRemotely):
            self.met.setdefault("resolution", when)
            self.closed_at, self.closed_by = when, "resolved_remotely"
        elif isinstance(event, WorkOrder.Cancelled):
            self.closed_at, self.closed_by = when, "cancelled"
        elif isinstance(event, WorkOrder.PutOnHold):
            self.pauses.append((when, None))
        elif isinstance(event, WorkOrder.Resumed):
            if self.pauses and self.pauses[-1][1] is None:
                self.pauses[-1] = (self.pauses[-1][0], when)
        elif isinstance(event, Complaint.Acknowledged):
            self.met.setdefault("acknowledgement", when)
        elif isinstance(event, Complaint.Assigned):
            self.owner_id = event.owner_id
        elif isinstance(event, Complaint.Resolved):
            self.met.setdefault("resolution", when)
        elif isinstance(event, Complaint.Closed):
            self.met.setdefault("closure", when)
        elif isinstance(event, WorkOrder.HandedOver | Complaint.HandedOver):
            self.accountable_id = event.to_staff_id
        elif isinstance(event, WorkOrder.ReminderIssued | Complaint.ReminderIssued):
            if event.target not in self.reminded_targets:
                self.reminded_targets.append(event.target)
        elif isinstance(event, WorkOrder.Escalated | Complaint.Escalated):
            if event.coordinator_id is not None:
                self.coordinator_id = event.coordinator_id
            self.escalation_level = event.level
            if event.target is not None and event.target not in self.escalated_targets:
                self.escalated_targets.append(event.target)
        else:
            return False
        return True

    # -- as plain data (the projection keeps it between events) ---------------

    def to_data(self) -> dict[str, Any]:
        return {
            "aggregate_id": self.aggregate_id,
            "kind": self.kind,
            "policy_version": self.policy_version,
            "started_at": _iso(self.started_at),
            "version": self.version,
            "last_occurred_at": _iso(self.last_occurred_at),
            "priority": self.priority,
            "zone": self.zone,
            "appointment_start": _iso(self.appointment_start),
            "severity": self.severity,
            "owner_id": self.owner_id,
            "escalation_level": self.escalation_level,
            "escalated_targets": list(self.escalated_targets),
            "met": {k: _iso(v) for k, v in sorted(self.met.items())},
            "pauses": [[_iso(s), _iso(e)] for s, e in self.pauses],
            "closed_at": _iso(self.closed_at),
            "closed_by": self.closed_by,
            "accountable_id": self.accountable_id,
            "coordinator_id": self.coordinator_id,
            "reminded_targets": list(self.reminded_targets),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Subject:
        def when(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value)

        return cls(
            aggregate_id=data["aggregate_id"],
            kind=data["kind"],
            policy_version=data["policy_version"],
            started_at=datetime.fromisoformat(data["started_at"]),
            version=int(data["version"]),
            last_occurred_at=datetime.fromisoformat(data["last_occurred_at"]),
            priority=data["priority"],
            zone=data["zone"],
            appointment_start=when(data["appointment_start"]),
            severity=data["severity"],
            owner_id=data["owner_id"],
            escalation_level=int(data["escalation_level"]),
            escalated_targets=list(data["escalated_targets"]),
            met={k: datetime.fromisoformat(v) for k, v in data["met"].items()},
            pauses=[(datetime.fromisoformat(s), when(e)) for s, e in data["pauses"]],
            closed_at=when(data["closed_at"]),
            closed_by=data["closed_by"],
            accountable_id=data.get("accountable_id"),
            coordinator_id=data.get("coordinator_id"),
            reminded_targets=list(data.get("reminded_targets", [])),
        )


# -- targets -------------------------------------------------------------------


@dataclass(frozen=True)
class SlaTarget:
    aggregate_id: str
    kind: Kind
    target: str
    policy_version: str
    clock: ClockName
    started_at: datetime
    #: The time the target allows, on its clock.
    allowed: timedelta
    #: None while a hold is open and time is left: the due time is not known yet.
    due_at: datetime | None
    #: From this instant the target is yellow (None: not known yet, as due_at).
    yellow_from: datetime | None
    met_at: datetime | None
    #: When the target ended without being met, and why ("cancelled", "waived").
    closed_at: datetime | None
    closed_as: Literal["cancelled", "waived"] | None
    #: Clock time of the holds during the target's life (ended holds only).
    paused_seconds: int
    #: Start of the hold the target is in now, if any.
    paused_since: datetime | None
    #: The sweep (or someone) escalated the order for this target.
    escalated: bool
    #: The sweep reminded the handler when the target turned yellow.
    reminded: bool
    calendar_warning: str | None

    def status_at(self, t: datetime) -> Status:
        t = _utc(t)
        if self.met_at is not None and self.met_at <= t:
            return "met"
        if self.closed_at is not None and self.closed_at <= t and self.closed_as is not None:
            return self.closed_as
        if self.due_at is not None and t > self.due_at:
            return "red"
        if self.yellow_from is not None and t >= self.yellow_from:
            return "yellow"
        return "blue"

    def is_open_at(self, t: datetime) -> bool:
        return self.started_at <= _utc(t) and self.status_at(t) in OPEN_STATUSES

    @property
    def breached(self) -> bool | None:
        """Met late or ended late: True; met in time: False; still running or
        ended in time (excluded from compliance): None."""
        end = self.met_at or self.closed_at
        if end is None or self.due_at is None:
            return None
        if end > self.due_at:
            return True
        return False if self.met_at is not None else None


def rule_of(policy: Policy, subject: Subject, target: str) -> Target:
    if subject.kind == "work_order":
        assert subject.priority is not None
        return getattr(getattr(policy.sla.work_order, target), subject.priority)  # type: ignore[no-any-return]
    assert subject.severity is not None
    return getattr(getattr(policy.sla.complaint, target), subject.severity)  # type: ignore[no-any-return]


def target_names(kind: Kind) -> tuple[str, ...]:
    return WORK_ORDER_TARGETS if kind == "work_order" else COMPLAINT_TARGETS


def targets(subject: Subject, policy: Policy, calendar: BusinessCalendar) -> list[SlaTarget]:
    """Every SLA target of the subject under `policy`, which must be the one it was
    booked under (`subject.policy_version`; not checked here: a policy's version is
    a digest, too dear to recompute for every record), and that policy's calendar."""
    return [target(subject, policy, calendar, name) for name in target_names(subject.kind)]


class TargetFacts(NamedTuple):
    """What one target's times follow from besides what its subject was booked
    with (which never changes): when it was met, when and how it ended unmet,
    and the holds while it ran (cut at its end). Two states of a subject with
    the same facts for a target give that target the same times, due, yellow,
    warning and span; they can differ only in the columns `Subject` holds
    directly (owner, escalated, reminded). So a projection recomputes a
    target only when its facts change, and not even then when only its end
    moved (`only_the_end_moved`)."""

    met_at: datetime | None
    closed_at: datetime | None
    closed_as: Literal["cancelled", "waived"] | None
    pauses: tuple[Pause, ...]


def target_facts(subject: Subject, name: str) -> TargetFacts:
    met_at = subject.met.get(name)
    closed_at: datetime | None = None
    closed_as: Literal["cancelled", "waived"] | None = None
    if met_at is None and subject.closed_at is not None:
        closed_at = subject.closed_at
        closed_as = "cancelled" if subject.closed_by == "cancelled" else "waived"
    end = met_at or closed_at
    # Holds count while the target runs: a hold still open when it ends stops there.
    pauses: list[Pause] = []
    for pause_start, pause_end in subject.pauses:
        if end is not None and pause_start >= end:
            continue
        if end is not None and (pause_end is None or pause_end > end):
            pause_end = end
        pauses.append(Pause(pause_start, pause_end))
    return TargetFacts(met_at, closed_at, closed_as, tuple(pauses))


def only_the_end_moved(before: TargetFacts, after: TargetFacts, due_at: datetime | None) -> bool:
    """Whether a target with these facts before and after an event (and, before
    it, this due time) changed only in when and how it ended (`met_at`,
    `closed_at`, `closed_as`): its holds are the same, and its due time is
    known, so its due and yellow times, its paused time and its calendar
    warning (reckoned to the due time) stay as they were."""
    return due_at is not None and before.pauses == after.pauses


def target(
    subject: Subject,
    policy: Policy,
    calendar: BusinessCalendar,
    name: str,
    facts: TargetFacts | None = None,
) -> SlaTarget:
    """One target of the subject (see `targets`); `facts` when already known."""
    if facts is None:
        facts = target_facts(subject, name)
    rule = rule_of(policy, subject, name)
    start = subject.started_at
    clock: Clock
    clock_name: ClockName
    if name == "arrival" and rule.use_appointment and subject.appointment_start is not None:
        clock, clock_name = _ROUND_THE_CLOCK, "appointment"
        allowed = max(subject.appointment_start - start, timedelta(0))
    else:
        hours = rule.hours
        if name == "arrival" and subject.zone == "suburban" and rule.suburban_hours is not None:
            hours = rule.suburban_hours
        allowed = _hours(hours)
        if rule.clock is ClockKind.BUSINESS:
            clock, clock_name = calendar, "business"
        else:
            clock, clock_name = _ROUND_THE_CLOCK, "24x7"

    met_at, closed_at, closed_as, pauses = facts
    end = met_at or closed_at
    paused = timedelta(0)
    paused_since: datetime | None = None
    if pauses:  # none at booking, when most targets are computed
        paused = sum(
            (clock.elapsed(max(p.start, start), p.end) for p in pauses if p.end is not None),
            paused,
        )
        paused_since = next((p.start for p in pauses if p.end is None), None)

    if clock_name == "appointment" and (not pauses or not allowed):
        due_at: datetime | None = subject.appointment_start  # exactly, even if before booking
    else:
        due_at = _add(clock, start, allowed, pauses)
    yellow_from = _add(clock, start, _share(allowed, policy.sla.yellow_at), pauses)

    warning = None
    if clock_name == "business":
        last = due_at or end or paused_since or start
        warning = calendar_warning(calendar, policy, start, last)

    return SlaTarget(
        aggregate_id=subject.aggregate_id,
        kind=subject.kind,
        target=name,
        policy_version=subject.policy_version,
        clock=clock_name,
        started_at=start,
        allowed=allowed,
        due_at=due_at,
        yellow_from=yellow_from,
        met_at=met_at,
        closed_at=closed_at,
        closed_as=closed_as,
        paused_seconds=int(paused.total_seconds()),
        paused_since=paused_since,
        escalated=name in subject.escalated_targets,
        reminded=name in subject.reminded_targets,
        calendar_warning=warning,
    )


def _add(
    clock: Clock, start: datetime, amount: timedelta, pauses: Sequence[Pause]
) -> datetime | None:
    try:
        return clock.add(start, amount, pauses)
    except ValueError as e:
        if str(e) == "clock is paused":
            return None
        raise


# The two below are pure and see a handful of arguments (a policy's hours and
# yellow share): remembered, the Decimal arithmetic is done once per value
# instead of for every target of every order.


@lru_cache(maxsize=1024)
def _hours(hours: Decimal) -> timedelta:
    return timedelta(microseconds=math.ceil(hours * 3_600_000_000))


@lru_cache(maxsize=1024)
def _share(allowed: timedelta, share: Decimal) -> timedelta:
    """`share` of `allowed`, rounded up to the microsecond (yellow means "at least")."""
    return _MICROSECOND * math.ceil(Decimal(allowed // _MICROSECOND) * share)


# -- calendars -------------------------------------------------------------------


_CALENDARS: dict[tuple[str, str], BusinessCalendar] = {}


def calendar_for(policy: Policy, timezone: str, version: str | None = None) -> BusinessCalendar:
    """The business calendar of a policy in a time zone (built once, then shared).
    Callers that already know the policy's `version` pass it: it is the cache key."""
    key = (version or policy.version, timezone)
    found = _CALENDARS.get(key)
    if found is None:
        c = policy.calendar
        found = BusinessCalendar(
            tz=timezone,
            country=c.country,
            subdivision=c.subdivision,
            weekly_windows=c.week.by_weekday(),
            extra_working_days=c.overrides.working_days,
            extra_days_off=c.overrides.days_off,
        )
        if len(_CALENDARS) > 64:  # pragma: no cover - only ever a handful of policies
            _CALENDARS.clear()
        _CALENDARS[key] = found
    return found


def calendar_warning(
    calendar: BusinessCalendar, policy: Policy, start: datetime, end: datetime
) -> str | None:
    """A warning when working time between `start` and `end` crosses a local year
    whose official make-up working days are missing from the calendar data."""
    first, last = sorted((_local_year(calendar, start), _local_year(calendar, end)))
    return _years_warning(calendar, policy.calendar.country, first, last)


def _local_year(calendar: BusinessCalendar, instant: datetime) -> int:
    """`calendar.local_date(instant).year`, without the time zone's conversion
    for an instant in UTC that is neither on 31 December nor on 1 January: a
    zone's offset is under a day, so its local date then has the same year."""
    if instant.tzinfo is UTC:
        month, day = instant.month, instant.day
        if 1 < month < 12 or (month == 1 and day > 1) or (month == 12 and day < 31):
            return instant.year
    return calendar.local_date(instant).year


@lru_cache(maxsize=1024)
def _years_warning(
    calendar: BusinessCalendar, country: str | None, first: int, last: int
) -> str | None:
    """`calendar_warning` for the local years first..last (pure: remembered;
    every order booked in a year asks the same)."""
    missing = calendar.years_without_makeup_data(range(first, last + 1))
    if not missing:
        return None
    years = ", ".join(str(y) for y in missing)
    return (
        f"the {country} calendar data has no official make-up working days "
        f"for {years}: working time there is counted without them"
    )


def calendar_report(policy: Policy, timezone: str, years: Iterable[int]) -> dict[str, Any]:
    """For /healthz and `serve`: which of `years` lack official make-up data."""
    calendar = calendar_for(policy, timezone)
    return {
        "country": policy.calendar.country,
        "timezone": timezone,
        "years_without_makeup_data": calendar.years_without_makeup_data(years),
    }


# -- small helpers ---------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is UTC:  # as a subject holds its instants: no conversion to make
        return value.isoformat()
    return value.astimezone(UTC).isoformat()
