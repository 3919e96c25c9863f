"""Who may do what: the rules of the "who" columns of contract sections 4 and 5,
and who reads reports and renewals.

A technician may act only on work orders assigned to them; that rule needs the
aggregate, so it is `authorize_assigned`.
"""

from __future__ import annotations

from typing import Any

from fieldledger.domain.errors import NotPermitted
from fieldledger.domain.facts import Role

R = Role
_SUPER, _DISPATCH = R.SUPERVISOR, R.DISPATCHER

# Who may give each command is part of the command's definition, in
# fieldledger.application.commands (one registry); here are the rules they share.

#: Who reads the daily, weekly and monthly reports (docs/reports.md): the
#: service supervisor compiles them (003 第十一條, 002 服務監督報告) and analysts
#: study them; they rank and time individual staff, so not every role may.
REPORT_READERS = frozenset({_SUPER, R.ANALYST})
#: Who reads the renewals due (docs/contracts.md): those who chase renewals.
RENEWAL_READERS = frozenset({_DISPATCH, _SUPER, R.ANALYST})

#: Roles that may read work orders, complaints and their history.
READERS = frozenset(Role)


def authorize(command: str, allowed: frozenset[Role], role: Role) -> None:
    """`role` may give `command` at all (else NotPermitted, HTTP 403)."""
    if role not in allowed:
        raise NotPermitted(
            f"role {role.value} may not {command}; allowed: "
            + ", ".join(sorted(r.value for r in allowed))
        )


def authorize_assigned(role: Role, actor: str, aggregate: Any) -> None:
    """A technician acts only on the work orders assigned to them."""
    if role is Role.TECHNICIAN and getattr(aggregate, "technician_id", None) != actor:
        raise NotPermitted(f"work order {aggregate.id} is not assigned to {actor}")
