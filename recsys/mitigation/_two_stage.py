"""In-processing mitigation: a candidate generator plus a fairness-constrained re-scorer.

The first stage (any fairrec model) proposes candidates; a scikit-learn classifier
learns from held-out interactions which candidates are relevant; optionally a
fairlearn reduction (``ExponentiatedGradient`` or ``GridSearch``) learns the same
task under a group-fairness constraint across user groups.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from fairlearn.reductions import (
    DemographicParity,
    EqualizedOdds,
    ErrorRate,
    ExponentiatedGradient,
    GridSearch,
    TruePositiveRateParity,
)
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_scalar

from recsys.errors import DataError
from recsys.models._base import (
    Recommender,
    UnknownUsers,
    check_fitted,
    check_user_items,
)

__all__ = ["TwoStageRanker"]

Classifier = Literal["logistic", "gbdt"]
Constraint = Literal["demographic_parity", "equalized_odds", "true_positive_rate_parity"]
Method = Literal["exponentiated_gradient", "grid_search"]

_CONSTRAINTS = {
    "demographic_parity": DemographicParity,
    "equalized_odds": EqualizedOdds,
    "true_positive_rate_parity": TruePositiveRateParity,
}
_CLASSIFIERS = ("logistic", "gbdt")
_METHODS = ("exponentiated_gradient", "grid_search")


class TwoStageRanker(Recommender):
    """Re-score a first stage's candidates with a (fairness-constrained) classifier.

    ``fit`` holds out ``holdout_fraction`` of each user's interactions (users
    with at least two), fits a clone of ``first_stage`` on the rest and takes
    each user's top ``n_candidates``. Each (user, candidate) pair gets features
    (see ``feature_names_``): the first-stage score, ``log(1 + rank)``, the
    item's ``log(1 + users)``, the user's ``log(1 + items)``, the affinity
    ``mean item features of the user's history · item features`` (with
    ``item_features``), then ``user_features`` and ``item_features``. The
    sensitive attribute is a feature only if ``use_sensitive_feature=True``
    (one-hot). A pair is labelled relevant if the item is in the user's
    held-out part. At most ``max_pairs`` pairs (a seeded sample) are used.

    The unconstrained classifier ``classifier_`` is always fitted. With a
    ``constraint``, the fairlearn reduction ``mitigator_`` is fitted with the
    user's group (``sensitive``) as the sensitive feature of each pair. With
    ``protected_items``, it is fitted on, and scores, only the pairs whose item
    is protected (other pairs keep the unconstrained score), so the constraint
    equalises across user groups how often protected items are predicted
    relevant. Finally a fresh clone of ``first_stage`` is fitted on all of
    ``X`` to propose candidates when recommending.

    ``recommend`` ranks each user's candidates by the probability that a pair
    is relevant, best first; items outside the candidates never appear, so a
    list holds at most ``n_candidates`` items (users without training
    interactions get the popularity ranking, as for every fairrec model).
    ``ExponentiatedGradient``
    returns a *randomized* classifier (a distribution over hard 0/1
    classifiers); a ranking needs one number per pair, so the ranker uses its
    expected prediction, the probability that the randomized classifier says
    "relevant" (``_pmf_predict``). Those expectations take few distinct
    values; ties are broken by the unconstrained probability, then by the
    first-stage rank. Scores returned are the ranking scores.

    Relevant pairs are rare (a few per user among ``n_candidates``), so under
    plain error the best hard classifier, and hence the fair randomized one,
    says "irrelevant" almost everywhere and the constraint would be met by
    never predicting protected items relevant for anyone. With
    ``ExponentiatedGradient`` the objective is therefore the class-balanced
    error (fairlearn's ``ErrorRate`` with costs ``fp = p``, ``fn = 1 - p``,
    ``p`` the positive rate) and ``classifier_`` is fitted with
    ``class_weight="balanced"``, so that the two scores which share a ranking
    use one decision threshold. ``GridSearch`` takes no objective, so with it
    both use the plain error.

    Parameters
    ----------
    first_stage : Recommender
        Unfitted candidate generator; cloned for every fit.
    n_candidates : int, default 100
    classifier : {"logistic", "gbdt"}, default "logistic"
        ``StandardScaler`` + ``LogisticRegression`` or ``HistGradientBoostingClassifier``.
        A reduction refits the classifier many times (``ExponentiatedGradient``:
        an oracle call per iteration, up to 50), so "gbdt" with a constraint is slow.
    constraint : {None, "demographic_parity", "equalized_odds", \
"true_positive_rate_parity"}, default None
    bound : float, default 0.05
        ``difference_bound`` of the fairlearn constraint; must be > 0.
    method : {"exponentiated_gradient", "grid_search"}, default "exponentiated_gradient"
    holdout_fraction : float, default 0.2
        In ``(0, 1)``; each user keeps at least one training interaction.
    use_sensitive_feature : bool, default False
    max_pairs : int, default 200_000
    random_state : int, numpy Generator or None, default 0
        Seeds the hold-out, the pair sample and the classifiers (the first
        stage keeps its own ``random_state``).
    unknown_users : {"error", "popular"}, default "error"

    Attributes
    ----------
    first_stage_ : Recommender
        The clone of ``first_stage`` fitted on all of ``X``.
    classifier_ : estimator
        The unconstrained pair classifier.
    mitigator_ : ExponentiatedGradient, GridSearch or None
    feature_names_ : list of str

    Examples
    --------
    >>> from recsys.models import Popularity
    >>> rng = np.random.default_rng(0)
    >>> X = sp.csr_matrix((rng.random((40, 12)) < 0.4).astype(np.float32))
    >>> model = TwoStageRanker(Popularity(), n_candidates=5).fit(X)
    >>> model.feature_names_
    ['first_stage_score', 'first_stage_log_rank', 'item_log_popularity', 'user_log_activity']
    >>> model.recommend([0, 1], k=3)[0].shape
    (2, 3)
    """

    def __init__(
        self,
        first_stage: Recommender,
        *,
        n_candidates: int = 100,
        classifier: Classifier = "logistic",
        constraint: Constraint | None = None,
        bound: float = 0.05,
        method: Method = "exponentiated_gradient",
        holdout_fraction: float = 0.2,
        use_sensitive_feature: bool = False,
        max_pairs: int = 200_000,
        random_state: int | np.random.Generator | None = 0,
        unknown_users: UnknownUsers = "error",
    ) -> None:
        self.first_stage = first_stage
        self.n_candidates = n_candidates
        self.classifier = classifier
        self.constraint = constraint
        self.bound = bound
        self.method = method
        self.holdout_fraction = holdout_fraction
        self.use_sensitive_feature = use_sensitive_feature
        self.max_pairs = max_pairs
        self.random_state = random_state
        self.unknown_users = unknown_users

    # ---------------------------------------------------------------- checks
    def _check_params(self) -> None:
        if not isinstance(self.first_stage, Recommender):
            raise TypeError(
                "first_stage: expected an unfitted fairrec Recommender, got "
                f"{type(self.first_stage).__name__}"
            )
        check_scalar(self.n_candidates, "n_candidates", numbers.Integral, min_val=1)
        if self.classifier not in _CLASSIFIERS:
            raise ValueError(
                f"classifier: expected one of {list(_CLASSIFIERS)}, got {self.classifier!r}"
            )
        if self.constraint is not None and self.constraint not in _CONSTRAINTS:
            raise ValueError(
                f"constraint: expected None or one of {list(_CONSTRAINTS)}, "
                f"got {self.constraint!r}"
            )
        if (
            isinstance(self.bound, bool)
            or not isinstance(self.bound, numbers.Real)
            or not np.isfinite(self.bound)
            or self.bound <= 0
        ):
            raise ValueError(f"bound: expected a finite number > 0, got {self.bound!r}")
        if self.method not in _METHODS:
            raise ValueError(f"method: expected one of {list(_METHODS)}, got {self.method!r}")
        check_scalar(
            self.holdout_fraction,
            "holdout_fraction",
            numbers.Real,
            min_val=0.0,
            max_val=1.0,
            include_boundaries="neither",
        )
        if not isinstance(self.use_sensitive_feature, bool):
            raise TypeError(
                f"use_sensitive_feature: expected a bool, got {self.use_sensitive_feature!r}"
            )
        check_scalar(self.max_pairs, "max_pairs", numbers.Integral, min_val=1)

    def _check_side(
        self,
        n_users: int,
        n_items: int,
        user_features: np.ndarray | None,
        item_features: np.ndarray | None,
        sensitive: np.ndarray | None,
        protected_items: np.ndarray | None,
    ) -> None:
        self.user_features_ = _check_matrix(user_features, n_users, "user_features", "user")
        self.item_features_ = _check_matrix(item_features, n_items, "item_features", "item")
        if sensitive is None and self.constraint is not None:
            raise ValueError(
                f"sensitive: required when constraint={self.constraint!r}; expected one group "
                f"label per user (shape ({n_users},)), got None"
            )
        if sensitive is None and self.use_sensitive_feature:
            raise ValueError(
                "sensitive: required when use_sensitive_feature=True; expected one group "
                f"label per user (shape ({n_users},)), got None"
            )
        self.sensitive_ = None
        if sensitive is not None:
            self.sensitive_ = _check_vector(sensitive, n_users, "sensitive", "user")
        self.protected_items_ = None
        if protected_items is not None:
            protected = _check_vector(protected_items, n_items, "protected_items", "item")
            if protected.dtype != bool:
                raise TypeError(
                    f"protected_items: expected a boolean mask, got dtype {protected.dtype}"
                )
            self.protected_items_ = protected

    # ---------------------------------------------------------------- fitting
    def fit(
        self,
        X: sp.spmatrix,
        y: None = None,
        *,
        user_features: np.ndarray | None = None,
        item_features: np.ndarray | None = None,
        sensitive: np.ndarray | None = None,
        protected_items: np.ndarray | None = None,
    ) -> TwoStageRanker:
        """Learn the pair classifier(s) from a hold-out; see the class docstring."""
        self._check_params()
        X = check_user_items(X)
        n_users, n_items = X.shape
        self._check_side(
            n_users, n_items, user_features, item_features, sensitive, protected_items
        )
        if self.sensitive_ is not None:
            self.sensitive_groups_ = np.unique(self.sensitive_)
        self.feature_names_ = self._feature_names()
        rng = np.random.default_rng(self.random_state)
        seed = int(rng.integers(2**31 - 1))
        u, i, F, labels = self._training_pairs(X, rng)

        # same error costs as the reduction's objective, so that unconstrained and
        # constrained scores which share one ranking are on one scale
        balanced = self.method == "exponentiated_gradient"
        self.classifier_ = self._new_classifier(seed, balanced=balanced).fit(F, labels)
        self.mitigator_ = None
        if self.constraint is not None:
            mask = self._constrained(i)
            _check_two_classes(labels[mask], "the constrained (protected) candidate pairs")
            groups = self.sensitive_[u[mask]]
            if np.unique(groups).size < 2:
                raise DataError(
                    "sensitive: the constrained candidate pairs come from a single user group "
                    f"({groups[0]!r}); a group-fairness constraint needs at least two"
                )
            with warnings.catch_warnings():
                # pandas deprecations raised from fairlearn's own code: not ours to fix
                warnings.filterwarnings("ignore", module=r"fairlearn\.")
                self.mitigator_ = self._new_mitigator(seed, float(labels[mask].mean())).fit(
                    F[mask], labels[mask], sensitive_features=groups
                )
        self.n_training_pairs_ = int(u.size)
        self.first_stage_ = clone(self.first_stage).fit(X)
        self._serving_stats = _HistoryStats(X, self.item_features_)
        # the base class validates X again and records the contract's attributes
        return super().fit(X)

    def _training_pairs(
        self, X: sp.csr_matrix, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Users, items, features and 0/1 labels of the (sampled) training pairs."""
        X_train, held = _hold_out(X, self.holdout_fraction, rng)
        users = np.flatnonzero(np.diff(held.indptr) > 0)
        if users.size == 0:
            raise DataError(
                "X: no user has two or more interactions, so nothing can be held out to "
                "label candidates"
            )
        first = clone(self.first_stage).fit(X_train)
        ids, first_scores = first.recommend(users, min(self.n_candidates, X.shape[1]))
        stats = _HistoryStats(X_train, self.item_features_)
        u, i, F = self._features(users, ids, first_scores, stats)
        labels = np.isin(u * X.shape[1] + i, _keys(held)).astype(np.int64)
        if u.size > self.max_pairs:
            keep = np.sort(rng.choice(u.size, self.max_pairs, replace=False))
            u, i, F, labels = u[keep], i[keep], F[keep], labels[keep]
        _check_two_classes(labels, "the candidate pairs")
        return u, i, F, labels

    def _fit(self, X: sp.csr_matrix) -> None:
        # everything is learned in fit(), which receives the side information
        # (features, sensitive groups) that the base class's fit does not pass on
        pass

    def _new_classifier(self, seed: int, *, balanced: bool) -> Any:
        class_weight = "balanced" if balanced else None
        if self.classifier == "gbdt":
            return HistGradientBoostingClassifier(class_weight=class_weight, random_state=seed)
        logistic = LogisticRegression(class_weight=class_weight, max_iter=1000)
        return Pipeline([("scale", StandardScaler()), ("logistic", logistic)])

    def _new_mitigator(
        self, seed: int, positive_rate: float
    ) -> ExponentiatedGradient | GridSearch:
        moment = _CONSTRAINTS[self.constraint](difference_bound=self.bound)
        # the reduction weights the samples itself: the inner classifier must not
        # re-balance them; a Pipeline only accepts per-step fit parameters
        estimator = self._new_classifier(seed, balanced=False)
        weight_name = "sample_weight" if self.classifier == "gbdt" else "logistic__sample_weight"
        if self.method == "grid_search":
            return GridSearch(estimator, moment, sample_weight_name=weight_name)
        # balanced error (a miss costs 1 - p, a false alarm p, p = positive rate)
        objective = ErrorRate(costs={"fp": positive_rate, "fn": 1.0 - positive_rate})
        return ExponentiatedGradient(
            estimator, moment, objective=objective, sample_weight_name=weight_name
        )

    def _constrained(self, items: np.ndarray) -> np.ndarray:
        if self.protected_items_ is None:
            return np.ones(items.shape, dtype=bool)
        return self.protected_items_[items]

    # --------------------------------------------------------------- features
    def _feature_names(self) -> list[str]:
        names = [
            "first_stage_score",
            "first_stage_log_rank",
            "item_log_popularity",
            "user_log_activity",
        ]
        if self.item_features_ is not None:
            names.append("user_item_affinity")
        if self.user_features_ is not None:
            names += [f"user_feature_{j}" for j in range(self.user_features_.shape[1])]
        if self.item_features_ is not None:
            names += [f"item_feature_{j}" for j in range(self.item_features_.shape[1])]
        if self.use_sensitive_feature:
            names += [f"sensitive={g}" for g in self.sensitive_groups_]
        return names

    def _features(
        self, users: np.ndarray, ids: np.ndarray, scores: np.ndarray, stats: _HistoryStats
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pair features of the valid candidates ``ids[users]``, row-major order."""
        valid = ids >= 0
        u = np.broadcast_to(users[:, None], ids.shape)[valid]
        i = ids[valid]
        rank = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)[valid]
        columns = [
            scores[valid].astype(np.float64),
            np.log1p(rank),
            stats.item_log_popularity[i],
            stats.user_log_activity[u],
        ]
        if self.item_features_ is not None:
            columns.append(np.einsum("ij,ij->i", stats.user_profile[u], self.item_features_[i]))
        blocks = [np.column_stack(columns)]
        if self.user_features_ is not None:
            blocks.append(self.user_features_[u])
        if self.item_features_ is not None:
            blocks.append(self.item_features_[i])
        if self.use_sensitive_feature:
            one_hot = self.sensitive_[u][:, None] == self.sensitive_groups_
            blocks.append(one_hot.astype(np.float64))
        return u, i, np.hstack(blocks)

    # ------------------------------------------------------------- predicting
    def candidate_features(
        self, users: np.ndarray | list[int], *, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Users, items and features ``[n_pairs, len(feature_names_)]`` of candidate pairs.

        The pairs ``recommend`` ranks for ``users`` (each user's valid first-stage
        candidates, in first-stage order, users in the given order), with the
        features the classifiers score. Users without training interactions get
        the popularity ranking from ``recommend``, not a ranking of these pairs.

        Examples
        --------
        >>> from recsys.models import Popularity
        >>> rng = np.random.default_rng(0)
        >>> X = sp.csr_matrix((rng.random((40, 12)) < 0.4).astype(np.float32))
        >>> model = TwoStageRanker(Popularity(), n_candidates=5).fit(X)
        >>> u, i, F = model.candidate_features([0, 1])
        >>> F.shape[1] == len(model.feature_names_), sorted(set(u.tolist()))
        (True, [0, 1])
        """
        check_fitted(self)
        users = np.asarray(users)
        if users.size == 0:
            users = users.astype(np.int64)
        if users.ndim != 1 or not np.issubdtype(users.dtype, np.integer):
            raise ValueError(
                f"users: expected a 1-D array of integer user indices, got dtype {users.dtype} "
                f"and shape {users.shape}"
            )
        bad = users[(users < 0) | (users >= self.n_users_)]
        if bad.size:
            raise ValueError(
                f"users: expected indices in [0, {self.n_users_}), got {bad[:5].tolist()}"
            )
        ids, first_scores = self.first_stage_.recommend(
            users, min(self.n_candidates, self.n_items_), exclude_seen=exclude_seen
        )
        return self._features(users.astype(np.int64), ids, first_scores, self._serving_stats)

    def scored_by_mitigator(self, items: np.ndarray | list[int]) -> np.ndarray:
        """True for the pairs (given by their items) whose ranking score is ``mitigator_``'s.

        All pairs with a constraint, only those of protected items with
        ``protected_items``; none without a constraint (``classifier_`` scores them).

        Examples
        --------
        >>> from recsys.models import Popularity
        >>> X = sp.csr_matrix(np.eye(4, dtype=np.float32) + np.eye(4, k=1, dtype=np.float32))
        >>> TwoStageRanker(Popularity(), n_candidates=3).fit(X).scored_by_mitigator([0, 2]).tolist()
        [False, False]
        """
        check_fitted(self)
        items = np.asarray(items, dtype=np.int64)
        if self.mitigator_ is None:
            return np.zeros(items.shape, dtype=bool)
        return self._constrained(items)

    def with_sensitive(self, sensitive: np.ndarray | list) -> TwoStageRanker:
        """A copy that ranks as if the users' groups were ``sensitive``; this model is unchanged.

        The counterfactual of the sensitive attribute
        (:func:`recsys.explain.counterfactual_flip_rate`): a shallow copy that
        shares everything this model learned (first stage, classifiers,
        statistics; nothing is refitted) and differs only in ``sensitive_``,
        one group label per training user. Only the ``sensitive=<group>``
        features read it (``use_sensitive_feature=True``), and only the user's
        own label; the classifiers and a fairlearn mitigator's predictors score
        the pair features alone. With the sensitive features the labels must
        be groups seen in ``fit`` (``sensitive_groups_``), the features' columns.

        Examples
        --------
        >>> from recsys.models import Popularity
        >>> X = sp.csr_matrix(np.eye(4, dtype=np.float32) + np.eye(4, k=1, dtype=np.float32))
        >>> group = np.array(["F", "F", "M", "M"])
        >>> model = TwoStageRanker(Popularity(), n_candidates=3, use_sensitive_feature=True)
        >>> model = model.fit(X, sensitive=group)
        >>> model.with_sensitive(["M", "M", "M", "M"]).sensitive_.tolist(), model.sensitive_.tolist()
        (['M', 'M', 'M', 'M'], ['F', 'F', 'M', 'M'])
        """
        check_fitted(self)
        labels = np.array(_check_vector(sensitive, self.n_users_, "sensitive", "user"), copy=True)
        if self.use_sensitive_feature:
            seen = set(self.sensitive_groups_.tolist())
            unseen = sorted({g for g in labels.tolist() if g not in seen}, key=str)
            if unseen:
                raise ValueError(
                    f"sensitive: expected groups seen in fit {sorted(seen, key=str)} (the "
                    f"sensitive=<group> features), got {unseen[:5]}"
                )
        other = copy.copy(self)
        other.sensitive_ = labels
        return other

    def _pair_scores(self, F: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ranking score and unconstrained probability of each pair."""
        unconstrained = _positive_proba(self.classifier_, F)
        if self.mitigator_ is None:
            return unconstrained, unconstrained
        score = unconstrained.copy()
        mask = self.scored_by_mitigator(items)
        if mask.any():
            score[mask] = self._mitigator_proba(F[mask])
        return score, unconstrained

    def _mitigator_proba(self, F: np.ndarray) -> np.ndarray:
        if isinstance(self.mitigator_, ExponentiatedGradient):
            # predict() draws one hard label from the randomized classifier; the
            # probability it says 1 (its expectation) is the stable ranking score
            return self.mitigator_._pmf_predict(F)[:, 1]
        # GridSearch keeps one deterministic predictor (the best trade-off); its
        # predict_proba ranks finer than 0/1 labels. It was fitted on the
        # reduction's relabelled, reweighted data, so it orders pairs but is not a
        # calibrated relevance probability. A constant DummyClassifier (when the
        # reduction's labels were all equal) has predict_proba as well.
        best = self.mitigator_.predictors_[self.mitigator_.best_idx_]
        if hasattr(best, "predict_proba"):
            return _positive_proba(best, F)
        return np.asarray(best.predict(F), dtype=np.float64)

    def _recommend_known(
        self, users: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        check_fitted(self)
        ids, first_scores = self.first_stage_.recommend(
            users, min(self.n_candidates, self.n_items_), exclude_seen=exclude_seen
        )
        _, items, F = self._features(users, ids, first_scores, self._serving_stats)
        valid = ids >= 0
        score = np.full(ids.shape, -np.inf)
        tie_break = np.full(ids.shape, -np.inf)
        if items.size:
            score[valid], tie_break[valid] = self._pair_scores(F, items)
        rank = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
        # best score first; then the unconstrained probability; then first-stage order
        order = np.lexsort((rank, -tie_break, -score), axis=1)[:, :k]
        out_ids = np.take_along_axis(ids, order, axis=1)
        out_scores = np.take_along_axis(score, order, axis=1).astype(np.float32)
        out_ids[~np.isfinite(out_scores)] = -1
        if out_ids.shape[1] < k:
            pad = ((0, 0), (0, k - out_ids.shape[1]))
            out_ids = np.pad(out_ids, pad, constant_values=-1)
            out_scores = np.pad(out_scores, pad, constant_values=-np.inf)
        return out_ids, out_scores


# ------------------------------------------------------------------- helpers
class _HistoryStats:
    """Per-user and per-item statistics of the history a pair's features describe."""

    def __init__(self, X: sp.csr_matrix, item_features: np.ndarray | None) -> None:
        counts = np.diff(X.indptr).astype(np.float64)
        self.user_log_activity = np.log1p(counts)
        self.item_log_popularity = np.log1p(np.bincount(X.indices, minlength=X.shape[1]))
        self.user_profile = None
        if item_features is not None:
            binary = sp.csr_matrix((np.ones(X.nnz), X.indices, X.indptr), shape=X.shape)
            self.user_profile = (binary @ item_features) / np.maximum(counts, 1.0)[:, None]


def _hold_out(
    X: sp.csr_matrix, fraction: float, rng: np.random.Generator
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split each row: ``round(fraction * n)`` entries (at least 1, at most ``n - 1``) held out."""
    counts = np.diff(X.indptr)
    n_held = np.clip(np.rint(fraction * counts), 1, None).astype(np.int64)
    n_held = np.minimum(n_held, counts - 1).clip(0)
    rows = np.repeat(np.arange(X.shape[0]), counts)
    order = np.lexsort((rng.random(X.nnz), rows))  # random order within each row
    position = np.empty(X.nnz, dtype=np.int64)
    position[order] = np.arange(X.nnz) - X.indptr[rows[order]]
    is_held = position < n_held[rows]
    return _subset(X, rows, ~is_held), _subset(X, rows, is_held)


def _subset(X: sp.csr_matrix, rows: np.ndarray, keep: np.ndarray) -> sp.csr_matrix:
    return sp.csr_matrix((X.data[keep], (rows[keep], X.indices[keep])), shape=X.shape)


def _keys(X: sp.csr_matrix) -> np.ndarray:
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
    return rows * X.shape[1] + X.indices


def _positive_proba(estimator: Any, F: np.ndarray) -> np.ndarray:
    proba = estimator.predict_proba(F)
    classes = list(estimator.classes_)
    if 1 in classes:
        return proba[:, classes.index(1)].astype(np.float64)
    return np.zeros(F.shape[0])


def _check_two_classes(labels: np.ndarray, what: str) -> None:
    if labels.size == 0 or labels.min() == labels.max():
        found = "no pairs" if labels.size == 0 else f"only label {int(labels[0])}"
        raise DataError(
            f"X: {what} need both relevant and irrelevant examples, got {found}; raise "
            "n_candidates or holdout_fraction, or give the first stage more data"
        )


def _check_matrix(value: object, n: int, name: str, what: str) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(
            f"{name}: expected a 2-D array with one row per {what} ({n} rows), got shape "
            f"{arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values")
    return arr


def _check_vector(value: object, n: int, name: str, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"{name}: expected one value per {what} (shape ({n},)), got shape {arr.shape}"
        )
    return arr
