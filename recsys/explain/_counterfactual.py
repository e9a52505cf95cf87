"""Reliance on a sensitive attribute in decisions: the counterfactual flip rate.

:func:`counterfactual_flip_rate` measures reliance on the attribute itself at
the level of decisions rather than attributions: give each user every other
group, everything else unchanged, and see whether her top-k list changes.
SHAP splits the credit of an interaction (group x item category) between its
features, so a model whose rankings hinge on the group can still put little
mass on it; a changed list cannot be split. The converse happens too: an
additive model can give the group mass without it ever changing a list. Models
read a user's group through the :class:`ReadsSensitive` protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp  # noqa: F401 (used by the doctest)

from recsys.explain._checks import check_user_indices
from recsys.models import Recommender, check_fitted

__all__ = ["CounterfactualFlips", "ReadsSensitive", "counterfactual_flip_rate"]


@runtime_checkable
class ReadsSensitive(Protocol):
    """A fitted recommender that may read each user's sensitive group when it ranks.

    ``sensitive_`` holds one group label per training user (``None`` when the
    model was fitted without them) and ``with_sensitive(labels)`` returns a
    copy that ranks as if the users' groups were ``labels``, leaving the model
    itself unchanged. A user's ranking may depend on her own label only, which
    is what lets :func:`counterfactual_flip_rate` move all sampled users at
    once. :class:`~recsys.mitigation.TwoStageRanker` implements it. A model
    that does not has no input through which to read the attribute (the
    collaborative models and popularity see only the interactions).
    """

    sensitive_: np.ndarray | None

    def with_sensitive(self, sensitive: np.ndarray) -> Recommender: ...


@dataclass(frozen=True, kw_only=True)
class CounterfactualFlips:
    """Per-user result of :func:`counterfactual_flip_rate`; read ``flip_rate`` and ``change``.

    Attributes
    ----------
    users : ndarray of int64, shape (n,)
    flipped : ndarray of bool, shape (n,)
        The user's top-k set differs under at least one other group.
    user_change : ndarray of float64, shape (n,)
        The largest ``1 - Jaccard`` of her factual and a counterfactual top-k set.
    groups : tuple
        The group values tried (every group of the training users); empty when
        the model cannot read the attribute.
    reads_sensitive : bool
        Whether the model can read the attribute (:class:`ReadsSensitive`),
        i.e. whether the lists were re-ranked; if not, every value is 0 by
        construction.
    """

    users: np.ndarray
    flipped: np.ndarray
    user_change: np.ndarray
    groups: tuple
    reads_sensitive: bool

    @property
    def flip_rate(self) -> float:
        """Share of the users whose top-k set changes under some other group; nan for no user."""
        return float(self.flipped.mean()) if self.flipped.size else float("nan")

    @property
    def change(self) -> float:
        """Mean over the users of ``user_change``, in ``[0, 1]``; nan for no user."""
        return float(self.user_change.mean()) if self.user_change.size else float("nan")


def counterfactual_flip_rate(
    model: Recommender,
    users: np.ndarray | Sequence[int],
    k: int,
    *,
    sensitive: np.ndarray | None = None,
    exclude_seen: bool = True,
) -> CounterfactualFlips:
    """How often, and how much, a user's top-k list changes when only her group changes.

    For each user ``u`` of ``users`` and each group ``g`` of the training
    users other than her own ``s_u``, her label is replaced by ``g``,
    everything else unchanged (history, candidates, other users, the fitted
    model), and her top-``k`` list is ranked again. With ``L`` her top-k set
    and ``L_g`` the counterfactual one (``-1`` padding dropped):

    * ``flipped[u]``: ``L_g != L`` for at least one ``g``; ``flip_rate`` is
      the share of users flipped. Only the *set* counts: a reordering within
      the top ``k`` is not a flip.
    * ``user_change[u] = max_g (1 - |L & L_g| / |L | L_g|)``, one minus the
      Jaccard index (0 when both lists are empty); ``change`` is its mean, in
      ``[0, 1]``. It grades what ``flip_rate`` counts as all or nothing: one
      item of ten swapped is a flip but a change of ``1 - 9/11 = 0.18``.

    Both are exactly 0 for a model whose rankings do not read the attribute.
    A model that does not implement :class:`ReadsSensitive` (every
    collaborative model, popularity) has no such input, so nothing is
    re-ranked and 0 is returned by construction (``reads_sensitive=False``).
    A :class:`~recsys.mitigation.TwoStageRanker` is always re-ranked, with or
    without its ``sensitive=<group>`` features, so a 0 for one fitted without
    them, fairlearn-mitigated ones included (their predictors score the pair
    features only), is a measurement, not an assumption. Users without
    training interactions are ranked by popularity, never flip, and count in
    the denominator. Only the attribute changes: proxies of it in the history
    stay as they are (:func:`protected_reliance` counts those).

    Reliance in attributions and in decisions can disagree either way. SHAP
    splits the credit of an interaction (group x item category) between its
    features, so a tree ranker whose lists hinge on the group can put little
    mass on it. A logistic ranker given the one-hot group adds one constant to
    the log-odds of all of a user's candidates: SHAP gives the feature mass,
    yet no list can change (flip rate exactly 0).

    Parameters
    ----------
    model : fitted Recommender
    users : 1-D array of int
        Internal user indices, in ``[0, n_users_)`` (a user outside has no group).
    k : int
        List length, at least 1.
    sensitive : ndarray of shape (n_users_,), optional
        The group of every training user, the factual labels. Default: the
        model's own ``sensitive_``; required for a :class:`ReadsSensitive`
        model fitted without them. Ignored for other models.
    exclude_seen : bool, default True
        Passed to ``recommend``.

    Returns
    -------
    CounterfactualFlips
        Per-user ``flipped`` and ``user_change``; ``flip_rate`` and ``change``.

    Notes
    -----
    The cost is one ``recommend`` of ``users`` per group (plus the factual
    one): every sampled user is moved to group ``g`` in the same copy of the
    model, since a user's ranking reads only her own label.

    Examples
    --------
    Popularity has no input a group could reach, and a two-stage ranker
    without the sensitive features ranks every user the same whatever her
    group:

    >>> from recsys.mitigation import TwoStageRanker
    >>> from recsys.models import Popularity
    >>> X = sp.csr_matrix((np.random.default_rng(0).random((40, 12)) < 0.4).astype(np.float32))
    >>> group = np.repeat(["F", "M"], 20)
    >>> flips = counterfactual_flip_rate(Popularity().fit(X), np.arange(40), 3)
    >>> flips.flip_rate, flips.reads_sensitive
    (0.0, False)
    >>> model = TwoStageRanker(Popularity(), n_candidates=5).fit(X, sensitive=group)
    >>> flips = counterfactual_flip_rate(model, np.arange(40), 3)
    >>> flips.flip_rate, flips.change, flips.groups, flips.reads_sensitive
    (0.0, 0.0, ('F', 'M'), True)
    """
    if not isinstance(model, Recommender):
        raise TypeError(f"model: expected a fitted fairrec Recommender, got {type(model).__name__}")
    check_fitted(model)
    users = check_user_indices(users, model.n_users_, why=" (a user outside has no group)")
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    if not isinstance(exclude_seen, bool):
        raise TypeError(f"exclude_seen: expected a bool, got {exclude_seen!r}")
    flipped = np.zeros(users.size, dtype=bool)
    change = np.zeros(users.size)
    if not isinstance(model, ReadsSensitive):
        return _flips(users, flipped, change, groups=(), reads_sensitive=False)
    labels = model.sensitive_ if sensitive is None else np.asarray(sensitive)
    if labels is None:
        raise ValueError(
            f"sensitive: required, as this {type(model).__name__} was fitted without sensitive "
            f"labels; expected one group label per training user (shape ({model.n_users_},)), "
            "got None"
        )
    if labels.shape != (model.n_users_,):
        raise ValueError(
            f"sensitive: expected one group label per training user (shape ({model.n_users_},)), "
            f"got shape {labels.shape}"
        )
    factual = model if sensitive is None else model.with_sensitive(labels)
    ids, _ = factual.recommend(users, k, exclude_seen=exclude_seen)
    groups = np.unique(labels)
    for g in groups:
        moved = labels[users] != g
        if not moved.any():
            continue
        counterfactual = np.array(labels, copy=True)
        counterfactual[users] = g
        other, _ = model.with_sensitive(counterfactual).recommend(
            users[moved], k, exclude_seen=exclude_seen
        )
        inter, union = _set_overlap(ids[moved], other)
        flipped[moved] |= inter != union
        jaccard = np.divide(inter, union, out=np.ones(union.shape), where=union > 0)
        change[moved] = np.maximum(change[moved], 1.0 - jaccard)
    return _flips(users, flipped, change, groups=tuple(groups.tolist()), reads_sensitive=True)


def _set_overlap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``|A & B|`` and ``|A | B|`` of the sets of each row's ids (``-1`` is padding).

    The ids of a row are distinct, as in every ``recommend`` list.
    """
    valid_a, valid_b = a >= 0, b >= 0
    inter = ((a[:, :, None] == b[:, None, :]) & valid_a[:, :, None]).sum(axis=(1, 2))
    union = valid_a.sum(axis=1) + valid_b.sum(axis=1) - inter
    return inter, union


def _flips(users: np.ndarray, flipped: np.ndarray, change: np.ndarray, *, groups: tuple,
           reads_sensitive: bool) -> CounterfactualFlips:
    for array in (users, flipped, change):
        array.flags.writeable = False
    return CounterfactualFlips(users=users, flipped=flipped, user_change=change, groups=groups,
                               reads_sensitive=reads_sensitive)
