"""The base every fieldledger aggregate and event stands on.

Every event records who did it (`actor`, `role`), when it happened in the field
(`occurred_at`) and, as the library's `timestamp`, when the system recorded it
(`recorded_at`). Time is always passed in: an aggregate never reads a clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, ClassVar, TypeVar

from eventsourcing.domain import Aggregate
from fieldledger.domain.errors import CommandNotAllowed, InvalidCommand

#: How far `occurred_at` may lie after `recorded_at` (clock skew of a phone).
MAX_CLOCK_SKEW = timedelta(minutes=2)
#: How far `occurred_at` may lie before `recorded_at` unless the operator says
#: otherwise (FIELDLEDGER_MAX_BACKDATE): a phone that synced a week late.
DEFAULT_MAX_BACKDATE = timedelta(days=7)


class Role(Enum):
    CLIENT_APP = "client_app"
    DISPATCHER = "dispatcher"
    TECHNICIAN = "technician"
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    SYSTEM = "system"


@dataclass(frozen=True)
class Context:
    """Who gives a command, and when.

    `recorded_at` is the server's now; `occurred_at` is when the field says it
    happened (a technician's phone may sync later), defaulting to `recorded_at`.
    """

    actor: str
    role: Role
    recorded_at: datetime
    occurred_at: datetime | None = None
    #: How far `occurred_at` may lie before `recorded_at`; None: no bound.
    max_backdate: timedelta | None = DEFAULT_MAX_BACKDATE

    def __post_init__(self) -> None:
        require_aware("recorded_at", self.recorded_at)
        if self.occurred_at is not None:
            require_aware("occurred_at", self.occurred_at)

    @property
    def when(self) -> datetime:
        """When the fact happened, in UTC."""
        return (self.occurred_at or self.recorded_at).astimezone(UTC)


def parse_interval(text: str) -> timedelta | None:
    """`7d`, `400d`, `12h`, `30m`, `90s`; `none`: no interval (None)."""
    value = text.strip().lower()
    if value == "none":
        return None
    found = re.fullmatch(r"([0-9]{1,6})\s*([dhms])", value)
    if found is None:
        raise ValueError(f"{text!r} is not an interval such as 7d, 12h, 30m, 90s or none")
    unit = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[found.group(2)]
    return timedelta(**{unit: int(found.group(1))})


def describe_interval(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def require_aware(field: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidCommand(field, "must carry a time zone offset")


TAggregate = TypeVar("TAggregate", bound="LedgerAggregate")


class LedgerAggregate(Aggregate):
    """An aggregate whose events say who did what, when."""

    #: The business name of the aggregate, used in error messages ("work order").
    kind: ClassVar[str] = "record"

    class Event(Aggregate.Event):
        actor: str
        role: str
        occurred_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.last_occurred_at = self.occurred_at
            self.happen(aggregate)

        def happen(self, aggregate: Any) -> None:
            """What the fact changes in the aggregate; overridden by each event."""

    def __init__(self) -> None:
        self.last_occurred_at: datetime | None = None

    # -- the one place events are made --------------------------------------

    @staticmethod
    def check_occurred_at(ctx: Context, previous: datetime | None) -> datetime:
        when = ctx.when
        if when > ctx.recorded_at + MAX_CLOCK_SKEW:
            raise InvalidCommand(
                "occurred_at",
                f"{when.isoformat()} lies more than 2 minutes after the server's "
                f"time {ctx.recorded_at.astimezone(UTC).isoformat()}",
            )
        bound = ctx.max_backdate
        if bound is not None and when < ctx.recorded_at - bound:
            raise InvalidCommand(
                "occurred_at",
                f"{when.isoformat()} lies more than {describe_interval(bound)} before the "
                f"server's time {ctx.recorded_at.astimezone(UTC).isoformat()} "
                "(FIELDLEDGER_MAX_BACKDATE)",
            )
        if previous is not None and when < previous:
            raise InvalidCommand(
                "occurred_at",
                f"{when.isoformat()} lies before the previous event "
                f"({previous.isoformat()})",
            )
        return when

    def _record(self, event_class: type[Aggregate.Event], ctx: Context, **data: Any) -> None:
        when = self.check_occurred_at(ctx, self.last_occurred_at)
        self.trigger_event(
            event_class,
            timestamp=ctx.recorded_at.astimezone(UTC),
            actor=ctx.actor,
            role=ctx.role.value,
            occurred_at=when,
            **data,
        )

    @classmethod
    def _begin(
        cls: type[TAggregate],
        event_class: type[Aggregate.Created],
        ctx: Context,
        *,
        id: Any,
        **data: Any,
    ) -> TAggregate:
        when = cls.check_occurred_at(ctx, None)
        return cls._create(
            event_class,
            id=id,
            timestamp=ctx.recorded_at.astimezone(UTC),
            actor=ctx.actor,
            role=ctx.role.value,
            occurred_at=when,
            **data,
        )

    def refuse(self, command: str, why: str = "") -> CommandNotAllowed:
        return CommandNotAllowed(self.kind, self.state_name, command, why)

    @property
    def state_name(self) -> str:
        state = getattr(self, "state", None)
        return state.value if isinstance(state, Enum) else str(state)


#: The C0 control characters but tab, line feed and carriage return: no text
#: the service accepts holds one (PostgreSQL cannot even store NUL in text).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F]")
#: The one pattern of ids of people (staff, technicians, owners, actors).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$"


def require_id(field: str, value: str) -> str:
    """An id of a person, as `ID_PATTERN` says (used by the CLI's tokens)."""
    if re.fullmatch(ID_PATTERN, value) is None:
        raise InvalidCommand(
            field,
            "must be 1 to 100 characters: letters A-Z a-z, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit",
        )
    return value


def require_text(field: str, value: str, *, max_length: int = 4000) -> str:
    text = value.strip()
    if not text:
        raise InvalidCommand(field, "must not be empty")
    if len(text) > max_length:
        raise InvalidCommand(field, f"must be at most {max_length} characters")
    return text


def require_between(field: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidCommand(field, f"must be a whole number from {low} to {high}")
    return value
