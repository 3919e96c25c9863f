"""Command endpoints: parse the body, call the ledger, answer `{id, version, state}`.

One function builds every `POST /{resource}/{id}/{command}` route, so that each
command gets the same conventions (occurred_at, If-Match, Idempotency-Key,
ETag) and its own body model in /openapi.json.

A command is served by one `async` function (`CommandRoute`): it reads the
caller, If-Match, Idempotency-Key, the id and the body itself, and runs the
ledger's `execute` in a worker thread (it queries and waits on the group
commit), one of the app's `CommandThreads`. FastAPI's dependency solving (six
dependencies per command) was the largest part of a command's CPU. The route
keeps its declared parameters, so /openapi.json describes it as before; and any request
that is not plainly valid (no or unknown token, a role that may not, a header
or body that does not validate) is handed to FastAPI's own handler of the same
declaration, so that every error is answered exactly as the other routes do.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint's
# annotations at definition time, and the body model is a closure variable.

import contextlib
import json
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from fieldledger.api.body_limit import LARGE_BODY_BYTES, MAX_BODY_BYTES
from fieldledger.api.command_threads import CommandThreads
from fieldledger.api.deps import (
    IDEMPOTENCY_KEY_PATTERN,
    IF_MATCH_PATTERN,
    CallerDep,
    ExpectedVersionDep,
    IdempotencyDep,
    LedgerDep,
    get_expected_version,
    idempotency_of,
    permits,
)
from fieldledger.api.json_bodies import PARSED_BODY, NotJson, check_body, replayed
from fieldledger.api.problems import responses
from fieldledger.application.commands import Command, CommandSet
from fieldledger.application.fields import RecordId
from fieldledger.application.ledger import Caller, CommandResult, FieldLedger, Idempotency
from fieldledger.application.tokens import TokenBook
from fieldledger.domain.facts import Role
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette._utils import get_route_path
from starlette.datastructures import URL, State
from starlette.types import ASGIApp, Receive, Scope, Send


class CommandAnswer(BaseModel):
    id: UUID
    version: int
    state: str


def answer_headers(result: CommandResult) -> dict[str, str]:
    """A command's success headers: its new version, and where it was written."""
    headers = {"ETag": f'"{result.version}"'}
    if result.position is not None:
        # A read-your-writes token: read models can be asked to catch up to it.
        headers["X-Position"] = str(result.position)
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return headers


def answer(result: CommandResult, response: Response) -> CommandAnswer:
    response.headers.update(answer_headers(result))
    return CommandAnswer(id=result.id, version=result.version, state=result.state)


#: What a command's success answer carries besides its body, for /openapi.json.
ANSWER_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {"description": 'the new version, "N": send it as If-Match with the next command',
             "schema": {"type": "string"}},
    "X-Position": {"description": "store position of the last event written: a "
                   "read-your-writes token for read models", "schema": {"type": "integer"}},
    "Idempotent-Replayed": {"description": "`true` when this is the stored answer to an "
                            "earlier request with the same Idempotency-Key",
                            "schema": {"type": "string", "enum": ["true"]}},
}  # fmt: skip
#: The ETag of a query's answer.
READ_ETAG: dict[str, Any] = {
    "description": 'the version answered, "N": send it as If-Match with a command',
    "schema": {"type": "string"},
}
CREATED_HEADERS: dict[str, dict[str, Any]] = {
    "Location": {"description": "the new resource", "schema": {"type": "string"}},
    **ANSWER_HEADERS,
}


Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_RECORD_ID: TypeAdapter[UUID] = TypeAdapter(RecordId)
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


@dataclass(frozen=True, slots=True)
class CommandInputs:
    """A command request's inputs, read without FastAPI's dependency solving."""

    id: UUID | None  # None for a create
    caller: Caller
    body: BaseModel
    expected_version: int | None
    idempotency: Idempotency | None


@dataclass(frozen=True, slots=True)
class FastCommand:
    """What a route's one function needs: who may, the body's model, the call
    (in a worker thread) and, for a create, where the created record is (its
    answer is 201 with `Location`; it has no id in its path and refuses If-Match)."""

    roles: frozenset[Role]
    body: type[BaseModel]
    run: Callable[[FieldLedger, CommandInputs], CommandResult]
    creates: str | None = None


