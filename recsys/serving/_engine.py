"""The serving logic, free of HTTP: lists, explanations and similar items for one loaded model.

A :class:`ServingEngine` is built once per loaded model (id lookups, titles,
explainer, popularity order) and is immutable afterwards, so a reload builds a
new engine and swaps it in whole.

Which list a user gets (the ``basis``):

* ``"opted_out"`` (personalisation turned off) and ``"unknown_user"``: the
  non-personalised list, the items by training popularity (most training users
  first, ties to the lower item index), minus the requested exclusions. It does
  not look at the user at all: not their history, not their seen items, and it
  is not re-ranked (the re-rankers need a known user).
* ``"history"``: the model's list (re-ranked when the model is mitigated),
  without the user's training items and the exclusions.
* ``"no_history"``: a known user without training interactions; the model gives
  them its popularity ranking (re-ranked when mitigated).

Explanations explain the *first-stage* score of each item (a re-ranker only
reorders). When re-ranking moved an item, its note says so instead of letting
the reasons appear to explain the position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.errors import FairrecError
from recsys.explain import (
    POPULAR_TEXT,
    Explanation,
    BprRepresenterExplainer,
    HistoryShapExplainer,
    ImplicitAlsExplainer,
    LinearInHistory,
    explanation_text,
    history_scorer,
    history_text,
)
from recsys.models import ALS, BPR, Popularity, Recommender
from recsys.serving._bundle import _reranker_key
from recsys.serving._schemas import (
    Basis,
    ItemExplanation,
    ModelSummary,
    Reason,
    ReasonCode,
    Recommendations,
    RecommendedItem,
    SimilarItem,
    SimilarItems,
)
from recsys.serving._similar import ItemSimilarity
from recsys.serving._source import ServedModel

__all__ = [
    "LABELS",
    "NOBODY_TEXT",
    "NO_RAISE_TEXT",
    "ListRequest",
    "ServingEngine",
    "UnknownItemError",
]

LABELS: dict[Basis, str] = {
    "history": "Personalised for you, from your history",
    "no_history": "Not personalised: popular items (there is no history for you yet)",
    "opted_out": "Not personalised: popular items (you turned personalisation off)",
    "unknown_user": "Not personalised: popular items (we do not know you yet)",
}
_POPULARITY_MODEL_LABEL = "Popular items you have not seen yet"
#: texts for what recsys.explain's wording would overstate
NOBODY_TEXT = "Nobody in the training data chose it yet; it fills the list"
NO_RAISE_TEXT = "None of the items you watched raised its score"


class UnknownItemError(FairrecError, LookupError):
    """An item id that is not in the served model's catalogue."""


def _explainer_for(
    model: Recommender,
) -> HistoryShapExplainer | ImplicitAlsExplainer | BprRepresenterExplainer:
    """The fastest faithful explainer of each model."""
    if isinstance(model, ALS):
        return ImplicitAlsExplainer(model)  # exact decomposition; no Kernel SHAP sampling per request
    if isinstance(model, BPR):
        # one fold-in solve per list; fold-in Kernel SHAP costs ~0.2 s per list
        return BprRepresenterExplainer(model)
    return HistoryShapExplainer(model)  # closed form for EASE and item-kNN; Popularity explains itself


@dataclass(frozen=True, kw_only=True)
class ListRequest:
    """One request for a list: the arguments of :meth:`ServingEngine.recommend`."""

    user_id: str
    k: int
    personalise: bool = True
    explain: bool = False
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k: expected a positive integer, got {self.k!r}")


@dataclass(frozen=True, eq=False)
class _Exclusions:
    indices: np.ndarray
    applied: list[str]
    unknown: list[str]


