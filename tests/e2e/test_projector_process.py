"""`fieldledger projections run`: the projector as a process of its own, beside
API workers started with FIELDLEDGER_BACKGROUND=false."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.domain.facts import Role
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, Zone
from fieldledger.projections.catalog import READ_MODELS
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings

from tests.views import wait_until

CLI = str(Path(sys.executable).parent / "fieldledger")


def test_the_projector_process_keeps_views_caught_up_and_stops_cleanly(
    database_url: str,
) -> None:
    ledger = FieldLedger(database_url)
    projections = Projections(
        ledger, READ_MODELS, ProjectionSettings(builtin_policy(), "Asia/Shanghai")
    )
    env = {**{k: v for k, v in os.environ.items() if k != "PGAPPNAME"},
           "FIELDLEDGER_DATABASE_URL": database_url,
           "FIELDLEDGER_SWEEP_INTERVAL": "0", "FIELDLEDGER_POLL_INTERVAL": "0.05"}  # fmt: skip
    process = subprocess.Popen(
        [CLI, "projections", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        ledger.book_work_order(
            Caller("disp-1", Role.DISPATCHER), customer=Customer("A", "1", "x"),
            service_type="repair", priority=Priority.ROUTINE, zone=Zone.URBAN,
            channel=Channel.PHONE, billing=Billing.PAID, description="d",
        )  # fmt: skip
        head = projections.head()
        wait_until(
            lambda: all(s.position >= head for s in projections.status()), timeout=60
        )
        assert all(s.lag == 0 and s.error is None for s in projections.status())
        if database_url.startswith("postgresql"):
            # An operator tells the projector's backends from the API's.
            with psycopg.connect(database_url.partition("?")[0]) as conn:
                names = {r[0] for r in conn.execute(
                    "SELECT application_name FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                    "AND datname = current_database()"
                )}  # fmt: skip
            assert "fieldledger projector" in names
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        ledger.close()
    assert process.returncode == 0, stderr.decode()
