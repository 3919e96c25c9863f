"""uvicorn's httptools protocol, writing an answer's head and body in one write.

Why it is written here: uvicorn (0.30 to 0.54 at least) writes an answer's
status line and headers to the socket when the app sends
`http.response.start`, and its body when the app sends `http.response.body`:
two `write` system calls for every answer, and it has no option to do
otherwise. On loopback (and on a local reverse proxy) each write also does
the receiver's work (the TCP receive path, waking the reader), and the client
may wake twice per answer. By py-spy, sending the answer was about a fifth of
an API worker's busy samples per command (docs/benchmarks.md, issue 11).

`OneWriteProtocol` is uvicorn's `HttpToolsProtocol` with one difference: the
connection's transport, as the protocol and its requests see it, is a
`HeldHeadTransport`, which holds each answer's first write (its head; not a
`100 Continue`) until the next write, which then carries both, or until the
event loop has run the callbacks it was running (`call_soon`), whichever is
first; and before a close or once the answer is complete (a HEAD's or a 304's
head has no body after it). A body sent in the same turn of the loop as its
head (every Starlette `Response`, every command answered by `CommandGate`)
goes out with it; a streamed answer's head goes out as the loop finishes
that turn, before anything else can be written. The bytes, their order and
everything else uvicorn does are unchanged; a head is not held when the
transport already has data waiting (it would not be written at once anyway,
and flow control then sees every write as before).

uvicorn's internals are not a public interface: the class relies on its
protocol writing through `self.transport` and giving each request's cycle
that same transport, which tests/e2e/test_one_write.py checks against
uvicorn's own protocol, byte for byte, over real sockets. Without httptools
(uvicorn then serves with h11) `fieldledger serve` does not use it.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: What uvicorn writes for `Expect: 100-continue`: not an answer's head.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HeldHeadTransport:
    """A connection's transport whose answers' heads wait for their bodies."""

    __slots__ = ("expecting_head", "flush_soon", "held", "loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        #: Written by the current answer, not yet given to the transport.
        self.held: bytes | None = None
        #: Whether the next write (but a `100 Continue`) is an answer's head.
        self.expecting_head = True
        self.flush_soon = self.flush  # bound once, not per answer

    def write(self, data: bytes) -> None:
        held = self.held
        if held is not None:
            self.held = None
            self.transport.write(held + data)
        elif self.expecting_head and data != CONTINUE:
            self.expecting_head = False
            if self.transport.get_write_buffer_size():
                self.transport.write(data)
            else:
                self.held = data
                self.loop.call_soon(self.flush_soon)
        else:
            self.transport.write(data)

    def flush(self) -> None:
        """Write what is held: unless the connection is going (uvicorn's
        `connection_lost`), as uvicorn writes nothing then."""
        held = self.held
        if held is not None:
            self.held = None
            if not self.transport.is_closing():
                self.transport.write(held)

    def answered(self) -> None:
        """The answer is complete: its head is written if it is still held,
        and the next write is the next answer's head."""
        if self.held is not None:
            self.flush()
        self.expecting_head = True

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        # Anything else asked of the transport is the transport's.
        return getattr(self.transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a `HeldHeadTransport`."""

    held_head: HeldHeadTransport

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # uvicorn's flow control keeps the transport itself (pause/resume reading).
        super().connection_made(transport)
        self.held_head = HeldHeadTransport(transport, self.loop)
        self.transport = cast(asyncio.Transport, self.held_head)

    def on_response_complete(self) -> None:
        self.held_head.answered()
        super().on_response_complete()

    def handle_websocket_upgrade(self) -> None:
        # The WebSocket protocol gets the transport itself, nothing held.
        self.held_head.flush()
        self.transport = self.held_head.transport
        super().handle_websocket_upgrade()
