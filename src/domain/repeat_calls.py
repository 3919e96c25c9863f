"""Repeat calls: the same customer calling again about the same problem.

002 (不應讓客戶打第二次電話) and 003 (不允許對同一問題重複進行修復) want a
problem solved the first time. A booking names the earlier order it repeats
(`previous_work_order_id`), or the service finds it: an order of the same
customer and service type accepted or resolved remotely within the policy's
`procedure.repeat_call_days` before the booking. First-contact resolution
(004: 問題一次性解決率) counts a resolved order only when it was not rejected
and no repeat call was linked to it within that window.

"The same customer" is decided here and only here (`customer_key`): today the
digits of the phone number, digested so read models hold no phone numbers.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

from fieldledger.domain.policy import ProcedurePolicy

_NOT_DIGITS = re.compile(r"\D")


def customer_key(phone: str) -> str:
    """Who the customer is, for linking repeat calls: a digest of the phone's digits
    (`+86 138-0000-0000` and `13800000000` are different; formatting is not)."""
    digits = _NOT_DIGITS.sub("", phone) or phone.strip()
    return hashlib.sha256(f"phone:{digits}".encode()).hexdigest()[:32]


def repeat_window(policy: ProcedurePolicy) -> timedelta:
    return timedelta(days=policy.repeat_call_days)


def is_repeat_within(resolved_at: datetime, booked_at: datetime, policy: ProcedurePolicy) -> bool:
    """Whether a booking at `booked_at` lies within the window after a resolution."""
    return resolved_at <= booked_at <= resolved_at + repeat_window(policy)
