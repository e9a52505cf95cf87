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

Status codes: 200; 303 (form post, page sign-in); 400 (a Host header not in
``allowed_hosts``); 401 (no valid credential); 403 (a valid credential of someone
else, or a form without its CSRF token); 404 (unknown item for similar items); 409
(failed reload: the old model is still served); 413 (body over ``max_body_bytes``);
422 (bad parameter: the body's ``message`` names it); 503 (a store is unavailable).
Who may call what: :mod:`recsys.serving._guards` and ``docs/security.md``.
"""


import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.middleware.trustedhost import TrustedHostMiddleware

from recsys.serving._audit import AuditLog, open_audit_log
from recsys.serving._batcher import ListBatcher
from recsys.serving._common import (
    ERROR,
    MAX_ID_LENGTH,
    audit_list,
    audit_record,
    consent_out,
    json_response,
    model_info,
    refusals,
)
from recsys.serving._consent import ConsentStore, StoreUnavailableError
from recsys.serving._docs import add_docs_routes
from recsys.serving._engine import ListRequest, UnknownItemError
from recsys.serving._feedback import add_feedback_route
from recsys.serving._categories import add_category_routes, withheld_items
from recsys.serving._guards import Guards
from recsys.serving._holder import ModelHolder, ReloadPoller
from recsys.serving._page_routes import add_page_routes
from recsys.serving._schemas import (
    ConsentIn,
    ConsentOut,
    Health,
    ModelInfo,
    Readiness,
    Recommendations,
    ReloadOut,
    SimilarItems,
)
from recsys.serving._settings import ServeSettings
from recsys.serving._web import BodySizeLimit, FormGuard

__all__ = ["create_app"]

_MAX_SHOWN = 80  # characters of a rejected value quoted back in a 422


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN - 3] + "..."


def _message(errors: list[dict[str, Any]]) -> str:
    """One readable line per validation error: where, what was wrong, what was received."""
    where = {"query": "query parameter", "path": "path parameter", "body": "body field",
             "header": "header"}
    parts = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        kind = where.get(loc[0], loc[0]) if loc else "request"
        name = ".".join(loc[1:]) or "(whole body)"
        parts.append(f"{kind} {name!r}: {e.get('msg', 'invalid')}; got {_shown(e.get('input'))}")
    return "; ".join(parts)


def _trimmed(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's error list with every long rejected value cut short: a 422 never echoes a large body."""
    return [{**e, "input": _shown(e["input"])} if "input" in e and len(repr(e["input"])) > _MAX_SHOWN
            else e for e in errors]


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
    ...                              audit_path=pathlib.Path(d) / "a.jsonl", insecure_local=True))
    Traceback (most recent call last):
    ...
    recsys.serving._source.ModelSourceError: model: ... is a local bundle directory, which has no gate result; ...
    """
    holder = ModelHolder.load(settings)
    consent = ConsentStore(settings.consent_path)
    try:
        audit = open_audit_log(settings.audit_path, max_bytes=settings.audit_max_bytes,
                               backups=settings.audit_backups)
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
        openapi_url=None,  # served by add_docs_routes, for the operator only
        docs_url=None,
        redoc_url=None,
        title="fairrec",
        version="1",
        description=(
            "Recommendations with explanations from the model behind a registry alias, only if it "
            "passed fairrec's fairness and quality gate. Users can turn personalisation off; every "
            "list served is audited."
        ),
        lifespan=lifespan,
        dependencies=[Depends(_known_query_parameters)],
    )
    app.state.holder = holder
    app.state.consent = consent
    app.state.audit = audit
    guards = Guards(settings)
    # without credentials there is no stable secret: the form tokens' key lives as long as the process
    forms = FormGuard(settings.user_token_secret or secrets.token_bytes(32))
    _add_error_handlers(app)
    _add_api_routes(app, settings, holder, consent, audit, guards)
    add_feedback_route(app, holder, audit, guards)
    add_category_routes(app, holder, consent, guards)
    add_page_routes(app, settings, holder, consent, audit, guards, forms)
    add_docs_routes(app, guards.operator)
    # the last added runs first: the Host header is checked before anything else
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts or ()))
    return app


_ALLOWED_QUERY: dict[int, frozenset[str]] = {}


def _query_names(dependant: Any) -> set[str]:
    """The query parameters a route declares, its dependencies' included (FastAPI's ``Dependant`` tree)."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _known_query_parameters(request: Request) -> None:
    """Refuse (422) a query parameter the route does not declare: a typo such as ``?K=5`` is not ignored.

    Hand-written: FastAPI ignores undeclared query parameters and has no switch to forbid them.
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _ALLOWED_QUERY.get(id(route))
    if allowed is None:
        allowed = frozenset(_query_names(dependant))
        _ALLOWED_QUERY[id(route)] = allowed
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise RequestValidationError([{
            "type": "extra_forbidden", "loc": ("query", unknown[0]), "input": request.query_params.get(unknown[0]),
            "msg": f"unknown query parameter; allowed: {', '.join(sorted(allowed)) or 'none'}",
        }])


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _trimmed(jsonable_encoder(exc.errors()))
        return JSONResponse(status_code=422, content={"detail": errors, "message": _message(errors)})

    @app.exception_handler(StoreUnavailableError)
    async def unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})


UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External user id")]


def _add_api_routes(app: FastAPI, settings: ServeSettings, holder: ModelHolder,
                    consent: ConsentStore, audit: AuditLog, guards: Guards) -> None:
    batcher = ListBatcher(holder)
    the_user = [Depends(guards.user)]
    any_user = [Depends(guards.any_user)]
    operator = [Depends(guards.operator)]

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

    @app.get("/model", response_model=ModelInfo, tags=["operations"], dependencies=operator,
             summary="The served model: name, version and gate summary (operator)",
             responses=refusals("the operator"))
    def model() -> ModelInfo:
        return model_info(holder)

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
        dependencies=the_user,
        responses={**refusals("the user"),
                   503: {**ERROR, "description": "Consent store or audit log unavailable"}},
    )
    async def recommendations(
        user_id: UserId,
        k: Annotated[int, Query(ge=1, le=settings.k_max, description="Number of items")] = settings.k_default,
        explain: Annotated[bool, Query(description="Add an explanation to every item")] = False,
        exclude: Annotated[list[Annotated[str, Query(max_length=MAX_ID_LENGTH)]], Query(
            max_length=settings.max_exclusions, description="Item ids never to recommend (repeat the parameter)",
        )] = [],  # noqa: B006 - FastAPI copies defaults per request
    ) -> Response:
        withheld = sorted(consent.withdrawn(user_id))  # categories withdrawn from personalisation
        request = ListRequest(user_id=user_id, k=k, explain=explain,
                              exclude=tuple(exclude) + withheld_items(holder.engine.served.bundle.items, withheld),
                              personalise=consent.allows_personalisation(user_id))
        engine, result = await batcher.recommend(request)
        return json_response(result, audit_list(audit, engine, result, endpoint="recommendations",
                                                explained=explain, withheld=withheld))

    @app.get(
        "/items/{item_id}/similar",
        response_model=SimilarItems,
        tags=["recommendations"],
        summary="Items similar to an item",
        dependencies=any_user,
        responses={**refusals("a user"), 404: {**ERROR, "description": "Unknown item"},
                   503: {**ERROR, "description": "Audit log unavailable"}},
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
        request_id = audit_record(
            audit, engine, endpoint="similar", user_id=None, k=k,
            items=[i.item_id for i in result.items], basis="item",
            reasons=["similar_item"] * len(result.items), explained=False,
        )
        return json_response(result, request_id)

    @app.get("/users/{user_id}/consent", response_model=ConsentOut, tags=["consent"],
             summary="Whether personalisation is allowed for a user", dependencies=the_user,
             responses={**refusals("the user"), 503: {**ERROR, "description": "Consent store unavailable"}})
    def get_consent(user_id: UserId) -> ConsentOut:
        return consent_out(consent, user_id)

    @app.put("/users/{user_id}/consent", response_model=ConsentOut, tags=["consent"],
             summary="Allow or stop personalisation (effective from the next request)",
             dependencies=the_user,
             responses={**refusals("the user"), 400: {**ERROR, "description": "The body is not JSON"},
                        413: {**ERROR, "description": "The body is too large"},
                        503: {**ERROR, "description": "Consent store unavailable"}})
    def put_consent(user_id: UserId, body: ConsentIn) -> ConsentOut:
        consent.set(user_id, personalisation=body.personalisation)
        return consent_out(consent, user_id)

    @app.post(
        "/admin/reload",
        response_model=ReloadOut,
        tags=["operations"],
        summary="Load the model the URI points at now (e.g. after the champion alias moved) (operator)",
        dependencies=operator,
        responses={
            **refusals("the operator"),
            409: {"model": ReloadOut, "description": "Reload failed; the previous model is still served"},
        },
    )
    def reload() -> ReloadOut | JSONResponse:
        out = holder.reload()
        if out.outcome == "failed":
            return JSONResponse(status_code=409, content=jsonable_encoder(out))
        return out


