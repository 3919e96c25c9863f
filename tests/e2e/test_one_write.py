"""`OneWriteProtocol` (api/http_protocol.py), as `fieldledger serve` runs it:
over real sockets, every exchange is the same bytes as with uvicorn's own
httptools protocol (plain answers, streams, big answers, HEAD, 204, uvicorn's
500, an app failing after its head, `Expect: 100-continue`, HTTP/1.0,
keep-alive, pipelining, a malformed request, a client going away; the app's
commands, reads and /healthz), and an answer sent in one turn of the loop is
one write to the socket where uvicorn's protocol makes two."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
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

#: Each connection's socket writes, in order, by the port it was served on.
WRITES: dict[int, list[list[bytes]]] = {}
#: Set by the test once the head of /late has arrived: only then is its body sent.
HEAD_SEEN = threading.Event()
#: What /waits saw when its client went away, by the protocol's name.
SAW: list[str] = []
#: The ports whose connections were told to pause writing, once per pause.
PAUSED: list[int] = []
BIG = bytes(range(256)) * 4096  # 1 MiB: more than a socket takes at once


class Counted:
    """The connection's socket transport, recording every write."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self.transport = transport
        self.writes = writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def counted(protocol: type[HttpToolsProtocol]) -> type[HttpToolsProtocol]:
    class CountedProtocol(protocol):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            writes: list[bytes] = []
            WRITES.setdefault(transport.get_extra_info("sockname")[1], []).append(writes)
            super().connection_made(Counted(transport, writes))
            self.port = transport.get_extra_info("sockname")[1]

        def pause_writing(self) -> None:
            PAUSED.append(self.port)
            super().pause_writing()

    return CountedProtocol


async def shapes(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An answer of each shape uvicorn writes, by path."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/waits":  # answers nothing until its client has gone
        while (await receive())["type"] != "http.disconnect":
            pass
        SAW.append("disconnect")
        return
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
    elif path == "/big":
        start["headers"].append((b"content-length", b"%d" % (len(BIG) * 4)))
        await send(start)
        await send({"type": "http.response.body", "body": BIG * 4})
    elif path == "/stream":
        await send(start)
        for part in (b"one", b"", b"two", BIG, BIG, BIG, BIG, BIG):
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
    elif path == "/unchanged":
        await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", b'"1"')]})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/fails":
        start["headers"].append((b"content-length", b"5"))
        await send(start)
        raise RuntimeError("the app fails after its head")
    elif path == "/raises":
        raise RuntimeError("the app fails before its head: uvicorn answers 500")
    else:
        await send({**start, "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def serve() -> Iterator[Any]:
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any, protocol: type[HttpToolsProtocol]) -> int:
        # The socket listens before the server runs (no other process can take
        # the port meanwhile); the server is waited for until its app has
        # started (its lifespan sets the app's state), or its thread ended.
        listening = socket.create_server(("127.0.0.1", 0))
        port = int(listening.getsockname()[1])
        options = cli.uvicorn_options()
        for key in ("workers", "timeout_worker_healthcheck"):
            options.pop(key)
        options.update(http=counted(protocol), log_level="critical", timeout_graceful_shutdown=1)
        server = uvicorn.Server(uvicorn.Config(app, **options))
        thread = threading.Thread(target=server.run, args=([listening],), daemon=True)
        thread.start()
        while not server.started:
            thread.join(0.02)
            assert thread.is_alive(), "the server stopped before it started"
        running.append((server, thread))
        return port

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=15)


def exchange(port: int, request: bytes) -> bytes:
    """Send `request`, read until the server closes (every request here asks it to)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        return received


def undated(raw: bytes) -> bytes:
    return re.sub(rb"date: [^\r]*\r\n", b"", raw)


def get(path: bytes, *, close: bool = False, method: bytes = b"GET") -> bytes:
    return (
        method
        + b" "
        + path
        + b" HTTP/1.1\r\nhost: x\r\n"
        + (b"connection: close\r\n\r\n" if close else b"\r\n")
    )


REQUESTS = {
    "plain": get(b"/plain", close=True),
    "post": b"POST /plain HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
    "big": get(b"/big", close=True),
    "stream": get(b"/stream", close=True),
    "head": get(b"/plain", close=True, method=b"HEAD"),
    "head of a stream": get(b"/stream", close=True, method=b"HEAD"),
    "204": get(b"/empty", close=True),
    "304": get(b"/unchanged", close=True),
    "fails after its head": get(b"/fails", close=True),
    "uvicorn's 500": get(b"/raises", close=True),
    "HTTP/1.0": b"GET /nowhere HTTP/1.0\r\n\r\n",
    "malformed": b"GET /plain HTTP/1.1\r\nhost x\r\n\r\n",
    "keep-alive, one after the other": b"".join(
        [
            get(b"/plain"),
            get(b"/empty"),
            get(b"/plain", method=b"HEAD"),
            get(b"/unchanged"),
            get(b"/stream"),
            get(b"/big"),
            get(b"/nowhere"),
            get(b"/plain", close=True),
        ]
    ),
    "keep-alive, then uvicorn's 500": get(b"/plain") + get(b"/raises"),
    "pipelined, then malformed": get(b"/plain") + b"GARBAGE\r\n\r\n",
    "100-continue": b"POST /plain HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n"
    b"expect: 100-continue\r\nconnection: close\r\n\r\nabc",
}


@pytest.mark.parametrize("request_bytes", REQUESTS.values(), ids=REQUESTS.keys())
def test_every_exchange_is_the_same_bytes_as_with_uvicorns_own(
    serve: Any, request_bytes: bytes
) -> None:
    one = exchange(serve(shapes, OneWriteProtocol), request_bytes)
    two = exchange(serve(shapes, HttpToolsProtocol), request_bytes)
    assert one.startswith(b"HTTP/1.")
    assert undated(one) == undated(two)


def test_keep_alive_answers_are_one_write_each_where_uvicorn_writes_two(serve: Any) -> None:
    requests = get(b"/plain") + get(b"/empty") + get(b"/nowhere") + get(b"/plain", close=True)
    one, two = serve(shapes, OneWriteProtocol), serve(shapes, HttpToolsProtocol)
    assert undated(exchange(one, requests)) == undated(exchange(two, requests))
    (writes,) = WRITES[one]
    (uvicorns,) = WRITES[two]
    assert len(writes) == 4 and len(uvicorns) == 8
    assert [undated(w) for w in writes] == [
        undated(head + body) for head, body in zip(uvicorns[::2], uvicorns[1::2], strict=True)
    ]
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\nhello")


def test_a_head_whose_body_comes_later_is_not_held_back(serve: Any) -> None:
    HEAD_SEEN.clear()
    port = serve(shapes, OneWriteProtocol)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(get(b"/late", close=True))
        head = conn.recv(65536)  # before the body is sent: only the head can arrive
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
        HEAD_SEEN.set()
        rest = b""
        while chunk := conn.recv(65536):
            rest += chunk
    assert rest == b"late"


def test_expect_100_continue_is_answered_before_the_body_is_sent(serve: Any) -> None:
    port = serve(shapes, OneWriteProtocol)
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
    (writes,) = WRITES[port]
    assert writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n" and len(writes) == 2


@pytest.mark.parametrize("path", [b"/stream", b"/big"])
def test_a_slow_reader_gets_a_big_answer_whole(serve: Any, path: bytes) -> None:
    """The transport's flow control (pause and resume writing) works as before."""
    port = serve(shapes, OneWriteProtocol)
    with socket.socket() as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.settimeout(10)
        conn.connect(("127.0.0.1", port))
        conn.sendall(get(path, close=True))
        time.sleep(0.5)  # the server's buffers fill: it pauses writing
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    assert PAUSED.count(port) >= 1
    assert received.count(BIG) == (5 if path == b"/stream" else 4)


def test_a_client_going_away_is_seen_by_the_app(serve: Any) -> None:
    for protocol in (OneWriteProtocol, HttpToolsProtocol):
        port = serve(shapes, protocol)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(get(b"/waits"))
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while len(SAW) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert SAW == ["disconnect"]
        SAW.clear()
        assert exchange(port, get(b"/plain", close=True)).endswith(b"hello")  # still serving


UUID = rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TIME = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}"


