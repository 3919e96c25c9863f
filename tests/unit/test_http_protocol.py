"""`HeldHeadTransport` (api/http_protocol.py): an answer's head waits for its
body, or for the end of the loop's turn; bytes and order unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fieldledger.api.http_protocol import CONTINUE, HeldHeadTransport


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.buffered = 0

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str) -> str:
        return f"info {name}"


class Loop:
    def __init__(self) -> None:
        self.soon: list[Callable[[], None]] = []

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.soon.append(callback)

    def turn_done(self) -> None:
        soon, self.soon = self.soon, []
        for callback in soon:
            callback()


def held() -> tuple[HeldHeadTransport, Transport, Loop]:
    transport, loop = Transport(), Loop()
    return HeldHeadTransport(transport, loop), transport, loop  # type: ignore[arg-type]


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def test_the_head_and_the_body_of_one_turn_are_one_write() -> None:
    connection, transport, loop = held()
    connection.write(HEAD)
    assert transport.writes == []
    connection.write(b"{}")
    assert transport.writes == [HEAD + b"{}"]
    loop.turn_done()  # nothing left to write
    assert transport.writes == [HEAD + b"{}"]


def test_a_head_without_its_body_goes_when_the_turn_is_done() -> None:
    connection, transport, loop = held()
    connection.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    loop.turn_done()
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
    connection.write(b"2\r\nab\r\n")
    connection.write(b"0\r\n\r\n")
    assert transport.writes[1:] == [b"2\r\nab\r\n", b"0\r\n\r\n"]


def test_a_streams_later_writes_pass_at_once_in_order() -> None:
    connection, transport, loop = held()
    for part in (b"head", b"one", b"two", b"three"):
        connection.write(part)
    assert transport.writes == [b"headone", b"two", b"three"]
    loop.turn_done()
    assert transport.writes == [b"headone", b"two", b"three"]


def test_each_answer_of_a_connection_has_its_head_held() -> None:
    connection, transport, loop = held()
    connection.write(HEAD)
    connection.write(b"{}")
    connection.answered()
    connection.write(HEAD)  # a HEAD request's: no body follows
    assert transport.writes == [HEAD + b"{}"]
    connection.answered()
    assert transport.writes == [HEAD + b"{}", HEAD]
    connection.write(HEAD)
    connection.write(b"[]")
    loop.turn_done()
    assert transport.writes == [HEAD + b"{}", HEAD, HEAD + b"[]"]


def test_100_continue_is_written_at_once_and_the_head_after_it_held() -> None:
    connection, transport, _loop = held()
    connection.write(CONTINUE)
    assert transport.writes == [CONTINUE]
    connection.write(HEAD)
    connection.write(b"{}")
    assert transport.writes == [CONTINUE, HEAD + b"{}"]


def test_a_head_is_not_held_behind_data_already_waiting() -> None:
    """Nothing to gain (the transport buffers it anyway), and flow control
    sees the writes as uvicorn makes them."""
    connection, transport, loop = held()
    transport.buffered = 70_000
    connection.write(HEAD)
    connection.write(b"{}")
    assert transport.writes == [HEAD, b"{}"] and loop.soon == []


def test_close_writes_what_is_held_first() -> None:
    connection, transport, loop = held()
    connection.write(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
    connection.close()
    assert transport.writes == [b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n"]
    assert transport.closed and connection.is_closing()
    loop.turn_done()
    assert len(transport.writes) == 1


def test_nothing_is_written_to_a_connection_going_away() -> None:
    connection, transport, loop = held()
    connection.write(HEAD)
    transport.close()  # the peer went (uvicorn's connection_lost), before the turn ended
    loop.turn_done()
    assert transport.writes == []


def test_anything_else_is_asked_of_the_transport() -> None:
    connection: Any = held()[0]
    assert connection.get_extra_info("peername") == "info peername"
