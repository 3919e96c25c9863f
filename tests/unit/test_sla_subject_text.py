"""A subject's stored text, written directly (`projections.sla._subject_text`),
is `json.dumps(subject.to_data(), sort_keys=True)` exactly, and is what the
view writes while `Subject` has the fields it was written for."""

from __future__ import annotations

import json
import random
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fieldledger.domain.sla import Subject
from fieldledger.projections import sla

T0 = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
TEXTS = [None, "", "tech-1", "王师傅", 'quote " back \\ tab \t', "\ud800 lone", "\x00 nul", "é"]


def random_subject(rng: random.Random) -> Subject:
    def text() -> str | None:
        return rng.choice(TEXTS)

    def when() -> datetime:
        instant = T0 + timedelta(microseconds=rng.randint(-10**13, 10**13))
        # Held in UTC as decoded and folded; in another zone as a caller may give it.
        return instant if rng.random() < 0.8 else instant.astimezone(ZoneInfo("Asia/Shanghai"))

    def maybe() -> datetime | None:
        return when() if rng.random() < 0.5 else None

    names = ["response", "arrival", "resolution", "acknowledgement", "closure", "ünï"]
    work_order = rng.random() < 0.6
    return Subject(
        aggregate_id=str(rng.getrandbits(128)),
        kind="work_order" if work_order else "complaint",
        policy_version=f"{rng.getrandbits(64):x}",
        started_at=when(),
        version=rng.randint(1, 10**6),
        last_occurred_at=when(),
        priority=text() if work_order else None,
        zone=text(),
        appointment_start=maybe(),
        severity=None if work_order else text(),
        owner_id=text(),
        escalation_level=rng.randint(0, 3),
        escalated_targets=rng.sample(names, rng.randint(0, 3)),
        met={name: when() for name in rng.sample(names, rng.randint(0, 4))},
        pauses=[(when(), maybe()) for _ in range(rng.randint(0, 3))],
        closed_at=maybe(),
        closed_by=rng.choice([None, "cancelled", "resolved_remotely"]),
        accountable_id=text(),
        coordinator_id=text(),
        reminded_targets=rng.sample(names, rng.randint(0, 3)),
    )


def test_the_text_written_directly_is_the_plain_data_s_json() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        subject = random_subject(rng)
        expected = json.dumps(subject.to_data(), sort_keys=True)
        assert sla._subject_text(subject) == expected
        assert Subject.from_data(json.loads(sla._subject_text(subject))) == Subject.from_data(
            subject.to_data()
        )


def test_the_view_writes_it_while_the_subject_has_the_fields_it_knows() -> None:
    # A field added to `Subject` (and to `to_data`) makes the view write the
    # plain data's JSON again: teach `_subject_text` the field, then this list.
    assert {f.name for f in fields(Subject)} == sla._SUBJECT_FIELDS
    assert sla.subject_text is sla._subject_text
