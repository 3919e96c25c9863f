"""The conventions of contract §3 over HTTP, on both databases: tokens, errors as
problem+json with nothing written, If-Match, Idempotency-Key (also raced and
crashed), occurred_at, as_of, the 64 KiB limit, and no stack trace ever."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.persistence import IntegrityError
from fieldledger.application.event_store import LedgerSQLiteRecorder
from psycopg.sql import SQL

from tests.e2e.conftest import Api
from tests.e2e.scenarios import (
    PROBLEM_JSON,
    Desk,
    assert_problem,
    booking,
    field_errors,
    iso,
    lodging,
    utc,
)
from tests.procedure import ON_SITE_CHECKS

# -- tokens -------------------------------------------------------------------


def test_a_missing_token_is_401_and_writes_nothing(api: Api) -> None:
    desk = Desk(api)
    order = desk.book()
    before = api.event_count()
    for method, path, body in [
        ("POST", "/work-orders", booking()),
        ("POST", f"/work-orders/{order}/assign", {"technician_id": "tech-1"}),
        ("POST", "/staff/tech-1/conduct", {"kind": "uniform"}),
        ("GET", f"/work-orders/{order}", None),
        ("GET", f"/work-orders/{order}/history", None),
        ("GET", "/projections", None),
    ]:
        r = api.client.request(method, path, json=body)
        assert_problem(r, 401, "/problems/unauthenticated")
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert api.event_count() == before


def test_an_unknown_or_malformed_token_is_401(api: Api) -> None:
    desk = Desk(api)
    order = desk.book()
    before = api.event_count()
    for authorization in ["Bearer fl_not-a-token", "Bearer ", "Basic dXNlcjpwdw==",
                          desk["dispatcher"].token]:  # fmt: skip
        r = api.client.post(f"/work-orders/{order}/assign", json={"technician_id": "t"},
                            headers={"Authorization": authorization})  # fmt: skip
        assert_problem(r, 401, "/problems/unauthenticated")
    assert api.event_count() == before


def test_health_answers_without_a_token(api: Api) -> None:
    r = api.client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


# -- errors: problem+json, nothing written --------------------------------------


def test_unknown_ids_are_404(api: Api) -> None:
    desk = Desk(api)
    order = desk.book()
    complaint = desk.lodge()
    missing = "00000000-0000-4000-8000-000000000000"
    before = api.event_count()
    reader = desk["supervisor"]
    for path in [f"/work-orders/{missing}", f"/work-orders/{missing}/history",
                 f"/complaints/{missing}", f"/complaints/{missing}/history",
                 f"/work-orders/{complaint}", f"/complaints/{order}/history",
                 "/work-orders/not-a-uuid", "/complaints/42/history", "/no-such-thing"]:  # fmt: skip
        assert_problem(reader.get(path), 404, "/problems/not-found")
    r = reader.get(f"/work-orders/{missing}", as_of=iso(datetime.now(UTC)))
    assert_problem(r, 404, "/problems/not-found")
    for path, body in [
        (f"/work-orders/{missing}/assign", {"technician_id": "tech-1"}),
        (f"/work-orders/{complaint}/escalate", {"level": 1, "reason": "x"}),
        (f"/complaints/{order}/acknowledge", None),
        ("/work-orders/not-a-uuid/assign", {"technician_id": "tech-1"}),
    ]:
        assert_problem(desk["supervisor"].post(path, body), 404, "/problems/not-found")
    assert api.event_count() == before


def test_a_command_not_allowed_in_the_state_is_409_naming_state_and_command(api: Api) -> None:
    desk = Desk(api)
    order = desk.work_order_in("assigned")
    complaint = desk.complaint_in("lodged")
    before = api.event_count()
    r = desk["technician"].post(f"/work-orders/{order}/arrive")
    body = assert_problem(r, 409, "/problems/command-not-allowed")
    assert "arrive" in body["detail"] and "assigned" in body["detail"]
    assert (body["state"], body["command"]) == ("assigned", "arrive")
    r = desk["client_app"].post(f"/complaints/{complaint}/confirm", {"satisfied": True, "csat": 5})
    body = assert_problem(r, 409, "/problems/command-not-allowed")
    assert (body["state"], body["command"]) == ("lodged", "confirm")
    assert api.event_count() == before


INVALID_BOOKINGS: list[tuple[dict[str, Any], str]] = [
    ({k: v for k, v in booking().items() if k != "priority"}, "priority"),
    (booking(priority="whenever"), "priority"),
    (booking(zone="rural"), "zone"),
    (booking(surprise=1), "surprise"),
    (booking(customer={"name": "a", "phone": "1", "address": "x", "email": "e"}),
     "customer.email"),
    (booking(customer={"name": "a", "phone": "1"}), "customer.address"),
    (booking(customer={"name": "", "phone": "1", "address": "x"}), "customer.name"),
    (booking(customer={"name": "   ", "phone": "1", "address": "x"}), "customer.name"),
    (booking(description="x" * 4001), "description"),
    (booking(appointment={"start": "2030-01-01T10:00:00", "end": "2030-01-01T11:00:00+00:00"}),
     "appointment.start"),
    (booking(appointment={"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T09:00:00Z"}),
     "appointment.end"),
    (booking(occurred_at="yesterday"), "occurred_at"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field"), INVALID_BOOKINGS, ids=[f for _, f in INVALID_BOOKINGS])
def test_an_invalid_booking_is_422_naming_the_field(api: Api, body: Any, field: str) -> None:
    dispatcher = api.actor("disp-1", "dispatcher")
    before = api.event_count()
    # The schema cannot say that the end follows the start: a rule, not a shape.
    kind = "rule-violated" if field == "appointment.end" else "invalid-request"
    problem = assert_problem(dispatcher.post("/work-orders", body), 422, f"/problems/{kind}")
    assert field in field_errors(problem), problem
    assert field in problem["detail"]
    assert api.event_count() == before


def test_invalid_command_bodies_are_422_naming_the_field(api: Api) -> None:
    desk = Desk(api)
    on_site = desk.work_order_in("on_site")
    accepted = desk.work_order_in("accepted")
    resolved = desk.complaint_in("resolved")
    before = api.event_count()
    cases: list[tuple[str, str, Any, str]] = [
        ("technician", f"/work-orders/{on_site}/start",
         {"identity_shown": False, "risk_assessment": "ok", **ON_SITE_CHECKS}, "identity_shown"),
        ("technician", f"/work-orders/{on_site}/start", {"identity_shown": True, **ON_SITE_CHECKS},
         "risk_assessment"),
        ("technician", f"/work-orders/{on_site}/start", None, "body"),
        ("client_app", f"/work-orders/{accepted}/feedback",
         {"csat": 6, "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4}, "csat"),
        ("client_app", f"/work-orders/{accepted}/feedback",
         {"csat": 5, "attitude": 0, "skill": 4, "punctuality": 4, "promise": 4}, "attitude"),
        ("client_app", f"/work-orders/{accepted}/reject", {"reasons": []}, "reasons"),
        ("client_app", f"/work-orders/{accepted}/reject", {"reasons": [""]}, "reasons[0]"),
        ("supervisor", f"/work-orders/{accepted}/log-callback",
         {"outcome": "ok", "mood": "happy"}, "mood"),
        ("client_app", f"/complaints/{resolved}/confirm", {"satisfied": True}, "csat"),
        ("client_app", f"/complaints/{resolved}/confirm",
         {"satisfied": "perhaps", "csat": 3}, "satisfied"),
        ("supervisor", "/staff/tech-1/conduct", {"kind": "juggling"}, "kind"),
        ("supervisor", "/staff/tech-1/conduct", {"kind": "sleeping", "points": -9}, "points"),
        ("supervisor", "/staff/tech-1/conduct", {"kind": "sleeping"}, "points"),
        ("dispatcher", "/complaints",
         lodging(work_order_id="00000000-0000-4000-8000-000000000000"), "work_order_id"),
        ("dispatcher", "/complaints", lodging(severity="catastrophic"), "severity"),
    ]  # fmt: skip
    # What /openapi.json cannot say (a flag that must be true, the policy's conduct
    # kinds and their points, an id naming an existing record) is a rule.
    rules = {"identity_shown", "kind", "points", "work_order_id"}
    for role, path, body, field in cases:
        kind = "rule-violated" if field in rules else "invalid-request"
        problem = assert_problem(desk[role].post(path, body), 422, f"/problems/{kind}")
        assert field in field_errors(problem), (path, body, problem)
    assert api.event_count() == before


def test_a_malformed_json_body_is_422(api: Api) -> None:
    desk = Desk(api)
    before = api.event_count()
    for content, content_type, status, kind, field in [
        (b'{"customer": ', "application/json", 422, "malformed-json", "body"),
        (b'{"csat": NaN}', "application/json", 422, "malformed-json", "body"),
        (b"customer=me", "application/x-www-form-urlencoded", 415, "unsupported-media-type",
         "Content-Type"),
        (b"[1, 2]", "application/json", 422, "invalid-request", "body"),
    ]:  # fmt: skip
        r = api.client.post("/work-orders", content=content,
                            headers={**desk["dispatcher"].headers, "Content-Type": content_type})  # fmt: skip
        problem = assert_problem(r, status, f"/problems/{kind}")
        assert field_errors(problem) == {field}
    assert api.event_count() == before


def test_a_wrong_method_is_405_problem(api: Api) -> None:
    desk = Desk(api)
    order = desk.book()
    r = api.client.delete(f"/work-orders/{order}", headers=desk["dispatcher"].headers)
    assert_problem(r, 405, "/problems/method-not-allowed")


def test_an_internal_error_is_500_without_a_stack_trace(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = Desk(api)
    order = desk.book()
    ledger = api.app.state.ledger

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("connection to db at 10.0.0.7 password=hunter2 lost")

    monkeypatch.setattr(ledger, "execute", explode)
    monkeypatch.setattr(ledger, "history", explode)
    monkeypatch.setattr(ledger, "state_and_history", explode)
    before = api.event_count()
    for r in [desk["dispatcher"].post(f"/work-orders/{order}/assign", {"technician_id": "t"}),
              desk["dispatcher"].get(f"/work-orders/{order}/history")]:  # fmt: skip
        problem = assert_problem(r, 500, "/problems/internal-error")
        assert "hunter2" not in r.text and "RuntimeError" not in r.text
        assert set(problem) == {"type", "title", "status", "detail"}
    assert api.event_count() == before


def test_losing_every_race_is_409_busy(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = Desk(api)
    order = desk.book()
    ledger = api.app.state.ledger

    def always_beaten(*args: Any, **kwargs: Any) -> Any:
        raise IntegrityError("another writer got there first")

    # Every save refused by the store, as when every race is lost.
    monkeypatch.setattr(ledger.committer, "write", always_beaten)
    before = api.event_count()
    r = desk["dispatcher"].post(f"/work-orders/{order}/assign", {"technician_id": "tech-1"})
    assert_problem(r, 409, "/problems/busy")
    assert r.headers["Retry-After"] == "1"
    assert api.event_count() == before


def test_problem_types_are_documented_where_they_point(api: Api) -> None:
    for slug, status in [("not-found", 404), ("command-not-allowed", 409),
                         ("version-mismatch", 412), ("invalid-request", 422), ("busy", 409)]:  # fmt: skip
        r = api.client.get(f"/problems/{slug}")
        assert r.status_code == 200
        assert (r.json()["type"], r.json()["status"]) == (f"/problems/{slug}", status)
        assert r.json()["description"]
    assert_problem(api.client.get("/problems/no-such-problem"), 404, "/problems/not-found")


# -- If-Match -------------------------------------------------------------------


def test_if_match_a_stale_version_is_412_and_writes_nothing(api: Api) -> None:
    desk = Desk(api)
    order = desk.work_order_in("assigned")  # version 2
    got = desk["dispatcher"].get(f"/work-orders/{order}")
    assert got.headers["ETag"] == '"2"'
    before = api.event_count()
    r = desk["dispatcher"].post(f"/work-orders/{order}/hold", {"reason": "x"}, **{"If-Match": '"1"'})
    problem = assert_problem(r, 412, "/problems/version-mismatch")
    assert (problem["expected_version"], problem["current_version"]) == (1, 2)
    assert r.headers["ETag"] == '"2"'
    assert api.event_count() == before
    # The ETag as given succeeds, and answers the next one.
    r = desk["dispatcher"].post(f"/work-orders/{order}/hold", {"reason": "x"},
                                **{"If-Match": got.headers["ETag"]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"3"' and r.json()["version"] == 3
    r = desk["technician"].post(f"/work-orders/{order}/resume", **{"If-Match": r.headers["ETag"]})
    assert r.status_code == 200 and r.json()["state"] == "assigned"
    # `*` asks nothing of the version.
    r = desk["technician"].post(f"/work-orders/{order}/confirm", **{"If-Match": "*"})
    assert r.status_code == 200, r.text


def test_a_malformed_if_match_is_422(api: Api) -> None:
    desk = Desk(api)
    order = desk.work_order_in("booked")
    before = api.event_count()
    for value in ['"one"', "abc", '"1", "2"', '""']:
        r = desk["dispatcher"].post(f"/work-orders/{order}/assign", {"technician_id": "tech-1"},
                                    **{"If-Match": value})  # fmt: skip
        problem = assert_problem(r, 422, "/problems/invalid-request")
        assert field_errors(problem) == {"If-Match"}
    assert api.event_count() == before


def test_if_match_on_a_create_is_refused(api: Api) -> None:
    desk = Desk(api)
    before = api.event_count()
    for path, body in [("/work-orders", booking()), ("/complaints", lodging())]:
        r = desk["dispatcher"].post(path, body, **{"If-Match": '"0"'})
        problem = assert_problem(r, 422, "/problems/invalid-request")
        assert field_errors(problem) == {"If-Match"}
    assert api.event_count() == before


def test_if_match_on_conduct_follows_the_staff_record(api: Api) -> None:
    supervisor = api.actor("sup-1", "supervisor")
    r = supervisor.post("/staff/tech-9/conduct", {"kind": "uniform"}, **{"If-Match": '"0"'})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'  # opened, then the entry
    before = api.event_count()
    r = supervisor.post("/staff/tech-9/conduct", {"kind": "uniform"}, **{"If-Match": '"0"'})
    assert_problem(r, 412, "/problems/version-mismatch")
    assert api.event_count() == before
    r = supervisor.post("/staff/tech-9/conduct", {"kind": "posture"}, **{"If-Match": '"2"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"3"'


# -- Idempotency-Key --------------------------------------------------------------

SAME_ANSWER_HEADERS = ("content-type", "Location", "ETag", "X-Position")


def same_answer(first: Any, second: Any) -> None:
    assert second.status_code == first.status_code
    assert second.json() == first.json()
    for header in SAME_ANSWER_HEADERS:
        assert second.headers.get(header) == first.headers.get(header), header


def test_a_repeated_create_answers_the_same_and_writes_nothing(api: Api) -> None:
    desk = Desk(api)
    key = {"Idempotency-Key": "book-7f3a"}
    first = desk["client_app"].post("/work-orders", booking(), **key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    after_first = api.event_count()
    # The same body, written otherwise (key order, spacing): the same request.
    text = json.dumps(dict(reversed(list(booking().items()))), indent=2)
    repeat = api.client.post("/work-orders", content=text.encode(), headers={
        **desk["client_app"].headers, **key, "Content-Type": "application/json"})  # fmt: skip
    same_answer(first, repeat)
    assert repeat.headers["Location"] == f"/work-orders/{first.json()['id']}"
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert api.event_count() == after_first
    # A critical complaint writes two events; the replay's position is the last one's.
    lodged = desk["client_app"].post("/complaints", lodging(severity="critical"),
                                     **{"Idempotency-Key": "lodge-1"})  # fmt: skip
    again = desk["client_app"].post("/complaints", lodging(severity="critical"),
                                    **{"Idempotency-Key": "lodge-1"})  # fmt: skip
    same_answer(lodged, again)
    assert int(again.headers["X-Position"]) == api.head()


def test_a_repeated_command_answers_the_same_and_writes_nothing(api: Api) -> None:
    desk = Desk(api)
    order = desk.book()
    key = {"Idempotency-Key": "assign-1"}
    first = desk["dispatcher"].post(f"/work-orders/{order}/assign", {"technician_id": "tech-1"}, **key)
    assert first.status_code == 200
    desk.ok("technician", f"/work-orders/{order}/confirm")  # the order moves on
    before = api.event_count()
    repeat = desk["dispatcher"].post(f"/work-orders/{order}/assign", {"technician_id": "tech-1"}, **key)
    same_answer(first, repeat)
    assert repeat.json()["version"] == 2 and repeat.json()["state"] == "assigned"
    assert api.event_count() == before
    # The key belongs to the actor: another dispatcher's same key is another request.
    other = api.actor("disp-2", "dispatcher")
    r = other.post(f"/work-orders/{order}/assign", {"technician_id": "tech-1"}, **key)
    assert r.status_code == 200 and r.json()["version"] == 4
    assert "Idempotent-Replayed" not in r.headers


def test_no_body_null_and_an_empty_object_are_the_same_request(api: Api) -> None:
    desk = Desk(api)
    order = desk.work_order_in("assigned")
    key = {"Idempotency-Key": "confirm-once"}
    first = desk["technician"].post(f"/work-orders/{order}/confirm", **key)
    assert first.status_code == 200
    before = api.event_count()
    for body in ({}, None):
        same_answer(first, desk["technician"].post(f"/work-orders/{order}/confirm", body, **key))
    r = api.client.post(f"/work-orders/{order}/confirm", content=b"null", headers={
        **desk["technician"].headers, **key, "Content-Type": "application/json"})  # fmt: skip
    same_answer(first, r)
    assert api.event_count() == before


def test_a_key_reused_for_another_request_is_422_and_writes_nothing(api: Api) -> None:
    desk = Desk(api)
    order = desk.book()
    key = {"Idempotency-Key": "k-42"}
    assert desk["dispatcher"].post(f"/work-orders/{order}/assign",
                                   {"technician_id": "tech-1"}, **key).status_code == 200  # fmt: skip
    before = api.event_count()
    for path, body in [
        (f"/work-orders/{order}/assign", {"technician_id": "tech-2"}),  # another body
        (f"/work-orders/{order}/escalate", {"level": 1, "reason": "x"}),  # another command
        ("/work-orders", booking()),  # another path
    ]:
        problem = assert_problem(desk["dispatcher"].post(path, body, **key), 422,
                                 "/problems/idempotency-key-reused")  # fmt: skip
        assert field_errors(problem) == {"Idempotency-Key"}
    assert api.event_count() == before


def test_a_refused_command_does_not_use_up_its_key(api: Api) -> None:
    desk = Desk(api)
    order = desk.book()
    key = {"Idempotency-Key": "confirm-early"}
    assert_problem(desk["technician"].post(f"/work-orders/{order}/confirm", **key), 403)
    desk.ok("dispatcher", f"/work-orders/{order}/assign", {"technician_id": "tech-1"})
    r = desk["technician"].post(f"/work-orders/{order}/confirm", **key)
    assert r.status_code == 200 and r.json()["state"] == "confirmed"


def test_a_malformed_key_is_422(api: Api) -> None:
    desk = Desk(api)
    before = api.event_count()
    for key in ["   ", "k" * 201]:
        r = desk["dispatcher"].post("/work-orders", booking(), **{"Idempotency-Key": key})
        assert field_errors(assert_problem(r, 422)) == {"Idempotency-Key"}
    assert api.event_count() == before


@pytest.fixture
def racing_receipts(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The first two looks for a receipt both find none before either request saves."""
    recorder = api.app.state.ledger.ledger_recorder
    original = recorder.find_receipt
    barrier = threading.Barrier(2, timeout=30)
    looks = itertools.count()

    def racing(actor: str, key: str) -> Any:
        found = original(actor, key)
        if next(looks) < 2:
            barrier.wait()
        return found

    monkeypatch.setattr(recorder, "find_receipt", racing)
    yield


