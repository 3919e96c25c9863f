"""What every console page shares: the router, who is signed in, which role sees
which page, rendering in the chosen language, CSRF, server-sent events."""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from fieldledger.api.console.i18n import COOKIE as LANG_COOKIE
from fieldledger.api.console.i18n import (
    HTML_LANG,
    N_,
    gettext_for,
    language_of,
)
from fieldledger.api.console.sessions import (
    COOKIE,
    Session,
    SessionBook,
)
from fieldledger.application.database import Database
from fieldledger.application.ledger import FieldLedger
from fieldledger.application.settings import Settings
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Role
from fieldledger.domain.permissions import REPORT_READERS
from fieldledger.projections.projector import Projections

T = TypeVar("T")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(prefix="/console", include_in_schema=False)

#: Which roles see which page (a technician: the board and records of their own
#: orders, and their own appraisal).
PAGES: dict[str, frozenset[Role]] = {
    "board": frozenset({Role.SUPERVISOR, Role.ANALYST, Role.DISPATCHER, Role.TECHNICIAN}),
    "records": frozenset({Role.SUPERVISOR, Role.ANALYST, Role.DISPATCHER, Role.TECHNICIAN}),
    "audit": frozenset({Role.SUPERVISOR, Role.ANALYST}),
    "appraisal": frozenset({Role.SUPERVISOR, Role.ANALYST, Role.TECHNICIAN}),
    "reports": frozenset({Role.SUPERVISOR, Role.ANALYST, Role.DISPATCHER}),
    #: The monthly supervision report: who reads it over the API.
    "monthly": REPORT_READERS,
    "operations": frozenset({Role.ANALYST}),
}
NAV = (
    ("board", N_("SLA board")),
    ("audit", N_("Audit")),
    ("appraisal", N_("Appraisal")),
    ("reports", N_("Reports")),
    ("operations", N_("Operations")),
)
STATUS_LABELS = {"red": N_("red"), "yellow": N_("yellow"), "blue": N_("blue")}
#: The CSRF token of the forms shown before sign-in.
FORM_COOKIE = "fl_form"
#: An SSE stream ends after this long; the browser reconnects by itself.
STREAM_SECONDS = 300.0


class SignInRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class PageForbidden(Exception):
    pass


def sessions_of(request: Request) -> SessionBook:
    book: SessionBook | None = getattr(request.app.state, "console_sessions", None)
    if book is None:  # made on first use: the ledger exists once the app has started
        book = SessionBook(Database(request.app.state.ledger.recorder), request.app.state.tokens)
        request.app.state.console_sessions = book
    return book


def current_session(request: Request) -> Session:
    found = sessions_of(request).find(request.cookies.get(COOKIE), datetime.now(UTC))
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return found


SessionDep = Annotated[Session, Depends(current_session)]


def allow(session: Session, page: str) -> None:
    if session.caller.role not in PAGES[page]:
        raise PageForbidden(page)


@dataclass
class View:
    request: Request
    session: Session | None
    language: str = field(init=False)

    def __post_init__(self) -> None:
        self.language = language_of(self.request.cookies.get(LANG_COOKIE))

    @property
    def settings(self) -> Settings:
        settings: Settings = self.request.app.state.settings
        return settings

    @property
    def ledger(self) -> FieldLedger:
        ledger: FieldLedger = self.request.app.state.ledger
        return ledger

    @property
    def projections(self) -> Projections:
        projections: Projections = self.request.app.state.projections
        return projections

    def local(self, value: datetime | str | None) -> str:
        if value is None:
            return "—"
        instant = datetime.fromisoformat(value) if isinstance(value, str) else value
        zone = ZoneInfo(self.settings.timezone)
        return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        _ = gettext_for(self.language)
        role = None if self.session is None else self.session.caller.role
        nav = [(page, _(label)) for page, label in NAV if role is not None and role in PAGES[page]]
        here = self.request.url.path + (
            f"?{self.request.url.query}" if self.request.url.query else ""
        )
        known = self.request.cookies.get(FORM_COOKIE)
        csrf = self.session.csrf if self.session else (known or secrets.token_urlsafe(32))
        response = TEMPLATES.TemplateResponse(
            self.request,
            template,
            {
                "_": _,
                "lang": self.language,
                "html_lang": HTML_LANG[self.language],
                "session": self.session,
                "csrf": csrf,
                "nav": nav,
                "here": here,
                "local": self.local,
                "timezone": self.settings.timezone,
                **context,
            },
            status_code=status,
        )
        if self.session is None and known != csrf:
            # Before sign-in there is no session to hold the forms' CSRF token: the
            # forms carry it, and so does this cookie (double submit).
            response.set_cookie(
                FORM_COOKIE, csrf, httponly=True, samesite="strict", path="/console",
                secure=self.request.url.scheme == "https",
            )  # fmt: skip
        return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    try:
        session: Session | None = current_session(request)
    except SignInRequired:
        session = None
    return View(request, session).render("error.html", status=status, message=message)


def install_handlers(app: Any) -> None:
    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        if request.url.path.endswith(("/stream", "/rows")) or request.method != "GET":
            return Response(status_code=401)
        return RedirectResponse(
            "/console/sign-in?" + urlencode({"next": exc.next_url}), status_code=303
        )

    async def forbidden(request: Request, exc: Exception) -> Response:
        _ = gettext_for(language_of(request.cookies.get(LANG_COOKIE)))
        return error_page(request, 403, _("Your role may not see this page."))

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(PageForbidden, forbidden)

#: How long a costly answer is reused: one about the current month or period
#: briefly, one about a past one (only an event reported late changes it) longer.
CURRENT_SECONDS = 15.0
PAST_SECONDS = 300.0


class Reused:
    """Costly answers (a month's report figures, a period's ranking: a few hundred
    milliseconds each at a million events) reused for a while, per key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, ...], tuple[float, Any]] = {}

    def get(self, key: tuple[str, ...], seconds: float, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            found = self._answers.get(key)
        if found is not None and found[0] > now:
            answer: T = found[1]
            return answer
        answer = compute()
        with self._lock:
            if len(self._answers) > 1000:
                self._answers.clear()
            self._answers[key] = (now + seconds, answer)
        return answer


def reused(request: Request) -> Reused:
    found: Reused | None = getattr(request.app.state, "console_reused", None)
    if found is None:
        found = Reused()
        request.app.state.console_reused = found
    return found


def check_csrf(session: Session, given: str | None) -> None:
    if not session.csrf_ok(given):
        raise InvalidCommand("csrf", "the form is stale or forged: reload the page")


def check_form_csrf(request: Request, given: str | None) -> None:
    """CSRF of a form that may be sent without a session (sign-in, the language
    switch): the session's token when signed in, else the pre-session cookie's."""
    known = request.cookies.get(FORM_COOKIE)
    if known and given and hmac.compare_digest(known, given):
        return
    session = sessions_of(request).find(request.cookies.get(COOKIE), datetime.now(UTC))
    if session is None or not session.csrf_ok(given):
        raise InvalidCommand("csrf", "the form is stale or forged: reload the page")


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"
