"""`HeldHead` (api/http_protocol.py): a request's first write waits for its
second, or for the end of the loop's step; bytes and order unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fieldledger.api.http_protocol import HeldHead


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info {name}"


class Loop:
    def __init__(self) -> None:
        self.soon: list[Callable[[], None]] = []

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.soon.append(callback)

    def step_done(self) -> None:
        for callback in self.soon:
            callback()
        self.soon.clear()


def held(transport: Transport, loop: Loop) -> HeldHead:
    return HeldHead(transport, loop)  # type: ignore[arg-type]


def test_the_head_and_the_body_of_one_step_are_one_write() -> None:
    transport, loop = Transport(), Loop()
    request = held(transport, loop)
    request.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert transport.writes == []
    request.write(b"{}")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    loop.step_done()  # nothing left to write
    assert len(transport.writes) == 1


def test_a_head_without_its_body_goes_when_the_step_is_done() -> None:
    transport, loop = Transport(), Loop()
    request = held(transport, loop)
    request.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    loop.step_done()
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
    request.write(b"2\r\nab\r\n")
    request.write(b"0\r\n\r\n")
    loop.step_done()
    assert transport.writes[1:] == [b"2\r\nab\r\n", b"0\r\n\r\n"]


def test_later_writes_pass_in_order() -> None:
    transport, loop = Transport(), Loop()
    request = held(transport, loop)
    for part in (b"head", b"one", b"two", b"three"):
        request.write(part)
    loop.step_done()
    assert transport.writes == [b"headone", b"two", b"three"]


def test_close_writes_what_is_held_first() -> None:
    transport, loop = Transport(), Loop()
    request = held(transport, loop)
    request.write(b"head")
    request.close()
    assert transport.writes == [b"head"] and transport.closed
    loop.step_done()
    assert transport.writes == [b"head"]


def test_nothing_is_written_to_a_connection_going_away() -> None:
    transport, loop = Transport(), Loop()
    request = held(transport, loop)
    request.write(b"head")
    transport.close()  # the peer went (uvicorn's connection_lost), before the step ended
    loop.step_done()
    assert transport.writes == []
    assert request.is_closing()


def test_anything_else_is_asked_of_the_transport() -> None:
    transport, loop = Transport(), Loop()
    request: Any = held(transport, loop)
    assert request.get_extra_info("peername") == "info peername"
