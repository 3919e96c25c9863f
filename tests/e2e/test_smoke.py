"""The service answers over HTTP on both databases."""

from __future__ import annotations

from tests.e2e.conftest import Api


def test_health_needs_no_token(api: Api) -> None:
    assert api.client.get("/healthz").status_code == 200


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
