"""Generated `fairrec run` candidate directories and audit logs, with an optional planted shift.

Items ``i0..`` are ``head`` (the first fifth) or ``tail`` (protected) and carry one
of five categories; users ``u0..`` are half ``F``, half ``M``. Every list holds
``k`` items; each slot is a tail item with probability ``tail_share``. The
offline reference is one such list per user; the audit log draws users at
random over ``n_days`` days. With ``shift_day`` set, from that day on the
lists served to ``F`` users hold no tail item at all.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

N_CATEGORIES = 5


def write_run(root: Path, *, n_users: int = 400, n_items: int = 200, k: int = 10,
              tail_share: float = 0.3, seed: int = 0) -> Path:
    """A run directory like ``fairrec run --out`` writes; returns the candidate directory ``root/ease``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    n_head = n_items // 5
    items = pd.DataFrame({
        "item_id": [f"i{j}" for j in range(n_items)],
        "category": [f"c{j % N_CATEGORIES}" for j in range(n_items)],
        "popularity_group": ["head"] * n_head + ["tail"] * (n_items - n_head),
    })
    users = pd.DataFrame({"user_id": [f"u{j}" for j in range(n_users)],
                          "gender": ["F" if j % 2 else "M" for j in range(n_users)]})
    items.to_parquet(root / "items.parquet", index=False)
    users.to_parquet(root / "users.parquet", index=False)
    (root / "config.yaml").write_text(yaml.safe_dump({"fairness": {
        "sensitive": ["gender"], "item_group": "popularity", "protected_group": "tail",
        "amplification_attribute": "category"}}), encoding="utf-8")
    cand = root / "ease"
    cand.mkdir(exist_ok=True)
    lists = draw_lists(rng, n_users, n_items, k, tail_share)
    pd.DataFrame({
        "user_id": np.repeat(users["user_id"].to_numpy(), k),
        "item_id": items["item_id"].to_numpy()[lists.ravel()],
        "rank": np.tile(np.arange(1, k + 1), n_users).astype(np.int32),
        "score": np.tile(np.linspace(1, 0, k), n_users),
    }).to_parquet(cand / "recommendations.parquet", index=False)
    return cand


def draw_lists(rng: np.random.Generator, n: int, n_items: int, k: int, tail_share: float | np.ndarray) -> np.ndarray:
    """``[n, k]`` item indices: each slot tail with probability ``tail_share`` (per list, or one for all)."""
    n_head = n_items // 5
    share = np.broadcast_to(np.asarray(tail_share, dtype=float).reshape(-1, 1), (n, 1))
    tail = rng.random((n, k)) < share
    head_items = rng.integers(0, n_head, size=(n, k))
    tail_items = rng.integers(n_head, n_items, size=(n, k))
    return np.where(tail, tail_items, head_items)


def write_audit(path: Path, *, n_lists: int, n_users: int = 400, n_items: int = 200, k: int = 10,
                n_days: int = 8, tail_share: float = 0.3, shift_day: int | None = None,
                opted_out_share: float = 0.05, seed: int = 1) -> None:
    """An audit log (JSON lines) of ``n_lists`` lists spread evenly over ``n_days`` days."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    users = rng.integers(0, n_users, size=n_lists)
    day = np.arange(n_lists) * n_days // n_lists
    share = np.full(n_lists, tail_share)
    if shift_day is not None:
        share[(day >= shift_day) & (users % 2 == 1)] = 0.0  # odd users are "F"
    lists = draw_lists(rng, n_lists, n_items, k, share)
    basis = np.where(rng.random(n_lists) < opted_out_share, "opted_out", "history")
    seconds = day * 86_400 + (np.arange(n_lists) % max(n_lists // n_days, 1)) * 86_000 // max(n_lists // n_days, 1)
    with path.open("w", encoding="utf-8") as fh:
        for j in range(n_lists):
            fh.write(json.dumps({
                "time": (start + timedelta(seconds=int(seconds[j]))).isoformat(),
                "request_id": f"r{j}", "endpoint": "recommendations", "user_id": f"u{users[j]}",
                "model_name": "m", "model_version": "1", "k": k,
                "items": [f"i{i}" for i in lists[j]], "basis": str(basis[j]),
                "reasons": ["history"] * k, "explained": False,
            }) + "\n")
