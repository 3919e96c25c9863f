"""The read models this service keeps, by name."""

from __future__ import annotations

from fieldledger.projections.read_model import ReadModel
from fieldledger.projections.sla import SlaView

READ_MODELS: list[type[ReadModel]] = [SlaView]
