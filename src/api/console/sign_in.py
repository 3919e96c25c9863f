"""Sign-in (a token exchanged for a session cookie), sign-out, the language switch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fieldledger.api.console.context import (
    NAV,
    PAGES,
    SessionDep,
    View,
    check_csrf,
    check_form_csrf,
    router,
    sessions_of,
)
from fieldledger.api.console.i18n import COOKIE as LANG_COOKIE
from fieldledger.api.console.i18n import (
    LANGUAGES,
    gettext_for,
    language_of,
)
from fieldledger.api.console.sessions import (
    CONSOLE_ROLES,
    COOKIE,
)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str | None = None) -> HTMLResponse:
    return View(request, None).render("sign_in.html", next=_safe_next(next), error=None)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=500)],
    csrf: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "/console",
) -> Response:
    check_form_csrf(request, csrf)
    page = View(request, None)
    _ = gettext_for(page.language)
    opened = sessions_of(request).open(token, datetime.now(UTC))
    if opened is None:
        return page.render(
            "sign_in.html", status=401, next=_safe_next(next),
            error=_("That token is not valid (unknown, expired or revoked)."),
        )  # fmt: skip
    session_id, session = opened
    if session.caller.role not in CONSOLE_ROLES:
        sessions_of(request).close(session_id)
        return page.render(
            "sign_in.html", status=403, next=_safe_next(next),
            error=_("The role %(role)s works through the API, not the console.",
                    role=session.caller.role.value),
        )  # fmt: skip
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE, session_id, httponly=True, samesite="strict", path="/console",
        secure=request.url.scheme == "https", max_age=int(
            (session.expires_at - datetime.now(UTC)).total_seconds()),
    )  # fmt: skip
    return response




@router.post("/sign-out")
def sign_out(
    request: Request, session: SessionDep, csrf: Annotated[str, Form(max_length=200)]
) -> Response:
    check_csrf(session, csrf)
    sessions_of(request).close(request.cookies.get(COOKIE))
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.post("/language")
def switch_language(
    request: Request,
    language: Annotated[str, Form(max_length=5)],
    csrf: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "/console",
) -> Response:
    """A cookie the pages read (no session needed: the sign-in page switches too)."""
    check_form_csrf(request, csrf)
    chosen = language if language in LANGUAGES else language_of(None)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        LANG_COOKIE, chosen, samesite="strict", path="/console", max_age=365 * 86400,
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.get("", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    first = next((p for p, _label in NAV if session.caller.role in PAGES[p]), "board")
    return RedirectResponse(f"/console/{first}", status_code=303)
