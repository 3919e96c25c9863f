"""Conduct recorded by supervisors: kinds and their point ranges (contract §6)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Context, Role
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.staff import StaffMember, staff_aggregate_id

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
CONDUCT = builtin_policy().conduct


def staff() -> StaffMember:
    return StaffMember.register(Context("sup-1", Role.SUPERVISOR, NOW), "tech-1")


def ctx() -> Context:
    return Context("sup-1", Role.SUPERVISOR, NOW)


def test_a_staff_members_record_is_addressed_by_their_staff_id() -> None:
    assert staff().id == staff_aggregate_id("tech-1")


@pytest.mark.parametrize(
    ("kind", "points"),
    [
        ("uniform", "-1"),
        ("grooming", "-0.5"),
        ("grooming", "-1.5"),
        ("posture", "-1"),
        ("sleeping", "-1"),
        ("sleeping", "-5"),
        ("personal_call", "-5"),
        ("chatting", "-1"),
        ("reading", "-1"),
        ("absence", "-10"),
    ],
)
def test_conduct_within_the_kinds_range_is_recorded(kind: str, points: str) -> None:
    s = staff()
    s.record_conduct(ctx(), CONDUCT, kind, Decimal(points), "seen on site")
    event = s.collect_events()[-1]
    assert isinstance(event, StaffMember.ConductRecorded)
    assert (event.kind, event.points, event.staff_id) == (kind, Decimal(points), "tech-1")


@pytest.mark.parametrize(
    ("kind", "points"),
    [
        ("uniform", "-2"),
        ("grooming", "-0.4"),
        ("grooming", "-1.6"),
        ("sleeping", "-6"),
        ("sleeping", "0"),
        ("personal_call", "-4"),
        ("absence", "-9"),
        ("reading", "1"),
    ],
)
def test_conduct_points_outside_the_kinds_range_are_refused(kind: str, points: str) -> None:
    s = staff()
    with pytest.raises(InvalidCommand, match="points"):
        s.record_conduct(ctx(), CONDUCT, kind, Decimal(points), "")
    assert s.conduct_records == 0


def test_a_fixed_point_kind_may_omit_its_points() -> None:
    s = staff()
    s.record_conduct(ctx(), CONDUCT, "personal_call", None, "on the phone for 20 min")
    assert s.collect_events()[-1].points == Decimal(-5)


def test_a_ranged_kind_must_say_its_points() -> None:
    with pytest.raises(InvalidCommand, match="say how many"):
        staff().record_conduct(ctx(), CONDUCT, "sleeping", None, "")


def test_an_unknown_conduct_kind_is_refused() -> None:
    with pytest.raises(InvalidCommand, match="unknown conduct kind 'smoking'"):
        staff().record_conduct(ctx(), CONDUCT, "smoking", Decimal(-1), "")


def test_a_conduct_record_stored_before_section_11_still_reads() -> None:
    """Records stored before contract §11.1 have no minutes, discipline nor extra
    points: they read as None (the extra points then default to the mildest)."""
    from dataclasses import replace

    from eventsourcing.persistence import (
        DatetimeAsISO,
        DecimalAsStr,
        JSONTranscoder,
        Mapper,
        UUIDAsHex,
    )

    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    mapper: Mapper[Any] = Mapper(transcoder=transcoder)
    s = staff()
    s.record_conduct(ctx(), CONDUCT, "chatting", None, "chatting at the desk")
    stored = mapper.to_stored_event(s.collect_events()[-1])
    state = transcoder.decode(stored.state)
    for new_field in ("minutes", "discipline", "extra_points"):
        del state[new_field]
    old = mapper.to_domain_event(replace(stored, state=transcoder.encode(state)))
    assert isinstance(old, StaffMember.ConductRecorded)
    assert (old.kind, old.points, old.minutes, old.discipline, old.extra_points) == (
        "chatting", Decimal(-1), None, None, None
    )
