"""End-user texts: from titles and weights only; sensitive features never shown."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

from recsys.explain import (
    POPULAR_TEXT,
    SIMILAR_TASTES_TEXT,
    Explanation,
    explanation_text,
    feature_text,
    history_text,
)

TITLES = np.array(["Heat", "Toy Story", "Fargo", "Alien"])
SENSITIVE_WORDS = re.compile(r"gender|female|male|\bage\b|age_group|zip|occupation", re.IGNORECASE)


def _history(weights, features=(0, 1, 2, 3), method="shap") -> Explanation:
    return Explanation(
        user=0, item=9, method=method, features=features, weights=weights,
        base_value=0.0, score=float(np.sum(weights)), extra={"space": "history"},
    )


def test_history_text_names_the_top_positive_items():
    assert explanation_text(_history([0.1, 0.7, -0.2, 0.3]), titles=TITLES) == (
        "Because you watched Toy Story and Alien"
    )
    assert history_text([0, 1, 2], [0.3, 0.2, 0.1], TITLES, verb="rated", max_items=3) == (
        "Because you rated Heat, Toy Story and Fargo"
    )
    assert history_text([2], [0.5], TITLES) == "Because you watched Fargo"


def test_history_text_falls_back_without_a_positive_item():
    assert explanation_text(_history([0.0, -0.1, 0.0, -0.3]), titles=TITLES) == SIMILAR_TASTES_TEXT


def test_popularity_explanations_say_so():
    e = Explanation(user=0, item=1, method="popularity", features=(), weights=[],
                    base_value=0.0, score=12.0, extra={"space": "popularity"})
    assert explanation_text(e) == POPULAR_TEXT == "Popular with many users"


def test_the_history_text_builder_takes_no_user_attribute():
    assert list(inspect.signature(history_text).parameters) == [
        "items", "weights", "titles", "verb", "max_items"
    ]


FEATURES = ("gender", "sensitive=F", "age_group", "zip_code", "item_log_popularity",
            "first_stage_score", "user_feature_3")
PHRASES = {  # a careless phrase book that words even the sensitive features
    "gender": "people of your gender love it",
    "sensitive=F": "it is popular with female users",
    "age_group": "people your age watch it",
    "zip_code": "it is a hit in your zip code",
    "item_log_popularity": "it is popular right now",
    "first_stage_score": "it matches what you watched",
}


def _features(weights) -> Explanation:
    return Explanation(user=0, item=9, method="shap", features=FEATURES, weights=weights,
                       base_value=0.0, score=1.0, extra={"space": "features"})


def test_feature_text_never_mentions_sensitive_features_or_proxies():
    # the sensitive features and the proxy carry by far the largest weights
    e = _features([5.0, 4.0, 3.0, 2.5, 0.2, 0.1, 9.0])
    text = explanation_text(e, phrases=PHRASES, excluded={"gender", "age_group", "zip_code"})
    assert text == "Recommended because it is popular right now and it matches what you watched"
    assert not SENSITIVE_WORDS.search(text)


def test_feature_text_without_a_showable_feature_falls_back():
    e = _features([5.0, 4.0, 3.0, 2.5, -0.2, -0.1, 9.0])  # user_feature_3 has no phrase
    text = explanation_text(e, phrases=PHRASES, excluded={"gender", "age_group", "zip_code"})
    assert text == SIMILAR_TASTES_TEXT
    assert not SENSITIVE_WORDS.search(text)
    # "sensitive=..." features are hidden even when nobody excludes them
    assert feature_text(["sensitive=F"], [1.0], PHRASES) == SIMILAR_TASTES_TEXT


def test_missing_inputs_are_named():
    with pytest.raises(ValueError, match="titles: required to word a history explanation"):
        explanation_text(_history([0.1, 0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match="phrases: required to word a feature-based explanation"):
        explanation_text(_features([0.0] * len(FEATURES)))
    with pytest.raises(ValueError, match=r"weights: expected one weight per item \(2\), got 1"):
        history_text([0, 1], [0.5], TITLES)


def test_feature_text_says_each_phrase_once():
    phrases = {"a": "it is popular with many users", "b": "it is popular with many users",
               "c": "it matches what you watched"}
    text = feature_text(["a", "b", "c"], [3.0, 2.0, 1.0], phrases)
    assert text == "Recommended because it is popular with many users and it matches what you watched"
