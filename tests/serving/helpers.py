"""Helpers for the serving tests: a hand-made catalogue, bundles, engines and a live server."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
import uvicorn
from fastapi import FastAPI

from recsys.models import Recommender
from recsys.serving import (
    GateInfo,
    ModelBundle,
    ModelRef,
    ServedModel,
    ServingEngine,
    save_bundle,
)

# A hand-made catalogue: 6 users x 5 items. Item popularity (training users):
# item a:4, b:3, c:2, d:1, e:0. Users "u4" and "u5" have no interaction (cold).
HAND_ITEMS = ["a", "b", "c", "d", "e"]
HAND_USERS = ["u0", "u1", "u2", "u3", "u4", "u5"]
HAND_X = sp.csr_matrix(np.array([
    [1, 1, 0, 0, 0],
    [1, 0, 1, 0, 0],
    [1, 1, 0, 1, 0],
    [1, 1, 1, 0, 0],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
], dtype=np.float32))
HAND_TITLES = ["Alien", "Brazil", "Casablanca", "Dune", "Eraserhead"]


def hand_items() -> pd.DataFrame:
    return pd.DataFrame({"item_id": HAND_ITEMS, "title": HAND_TITLES,
                         "category": ["x", "x", "y", "y", "y"]})


def write_bundle(directory: Path, model: Recommender, *, name: str, user_ids, item_ids,
                 items: pd.DataFrame, reranker=None, n_candidates: int = 0) -> Path:
    save_bundle(directory, name=name, model=model, reranker=reranker, n_candidates=n_candidates,
                user_ids=np.asarray(user_ids), item_ids=np.asarray(item_ids), items=items)
    return directory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server on a loopback port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def engine_for(model: Recommender, *, user_ids=HAND_USERS, item_ids=HAND_ITEMS, items=None,
               reranker=None, n_candidates: int = 0, max_reasons: int = 3):
    """A ServingEngine over an in-memory bundle (no disk, no registry)."""
    bundle = ModelBundle(name="m", model=model, reranker=reranker, n_candidates=n_candidates,
                         user_ids=np.asarray(user_ids), item_ids=np.asarray(item_ids),
                         items=hand_items() if items is None else items)
    ref = ModelRef(uri="memory", name="m", version=None, alias=None, source="memory", candidate=None,
                   gate=GateInfo(result="unregistered", summary="unregistered bundle"))
    served = ServedModel(ref=ref, bundle=bundle, loaded_at=datetime.now(UTC))
    return ServingEngine(served, max_reasons=max_reasons)
