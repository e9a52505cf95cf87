"""The FastAPI application: routes over a :class:`ModelHolder`, a consent store and an audit log.

:func:`create_app` does all the loading up front (model, consent store, audit
log), so a model that may not be served, or a store that cannot be opened,
fails before a port is bound. Every response for a list is written to the
audit log first; if that fails the request fails with 503 (nothing is served
unaudited).

The list endpoints are ``async`` and compute in the event loop: the work is
CPU-bound and holds the GIL, so a thread pool would add hand-offs and
unfair scheduling (a worse tail) without adding parallelism. Requests for
lists that arrive together are computed together (:class:`ListBatcher`).
Reloads (downloads) and the HTML page run in the thread pool.

Status codes: 200; 303 (form post); 401 (admin token); 404 (unknown item for
similar items); 409 (failed reload: the old model is still served); 422 (bad
parameter: the body's ``message`` names it); 503 (a store is unavailable).
"""


import hmac
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from recsys.serving._audit import AuditLog, AuditRecord, open_audit_log
from recsys.serving._batcher import ListBatcher
from recsys.serving._consent import ConsentStore, StoreUnavailableError
from recsys.serving._engine import ListRequest, ServingEngine, UnknownItemError
from recsys.serving._holder import ModelHolder, ReloadPoller
from recsys.serving._page import FORM, PAGE, page_path, render_error, render_page
from recsys.serving._schemas import (
    ConsentIn,
    ConsentOut,
    GateOut,
    Health,
    ModelInfo,
    Readiness,
    Recommendations,
    ReloadOut,
    SimilarItems,
)
from recsys.serving._settings import ServeSettings

__all__ = ["create_app"]

MAX_ID_LENGTH = 128
_ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"],
}}}}
_HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}


def _message(errors: list[dict[str, Any]]) -> str:
    """One readable line per validation error: where, what was wrong, what was received."""
    where = {"query": "query parameter", "path": "path parameter", "body": "body field",
             "header": "header"}
    parts = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        kind = where.get(loc[0], loc[0]) if loc else "request"
        name = ".".join(loc[1:]) or "(whole body)"
        received = repr(e.get("input"))
        received = received if len(received) <= 80 else received[:77] + "..."
        parts.append(f"{kind} {name!r}: {e.get('msg', 'invalid')}; got {received}")
    return "; ".join(parts)


def _json(result: BaseModel, request_id: str) -> Response:
    """The result as JSON, serialised once by pydantic (the route's response_model documents it)."""
    return Response(result.model_dump_json(), media_type="application/json",
                    headers={"X-Request-ID": request_id})


def _consent_out(store: ConsentStore, user_id: str) -> ConsentOut:
    record = store.get(user_id)
    if record is None:
        return ConsentOut(user_id=user_id, personalisation=True, explicit=False,
                          created_at=None, updated_at=None)
    return ConsentOut(user_id=user_id, personalisation=record.personalisation, explicit=True,
                      created_at=record.created_at, updated_at=record.updated_at)


def create_app(settings: ServeSettings) -> FastAPI:
    """The HTTP service for ``settings`` (model loaded and gate-checked, stores opened).

    Raises
    ------
    GateRefusedError
        The model version did not pass the gate or is not servable.
    ModelSourceError
        The model cannot be found, downloaded or loaded.
    StoreUnavailableError
        The consent store or the audit log cannot be opened.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     create_app(ServeSettings(model=d, consent_path=pathlib.Path(d) / "c.sqlite",
    ...                              audit_path=pathlib.Path(d) / "a.jsonl"))
    Traceback (most recent call last):
    ...
    recsys.serving._source.ModelSourceError: model: ... is a local bundle directory, which has no gate result; ...
    """
    holder = ModelHolder.load(settings)
    consent = ConsentStore(settings.consent_path)
    try:
        audit = open_audit_log(settings.audit_path)
    except Exception:
        consent.close()
        raise
    poller = None if settings.reload_interval is None else ReloadPoller(holder, settings.reload_interval)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if poller is not None:
            poller.start()
        try:
            yield
        finally:
            if poller is not None:
                poller.stop()
            consent.close()
            audit.close()

    app = FastAPI(
        title="fairrec",
        version="1",
        description=(
            "Recommendations with explanations from the model behind a registry alias, only if it "
            "passed fairrec's fairness and quality gate. Users can turn personalisation off; every "
            "list served is audited."
        ),
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.consent = consent
    app.state.audit = audit
    _add_error_handlers(app)
    _add_api_routes(app, settings, holder, consent, audit)
    _add_page_routes(app, settings, holder, consent, audit)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors())
        return JSONResponse(status_code=422, content={"detail": errors, "message": _message(errors)})

    @app.exception_handler(StoreUnavailableError)
    async def unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})


