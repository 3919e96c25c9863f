"""`OneWriteProtocol` (api/http_protocol.py), as `fieldledger serve` runs it:
over a real socket, every answer is the same bytes as uvicorn's own httptools
protocol writes (a plain answer, a stream, HEAD, 204, an app that fails after
its head, `Expect: 100-continue`, keep-alive, a command), and an answer sent in
one step is one write to the socket."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from fieldledger.api import cli
from fieldledger.api.app import create_app
from fieldledger.api.http_protocol import OneWriteProtocol
from fieldledger.application.settings import Settings
from fieldledger.application.tokens import TokenBook
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tests.e2e.scenarios import booking
from tests.servers import free_port

#: Each connection's writes, in order, as the protocol gave them to the socket.
CONNECTIONS: list[list[bytes]] = []
#: Set by the test once the head of /late has arrived: only then is its body sent.
HEAD_SEEN = threading.Event()


class Counted:
    """The connection's transport, recording every write."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []
        CONNECTIONS.append(self.writes)

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CountedOneWrite(OneWriteProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Counted(transport))  # type: ignore[arg-type]


class CountedTwoWrites(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Counted(transport))  # type: ignore[arg-type]


async def shapes(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A response of each shape uvicorn writes, by path."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    start = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"text/plain"), (b"x-got", b"%d" % len(body))]}  # fmt: skip
    if path == "/plain":
        start["headers"].append((b"content-length", b"5"))
        await send(start)
        await send({"type": "http.response.body", "body": b"hello"})
    elif path == "/stream":
        await send(start)
        for part in (b"one", b"", b"two"):
            await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/late":
        start["headers"].append((b"content-length", b"4"))
        await send(start)
        for _ in range(500):  # the head must reach the client with nothing after it
            if HEAD_SEEN.is_set():
                break
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"late"})
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/fails":
        start["headers"].append((b"content-length", b"5"))
        await send(start)
        raise RuntimeError("the app fails after its head")
    else:
        await send({**start, "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def serve() -> Iterator[Any]:
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any, protocol: type[Any]) -> int:
        port = free_port()
        options = cli.uvicorn_options()
        for key in ("workers", "timeout_worker_healthcheck"):
            options.pop(key)
        options.update(http=protocol, log_level="critical", timeout_graceful_shutdown=1)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        running.append((server, thread))
        return port

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=15)


def exchange(port: int, request: bytes, *, until_closed: bool = True) -> bytes:
    """Send `request`, read until the server closes (every request here asks it to)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
            if not until_closed:
                break
        return received


def undated(raw: bytes) -> bytes:
    return re.sub(rb"date: [^\r]*\r\n", b"", raw)


REQUESTS = [
    b"GET /plain HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    b"POST /plain HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
    b"GET /stream HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    b"HEAD /plain HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    b"GET /empty HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    b"GET /fails HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    b"GET /nowhere HTTP/1.0\r\n\r\n",
    # keep-alive, two requests pipelined, the second closing
    b"GET /plain HTTP/1.1\r\nhost: x\r\n\r\nGET /stream HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", REQUESTS)
def test_every_answer_is_the_same_bytes_as_uvicorns_own(serve: Any, request_bytes: bytes) -> None:
    one = exchange(serve(shapes, CountedOneWrite), request_bytes)
    two = exchange(serve(shapes, CountedTwoWrites), request_bytes)
    assert one.startswith(b"HTTP/1.")
    assert undated(one) == undated(two)


def test_a_plain_answer_is_one_write_where_uvicorn_writes_two(serve: Any) -> None:
    exchange(serve(shapes, CountedOneWrite), REQUESTS[0])
    (written,) = CONNECTIONS[-1]
    assert written.startswith(b"HTTP/1.1 200 OK\r\n") and written.endswith(b"\r\n\r\nhello")
    exchange(serve(shapes, CountedTwoWrites), REQUESTS[0])
    head, body = CONNECTIONS[-1]
    assert undated(head + body) == undated(written)


def test_a_head_whose_body_comes_later_is_not_held_back(serve: Any) -> None:
    HEAD_SEEN.clear()
    port = serve(shapes, CountedOneWrite)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /late HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        head = conn.recv(65536)  # before the body is sent: only the head can arrive
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
        HEAD_SEEN.set()
        rest = b""
        while chunk := conn.recv(65536):
            rest += chunk
    assert rest == b"late"


def test_expect_100_continue_is_answered_before_the_body_is_sent(serve: Any) -> None:
    port = serve(shapes, CountedOneWrite)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"POST /plain HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n"
                     b"expect: 100-continue\r\nconnection: close\r\n\r\n")  # fmt: skip
        assert conn.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.sendall(b"abc")
        rest = b""
        while chunk := conn.recv(65536):
            rest += chunk
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and b"x-got: 3\r\n" in rest
    assert rest.endswith(b"\r\n\r\nhello")


def test_a_command_is_answered_in_one_write(serve: Any, tmp_path: Any) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'fieldledger.db'}", background=False)
    app = create_app(settings)
    port = serve(app, CountedOneWrite)
    tokens: TokenBook = app.state.tokens
    token = tokens.issue("disp-1", "dispatcher", datetime.now(UTC))
    body = json.dumps(booking()).encode()
    request = (b"POST /work-orders HTTP/1.1\r\nhost: x\r\nauthorization: Bearer %s\r\n"
               b"content-type: application/json\r\ncontent-length: %d\r\n\r\n"
               % (token.encode(), len(body)) + body)  # fmt: skip
    mark = len(CONNECTIONS)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        before = 0
        for _ in range(2):  # the first teaches the gate the route; the second is the gate's
            conn.sendall(request)
            answer = conn.recv(65536)
            head, _, payload = answer.partition(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
            while len(payload) < length:
                payload += conn.recv(65536)
            assert head.startswith(b"HTTP/1.1 201 Created\r\n")
            assert json.loads(payload)["state"]
            (writes,) = CONNECTIONS[mark:]
            assert writes[before:] == [head + b"\r\n\r\n" + payload]
            before = len(writes)
