"""Human-readable explanation texts for end users.

The texts are built from item titles, feature phrases and weights only; no
function here takes a user attribute, so a text cannot mention one. Feature
texts go further: a feature is shown only through a phrase the caller wrote for
it, and sensitive features and their proxies (see
:func:`~recsys.explain.detect_proxies`), as well as fairrec's one-hot
``sensitive=<group>`` features, are dropped even when a phrase exists.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from recsys.explain._explanation import Explanation

__all__ = [
    "POPULAR_TEXT",
    "SIMILAR_TASTES_TEXT",
    "explanation_text",
    "feature_text",
    "history_text",
]

POPULAR_TEXT = "Popular with many users"
SIMILAR_TASTES_TEXT = "Popular among people with similar tastes"
_SENSITIVE_PREFIX = "sensitive="  # TwoStageRanker's one-hot sensitive features


def _join(parts: Sequence[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _positive_order(weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    order = np.argsort(-weights, kind="stable")
    return order[weights[order] > 0]


def history_text(
    items: Sequence[int] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
    titles: Sequence[str] | np.ndarray,
    *,
    verb: str = "watched",
    max_items: int = 2,
) -> str:
    """"Because you <verb> <title> and <title>" from the top positive history items.

    ``items`` are item indices into ``titles``; only items with a positive weight
    are named, the largest first. Without one the text is the generic
    :data:`SIMILAR_TASTES_TEXT`.

    Examples
    --------
    >>> titles = ["Heat", "Toy Story", "Fargo"]
    >>> history_text([0, 1, 2], [0.1, 0.7, -0.2], titles)
    'Because you watched Toy Story and Heat'
    >>> history_text([2], [-0.3], titles)
    'Popular among people with similar tastes'
    """
    if len(items) != len(weights):
        raise ValueError(
            f"weights: expected one weight per item ({len(items)}), got {len(weights)}"
        )
    if max_items < 1:
        raise ValueError(f"max_items: expected a positive integer, got {max_items!r}")
    order = _positive_order(np.asarray(weights))[:max_items]
    if order.size == 0:
        return SIMILAR_TASTES_TEXT
    names = [str(titles[int(items[j])]) for j in order]
    return f"Because you {verb} {_join(names)}"


def feature_text(
    features: Sequence[str],
    weights: Sequence[float] | np.ndarray,
    phrases: Mapping[str, str],
    *,
    excluded: Collection[str] = (),
    max_features: int = 2,
) -> str:
    """"Recommended because <phrase> and <phrase>" from the top positive features.

    Only features with a phrase in ``phrases`` are shown, each phrase once;
    features in ``excluded`` (pass the sensitive features and their proxies)
    and any ``sensitive=...`` feature are never shown. Without a showable
    feature the text is :data:`SIMILAR_TASTES_TEXT`.

    Examples
    --------
    >>> phrases = {"gender": "people of your gender like it",
    ...            "item_log_popularity": "it is popular right now"}
    >>> feature_text(["gender", "item_log_popularity"], [0.9, 0.2], phrases,
    ...              excluded={"gender"})
    'Recommended because it is popular right now'
    """
    if len(features) != len(weights):
        raise ValueError(
            f"weights: expected one weight per feature ({len(features)}), got {len(weights)}"
        )
    if max_features < 1:
        raise ValueError(f"max_features: expected a positive integer, got {max_features!r}")
    hidden = set(excluded)
    shown = []
    for j in _positive_order(np.asarray(weights)):
        name = str(features[j])
        if name in hidden or name.startswith(_SENSITIVE_PREFIX) or name not in phrases:
            continue
        if phrases[name] in shown:  # two features worded alike say one thing
            continue
        shown.append(phrases[name])
        if len(shown) == max_features:
            break
    if not shown:
        return SIMILAR_TASTES_TEXT
    return f"Recommended because {_join(shown)}"


def explanation_text(
    explanation: Explanation,
    *,
    titles: Sequence[str] | np.ndarray | None = None,
    phrases: Mapping[str, str] | None = None,
    excluded: Collection[str] = (),
    verb: str = "watched",
    max_items: int = 2,
) -> str:
    """The end-user text of one :class:`Explanation`.

    Popularity explanations read :data:`POPULAR_TEXT`; history explanations
    :func:`history_text` (needs ``titles``); feature explanations
    :func:`feature_text` (needs ``phrases``; ``excluded`` as there).

    Examples
    --------
    >>> e = Explanation(user=0, item=2, method="popularity", features=(), weights=[],
    ...                 base_value=0.0, score=50.0, extra={"space": "popularity"})
    >>> explanation_text(e)
    'Popular with many users'
    """
    space = explanation.extra.get("space", "history")
    if explanation.method == "popularity" or space == "popularity":
        return POPULAR_TEXT
    if space == "features":
        if phrases is None:
            raise ValueError("phrases: required to word a feature-based explanation, got None")
        return feature_text(
            [str(f) for f in explanation.features],
            explanation.weights,
            phrases,
            excluded=excluded,
            max_features=max_items,
        )
    if titles is None:
        raise ValueError("titles: required to word a history explanation, got None")
    return history_text(
        [int(f) for f in explanation.features],
        explanation.weights,
        titles,
        verb=verb,
        max_items=max_items,
    )
