"""The experiment config: small composed pydantic schemas, validated before any data is read.

Every section forbids unknown keys (with a "did you mean" hint) and declares
its bounds with ``Field``; components are chosen by a registry key
(``data.loader``, ``split.method``, ``models[].type``).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = [
    "DataConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "CategoryShareMitigation",
    "ConsentConfig",
    "FairnessConfig",
    "GateConfig",
    "ModelCardConfig",
    "NonRegression",
    "Mitigation",
    "Sweep",
    "ModelSpec",
    "SplitConfig",
    "TrackingConfig",
]


class Section(BaseModel):
    """Base of every config section: frozen, unknown keys rejected with the allowed ones listed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = list(cls.model_fields)
            unknown = [k for k in data if k not in allowed]
            if unknown:
                key = unknown[0]
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ValueError(
                    f"unknown key {key!r}{suggestion}; allowed keys: {', '.join(allowed)}"
                )
        return data


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if not value.is_absolute() and base is not None:
        value = Path(base) / value
    return value


# --------------------------------------------------------------------- data
class SyntheticData(Section):
    loader: Literal["synthetic"]
    n_users: int = Field(2000, ge=2, le=10_000_000)
    n_items: int = Field(1000, ge=2, le=10_000_000)
    n_interactions: int = Field(50_000, ge=2, le=100_000_000)
    n_categories: int = Field(8, ge=1, le=1000)
    n_providers: int = Field(20, ge=1, le=100_000)
    popularity_exponent: float = Field(0.8, ge=0.0, le=3.0)
    activity_sigma: float = Field(1.0, ge=0.0, le=3.0)
    n_niches: int = Field(0, ge=0, le=1000, description="hidden taste niches; 0 = automatic")
    personalization: float = Field(1.0, ge=0.0, le=1.0, description="0 = taste only over categories")
    bias_strength: float = Field(0.0, ge=0.0, le=1.0)
    biased_group: str = "F"
    biased_category: str = "cat_0"
    group_share: float = Field(0.4, gt=0.0, lt=1.0)
    seed: int | None = Field(None, description="defaults to the experiment seed")

    @model_validator(mode="after")
    def _fits(self) -> SyntheticData:
        if self.n_interactions > self.n_users * self.n_items:
            raise ValueError(
                f"n_interactions must be at most n_users * n_items = {self.n_users * self.n_items}, "
                f"got {self.n_interactions}"
            )
        return self


_ML100K_FILES = ("u.data", "u.user", "u.item")


class MovieLens100KData(Section):
    loader: Literal["movielens-100k"]
    path: Path

    @field_validator("path")
    @classmethod
    def _exists(cls, value: Path, info: ValidationInfo) -> Path:
        value = _resolve_path(value, info)
        missing = [f for f in _ML100K_FILES if not (value / f).is_file()]
        if missing:
            raise ValueError(
                f"expected a MovieLens 100K directory containing {', '.join(_ML100K_FILES)}; "
                f"{value} is missing {', '.join(missing)}"
            )
        return value


class TableData(Section):
    loader: Literal["table"]
    interactions: Path
    users: Path | None = None
    items: Path | None = None
    columns: dict[Literal["user_id", "item_id", "rating", "timestamp"], str] = Field(
        default_factory=dict
    )

    @field_validator("interactions", "users", "items")
    @classmethod
    def _file_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        value = _resolve_path(value, info)
        if not value.is_file():
            raise ValueError(f"expected an existing CSV or Parquet file, got {value}")
        if value.suffix.lower() not in {".csv", ".parquet"}:
            raise ValueError(f"expected a .csv or .parquet file, got {value.name}")
        return value


DataConfig = Annotated[
    SyntheticData | MovieLens100KData | TableData, Field(discriminator="loader")
]


# -------------------------------------------------------------------- split
class _SplitBase(Section):
    relevance_threshold: float | None = Field(
        None, description="test items with a rating below this are not relevant"
    )


class RandomHoldoutSplit(_SplitBase):
    method: Literal["random_holdout"]
    test_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    min_train: int = Field(1, ge=1)
    seed: int | None = None


class LeaveLastKSplit(_SplitBase):
    method: Literal["leave_last_k"]
    k: int = Field(1, ge=1)
    min_train: int = Field(1, ge=1)


