"""What routes depend on, as `Annotated` aliases."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fieldledger.api.problems import InvalidRequest
from fieldledger.application.commands import Permission
from fieldledger.application.ledger import Caller, FieldLedger, Idempotency
from fieldledger.application.settings import Settings
from fieldledger.application.tokens import TokenBook
from fieldledger.projections.projector import Projections

bearer = HTTPBearer(auto_error=False, description="a token from `fieldledger token issue`")


# The dependencies below are `async def`: they only look up what the app holds,
# and FastAPI runs a plain `def` dependency in a worker thread, one thread hop
# each (a read route with four of them waited on four hand-overs before its
# own thread even started: docs/benchmarks.md, branch i11o).


async def get_ledger(request: Request) -> FieldLedger:
    ledger: FieldLedger = request.app.state.ledger
    return ledger


async def get_projections(request: Request) -> Projections:
    projections: Projections = request.app.state.projections
    return projections


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The token's caller: from memory on the event loop when the book knows it
    without a query (`TokenBook.remembered`), else looked up in a worker thread
    (the event loop never waits on the database)."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(401, "send Authorization: Bearer TOKEN", headers=challenge)
    tokens: TokenBook = request.app.state.tokens
    token = credentials.credentials
    caller = tokens.remembered(token) or await run_in_threadpool(tokens.identify, token)
    if caller is None:
        raise HTTPException(401, "unknown token", headers=challenge)
    return caller


def permits(permission: Permission) -> Callable[[Caller], None]:
    """A route dependency: the token's role may do this at all (else 403).

    Checked before the body is validated, so that a role that may never give the
    command is told so, not how to fix its body. The ledger checks again, with the
    aggregate (a technician's own work orders).
    """

    def check(caller: CallerDep) -> None:
        permission.check(caller.role)

    return check


#: What If-Match may be: `*`, or a version as the ETag gives it ("3"), also W/"3" or 3.
IF_MATCH_PATTERN = r'^(\*|(W/)?"[0-9]{1,15}"|[0-9]{1,15})$'
#: What Idempotency-Key may be: 1 to 200 visible ASCII characters.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,200}$"
_ETAG = re.compile(r'^(?:W/)?"?([0-9]{1,15})"?$')


def get_expected_version(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='the version the command expects, as in the ETag: "N" (`*`: any)',
            pattern=IF_MATCH_PATTERN,
        ),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    found = _ETAG.match(if_match.strip())
    if found is None:
        raise InvalidRequest("If-Match", 'must be a version as given in the ETag, e.g. "3"')
    return int(found.group(1))


def refuse_if_match(request: Request) -> None:
    """A create has no prior version: a precondition on one cannot hold, so say so.
    (Not a documented parameter of a create: /openapi.json says what is accepted.)"""
    if "if-match" in request.headers:
        raise InvalidRequest(
            "If-Match", "a create has no version to match; send If-Match to commands only"
        )


async def get_idempotency(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="repeat a command safely: same key and body, same answer, "
            "nothing written again (1-200 visible ASCII characters, per actor)",
            pattern=IDEMPOTENCY_KEY_PATTERN,
        ),
    ] = None,
) -> Idempotency | None:
    if idempotency_key is None:
        return None
    key = idempotency_key.strip()
    if re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key) is None:
        raise InvalidRequest("Idempotency-Key", "must be 1 to 200 visible ASCII characters")
    return idempotency_of(key, request.method, request.url.path, await request.body())


def idempotency_of(key: str, method: str, path: str, raw: bytes) -> Idempotency:
    """The key with the request's fingerprint: its method, path and body."""
    try:
        # The same JSON however written; no body, `null` and `{}` say the same.
        parsed = json.loads(raw) if raw.strip() else None
        canonical = json.dumps({} if parsed is None else parsed, sort_keys=True,
                               separators=(",", ":"))  # fmt: skip
    except ValueError:
        canonical = raw.decode("utf-8", "replace")
    fingerprint = hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()
    return Idempotency(key, fingerprint)


LedgerDep = Annotated[FieldLedger, Depends(get_ledger)]
ProjectionsDep = Annotated[Projections, Depends(get_projections)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Caller, Depends(get_caller)]
ExpectedVersionDep = Annotated[int | None, Depends(get_expected_version)]
IdempotencyDep = Annotated[Idempotency | None, Depends(get_idempotency)]
NoIfMatchDep = Annotated[None, Depends(refuse_if_match)]
