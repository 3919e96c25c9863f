"""The service answers over HTTP on both databases."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fieldledger.api.routes.health import HealthProbes

from tests.e2e.conftest import Api


def test_health_needs_no_token(api: Api) -> None:
    assert api.client.get("/healthz").status_code == 200


def test_a_plain_probe_is_answered_before_the_app_with_the_routes_answer(api: Api) -> None:
    routed = api.client.get("/healthz")  # the route reads the read models' rows
    passed_on: list[str] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        passed_on.append(scope["path"])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    probes = HealthProbes(app)
    scope = {"type": "http", "method": "GET", "path": "/healthz", "headers": [], "app": api.app}
    asyncio.run(probes(scope, receive, send))
    assert passed_on == []
    assert sent[0]["status"] == 200 and json.loads(sent[1]["body"]) == routed.json()
    # A probe with a body, or another method, is the app's to judge.
    asyncio.run(probes({**scope, "headers": [(b"content-length", b"3")]}, receive, send))
    asyncio.run(probes({**scope, "method": "HEAD"}, receive, send))
    assert passed_on == ["/healthz", "/healthz"]


def test_booking_answers_201_with_location_and_etag(api: Api) -> None:
    dispatcher = api.actor("disp-1", "dispatcher")
    r = dispatcher.post("/work-orders", {
        "customer": {"name": "张三", "phone": "13800000000", "address": "北京"},
        "service_type": "repair", "priority": "routine", "zone": "urban",
        "channel": "phone", "billing": "paid", "description": "漏水",
    })  # fmt: skip
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["Location"] == f"/work-orders/{body['id']}"
    assert r.headers["ETag"] == '"1"'
    assert (body["version"], body["state"]) == (1, "booked")
    got = dispatcher.get(f"/work-orders/{body['id']}")
    assert got.json()["customer"]["name"] == "张三"
