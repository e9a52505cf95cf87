"""A servable model bundle: the fitted candidate exactly as it was evaluated, without pickle.

Layout of a bundle directory (what a registered model version points at)::

    bundle.json   {"format", "format_version", "name", "k", "n_candidates",
                   "reranker" (key or null), "reranker_params", "user_id_kind", "item_id_kind"}
    model.json    the first-stage model (:func:`recsys.models.save_model`)
    arrays.npz    its arrays
    reranker.npz  the fitted re-ranker's arrays (when there is one)
    vocab.npz     user_ids, item_ids (as text; the kinds in bundle.json restore ints)
    items.parquet item_id plus non-sensitive item columns (title, category, popularity...)

The bundle serves the *mitigated* model: the re-ranker is part of it, so what is
served is what the gate passed. A bundle holds no user attribute; a re-ranker
that needs one at serving time (the user-group blend) cannot be bundled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import DataError
from recsys.models import MODELS, Recommender, load_model, save_model
from recsys.rerank import RERANKERS, Reranker

__all__ = ["ModelBundle", "NotServableError", "load_bundle", "save_bundle"]

_FORMAT = "fairrec-bundle"
_FORMAT_VERSION = 1
#: re-rankers that need a user attribute when serving: never written into a bundle
_NEEDS_USER_ATTRIBUTE = frozenset({"user_blend"})


class NotServableError(DataError):
    """The candidate cannot be written as a servable bundle (the message says why)."""


@dataclass(frozen=True, kw_only=True)
class ModelBundle:
    """A loaded bundle: recommend with :meth:`recommend`, map ids with the vocabularies."""

    name: str
    model: Recommender
    reranker: Reranker | None
    n_candidates: int
    user_ids: np.ndarray
    item_ids: np.ndarray
    items: pd.DataFrame  # one row per internal item index, in that order

    def recommend(
        self, users: np.ndarray, k: int, *, exclude: Exclusions = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` internal item ids and scores for internal user indices, re-ranked if mitigated.

        ``exclude`` (internal item indices: one array for every user, or one per
        user) are never returned; they are removed from the candidates before
        the re-ranker sees them.
        """
        ids, scores = self.candidates(users, k, exclude=exclude)
        if self.reranker is None:
            return ids, scores
        return self.reranker.rerank(ids, scores, users=users, k=k)

    def candidates(
        self, users: np.ndarray, k: int, *, exclude: Exclusions = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first-stage lists :meth:`recommend` starts from, ``exclude`` removed.

        ``k`` items per user without a re-ranker, ``max(n_candidates, k)`` with
        one (the lists the re-ranker chooses from); ``-1`` / ``-inf`` padding.
        ``exclude``: internal item indices, one array for every user or a
        sequence of arrays, one per user.

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> from recsys.models import Popularity
        >>> model = Popularity().fit(sp.csr_matrix([[1, 0, 0], [1, 1, 0], [1, 1, 1]]))
        >>> bundle = ModelBundle(name="pop", model=model, reranker=None, n_candidates=0,
        ...                      user_ids=np.arange(3), item_ids=np.arange(3),
        ...                      items=pd.DataFrame({"item_id": np.arange(3)}))
        >>> bundle.candidates(np.array([0]), 2, exclude=np.array([1]))[0].tolist()
        [[2, -1]]
        >>> bundle.candidates(np.array([0, 0]), 2, exclude=[[1], []])[0].tolist()
        [[2, -1], [1, 2]]
        """
        users = np.asarray(users)
        depth = k if self.reranker is None else max(self.n_candidates, k)
        drops = _per_user(exclude, users.shape[0])
        extra = max((d.size for d in drops), default=0)
        ids, scores = self.model.recommend(users, depth + extra)
        if extra == 0:
            return ids, scores
        # move the excluded items to the end of each row (order otherwise kept) and pad them
        n_items = self.model.n_items_
        keys = np.concatenate([row * n_items + d for row, d in enumerate(drops)])
        cells = np.arange(ids.shape[0])[:, None] * n_items + ids
        dropped = (ids >= 0) & np.isin(cells, keys)
        order = np.argsort(dropped, axis=1, kind="stable")
        ids = np.take_along_axis(ids, order, axis=1)[:, :depth]
        scores = np.take_along_axis(scores, order, axis=1)[:, :depth]
        gone = np.take_along_axis(dropped, order, axis=1)[:, :depth]
        ids[gone] = -1
        scores[gone] = -np.inf
        return ids, scores


Exclusions = np.ndarray | Sequence[np.ndarray | Sequence[int]] | None


def _per_user(exclude: Exclusions, n_users: int) -> list[np.ndarray]:
    """One sorted array of unique item indices per user."""
    if exclude is None:
        return [np.zeros(0, dtype=np.int64)] * n_users
    if isinstance(exclude, np.ndarray) and exclude.ndim == 1:
        return [np.unique(exclude.astype(np.int64))] * n_users
    if len(exclude) != n_users:
        raise ValueError(
            f"exclude: expected one array of item indices for every user or one per user "
            f"({n_users}), got {len(exclude)}"
        )
    rows = [np.asarray(e, dtype=np.int64) for e in exclude]
    bad = [r.ndim for r in rows if r.ndim != 1]
    if bad:
        raise ValueError(
            "exclude: expected a 1-D array (every user) or a sequence of 1-D arrays (one per "
            f"user), got a {type(exclude).__name__} with a {bad[0]}-D entry"
        )
    return [np.unique(r) for r in rows]


def _kind(ids: np.ndarray) -> str:
    return "int" if np.asarray(ids).dtype.kind in "iu" else "str"


def _restore(values: np.ndarray, kind: str) -> np.ndarray:
    return values.astype(np.int64) if kind == "int" else values.astype(object)


def _reranker_key(reranker: Reranker) -> str:
    for key, cls in RERANKERS.items():
        if type(reranker) is cls:
            return key
    raise NotServableError(f"re-ranker {type(reranker).__name__} is not a registered re-ranker")


def _fitted_arrays(estimator: Any) -> dict[str, np.ndarray]:
    """The learned state of a scikit-learn style estimator: its ``name_`` attributes."""
    return {
        name: np.asarray(value)
        for name, value in vars(estimator).items()
        if name.endswith("_") and not name.startswith("_") and isinstance(value, (np.ndarray, int, float, np.number))
    }


def save_bundle(
    directory: str | Path,
    *,
    name: str,
    model: Recommender,
    reranker: Reranker | None,
    n_candidates: int,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    items: pd.DataFrame,
) -> None:
    """Write a servable bundle; raise :class:`NotServableError` (before writing) if it cannot be one."""
    inner = getattr(model, "estimator_", model)  # a reweighted model serves with its inner fit
    if type(inner) not in MODELS.values():
        raise NotServableError(
            f"{type(inner).__name__} has no saved form yet (only {', '.join(sorted(MODELS))} do)"
        )
    key = None if reranker is None else _reranker_key(reranker)
    if key in _NEEDS_USER_ATTRIBUTE:
        raise NotServableError(
            f"the {key!r} re-ranker needs each user's sensitive attribute at serving time; "
            "fairrec does not ship user attributes to serving"
        )
    if len(items) != len(item_ids):
        raise ValueError(f"items: expected one row per item ({len(item_ids)}), got {len(items)}")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    save_model(inner, path)
    meta = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "name": name,
        "n_candidates": int(n_candidates),
        "reranker": key,
        "reranker_params": None if reranker is None else reranker.get_params(),
        "user_id_kind": _kind(user_ids),
        "item_id_kind": _kind(item_ids),
    }
    if reranker is not None:
        np.savez(path / "reranker.npz", **_fitted_arrays(reranker))
    np.savez(
        path / "vocab.npz",
        user_ids=np.asarray(user_ids).astype(str),
        item_ids=np.asarray(item_ids).astype(str),
    )
    items.reset_index(drop=True).to_parquet(path / "items.parquet", index=False)
    (path / "bundle.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_bundle(directory: str | Path) -> ModelBundle:
    """Load a bundle written by :func:`save_bundle`; a clear :class:`DataError` if it is not one."""
    path = Path(directory)
    meta_file = path / "bundle.json"
    if not meta_file.is_file():
        raise DataError(f"{path}: not a fairrec model bundle (no bundle.json)")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{meta_file}: not valid JSON ({exc})") from exc
    if meta.get("format") != _FORMAT or meta.get("format_version") != _FORMAT_VERSION:
        raise DataError(
            f"{meta_file}: expected format {_FORMAT!r} version {_FORMAT_VERSION}, "
            f"got {meta.get('format')!r} version {meta.get('format_version')!r}"
        )
    model = load_model(path)
    reranker: Reranker | None = None
    if meta["reranker"] is not None:
        if meta["reranker"] not in RERANKERS:
            raise DataError(f"{meta_file}: unknown re-ranker {meta['reranker']!r}")
        reranker = RERANKERS[meta["reranker"]](**meta["reranker_params"])
        with np.load(path / "reranker.npz", allow_pickle=False) as arrays:
            for name in arrays.files:
                value = arrays[name]
                setattr(reranker, name, value.item() if value.ndim == 0 else value)
    with np.load(path / "vocab.npz", allow_pickle=False) as vocab:
        user_ids = _restore(vocab["user_ids"], meta["user_id_kind"])
        item_ids = _restore(vocab["item_ids"], meta["item_id_kind"])
    return ModelBundle(
        name=str(meta["name"]),
        model=model,
        reranker=reranker,
        n_candidates=int(meta["n_candidates"]),
        user_ids=user_ids,
        item_ids=item_ids,
        items=pd.read_parquet(path / "items.parquet"),
    )