def send_twice_at_once(send: Any) -> list[Any]:
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda _: send(), range(2)))


@pytest.mark.usefixtures("racing_receipts")
def test_the_same_key_twice_at_once_creates_once(api: Api) -> None:
    client = api.actor("client-app-1", "client_app")
    before = api.event_count()
    first, second = send_twice_at_once(
        lambda: client.post("/work-orders", booking(), **{"Idempotency-Key": "race-book"})
    )
    assert api.event_count() == before + 1
    same_answer(first, second)
    assert first.status_code == 201
    assert {first.headers.get("Idempotent-Replayed"), second.headers.get("Idempotent-Replayed")} \
        == {None, "true"}  # fmt: skip


@pytest.mark.usefixtures("racing_receipts")
def test_the_same_key_twice_at_once_commands_once(api: Api) -> None:
    desk = Desk(api)
    order = desk.book()
    before = api.event_count()
    first, second = send_twice_at_once(lambda: desk["dispatcher"].post(
        f"/work-orders/{order}/escalate", {"level": 2, "reason": "angry"},
        **{"Idempotency-Key": "race-escalate"}))  # fmt: skip
    assert api.event_count() == before + 1
    same_answer(first, second)
    assert first.json()["version"] == 2
    events = desk["dispatcher"].get(f"/work-orders/{order}/history").json()["events"]
    assert [e["type"] for e in events] == ["Booked", "Escalated"]


