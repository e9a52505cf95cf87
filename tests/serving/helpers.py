"""Helpers for the serving tests: a hand-made catalogue, bundles, engines and a live server."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Self
from urllib.parse import unquote

import httpx
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
    issue_user_token,
    save_bundle,
)

# Credentials of the test service (never real secrets); 32+ characters as ServeSettings requires.
USER_SECRET = "test-user-token-secret-0123456789abcdef"
OPERATOR_TOKEN = "test-operator-token-0123456789abcdef"
TEST_HOSTS = ("testserver", "127.0.0.1", "localhost")
CREDENTIALS = {"user_token_secret": USER_SECRET, "admin_token": OPERATOR_TOKEN, "allowed_hosts": TEST_HOSTS}


def user_token(user_id: str, **kwargs) -> str:
    """A token for ``user_id`` signed with the test secret (what the embedding application issues)."""
    return issue_user_token(user_id, secret=USER_SECRET, **kwargs)


def as_user(user_id: str, **kwargs) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(user_id, **kwargs)}"}


AS_OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
_USER_PATH = re.compile(r"^/users/(?P<user_id>[^/]+)/")


class ActingFor(httpx.Auth):
    """Credentials as the embedding application sends them: for ``/users/{id}/...`` a token for
    that id, for similar items a token of some user, and the operator token elsewhere. A request
    that already carries an Authorization header is left alone."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" not in request.headers:
            path = request.url.path
            match = _USER_PATH.match(path)
            if match:
                request.headers.update(as_user(unquote(match["user_id"])))
            elif path.startswith("/items/"):
                request.headers.update(as_user("someone"))
            elif not path.startswith("/transparency"):
                request.headers.update(AS_OPERATOR)
        yield request


def csrf_token(html: str) -> str:
    """The CSRF token in a transparency page's personalisation form."""
    match = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert match, "no CSRF token in the page"
    return match[1]

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
