"""`CommandGate` (routes/commands.py): a plainly valid command of a known route
is answered in front of FastAPI's layers; every answer, success or refusal, is
the same, byte for byte, as through those layers (the app without the gate, each
request matched by the router), on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError
from fastapi.testclient import TestClient
from fieldledger.api.app import LedgerApp, create_app
from fieldledger.api.routes.commands import CommandGate, CommandShortcut
from fieldledger.application.settings import Settings
from fieldledger.application.tokens import token_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.e2e.conftest import Api
from tests.e2e.scenarios import COMPLAINT_PATH, WORK_ORDER_PATH, Desk, booking

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class Paths:
    """Sends a request through the gate, or around it (the router's path)."""

    def __init__(self, api: Api) -> None:
        app = api.app
        assert isinstance(app, LedgerApp) and isinstance(app.command_gate, CommandGate)
        self.api = api
        self.app = app
        self.gate = app.command_gate
        shortcut = app.router.middleware_stack
        assert isinstance(shortcut, CommandShortcut) and self.gate.shortcut is shortcut
        self.shortcut = shortcut
        #: The paths of the requests the gate handed on to the app's layers.
        self.handed_on: list[str] = []
        routed = self.gate.routed

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            self.handed_on.append(scope["path"])
            await routed(scope, receive, send)

        self.gate.routed = counted

    def send(self, gated: bool, path: str, token: str | None, body: Any = None,
             content: bytes | None = None, **headers: str) -> Answer:  # fmt: skip
        """POST `path` with the gate (its routes learned) or without it (and
        with the router matching the request, as before any shortcut)."""
        sent = {"Content-Type": "application/json"}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers)
        if content is None and body is not None:
            content = json.dumps(body).encode()
        learned = dict(self.shortcut.routes)
        if not gated:
            self.app.command_gate = None
            self.shortcut.routes.clear()
        try:
            r = self.api.client.post(path, content=content, headers=sent)
        finally:
            self.app.command_gate = self.gate
            self.shortcut.routes.update(learned)
        return r.status_code, list(r.headers.raw), r.content


