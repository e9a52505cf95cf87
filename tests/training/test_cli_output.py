"""What `fairrec run` prints: progress on stderr unless quiet (or CI), the summary on stdout."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.cli import main

CONFIG = {
    "name": "tiny",
    "data": {"loader": "synthetic", "n_users": 100, "n_items": 50, "n_interactions": 1500},
    "models": [{"name": "pop", "type": "popularity"}],
    "explain": {"enabled": False},
}


def _run(tmp_path: Path, env: dict[str, str], *extra: str) -> int:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    return main(["run", str(cfg), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", *extra], env=env)


@pytest.mark.parametrize(("env", "extra"), [({"CI": "true"}, ()), ({}, ("--quiet",))])
def test_quiet_runs_print_nothing_on_stderr(tmp_path: Path, capfd: pytest.CaptureFixture, env: dict, extra: tuple) -> None:
    assert _run(tmp_path, env, *extra) == 0
    captured = capfd.readouterr()
    assert captured.err == ""  # no progress, no MLflow database chatter
    assert "ndcg@10" in captured.out and "MLflow UI:  mlflow ui --backend-store-uri sqlite:///" in captured.out


def test_progress_is_shown_otherwise(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    assert _run(tmp_path, {}) == 0
    err = capfd.readouterr().err
    assert "[pop] fitting popularity: done in" in err
    assert "INFO mlflow" not in err
