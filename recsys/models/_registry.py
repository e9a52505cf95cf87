"""Models by registry key, as named in configs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recsys.models._base import Recommender
from recsys.models._bpr import BPR
from recsys.models._ease import EASE
from recsys.models._implicit import ALS, ItemKNN
from recsys.models._popularity import Popularity

__all__ = ["MODELS", "make_model", "model_key"]

MODELS: dict[str, type[Recommender]] = {
    "popularity": Popularity,
    "item_knn": ItemKNN,
    "als": ALS,
    "bpr": BPR,
    "ease": EASE,
}


def make_model(kind: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """Build an unfitted model from its registry key and constructor parameters.

    Parameters
    ----------
    kind : str
        A key of :data:`MODELS`.
    params : mapping, optional
        Constructor parameters; names not accepted by the model are an error.

    Returns
    -------
    Recommender
        The unfitted model (parameter values are validated by ``fit``).

    Examples
    --------
    >>> make_model("ease", {"l2": 100.0})
    EASE(l2=100.0)
    >>> make_model("ease", {"lambda": 100.0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: params: unknown parameter(s) ['lambda'] for model 'ease'; expected some of ...
    """
    if kind not in MODELS:
        raise ValueError(f"kind: unknown model {kind!r}; expected one of {sorted(MODELS)}")
    cls = MODELS[kind]
    params = dict(params or {})
    allowed = sorted(cls().get_params())
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"params: unknown parameter(s) {unknown} for model {kind!r}; expected some of "
            f"{allowed}"
        )
    return cls(**params)


def model_key(model: Recommender) -> str:
    """The registry key of ``model``'s class.

    >>> model_key(make_model("als", {}))
    'als'
    """
    for key, cls in MODELS.items():
        if type(model) is cls:
            return key
    raise ValueError(
        f"model: {type(model).__name__} is not a registered model; expected an instance of "
        f"one of {sorted(c.__name__ for c in MODELS.values())}"
    )
