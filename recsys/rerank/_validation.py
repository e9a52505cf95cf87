"""Candidate lists with known relevance, from a validation split carved out of training data.

A re-ranker that learns anything about relevance (``ExposureBudgetReranker``
with ``cost="calibrated"``) must not look at the test split. This holds out a
random ``holdout_fraction`` of each user's *training* interactions with
:func:`recsys.data.random_holdout`, fits the first stage on the rest and
returns its top ``n_candidates`` for the users with held-out interactions,
each candidate marked relevant when it is held out. The model that serves is
then fitted on all of the training data, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.data import Interactions, random_holdout
from recsys.models._base import Recommender, check_user_items

__all__ = ["ValidationCandidates", "validation_candidates"]


@dataclass(frozen=True, kw_only=True, eq=False)
class ValidationCandidates:
    """Ranked candidate lists ``[n_users, n_candidates]`` and which of them were held out."""

    users: np.ndarray
    ids: np.ndarray
    scores: np.ndarray
    relevant: np.ndarray


def validation_candidates(
    fit_model: Callable[[sp.csr_matrix], Recommender],
    X: sp.spmatrix,
    *,
    n_candidates: int,
    holdout_fraction: float = 0.2,
    random_state: int | None = 0,
) -> ValidationCandidates:
    """Fit ``fit_model`` on all but a random part of each user's rows of ``X`` and rank for the rest.

    Parameters
    ----------
    fit_model : callable
        Takes a user x item CSR matrix and returns a fitted fairrec model (a
        fresh one per call, fitted the way the candidate's model is).
    X : sparse matrix of shape (n_users, n_items)
        The training interactions.
    n_candidates : int
        Length of the candidate lists.
    holdout_fraction : float, default 0.2
        Share of each user's interactions held out (``random_holdout``'s
        ``test_fraction``; every user keeps at least one).
    random_state : int or None, default 0

    Returns
    -------
    ValidationCandidates
        ``users`` (those with held-out interactions), their candidate ``ids``
        and ``scores`` from the model fitted on the kept part, and
        ``relevant`` (bool, same shape): the candidate is held out.

    Examples
    --------
    >>> from recsys.models import Popularity
    >>> X = sp.csr_matrix(np.array([[1, 1, 1, 0, 0], [1, 1, 0, 1, 0], [0, 1, 1, 1, 1]]))
    >>> vc = validation_candidates(lambda m: Popularity().fit(m), X, n_candidates=3,
    ...                            holdout_fraction=0.34, random_state=0)
    >>> vc.ids.shape == vc.relevant.shape == (3, 3), int(vc.relevant.sum()) <= 3
    (True, True)
    """
    if isinstance(n_candidates, bool) or not isinstance(n_candidates, (int, np.integer)) or n_candidates < 1:
        raise ValueError(f"n_candidates: expected a positive integer, got {n_candidates!r}")
    X = check_user_items(X)
    n_users, n_items = X.shape
    data = Interactions(matrix=X, user_ids=np.arange(n_users), item_ids=np.arange(n_items))
    split = random_holdout(data, test_fraction=holdout_fraction, random_state=random_state)
    held = split.test.matrix
    users = np.flatnonzero(np.diff(held.indptr) > 0)
    ids, scores = fit_model(split.train.matrix).recommend(users, n_candidates)
    # relevant: (user, item) is held out; compare sorted keys instead of a per-user loop
    held_keys = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(held.indptr)) * n_items + held.indices
    keys = users[:, None].astype(np.int64) * n_items + ids
    relevant = (ids >= 0) & np.isin(keys, held_keys)
    return ValidationCandidates(users=users, ids=ids, scores=scores, relevant=relevant)
