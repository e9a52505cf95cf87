"""The transparency page's routes: the page (a user's list and reasons) and its personalisation form.

With authentication, the application links its user to ``/transparency?token=USER_TOKEN``;
the token goes into an ``HttpOnly``, ``SameSite=Lax`` cookie scoped to the page and the
browser is sent on to ``/transparency`` (the token leaves the address bar). The page then
shows that user, and only that user. The form needs the session and a CSRF token
(:class:`~recsys.serving._web.FormGuard`). Every answer is HTML with a CSP, anti-framing
and no-sniffing headers; refusals are HTML pages with the status 401 or 403.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from recsys.serving._audit import AuditLog
from recsys.serving._common import ERROR, HTML, MAX_ID_LENGTH, audit_list, consent_out, model_info, refusals
from recsys.serving._categories import withheld_items
from recsys.serving._consent import ConsentStore
from recsys.serving._guards import SESSION_COOKIE, Bearer, Guards, Session
from recsys.serving._holder import ModelHolder
from recsys.serving._page import FORM, PAGE, page_csp, page_path, render_error, render_page
from recsys.serving._settings import ServeSettings
from recsys.serving._web import CSRF_COOKIE, CSRF_FIELD, FormGuard, html_headers

__all__ = ["add_page_routes"]

NOT_SIGNED_IN = "Not signed in: open this page from the application you use (its link signs you in)."


def add_page_routes(app: FastAPI, settings: ServeSettings, holder: ModelHolder, consent: ConsentStore,
                    audit: AuditLog, guards: Guards, forms: FormGuard) -> None:
    lookup = not settings.authenticated
    headers = html_headers(page_csp())

    def error(message: str, status: int) -> HTMLResponse:
        return HTMLResponse(render_error(message, lookup=lookup), status_code=status, headers=headers)

    def signed_in(credentials: Bearer, session: Session) -> str:
        token = credentials.credentials if credentials is not None else session
        if not token:
            raise HTTPException(401, NOT_SIGNED_IN)
        return guards.user_of(token)

    form_schema = {
        "type": "object",
        "required": ["user_id", "personalisation", CSRF_FIELD],
        "properties": {
            "user_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
            "personalisation": {"type": "string", "enum": ["on", "off"]},
            CSRF_FIELD: {"type": "string", "description": "The token in the page's form"},
        },
    }

    @app.get(PAGE, response_class=HTMLResponse, tags=["transparency"],
             summary="Your recommendations and why: a page with a personalisation switch",
             responses={200: HTML, 303: {"description": "Signed in: on to the page"},
                        **refusals("the user", html=True),
                        503: {**ERROR, "description": "A store is unavailable"}})
    def page(
        request: Request,
        credentials: Bearer,
        session: Session,
        user_id: Annotated[str | None, Query(
            min_length=1, max_length=MAX_ID_LENGTH,
            description="Whose page (without authentication); with it, only the signed-in user's")] = None,
        token: Annotated[str | None, Query(
            max_length=4096, description="A user token: signs the browser in and redirects to the page")] = None,
    ) -> Response:
        secure = request.url.scheme == "https"
        if guards.enabled:
            try:
                if token is not None:
                    guards.user_of(token)
                    response = RedirectResponse(PAGE, status_code=303, headers=headers)
                    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                                        secure=secure, path=PAGE)
                    return response
                subject = signed_in(credentials, session)
                if user_id is not None:
                    guards.same_user(subject, user_id)
            except HTTPException as exc:
                return error(str(exc.detail), exc.status_code)
            user_id = subject
        info = model_info(holder)
        nonce = request.cookies.get(CSRF_COOKIE) or forms.new_nonce()
        if user_id is None:
            response = HTMLResponse(render_page(model=info, user_id=None, recommendations=None, consent=None,
                                                lookup=lookup), headers=headers)
        else:
            engine = holder.engine
            withheld = sorted(consent.withdrawn(user_id))  # categories withdrawn from personalisation
            result = engine.recommend(user_id, k=settings.k_default, explain=True,
                                      personalise=consent.allows_personalisation(user_id),
                                      exclude=withheld_items(engine.served.bundle.items, withheld))
            request_id = audit_list(audit, engine, result, endpoint="transparency", explained=True,
                                    withheld=withheld)
            html = render_page(model=info, user_id=user_id, recommendations=result,
                               consent=consent_out(consent, user_id),
                               csrf_token=forms.token(nonce, user_id), lookup=lookup)
            response = HTMLResponse(html, headers={**headers, "X-Request-ID": request_id})
        if request.cookies.get(CSRF_COOKIE) != nonce:
            response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="strict", secure=secure, path=PAGE)
        return response

    @app.post(
        FORM,
        tags=["transparency"],
        summary="The page's personalisation switch (an HTML form post; redirects to the page)",
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/x-www-form-urlencoded": {"schema": form_schema}}}},
        responses={303: {"description": "Redirect to the page"},
                   **refusals("the user", html=True),
                   413: {**ERROR, "description": "The body is too large"},
                   422: {**HTML, "description": "Missing or invalid form field"},
                   503: {**ERROR, "description": "Consent store unavailable"}},
    )
    async def switch(request: Request, credentials: Bearer, session: Session) -> Response:
        subject = None
        if guards.enabled:
            try:
                subject = signed_in(credentials, session)
            except HTTPException as exc:
                return error(str(exc.detail), exc.status_code)
        # parsed by hand: FastAPI's Form() needs python-multipart, which fairrec does not depend on
        body = await request.body()
        fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        user_ids = fields.get("user_id", [])
        choice = fields.get("personalisation", [])
        csrf = fields.get(CSRF_FIELD, [])
        bound = subject if subject is not None else (user_ids[0] if len(user_ids) == 1 else None)
        refused = forms.check(csrf[0] if len(csrf) == 1 else None, cookie=request.cookies.get(CSRF_COOKIE),
                              user_id=bound)
        if refused is not None:
            return error(f"form refused: {refused}", 403)
        problem = None
        if len(user_ids) != 1 or not 1 <= len(user_ids[0]) <= MAX_ID_LENGTH:
            problem = f"form field 'user_id': expected one id of 1 to {MAX_ID_LENGTH} characters, got {user_ids!r}"
        elif choice not in (["on"], ["off"]):
            problem = f"form field 'personalisation': expected 'on' or 'off', got {choice!r}"
        if problem is not None:
            return error(problem, 422)
        if subject is not None and subject != user_ids[0]:
            return error("authorization: the form names another user than the one signed in", 403)
        consent.set(user_ids[0], personalisation=choice[0] == "on")
        target = PAGE if guards.enabled else page_path(user_ids[0])
        return RedirectResponse(target, status_code=303, headers=headers)
