"""The serving logic without HTTP: which list, which explanation, hand-checked on a 6 x 5 matrix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.explain import POPULAR_TEXT, history_scorer
from recsys.models import ALS, BPR, EASE, ItemKNN, Popularity
from recsys.serving import UnknownItemError, load_bundle
from recsys.serving._engine import LABELS, NO_RAISE_TEXT, NOBODY_TEXT
from tests.serving.helpers import HAND_ITEMS, HAND_X, engine_for

POPULAR_ORDER = ["a", "b", "c", "d", "e"]  # 4, 3, 2, 1, 0 training users


@pytest.fixture
def ease():
    return engine_for(EASE(l2=1.0).fit(HAND_X))


def _ids(result):
    return [i.item_id for i in result.items]


def test_opted_out_users_get_the_popularity_list_including_items_they_have_seen(ease):
    result = ease.recommend("u0", k=5, personalise=False, explain=True)
    assert _ids(result) == POPULAR_ORDER  # u0 has seen a and b: not removed, no history used
    assert [i.score for i in result.items] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert (result.personalised, result.basis, result.label) == (False, "opted_out", LABELS["opted_out"])
    assert {i.reason for i in result.items} == {"popular"}
    texts = [i.explanation.text for i in result.items]
    assert texts == [POPULAR_TEXT] * 4 + [NOBODY_TEXT]  # item e: nobody chose it
    assert [i.explanation.popularity for i in result.items] == [4, 3, 2, 1, 0]


def test_the_opted_out_list_does_not_depend_on_the_users_history(ease):
    before = ease.recommend("u0", k=4, personalise=False)
    personalised_before = _ids(ease.recommend("u0", k=3))
    # rewrite u0's history in the served model: a personalised list changes, the opted-out one cannot
    X = ease.model.user_items_.tolil()
    X[0] = [0, 0, 1, 1, 0]
    ease.model.user_items_ = sp.csr_matrix(X, dtype=np.float32)
    assert _ids(ease.recommend("u0", k=3)) != personalised_before
    after = ease.recommend("u0", k=4, personalise=False)
    assert after == before
    assert _ids(after) == _ids(ease.recommend("someone-new", k=4)) == POPULAR_ORDER[:4]


def test_unknown_users_get_the_popularity_list_labelled(ease):
    result = ease.recommend("nobody", k=3)
    assert _ids(result) == ["a", "b", "c"]
    assert (result.personalised, result.basis, result.label) == (
        False, "unknown_user", "Not personalised: popular items (we do not know you yet)")


def test_known_users_without_history_get_the_models_popularity_ranking(ease):
    result = ease.recommend("u4", k=3, explain=True)
    assert (result.personalised, result.basis) == (False, "no_history")
    assert _ids(result) == ["a", "b", "c"]
    assert [i.explanation.method for i in result.items] == ["popularity"] * 3


def test_personalised_lists_exclude_seen_items_and_the_requested_exclusions(ease):
    # u0 watched a and b; EASE scores c = B[a,c] + B[b,c] and d = B[a,d] + B[b,d]
    B = ease.model.B_
    result = ease.recommend("u0", k=5, exclude=["d", "zzz", "d"])
    assert result.basis == "history" and result.personalised
    assert _ids(result) == ["c", "e"]
    assert result.items[0].score == pytest.approx(B[0, 2] + B[1, 2], abs=1e-6)
    assert (result.excluded, result.unknown_exclusions) == (["d"], ["zzz"])


def test_history_explanations_are_exact_shapley_values_of_the_served_score(ease):
    B = ease.model.B_
    result = ease.recommend("u0", k=3, explain=True)
    c = result.items[0]
    assert c.item_id == "c"
    # phi_j = x_uj * B[j, c] for u0's history items a (0.474) and b (-0.053): only a is positive
    assert [(r.item_id, r.title) for r in c.explanation.reasons] == [("a", "Alien")]
    assert c.explanation.reasons[0].weight == pytest.approx(B[0, 2], abs=1e-6)
    assert c.explanation.explained_score == pytest.approx(c.score, abs=1e-6)
    assert c.explanation.text == "Because you watched Alien"
    assert (c.explanation.method, c.explanation.exact, c.explanation.faithful) == ("shap", True, True)
    assert c.reason == "history"
    # item e: no history item raises its score, and the text says exactly that
    e = result.items[2]
    assert (e.item_id, e.explanation.reasons, e.explanation.text, e.reason) == (
        "e", [], NO_RAISE_TEXT, "weak_history")


def test_reranked_models_explain_the_first_stage_score_and_say_when_the_position_moved(bundles):
    bundle = load_bundle(bundles["ease_fair"])
    engine = engine_for(bundle.model, user_ids=bundle.user_ids, item_ids=bundle.item_ids,
                        items=bundle.items, reranker=bundle.reranker,
                        n_candidates=bundle.n_candidates)
    moved = 0
    for u in range(20):
        result = engine.recommend(str(bundle.user_ids[u]), k=10, explain=True)
        ids, scores = bundle.recommend(np.array([u]), 10)
        assert _ids(result) == [str(bundle.item_ids[i]) for i in ids[0] if i >= 0]
        candidates, _ = bundle.candidates(np.array([u]), 10)
        first_stage = {int(i): p for p, i in enumerate(candidates[0], start=1)}
        for item, i in zip(result.items, ids[0], strict=False):
            assert item.score == pytest.approx(float(scores[0][item.rank - 1]))
            assert item.first_stage_rank == first_stage[int(i)]
            assert item.explanation.explained_score == pytest.approx(item.score, abs=1e-5)
            if item.first_stage_rank != item.rank:
                moved += 1
                assert item.explanation.note == (
                    f"Shown at position {item.rank} instead of {item.first_stage_rank} by the "
                    "model's fairness re-ranking (fair_share); the reasons explain its relevance "
                    "score, not its position.")
            else:
                assert item.explanation.note is None
        assert result.reranker == "fair_share"
    assert moved > 0  # the fixture's re-ranker does move items


def test_bpr_explanations_split_the_folded_in_score(bundles):
    bundle = load_bundle(bundles["bpr"])
    engine = engine_for(bundle.model, user_ids=bundle.user_ids, item_ids=bundle.item_ids,
                        items=bundle.items, max_reasons=1000)
    user = int(np.flatnonzero(np.diff(bundle.model.user_items_.indptr) > 0)[0])
    result = engine.recommend(str(bundle.user_ids[user]), k=3, explain=True)
    for item in result.items:
        expl = item.explanation
        assert (expl.method, expl.faithful, expl.exact) == ("representer", True, True)
        assert expl.note.startswith("The weights split the score re-computed from your history")
        internal = int(np.flatnonzero(bundle.item_ids.astype(str) == item.item_id)[0])
        # base value: the item bias (BPR's last item-factor column)
        assert expl.base_value == pytest.approx(bundle.model.item_factors_[internal, -1])
        # the explained score is the fold-in score of the user's training history
        folded = history_scorer(bundle.model).score_history(
            bundle.model.user_items_[user], np.array([internal])
        )[0, 0]
        assert expl.explained_score == pytest.approx(folded, rel=1e-9)
        # every positive weight is listed (max_reasons covers the history)
        assert all(r.weight > 0 for r in expl.reasons)
        assert item.reason == ("history" if expl.reasons else "weak_history")


def test_als_explanations_add_up_and_say_which_score_they_split(bundles):
    bundle = load_bundle(bundles["als"])
    engine = engine_for(bundle.model, user_ids=bundle.user_ids, item_ids=bundle.item_ids,
                        items=bundle.items, max_reasons=100)
    for item in engine.recommend("1", k=3, explain=True).items:
        expl = item.explanation
        assert expl.method == "als_explain" and expl.faithful
        assert expl.note.startswith("The weights split the score re-computed from your history")
        assert all(r.weight > 0 for r in expl.reasons)


def test_popularity_models_label_their_list_as_popular_items():
    engine = engine_for(Popularity().fit(HAND_X))
    result = engine.recommend("u0", k=3)
    assert _ids(result) == ["c", "d", "e"]  # a and b seen
    assert result.label == "Popular items you have not seen yet"
    assert {i.reason for i in result.items} == {"popular"}


def test_similar_items_use_the_models_own_item_relation(bundles):
    ease = engine_for(EASE(l2=1.0).fit(HAND_X))
    out = ease.similar("a", k=5)
    # row a of B: b 0.579, c 0.474, d 0.167 (e is 0: not similar)
    assert out.method == "ease_item_weights"
    assert [i.item_id for i in out.items] == ["b", "c", "d"]
    assert [i.score for i in out.items] == pytest.approx(ease.model.B_[0, [1, 2, 3]].tolist(), abs=1e-6)


def test_similar_items_of_popularity_are_co_occurrence_cosines():
    out = engine_for(Popularity().fit(HAND_X)).similar("a", k=5)
    # a's 4 users share 3 with b (3 users), 2 with c (2 users), 1 with d (1 user)
    assert out.method == "co_occurrence_cosine"
    assert [i.item_id for i in out.items] == ["b", "c", "d"]
    assert [i.score for i in out.items] == pytest.approx([3 / 12**0.5, 2 / 8**0.5, 1 / 4**0.5])


@pytest.mark.parametrize("model", [ALS(factors=4, iterations=3, num_threads=1),
                                   BPR(factors=4, iterations=3, num_threads=1)], ids=["als", "bpr"])
def test_similar_items_of_factor_models_are_factor_cosines(model):
    model.fit(HAND_X)
    out = engine_for(model).similar("b", k=4)
    Y = model.item_factors_[:, :-1] if isinstance(model, BPR) else model.item_factors_
    norms = np.linalg.norm(Y, axis=1, keepdims=True)
    unit = np.divide(Y, norms, out=np.zeros_like(Y), where=norms > 0)
    cosine = unit @ unit[1]
    expected = [HAND_ITEMS[j] for j in np.argsort(-cosine, kind="stable") if j != 1 and cosine[j] > 0]
    assert out.method == "factor_cosine"
    assert [i.item_id for i in out.items] == expected[:4]
    assert [i.score for i in out.items] == pytest.approx(
        [cosine[HAND_ITEMS.index(i.item_id)] for i in out.items], abs=1e-5)


def test_similar_items_of_an_unknown_item_name_it(ease):
    with pytest.raises(UnknownItemError, match=r"^item_id: 'zz' is not in the catalogue of model 'm'$"):
        ease.similar("zz", k=3)


def test_similar_items_of_item_knn_are_its_neighbour_similarities():
    model = ItemKNN(k_neighbours=5).fit(HAND_X)
    out = engine_for(model).similar("a", k=4)
    row = model.similarity_[0].toarray().ravel()
    expected = [HAND_ITEMS[j] for j in np.argsort(-row, kind="stable") if j != 0 and row[j] > 0]
    assert out.method == "neighbour_similarity"
    assert [i.item_id for i in out.items] == expected[:4]
    assert [i.score for i in out.items] == pytest.approx(
        [row[HAND_ITEMS.index(i.item_id)] for i in out.items], abs=1e-6)


@pytest.mark.parametrize("kind", ["ease", "itemknn", "ease_fair"])
def test_the_linear_fast_path_gives_what_history_shap_explainer_gives(bundles, kind):
    bundle = load_bundle(bundles[kind])
    args = {"user_ids": bundle.user_ids, "item_ids": bundle.item_ids, "items": bundle.items,
                "reranker": bundle.reranker, "n_candidates": bundle.n_candidates}
    fast, general = engine_for(bundle.model, **args), engine_for(bundle.model, **args)
    assert fast._linear is not None
    general._linear = None  # through HistoryShapExplainer and explanation_text
    for user in ["0", "7", "21", "50"]:
        a = fast.recommend(user, k=8, explain=True)
        b = general.recommend(user, k=8, explain=True)
        assert [i.item_id for i in a.items] == [i.item_id for i in b.items]
        for x, y in zip(a.items, b.items, strict=True):
            ex, ey = x.explanation, y.explanation
            assert (ex.text, ex.method, ex.exact, ex.note, x.reason) == (ey.text, ey.method, ey.exact, ey.note, y.reason)
            assert [r.item_id for r in ex.reasons] == [r.item_id for r in ey.reasons]
            assert [r.weight for r in ex.reasons] == pytest.approx([r.weight for r in ey.reasons], abs=1e-9)
            assert ex.explained_score == pytest.approx(ey.explained_score, abs=1e-9)
