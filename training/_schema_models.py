"""The ``models[]`` section of the experiment config: model parameters, mitigation steps and sweeps."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from training._schema_base import MAX_SEED, Section

__all__ = ["Mitigation", "ModelSpec", "Sweep"]


# ------------------------------------------------------------------- models
class PopularityParams(Section):
    pass


class ItemKNNParams(Section):
    k_neighbours: int = Field(100, ge=1)
    similarity: Literal["cosine", "bm25", "tfidf"] = "cosine"
    bm25_k1: float = Field(1.2, gt=0.0)
    bm25_b: float = Field(0.75, ge=0.0, le=1.0)


class ALSParams(Section):
    factors: int = Field(64, ge=1, le=4096)
    regularization: float = Field(0.05, ge=0.0)
    alpha: float = Field(1.0, gt=0.0)
    iterations: int = Field(15, ge=1, le=1000)
    random_state: int | None = Field(None, ge=0, le=MAX_SEED)


class BPRParams(Section):
    """cornac's BPR (uniform negatives); defaults chosen on a validation split of ML-100K train."""

    factors: int = Field(128, ge=1, le=4096)
    learning_rate: float = Field(0.01, gt=0.0)
    regularization: float = Field(0.01, ge=0.0)
    iterations: int = Field(200, ge=1, le=10_000)
    random_state: int | None = Field(None, ge=0, le=MAX_SEED)


class EASEParams(Section):
    l2: float = Field(500.0, gt=0.0)
    max_items: int = Field(30_000, ge=1)
    binary: bool = Field(True, description="False: use interaction values (e.g. reweight's weights)")


# --------------------------------------------------------------- mitigation
class ReweightMitigation(Section):
    """Pre-processing: reweight training interactions before the model sees them."""

    kind: Literal["reweight"]
    popularity_damping: float = Field(0.0, ge=0.0, le=5.0)
    group_balance: float = Field(0.0, ge=0.0, le=1.0)
    user_attribute: str | None = Field(None, description="default: the first fairness.sensitive attribute")
    item_attribute: str = "category"


class FairShareMitigation(Section):
    """Post-processing: FA*IR minimum share of the protected item group in every prefix."""

    kind: Literal["fair_share"]
    strength: float = Field(0.5, ge=0.0, le=1.0)
    alpha: float = Field(0.1, gt=0.0, lt=1.0)
    n_candidates: int = Field(100, ge=1)


class CalibrationMitigation(Section):
    """Post-processing: calibrate each list's item-category mix to the user's history (Steck 2018)."""

    kind: Literal["calibration"]
    strength: float = Field(0.5, ge=0.0, le=1.0)
    smoothing: float = Field(0.01, gt=0.0, lt=1.0)
    item_attribute: str = "category"
    n_candidates: int = Field(100, ge=1)


class CategoryShareMitigation(Section):
    """Post-processing: one score offset per item category so lists' mean category mix approaches histories'."""

    kind: Literal["category_share"]
    strength: float = Field(0.75, ge=0.0, le=1.0)
    item_attribute: str = "category"
    n_candidates: int = Field(100, ge=1)
    max_fit_users: int = Field(50_000, ge=1, description="training users whose candidate lists fit the offsets")


class ExposureBudgetMitigation(Section):
    """Post-processing: raise the protected item group's share of total exposure to a target."""

    kind: Literal["exposure_budget"]
    strength: float = Field(0.1, ge=0.0, le=1.0, description="target share of rank-weighted exposure")
    n_candidates: int = Field(100, ge=1)
    cost: Literal["score", "calibrated"] = Field(
        "score", description="calibrated: expected DCG loss, relevance learned on 20% held out of training"
    )


class UserBlendMitigation(Section):
    """Post-processing: blend in item popularity for one (disadvantaged) user group."""

    kind: Literal["user_blend"]
    strength: float = Field(0.5, ge=0.0, le=1.0)
    user_attribute: str
    group: str
    n_candidates: int = Field(100, ge=1)


class TwoStageMitigation(Section):
    """In-processing: a classifier over first-stage candidates trained with a fairlearn reduction."""

    kind: Literal["two_stage"]
    classifier: Literal["logistic", "gbdt"] = "logistic"
    constraint: Literal["demographic_parity", "equalized_odds", "true_positive_rate_parity"] | None = (
        "demographic_parity"
    )
    bound: float = Field(0.05, gt=0.0, le=1.0)
    method: Literal["exponentiated_gradient", "grid_search"] = "exponentiated_gradient"
    user_attribute: str | None = Field(None, description="default: the first fairness.sensitive attribute")
    protected_items_only: bool = True
    use_sensitive_feature: bool = False
    n_candidates: int = Field(100, ge=1)
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)


