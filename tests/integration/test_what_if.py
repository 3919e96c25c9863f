"""What-if policy replay on a small history whose answers are worked out by hand.

Wednesday 2026-10-14 in Shanghai (a working day; business hours 08:30-17:30).
Three routine orders are booked at 09:00 and assigned at 09:30, 11:30 and 12:30
(the first `Assigned` meets the `response` target). The built-in policy gives a
routine response 4 business hours (due 13:00): all three met. A candidate with
2 hours (due 11:00) breaches the orders assigned at 11:30 and 12:30.
"""

from __future__ import annotations

from typing import Any

from fieldledger.domain.policy import builtin_policy_text, parse_policy
from fieldledger.projections.what_if import Question, what_if

from tests.integration.conftest import World, open_world
from tests.integration.field import DISPATCHER, utc
from tests.views import rows_of

BOOKED = utc("2026-10-14T01:00")  # 09:00 in Shanghai
NOW = utc("2026-10-14T05:00")  # 13:00: arrival (due 15:00) and resolution still open
DAY = (utc("2026-10-13T16:00"), utc("2026-10-14T16:00"))  # the local day


def candidate(old: str, new: str) -> Any:
    text = builtin_policy_text()
    assert text.count(old) == 1
    return parse_policy(text.replace(old, new))


def three_orders(world: World) -> None:
    f = world.field
    for assigned in ("01:30", "03:30", "04:30"):  # 09:30, 11:30, 12:30 local
        order = f.book(BOOKED, technician=None)
        f.wo(DISPATCHER, order, "assign", utc(f"2026-10-14T{assigned}"), technician_id="tech-1")


def tables_of(world: World) -> set[str]:
    db = world.projections.db
    with db.transaction(commit=False) as tx:
        if tx.dialect == "sqlite":
            rows = tx.query(  # not SQLite's own (ANALYZE adds sqlite_stat1)
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
            return {r["name"] for r in rows}
        rows = tx.query("SELECT tablename FROM pg_tables WHERE schemaname = ?", (db.schema,))
        return {r["tablename"] for r in rows}


def test_a_shorter_routine_response_breaches_two_of_three_orders(database_url: str) -> None:
    world, ledger = open_world(database_url, batch_size=3)
    try:
        three_orders(world)
        projections = world.projections
        projections.catch_up_all()
        live_before = rows_of(projections, "sla", 1)
        tables_before = tables_of(world)
        shorter = candidate(
            'routine = { clock = "business", hours = 4 }',
            'routine = { clock = "business", hours = 2 }',
        )
        seen: list[int] = []
        answer = what_if(
            projections, shorter, Question("sla", *DAY, group_by="target"), now=NOW,
            progress=lambda n, position: seen.append(position),
        )  # fmt: skip
        groups = {g["key"]: g for g in answer["groups"]}
        assert groups["response"] == {
            "key": "response",
            "actual": {"met": 3, "breached": 0, "open": 0, "rate": 100.0},
            "candidate": {"met": 1, "breached": 2, "open": 0, "rate": 33.33},
            "difference": {"met": -2, "breached": 2, "open": 0, "rate": -66.67},
        }
        # Arrival and resolution are the same under both policies: open at 13:00.
        for target in ("arrival", "resolution"):
            assert groups[target]["actual"] == groups[target]["candidate"]
            assert groups[target]["actual"]["open"] == 3
        assert answer["events_replayed"] == projections.head() == seen[-1]
        assert answer["candidate_policy_version"] == shorter.version
        assert answer["actual_policy_version"] != shorter.version
        # The live view is untouched and the scratch tables are gone.
        assert rows_of(projections, "sla", 1) == live_before
        assert tables_of(world) == tables_before
    finally:
        ledger.close()


def test_a_milder_lateness_band_changes_one_technicians_points(database_url: str) -> None:
    """tech-1 arrives 7 minutes late without notice: the built-in band (up to 10
    minutes) costs 5 points, the candidate's 2. tech-2 is praised (+5) and rated
    4 on all four ratings (a mean of 4: +2) under both: 107."""
    world, ledger = open_world(database_url)
    try:
        f = world.field
        appointment = utc("2026-10-15T02:00")  # 10:00 local
        late = f.book(BOOKED, appointment_start=appointment, technician="tech-1")
        f.arrive(late, utc("2026-10-15T02:07"))
        praised = f.book(BOOKED, technician="tech-2")
        f.arrive(praised, utc("2026-10-14T05:00"))
        f.finish(praised, utc("2026-10-14T06:00"))
        f.feedback(praised, utc("2026-10-14T07:00"), praise=True)
        world.projections.catch_up_all()
        milder = candidate(  # the appraisal's bands (not the shift lateness's below them)
            "lateness = [\n  { up_to_minutes = 5, points = -1 },\n"
            "  { up_to_minutes = 10, points = -5 },",
            "lateness = [\n  { up_to_minutes = 5, points = -1 },\n"
            "  { up_to_minutes = 10, points = -2 },",
        )
        october = (utc("2026-09-30T16:00"), utc("2026-10-31T16:00"))
        answer = what_if(world.projections, milder, Question("appraisal", *october), now=NOW)
        assert answer["groups"] == [
            {
                "key": "tech-1",
                "actual": {"points": 95, "rank": 2},
                "candidate": {"points": 98, "rank": 2},
                "difference": {"points": 3, "rank": 0},
            },
            {
                "key": "tech-2",
                "actual": {"points": 107, "rank": 1},
                "candidate": {"points": 107, "rank": 1},
                "difference": {"points": 0, "rank": 0},
            },
        ]
    finally:
        ledger.close()


def test_a_stricter_good_csat_halves_the_csat_share(database_url: str) -> None:
    """Two surveys, csat 4 and 5: good at 4 (built-in) both count, 100%; good
    only at 5, one of two, 50% — below the 85% target."""
    world, ledger = open_world(database_url)
    try:
        f = world.field
        for csat, hour in ((4, "05"), (5, "06")):
            order = f.book(BOOKED, technician="tech-1")
            f.arrive(order, utc(f"2026-10-14T{hour}:00"))
            f.finish(order, utc(f"2026-10-14T{hour}:10"))
            f.feedback(order, utc(f"2026-10-14T{hour}:20"), csat=csat)
        world.projections.catch_up_all()
        stricter = candidate("good_csat = 4 ", "good_csat = 5 ")
        answer = what_if(world.projections, stricter, Question("satisfaction", *DAY), now=NOW)
        (group,) = answer["groups"]
        assert group["key"] == "tech-1"
        assert (group["actual"]["csat_pct"], group["candidate"]["csat_pct"]) == (100.0, 50.0)
        assert group["difference"]["csat_pct"] == -50
        assert group["actual"]["below_threshold"] == []
        assert group["candidate"]["below_threshold"] == ["csat_pct"]
        assert group["difference"]["surveys_received"] == 0
    finally:
        ledger.close()
