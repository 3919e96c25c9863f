"""The read models this service keeps, by name, and the types of event each
one's handlers act on where they are few (for rebuilds that read only those)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic
from fieldledger.domain.adopted_policies import AdoptedPolicy
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.maintenance_contracts import MaintenanceContract
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections.appraisal import AppraisalView
from fieldledger.projections.audit import AuditTrail
from fieldledger.projections.callbacks import CallbacksView
from fieldledger.projections.customer_files import CustomerFiles
from fieldledger.projections.maintenance_contracts import MaintenanceContractsView
from fieldledger.projections.notifications import NotificationOutbox
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
    NotificationOutbox,
    CustomerFiles,
    MaintenanceContractsView,
    ReportsView,
]

#: The only events (instances of these classes) that the handlers of these read
#: models act on: their `begin_batch`, `handle` and `end_batch` pass over any
#: other (tests/unit/test_rebuild_topics.py holds each to it). A rebuild
#: process whose read models are all listed here reads and decodes only
#: events of these types (`topics_for`): about half the store's events, while
#: the other process, with the audit trail (every event), reads them all.
#: A read model not listed is fed every event. The views that dispatch on
#: `type(event)` through a `_handlers` table are listed by its keys.
EVENT_TYPES: Mapping[str, tuple[type[Any], ...]] = {
    # `Subject.start` (Booked, Lodged), the policy, and `sla._CHANGES`.
    SlaView.name: (
        AdoptedPolicy.PolicyAdopted, WorkOrder.Booked, Complaint.Lodged,
        WorkOrder.Assigned, WorkOrder.Arrived, WorkOrder.Accepted, WorkOrder.ResolvedRemotely,
        WorkOrder.Cancelled, WorkOrder.PutOnHold, WorkOrder.Resumed, WorkOrder.Escalated,
        Complaint.Acknowledged, Complaint.Assigned, Complaint.Resolved, Complaint.Closed,
        Complaint.Escalated, WorkOrder.HandedOver, Complaint.HandedOver,
        WorkOrder.ReminderIssued, Complaint.ReminderIssued,
    ),
    # `notifications._HANDLING` and `OUTBOX`.
    NotificationOutbox.name: (
        WorkOrder.Booked, WorkOrder.Assigned, WorkOrder.HandedOver, Complaint.Lodged,
        Complaint.Assigned, Complaint.HandedOver, MaintenanceContract.Signed,
        WorkOrder.ReminderIssued, Complaint.ReminderIssued, WorkOrder.Escalated,
        Complaint.Escalated, MaintenanceContract.RenewalNoticeDue,
    ),
    CallbacksView.name: tuple(CallbacksView._handlers),
    MaintenanceContractsView.name: tuple(MaintenanceContractsView._handlers),
    SatisfactionView.name: tuple(SatisfactionView._handlers),
    AppraisalView.name: tuple(AppraisalView._handlers),
}  # fmt: skip


def domain_event_classes() -> list[type[Any]]:
    """Every event class of the domain's aggregates (subclasses included)."""
    found: list[type[Any]] = []
    pending: list[type[Any]] = [DomainEvent]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in found:
                pending.append(sub)
                if sub.__module__.startswith("fieldledger.domain."):
                    found.append(sub)
    return found


def topics_for(models: Iterable[ReadModel]) -> tuple[str, ...]:
    """The topics of the events these read models act on, when each is the
    catalogue's own and listed in `EVENT_TYPES`; () when any needs every event."""
    wanted: list[type[Any]] = []
    catalogue = {m.name: m for m in READ_MODELS}
    for model in models:
        types = EVENT_TYPES.get(model.name)
        if types is None or type(model) is not catalogue.get(model.name):
            return ()
        wanted.extend(types)
    classes = tuple(wanted)
    return tuple(sorted({get_topic(c) for c in domain_event_classes() if issubclass(c, classes)}))