def app_exchange(port: int, app: Any) -> tuple[list[bytes], list[int]]:
    """/healthz, a command twice (the router's, then `CommandGate`'s), a read
    of its work order (JSON), a HEAD, a 404, on one keep-alive connection:
    each answer (date and ids blanked), and the socket's writes for each."""
    tokens: TokenBook = app.state.tokens
    token = tokens.issue("disp-1", "dispatcher", datetime.now(UTC)).encode()
    body = json.dumps(booking()).encode()
    command = (b"POST /work-orders HTTP/1.1\r\nhost: x\r\nauthorization: Bearer %s\r\n"
               b"content-type: application/json\r\ncontent-length: %d\r\n\r\n"
               % (token, len(body)) + body)  # fmt: skip
    answers: list[bytes] = []
    writes: list[int] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        order = b""
        for request in (get(b"/healthz"), command, command, b"read", get(b"/healthz", method=b"HEAD"),
                        get(b"/nowhere")):  # fmt: skip
            if request == b"read":
                request = (b"GET /work-orders/%s HTTP/1.1\r\nhost: x\r\nauthorization: Bearer %s"
                           b"\r\n\r\n" % (order, token))  # fmt: skip
            before = sum(map(len, WRITES.get(port, [])))
            conn.sendall(request)
            answer = conn.recv(65536)
            head, _, payload = answer.partition(b"\r\n\r\n")
            found = re.search(rb"content-length: (\d+)", head)
            length = int(found.group(1)) if found and not request.startswith(b"HEAD") else 0
            while len(payload) < length:
                payload += conn.recv(65536)
            if request is command:
                order = json.loads(payload)["id"].encode()
            time.sleep(0.05)  # any write held would be written by now
            writes.append(sum(map(len, WRITES[port])) - before)
            answer = re.sub(UUID, b"<id>", undated(head + b"\r\n\r\n" + payload))
            answers.append(re.sub(TIME, b"<time>", answer))
    return answers, writes


def test_the_apps_answers_are_the_same_bytes_in_one_write_each(serve: Any, tmp_path: Path) -> None:
    answers: dict[type[HttpToolsProtocol], list[bytes]] = {}
    for protocol in (OneWriteProtocol, HttpToolsProtocol):
        settings = Settings(database_url=f"sqlite:///{tmp_path / protocol.__name__}.db",
                            background=False)  # fmt: skip
        app = create_app(settings)
        port = serve(app, protocol)
        answers[protocol], writes = app_exchange(port, app)
        # HEAD: the head alone in either
        expected = [1, 1, 1, 1, 1, 1] if protocol is OneWriteProtocol else [2, 2, 2, 2, 1, 2]
        assert writes == expected
    one, two = answers[OneWriteProtocol], answers[HttpToolsProtocol]
    assert one == two
    assert one[1].startswith(b"HTTP/1.1 201 Created\r\n") and b"server:" not in one[1]
    assert b'"id":"<id>"' in one[3] and one[3].startswith(b"HTTP/1.1 200 OK\r\n")