def _audit(audit: AuditLog, engine: ServingEngine, *, endpoint: str, user_id: str | None, k: int,
           items: list[str], basis: str, reasons: list[str], explained: bool) -> str:
    request_id = uuid.uuid4().hex
    audit.record(AuditRecord(
        time=datetime.now(UTC).isoformat(),
        request_id=request_id,
        endpoint=endpoint,
        user_id=user_id,
        model_name=engine.summary.name,
        model_version=engine.summary.version,
        k=k,
        items=tuple(items),
        basis=basis,
        reasons=tuple(reasons),
        explained=explained,
    ))
    return request_id


def _audit_list(audit: AuditLog, engine: ServingEngine, result: Recommendations, *, endpoint: str,
                explained: bool) -> str:
    return _audit(
        audit, engine, endpoint=endpoint, user_id=result.user_id, k=result.k,
        items=[i.item_id for i in result.items], basis=result.basis,
        reasons=[i.reason for i in result.items], explained=explained,
    )


def _model_info(holder: ModelHolder) -> ModelInfo:
    engine = holder.engine
    ref = engine.served.ref
    return ModelInfo(
        name=ref.name,
        version=ref.version,
        alias=ref.alias,
        uri=ref.uri,
        bundle_name=engine.served.bundle.name,
        candidate=ref.candidate,
        first_stage=type(engine.model).__name__,
        reranker=engine.reranker_key,
        n_users=engine.n_users,
        n_items=engine.n_items,
        gate=GateOut(result=ref.gate.result, summary=ref.gate.summary,
                     failed=list(ref.gate.failed), servable=ref.gate.servable),
        loaded_at=engine.served.loaded_at,
        last_reload=holder.last_reload,
    )


UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External user id")]


def _add_api_routes(app: FastAPI, settings: ServeSettings, holder: ModelHolder,
                    consent: ConsentStore, audit: AuditLog) -> None:
    batcher = ListBatcher(holder)

    @app.get("/health", response_model=Health, tags=["operations"], summary="Liveness")
    def health() -> Health:
        return Health(status="ok")

    @app.get("/ready", response_model=Readiness, tags=["operations"], summary="Readiness",
             responses={503: {"model": Readiness, "description": "A store is unavailable"}})
    def ready(response: Response) -> Readiness:
        problems = []
        for store in (consent, audit):
            try:
                store.ping()
            except StoreUnavailableError as exc:
                problems.append(str(exc))
        if problems:
            response.status_code = 503
        return Readiness(status="not_ready" if problems else "ready",
                         model=holder.engine.summary, problems=problems)

    @app.get("/model", response_model=ModelInfo, tags=["operations"],
             summary="The served model: name, version and gate summary")
    def model() -> ModelInfo:
        return _model_info(holder)

    @app.get(
        "/users/{user_id}/recommendations",
        response_model=Recommendations,
        tags=["recommendations"],
        summary="Top-k recommendations for a user",
        description=(
            "Unknown users, users without history and users who turned personalisation off get "
            "non-personalised (popular) items, with `personalised: false` and a label saying why. "
            "Excluded item ids that are not in the catalogue are ignored and listed in "
            "`unknown_exclusions`."
        ),
        responses={503: {**_ERROR, "description": "Consent store or audit log unavailable"}},
    )
    async def recommendations(
        user_id: UserId,
        k: Annotated[int, Query(ge=1, le=settings.k_max, description="Number of items")] = settings.k_default,
        explain: Annotated[bool, Query(description="Add an explanation to every item")] = False,
        exclude: Annotated[list[Annotated[str, Query(max_length=MAX_ID_LENGTH)]], Query(
            max_length=settings.max_exclusions, description="Item ids never to recommend (repeat the parameter)",
        )] = [],  # noqa: B006 - FastAPI copies defaults per request
    ) -> Response:
        request = ListRequest(user_id=user_id, k=k, explain=explain, exclude=tuple(exclude),
                              personalise=consent.allows_personalisation(user_id))
        engine, result = await batcher.recommend(request)
        return _json(result, _audit_list(audit, engine, result, endpoint="recommendations",
                                         explained=explain))

    @app.get(
        "/items/{item_id}/similar",
        response_model=SimilarItems,
        tags=["recommendations"],
        summary="Items similar to an item",
        responses={404: {**_ERROR, "description": "Unknown item"},
                   503: {**_ERROR, "description": "Audit log unavailable"}},
    )
    async def similar(
        item_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
        k: Annotated[int, Query(ge=1, le=settings.k_max)] = settings.k_default,
    ) -> Response:
        engine = holder.engine
        try:
            result = engine.similar(item_id, k=k)
        except UnknownItemError as exc:
            return JSONResponse(status_code=404, content={"detail": str(exc)})
        request_id = _audit(
            audit, engine, endpoint="similar", user_id=None, k=k,
            items=[i.item_id for i in result.items], basis="item",
            reasons=["similar_item"] * len(result.items), explained=False,
        )
        return _json(result, request_id)

    @app.get("/users/{user_id}/consent", response_model=ConsentOut, tags=["consent"],
             summary="Whether personalisation is allowed for a user",
             responses={503: {**_ERROR, "description": "Consent store unavailable"}})
    def get_consent(user_id: UserId) -> ConsentOut:
        return _consent_out(consent, user_id)

    @app.put("/users/{user_id}/consent", response_model=ConsentOut, tags=["consent"],
             summary="Allow or stop personalisation (effective from the next request)",
             responses={400: {**_ERROR, "description": "The body is not JSON"},
                        503: {**_ERROR, "description": "Consent store unavailable"}})
    def put_consent(user_id: UserId, body: ConsentIn) -> ConsentOut:
        consent.set(user_id, personalisation=body.personalisation)
        return _consent_out(consent, user_id)

    @app.post(
        "/admin/reload",
        response_model=ReloadOut,
        tags=["operations"],
        summary="Load the model the URI points at now (e.g. after the champion alias moved)",
        responses={
            401: {**_ERROR, "description": "Missing or wrong X-Admin-Token"},
            409: {"model": ReloadOut, "description": "Reload failed; the previous model is still served"},
        },
    )
    def reload(
        x_admin_token: Annotated[str | None, Header(max_length=1024)] = None,
    ) -> ReloadOut | JSONResponse:
        if settings.admin_token is not None and not hmac.compare_digest(
            (x_admin_token or "").encode(), settings.admin_token.encode()
        ):
            return JSONResponse(status_code=401, content={"detail": "X-Admin-Token: missing or wrong"})
        out = holder.reload()
        if out.outcome == "failed":
            return JSONResponse(status_code=409, content=jsonable_encoder(out))
        return out


