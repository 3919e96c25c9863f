"""What the domain says when a command breaks a rule.

Each error carries enough to build a clear answer at the edge (problem+json over
HTTP, a one-line message in the CLI) without the edge knowing the rules.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command broke a business rule; nothing was recorded."""


class CommandNotAllowed(DomainError):
    """The command is not allowed in the aggregate's current state (HTTP 409)."""

    def __init__(self, kind: str, state: str, command: str, why: str = "") -> None:
        self.kind = kind
        self.state = state
        self.command = command
        detail = f"cannot {command} a {kind} that is {state}"
        super().__init__(f"{detail}: {why}" if why else detail)


class InvalidCommand(DomainError):
    """The command's data breaks an invariant (HTTP 422). `field` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class NotPermitted(DomainError):
    """The actor's role may not give this command, or not on this aggregate (HTTP 403)."""
