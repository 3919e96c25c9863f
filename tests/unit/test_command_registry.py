"""The command registry (src/application/commands.py): each command defined once,
and everything that gives or describes commands reads it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fieldledger.api.app import create_app
from fieldledger.api.console.records import KINDS
from fieldledger.application.commands import (
    COMPLAINT,
    MAINTENANCE_CONTRACT,
    STAFF,
    WORK_ORDER,
    AssignTechnician,
    Command,
    CommandSet,
    NoData,
    roles,
)
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.errors import NotPermitted
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import WorkOrder

SETS: dict[str, CommandSet[Any]] = {
    "/work-orders": WORK_ORDER,
    "/complaints": COMPLAINT,
    "/maintenance-contracts": MAINTENANCE_CONTRACT,
    "/staff": STAFF,
}


@pytest.fixture(scope="module")
def posts() -> dict[str, dict[str, Any]]:
    """Every POST of /openapi.json, by path."""
    paths = create_app().openapi()["paths"]
    return {path: ops["post"] for path, ops in paths.items() if "post" in ops}


def test_every_routed_command_has_its_route_body_and_roles(
    posts: dict[str, dict[str, Any]],
) -> None:
    for prefix, commands in SETS.items():
        for command in commands.routed:
            param = "{staff_id}" if commands is STAFF else "{id}"
            post = posts[f"{prefix}/{param}/{command.name}"]
            assert post["summary"] == command.summary
            assert f"Who: {command.who}." in post["description"]
            body = json.dumps(post["requestBody"]["content"]["application/json"]["schema"])
            assert f'"#/components/schemas/{command.body.__name__}"' in body, command.name


def test_the_services_own_commands_have_no_route(posts: dict[str, dict[str, Any]]) -> None:
    for prefix, commands in SETS.items():
        for command in commands:
            if not command.routed:
                assert not any(p.startswith(prefix) and p.endswith(f"/{command.name}")
                               for p in posts), command.name  # fmt: skip
    assert not WORK_ORDER["remind"].routed and not WORK_ORDER["send-survey"].routed


def test_no_command_route_exists_outside_the_registry(posts: dict[str, dict[str, Any]]) -> None:
    seen = 0
    for path in posts:
        parts = path.strip("/").split("/")
        if len(parts) == 3 and f"/{parts[0]}" in SETS:
            assert parts[2] in SETS[f"/{parts[0]}"], path
            seen += 1
    assert seen == sum(len(c.routed) for c in SETS.values())


def test_the_role_check_names_the_command_and_who_may() -> None:
    command = WORK_ORDER["assign"]
    command.check(Role.DISPATCHER)
    with pytest.raises(NotPermitted, match="role technician may not assign; allowed: "
                       "dispatcher, supervisor"):  # fmt: skip
        command.check(Role.TECHNICIAN)


def test_a_set_refuses_two_commands_of_one_name_or_another_aggregate() -> None:
    assign = Command("assign", roles(Role.DISPATCHER), WorkOrder, AssignTechnician,
                     lambda o, ctx, b, _: o.assign(ctx, b.technician_id))  # fmt: skip
    with pytest.raises(AssertionError, match="two commands of one name"):
        CommandSet(WorkOrder, assign, assign)
    with pytest.raises(AssertionError):
        CommandSet(Complaint, assign)
    ack = Command("acknowledge", roles(Role.DISPATCHER), Complaint, NoData,
                  lambda c, ctx, b, _: c.acknowledge(ctx))  # fmt: skip
    assert "acknowledge" in CommandSet(Complaint, ack)


def test_the_console_offers_the_labelled_commands_of_the_registry() -> None:
    assert list(KINDS["work-orders"].commands) == [
        "assign", "hold", "resume", "escalate", "cancel", "log-callback"]  # fmt: skip
    assert list(KINDS["complaints"].commands) == [
        "acknowledge", "assign", "update-progress", "escalate"]  # fmt: skip
    for kind in KINDS.values():
        for name, command in kind.commands.items():
            assert command.label and command.name == name and command.routed


def test_a_command_by_name_refuses_arguments_its_body_has_not(tmp_path: Any) -> None:
    from fieldledger.application.ledger import Caller, FieldLedger

    ledger = FieldLedger(f"sqlite:///{tmp_path}/store.db")
    try:
        with pytest.raises(TypeError, match="training takes no training_kind"):
            ledger.staff_command(Caller("sup-1", Role.SUPERVISOR), "tech-1", "training",
                                 {"training_kind": "monthly"})  # fmt: skip
        assert ledger.recorder.max_notification_id() in (None, 0)  # nothing written
    finally:
        ledger.close()