class TimeCutoffSplit(_SplitBase):
    method: Literal["time_cutoff"]
    cutoff: int | None = None
    test_fraction: float | None = Field(None, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_of(self) -> TimeCutoffSplit:
        if (self.cutoff is None) == (self.test_fraction is None):
            raise ValueError(
                "give exactly one of cutoff (a timestamp) or test_fraction, "
                f"got cutoff={self.cutoff!r} and test_fraction={self.test_fraction!r}"
            )
        return self


SplitConfig = Annotated[
    RandomHoldoutSplit | LeaveLastKSplit | TimeCutoffSplit, Field(discriminator="method")
]


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
    random_state: int | None = None


class BPRParams(Section):
    factors: int = Field(64, ge=1, le=4096)
    learning_rate: float = Field(0.01, gt=0.0)
    regularization: float = Field(0.01, ge=0.0)
    iterations: int = Field(100, ge=1, le=10_000)
    random_state: int | None = None


class EASEParams(Section):
    l2: float = Field(500.0, gt=0.0)
    max_items: int = Field(30_000, ge=1)


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


# --------------------------------------------------------- evaluation etc.
class EvaluationConfig(Section):
    k: int = Field(10, ge=1, le=1000)


class FairnessConfig(Section):
    """What to measure: sensitive user attributes, the item grouping and its protected group."""

    sensitive: list[str] = Field(default_factory=lambda: ["gender"], description="user attribute columns")
    item_group: str = Field(
        "popularity", description="'popularity' (head/tail from training data) or an item column"
    )
    protected_group: str = Field("tail", description="the item group whose exposure is protected")
    head_share: float = Field(0.8, gt=0.0, lt=1.0)
    amplification_attribute: str = Field("category", description="item column for bias amplification")
    amplification_weighting: Literal["user", "interaction"] = Field(
        "user", description="each user's history and list count equally, or pool interactions"
    )
    n_boot: int | None = Field(None, ge=10, le=10_000, description="bootstrap CIs for per-group quality")


class ExplainConfig(Section):
    """Explanations of a seeded sample of users' lists, and their scores."""

    enabled: bool = True
    n_users: int = Field(30, ge=1, le=100_000)
    m: int = Field(3, ge=1, le=50, description="top-m attributions for fidelity and stability")
    shap_samples: int = Field(200, ge=10, description="coalition budget of Kernel SHAP (ALS)")
    lime_samples: int = Field(200, ge=10)
    stability_seeds: int = Field(2, ge=2, le=10)
    n_jobs: int = Field(
        1,
        ge=-1,
        description="worker processes for history SHAP and LIME over the sampled users (-1: every "
        "core); the scores do not depend on it",
    )

    @field_validator("n_jobs")
    @classmethod
    def _jobs(cls, value: int) -> int:
        if value == 0:
            raise ValueError("expected a positive number of processes or -1 (every core), got 0")
        return value


class TrackingConfig(Section):
    uri: str | None = Field(
        None,
        description="MLflow tracking URI; default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db",
    )
    experiment: str | None = Field(None, description="defaults to the config's name")


_METRIC_NAME = re.compile(r"^[A-Za-z0-9_.{}=:-]+$")


def _check_metric_names(names: list[str], field: str) -> None:
    for name in names:
        if not _METRIC_NAME.match(name):
            raise ValueError(
                f"{field}: {name!r} is not a metric name (letters, digits and _ . = : - only, "
                "plus {k} for the evaluation cut-off)"
            )


class NonRegression(Section):
    """A candidate may not fall more than ``tolerance`` (relative) below the champion on ``metric``."""

    metric: str = Field("ndcg_at_{k}", description="metric name; {k} is the evaluation cut-off")
    tolerance: float = Field(0.02, ge=0.0, le=1.0, description="largest allowed relative drop")

    @field_validator("metric")
    @classmethod
    def _name(cls, value: str) -> str:
        _check_metric_names([value], "metric")
        return value


class GateConfig(Section):
    """Promotion thresholds: floors and ceilings on any metric the run produces."""

    registered_model: str | None = Field(
        None, min_length=1, max_length=256, description="registry name; defaults to the config's name"
    )
    four_fifths: bool = Field(
        True, description="floor of 0.8 on disparate_impact.<attribute> for every sensitive attribute"
    )
    floors: dict[str, float] = Field(default_factory=dict, description="metric name -> lowest allowed value")
    ceilings: dict[str, float] = Field(default_factory=dict, description="metric name -> highest allowed value")
    non_regression: NonRegression | None = NonRegression()
    rank_by: str = Field("ndcg_at_{k}", description="among passing candidates, the highest wins")
    register_models: bool = Field(True, description="register every candidate as a model version")
    promote: bool = Field(True, description="move @champion to the winner (else only @challenger)")

    @model_validator(mode="after")
    def _consistent(self) -> GateConfig:
        _check_metric_names(list(self.floors), "floors")
        _check_metric_names(list(self.ceilings), "ceilings")
        _check_metric_names([self.rank_by], "rank_by")
        for name in set(self.floors) & set(self.ceilings):
            if self.floors[name] > self.ceilings[name]:
                raise ValueError(
                    f"{name}: floor {self.floors[name]} is above ceiling {self.ceilings[name]}; "
                    "no value could pass"
                )
        if self.promote and not self.register_models:
            raise ValueError("promote: true needs register_models: true (only registered versions get aliases)")
        return self


class ConsentConfig(Section):
    """Users' choices about the use of their data, honoured in training."""

    store: Path | None = Field(
        None, description="the service's consent database; opted-out users' interactions are not used"
    )

    @field_validator("store")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve_path(value, info)


class ModelCardConfig(Section):
    """Text of the model card that only a person can write."""

    intended_use: str = Field(
        "Ranking items for users of the catalogue the model was trained on.",
        description="what the model is for and for whom",
    )
    limitations: list[str] = Field(default_factory=list, description="known limitations, one per entry")


class ExperimentConfig(Section):
    name: str = Field(min_length=1, max_length=128)
    seed: int = 0
    data: DataConfig
    split: SplitConfig = RandomHoldoutSplit(method="random_holdout")
    models: list[ModelSpec] = Field(min_length=1)
    evaluation: EvaluationConfig = EvaluationConfig()
    fairness: FairnessConfig = FairnessConfig()
    explain: ExplainConfig = ExplainConfig()
    tracking: TrackingConfig = TrackingConfig()
    gate: GateConfig = GateConfig()
    card: ModelCardConfig = ModelCardConfig()
    consent: ConsentConfig = ConsentConfig()

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for m in models:
            if m.name in seen:
                raise ValueError(f"model names must be unique, {m.name!r} appears twice")
            seen.add(m.name)
        return models