def alike(gated: Answer, routed: Answer, swap: dict[str, str] | None = None) -> None:
    """Equal, byte for byte, once the routed answer's ids are swapped for the
    gated one's and X-Position (the store's position) is set aside."""
    status, headers, body = routed
    for theirs, ours in (swap or {}).items():
        body = body.replace(theirs.encode(), ours.encode())
        headers = [(k, v.replace(theirs.encode(), ours.encode())) for k, v in headers]

    def fixed(given: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return [(k, b"N" if k.lower() == b"x-position" and v.isdigit() else v) for k, v in given]

    assert (gated[0], fixed(gated[1]), gated[2]) == (status, fixed(headers), body)


@pytest.fixture
def paths(api: Api) -> Iterator[Paths]:
    yield Paths(api)


def test_every_command_of_a_lifecycle_is_answered_by_the_gate_alike(api: Api, paths: Paths) -> None:
    """Two work orders and two complaints walked side by side, one through the
    gate, one around it: the same answers (status, headers in order, body), and
    the gate answered every command once it knew the route."""
    desk = Desk(api)
    token = {role: desk[role].token for role in desk.actors}
    # The router learns each route from the first request of its kind: an
    # order walked through its lifecycle once teaches the gate every route.
    first = json.loads(paths.send(True, "/work-orders", token["dispatcher"], booking())[2])["id"]
    for _, role, command, body in WORK_ORDER_PATH:
        assert paths.send(True, f"/work-orders/{first}/{command}", token[role], body)[0] == 200
    assert "/work-orders/{id}/accept" in paths.shortcut.routes
    paths.handed_on.clear()
    gated = paths.send(True, "/work-orders", token["dispatcher"], booking())
    routed = paths.send(False, "/work-orders", token["dispatcher"], booking())
    ours, theirs = json.loads(gated[2])["id"], json.loads(routed[2])["id"]
    assert gated[0] == 201 and (b"location", f"/work-orders/{ours}".encode()) in gated[1]
    alike(gated, routed, {theirs: ours})
    for _, role, command, body in WORK_ORDER_PATH:
        gated = paths.send(True, f"/work-orders/{ours}/{command}", token[role], body)
        routed = paths.send(False, f"/work-orders/{theirs}/{command}", token[role], body)
        assert gated[0] == 200, gated
        alike(gated, routed, {theirs: ours})
    assert paths.handed_on == []  # every command answered by the gate
    # A complaint's commands too (lodging is not a gated route).
    ours, theirs = desk.lodge(), desk.lodge()
    for _, role, command, body in COMPLAINT_PATH:
        path = f"/complaints/{{}}/{command}"
        gated = paths.send(True, path.format(ours), token[role], body)
        routed = paths.send(False, path.format(theirs), token[role], body)
        assert gated[0] == 200, gated
        alike(gated, routed, {theirs: ours})
    ours, theirs = desk.lodge(), desk.lodge()
    paths.handed_on.clear()
    for _, role, command, body in COMPLAINT_PATH:
        path = f"/complaints/{{}}/{command}"
        alike(paths.send(True, path.format(ours), token[role], body),
              paths.send(False, path.format(theirs), token[role], body), {theirs: ours})  # fmt: skip
    assert paths.handed_on == []


def test_if_match_and_idempotency_keys_are_answered_alike(api: Api, paths: Paths) -> None:
    desk = Desk(api)
    disp = desk["dispatcher"].token
    ours, theirs = desk.work_order_in("booked"), desk.work_order_in("booked")
    learning = desk.book()  # an order to teach the gate the routes
    paths.send(True, f"/work-orders/{learning}/assign", disp, {"technician_id": "tech-1"})
    paths.send(True, f"/work-orders/{learning}/hold", disp, {"reason": "parts"})
    paths.handed_on.clear()
    body = {"technician_id": "tech-1"}
    # A key is the caller's, whatever the path: one for each order.
    headers = {"If-Match": '"1"', "Idempotency-Key": "k-1"}
    others = {"If-Match": '"1"', "Idempotency-Key": "k-2"}
    gated = paths.send(True, f"/work-orders/{ours}/assign", disp, body, **headers)
    routed = paths.send(False, f"/work-orders/{theirs}/assign", disp, body, **others)
    assert gated[0] == 200
    alike(gated, routed, {theirs: ours})
    # The replay, each to its own order: the stored answer, marked replayed.
    gated = paths.send(True, f"/work-orders/{ours}/assign", disp, body, **headers)
    routed = paths.send(False, f"/work-orders/{theirs}/assign", disp, body, **others)
    assert (b"idempotent-replayed", b"true") in gated[1]
    alike(gated, routed, {theirs: ours})
    # The same key and body, written differently: still the same request.
    gated = paths.send(True, f"/work-orders/{ours}/assign", disp,
                       content=b'{ "technician_id" : "tech-1" }', **headers)  # fmt: skip
    assert gated[0] == 200 and (b"idempotent-replayed", b"true") in gated[1]
    # A create with a key, and its replay (201 and Location both times).
    gated = paths.send(True, "/work-orders", disp, booking(), **{"Idempotency-Key": "b-1"})
    routed = paths.send(False, "/work-orders", disp, booking(), **{"Idempotency-Key": "b-2"})
    ours_b, theirs_b = json.loads(gated[2])["id"], json.loads(routed[2])["id"]
    alike(gated, routed, {theirs_b: ours_b})
    again = paths.send(True, "/work-orders", disp, booking(), **{"Idempotency-Key": "b-1"})
    assert again[0] == 201 and (b"idempotent-replayed", b"true") in again[1]
    assert again[2] == gated[2]
    assert paths.handed_on == []
    # If-Match "*" matches any version.
    gated = paths.send(True, f"/work-orders/{ours}/hold", disp, {"reason": "parts"},
                       **{"If-Match": "*"})  # fmt: skip
    routed = paths.send(False, f"/work-orders/{theirs}/hold", disp, {"reason": "parts"},
                        **{"If-Match": "*"})  # fmt: skip
    assert gated[0] == 200
    alike(gated, routed, {theirs: ours})
    assert paths.handed_on == []


def test_every_refusal_is_answered_alike_and_writes_nothing(
    api: Api, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each refusal the gate hands on (to the body guard, to the route's declared
    handler, or its command's exception to the app's handlers) is answered as
    around the gate, and nothing is written."""
    desk = Desk(api)
    token = {role: desk[role].token for role in desk.actors}
    disp, tech = token["dispatcher"], token["technician"]
    order = desk.work_order_in("assigned")  # to tech-1, not yet confirmed
    paths.send(True, f"/work-orders/{desk.work_order_in('assigned')}/depart", tech, {})
    paths.send(True, f"/work-orders/{desk.book()}/assign", disp, {"technician_id": "tech-1"})
    assert {"/work-orders", "/work-orders/{id}/depart", "/work-orders/{id}/assign"} <= set(
        paths.shortcut.routes)  # fmt: skip
    assert (
        paths.send(True, "/work-orders", disp, booking(), **{"Idempotency-Key": "used"})[0] == 201
    )
    unknown = "0b7c1e0e-1a1e-4c8e-9f6a-2b1d3c4e5f60"
    depart = f"/work-orders/{order}/depart"
    assign = f"/work-orders/{order}/assign"
    deep: Any = []
    for _ in range(40):
        deep = [deep]
    refusals: list[tuple[int, str, str | None, Any, bytes | None, dict[str, str]]] = [
        (401, depart, None, {}, None, {}),
        (401, depart, "nope", {}, None, {}),
        (401, depart, None, {}, None, {"Authorization": f"Basic {tech}"}),
        (403, depart, disp, {}, None, {}),
        (403, "/work-orders", tech, booking(), None, {}),
        (404, f"/work-orders/{unknown}/depart", tech, {}, None, {}),
        (404, "/work-orders/not-an-id/depart", tech, {}, None, {}),
        (409, depart, tech, {}, None, {}),
        (412, assign, disp, {"technician_id": "tech-2"}, None, {"If-Match": '"9"'}),
        (422, assign, disp, {"technician_id": "tech-2"}, None, {"If-Match": "abc"}),
        (422, "/work-orders", disp, booking(), None, {"If-Match": '"0"'}),
        (422, assign, disp, {"technician_id": 7}, None, {}),
        (422, assign, disp, None, None, {}),
        (422, assign, disp, None, b"[1, 2]", {}),
        (422, assign, disp, None, b"null", {}),
        (422, depart, tech, {"occurred_at": "soon"}, None, {}),
        (422, "/work-orders", disp, {**booking(), "zone": "moon"}, None, {}),
        (422, assign, disp, {"technician_id": "tech-2"}, None, {"Idempotency-Key": "a b"}),
        (422, "/work-orders", disp, {**booking(), "description": "another"}, None,
         {"Idempotency-Key": "used"}),
        (422, assign, disp, None, b"{not json", {}),
        (422, assign, disp, None, b'{"technician_id": "\xff"}', {}),
        (422, assign, disp, None, json.dumps(deep).encode(), {}),
        (422, assign, disp, None, b'{"technician_id": NaN}', {}),
        (415, assign, disp, None, b'{"technician_id": "tech-2"}', {"Content-Type": "text/plain"}),
        (415, assign, disp, None, b'{"technician_id": "tech-2"}',
         {"Content-Type": "application/json; charset=latin-1"}),
        (413, assign, disp, None, b'{"a": "' + b"x" * 70_000 + b'"}', {}),
    ]  # fmt: skip
    before = api.event_count()
    for status, path, who, body, content, headers in refusals:
        paths.handed_on.clear()
        gated = paths.send(True, path, who, body, content, **headers)
        assert gated[0] == status, (status, path, headers, gated)
        assert len(paths.handed_on) <= 1  # handed on once at most, never run twice
        alike(gated, paths.send(False, path, who, body, content, **headers))
    assert api.event_count() == before
    # A body without Content-Length (chunked): the gate leaves it to the body guard.
    for size, status in ((10, 200), (70_000, 413)):
        chunked = [b'{"technician_id": "tech-1"', b" " * size, b"}"]
        paths.handed_on.clear()
        fresh = desk.book()
        r = api.client.post(f"/work-orders/{fresh}/assign", content=iter(chunked),
                            headers={"Authorization": f"Bearer {disp}",
                                     "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == status and paths.handed_on == [f"/work-orders/{fresh}/assign"]
    before = api.event_count()
    # Every race lost (409 busy, with Retry-After), and an internal error (500).
    ledger = api.app.state.ledger

    def always_beaten(*args: Any, **kwargs: Any) -> Any:
        raise IntegrityError("another writer got there first")

    with monkeypatch.context() as patched:
        patched.setattr(ledger.committer, "write", always_beaten)
        body = {"technician_id": "tech-2"}
        gated = paths.send(True, assign, disp, body)
        assert gated[0] == 409 and (b"retry-after", b"1") in gated[1]
        alike(gated, paths.send(False, assign, disp, body))

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("connection to db at 10.0.0.7 password=hunter2 lost")

    with monkeypatch.context() as patched:
        patched.setattr(ledger, "execute", explode)
        gated = paths.send(True, assign, disp, {"technician_id": "tech-2"})
        assert gated[0] == 500 and b"hunter2" not in gated[2]
        alike(gated, paths.send(False, assign, disp, {"technician_id": "tech-2"}))
    assert api.event_count() == before


def test_a_revoked_token_is_refused_by_the_gate_at_once(api: Api, paths: Paths) -> None:
    desk = Desk(api)
    disp = desk["dispatcher"].token
    paths.send(True, "/work-orders", disp, booking())  # the route is learned
    paths.handed_on.clear()
    assert paths.send(True, "/work-orders", disp, booking())[0] == 201
    assert paths.handed_on == []
    tokens = api.app.state.tokens
    assert tokens.revoke(token_id(disp), datetime.now(UTC))
    gated = paths.send(True, "/work-orders", disp, booking())
    assert gated[0] == 401 and paths.handed_on == ["/work-orders"]
    alike(gated, paths.send(False, "/work-orders", disp, booking()))


def test_the_gate_stands_aside_under_a_root_path(api: Api, paths: Paths) -> None:
    """Under a root path (a proxy's prefix) every request goes through the app."""
    desk = Desk(api)
    disp = desk["dispatcher"].token
    paths.send(True, "/work-orders", disp, booking())
    paths.handed_on.clear()
    under = TestClient(api.app, root_path="/api")  # the app is running: no lifespan
    r = under.post("/api/work-orders", json=booking(), headers={"Authorization": f"Bearer {disp}"})
    assert r.status_code == 201 and paths.handed_on == ["/api/work-orders"]


def test_the_gate_stands_aside_for_middleware_added_to_the_app(settings: Settings) -> None:
    """Middleware given to the app after it was made (a header on every answer)
    sees every command: the gate, which does alike only the app's own layers,
    hands them all on."""
    app = create_app(settings)

    class Stamp:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            async def stamped(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message["headers"], (b"x-stamp", b"1")]
                await send(message)

            await self.app(scope, receive, stamped)

    app.add_middleware(Stamp)
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(client, app)
        paths = Paths(api)
        disp = Desk(api)["dispatcher"].token
        answers = [paths.send(True, "/work-orders", disp, booking()) for _ in range(3)]
    assert [status for status, _, _ in answers] == [201, 201, 201]
    assert all((b"x-stamp", b"1") in headers for _, headers, _ in answers)
    assert paths.handed_on == ["/work-orders"] * 3 and paths.gate.plain is False