#: The headers a command reads (the first of each, as Starlette's `Headers.get`).
COMMAND_HEADERS = frozenset({b"authorization", b"if-match", b"idempotency-key", b"content-type"})
#: What `CommandRequest.parsed` holds when the body has not been parsed yet.
NOT_PARSED: Any = object()


@dataclass(slots=True)
class CommandRequest:
    """What `read_inputs` reads of a command request: its scope, the app's
    state, the command's headers (`COMMAND_HEADERS`, latin-1 as Starlette
    decodes them), the whole body, its JSON when the body guard parsed it
    already (else `NOT_PARSED`), and the record's id in the path (None for a create)."""

    scope: Scope
    state: State
    headers: dict[str, str]
    body: bytes
    parsed: Any
    id: str | None


def command_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The first of each of `COMMAND_HEADERS` in a scope's raw headers."""
    found: dict[str, str] = {}
    for name, value in raw:
        if name in COMMAND_HEADERS:
            key = name.decode("latin-1")
            if key not in found:
                found[key] = value.decode("latin-1")
    return found


async def command_request(request: Request) -> CommandRequest:
    """A Starlette request (through the router) as `read_inputs` reads it."""
    scope = request.scope
    raw = await request.body()
    checked = scope.get(PARSED_BODY)
    parsed = checked[1] if checked is not None and checked[0] == raw else NOT_PARSED
    return CommandRequest(scope, request.app.state, command_headers(scope["headers"]), raw,
                          parsed, request.path_params.get("id"))  # fmt: skip