Mitigation = Annotated[
    ReweightMitigation
    | FairShareMitigation
    | ExposureBudgetMitigation
    | CalibrationMitigation
    | CategoryShareMitigation
    | UserBlendMitigation
    | TwoStageMitigation,
    Field(discriminator="kind"),
]


class Sweep(Section):
    """Train one candidate per value of a mitigation parameter (the relevance-fairness frontier)."""

    parameter: str = Field(
        description="a field of the model's mitigation, e.g. strength, or KIND.FIELD when it has several steps"
    )
    values: list[float] = Field(min_length=1, max_length=50)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TRAINING_STEPS = ("reweight", "two_stage")  # pre- and in-processing; the rest re-rank


class _ModelBase(Section):
    name: str = Field(description="unique; names the run, its artifact folder and metrics")
    input: Literal["binary", "ratings"] = Field(
        "binary", description="train on 1 per interaction, or on the ratings as weights"
    )
    mitigation: list[Mitigation] | None = Field(
        None, description="one step, or a list: at most one pre-/in-processing step and one re-ranker"
    )
    sweep: Sweep | None = None

    @property
    def steps(self) -> list[Any]:
        """The mitigation steps in order (pre-/in-processing first)."""
        steps = list(self.mitigation or [])
        return sorted(steps, key=lambda step: step.kind not in _TRAINING_STEPS)

    @field_validator("mitigation", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("mitigation")
    @classmethod
    def _one_of_each(cls, value: list[Any] | None) -> list[Any] | None:
        if not value:
            return None
        training = [s.kind for s in value if s.kind in _TRAINING_STEPS]
        post = [s.kind for s in value if s.kind not in _TRAINING_STEPS]
        if len(training) > 1 or len(post) > 1:
            raise ValueError(
                "a list of mitigations takes at most one of reweight/two_stage and one re-ranker, "
                f"got {[s.kind for s in value]}"
            )
        return value

    def sweep_target(self) -> tuple[Any, str]:
        """The mitigation step and field the sweep varies."""
        assert self.sweep is not None
        kind, _, field = self.sweep.parameter.rpartition(".")
        matches = [
            s for s in self.steps
            if field in type(s).model_fields and field != "kind" and kind in ("", s.kind)
        ]
        if len(matches) != 1:
            fields = [f"{s.kind}.{f}" for s in self.steps for f in type(s).model_fields if f != "kind"]
            why = "is ambiguous" if matches else "matches no mitigation field"
            raise ValueError(
                f"sweep.parameter {self.sweep.parameter!r} {why}; allowed: {', '.join(fields)}"
            )
        return matches[0], field

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _NAME.match(value) or len(value) > 64:
            raise ValueError(
                "expected 1-64 characters of letters, digits, '_', '.', '-' "
                f"starting with a letter or digit, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _sweep_needs_mitigation(self) -> _ModelBase:
        if self.sweep is None:
            return self
        if self.mitigation is None:
            raise ValueError("sweep needs a mitigation whose parameter it varies")
        step, field = self.sweep_target()
        for value in self.sweep.values:
            try:
                type(step).model_validate({**step.model_dump(), field: value})
            except ValueError as exc:
                raise ValueError(f"sweep value {value!r} is not allowed: {exc}") from None
        return self


class PopularitySpec(_ModelBase):
    type: Literal["popularity"]
    params: PopularityParams = PopularityParams()


class ItemKNNSpec(_ModelBase):
    type: Literal["item_knn"]
    params: ItemKNNParams = ItemKNNParams()


class ALSSpec(_ModelBase):
    type: Literal["als"]
    params: ALSParams = ALSParams()


class BPRSpec(_ModelBase):
    type: Literal["bpr"]
    params: BPRParams = BPRParams()


class EASESpec(_ModelBase):
    type: Literal["ease"]
    params: EASEParams = EASEParams()


ModelSpec = Annotated[
    PopularitySpec | ItemKNNSpec | ALSSpec | BPRSpec | EASESpec, Field(discriminator="type")
]
