"""Operations tell the truth: `/healthz` says `degraded` with the reason (and
stays 200), `/readyz` answers 503 while a read model is stopped, and
`fieldledger projections status` exits 1 while one is stopped or stale."""

from __future__ import annotations

from typing import Any

import pytest
from fieldledger.api import cli
from fieldledger.projections.audit import AuditTrail
from fieldledger.projections.projector import ProjectionFailed
from typer.testing import CliRunner

from tests.e2e.conftest import Api
from tests.e2e.scenarios import Desk, assert_problem


def stop_the_audit(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = Desk(api)
    desk.book()
    api.catch_up()

    def refuse(self: AuditTrail, tx: Any, t: Any, event: Any, position: int) -> None:
        raise RuntimeError("cannot file this")

    monkeypatch.setattr(AuditTrail, "handle", refuse)
    desk.book()
    with pytest.raises(ProjectionFailed):
        api.catch_up()


def test_health_and_readiness_while_a_read_model_is_stopped(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = api.client.get("/healthz")
    assert ok.status_code == 200 and ok.json()["status"] == "ok" and ok.json()["reasons"] == []
    assert api.client.get("/readyz").json() == {"status": "ready"}

    stop_the_audit(api, monkeypatch)
    health = api.client.get("/healthz")
    assert health.status_code == 200  # alive: restarting it would not help
    assert health.json()["status"] == "degraded"
    (reason,) = health.json()["reasons"]
    assert "audit" in reason and "cannot file this" in reason
    problem = assert_problem(api.client.get("/readyz"), 503, "/problems/unavailable")
    assert "audit" in problem["detail"]


def test_projections_status_exits_1_while_a_read_model_is_stopped(
    api: Api, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    env = {"FIELDLEDGER_DATABASE_URL": database_url}
    fine = runner.invoke(cli.app, ["projections", "status"], env=env)
    assert fine.exit_code == 0, fine.stderr
    stop_the_audit(api, monkeypatch)
    stopped = runner.invoke(cli.app, ["projections", "status"], env=env)
    assert stopped.exit_code == 1
    assert "audit" in stopped.stdout  # the table still shows everything
    assert stopped.stderr.startswith("fieldledger: read models need attention: audit stopped at")


def test_projections_status_exits_1_while_a_read_model_is_stale(
    api: Api, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.catch_up()
    monkeypatch.setattr(AuditTrail, "schema_version", AuditTrail.schema_version + 1)
    health = api.client.get("/healthz").json()
    assert health["status"] == "degraded" and "audit is stale" in health["reasons"][0]
    assert api.client.get("/readyz").status_code == 200  # it still serves its view
    result = CliRunner().invoke(cli.app, ["projections", "status"],
                                env={"FIELDLEDGER_DATABASE_URL": database_url})  # fmt: skip
    assert result.exit_code == 1 and "audit stale" in result.stderr
