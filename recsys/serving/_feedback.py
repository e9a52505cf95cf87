"""Feedback on served lists (clicks, "not interested"), written to the audit log beside the lists.

``POST /users/{user_id}/feedback`` with ``{"item_id": ..., "event": "click" |
"not_interested", "request_id": <the X-Request-ID of the list, optional>}``
writes one audit record with the audit log's fixed fields (none added, no user
attribute):

* ``endpoint`` = ``"feedback"``, ``basis`` = the event, ``k`` = 1;
* ``items`` = ``(item_id,)``;
* ``reasons`` = ``(request_id,)`` of the list the feedback is about, or
  ``("unlinked",)`` when the client sent none;
* ``model_name`` / ``model_version`` = the model serving at the time.

The route is scoped to the user like the consent routes: only the user named
in the path may post it. ``fairrec monitor`` credits each event to its window
and the user's group (click-through = clicks / lists served to the group).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Path
from pydantic import BaseModel, ConfigDict, Field

from recsys.serving._audit import AuditLog
from recsys.serving._common import ERROR, MAX_ID_LENGTH, audit_record, refusals
from recsys.serving._guards import Guards
from recsys.serving._holder import ModelHolder

__all__ = ["FEEDBACK_EVENTS", "FeedbackIn", "FeedbackOut", "add_feedback_route"]

#: the events a client may report
FEEDBACK_EVENTS = ("click", "not_interested")


class FeedbackIn(BaseModel):
    """One event about an item of a list the user was shown."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="The item the event is about")
    event: Literal["click", "not_interested"] = Field(description="What the user did")
    request_id: str | None = Field(None, min_length=1, max_length=64,
                                   description="X-Request-ID of the list the item was shown in")


class FeedbackOut(BaseModel):
    """The event as recorded."""

    user_id: str
    item_id: str
    event: str
    request_id: str = Field(description="The audit record's own request id")
    list_request_id: str | None


def add_feedback_route(app: FastAPI, holder: ModelHolder, audit: AuditLog, guards: Guards) -> None:
    """``POST /users/{user_id}/feedback``, only for the user named in the path."""

    @app.post(
        "/users/{user_id}/feedback",
        response_model=FeedbackOut,
        tags=["recommendations"],
        summary="Report a click or 'not interested' on a recommended item (written to the audit log)",
        dependencies=[Depends(guards.user)],
        responses={**refusals("the user"), 400: {**ERROR, "description": "The body is not JSON"},
                   413: {**ERROR, "description": "The body is too large"},
                   503: {**ERROR, "description": "Audit log unavailable"}},
    )
    def feedback(
        user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External user id")],
        body: FeedbackIn,
    ) -> FeedbackOut:
        request_id = audit_record(
            audit, holder.engine, endpoint="feedback", user_id=user_id, k=1, items=[body.item_id],
            basis=body.event, reasons=[body.request_id or "unlinked"], explained=False,
        )
        return FeedbackOut(user_id=user_id, item_id=body.item_id, event=body.event, request_id=request_id,
                           list_request_id=body.request_id)