def _add_page_routes(app: FastAPI, settings: ServeSettings, holder: ModelHolder,
                     consent: ConsentStore, audit: AuditLog) -> None:
    form_schema = {
        "type": "object",
        "required": ["user_id", "personalisation"],
        "properties": {
            "user_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
            "personalisation": {"type": "string", "enum": ["on", "off"]},
        },
    }

    @app.get(PAGE, response_class=HTMLResponse, tags=["transparency"],
             summary="Your recommendations and why: a page with a personalisation switch",
             responses={200: _HTML, 503: {**_ERROR, "description": "A store is unavailable"}})
    def page(
        user_id: Annotated[str | None, Query(min_length=1, max_length=MAX_ID_LENGTH)] = None,
    ) -> HTMLResponse:
        info = _model_info(holder)
        if user_id is None:
            return HTMLResponse(render_page(model=info, user_id=None, recommendations=None, consent=None))
        engine = holder.engine
        result = engine.recommend(user_id, k=settings.k_default, explain=True,
                                  personalise=consent.allows_personalisation(user_id))
        request_id = _audit_list(audit, engine, result, endpoint="transparency", explained=True)
        html = render_page(model=info, user_id=user_id, recommendations=result,
                           consent=_consent_out(consent, user_id))
        return HTMLResponse(html, headers={"X-Request-ID": request_id})

    @app.post(
        FORM,
        tags=["transparency"],
        summary="The page's personalisation switch (an HTML form post; redirects to the page)",
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/x-www-form-urlencoded": {"schema": form_schema}}}},
        responses={303: {"description": "Redirect to the page"},
                   422: {**_HTML, "description": "Missing or invalid form field"},
                   503: {**_ERROR, "description": "Consent store unavailable"}},
    )
    async def switch(request: Request) -> Response:
        # parsed by hand: FastAPI's Form() needs python-multipart, which fairrec does not depend on
        body = await request.body()
        fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        user_ids = fields.get("user_id", [])
        choice = fields.get("personalisation", [])
        problem = None
        if len(user_ids) != 1 or not 1 <= len(user_ids[0]) <= MAX_ID_LENGTH:
            problem = f"form field 'user_id': expected one id of 1 to {MAX_ID_LENGTH} characters, got {user_ids!r}"
        elif choice not in (["on"], ["off"]):
            problem = f"form field 'personalisation': expected 'on' or 'off', got {choice!r}"
        if problem is not None:
            return HTMLResponse(render_error(problem), status_code=422)
        consent.set(user_ids[0], personalisation=choice[0] == "on")
        return RedirectResponse(page_path(user_ids[0]), status_code=303)