def test_events_and_their_key_are_written_together_or_not_at_all(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure inside the write transaction, after the events and the receipt were
    both sent to the database, leaves neither behind."""
    desk = Desk(api)
    recorder = api.app.state.ledger.ledger_recorder
    if isinstance(recorder, LedgerSQLiteRecorder):
        step = "_insert_events"  # events, then the receipt
    elif recorder.one_trip:
        # One statement (the server-side save, which writes the events, their
        # hashes and then the receipt) that fails once the function has run.
        step = "save_statement"
    else:
        step = "_insert_stored_events"  # the receipt was sent first, then the events
    original = getattr(recorder, step)

    def then_fail(curs: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(curs, *args, **kwargs)
        curs.execute("SELECT * FROM no_such_table_crash_here")
        return result

    failing: Any = then_fail
    if step == "save_statement":
        failing = original + SQL(" WHERE p / (p - p) > 0")  # division by zero per row
    monkeypatch.setattr(recorder, step, failing)
    key = {"Idempotency-Key": "crash-1"}
    before = api.event_count()
    r = desk["client_app"].post("/work-orders", booking(), **key)
    assert_problem(r, 500, "/problems/internal-error")
    assert api.event_count() == before
    assert recorder.find_receipt("client-app-1", "crash-1") is None

    monkeypatch.setattr(recorder, step, original)
    r = desk["client_app"].post("/work-orders", booking(), **key)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert api.event_count() == before + 1
    assert recorder.find_receipt("client-app-1", "crash-1") is not None


# -- occurred_at --------------------------------------------------------------------


def test_occurred_at_rules(api: Api) -> None:
    desk = Desk(api)
    now = datetime.now(UTC)
    order = desk.book(occurred_at=iso(now - timedelta(hours=1)))
    before = api.event_count()
    assign = f"/work-orders/{order}/assign"
    for occurred_at, why, kind in [
        # more than 2 min ahead of the server
        (iso(now + timedelta(minutes=3)), "2 minutes", "rule-violated"),
        (iso(now - timedelta(hours=2)), "previous event", "rule-violated"),  # before the booking
        ((now - timedelta(minutes=5)).replace(tzinfo=None).isoformat(), "timezone",
         "invalid-request"),  # naive
    ]:  # fmt: skip
        r = desk["dispatcher"].post(assign, {"technician_id": "tech-1", "occurred_at": occurred_at})
        problem = assert_problem(r, 422, f"/problems/{kind}")
        assert field_errors(problem) == {"occurred_at"}
        assert why in problem["detail"], problem["detail"]
    r = desk["dispatcher"].post("/work-orders", booking(
        occurred_at=iso(now + timedelta(minutes=10))))  # fmt: skip
    assert field_errors(assert_problem(r, 422)) == {"occurred_at"}
    assert api.event_count() == before

    # Within the 2 minutes of clock skew, and in any offset: stored and shown in UTC.
    shanghai = (now + timedelta(minutes=1)).astimezone(ZoneInfo("Asia/Shanghai"))
    r = desk["dispatcher"].post(assign, {"technician_id": "tech-1", "occurred_at": iso(shanghai)})
    assert r.status_code == 200, r.text
    last = desk["dispatcher"].get(f"/work-orders/{order}/history").json()["events"][-1]
    assert last["occurred_at"].endswith("Z") or last["occurred_at"].endswith("+00:00")
    assert utc(last["occurred_at"]) == shanghai
    # Without occurred_at it happened when recorded, but never before the previous
    # event, which may lie up to the 2 minutes of skew ahead of the server's clock.
    r = desk["technician"].post(f"/work-orders/{order}/confirm")
    assert r.status_code == 200, r.text
    last = desk["dispatcher"].get(f"/work-orders/{order}/history").json()["events"][-1]
    assert utc(last["occurred_at"]) == shanghai > utc(last["recorded_at"])
    other = desk.book()
    r = desk["dispatcher"].post(f"/work-orders/{other}/assign", {"technician_id": "tech-1"})
    assert r.status_code == 200, r.text
    last = desk["dispatcher"].get(f"/work-orders/{other}/history").json()["events"][-1]
    assert last["occurred_at"] == last["recorded_at"]


# -- as_of ------------------------------------------------------------------------


def test_as_of_rebuilds_the_state_at_an_instant(api: Api) -> None:
    desk = Desk(api)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    t1, t2 = t0 + timedelta(hours=1), t0 + timedelta(hours=2)
    order = desk.book(occurred_at=iso(t0))
    desk.ok("dispatcher", f"/work-orders/{order}/assign",
            {"technician_id": "tech-1", "occurred_at": iso(t1)})  # fmt: skip
    desk.ok("technician", f"/work-orders/{order}/confirm", {"occurred_at": iso(t2)})
    reader = desk["analyst"]
    path = f"/work-orders/{order}"

    between = reader.get(path, as_of=iso(t1 + timedelta(minutes=30)))
    assert between.status_code == 200, between.text
    assert (between.json()["state"], between.json()["version"]) == ("assigned", 2)
    assert between.headers["ETag"] == '"2"'
    assert utc(between.json()["as_of"]) == t1 + timedelta(minutes=30)
    assert between.json()["technician_id"] == "tech-1"

    at_t1 = reader.get(path, as_of=iso(t1))  # an event at T is part of the state at T
    assert (at_t1.json()["state"], at_t1.json()["version"]) == ("assigned", 2)
    first = reader.get(path, as_of=iso(t0 + timedelta(seconds=1)))
    assert (first.json()["state"], first.json()["version"], first.json()["technician_id"]) \
        == ("booked", 1, None)  # fmt: skip
    later = reader.get(path, as_of=iso(datetime.now(UTC) + timedelta(days=1)))
    assert (later.json()["state"], later.json()["version"]) == ("confirmed", 3)
    assert reader.get(path).json()["as_of"] is None

    problem = assert_problem(reader.get(path, as_of=iso(t0 - timedelta(seconds=1))), 404,
                             "/problems/not-found")  # fmt: skip
    assert "did not exist yet" in problem["detail"]
    naive = reader.get(path, as_of=t1.replace(tzinfo=None).isoformat())
    assert field_errors(assert_problem(naive, 422)) == {"as_of"}
    assert field_errors(assert_problem(reader.get(path, as_of="tuesday"), 422)) == {"as_of"}


def test_as_of_on_a_complaint(api: Api) -> None:
    desk = Desk(api)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    complaint = desk.lodge(occurred_at=iso(t0))
    desk.ok("dispatcher", f"/complaints/{complaint}/acknowledge",
            {"occurred_at": iso(t0 + timedelta(hours=1))})  # fmt: skip
    r = desk["analyst"].get(f"/complaints/{complaint}", as_of=iso(t0 + timedelta(minutes=5)))
    assert (r.json()["state"], r.json()["version"]) == ("lodged", 1)
    assert_problem(desk["analyst"].get(f"/complaints/{complaint}",
                                       as_of=iso(t0 - timedelta(days=1))), 404)  # fmt: skip


# -- the 64 KiB limit -----------------------------------------------------------------

LIMIT = 64 * 1024


def padded_booking(size: int) -> bytes:
    """A booking body of exactly `size` bytes (padding in an unknown field)."""
    skeleton = json.dumps({**booking(), "padding": ""}).encode()
    body = json.dumps({**booking(), "padding": "x" * (size - len(skeleton))}).encode()
    assert len(body) == size
    return body


def test_a_body_over_64_kib_is_413_with_or_without_content_length(api: Api) -> None:
    desk = Desk(api)
    headers = {**desk["dispatcher"].headers, "Content-Type": "application/json"}
    before = api.event_count()

    at_limit = api.client.post("/work-orders", content=padded_booking(LIMIT), headers=headers)
    assert field_errors(assert_problem(at_limit, 422)) == {"padding"}  # read, then refused

    over = padded_booking(LIMIT + 1)
    r = api.client.post("/work-orders", content=over, headers=headers)
    assert r.request.headers["Content-Length"] == str(LIMIT + 1)
    assert_problem(r, 413, "/problems/body-too-large")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(over), 4096):
            yield over[start : start + 4096]

    r = api.client.post("/work-orders", content=chunks(), headers=headers)
    assert "Content-Length" not in r.request.headers
    assert r.request.headers["Transfer-Encoding"] == "chunked"
    assert_problem(r, 413, "/problems/body-too-large")
    assert api.event_count() == before


def test_the_64_kib_limit_holds_for_every_method(api: Api) -> None:
    desk = Desk(api)
    order = desk.book()
    big = b"x" * (LIMIT + 1)
    for method in ("GET", "PUT", "PATCH", "DELETE", "POST"):
        r = api.client.request(method, f"/work-orders/{order}", content=big,
                               headers=desk["dispatcher"].headers)  # fmt: skip
        assert_problem(r, 413, "/problems/body-too-large")
    r = api.client.request("GET", "/healthz", content=iter([big]))
    assert_problem(r, 413, "/problems/body-too-large")


def test_problem_answers_are_never_plain_json(api: Api) -> None:
    """The content type of an error is problem+json, not application/json."""
    r = api.client.get("/work-orders/00000000-0000-4000-8000-000000000000")
    assert r.headers["content-type"] == PROBLEM_JSON


def test_what_if_takes_a_policy_document_up_to_4_mib(api: Api) -> None:
    """A candidate policy may be far larger than 64 KiB of JSON; past 4 MiB: 413."""
    desk = Desk(api)
    headers = {**desk["supervisor"].headers, "Content-Type": "application/json"}
    policy = "# " + "x" * 150_000  # a comment: parses to an empty policy, refused as such
    body = json.dumps({"policy": policy, "from": "2026-10-01", "to": "2026-10-31"}).encode()
    assert len(body) > LIMIT
    r = api.client.post("/what-if", content=body, headers=headers)
    assert r.status_code != 413
    assert_problem(r, 422)
    too_big = json.dumps({"policy": "x" * (4 * 1024 * 1024)}).encode()
    r = api.client.post("/what-if", content=too_big, headers=headers)
    assert_problem(r, 413, "/problems/body-too-large")


# -- the command routes' one function ---------------------------------------------


def recorded_reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each command request was read by `read_inputs` alone (True) or
    handed to FastAPI's handler of its declaration (False), in order."""
    from fieldledger.api.routes import commands

    read: list[bool] = []
    original = commands.read_inputs

    async def recording(request: Any, command: Any) -> Any:
        inputs = await original(request, command)
        read.append(inputs is not None)
        return inputs

    monkeypatch.setattr(commands, "read_inputs", recording)
    return read


def test_a_plain_command_is_read_in_one_function_and_any_other_is_answered_as_declared(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid command is served by `read_inputs` (no FastAPI dependency); an
    invalid one is handed to FastAPI's handler of the route's declaration, and
    the two answer a valid command alike."""
    from fieldledger.api.routes import commands

    read = recorded_reads(monkeypatch)
    desk = Desk(api)
    fast = desk.work_order_in("booked")
    read.clear()  # the booking is read in one function too (the next test)
    r = desk["dispatcher"].post(f"/work-orders/{fast}/assign", {"technician_id": "tech-1"},
                                **{"If-Match": '"1"', "Idempotency-Key": "k-1"})  # fmt: skip
    assert r.status_code == 200 and read == [True]
    fast_answer = (r.json()["version"], r.json()["state"], r.headers["ETag"])
    assert "X-Position" in r.headers
    replay = desk["dispatcher"].post(f"/work-orders/{fast}/assign", {"technician_id": "tech-1"},
                                     **{"If-Match": '"1"', "Idempotency-Key": "k-1"})  # fmt: skip
    assert replay.json() == r.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert read == [True, True]
    # Each of these is not plainly valid: FastAPI's handler answers it.
    before = api.event_count()
    for path, body, headers, status in [
        ("assign", {"technician_id": "tech-1"}, {"If-Match": "abc"}, 422),
        ("assign", {"technician_id": 7}, {}, 422),
        ("assign", None, {}, 422),
        ("assign", {"technician_id": "tech-1"}, {"Authorization": "Bearer nope"}, 401),
        ("assign", {"technician_id": "tech-1"}, {"Idempotency-Key": "a b"}, 422),
        ("feedback", {"csat": 5}, {}, 403),
    ]:
        r = desk["dispatcher"].post(f"/work-orders/{fast}/{path}", body, **headers)
        assert r.status_code == status, (path, headers, r.text)
        assert read[-1] is False
    r = desk["dispatcher"].post("/work-orders/not-an-id/assign", {"technician_id": "tech-1"})
    assert r.status_code == 404 and read[-1] is False  # no such record, as declared
    assert api.event_count() == before
    # The declared handler gives a valid command the same answer.
    declared = desk.work_order_in("booked")

    async def never(request: Any, command: Any) -> Any:
        return None

    monkeypatch.setattr(commands, "read_inputs", never)
    r = desk["dispatcher"].post(f"/work-orders/{declared}/assign", {"technician_id": "tech-1"},
                                **{"If-Match": '"1"', "Idempotency-Key": "k-2"})  # fmt: skip
    assert r.status_code == 200
    assert (r.json()["version"], r.json()["state"], r.headers["ETag"]) == fast_answer
    assert "X-Position" in r.headers and r.headers["content-type"] == "application/json"


def test_a_plain_booking_is_read_in_one_function_and_any_other_is_answered_as_declared(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Booking, a create, is served by `read_inputs` as the commands are: a valid
    booking in one function, any other by FastAPI's handler of its declaration;
    the two answer a valid booking alike (201, Location, ETag, body)."""
    from fieldledger.api.routes import commands

    read = recorded_reads(monkeypatch)
    desk = Desk(api)
    fast = desk["dispatcher"].post("/work-orders", booking(), **{"Idempotency-Key": "b-1"})
    assert fast.status_code == 201 and read == [True]
    replay = desk["dispatcher"].post("/work-orders", booking(), **{"Idempotency-Key": "b-1"})
    assert replay.json() == fast.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["Location"] == fast.headers["Location"]
    assert read == [True, True]
    # Each of these is not plainly valid: FastAPI's handler answers it.
    before = api.event_count()
    for who, body, headers, status in [
        ("dispatcher", booking(), {"If-Match": '"0"'}, 422),
        ("dispatcher", booking(), {"If-Match": "abc"}, 422),
        ("dispatcher", {**booking(), "priority": "someday"}, {}, 422),
        ("dispatcher", None, {}, 422),
        ("dispatcher", booking(), {"Authorization": "Bearer nope"}, 401),
        ("dispatcher", booking(), {"Idempotency-Key": "a b"}, 422),
        ("technician", booking(), {}, 403),
    ]:
        r = desk[who].post("/work-orders", body, **headers)
        assert r.status_code == status, (body, headers, r.text)
        assert r.headers["content-type"] == PROBLEM_JSON
        assert read[-1] is False
    assert api.event_count() == before

    # The declared handler gives a valid booking the same answer, headers and all.
    async def never(request: Any, command: Any) -> Any:
        return None

    monkeypatch.setattr(commands, "read_inputs", never)
    declared = desk["dispatcher"].post("/work-orders", booking(), **{"Idempotency-Key": "b-2"})
    assert declared.status_code == 201
    assert declared.json().keys() == fast.json().keys()
    assert (declared.json()["version"], declared.json()["state"]) == (
        fast.json()["version"], fast.json()["state"])  # fmt: skip
    assert declared.headers["Location"] == f"/work-orders/{declared.json()['id']}"
    assert fast.headers["Location"] == f"/work-orders/{fast.json()['id']}"
    for name in ("content-type", "content-length", "ETag"):
        assert declared.headers[name] == fast.headers[name], name
    assert sorted(declared.headers.keys()) == sorted(fast.headers.keys())
    assert "X-Position" in declared.headers and "X-Position" in fast.headers
    # Byte for byte, but for the new order's id.
    fast_id, declared_id = fast.json()["id"], declared.json()["id"]
    assert declared.content == fast.content.replace(fast_id.encode(), declared_id.encode())
    # The declared replay answers as the fast one does.
    again = desk["dispatcher"].post("/work-orders", booking(), **{"Idempotency-Key": "b-1"})
    assert again.json() == fast.json() and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == fast.headers["Location"]


def test_a_command_is_answered_alike_before_and_after_the_shortcut_knows_its_route(
    api: Api,
) -> None:
    """`CommandShortcut` sends a command straight to its route once the router
    has sent one there: refusals (raised by the ledger, or found by FastAPI's
    declared handler with the body handed on) answer as through the router."""
    from fieldledger.api.routes.commands import CommandShortcut

    shortcut = api.app.router.middleware_stack
    assert isinstance(shortcut, CommandShortcut)
    desk = Desk(api)
    order = desk.work_order_in("assigned")  # to tech-1, not yet confirmed
    assert "/work-orders" in shortcut.routes  # the booking's route, learned
    unknown = "0b7c1e0e-1a1e-4c8e-9f6a-2b1d3c4e5f60"
    requests: list[tuple[str, str, Any, dict[str, str]]] = [
        ("technician", f"/work-orders/{order}/depart", {}, {}),  # not in this state: 409
        ("technician", f"/work-orders/{unknown}/depart", {}, {}),  # no such order: 404
        ("technician", f"/work-orders/{order}/depart", {"occurred_at": "soon"}, {}),  # 422
        ("technician", f"/work-orders/{order}/depart", {}, {"If-Match": '"9"'}),  # 412
        ("dispatcher", f"/work-orders/{order}/depart", {}, {}),  # a role that may not: 403
        ("technician", "/work-orders", booking(), {}),  # 403, on a create
        ("dispatcher", "/work-orders", {**booking(), "zone": "moon"}, {}),  # 422
    ]
    before = api.event_count()

    def answers(known: bool) -> list[tuple[int, str, Any]]:
        found = []
        for who, path, body, headers in requests:
            if not known:  # the router matches it (and the shortcut learns its route)
                shortcut.routes.clear()
            r = desk[who].post(path, body, **headers)
            found.append((r.status_code, r.headers["content-type"], r.json()))
            assert ("/work-orders/{id}/depart" in shortcut.routes) is (
                known or path != "/work-orders")  # fmt: skip
        return found

    through_router = answers(known=False)
    assert answers(known=True) == through_router
    assert [status for status, _, _ in through_router] == [409, 404, 422, 412, 403, 403, 422]
    assert all(kind == PROBLEM_JSON for _, kind, _ in through_router)
    assert api.event_count() == before
