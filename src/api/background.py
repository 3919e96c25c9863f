"""What runs beside the requests: the projector, the sweep, webhook delivery —
and the read models commands consult (repeat calls). Shared by `serve` and
`fieldledger projections run`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from fieldledger.application.settings import Settings
from fieldledger.application.sla_sweep import BackgroundSweeper
from fieldledger.application.tokens import TokenBook
from fieldledger.projections.appraisal import AppraisalTrainingWatch
from fieldledger.projections.maintenance_contracts import ContractRenewals
from fieldledger.projections.notification_delivery import BackgroundDelivery, WebhookDelivery
from fieldledger.projections.projector import BackgroundProjector, Projections
from fieldledger.projections.satisfaction import SatisfactionSources
from fieldledger.projections.sla import SlaRedTargets


class Worker(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def wire(projections: Projections, tokens: TokenBook | None = None) -> None:
    """Give the ledger the read models its commands consult."""
    ledger = projections.ledger
    ledger.repeat_calls = SatisfactionSources(projections)
    if tokens is not None:
        ledger.staff_directory = tokens.knows_staff


@dataclass
class Workers:
    projector: BackgroundProjector | None = None
    sweeper: BackgroundSweeper | None = None
    delivery: BackgroundDelivery | None = None
    started: list[Worker] = field(default_factory=list)

    def start(self) -> None:
        for worker in (self.projector, self.sweeper, self.delivery):
            if worker is not None:
                worker.start()
                self.started.append(worker)

    def stop(self) -> None:
        for worker in reversed(self.started):
            worker.stop()
        if self.delivery is not None and self.delivery not in self.started:
            self.delivery.delivery.close()  # its HTTP client, never used
        self.started.clear()


def workers(settings: Settings, projections: Projections, *, projector: bool = True) -> Workers:
    """The background workers the settings ask for (not started)."""
    sweeper = None
    if settings.sweep_interval > 0:
        sweeper = BackgroundSweeper(
            projections.ledger, SlaRedTargets(projections), settings.sweep_interval,
            surveys=SatisfactionSources(projections), renewals=ContractRenewals(projections),
            training=AppraisalTrainingWatch(projections),
        )  # fmt: skip
    delivery = None
    if settings.webhook_url is not None:
        delivery = BackgroundDelivery(
            WebhookDelivery(projections, settings.webhook_url, timeout=settings.webhook_timeout),
            interval=max(settings.poll_interval, 0.5),
        )
    return Workers(
        projector=BackgroundProjector(projections, interval=settings.poll_interval)
        if projector else None,
        sweeper=sweeper,
        delivery=delivery,
    )  # fmt: skip
