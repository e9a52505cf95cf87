"""The experiment config: small composed pydantic schemas, validated before any data is read.

Every section forbids unknown keys (with a "did you mean" hint; the base is
:mod:`training._schema_base`) and declares its bounds with ``Field``;
components are chosen by a registry key (``data.loader``, ``split.method``,
``models[].type``). The ``models[]`` section (parameters, mitigations,
sweeps) is :mod:`training._schema_models`; this module composes the rest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from training._schema_base import MAX_SEED, Section, _base_note, _resolve_path
from training._schema_models import ModelSpec
from training._tracking import tracking_uri_problem

__all__ = [
    "DataConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "ConsentConfig",
    "EngineConfig",
    "FairnessConfig",
    "GateConfig",
    "LevellingDown",
    "OutcomeParity",
    "ProviderExposure",
    "UtilityParity",
    "ModelCardConfig",
    "NonRegression",
    "SplitConfig",
    "TrackingConfig",
]


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
    biased_group: Literal["F", "M"] = Field("F", description="the synthetic users' gender groups are F and M")
    biased_category: str = Field("cat_0", description="cat_0 .. cat_<n_categories - 1>")
    group_share: float = Field(0.4, gt=0.0, lt=1.0)
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="defaults to the experiment seed")

    @model_validator(mode="after")
    def _fits(self) -> SyntheticData:
        categories = [f"cat_{c}" for c in range(self.n_categories)]
        if self.biased_category not in categories:
            raise ValueError(
                f"biased_category: expected one of the {self.n_categories} categories "
                f"{categories[0]!r}..{categories[-1]!r} (n_categories = {self.n_categories}), "
                f"got {self.biased_category!r}"
            )
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
        given, value = value, _resolve_path(value, info)
        missing = [f for f in _ML100K_FILES if not (value / f).is_file()]
        if missing:
            raise ValueError(
                f"expected a MovieLens 100K directory containing {', '.join(_ML100K_FILES)}; "
                f"{value} is missing {', '.join(missing)}{_base_note(given, info)}"
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
    user_columns: dict[str, str] = Field(
        default_factory=dict, description="user attribute -> column of the users file, e.g. {gender: sex}"
    )
    item_columns: dict[str, str] = Field(
        default_factory=dict,
        description="item attribute -> column of the items file, e.g. {category: genre, title: name}",
    )

    @field_validator("interactions", "users", "items")
    @classmethod
    def _file_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        given, value = value, _resolve_path(value, info)
        if info.field_name == "interactions" and value.is_dir():
            return value  # a directory of Parquet parts: read by the Spark engine (checked below)
        if not value.is_file():
            raise ValueError(f"expected an existing CSV or Parquet file, got {value}{_base_note(given, info)}")
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
    seed: int | None = Field(None, ge=0, le=MAX_SEED)


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
    segments: list[str] = Field(
        default_factory=lambda: ["activity_level"],
        description="sensitive attributes that are functions of the history itself (user segments): "
        "judged against the popularity baseline, no proxy search, no reliance score",
    )


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


class EngineConfig(Section):
    """Where the run computes: in this process (default) or on a Spark cluster."""

    kind: Literal["in_process", "spark"] = "in_process"
    master: str = Field("local[2]", description="Spark master URL: local[N], spark://HOST:PORT, yarn, k8s://...")
    conf: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Spark properties, e.g. spark.executor.memory: 4g"
    )
    lost_executor_timeout: float = Field(
        60.0, gt=0.0, le=3600.0, description="seconds a cluster may have no executor before the run fails"
    )

    @field_validator("master")
    @classmethod
    def _master(cls, value: str) -> str:
        from recsys.engine import SparkEngineError, check_master

        try:
            return check_master(value)
        except SparkEngineError as exc:
            raise ValueError(str(exc).removeprefix("engine.master: ")) from None

    @field_validator("conf")
    @classmethod
    def _properties(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [key for key in value if not key.startswith("spark.")]
        if bad:
            raise ValueError(f"expected Spark property names starting with 'spark.', got {bad[0]!r}")
        return value


class TrackingConfig(Section):
    uri: str | None = Field(
        None,
        description="MLflow tracking URI; default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db",
    )
    experiment: str | None = Field(None, description="defaults to the config's name")

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        problem = None if value is None else tracking_uri_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


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


class UtilityParity(Section):
    """Consumer side: the worst-served group's mean of ``metric`` relative to the best-served group's."""

    metric: str = Field("ndcg_at_{k}", description="a per-user metric; {k} is the evaluation cut-off")
    threshold: float = Field(0.8, gt=0.0, le=1.0, description="lowest allowed worst/best ratio")

    @field_validator("metric")
    @classmethod
    def _name(cls, value: str) -> str:
        _check_metric_names([value], "metric")
        return value


class OutcomeParity(Section):
    """Disparate impact of an outcome the config names: 'the top-k holds an item of the protected group'."""

    outcome: Literal["contains_protected"] = Field(
        description="the top-k list holds at least one item of fairness.protected_group"
    )
    threshold: float = Field(0.8, gt=0.0, le=1.0, description="lowest allowed worst/best rate ratio")


class LevellingDown(Section):
    """A mitigated candidate may not narrow a gap by lowering the better-off group beyond ``tolerance``."""

    tolerance: float = Field(0.02, ge=0.0, le=1.0, description="largest allowed relative drop vs the twin")


class ProviderExposure(Section):
    """Provider side: the protected item group's share of rank-weighted exposure."""

    min_share: float = Field(gt=0.0, lt=1.0, description="lowest allowed share")


class GateConfig(Section):
    """Promotion rules; every default and its source is in the README ("The promotion gate")."""

    registered_model: str | None = Field(
        None, min_length=1, max_length=256, description="registry name; defaults to the config's name"
    )
    utility_parity: UtilityParity | None = UtilityParity()
    outcome_parity: OutcomeParity | None = Field(None, description="no default outcome: name one to check it")
    levelling_down: LevellingDown | None = LevellingDown()
    provider_exposure: ProviderExposure | None = None
    protected_reliance: float | None = Field(0.1, ge=0.0, le=1.0, description="ceiling, where defined")
    counterfactual_flip_rate: float | None = Field(0.0, ge=0.0, le=1.0, description="ceiling, where defined")
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="family-wise error rate (Holm) of the gate's tests")
    strict: bool = Field(False, description="inconclusive checks block promotion too")
    min_group_size: int = Field(30, ge=1, description="smaller groups are reported, not judged")
    n_resamples: int = Field(1000, ge=100, le=100_000, description="bootstrap and permutation draws")
    floors: dict[str, float] = Field(default_factory=dict, description="metric name -> lowest allowed value")
    ceilings: dict[str, float] = Field(default_factory=dict, description="metric name -> highest allowed value")
    non_regression: NonRegression | None = NonRegression()
    rank_by: str = Field("ndcg_at_{k}", description="among passing candidates, the highest on validation wins")
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
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seeds every random choice of the run")
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
    engine: EngineConfig = EngineConfig()

    @model_validator(mode="after")
    def _parts_need_spark(self) -> ExperimentConfig:
        path = getattr(self.data, "interactions", None)
        if path is not None and Path(path).is_dir() and self.engine.kind != "spark":
            raise ValueError(
                f"data.interactions: a directory of Parquet parts ({path}) is read by the Spark engine; "
                "expected engine.kind: spark or a .csv/.parquet file"
            )
        return self

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for m in models:
            if m.name in seen:
                raise ValueError(f"model names must be unique, {m.name!r} appears twice")
            seen.add(m.name)
        return models