class ServingEngine:
    """Recommendations, explanations and similar items of one :class:`ServedModel`.

    Parameters
    ----------
    served : ServedModel
    max_reasons : int, default 3
        History items listed per explanation.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from recsys.models import EASE
    >>> from recsys.serving import GateInfo, ModelBundle, ModelRef
    >>> X = sp.csr_matrix([[1, 1, 0], [0, 1, 1], [1, 1, 1]])
    >>> bundle = ModelBundle(name="ease", model=EASE(l2=1.0).fit(X), reranker=None,
    ...                      n_candidates=0, user_ids=np.array(["ann", "bob", "cy"]),
    ...                      item_ids=np.array([10, 20, 30]),
    ...                      items=pd.DataFrame({"item_id": [10, 20, 30],
    ...                                          "title": ["Heat", "Fargo", "Alien"]}))
    >>> ref = ModelRef(uri="memory", name="ease", version=None, alias=None, source="memory",
    ...                candidate=None, gate=GateInfo(result="unregistered", summary=""))
    >>> engine = ServingEngine(ServedModel(ref=ref, bundle=bundle, loaded_at=datetime.now(UTC)))
    >>> result = engine.recommend("ann", k=1, explain=True)
    >>> result.basis, result.items[0].item_id, result.items[0].explanation.text
    ('history', '30', 'Because you watched Fargo')
    >>> engine.recommend("ann", k=1, personalise=False).label
    'Not personalised: popular items (you turned personalisation off)'
    """

    def __init__(self, served: ServedModel, *, max_reasons: int = 3) -> None:
        bundle = served.bundle
        self.served = served
        self.max_reasons = max_reasons
        self.model: Recommender = bundle.model
        self.summary = ModelSummary(name=served.name, version=served.version)
        self.reranker_key = None if bundle.reranker is None else _reranker_key(bundle.reranker)
        self._user_index = {str(u): i for i, u in enumerate(bundle.user_ids.tolist())}
        item_ids = [str(i) for i in bundle.item_ids.tolist()]
        self._item_index = {i: j for j, i in enumerate(item_ids)}
        self.item_ids = np.asarray(item_ids, dtype=object)
        self.titles = _titles(bundle.items, self.item_ids)
        self._has_titles = "title" in bundle.items.columns
        self._explainer = _explainer_for(self.model)
        self._linear: LinearInHistory | None = None
        if not isinstance(self.model, (ALS, BPR, Popularity)):
            try:
                scorer = history_scorer(self.model)
            except TypeError:  # not explained over the history: the explainer says how
                scorer = None
            if isinstance(scorer, LinearInHistory):
                self._linear = scorer
        popularity = np.asarray(self.model.item_popularity_, dtype=np.float64)
        self._popularity = popularity
        self._popular_order = np.lexsort((np.arange(popularity.size), -popularity))
        self._similarity = ItemSimilarity.for_model(self.model)
        self._history_reason: ReasonCode = "popular" if isinstance(self.model, Popularity) else "history"

    # ------------------------------------------------------------------ lookups
    @property
    def n_users(self) -> int:
        return len(self._user_index)

    @property
    def n_items(self) -> int:
        return len(self._item_index)

    def basis(self, user_id: str, *, personalise: bool) -> Basis:
        """Which list ``user_id`` gets (see the module docstring)."""
        if not personalise:
            return "opted_out"
        user = self._user_index.get(user_id)
        if user is None:
            return "unknown_user"
        return "history" if bool(self.model.personalised([user])[0]) else "no_history"

    # ---------------------------------------------------------- recommendations
    def recommend(
        self,
        user_id: str,
        *,
        k: int,
        personalise: bool = True,
        explain: bool = False,
        exclude: Sequence[str] = (),
    ) -> Recommendations:
        """The list for ``user_id``; ``personalise=False`` for a user who opted out."""
        request = ListRequest(user_id=user_id, k=k, personalise=personalise, explain=explain,
                              exclude=tuple(exclude))
        return self.recommend_many([request])[0]

    def recommend_many(self, requests: Sequence[ListRequest]) -> list[Recommendations]:
        """The lists of several requests, the first-stage model called once per distinct ``k``.

        Each list is what :meth:`recommend` gives for that request alone (a re-ranker
        still sees one user at a time: some, like the exposure budget, couple the
        users of a batch). For ALS and BPR, implicit's batched float32 products can
        move a score in its last bits.
        """
        plans = []
        for r in requests:
            basis = self.basis(r.user_id, personalise=r.personalise)
            user = self._user_index[r.user_id] if basis in ("history", "no_history") else -1
            plans.append((r, basis, user, self._exclusions(r.exclude)))
        ranked: dict[int, tuple[np.ndarray, np.ndarray, list | None]] = {}
        by_model = [i for i, plan in enumerate(plans) if plan[2] >= 0]
        for k in sorted({plans[i][0].k for i in by_model}):
            rows = [i for i in by_model if plans[i][0].k == k]
            lists = self._ranked([plans[i][2] for i in rows], k, [plans[i][3].indices for i in rows])
            ranked.update(zip(rows, lists, strict=True))
        return [self._assemble(*plan, ranked.get(i)) for i, plan in enumerate(plans)]

    def _assemble(
        self, request: ListRequest, basis: Basis, user: int, exclusions: _Exclusions,
        ranked: tuple[np.ndarray, np.ndarray, list | None] | None,
    ) -> Recommendations:
        k = request.k
        if ranked is None:  # opted out or unknown: the non-personalised list
            ids, scores = self._popular(k, exclusions.indices)
            before: list = [None] * len(ids)
        else:
            ids, scores, first_stage = ranked
            before = [None] * len(ids) if first_stage is None else first_stage
        explanations = self._explain(basis, user, ids, before) if request.explain else [None] * len(ids)
        items = [
            RecommendedItem(
                item_id=self.item_ids[item],
                title=self._title(item),
                rank=rank,
                score=score,
                first_stage_rank=b,
                reason=self._reason(basis, expl),
                explanation=expl,
            )
            for rank, (item, score, b, expl) in enumerate(
                zip(ids.tolist(), scores.tolist(), before, explanations, strict=True), start=1
            )
        ]
        personalised = basis == "history"
        label = _POPULARITY_MODEL_LABEL if personalised and isinstance(self.model, Popularity) else LABELS[basis]
        return Recommendations(
            user_id=request.user_id,
            personalised=personalised,
            basis=basis,
            label=label,
            model=self.summary,
            reranker=self.reranker_key,
            k=k,
            items=items,
            excluded=exclusions.applied,
            unknown_exclusions=exclusions.unknown,
        )

    def _ranked(
        self, users: list[int], k: int, exclude: list[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray, list | None]]:
        """The model's lists for some users and, for a re-ranked model, each item's first-stage rank."""
        bundle = self.served.bundle
        cand_ids, cand_scores = bundle.candidates(np.asarray(users, dtype=np.int64), k, exclude=exclude)
        out = []
        for row, user in enumerate(users):
            ids, scores = cand_ids[row], cand_scores[row]
            if bundle.reranker is not None:
                one_ids, one_scores = bundle.reranker.rerank(
                    cand_ids[row : row + 1], cand_scores[row : row + 1],
                    users=np.array([user], dtype=np.int64), k=k,
                )
                ids, scores = one_ids[0], one_scores[0]
            keep = ids >= 0
            ids, scores = ids[keep], scores[keep]
            if bundle.reranker is None:
                out.append((ids, scores, None))
                continue
            # a re-ranker only reorders the candidates, so every chosen item has a first-stage rank
            position = {item: p for p, item in enumerate(cand_ids[row].tolist(), start=1)}
            out.append((ids, scores, [position.get(item) for item in ids.tolist()]))
        return out

    def _popular(self, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = self._popular_order
        if exclude.size:
            order = order[~np.isin(order, exclude)]
        ids = order[:k]
        return ids, self._popularity[ids]

    def _exclusions(self, exclude: Sequence[str]) -> _Exclusions:
        applied, unknown, indices = [], [], []
        for item_id in dict.fromkeys(exclude):  # de-duplicated, order kept
            index = self._item_index.get(item_id)
            if index is None:
                unknown.append(item_id)
            else:
                applied.append(item_id)
                indices.append(index)
        return _Exclusions(np.asarray(indices, dtype=np.int64), applied, unknown)

    # ------------------------------------------------------------- explanations
    def _explain(
        self, basis: Basis, user: int, ids: np.ndarray, before: list[int | None]
    ) -> list[ItemExplanation]:
        ranks = range(1, len(ids) + 1)
        if basis != "history":  # nothing of the user's was used: the popularity explanation
            return [
                self._popularity_out(int(self._popularity[i]), self._moved(r, b))
                for i, r, b in zip(ids.tolist(), ranks, before, strict=True)
            ]
        if self._linear is not None:
            return self._linear_out(user, ids, before)
        return [
            self._explanation_out(e, r, b)
            for e, r, b in zip(self._explainer.explain(user, ids), ranks, before, strict=True)
        ]

    def _linear_out(self, user: int, ids: np.ndarray, before: list[int | None]) -> list[ItemExplanation]:
        """EASE and item-kNN: the exact Shapley values ``phi_j = x_uj * W[j, item]``.

        The same values :class:`~recsys.explain.HistoryShapExplainer` returns (both come from
        :meth:`~recsys.explain.LinearInHistory.contributions`), worded by the same
        :func:`~recsys.explain.history_text`; computed here for the whole list at once
        because building one full-history ``Explanation`` per item is most of a request's time.
        """
        X = self.model.user_items_
        start, stop = X.indptr[user], X.indptr[user + 1]
        # the user's row, built from the CSR arrays (scipy's row indexing costs ~0.1 ms here)
        row = sp.csr_matrix((X.data[start:stop], X.indices[start:stop], [0, stop - start]),
                            shape=(1, X.shape[1]))
        phi = self._linear.contributions(row, ids)  # [history items, len(ids)]
        history = np.sort(row.indices)  # contributions' row order
        totals = phi.sum(axis=0).tolist()
        # the best max_reasons history items of every item at once (stable: ties by item index)
        order = np.argsort(-phi, axis=0, kind="stable")[: self.max_reasons].T
        top_weights = np.take_along_axis(phi.T, order, axis=1)
        top_items = history[order]
        out = []
        for k, (rank, b) in enumerate(zip(range(1, len(ids) + 1), before, strict=True)):
            positive = top_weights[k] > 0
            top, weights = top_items[k][positive], top_weights[k][positive]
            reasons = [
                Reason(item_id=self.item_ids[j], title=self.titles[j], weight=w)
                for j, w in zip(top.tolist(), weights.tolist(), strict=True)
            ]
            text = history_text(top, weights, self.titles) if reasons else NO_RAISE_TEXT
            out.append(ItemExplanation(
                text=text, method="shap", reasons=reasons, explained_score=totals[k],
                base_value=0.0, exact=True, faithful=True, note=self._moved(rank, b),
            ))
        return out

    def _moved(self, rank: int, before: int | None) -> str | None:
        if before is None or before == rank:
            return None
        return (
            f"Shown at position {rank} instead of {before} by the model's fairness re-ranking "
            f"({self.reranker_key}); the reasons explain its relevance score, not its position."
        )

    @staticmethod
    def _popularity_out(n_users: int, note: str | None) -> ItemExplanation:
        return ItemExplanation(
            text=POPULAR_TEXT if n_users > 0 else NOBODY_TEXT, method="popularity", reasons=[],
            explained_score=float(n_users), base_value=0.0, exact=True, faithful=True,
            popularity=n_users, note=note,
        )

    def _reason(self, basis: Basis, expl: ItemExplanation | None) -> ReasonCode:
        if basis != "history":
            return "popular"
        if expl is None:
            return self._history_reason
        if expl.method == "popularity":
            return "popular"
        return "history" if expl.reasons else "weak_history"

    def _explanation_out(self, e: Explanation, rank: int, before: int | None) -> ItemExplanation:
        moved = self._moved(rank, before)
        if e.method == "popularity":
            return self._popularity_out(int(e.extra["n_users"]), moved)
        notes = [] if moved is None else [moved]
        top = e.top_features(self.max_reasons)
        weight = dict(zip(e.features, e.weights.tolist(), strict=True))
        reasons = [
            Reason(item_id=self.item_ids[f], title=self.titles[f], weight=float(weight[f]))
            for f in top
        ]
        # explanation_text's fallback ("popular among people with similar tastes") would
        # claim more than the weights show when no history item raised the score
        text = explanation_text(e, titles=self.titles) if reasons else NO_RAISE_TEXT
        if e.method == "als_explain" and e.extra.get("algorithm") == "mllib":
            notes.append(
                "The weights split the score re-computed from your history with the equations "
                "the model was trained with (Spark MLlib's ALS); it is the score the ranking used."
            )
        elif e.method == "als_explain":
            notes.append(
                "The weights split the score re-computed from your history (implicit's "
                "explain); the ranking used the score learned in training."
            )
        elif e.method == "representer":
            notes.append(
                "The weights split the score re-computed from your history (BPR's objective "
                "solved for your history); the ranking used the score learned in training."
            )
        return ItemExplanation(
            text=text, method=e.method, reasons=reasons, explained_score=float(e.score),
            base_value=e.base_value, exact=bool(e.extra.get("exact", False)), faithful=True,
            note=" ".join(notes) or None,
        )

    def _title(self, item: int) -> str | None:
        return str(self.titles[item]) if self._has_titles else None

    # ------------------------------------------------------------ similar items
    def similar(self, item_id: str, *, k: int) -> SimilarItems:
        """Up to ``k`` items similar to ``item_id`` (see :mod:`recsys.serving._similar`)."""
        item = self._item_index.get(item_id)
        if item is None:
            raise UnknownItemError(f"item_id: {item_id!r} is not in the catalogue of model {self.summary.name!r}")
        ids, scores = self._similarity.similar(item, k)
        return SimilarItems(
            item_id=item_id,
            title=self._title(item),
            method=self._similarity.method,
            model=self.summary,
            k=k,
            items=[
                SimilarItem(item_id=self.item_ids[i], title=self._title(i), rank=r, score=float(s))
                for r, (i, s) in enumerate(zip(ids.tolist(), scores.tolist(), strict=True), start=1)
            ],
        )


def _titles(items: pd.DataFrame, item_ids: np.ndarray) -> np.ndarray:
    """Display names per internal item: the title, or the item id where there is none."""
    if "title" not in items.columns:
        return item_ids
    titles = items["title"]
    missing = (titles.isna() | (titles.astype(str).str.strip() == "")).to_numpy()
    return np.where(missing, item_ids, titles.astype(str).to_numpy()).astype(object)
