"""The OpenAPI document and Swagger UI, for the operator, with Swagger UI's files served locally.

FastAPI's own ``/docs`` loads Swagger UI from a CDN (blank offline) and is open to
anyone. Here ``/openapi.json`` and ``/docs`` need the operator token, and Swagger
UI's script, style sheet and icon come from the ``fastapi-offline`` package (which
ships them) under ``/docs/static``: public files, the same for every deployment.
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from recsys.serving._web import csp_hash, html_headers

__all__ = ["DOCS", "OPENAPI", "STATIC", "add_docs_routes"]

OPENAPI = "/openapi.json"
DOCS = "/docs"
STATIC = "/docs/static"


def _static_directory() -> str:
    return str(files("fastapi_offline").joinpath("static"))


def docs_html(title: str) -> tuple[str, str]:
    """Swagger UI's page and its Content-Security-Policy (its inline script allowed by hash)."""
    page = get_swagger_ui_html(
        openapi_url=OPENAPI,
        title=f"{title} - Swagger UI",
        swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC}/favicon.png",
        oauth2_redirect_url=None,
        swagger_ui_parameters={"validatorUrl": None},  # no call to swagger.io's validator
    ).body.decode("utf-8")
    scripts = " ".join(csp_hash(s) for s in re.findall(r"<script>(.*?)</script>", page, flags=re.S))
    csp = (
        f"default-src 'none'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return page, csp


def add_docs_routes(app: FastAPI, operator: Any) -> None:
    """``GET /openapi.json`` and ``GET /docs`` behind ``operator`` (a dependency); static files public."""
    page, csp = docs_html(app.title)

    @app.get(OPENAPI, include_in_schema=False, dependencies=[Depends(operator)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(DOCS, include_in_schema=False, dependencies=[Depends(operator)])
    def docs() -> HTMLResponse:
        return HTMLResponse(page, headers=html_headers(csp))

    app.mount(STATIC, StaticFiles(directory=_static_directory()), name="swagger-ui-static")
