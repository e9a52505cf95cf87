"""`fairrec run` honours the consent store: opted-out users' interactions are not used, and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from recsys.serving import ConsentStore
from training.cli import main

CONFIG = {
    "name": "consent",
    "seed": 1,
    "data": {"loader": "synthetic", "n_users": 80, "n_items": 40, "n_interactions": 1600},
    "models": [{"name": "pop", "type": "popularity"}],
    "evaluation": {"k": 5},
    "explain": {"enabled": False},
    "gate": {"register_models": False, "promote": False},
}


def _run(tmp_path: Path, config: dict, name: str) -> tuple[int, Path]:
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(config))
    out = tmp_path / name
    code = main(["run", str(cfg), "--out", str(out), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--quiet"])
    return code, out


def test_opted_out_users_are_left_out_and_counted(tmp_path: Path, capsys) -> None:
    code, plain = _run(tmp_path, CONFIG, "plain")
    assert code == 0
    train = pd.read_parquet(plain / "split" / "train.parquet")
    test = pd.read_parquet(plain / "split" / "test.parquet")
    everything = pd.concat([train, test])
    out_users = sorted(everything["user_id"].unique())[:3]
    n_theirs = int(everything["user_id"].isin(out_users).sum())
    store = ConsentStore(tmp_path / "consent.sqlite")
    for u in out_users:
        store.set(str(u), personalisation=False)
    store.set(str(sorted(everything["user_id"].unique())[5]), personalisation=True)  # opted in: kept
    store.close()

    config = {**CONFIG, "consent": {"store": "consent.sqlite"}}  # relative to the config file
    code, honoured = _run(tmp_path, config, "honoured")
    assert code == 0
    train2 = pd.read_parquet(honoured / "split" / "train.parquet")
    test2 = pd.read_parquet(honoured / "split" / "test.parquet")
    assert not train2["user_id"].isin(out_users).any() and not test2["user_id"].isin(out_users).any()
    assert len(train2) + len(test2) == len(everything) - n_theirs
    recs = pd.read_parquet(honoured / "pop" / "recommendations.parquet")
    assert not recs["user_id"].isin(out_users).any()  # no test data, so not evaluated either
    data = json.loads((honoured / "summary.json").read_text())["data"]
    assert data["n_opted_out_users"] == 3 and data["n_opted_out_interactions"] == n_theirs


def test_a_missing_consent_store_is_a_clear_error(tmp_path: Path, capsys) -> None:
    code, out = _run(tmp_path, {**CONFIG, "consent": {"store": "nope.sqlite"}}, "missing")
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "consent.store: expected the consent database (an SQLite file)" in err
    assert "nope.sqlite does not exist" in err
