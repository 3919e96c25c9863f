"""The on-site checklist and item checklist every test's field work passes
(contract §11.4, 004 二(一)2): as domain values and as JSON bodies."""

from __future__ import annotations

from typing import Any

from fieldledger.domain.work_orders import ChecklistItem

#: The lines of the on-site checklist besides identity_shown and risk_assessment.
ON_SITE_CHECKS: dict[str, Any] = {
    "customer_identity_verified": True,
    "site_safe": True,
    "tools_complete": True,
}
#: The item checklist at completion, for the ledger (domain values).
CHECKLIST = [ChecklistItem("tested after repair", True)]
#: The same, as a JSON body's `checklist`.
CHECKLIST_JSON: list[dict[str, Any]] = [{"item": "tested after repair", "done": True}]
