"""The sales view's pages (account list, account page, finance page) and its sign-in.

Registered on ``serving.web.web``. A browser signs in on ``/ui/login`` with the API
token and gets a signed, expiring, read-only session (``serving.security``); the
form carries a CSRF token and wrong tries are throttled with a back-off.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Query, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from serving.finance_view import render_finance
from serving.forecast.view import read_latest_forecast
from serving.score_history import read_score_trend
from serving.security import (
    COOKIE_NAME,
    CSRF_COOKIE,
    SESSION_SECONDS,
    client_address,
    read_cookie,
    safe_next,
)
from serving.state import ServiceState, current_state
from serving.views import (
    APP_JS,
    PAGE_SIZE,
    ListPage,
    render_account,
    render_bad_request,
    render_list,
    render_login,
    render_not_found,
)
from serving.web import AccountId, State, web

log = logging.getLogger("trialcast.serving")

Search = Annotated[str | None, Query(max_length=200)]


def page(path: str) -> Callable[[Any], Any]:
    """Register an HTML page of the sales view for GET and HEAD (link checkers, monitors)."""
    return web.api_route(
        path, methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )


Page = Annotated[int, Query(ge=1, le=1_000_000)]


@web.exception_handler(RequestValidationError)
async def bad_address(request: Request, exc: RequestValidationError) -> Response:
    """A sales-view address with a value it cannot take gets an HTML page naming the
    value (400); the JSON routes keep FastAPI's JSON error (reshaped to one shape)."""
    if not request.url.path.startswith("/ui"):
        return await request_validation_exception_handler(request, exc)
    first = exc.errors()[0] if exc.errors() else {}
    where = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body")]
    message = f"{'.'.join(where) or 'request'}: {first.get('msg', 'not valid')}"
    return HTMLResponse(render_bad_request(message), status_code=400)


@page("/ui/forecast")
def ui_forecast(state: State) -> HTMLResponse:
    """The finance page: the latest forecast with its range and picture."""
    return HTMLResponse(
        render_finance(
            read_latest_forecast(), company=state.config.company, currency=state.config.currency
        )
    )


@page("/ui")
def ui_list(
    state: State,
    persona: Annotated[str | None, Query(max_length=100)] = None,
    pql: Annotated[str | None, Query(max_length=3)] = None,
    q: Search = None,
    page: Page = 1,
) -> HTMLResponse:
    """The ranked account list (HTML), searchable by account id, a page at a time."""
    store = state.store
    flag = {"yes": True, "no": False}.get(pql or "")
    frame = store.ranked(persona=persona or None, pql=flag, limit=None, search=q)
    matched = len(frame)
    pages = max(1, -(-matched // PAGE_SIZE))
    page = min(page, pages)
    rows = frame.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return HTMLResponse(
        render_list(
            rows.to_dict("records"),
            total=len(store),
            page=ListPage(
                persona=persona or None,
                pql=flag,
                search=q or "",
                number=page,
                pages=pages,
                first_rank=(page - 1) * PAGE_SIZE + 1,
                matched=matched,
            ),
            as_of=store.as_of,
            company=state.config.company,
            window_days=state.config.trial.conversion_window_days,
            persona_rates=state.models.persona_rates,
        )
    )


@web.api_route("/ui/app.js", methods=["GET", "HEAD"], include_in_schema=False)
def ui_script() -> Response:
    """The sales view's only script (filters submit on change); CSP allows no inline code."""
    return Response(APP_JS, media_type="text/javascript")


@page("/ui/accounts/{account_id:path}")
def ui_account(state: State, account_id: AccountId) -> HTMLResponse:
    """One account's page: dates, score trend, waterfall and reasons (HTML)."""
    found = state.store.account(account_id)
    if found is None:
        return HTMLResponse(
            render_not_found(account_id, company=state.config.company), status_code=404
        )
    return HTMLResponse(
        render_account(
            found,
            company=state.config.company,
            trend=read_score_trend(state.store.path, account_id),
            window_days=state.config.trial.conversion_window_days,
            persona_rates=state.models.persona_rates,
        )
    )


def _login_page(
    state: ServiceState, *, next_path: str, failed: str | None = None, status: int = 200
) -> Response:
    cookie, form = state.signer.issue_csrf()
    response = HTMLResponse(
        render_login(failed=failed, company=state.config.company, csrf=form, next_path=next_path),
        status_code=status,
    )
    response.set_cookie(
        CSRF_COOKIE,
        cookie,
        httponly=True,
        samesite="strict",
        secure=True,
        max_age=3600,
        path="/ui/login",
    )
    return response


@page("/ui/login")
def ui_login_form(
    state: State, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    """The sign-in form (with its CSRF token; remembers the page asked for)."""
    return _login_page(state, next_path=safe_next(next))


@web.post("/ui/login", include_in_schema=False)
async def ui_login(request: Request) -> Response:
    """Check the token from the form (CSRF, then the throttle); on success start a
    signed read-only session and go to the page that was asked for."""
    state = current_state()
    body = (await request.body())[:8192].decode("utf-8", errors="replace")
    form = parse_qs(body)
    token = (form.get("token") or [""])[0]
    next_path = safe_next((form.get("next") or [""])[0])
    csrf_cookie = read_cookie(request.scope, CSRF_COOKIE) or ""
    if not state.signer.valid_csrf(csrf_cookie, (form.get("csrf") or [""])[0]):
        return _login_page(
            state,
            next_path=next_path,
            failed="The form expired; please sign in again.",
            status=403,
        )
    client = client_address(request.scope)
    wait = state.throttle.retry_after(client)
    if wait > 0:
        response = _login_page(
            state,
            next_path=next_path,
            failed=f"Too many wrong tries; wait {wait:.0f} s and try again.",
            status=429,
        )
        response.headers["Retry-After"] = str(max(1, round(wait + 0.5)))
        return response
    if not hmac.compare_digest(token.encode(), state.token.encode()):
        state.throttle.failed(client)
        log.warning("wrong sales-view token from %s", client)
        return _login_page(
            state, next_path=next_path, failed="That token is not valid.", status=401
        )
    state.throttle.succeeded(client)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        state.signer.issue_session(),
        httponly=True,
        samesite="strict",
        secure=True,
        max_age=SESSION_SECONDS,
        path="/ui",
    )
    response.delete_cookie(CSRF_COOKIE, path="/ui/login")
    return response


@web.get("/ui/logout", include_in_schema=False)
def ui_logout(request: Request) -> Response:
    """End the session on the server (its cookie no longer opens a page) and forget it."""
    state = current_state()
    session = read_cookie(request.scope, COOKIE_NAME)
    sid = None if session is None else state.signer.session_id(session)
    if sid is not None:
        state.revocations.revoke(sid, until=time.time() + SESSION_SECONDS)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/ui", secure=True, httponly=True, samesite="strict")
    return response
