"""The read models this service keeps, by name."""

from __future__ import annotations

from fieldledger.projections.audit import AuditTrail
from fieldledger.projections.read_model import ReadModel

READ_MODELS: list[type[ReadModel]] = [AuditTrail]
