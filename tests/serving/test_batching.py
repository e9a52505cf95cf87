"""Batched lists: recommend_many and the request batcher give each request its own list."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from recsys.serving import load_bundle
from recsys.serving._batcher import ListBatcher
from recsys.serving._engine import ListRequest
from tests.serving.helpers import ActingFor, engine_for

REQUESTS = [
    ListRequest(user_id="3", k=5, explain=True),
    ListRequest(user_id="4", k=5, exclude=("7", "9", "nope")),
    ListRequest(user_id="nobody", k=5, explain=True),
    ListRequest(user_id="5", k=5, personalise=False),
    ListRequest(user_id="6", k=8, explain=True, exclude=("1",)),
    ListRequest(user_id="3", k=2),
]


@pytest.mark.parametrize("kind", ["ease", "ease_fair", "als", "popularity"])
def test_recommend_many_gives_each_request_what_it_gets_alone(bundles, kind):
    bundle = load_bundle(bundles[kind])
    engine = engine_for(bundle.model, user_ids=bundle.user_ids, item_ids=bundle.item_ids,
                        items=bundle.items, reranker=bundle.reranker, n_candidates=bundle.n_candidates)
    together = engine.recommend_many(REQUESTS)
    alone = [engine.recommend(r.user_id, k=r.k, personalise=r.personalise, explain=r.explain,
                              exclude=r.exclude) for r in REQUESTS]
    if kind == "als":  # implicit's batched float32 products: scores agree to rounding
        assert [_rounded(r.model_dump()) for r in together] == [_rounded(r.model_dump()) for r in alone]
    else:
        assert together == alone


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_per_user_exclusions_reach_only_their_user(bundles):
    bundle = load_bundle(bundles["ease_fair"])
    users = np.array([0, 1])
    first, _ = bundle.candidates(users, 10)
    ids, _ = bundle.candidates(users, 10, exclude=[first[0, :3], []])
    assert not np.isin(ids[0], first[0, :3]).any()
    assert np.array_equal(ids[1], first[1])
    with pytest.raises(ValueError, match=r"^exclude: expected one array of item indices for every user "
                                         r"or one per user \(2\), got 3$"):
        bundle.candidates(users, 10, exclude=[[], [], []])
    with pytest.raises(ValueError, match=r"a list with a 0-D entry$"):
        bundle.candidates(users, 10, exclude=[1, 2])


class _Holder:
    def __init__(self, engine):
        self.engine = engine


class _Engine:
    """Answers with the user id; fails for user "bad"; records batch sizes."""

    def __init__(self):
        self.batches = []

    def recommend_many(self, requests):
        self.batches.append(len(requests))
        if any(r.user_id == "bad" for r in requests):
            raise RuntimeError("bad request")
        return [r.user_id for r in requests]


def test_the_batcher_batches_concurrent_requests_and_isolates_a_failure():
    engine = _Engine()
    batcher = ListBatcher(_Holder(engine))

    async def run():
        return await asyncio.gather(*(batcher.recommend(ListRequest(user_id=u, k=1))
                                      for u in ["a", "bad", "c"]), return_exceptions=True)

    results = asyncio.run(run())
    assert results[0] == (engine, "a") and results[2] == (engine, "c")
    assert isinstance(results[1], RuntimeError) and str(results[1]) == "bad request"
    assert engine.batches == [3, 1, 1, 1]  # the batch, then each request on its own


def test_concurrent_http_requests_are_batched_and_answered_correctly(bundles, make_settings):
    from recsys.serving import create_app

    app = create_app(make_settings(bundles["ease"]))
    engine = app.state.holder.engine
    sizes = []
    original = engine.recommend_many

    def recording(requests):
        sizes.append(len(requests))
        return original(requests)

    engine.recommend_many = recording
    users = [str(u) for u in range(12)]

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost",
                                     auth=ActingFor()) as client:
            return await asyncio.gather(*(client.get(f"/users/{u}/recommendations",
                                                     params={"k": 4, "explain": "true"}) for u in users))

    responses = asyncio.run(run())
    assert max(sizes) > 1 and sum(sizes) == len(users)
    for u, r in zip(users, responses, strict=True):
        assert r.status_code == 200
        assert r.json() == original([ListRequest(user_id=u, k=4, explain=True)])[0].model_dump(mode="json")
