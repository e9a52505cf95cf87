"""``fairrec monitor`` on MovieLens 100K: the served lists of a real EASE champion, as is and with a planted shift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.serving import load_bundle
from training._config import parse_config
from training._monitor import load_monitor_inputs, run_monitor
from training._run import run_experiment

pytestmark = [pytest.mark.slow, pytest.mark.ml100k]


@pytest.fixture(scope="module")
def champion(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ml100k") / "run"
    config = parse_config({
        "name": "monitor-ml100k", "seed": 42,
        "data": {"loader": "movielens-100k", "path": str(ml100k_dir)},
        "fairness": {"sensitive": ["gender"], "item_group": "popularity", "protected_group": "tail"},
        # the mitigated champion: plain EASE gives the tail 0.05% of exposure, nothing a shift could remove
        "models": [{"name": "ease_fair", "type": "ease", "params": {"l2": 500.0},
                    "mitigation": {"kind": "fair_share", "strength": 0.5}}],
        "explain": {"enabled": False},
    })
    run_experiment(config, out_dir=out)
    return out / "ease_fair"


def _serve(champion: Path, path: Path, *, n_lists: int, shift_from: int | None, seed: int) -> None:
    """Lists the bundle serves to test users drawn at random; with a shift, F users' lists lose tail items."""
    bundle = load_bundle(champion / "model")
    offline = pd.read_parquet(champion / "recommendations.parquet")
    users = pd.read_parquet(champion.parent / "users.parquet").set_index("user_id")["gender"]
    items = pd.read_parquet(champion.parent / "items.parquet")
    tail = set(items.loc[items["popularity_group"] == "tail", "item_id"].astype(str))
    index = {str(u): i for i, u in enumerate(bundle.user_ids)}
    test_users = offline["user_id"].unique()
    rng = np.random.default_rng(seed)
    drawn = rng.choice(test_users, size=n_lists)
    ids, _ = bundle.recommend(np.array([index[str(u)] for u in drawn]), 60)
    with path.open("w") as fh:
        for j, user in enumerate(drawn):
            row = [str(bundle.item_ids[i]) for i in ids[j] if i >= 0]
            if shift_from is not None and j >= shift_from and users.get(user) == "F":
                row = [i for i in row if i not in tail]
            fh.write(json.dumps({
                "time": f"2026-03-02T{j * 24 // n_lists:02d}:00:00+00:00", "request_id": f"r{j}",
                "endpoint": "recommendations", "user_id": str(user), "model_name": "m", "model_version": "1",
                "k": 10, "items": row[:10], "basis": "history", "reasons": ["history"] * 10, "explained": False,
            }) + "\n")


def test_served_lists_of_the_champion_raise_no_alarm(champion: Path, tmp_path: Path) -> None:
    _serve(champion, tmp_path / "audit.jsonl", n_lists=6000, shift_from=None, seed=1)
    report = run_monitor(tmp_path / "audit.jsonl", load_monitor_inputs(champion), window=1000)
    assert report.flagged == []
    offline = json.loads((champion / "metrics.json").read_text())["exposure_share.popularity.tail"]
    assert report.reference["exposure_share"]["tail"] == pytest.approx(offline)  # the same exposure function


def test_a_planted_shift_on_movielens_is_flagged_after_it(champion: Path, tmp_path: Path) -> None:
    _serve(champion, tmp_path / "audit.jsonl", n_lists=6000, shift_from=3000, seed=2)
    report = run_monitor(tmp_path / "audit.jsonl", load_monitor_inputs(champion), window=1000)
    assert [bool(w["flags"]) for w in report.windows] == [False] * 3 + [True] * 3
    assert all(w["tests"]["gender=F"]["exposure_flag"] for w in report.windows[3:])
