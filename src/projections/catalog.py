"""The read models this service keeps, by name."""

from __future__ import annotations

from fieldledger.projections.appraisal import AppraisalView
from fieldledger.projections.audit import AuditTrail
from fieldledger.projections.callbacks import CallbacksView
from fieldledger.projections.customer_files import CustomerFiles
from fieldledger.projections.maintenance_contracts import MaintenanceContractsView
from fieldledger.projections.read_model import ReadModel
from fieldledger.projections.reports import ReportsView
from fieldledger.projections.satisfaction import SatisfactionView
from fieldledger.projections.sla import SlaView

READ_MODELS: list[type[ReadModel]] = [
    SlaView,
    SatisfactionView,
    AppraisalView,
    CallbacksView,
    AuditTrail,
    CustomerFiles,
    MaintenanceContractsView,
    ReportsView,
]
