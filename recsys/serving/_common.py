"""Pieces the API routes and the page routes share: id bounds, JSON responses, audit records, model info."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel

from recsys._redact import redact_uri
from recsys.serving._audit import AuditLog, AuditRecord
from recsys.serving._consent import ConsentStore
from recsys.serving._engine import ServingEngine
from recsys.serving._holder import ModelHolder
from recsys.serving._schemas import ConsentOut, GateOut, ModelInfo, Recommendations

__all__ = ["ERROR", "HTML", "MAX_ID_LENGTH", "audit_list", "audit_record", "consent_out", "json_response",
           "model_info", "refusals"]

MAX_ID_LENGTH = 128
ERROR: dict[str, Any] = {"content": {"application/json": {"schema": {
    "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"],
}}}}
HTML: dict[str, Any] = {"content": {"text/html": {"schema": {"type": "string"}}}}


def refusals(who: str, *, html: bool = False) -> dict[int | str, dict[str, Any]]:
    """The 401 and 403 responses of an endpoint that only ``who`` may call (OpenAPI)."""
    body = HTML if html else ERROR
    return {401: {**body, "description": "No valid credential"},
            403: {**body, "description": f"A valid credential, but not {who}'s"}}


def json_response(result: BaseModel, request_id: str) -> Response:
    """The result as JSON, serialised once by pydantic (the route's response_model documents it)."""
    return Response(result.model_dump_json(), media_type="application/json",
                    headers={"X-Request-ID": request_id})


def consent_out(store: ConsentStore, user_id: str) -> ConsentOut:
    record = store.get(user_id)
    if record is None:
        return ConsentOut(user_id=user_id, personalisation=True, explicit=False,
                          created_at=None, updated_at=None, withdrawn_categories=sorted(store.withdrawn(user_id)))
    return ConsentOut(user_id=user_id, personalisation=record.personalisation, explicit=True,
                      created_at=record.created_at, updated_at=record.updated_at,
                      withdrawn_categories=sorted(store.withdrawn(user_id)))


def audit_record(audit: AuditLog, engine: ServingEngine, *, endpoint: str, user_id: str | None, k: int,
                 items: list[str], basis: str, reasons: list[str], explained: bool,
                 withheld: Sequence[str] = ()) -> str:
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
        withheld_categories=tuple(withheld),
    ))
    return request_id


def audit_list(audit: AuditLog, engine: ServingEngine, result: Recommendations, *, endpoint: str,
               explained: bool, withheld: Sequence[str] = ()) -> str:
    return audit_record(
        audit, engine, endpoint=endpoint, user_id=result.user_id, k=result.k,
        items=[i.item_id for i in result.items], basis=result.basis,
        reasons=[i.reason for i in result.items], explained=explained, withheld=withheld,
    )


def model_info(holder: ModelHolder) -> ModelInfo:
    engine = holder.engine
    ref = engine.served.ref
    return ModelInfo(
        name=ref.name,
        version=ref.version,
        alias=ref.alias,
        uri=redact_uri(ref.uri),
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
