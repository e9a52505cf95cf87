"""Train -> gate -> promote against a real `mlflow server` process, and what happens when it goes away.

The server runs on a free loopback port with its own SQLite backend store and
artifact root; it is stopped (and in the fault test killed mid-run and
restarted on the same port and store).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.support.mlflow_server import MlflowServer, free_port
from training._config import load_config
from training._progress import Progress
from training._run import run_experiment
from training._tracking import Tracker, TrackingError
from training.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NAME = "planted-bias-recommender"


@pytest.fixture(autouse=True)
def _fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    # MLflow's own client settings (read by MLflow, not by fairrec): no minutes of retries in tests
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield srv
    srv.stop()


def test_train_gate_promote_against_a_tracking_server(server: MlflowServer, tmp_path: Path, capsys) -> None:
    uri = server.uri
    for name in ("unmitigated", "mitigated"):
        assert main(["run", str(CONFIGS / f"planted_bias_{name}.yaml"), "--out", str(tmp_path / name),
                     "--tracking-uri", uri, "--quiet"]) == 0
    capsys.readouterr()
    client = MlflowClient(uri, uri)
    champion = client.get_model_version_by_alias(NAME, "champion")
    assert champion.tags["fairrec.candidate"] == "ease_fair_share"
    assert client.get_model_version(NAME, "1").tags["fairrec.gate"] == "fail"
    cfg = str(CONFIGS / "planted_bias_mitigated.yaml")
    assert main(["gate", cfg, "--model", NAME, "--version", "1", "--tracking-uri", uri]) == 1
    assert main(["gate", cfg, "--model", NAME, "--alias", "champion", "--tracking-uri", uri]) == 0
    assert main(["promote", "--model", NAME, "--version", "1", "--tracking-uri", uri]) == 1
    assert main(["promote", "--model", NAME, "--version", str(champion.version), "--tracking-uri", uri]) == 0
    # the artifacts went through the server: the card is readable from the run
    local = client.download_artifacts(champion.run_id, "model_card.md", str(tmp_path))
    assert Path(local).read_text().startswith("# Model card: ease_fair_share")


def test_an_unreachable_server_is_a_clear_error_and_writes_nothing(tmp_path: Path, capsys) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "out"
    code = main(["run", str(CONFIGS / "planted_bias_mitigated.yaml"), "--out", str(out),
                 "--tracking-uri", dead, "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: MLflow tracking at {dead}: cannot open experiment 'fairrec-planted-bias'")
    assert "Traceback" not in err
    assert not out.exists()


class _KillAt(Progress):
    """Kills the server when a step with this label starts (after earlier candidates were logged)."""

    def __init__(self, server: MlflowServer, label: str) -> None:
        super().__init__(quiet=True)
        self.server, self.label, self.fired = server, label, False

    def step(self, label: str):  # type: ignore[override]
        if label.startswith(self.label) and not self.fired:
            self.fired = True
            self.server.kill()
        return super().step(label)


def test_a_server_dying_mid_run_moves_no_alias_and_a_rerun_succeeds(server: MlflowServer, tmp_path: Path) -> None:
    raw = yaml.safe_load((CONFIGS / "planted_bias_mitigated.yaml").read_text())
    raw["name"] = "fault"
    # the default gate plus the named outcome (four-fifths on "the top-10 holds a cat_0 item")
    raw["gate"] = {"registered_model": "fault-model", "outcome_parity": {"outcome": "contains_protected"}}
    raw["explain"] = {"enabled": False}
    raw["models"] = [{"name": "ease", "type": "ease", "params": {"l2": 200.0}}] + raw["models"]
    cfg_file = tmp_path / "fault.yaml"
    cfg_file.write_text(yaml.safe_dump(raw))
    config = load_config(cfg_file, [])
    out = tmp_path / "out"
    progress = _KillAt(server, "[ease_fair_share] fitting")
    try:
        with pytest.raises(TrackingError, match=rf"MLflow tracking at {server.uri}: .* failed"):
            run_experiment(config, out_dir=out, tracker=Tracker(server.uri, "fault"), progress=progress)
        assert progress.fired and not out.exists()  # no partial run directory either
    finally:
        server.start()  # same port, same store
    client = MlflowClient(server.uri, server.uri)
    assert client.search_model_versions("name = 'fault-model'") == []  # nothing registered, no alias
    result = run_experiment(config, out_dir=out, tracker=Tracker(server.uri, "fault"))
    assert result.promotion is not None and result.promotion.winner == "ease_fair_share"
    champion = client.get_model_version_by_alias("fault-model", "champion")
    assert str(champion.version) == result.promotion.version
    summary = json.loads((out / "summary.json").read_text())
    assert summary["promotion"]["version"] == result.promotion.version
