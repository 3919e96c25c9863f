"""Who may give which command: the "who" columns of contract sections 4 and 5.

A technician may act only on work orders assigned to them; that rule needs the
aggregate, so `authorize` takes it.
"""

from __future__ import annotations

from typing import Any

from fieldledger.domain.errors import NotPermitted
from fieldledger.domain.facts import Role

R = Role
_CLIENT, _DISPATCH, _TECH, _SUPER, _SYSTEM = (
    R.CLIENT_APP,
    R.DISPATCHER,
    R.TECHNICIAN,
    R.SUPERVISOR,
    R.SYSTEM,
)

WORK_ORDER_COMMANDS: dict[str, frozenset[Role]] = {
    "book": frozenset({_CLIENT, _DISPATCH}),
    "assign": frozenset({_DISPATCH, _SUPER}),
    "confirm": frozenset({_TECH}),
    "depart": frozenset({_TECH}),
    "notify-late": frozenset({_TECH}),
    "arrive": frozenset({_TECH}),
    "start": frozenset({_TECH}),
    "change-scope": frozenset({_TECH}),
    "complete": frozenset({_TECH}),
    "accept": frozenset({_CLIENT, _TECH}),
    "reject": frozenset({_CLIENT, _TECH}),
    "resolve-remotely": frozenset({_DISPATCH, _TECH}),
    "hold": frozenset({_DISPATCH, _TECH}),
    "resume": frozenset({_DISPATCH, _TECH}),
    "feedback": frozenset({_CLIENT}),
    "escalate": frozenset({_SUPER, _DISPATCH, _SYSTEM}),
    "cancel": frozenset({_CLIENT, _DISPATCH}),
    "log-callback": frozenset({_DISPATCH, _SUPER}),
}

# The contract names no "who" for complaints beyond client apps booking and
# following them for customers; this is the split a complaints desk works by
# (docs/api.md, "Who may do what"): client apps lodge and confirm for the
# customer, the service desk (dispatchers) and supervisors handle, supervisors
# and the system escalate. Findings may hold staff at fault, which costs them
# appraisal points: like conduct, that judgement is a supervisor's alone.
_DESK = frozenset({_DISPATCH, _SUPER})
COMPLAINT_COMMANDS: dict[str, frozenset[Role]] = {
    "lodge": frozenset({_CLIENT, _DISPATCH, _SUPER}),
    "acknowledge": _DESK,
    "assign": _DESK,
    "record-findings": frozenset({_SUPER}),
    "plan": _DESK,
    "update-progress": _DESK,
    "resolve": _DESK,
    "confirm": frozenset({_CLIENT, _DISPATCH, _SUPER}),
    "escalate": frozenset({_SUPER, _DISPATCH, _SYSTEM}),
}

# Contract §11.1, §11.7: a supervisor records conduct, spot checks, their
# outcome (retrained, reassigned), joining and training.
STAFF_COMMANDS: dict[str, frozenset[Role]] = {
    "conduct": frozenset({_SUPER}),
    "quality-checks": frozenset({_SUPER}),
    "retrained": frozenset({_SUPER}),
    "reassigned": frozenset({_SUPER}),
    "joined": frozenset({_SUPER}),
    "training": frozenset({_SUPER}),
}

# A customer's personal data as a whole (docs/privacy.md): finding the customer
# by phone, reading a copy of everything held (PIPL art. 45) and erasing it
# (art. 47) are decisions about a person, taken by supervisors.
CUSTOMER_COMMANDS: dict[str, frozenset[Role]] = {
    "lookup": frozenset({_SUPER}),
    "data": frozenset({_SUPER}),
    "erase": frozenset({_SUPER}),
}

# Contract §11.5: dispatchers and supervisors sign, renew and end maintenance
# contracts; the renewal notice (003 第十五條) is the sweep's alone.
MAINTENANCE_CONTRACT_COMMANDS: dict[str, frozenset[Role]] = {
    "sign": _DESK,
    "renew": _DESK,
    "end": _DESK,
    "record-renewal-notice": frozenset({_SYSTEM}),
}

#: Who reads the daily, weekly and monthly reports (docs/reports.md): the
#: service supervisor compiles them (003 第十一條, 002 服務監督報告) and analysts
#: study them; they rank and time individual staff, so not every role may.
REPORT_READERS = frozenset({_SUPER, R.ANALYST})
#: Who reads the renewals due (docs/contracts.md): those who chase renewals.
RENEWAL_READERS = frozenset({_DISPATCH, _SUPER, R.ANALYST})

#: Roles that may read work orders, complaints and their history.
READERS = frozenset(Role)


def authorize(
    table: dict[str, frozenset[Role]],
    command: str,
    role: Role,
    actor: str,
    aggregate: Any | None = None,
) -> None:
    allowed = table[command]
    if role not in allowed:
        raise NotPermitted(
            f"role {role.value} may not {command}; allowed: "
            + ", ".join(sorted(r.value for r in allowed))
        )
    if (
        role is Role.TECHNICIAN
        and table is WORK_ORDER_COMMANDS
        and aggregate is not None
        and getattr(aggregate, "technician_id", None) != actor
    ):
        raise NotPermitted(f"work order {aggregate.id} is not assigned to {actor}")
