"""Category-level consent: a user withdraws chosen item categories from personalisation.

``GET /users/{user_id}/consent/categories`` and ``PUT`` (body ``{"withdrawn":
[...]}``, replacing the list) read and set the categories, which the consent
store keeps and logs (:meth:`ConsentStore.set_categories`). Served lists leave
out every item of a withdrawn category (:func:`withheld_items`, added to the
request's exclusions), the audit record names the categories
(``withheld_categories``), and training drops the user's interactions with
them (:func:`recsys.serving.drop_withdrawn_categories`). Only the user named
in the path may call these routes, like the consent routes.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Path
from pydantic import BaseModel, ConfigDict, Field

from recsys.serving._common import ERROR, MAX_ID_LENGTH, refusals
from recsys.serving._consent import ConsentStore
from recsys.serving._guards import Guards
from recsys.serving._holder import ModelHolder

UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External user id")]

__all__ = ["CategoriesIn", "CategoriesOut", "add_category_routes", "catalogue_categories", "withheld_items"]


class CategoriesIn(BaseModel):
    """The item categories to withdraw from personalisation (replaces the current list)."""

    model_config = ConfigDict(extra="forbid")

    withdrawn: list[Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]] = Field(max_length=100)


class CategoriesOut(BaseModel):
    user_id: str
    withdrawn: list[str] = Field(description="Categories whose items are left out of this user's lists")
    available: list[str] = Field(description="The categories of the served catalogue")
    not_in_catalogue: list[str] = Field(
        description="Withdrawn categories the served catalogue does not hold (they withhold nothing now)")


def catalogue_categories(items: pd.DataFrame) -> list[str]:
    """The distinct ``category`` values of a bundle's item table (empty if it has none)."""
    if "category" not in items.columns:
        return []
    return sorted(items["category"].dropna().astype(str).unique())


def withheld_items(items: pd.DataFrame, categories: Collection[str]) -> tuple[str, ...]:
    """External ids of the items whose category is in ``categories``.

    Examples
    --------
    >>> withheld_items(pd.DataFrame({"item_id": [1, 2, 3], "category": ["war", "drama", "war"]}), {"war"})
    ('1', '3')
    """
    if not categories or "category" not in items.columns:
        return ()
    hit = np.isin(items["category"].astype(str).to_numpy(), np.asarray(sorted(categories), dtype=str))
    return tuple(items["item_id"].astype(str).to_numpy()[hit])


def add_category_routes(app: FastAPI, holder: ModelHolder, consent: ConsentStore, guards: Guards) -> None:
    """``GET`` and ``PUT /users/{user_id}/consent/categories``, only for the user named in the path."""
    scoped = [Depends(guards.user)]

    def out(user_id: str) -> CategoriesOut:
        withdrawn = sorted(consent.withdrawn(user_id))
        available = catalogue_categories(holder.engine.served.bundle.items)
        return CategoriesOut(user_id=user_id, withdrawn=withdrawn, available=available,
                             not_in_catalogue=sorted(set(withdrawn) - set(available)))

    @app.get("/users/{user_id}/consent/categories", response_model=CategoriesOut, tags=["consent"],
             summary="The item categories a user withdrew from personalisation", dependencies=scoped,
             responses={**refusals("the user"), 503: {**ERROR, "description": "Consent store unavailable"}})
    def get_categories(user_id: UserId) -> CategoriesOut:
        return out(user_id)

    @app.put("/users/{user_id}/consent/categories", response_model=CategoriesOut, tags=["consent"],
             summary="Withdraw item categories from personalisation (replaces the list; effective next request)",
             dependencies=scoped,
             responses={**refusals("the user"), 400: {**ERROR, "description": "The body is not JSON"},
                        413: {**ERROR, "description": "The body is too large"},
                        503: {**ERROR, "description": "Consent store unavailable"}})
    def put_categories(user_id: UserId, body: CategoriesIn) -> CategoriesOut:
        # a category the catalogue lacks is kept (a later model may have it) and reported back
        consent.set_categories(user_id, body.withdrawn)
        return out(user_id)
