"""The FieldLedger application: load an aggregate, run a command, save, answer.

This is the one place commands go through, whatever the edge (HTTP, CLI, the
SLA sweep): it stamps the command with the server's time, checks who may give
it, guards the expected version (optimistic concurrency) and the idempotency
key, and saves the new events together with the key's receipt in one
transaction. Nothing is written when anything is refused.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol, TypeVar, Unpack
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording, Transcoder
from eventsourcing.utils import EnvType
from fieldledger.application.aggregate_cache import DEFAULT_MAXSIZE, AggregateCache
from fieldledger.application.commands import (
    BOOK,
    COMPLAINT,
    CONDUCT,
    CUSTOMER_ERASE,
    LODGE,
    MAINTENANCE_CONTRACT,
    SIGN,
    STAFF,
    WORK_ORDER,
    BookFields,
    Command,
    CommandBody,
    CommandSet,
    Conduct,
    LodgeFields,
    Rules,
    SignFields,
)
from fieldledger.application.database import Database
from fieldledger.application.event_store import (
    DATA_KEYS_USED,
    ERASE_KEYS_OF,
    DataKeyErased,
    LedgerPostgresRecorder,
    LedgerSQLiteRecorder,
    Receipt,
    register_value_types,
    store_environment,
)
from fieldledger.application.group_commit import GroupCommitter
from fieldledger.application.hash_chain import verify_aggregate
from fieldledger.application.personal_data import (
    MasterKey,
    PersonalDataVault,
    personal_data_transcodings,
    resolve_master_key,
)
from fieldledger.application.transcoder import LedgerTranscoder
from fieldledger.domain import complaints, maintenance_contracts, work_orders
from fieldledger.domain.adopted_policies import AdoptedPolicy, adopted_policy_id
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.customers import CustomerRecord
from fieldledger.domain.errors import DomainError, InvalidCommand
from fieldledger.domain.facts import DEFAULT_MAX_BACKDATE, Context, LedgerAggregate, Role
from fieldledger.domain.maintenance_contracts import MaintenanceContract
from fieldledger.domain.periods import local_date
from fieldledger.domain.permissions import authorize_assigned
from fieldledger.domain.policy import Policy, builtin_policy
from fieldledger.domain.repeat_calls import repeat_window
from fieldledger.domain.staff import StaffMember, staff_aggregate_id
from fieldledger.domain.work_orders import WorkOrder

VALUE_TYPES: list[type[Any]] = [
    work_orders.Priority,
    work_orders.Zone,
    work_orders.Channel,
    work_orders.Billing,
    work_orders.WorkOrderState,
    work_orders.Customer,
    work_orders.Appointment,
    work_orders.Part,
    work_orders.Feedback,
    work_orders.ChecklistItem,
    complaints.InformedVia,
    complaints.ComplaintChannel,
    complaints.Severity,
    complaints.ComplaintState,
    complaints.Complainant,
    maintenance_contracts.ContractState,
]

#: Fields every event has; the rest is the event's own data.
BASE_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        "actor",
        "role",
        "occurred_at",
    }
)

A = TypeVar("A", bound=LedgerAggregate)
B = TypeVar("B", bound=CommandBody)


class NotFound(DomainError):
    """No aggregate of that kind with that id (HTTP 404)."""


class VersionMismatch(DomainError):
    """The expected version is not the current one (HTTP 412); nothing written."""

    def __init__(self, expected: int, current: int) -> None:
        self.expected = expected
        self.current = current
        super().__init__(f"expected version {expected}, but the current version is {current}")


class IdempotencyKeyReused(DomainError):
    """The key was used before with another request (HTTP 422)."""


class UnknownPolicy(DomainError):
    """An order names a policy version that was never recorded as adopted."""


class Busy(DomainError):
    """Concurrent writers kept winning the race; try again (HTTP 409)."""


class RepeatCallFinder(Protocol):
    """Where a booking finds the earlier order it repeats (a read model)."""

    def earlier_order(
        self, customer: str, service_type: str, since: datetime, until: datetime
    ) -> UUID | None:
        """The latest order of that customer key and service type accepted or
        resolved remotely in [since, until], if any."""


@dataclass(frozen=True)
class Caller:
    """Who gives a command: the actor and role of the token."""

    actor: str
    role: Role


@dataclass(frozen=True)
class Idempotency:
    key: str
    #: A digest of the request (method, path, body): same key, other request → refused.
    fingerprint: str


@dataclass(frozen=True)
class CommandResult:
    id: UUID
    version: int
    state: str
    #: Position of the last event written in the store (on a replay: of the first answer).
    position: int | None = None
    created: bool = False
    replayed: bool = False

    def at(self, position: int | None) -> CommandResult:
        """`dataclasses.replace(self, position=position)`, for a fraction of its work."""
        return CommandResult(self.id, self.version, self.state, position, self.created,
                             self.replayed)  # fmt: skip

    def as_receipt(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "version": self.version,
            "state": self.state,
            "created": self.created,
        }

    @staticmethod
    def from_receipt(data: Mapping[str, Any], position: int | None) -> CommandResult:
        return CommandResult(
            id=UUID(data["id"]),
            version=int(data["version"]),
            state=str(data["state"]),
            position=position,
            created=bool(data.get("created", False)),
            replayed=True,
        )


@dataclass(frozen=True)
class HistoryEntry:
    aggregate_id: UUID
    type: str
    version: int
    actor: str
    role: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]
    #: The event's link in the tamper-evident hash chain (hash_chain.py).
    hash: str | None = None


@dataclass(frozen=True)
class VerifiedEvent:
    """One stored event of an aggregate and whether it matches its hash row."""

    version: int
    type: str
    #: None when the stored row can no longer be decoded.
    entry: HistoryEntry | None
    #: None when it verifies; else what is wrong.
    problem: str | None
    hash: str | None


#: Who the service itself acts as: policy adoption, the SLA sweep.
SYSTEM = Caller("system", Role.SYSTEM)
#: How often a save sealed under a data key erased meanwhile is sealed again.
DATA_KEY_ATTEMPTS = 5


def utc_now() -> datetime:
    return datetime.now(UTC)


def plain(value: Any) -> Any:
    """An event's data as JSON-ready plain values (enums by value, money as numbers).

    How a value is converted depends on its type alone, so it is worked out
    once per type (`_plain_for`) rather than by a chain of `isinstance` tests
    for every value: the audit trail converts every field of every event."""
    kind = type(value)
    convert = _PLAIN.get(kind)
    if convert is None:
        if len(_PLAIN) >= 4096:  # pragma: no cover - only ever a few dozen types
            _PLAIN.clear()
        convert = _PLAIN[kind] = _plain_for(kind)
    return convert(value)


def _plain_for(kind: type[Any]) -> Callable[[Any], Any]:
    """`plain` for values of exactly this type: the tests a chain of `isinstance`
    would make, in the same order (tests/unit/test_handler_caches.py keeps that
    chain and compares the two)."""
    if issubclass(kind, Enum):
        return _enum_value
    if dataclasses.is_dataclass(kind) and not issubclass(kind, type):
        names = tuple(f.name for f in dataclasses.fields(kind))
        return lambda value: {name: plain(getattr(value, name)) for name in names}
    if issubclass(kind, list | tuple):
        return lambda value: [plain(v) for v in value]
    if issubclass(kind, dict):
        return lambda value: {k: plain(v) for k, v in value.items()}
    if issubclass(kind, Decimal):
        return _decimal_number
    if issubclass(kind, datetime):
        return utc_iso
    if issubclass(kind, date):
        return _date_iso
    if issubclass(kind, UUID):
        return str
    return _same_value


def _enum_value(value: Enum) -> Any:
    return value.value


def _decimal_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def utc_iso(value: datetime) -> str:
    """An instant as UTC ISO 8601 text (as plain values, the audit trail and the
    read models' tables keep it): one already in UTC, as decoded from the store,
    needs no conversion."""
    if value.tzinfo is UTC:
        return value.isoformat()
    return value.astimezone(UTC).isoformat()


def _date_iso(value: date) -> str:
    return value.isoformat()


def _same_value(value: Any) -> Any:
    return value


_PLAIN: dict[type[Any], Callable[[Any], Any]] = {}


class FieldLedger(Application[UUID]):
    name = "FieldLedger"

    def __init__(
        self,
        database_url: str | None = None,
        *,
        policy: Policy | None = None,
        clock: Callable[[], datetime] = utc_now,
        env: EnvType | None = None,
        timezone: str = "Asia/Shanghai",
        record_policy: bool = True,
        master_key: MasterKey | None = None,
        max_backdate: timedelta | None = DEFAULT_MAX_BACKDATE,
        aggregate_cache: int | None = None,
    ) -> None:
        merged: dict[str, str] = {}
        if database_url is not None:
            merged.update(store_environment(database_url))
        if env:
            merged.update(env)
        #: Seals customers' personal data in the events (docs/privacy.md); made
        #: first, since the store's transcoder registers its step.
        self.personal_data = PersonalDataVault()
        super().__init__(env=merged)
        try:
            database = Database(self.recorder)
            if master_key is None:
                store = {
                    "PERSISTENCE_MODULE": f"eventsourcing.{database.dialect}",
                    "SQLITE_DBNAME": merged.get("SQLITE_DBNAME", ""),
                }
                master_key = resolve_master_key(
                    store,
                    os.environ.get("FIELDLEDGER_MASTER_KEY"),
                    os.environ.get("FIELDLEDGER_MASTER_KEY_FILE"),
                )
            self.personal_data.open(database, master_key)
        except BaseException:
            self.close()
            raise
        self.policy = policy or builtin_policy()
        self.policy_version = self.policy.version
        self.clock = clock
        self.committer = GroupCommitter(self._write)
        #: The aggregates commands last read or wrote, bounded (aggregate_cache.py).
        self.aggregate_cache = AggregateCache(
            int(os.environ.get("FIELDLEDGER_AGGREGATE_CACHE", DEFAULT_MAXSIZE))
            if aggregate_cache is None
            else aggregate_cache
        )
        #: The time zone of calendars (FIELDLEDGER_TIMEZONE).
        self.timezone = timezone
        self._policies: dict[str, Policy] = {self.policy_version: self.policy}
        self._adopted: set[str] = set()
        #: Record the policy before the first booking or lodging (see adopt_policy).
        #: Off only for stores of synthetic events whose positions a test counts.
        self.record_policy = record_policy
        #: Finds earlier orders for repeat-call linking (wired by the service);
        #: without it, only the links a booking names are recorded.
        self.repeat_calls: RepeatCallFinder | None = None
        #: Says whether a staff id is known (wired by the service: token holders);
        #: without it, hand-overs accept any id.
        self.staff_directory: Callable[[str], bool] | None = None
        #: How far a command's `occurred_at` may lie before its recording (None: any).
        self.max_backdate = max_backdate

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON transcoder, unless another is configured, as
        `LedgerTranscoder`: the same bytes for less work per event."""
        transcoder = self.factory.transcoder()
        if type(transcoder) is JSONTranscoder:
            transcoder = LedgerTranscoder()
        if isinstance(transcoder, JSONTranscoder):
            self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_value_types(transcoder, VALUE_TYPES)
        # After the plain value types: a customer is sealed on the way in (events
        # recorded before sealing existed still decode, as the plain type).
        for transcoding in personal_data_transcodings(self.personal_data):
            transcoder.register(transcoding)

    @property
    def ledger_recorder(self) -> LedgerSQLiteRecorder | LedgerPostgresRecorder:
        recorder = self.recorder
        assert isinstance(recorder, LedgerSQLiteRecorder | LedgerPostgresRecorder)
        return recorder

    def context(
        self,
        caller: Caller,
        occurred_at: datetime | None,
        previous: LedgerAggregate | None = None,
    ) -> Context:
        """Who and when. A command that does not say when it happened happened now,
        but never before the record's previous event: that one may lie up to the
        allowed clock skew ahead of the server's clock (a phone's clock running
        fast), and the order of `occurred_at` must hold."""
        now = self.clock()
        last = None if previous is None else previous.last_occurred_at
        if occurred_at is None and last is not None and last > now:
            occurred_at = last
        return Context(caller.actor, caller.role, now, occurred_at, self.max_backdate)

    # -- policies -------------------------------------------------------------

    def adopt_policy(self, policy: Policy | None = None) -> int | None:
        """Record `policy` (default: the one in force) as adopted, once per version.

        Called when the service starts, and before the first booking or lodging
        of a process (whatever the edge), so that the store holds each policy
        before any order booked under it: read models learn past policies from
        the events. Commands that book nothing (the CLI's projections and sweep)
        write nothing.
        Returns the position of the `PolicyAdopted` written, None when it was
        recorded before.
        """
        version = self.policy_version if policy is None else policy.version
        if version in self._adopted:  # the usual case: no hashing, no reading
            return None
        policy = policy or self.policy
        position: int | None = None
        try:
            self.repository.get(adopted_policy_id(version))
        except AggregateNotFoundError:
            record = AdoptedPolicy.adopt(Context(SYSTEM.actor, SYSTEM.role, self.clock()), policy)
            try:
                position = self.save(record)[-1].notification.id
            except IntegrityError:
                position = None  # another process recorded it first
        self._adopted.add(version)
        self._policies[version] = policy
        return position

    def policy_by_version(self, version: str) -> Policy:
        """The policy of that version, as adopted (orders keep their booking's policy)."""
        found = self._policies.get(version)
        if found is not None:
            return found
        try:
            record: Any = self.repository.get(adopted_policy_id(version))
        except AggregateNotFoundError:
            builtin = builtin_policy()
            if builtin.version != version:
                raise UnknownPolicy(f"policy {version} was never recorded as adopted") from None
            found = builtin
        else:
            assert isinstance(record, AdoptedPolicy)
            found = record.policy
        self._policies[version] = found
        return found

    # -- creating -----------------------------------------------------------

    def book_work_order(
        self,
        caller: Caller,
        *,
        occurred_at: datetime | None = None,
        idempotency: Idempotency | None = None,
        **fields: Unpack[BookFields],
    ) -> CommandResult:
        BOOK.check(caller.role)
        previous = fields.get("previous_work_order_id")
        if previous is not None:
            try:
                self.get(WorkOrder, previous)
            except NotFound:
                raise InvalidCommand(
                    "previous_work_order_id", f"no work order {previous}"
                ) from None
        contract_id = fields.get("contract_id")
        if contract_id is not None:
            self._check_contract(contract_id, occurred_at)
        if self.record_policy:
            self.adopt_policy()

        def book() -> WorkOrder:
            ctx = self.context(caller, occurred_at)
            repeat_of = None
            if previous is None:
                repeat_of = self.find_repeated_order(
                    fields["customer"].phone, fields["service_type"], ctx.when
                )
            return WorkOrder.book(
                ctx, id=uuid4(), policy_version=self.policy_version, repeat_of=repeat_of,
                **fields,
            )  # fmt: skip

        return self._create(caller, idempotency, book)

    def find_repeated_order(self, phone: str, service_type: str, when: datetime) -> UUID | None:
        """The earlier order a booking at `when` repeats (contract §11.4), if any."""
        if self.repeat_calls is None:
            return None
        since = when - repeat_window(self.policy.procedure)
        # The key the store seals the contact under: what the read model holds.
        customer = str(self.personal_data.customer_id(phone))
        return self.repeat_calls.earlier_order(customer, service_type.strip(), since, when)

    def _check_contract(self, contract_id: UUID, occurred_at: datetime | None) -> None:
        """A contract order names a contract that exists and covers the booking's day."""
        try:
            contract = self.get(MaintenanceContract, contract_id)
        except NotFound:
            raise InvalidCommand("contract_id", f"no maintenance contract {contract_id}") from None
        why = contract.covers(local_date(occurred_at or self.clock(), self.timezone))
        if why is not None:
            raise InvalidCommand("contract_id", why)

    def sign_maintenance_contract(
        self,
        caller: Caller,
        *,
        occurred_at: datetime | None = None,
        idempotency: Idempotency | None = None,
        **fields: Unpack[SignFields],
    ) -> CommandResult:
        SIGN.check(caller.role)
        return self._create(
            caller,
            idempotency,
            lambda: MaintenanceContract.sign(
                self.context(caller, occurred_at), id=uuid4(), **fields
            ),
        )

    def lodge_complaint(
        self,
        caller: Caller,
        *,
        occurred_at: datetime | None = None,
        idempotency: Idempotency | None = None,
        **fields: Unpack[LodgeFields],
    ) -> CommandResult:
        LODGE.check(caller.role)
        work_order_id = fields.get("work_order_id")
        if work_order_id is not None:
            try:
                self.get(WorkOrder, work_order_id)
            except NotFound:
                raise InvalidCommand("work_order_id", f"no work order {work_order_id}") from None
        if self.record_policy:
            self.adopt_policy()
        return self._create(
            caller,
            idempotency,
            lambda: Complaint.lodge(
                self.context(caller, occurred_at),
                id=uuid4(),
                policy_version=self.policy_version,
                **fields,
            ),
        )

    def _create(
        self,
        caller: Caller,
        idempotency: Idempotency | None,
        make: Callable[[], LedgerAggregate],
    ) -> CommandResult:
        replay = self._replay(caller, idempotency)
        if replay is not None:
            return replay
        aggregate = make()
        result = CommandResult(aggregate.id, aggregate.version, aggregate.state_name, created=True)
        try:
            position = self._save(caller, idempotency, result, aggregate, keep=True)
        except IntegrityError:
            replay = self._replay(caller, idempotency)
            if replay is not None:
                return replay
            raise
        return result.at(position)

    # -- acting on what exists ---------------------------------------------

    def execute(
        self,
        command: Command[A, B],
        caller: Caller,
        aggregate_id: UUID,
        body: B,
        *,
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Give `command` (of `fieldledger.application.commands`) on a record.

        `occurred_at` defaults to the body's. Without `expected_version` a lost
        race is retried on the fresh state; with it, it is the caller's (412).
        """
        self._check_named_staff(command, caller, body)
        rules = self.rules()
        return self._update(
            command, caller, aggregate_id,
            lambda aggregate, ctx: command.call(aggregate, ctx, body, rules),
            occurred_at or body.occurred_at, expected_version, idempotency,
        )  # fmt: skip

    def execute_on_staff(
        self,
        command: Command[StaffMember, B],
        caller: Caller,
        staff_id: str,
        body: B,
        *,
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Give a staff command (`commands.STAFF`); the record is opened on its
        first entry. `expected_version` is the record's version before this
        entry (0 while it has none), as in the ETag of the previous answer."""
        command.check(caller.role)
        rules = self.rules()
        return self.staff_act(
            caller, staff_id, lambda staff, ctx: command.call(staff, ctx, body, rules),
            occurred_at=occurred_at or body.occurred_at, expected_version=expected_version,
            idempotency=idempotency,
        )  # fmt: skip

    def rules(self) -> Rules:
        """What of the configuration commands are checked against."""
        return Rules(self.policy, self.timezone)

    def _check_named_staff(self, command: Command[Any, B], caller: Caller, body: B) -> None:
        """A hand-over names a staff member the service knows (when it knows any)."""
        if command.names_staff is None or self.staff_directory is None:
            return
        command.check(caller.role)  # the role first
        to = command.names_staff(body).strip()
        if to and not self.staff_directory(to):
            raise InvalidCommand("to_staff_id", f"no staff member {to} is known")

    # By name, for in-process callers (tests, scripts): the named command of the
    # registry with these arguments as its body, unvalidated (the domain
    # validates; the HTTP edge validates the body before `execute`).

    def _named(
        self, commands: CommandSet[A], caller: Caller, aggregate_id: UUID, command: str,
        args: Mapping[str, Any], **options: Any,
    ) -> CommandResult:  # fmt: skip
        given = commands[command]
        return self.execute(given, caller, aggregate_id, _unvalidated(given, args), **options)

    def work_order_command(
        self, caller: Caller, order_id: UUID, command: str, args: Mapping[str, Any],
        **options: Any,
    ) -> CommandResult:  # fmt: skip
        """`execute` the work order command of that name (`commands.WORK_ORDER`)."""
        return self._named(WORK_ORDER, caller, order_id, command, args, **options)

    def complaint_command(
        self, caller: Caller, complaint_id: UUID, command: str, args: Mapping[str, Any],
        **options: Any,
    ) -> CommandResult:  # fmt: skip
        """`execute` the complaint command of that name (`commands.COMPLAINT`)."""
        return self._named(COMPLAINT, caller, complaint_id, command, args, **options)

    def maintenance_contract_command(
        self, caller: Caller, contract_id: UUID, command: str, args: Mapping[str, Any],
        **options: Any,
    ) -> CommandResult:  # fmt: skip
        """`execute` the contract command of that name (`commands.MAINTENANCE_CONTRACT`)."""
        return self._named(MAINTENANCE_CONTRACT, caller, contract_id, command, args, **options)

    def staff_command(
        self, caller: Caller, staff_id: str, command: str, args: Mapping[str, Any],
        **options: Any,
    ) -> CommandResult:  # fmt: skip
        """`execute_on_staff` the staff command of that name (`commands.STAFF`)."""
        given = STAFF[command]
        return self.execute_on_staff(given, caller, staff_id, _unvalidated(given, args), **options)

    def record_conduct(
        self,
        caller: Caller,
        staff_id: str,
        *,
        kind: str,
        points: Decimal | None,
        note: str,
        minutes: int | None = None,
        discipline: str | None = None,
        extra_points: Decimal | None = None,
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Record conduct (contract §11.1)."""
        body = Conduct.model_construct(
            kind=kind, points=points, note=note, minutes=minutes, discipline=discipline,
            extra_points=extra_points,
        )  # fmt: skip
        return self.execute_on_staff(
            CONDUCT, caller, staff_id, body, occurred_at=occurred_at,
            expected_version=expected_version, idempotency=idempotency,
        )  # fmt: skip

    def staff_act(
        self,
        caller: Caller,
        staff_id: str,
        act: Callable[[StaffMember, Context], None],
        *,
        occurred_at: datetime | None = None,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        """Load (or open) a staff member's record, `act` on it, save. Who may act
        is the caller's business (`execute_on_staff`; the sweep acts as the system)."""
        replay = self._replay(caller, idempotency)
        if replay is not None:
            return replay
        attempts = 1 if expected_version is not None else 5
        for _attempt in range(attempts):
            staff: StaffMember | None
            try:
                staff = self.repository.get(staff_aggregate_id(staff_id))
            except AggregateNotFoundError:
                staff = None
            ctx = self.context(caller, occurred_at, staff)
            current = 0 if staff is None else staff.version
            if expected_version is not None and current != expected_version:
                raise VersionMismatch(expected_version, current)
            if staff is None:
                staff = StaffMember.register(ctx, staff_id)
            assert isinstance(staff, StaffMember)
            act(staff, ctx)
            result = CommandResult(staff.id, staff.version, staff.state_name)
            try:
                position = self._save(caller, idempotency, result, staff)
            except IntegrityError:
                replay = self._replay(caller, idempotency)
                if replay is not None:
                    return replay
                if expected_version is not None:
                    raise VersionMismatch(expected_version, self._version_of(staff.id)) from None
                continue
            return dataclasses.replace(result, position=position)
        raise Busy(f"staff member {staff_id} is being changed by others; try again")

    # -- customers' personal data ----------------------------------------------

    def erase_customer(
        self, caller: Caller, customer_id: UUID, reason: str, *, phone: str = ""
    ) -> CommandResult:
        """Destroy the customer's data keys and record `Erased`, in one
        transaction: their name, phone and address in every event become
        unreadable for good (docs/privacy.md). A customer erased before, with no
        data since, is answered as it stands: nothing is written."""
        CUSTOMER_ERASE.check(caller.role)
        for _attempt in range(5):
            record: CustomerRecord | None
            try:
                record = self.repository.get(customer_id)
            except AggregateNotFoundError:
                record = None
            if record is not None and not isinstance(record, CustomerRecord):
                raise NotFound(f"no customer {customer_id}")
            keys = self.personal_data.key_count(customer_id)
            if keys == 0:
                if record is None:
                    raise NotFound(
                        f"no personal data held for customer {customer_id} under a data key "
                        "(records from before sealing cannot be erased; docs/privacy.md)"
                    )
                return CommandResult(record.id, record.version, record.state_name)
            ctx = self.context(caller, None, record)
            if record is None:
                record = CustomerRecord.erase_first(ctx, customer_id, reason, keys, phone)
            else:
                record.erase(ctx, reason, keys, phone)
            result = CommandResult(record.id, record.version, record.state_name)
            try:
                recordings = self.save(record, **{ERASE_KEYS_OF: [str(customer_id)]})
            except IntegrityError:
                continue  # erased at the same moment by someone else: look again
            # Cached aggregates hold personal data sealed only, but an erasure is
            # rare: this worker's cache starts again empty (aggregate_cache.py).
            self.aggregate_cache.clear()
            self.personal_data.forget_customer(customer_id)
            return dataclasses.replace(result, position=recordings[-1].notification.id)
        raise Busy(f"customer {customer_id} is being erased by others; try again")

    def _version_of(self, aggregate_id: UUID) -> int:
        events = self.recorder.select_events(aggregate_id, desc=True, limit=1)
        return events[0].originator_version if events else 0

    def _update(
        self,
        command: Command[A, Any],
        caller: Caller,
        aggregate_id: UUID,
        act: Callable[[A, Context], None],
        occurred_at: datetime | None,
        expected_version: int | None,
        idempotency: Idempotency | None,
    ) -> CommandResult:
        # The role first: a role that may never give the command learns nothing,
        # not even whether the id exists or what an earlier request answered.
        command.check(caller.role)
        kind = command.aggregate
        replay = self._replay(caller, idempotency)
        if replay is not None:
            return replay
        # Without an expected version the caller asked for no concurrency
        # control: a lost race is retried on the fresh state, where the rules are
        # checked again. With one, a lost race is the caller's to resolve.
        # A decision on a cached copy that turns out stale (aggregate_cache.py)
        # is no lost race: it is taken again on the store's state, uncounted.
        attempts = 1 if expected_version is not None else 5
        tried = 0
        fresh = False
        while tried < attempts:
            aggregate, cached = self._load_for_command(kind, aggregate_id, fresh)
            try:
                if kind is WorkOrder:
                    authorize_assigned(caller.role, caller.actor, aggregate)
                if expected_version is not None and aggregate.version != expected_version:
                    raise VersionMismatch(expected_version, aggregate.version)
                act(aggregate, self.context(caller, occurred_at, aggregate))
            except DomainError:
                if not cached:
                    raise
                fresh = True  # refused on a cached copy: decide on the store's
                continue
            if cached and not aggregate.pending_events:
                fresh = True  # nothing to write, so no version check: read the store
                continue
            result = CommandResult(aggregate.id, aggregate.version, aggregate.state_name)
            try:
                position = self._save(caller, idempotency, result, aggregate, keep=True)
            except IntegrityError:
                self.aggregate_cache.evict(aggregate_id)
                replay = self._replay(caller, idempotency)
                if replay is not None:
                    return replay
                if cached:
                    fresh = True
                    continue
                if expected_version is not None:
                    current = self._version_of(aggregate_id)
                    raise VersionMismatch(expected_version, current) from None
                tried += 1
                continue
            return result.at(position)
        raise Busy(f"{kind.kind} {aggregate_id} is being changed by others; try again")

    def _load_for_command(self, kind: type[A], aggregate_id: UUID, fresh: bool) -> tuple[A, bool]:
        """The aggregate a command acts on, and whether it is a cached copy."""
        if not fresh and self.aggregate_cache.enabled:
            found = self.aggregate_cache.take(aggregate_id)
            if isinstance(found, kind):
                return found, True
            if found is not None:  # another kind under this id: leave it as it was
                self.aggregate_cache.put(found, copy=False)
        aggregate = self.get(kind, aggregate_id)
        self.aggregate_cache.put(aggregate)
        return aggregate, False

    def _replay(self, caller: Caller, idempotency: Idempotency | None) -> CommandResult | None:
        if idempotency is None:
            return None
        receipt = self.ledger_recorder.find_receipt(caller.actor, idempotency.key)
        if receipt is None:
            return None
        if receipt.fingerprint != idempotency.fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {idempotency.key!r} was already used for another request"
            )
        answered = receipt.response
        # The events are immutable: their position is the one the first answer gave.
        position = self.ledger_recorder.position_of(UUID(answered["id"]), int(answered["version"]))
        return CommandResult.from_receipt(answered, position)

    def _save(
        self,
        caller: Caller,
        idempotency: Idempotency | None,
        result: CommandResult,
        *aggregates: LedgerAggregate,
        keep: bool = False,
    ) -> int | None:
        """Save; with `keep`, cache the saved aggregates for the next command
        (with their personal data sealed, or not at all: aggregate_cache.py)."""
        receipt = (
            Receipt(caller.actor, idempotency.key, idempotency.fingerprint, result.as_receipt())
            if idempotency is not None
            else None
        )
        events = [e for aggregate in aggregates for e in aggregate.collect_events()]
        for attempt in range(DATA_KEY_ATTEMPTS):
            clear = self.personal_data.prepare(events)
            try:
                position = self.committer.save(events, receipt)
                break
            except DataKeyErased as e:
                # Erased by another process since this one fetched the key:
                # nothing was written; seal again under the customer's key now.
                self.personal_data.forget(e.key_ids)
                if attempt == DATA_KEY_ATTEMPTS - 1:
                    raise
        if keep:
            for aggregate in aggregates:
                # Personal data in clear in the events: the aggregate's state is
                # given what the store now holds for it (sealed; a booking's
                # customer), and may hold none at all (an acceptance's
                # signature): then, and only then, it is kept.
                if clear:
                    self.personal_data.seal_in_place(aggregate)
                if clear and self.personal_data.holds_in_clear(aggregate):
                    self.aggregate_cache.evict(aggregate.id)
                else:
                    # Handed back, not copied: the command is done with it.
                    self.aggregate_cache.put(aggregate, copy=False)
        return position

    def _write(self, events: Sequence[Any], receipts: list[Receipt]) -> list[int | None]:
        """One transaction: these events and these receipts, or nothing.

        What `Application.save(*events, receipts=...)` does, without its
        `collect_events`, which asks of each event whether it is a
        `DomainEventProtocol` (a runtime Protocol check, some 7 us each); these
        are domain events by construction (`collect_events` of aggregates)."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        processing.events.extend(events)
        processing.saved_kwargs["receipts"] = receipts
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        self.notify(processing.events)  # the library's deprecated hook, as save calls it
        return [r.notification.id for r in recordings]

    def _record(self, processing: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Every save (`_write`'s and the library's `save`): the data keys its
        events are sealed under while they are encoded go with it, for the
        store to check under its write lock that none was erased meanwhile."""
        with self.personal_data.sealing() as used:
            processing.saved_kwargs[DATA_KEYS_USED] = used
            return super()._record(processing)

    # -- reading ------------------------------------------------------------

    def get(self, kind: type[A], aggregate_id: UUID) -> A:
        try:
            aggregate: LedgerAggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"no {kind.kind} {aggregate_id}") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"no {kind.kind} {aggregate_id}")
        return aggregate

    def get_as_of(self, kind: type[A], aggregate_id: UUID, as_of: datetime) -> A:
        """The aggregate as it was at `as_of`: its events that occurred by then, replayed."""
        aggregate: Any = None
        for event in self.events.get(aggregate_id):
            if event.occurred_at > as_of:  # type: ignore[attr-defined]
                break
            aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
        if aggregate is None:
            self.get(kind, aggregate_id)  # raises NotFound for an unknown id
            raise NotFound(f"{kind.kind} {aggregate_id} did not exist yet at {as_of.isoformat()}")
        if not isinstance(aggregate, kind):
            raise NotFound(f"no {kind.kind} {aggregate_id}")
        return aggregate

    def history(self, kind: type[A], aggregate_id: UUID) -> list[HistoryEntry]:
        return self.state_and_history(kind, aggregate_id)[1]

    def state_and_history(
        self, kind: type[A], aggregate_id: UUID
    ) -> tuple[A, list[HistoryEntry]]:
        """The aggregate now and its history, from one read of its events (a
        history answer needs both: what of the contacts in it a caller may see
        can depend on the aggregate, e.g. whom a work order is assigned to).
        Before, `get` and the history read and decoded the events once each,
        and the route a third time (docs/benchmarks.md, branch i11o)."""
        events: list[Any] = list(self.events.get(aggregate_id))
        # Each entry's data is a plain copy, taken before the replay below: an
        # aggregate may keep (and later change) a value an event carried.
        entries = [history_entry(e) for e in events]
        aggregate: Any = None
        for event in events:
            aggregate = event.mutate(aggregate)
        if aggregate is None or not isinstance(aggregate, kind):
            raise NotFound(f"no {kind.kind} {aggregate_id}")
        # Read after the events: each was committed with its hash.
        hashes = self.ledger_recorder.event_hashes(aggregate_id)
        return aggregate, [
            dataclasses.replace(e, hash=hashes.get(e.version)) if e.version in hashes else e
            for e in entries
        ]

    def verified_history(self, kind: type[A], aggregate_id: UUID) -> list[VerifiedEvent]:
        """The history with each event checked against its hash row, read from
        the stored rows as they are now: an event edited below the API shows as
        stored, with what is wrong; one edited past decoding shows as unreadable."""
        stored = self.recorder.select_events(aggregate_id)
        marker = f":{kind.__name__}."
        if not stored or any(marker not in s.topic for s in stored[:1]):
            raise NotFound(f"no {kind.kind} {aggregate_id}")
        hashes = self.ledger_recorder.event_hashes(aggregate_id)
        verdicts = verify_aggregate(stored, hashes)
        out = []
        for s in stored:
            version = s.originator_version
            problem = verdicts[version]
            try:
                entry: HistoryEntry | None = history_entry(
                    self.mapper.to_domain_event(s), hashes.get(version)
                )
            except Exception as e:  # a row edited past decoding: still shown, as broken
                entry = None
                problem = f"cannot be read ({type(e).__name__}); {problem or 'edited'}"
            out.append(VerifiedEvent(version, s.topic.rsplit(".", 1)[-1], entry, problem,
                                     hashes.get(version)))  # fmt: skip
        return out

    def get_at_version(self, kind: type[A], aggregate_id: UUID, version: int) -> A:
        """The aggregate as it was right after its event `version`."""
        self.get(kind, aggregate_id)
        try:
            aggregate: LedgerAggregate = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:  # pragma: no cover - the id was found above
            raise NotFound(f"no {kind.kind} {aggregate_id}") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"no {kind.kind} {aggregate_id}")
        return aggregate


def _unvalidated(command: Command[Any, B], args: Mapping[str, Any]) -> B:
    """The command's body holding `args` as given (the domain checks them)."""
    unknown = set(args) - set(command.body.model_fields)
    if unknown:
        raise TypeError(f"{command.name} takes no {', '.join(sorted(unknown))}")
    return command.body.model_construct(**args)


#: The types `plain` returns as they are, the most common in events' fields:
#: tested before calling it (a set lookup instead of two calls per field).
_ALREADY_PLAIN = frozenset((str, int, bool, float, type(None)))


def history_data(event: Any) -> dict[str, Any]:
    """An event's own fields (not the base fields every event has), as plain values."""
    return {
        k: v if type(v) in _ALREADY_PLAIN else plain(v)
        for k, v in event.__dict__.items()
        if k not in BASE_FIELDS
    }


def history_entry(event: Any, hash: str | None = None) -> HistoryEntry:
    data = history_data(event)
    return HistoryEntry(
        aggregate_id=event.originator_id,
        type=type(event).__name__,
        version=event.originator_version,
        actor=event.actor,
        role=event.role,
        occurred_at=event.occurred_at,
        recorded_at=event.timestamp,
        data=data,
        hash=hash,
    )