async def read_inputs(request: CommandRequest, command: FastCommand) -> CommandInputs | None:
    """The inputs of a plainly valid command request; None for any other (which
    FastAPI's handler then answers with the error it finds, as declared)."""
    headers = request.headers
    scheme, token = get_authorization_scheme_param(headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        return None
    state = request.state
    tokens: TokenBook = state.tokens
    # The token's row is read (a cache miss, SQLite's change counter) in a
    # worker thread: never a query on the event loop.
    threads: CommandThreads = state.command_threads
    caller = tokens.remembered(token) or await threads.run(tokens.identify, token)
    if caller is None or caller.role not in command.roles:
        return None
    expected_version = None
    if_match = headers.get("if-match")
    if if_match is not None:
        if command.creates is not None or _IF_MATCH.fullmatch(if_match) is None:
            return None  # a create refuses If-Match (422), as declared
        expected_version = get_expected_version(if_match)
    raw = request.body
    idempotency = None
    key = headers.get("idempotency-key")
    if key is not None:
        if _IDEMPOTENCY_KEY.fullmatch(key) is None:
            return None
        # The path as `Request.url.path` gives it (FastAPI's dependency reads that).
        path = URL(scope=request.scope).path
        idempotency = idempotency_of(key.strip(), request.scope["method"], path, raw)
    try:
        id = None
        if command.creates is None:
            id = _RECORD_ID.validate_python(request.id)
        body = _body(command.body, raw, headers.get("content-type"), request.parsed)
    except (ValidationError, ValueError):
        return None
    if body is None:
        return None
    return CommandInputs(id, caller, body, expected_version, idempotency)


def _body(
    model: type[BaseModel], raw: bytes, content_type: str | None, parsed: Any
) -> BaseModel | None:
    """The body as the route's model, or None when FastAPI should judge it."""
    if raw.strip():
        if (content_type or "").split(";")[0].strip().lower() != "application/json":
            return None
        # Parsed once already, by the body guard (json_bodies.py), when it checked it.
        if parsed is NOT_PARSED:
            parsed = json.loads(raw)
    else:
        parsed = None
    if parsed is None:
        # No body (or `null`): the model's defaults, when it has no required field.
        if any(f.is_required() for f in model.model_fields.values()):
            return None
        return model()
    if not isinstance(parsed, dict):
        return None
    return model.model_validate(parsed)


#: Each command endpoint's command, for its `CommandRoute`.
_COMMANDS: dict[Callable[..., Any], FastCommand] = {}


def served_in_one_function(endpoint: Callable[..., Any], command: FastCommand) -> None:
    """Serve `endpoint`'s route (declared with `route_class_override=CommandRoute`)
    by one function: `command` says what it reads and calls."""
    _COMMANDS[endpoint] = command


async def run_command(state: State, command: FastCommand, inputs: CommandInputs) -> CommandResult:
    """Run a plainly valid command in one of the app's command threads."""
    # One hop to a worker thread for the whole command: measured better than
    # deciding on the event loop and awaiting the save from a writer thread,
    # and no dearer than awaiting it on psycopg's async connection, which
    # split the group commit's batches (docs/benchmarks.md, "Commands decided
    # on the event loop"); the hop itself is the lean pool's, not anyio's
    # (command_threads.py).
    threads: CommandThreads = state.command_threads
    return await threads.run(command.run, state.ledger, inputs)


def answer_parts(
    command: FastCommand, result: CommandResult
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A command's success answer: its status, its headers as Starlette's
    `Response` lists them (those given, then content-length and content-type)
    and its body, as FastAPI encodes the `CommandAnswer` (tested alike)."""
    body = answer_body(result)
    raw: list[tuple[bytes, bytes]] = []
    status = 200
    if command.creates is not None:
        status = 201
        raw.append((b"location", f"{command.creates}/{result.id}".encode("latin-1")))
    raw.append((b"etag", b'"%d"' % result.version))
    if result.position is not None:
        raw.append((b"x-position", b"%d" % result.position))
    if result.replayed:
        raw.append((b"idempotent-replayed", b"true"))
    raw.append((b"content-length", b"%d" % len(body)))
    raw.append((b"content-type", b"application/json"))
    return status, raw, body


def _plain_name(text: str) -> bool:
    """Whether `text` is written in JSON as it is, between quotes."""
    return text.isascii() and text.replace("_", "a").replace("-", "a").isalnum()


def answer_body(result: CommandResult) -> bytes:
    """The success answer's body, as FastAPI encodes the `CommandAnswer`: for
    a state named plainly, without building the model (tested alike)."""
    if _plain_name(result.state) and type(result.version) is int:
        return b'{"id":"%s","version":%d,"state":"%s"}' % (
            str(result.id).encode(), result.version, result.state.encode())  # fmt: skip
    return (
        CommandAnswer(id=result.id, version=result.version, state=result.state)
        .model_dump_json()
        .encode()
    )


async def send_answer(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def serve(request: CommandRequest, command: FastCommand, inputs: CommandInputs) -> Response:
    """Run a plainly valid command and answer it (as a route answers)."""
    status, headers, body = answer_parts(command, await run_command(request.state, command, inputs))
    response = Response(body, status)
    response.raw_headers = headers
    return response


#: Set in a request's scope by `CommandGate` or `CommandShortcut` when it found
#: the request not plainly valid: the route answers it with FastAPI's declared
#: handler at once.
DECLARED = "fieldledger.declared"
#: Set in a request's scope by `CommandGate` when its command raised: the
#: exception is raised again inside the app's exception handling
#: (`CommandShortcut`), to be answered by the same handlers as from the route.
RAISED = "fieldledger.raised"


class CommandRoute(APIRoute):
    """A command's route: described by its declared endpoint, served by one
    `async` function; a request that is not plainly valid goes to the handler
    FastAPI builds from the declaration, for the same error answers."""

    def get_route_handler(self) -> Handler:
        declared = super().get_route_handler()
        command = _COMMANDS[self.endpoint]

        async def handle(request: Request) -> Response:
            if request.scope.get(DECLARED):
                return await declared(request)
            plain = await command_request(request)
            inputs = await read_inputs(plain, command)
            if inputs is None:
                return await declared(request)
            return await serve(plain, command, inputs)

        return handle

    @property
    def command(self) -> FastCommand:
        return _COMMANDS[self.endpoint]


def _route_key(path: str) -> tuple[str, str | None]:
    """The route a command's path would have, and the id in it: `/a/{id}/c`
    and the id for a path of three parts, else the path itself (a create)."""
    parts = path.split("/")
    if len(parts) == 4 and not parts[0] and parts[1] and parts[2] and parts[3]:
        return f"/{parts[1]}/{{id}}/{parts[3]}", parts[2]
    return path, None


class CommandShortcut:
    """In front of the router: a command whose route is known goes straight to
    its `CommandRoute`, without being matched against the routes again.

    FastAPI's routing (every included router and route tried in turn, each
    with its own scope bookkeeping) was the largest part of a command's CPU
    left on the event loop (docs/benchmarks.md). The routes are not guessed:
    a path is sent here only once the router has sent a request of the same
    shape (`/{resource}/<id>/{command}`, or a create's path) to that route,
    and only POST. A plainly valid command is then served as its route serves
    it; any other request (not plainly valid) goes on to the router as before,
    with its body, and its route answers it with FastAPI's declared handler.
    Both sit inside the app's exception middleware: an error is answered by
    the same handlers as from the route.

    Most commands do not come this way: `CommandGate`, in front of the whole
    app, answers a plainly valid command of a known route itself. It comes
    here with what it could not answer: a request not plainly valid
    (`DECLARED`), or the exception its command raised (`RAISED`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes: dict[str, CommandRoute] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key, id = _route_key(get_route_path(scope))
        route = self.routes.get(key)
        if route is None:
            await self.app(scope, receive, send)
            self._learn(scope, key, id)
            return
        command = route.command
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {} if id is None else {"id": id}
        raised: Exception | None = scope.pop(RAISED, None)
        if raised is not None:
            raise raised
        if scope.get(DECLARED):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        plain = await command_request(request)
        inputs = await read_inputs(plain, command)
        if inputs is None:
            scope[DECLARED] = True
            await self.app(scope, replayed(plain.body, receive), send)
            return
        result = await run_command(plain.state, command, inputs)
        await send_answer(send, *answer_parts(command, result))

    def _learn(self, scope: Scope, key: str, id: str | None) -> None:
        route = scope.get("route")
        if (
            isinstance(route, CommandRoute)
            and route.path_format == key
            and (id is None) == (route.command.creates is not None)
            and scope.get("path_params") == ({} if id is None else {"id": id})
        ):
            self.routes[key] = route


class CommandGate:
    """In front of the whole app: a plainly valid command of a route the
    router has already sent one to (`CommandShortcut.routes`) is read, run and
    answered here, without the layers FastAPI and Starlette put in front of
    every request (telemetry, error and exception middleware, the body guards,
    the router; their `Request` and `Response` objects): about a tenth of a
    worker's CPU per command (docs/benchmarks.md).

    What those layers would do to such a request is done here alike: the body
    guard's limit and JSON checks (`body_limit.py`, `json_bodies.py`) before
    anything else. Anything else goes on to the app untouched, or with the body
    already read: a request whose body's size is not plainly within the limit
    (refused there), a body that is not JSON (refused there), a request not
    plainly valid (answered by the route's declared handler, `DECLARED`), a
    command that raised (its exception raised again inside the app's exception
    handling, `RAISED`), and every request while FastAPI's telemetry is on or
    under a root path. It does alike only what the middleware there when it was
    made does: should the app be given another (`add_middleware`), the gate
    stands aside for good."""

    def __init__(self, app: FastAPI, shortcut: CommandShortcut, routed: ASGIApp) -> None:
        self.app = app
        self.shortcut = shortcut
        self.routed = routed
        #: The app's middleware the gate does alike (the body guard; the probes
        #: answer no POST), as it was when the gate was made.
        self.layers = [m.cls for m in app.user_middleware]
        #: Whether the app's middleware is still those, once it has started
        #: (its middleware cannot change then); None before.
        self.plain: bool | None = None

    def _plain(self) -> bool:
        if self.plain is None:
            if self.app.middleware_stack is None:
                return False  # not started: nothing is fixed yet
            self.plain = [m.cls for m in self.app.user_middleware] == self.layers
        return self.plain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A POST request (the caller checks), answered or handed on to `routed`."""
        app = self.app
        path: str = scope["path"]
        key, id = _route_key(path)
        route = self.shortcut.routes.get(key)
        telemetry = getattr(app, "_native_telemetry", None)
        if (
            route is None
            or not self._plain()
            or scope.get("root_path")
            or app.root_path
            or (telemetry is not None and telemetry.enabled())
        ):
            await self.routed(scope, receive, send)
            return
        limit = LARGE_BODY_BYTES.get(path, MAX_BODY_BYTES)
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        for name, value in raw_headers:
            if name == b"transfer-encoding" or (
                name == b"content-length" and not (value.isdigit() and int(value) <= limit)
            ):
                await self.routed(scope, receive, send)  # the body guard judges it
                return
        # The whole body, as the body guard reads it (Content-Length bounds it).
        message = await receive()
        chunks: list[bytes] = []
        while True:
            if message["type"] == "http.disconnect":
                return  # the client is gone: nobody to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
            message = await receive()
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        headers = command_headers(raw_headers)
        parsed: Any = NOT_PARSED
        if len(body) <= limit:
            with contextlib.suppress(NotJson):
                parsed = check_body(headers.get("content-type"), body)
        if parsed is NOT_PARSED:  # over the limit, or not JSON: refused there
            await self.routed(scope, replayed(body, receive), send)
            return
        state = app.state
        command = route.command
        request = CommandRequest(scope, state, headers, body, parsed, id)
        try:
            inputs = await read_inputs(request, command)
            if inputs is None:
                scope[DECLARED] = True
                await self.routed(scope, replayed(body, receive), send)
                return
            result = await run_command(state, command, inputs)
        except Exception as error:
            scope[RAISED] = error
            await self.routed(scope, replayed(body, receive), send)
            return
        await send_answer(send, *answer_parts(command, result))


def command_responses(status: int, *errors: int) -> dict[int | str, dict[str, Any]]:
    """The success answer (with its headers) and the error answers of a command."""
    headers = CREATED_HEADERS if status == 201 else ANSWER_HEADERS
    return {status: {"headers": headers}, **responses(*errors)}


def add_command_route(router: APIRouter, command: Command[Any, Any]) -> None:
    """`POST {prefix}/{id}/{command.name}`: the command's body, its roles, its call."""
    body_model = command.body
    # A command whose body has required fields needs a body; one without may be
    # sent with none at all (or `{}`, or `{"occurred_at": ...}`).
    needs_body = any(f.is_required() for f in body_model.model_fields.values())

    def endpoint(
        id: RecordId,
        response: Response,
        ledger: LedgerDep,
        caller: CallerDep,
        expected_version: ExpectedVersionDep,
        idempotency: IdempotencyDep,
        body: body_model,  # type: ignore[valid-type]
    ) -> CommandAnswer:
        result = ledger.execute(command, caller, id, body, expected_version=expected_version,
                                idempotency=idempotency)  # fmt: skip
        return answer(result, response)

    def endpoint_optional_body(
        id: RecordId,
        response: Response,
        ledger: LedgerDep,
        caller: CallerDep,
        expected_version: ExpectedVersionDep,
        idempotency: IdempotencyDep,
        body: body_model | None = None,  # type: ignore[valid-type]
    ) -> CommandAnswer:
        given = body if body is not None else body_model()
        result = ledger.execute(command, caller, id, given, expected_version=expected_version,
                                idempotency=idempotency)  # fmt: skip
        return answer(result, response)

    chosen = endpoint if needs_body else endpoint_optional_body
    chosen.__name__ = f"{command.name.replace('-', '_')}"

    def run(ledger: FieldLedger, inputs: CommandInputs) -> CommandResult:
        assert inputs.id is not None
        return ledger.execute(command, inputs.caller, inputs.id, inputs.body,
                              expected_version=inputs.expected_version,
                              idempotency=inputs.idempotency)  # fmt: skip

    served_in_one_function(chosen, FastCommand(command.roles, body_model, run))
    router.add_api_route(
        f"/{{id}}/{command.name}",
        chosen,
        methods=["POST"],
        response_model=CommandAnswer,
        summary=command.summary,
        description=f"{command.summary}. Who: {command.who}.",
        dependencies=[Depends(permits(command))],
        responses=command_responses(200, 401, 403, 404, 409, 412, 413, 415, 422),
        operation_id=f"{router.prefix.strip('/').replace('-', '_')}_{chosen.__name__}",
        route_class_override=CommandRoute,
    )


def add_command_routes(router: APIRouter, commands: CommandSet[Any]) -> None:
    """A route for each command of the set given over HTTP, in the set's order."""
    for command in commands.routed:
        add_command_route(router, command)
