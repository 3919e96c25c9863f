"""A policy the company adopted: recorded once per version, as an event.

Orders keep the policy in force when they were booked (`Booked.policy_version`).
For a read model rebuilt years later to recompute them with *that* policy, the
policy itself must be in the store: each version is an aggregate of its own
(id derived from the version), created by one `PolicyAdopted` event carrying the
policy as plain data. Saving it twice is an optimistic-concurrency conflict on
version 1, so two processes starting at once record it once.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from fieldledger.domain.facts import Context, LedgerAggregate
from fieldledger.domain.policy import Policy, PolicyError, policy_from_document

POLICY_NAMESPACE = UUID("0b7d4c2e-8a51-4d0f-a3c6-5e2f9b1d7a40")


def adopted_policy_id(version: str) -> UUID:
    return uuid5(POLICY_NAMESPACE, version)


class AdoptedPolicy(LedgerAggregate):
    kind = "policy"

    class Event(LedgerAggregate.Event):
        pass

    class PolicyAdopted(Event, Aggregate.Created):
        version: str
        name: str
        #: The policy as validated plain data (`Policy.model_dump(mode="json")`):
        #: exactly what its version is the digest of.
        document: dict[str, Any]

        def happen(self, p: AdoptedPolicy) -> None:
            p.policy_version = self.version
            p.document = self.document

    def __init__(self) -> None:
        super().__init__()
        self.state = "adopted"
        self.policy_version: str
        self.document: dict[str, Any]

    @classmethod
    def adopt(cls, ctx: Context, policy: Policy) -> AdoptedPolicy:
        document = policy.model_dump(mode="json")
        if policy_from_document(document).version != policy.version:  # pragma: no cover
            raise PolicyError(f"policy {policy.version} does not survive a round trip")
        return cls._begin(
            cls.PolicyAdopted,
            ctx,
            id=adopted_policy_id(policy.version),
            version=policy.version,
            name=policy.name,
            document=document,
        )

    @property
    def policy(self) -> Policy:
        return policy_from_document(self.document)
