"""Repeat calls: the same customer calling again about the same problem.

002 (不應讓客戶打第二次電話) and 003 (不允許對同一問題重複進行修復) want a
problem solved the first time. A booking names the earlier order it repeats
(`previous_work_order_id`), or the service finds it: an order of the same
customer and service type accepted or resolved remotely within the policy's
`procedure.repeat_call_days` before the booking. First-contact resolution
(004: 問題一次性解決率) counts a resolved order only when it was not rejected
and no repeat call was linked to it within that window.

"The same customer" is decided here and only here (`customer_key`): the
pseudonymous customer id the event store seals a customer's contact under
(docs/privacy.md: a keyed hash of the normalized phone number), or — for a
contact held in clear, as by a test's in-memory events — a digest of the phone's
digits. Read models hold no phone numbers either way.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

from fieldledger.domain.customers import customer_id_of
from fieldledger.domain.policy import ProcedurePolicy

_NOT_DIGITS = re.compile(r"\D")


def customer_key(contact: Any) -> str:
    """Who the customer of a booking's contact is, for linking repeat calls: the
    pseudonymous customer id of a sealed contact, else a digest of the phone's
    digits (formatting does not matter)."""
    sealed_for = customer_id_of(contact)
    if sealed_for is not None:
        return str(sealed_for)
    return phone_key(str(contact.phone))


def phone_key(phone: str) -> str:
    """The key of a contact held in clear: a digest of its phone's digits."""
    digits = _NOT_DIGITS.sub("", phone) or phone.strip()
    return hashlib.sha256(f"phone:{digits}".encode()).hexdigest()[:32]


def repeat_window(policy: ProcedurePolicy) -> timedelta:
    return timedelta(days=policy.repeat_call_days)


def is_repeat_within(resolved_at: datetime, booked_at: datetime, policy: ProcedurePolicy) -> bool:
    """Whether a booking at `booked_at` lies within the window after a resolution."""
    return resolved_at <= booked_at <= resolved_at + repeat_window(policy)
