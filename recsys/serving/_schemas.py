"""Request and response schemas of the HTTP service (pydantic; they make the OpenAPI document).

Ids are strings on the wire (``"42"``), whatever their type in the bundle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

__all__ = [
    "Basis",
    "ConsentIn",
    "ConsentOut",
    "GateOut",
    "Health",
    "ItemExplanation",
    "ModelInfo",
    "ModelSummary",
    "Readiness",
    "Reason",
    "ReasonCode",
    "Recommendations",
    "RecommendedItem",
    "ReloadOut",
    "ReloadStatus",
    "SimilarItem",
    "SimilarItems",
]

Basis = Literal["history", "no_history", "opted_out", "unknown_user"]
ReasonCode = Literal["history", "weak_history", "popular"]
Method = Literal["shap", "als_explain", "representer", "popularity"]
Outcome = Literal["reloaded", "unchanged", "failed"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reason(_Out):
    """One item of the user's history and how much it raised the explained score."""

    item_id: str
    title: str
    weight: float = Field(description="Contribution to the explained score (or, for the "
                                      "similarity proxy, a cosine similarity)")


class ItemExplanation(_Out):
    """Why an item is in the list: a sentence and the history items behind it."""

    text: str = Field(description="Human-readable sentence shown to the user")
    method: Method = Field(description="shap: exact Shapley values over the history (EASE, "
                                       "item-kNN); als_explain: implicit's ALS decomposition; "
                                       "representer: BPR's folded-in score split over the "
                                       "history; popularity: no history used")
    reasons: list[Reason] = Field(description="Top history items with a positive weight, best first")
    explained_score: float = Field(description="The score the weights explain: base_value plus "
                                               "their sum (not for the similarity proxy)")
    base_value: float
    exact: bool = Field(description="Whether the weights are exact rather than estimated")
    faithful: bool = Field(description="Whether the weights are the model's own attribution "
                                       "(false for the similarity proxy)")
    popularity: int | None = Field(None, description="Training users of the item (popularity "
                                                     "explanations)")
    note: str | None = Field(None, description="What the explanation does not cover (e.g. a "
                                               "position set by fairness re-ranking)")


class RecommendedItem(_Out):
    item_id: str
    title: str | None
    rank: int = Field(ge=1)
    score: float = Field(description="The first-stage relevance score (re-ranking only reorders)")
    first_stage_rank: int | None = Field(
        None, ge=1, description="Position before fairness re-ranking (re-ranked models only)"
    )
    reason: ReasonCode
    explanation: ItemExplanation | None = None


class ModelSummary(_Out):
    name: str
    version: str | None


class Recommendations(_Out):
    """A user's list; ``personalised`` false and ``label`` saying why when no history was used."""

    user_id: str
    personalised: bool
    basis: Basis = Field(description="history: ranked with the user's history; no_history: known "
                                     "user without history; opted_out: personalisation turned off; "
                                     "unknown_user: not in the model")
    label: str = Field(description="Human-readable label of the list")
    model: ModelSummary
    reranker: str | None = Field(description="Fairness re-ranker of the model (null if none)")
    k: int
    items: list[RecommendedItem]
    excluded: list[str] = Field(description="Requested exclusions that were applied")
    unknown_exclusions: list[str] = Field(
        description="Requested exclusions not in the catalogue (ignored: they cannot be recommended)"
    )


class SimilarItem(_Out):
    item_id: str
    title: str | None
    rank: int = Field(ge=1)
    score: float


class SimilarItems(_Out):
    item_id: str
    title: str | None
    method: str = Field(description="How similarity is measured for this model")
    model: ModelSummary
    k: int
    items: list[SimilarItem]


class GateOut(_Out):
    result: str = Field(description="'pass', or 'unregistered' for a local bundle")
    summary: str
    failed: list[str]
    servable: bool


class ReloadStatus(_Out):
    time: datetime
    outcome: Outcome
    message: str


class ModelInfo(_Out):
    """The model being served and its gate decision."""

    name: str
    version: str | None
    alias: str | None
    uri: str
    bundle_name: str
    candidate: str | None
    first_stage: str
    reranker: str | None
    n_users: int
    n_items: int
    gate: GateOut
    loaded_at: datetime
    last_reload: ReloadStatus | None


class ReloadOut(_Out):
    outcome: Outcome
    message: str
    previous: ModelSummary
    current: ModelSummary


class Health(_Out):
    status: Literal["ok"]


class Readiness(_Out):
    status: Literal["ready", "not_ready"]
    model: ModelSummary
    problems: list[str]


class ConsentIn(BaseModel):
    """A user's choice about personalisation."""

    model_config = ConfigDict(extra="forbid")

    personalisation: StrictBool = Field(description="true: rank with my history; false: do not")


class ConsentOut(_Out):
    user_id: str
    personalisation: bool = Field(description="Whether personalisation is allowed now")
    explicit: bool = Field(description="Whether the user made a choice (else the default, allowed)")
    created_at: datetime | None
    updated_at: datetime | None
    withdrawn_categories: list[str] = Field(
        default_factory=list, description="Item categories left out of this user's lists (category-level consent)")
