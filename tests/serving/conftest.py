"""Shared fixtures: small fitted bundles on disk and apps over them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recsys.data import generate_synthetic
from recsys.models import ALS, BPR, EASE, ItemKNN, Popularity
from recsys.rerank import FairShareReranker
from recsys.serving import ServeSettings, create_app
from tests.serving.helpers import (
    CREDENTIALS,
    HAND_ITEMS,
    TEST_HOSTS,
    HAND_USERS,
    HAND_X,
    ActingFor,
    hand_items,
    write_bundle,
)


@pytest.fixture(scope="session")
def synthetic():
    return generate_synthetic(n_users=80, n_items=60, n_interactions=1600, random_state=3)


@pytest.fixture(scope="session")
def bundles(tmp_path_factory, synthetic) -> dict[str, Path]:
    """Bundle directories by name: each model kind on the synthetic data, plus the hand data."""
    root = tmp_path_factory.mktemp("bundles")
    it = synthetic.interactions
    X = it.matrix
    items = synthetic.items[["item_id", "title", "category"]]
    common = {"user_ids": it.user_ids, "item_ids": it.item_ids, "items": items}
    out = {
        "ease": write_bundle(root / "ease", EASE(l2=5.0).fit(X), name="ease", **common),
        "popularity": write_bundle(root / "popularity", Popularity().fit(X), name="popularity", **common),
        "itemknn": write_bundle(root / "itemknn", ItemKNN(k_neighbours=20).fit(X), name="itemknn", **common),
        "als": write_bundle(root / "als", ALS(factors=8, iterations=5, num_threads=1).fit(X),
                            name="als", **common),
        "bpr": write_bundle(root / "bpr", BPR(factors=8, iterations=20, num_threads=1).fit(X),
                            name="bpr", **common),
    }
    # protected items: the 30 least popular ones; FA*IR with a high target share moves them up
    counts = np.asarray((X > 0).sum(axis=0)).ravel()
    protected = np.zeros(X.shape[1], dtype=bool)
    protected[np.argsort(counts, kind="stable")[:30]] = True
    reranker = FairShareReranker(strength=0.9).fit(X, protected_items=protected)
    out["ease_fair"] = write_bundle(root / "ease_fair", EASE(l2=5.0).fit(X), name="ease_fair",
                                    reranker=reranker, n_candidates=30, **common)
    out["hand_ease"] = write_bundle(root / "hand_ease", EASE(l2=1.0).fit(HAND_X), name="hand",
                                    user_ids=HAND_USERS, item_ids=HAND_ITEMS, items=hand_items())
    return out


@pytest.fixture
def make_settings(tmp_path) -> Callable[..., ServeSettings]:
    """Settings over a bundle, with the test credentials (``insecure_local=True`` drops them)."""

    def build(model: Path | str, **overrides) -> ServeSettings:
        values = {"model": str(model), "allow_unregistered": True,
                  "consent_path": tmp_path / "consent.sqlite", "audit_path": tmp_path / "audit.jsonl"}
        values.update(CREDENTIALS if not overrides.get("insecure_local") else {"allowed_hosts": TEST_HOSTS})
        values.update(overrides)
        return ServeSettings(**values)
    return build


@pytest.fixture
def make_client(make_settings) -> Iterator[Callable[..., TestClient]]:
    """A TestClient (lifespan entered) over a bundle; closed after the test.

    It sends credentials as the embedding application would (:class:`ActingFor`);
    ``acting=False`` gives a client that sends none unless told.
    """
    clients: list[TestClient] = []

    def build(model: Path | str, *, acting: bool = True, **overrides) -> TestClient:
        client = TestClient(create_app(make_settings(model, **overrides)))
        if acting:
            client.auth = ActingFor()
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)
