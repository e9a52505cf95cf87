"""``fairrec monitor --model models:/NAME@champion``: the served version's record, read from the registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from recsys.errors import FairrecError
from training._monitor_source import download_served_run
from training.cli import main

NAME = "monitored"
CONFIG = {
    "name": NAME,
    "seed": 2,
    "data": {"loader": "synthetic", "n_users": 80, "n_items": 40, "n_interactions": 1600},
    "models": [{"name": "pop", "type": "popularity"}],
    "evaluation": {"k": 5},
    "explain": {"enabled": False},
}


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished run whose only candidate is version 1 of NAME, @champion; and the store's URI."""
    tmp = tmp_path_factory.mktemp("served")
    cfg = tmp / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    assert main(["run", str(cfg), "--out", str(tmp / "out"), "--tracking-uri", uri, "--quiet"], env={}) == 0
    return tmp / "out", uri


def _audit(run_dir: Path, path: Path) -> Path:
    """Two days of serving each test user their offline list (the second day with the lists reversed)."""
    recs = pd.read_parquet(run_dir / "pop" / "recommendations.parquet").sort_values(["user_id", "rank"])
    start = datetime(2026, 3, 2, tzinfo=UTC)
    lines = []
    for day in range(2):
        for j, (user, items) in enumerate(recs.groupby("user_id", sort=True)["item_id"]):
            ids = [str(i) for i in items][:: 1 if day == 0 else -1]
            lines.append(json.dumps({
                "time": (start + timedelta(days=day, seconds=60 * j)).isoformat(), "request_id": f"r{day}-{j}",
                "endpoint": "recommendations", "user_id": str(user), "model_name": NAME, "model_version": "1",
                "k": len(ids), "items": ids, "basis": "history", "reasons": ["history"] * len(ids),
                "explained": False,
            }))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_model_uri_gives_the_champion_dirs_report_logged_under_its_run(registered: tuple, tmp_path: Path) -> None:
    run_dir, uri = registered
    audit = _audit(run_dir, tmp_path / "audit.jsonl")
    common = ["monitor", "--audit", str(audit), "--min-lists", "5"]
    local = main([*common, "--champion", str(run_dir / "pop"), "--out", str(tmp_path / "local")], env={})
    served = main([*common, "--model", f"models:/{NAME}@champion", "--tracking-uri", uri,
                   "--users", str(run_dir / "users.parquet"), "--out", str(tmp_path / "served")], env={})
    assert local == served == 0
    by_dir = json.loads((tmp_path / "local" / "monitor_report.json").read_text())
    by_model = json.loads((tmp_path / "served" / "monitor_report.json").read_text())
    assert by_model == by_dir
    n_users = pd.read_parquet(run_dir / "pop" / "recommendations.parquet")["user_id"].nunique()
    assert by_model["served_versions"] == {f"{NAME}/1": 2 * n_users}
    assert [w["n_lists"] for w in by_model["windows"]] == [n_users, n_users]
    client = MlflowClient(tracking_uri=uri)
    version = client.get_model_version_by_alias(NAME, "champion")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert version.run_id == summary["models"]["pop"]["run_id"]
    logged = {a.path for a in client.list_artifacts(version.run_id, "monitor")}
    assert "monitor/monitor_report.json" in logged
    assert client.get_run(version.run_id).data.tags["fairrec.monitor"] == "ok"
    assert client.get_run(version.run_id).data.metrics["monitor.flags"] == 0.0


def test_model_without_users_names_the_option(registered: tuple, tmp_path: Path, capsys) -> None:
    run_dir, uri = registered
    code = main(["monitor", "--audit", str(tmp_path / "a.jsonl"), "--model", f"models:/{NAME}@champion",
                 "--tracking-uri", uri, "--out", str(tmp_path / "r")], env={})
    assert code == 2
    assert "monitor --users: required with --model" in capsys.readouterr().err


def test_download_lays_out_the_run_as_fairrec_run_wrote_it(registered: tuple, tmp_path: Path) -> None:
    run_dir, uri = registered
    served = download_served_run(f"models:/{NAME}/1", uri, tmp_path)
    assert served.candidate == tmp_path / "pop" and served.version == "1"
    for rel in ("config.yaml", "items.parquet", "pop/recommendations.parquet", "pop/metrics.json",
                "pop/model/bundle.json"):
        assert (tmp_path / rel).read_bytes() == (run_dir / rel).read_bytes(), rel
    assert not (tmp_path / "users.parquet").exists()
    with pytest.raises(FairrecError, match=r"monitor --model models:/monitored/7: at sqlite:///.*: cannot read "
                                           r"the version or its run"):
        download_served_run(f"models:/{NAME}/7", uri, tmp_path / "x")
