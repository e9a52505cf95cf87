"""A password in the tracking URI reaches neither config.yaml, nor the MLflow params, nor the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from training.cli import main

SECRET = "s3cret-pw"
CONFIG = {
    "name": "redact",
    "data": {"loader": "synthetic", "n_users": 60, "n_items": 40, "n_interactions": 800},
    "models": [{"name": "pop", "type": "popularity"}],
    "evaluation": {"k": 5},
    "explain": {"enabled": False},
    "tracking": {"uri": f"http://alice:{SECRET}@127.0.0.1:9"},  # port 9 (discard): nothing answers
}


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    return path


def test_a_run_keeps_the_password_out_of_its_files_params_and_output(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # the command line's store wins over the config's
    code = main(["run", str(_config(tmp_path)), "--out", str(tmp_path / "out"), "--tracking-uri", uri], env={})
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert SECRET not in captured.out + captured.err
    written = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert written["tracking"]["uri"] == "http://alice:***@127.0.0.1:9"
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".json", ".md", ".html", ".csv"}:
            assert SECRET not in path.read_text(encoding="utf-8"), path
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("redact").experiment_id])
    params = {k: v for run in runs for k, v in run.data.params.items()}
    assert params["tracking.uri"] == "http://alice:***@127.0.0.1:9"
    assert not any(SECRET in v for run in runs for v in [*run.data.params.values(), *run.data.tags.values()])


def test_an_unreachable_store_is_named_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # mlflow's own retries would take minutes
    code = main(["run", str(_config(tmp_path)), "--out", str(tmp_path / "out")], env={})
    captured = capsys.readouterr()
    assert code == 2
    assert "tracking at http://alice:***@127.0.0.1:9\n" in captured.err  # the progress line
    assert "\nerror: MLflow tracking at http://alice:***@127.0.0.1:9: cannot open experiment" in captured.err
    assert SECRET not in captured.out + captured.err
