"""Refuse request bodies over 64 KiB (413 problem+json), whatever the method.

The body is read here, before any route sees the request: a declared
Content-Length over the limit is refused at once, and a body without one
(chunked) is counted as it arrives and refused as soon as it passes the limit.
At most the limit is ever held in memory. The route then reads the buffered
body as usual. Reading first makes the limit hold for every method and route,
also those that never read their body (a GET with a body). Then a body that is
not UTF-8 JSON is refused (`json_bodies.py`), each way with its own problem type,
except the console's HTML forms (form-encoded, under `/console/`).
"""

from __future__ import annotations

import json

from fieldledger.api.json_bodies import (
    PARSED_BODY,
    WITH_BODY,
    NotJson,
    check_body,
    refuse,
    replayed,
)
from fieldledger.api.problems import PROBLEM_JSON, problem_body
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
#: Routes whose body carries a whole document: `POST /what-if` takes a candidate
#: policy of up to 200,000 characters, which JSON may escape to 12 bytes each.
#: The console's what-if form carries the same policy, form-encoded.
LARGE_BODY_BYTES = {"/what-if": 4 * 1024 * 1024, "/console/operations/what-if": 4 * 1024 * 1024}


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = LARGE_BODY_BYTES.get(str(scope.get("path", "")), self.limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.strip().isdigit() and int(value) > limit:
                await self._refuse(send, limit)
                return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client is gone: nobody to answer
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await self._refuse(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if scope["method"] in WITH_BODY and not _console_form(scope):
            try:
                parsed = check_body(_content_type(scope), body)
            except NotJson as e:
                await refuse(send, e)
                return
            if body.strip():
                scope[PARSED_BODY] = (body, parsed)
        await self.app(scope, replayed(body, receive), send)

    async def _refuse(self, send: Send, limit: int) -> None:  # 413
        detail = f"request bodies are limited to {limit // 1024} KiB"
        body = json.dumps(problem_body(413, detail, slug="body-too-large")).encode()
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def _content_type(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return bytes(value).decode("latin-1")
    return None


#: Where HTML forms post (the console, `src/api/console/`): their bodies are
#: form-encoded, not JSON; the size limit applies to them all the same.
FORM_PATHS = ("/console/",)


def _console_form(scope: Scope) -> bool:
    if not str(scope.get("path", "")).startswith(FORM_PATHS):
        return False
    media = (_content_type(scope) or "").split(";")[0].strip().lower()
    return media == "application/x-www-form-urlencoded"
