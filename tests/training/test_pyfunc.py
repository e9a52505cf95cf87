"""The champion is an MLflow pyfunc model: load_model and `mlflow models serve` give `fairrec serve`'s lists.

Against a real ``mlflow server`` process (tests/support/mlflow_server.py), after
one ``fairrec run`` registered and promoted a candidate.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from recsys.serving import ServingEngine, resolve_model
from tests.support.mlflow_server import MlflowServer, free_port
from training.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NAME = "pyfunc-recommender"


@pytest.fixture(autouse=True)
def _fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory):
    """A tracking server holding one promoted version of NAME (EASE + fair_share on planted-bias data)."""
    root = tmp_path_factory.mktemp("pyfunc")
    server = MlflowServer(root).start()
    raw = yaml.safe_load((CONFIGS / "planted_bias_mitigated.yaml").read_text())
    raw["name"] = "pyfunc"
    raw["explain"] = {"enabled": False}
    raw["gate"] = {"registered_model": NAME, "floors": {"ndcg_at_{k}": 0.2}}
    raw["tracking"] = {"experiment": "fairrec-pyfunc"}
    cfg = root / "pyfunc.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    try:
        assert main(["run", str(cfg), "--out", str(root / "out"), "--tracking-uri", server.uri, "--quiet"]) == 0
        yield server
    finally:
        server.stop()


def _request(engine: ServingEngine) -> pd.DataFrame:
    users = [str(u) for u in engine.served.bundle.user_ids[:3].tolist()]
    return pd.DataFrame({"user_id": users + ["no-such-user"], "k": [5, 3, 10, 4],
                         "explain": [True, False, True, True]})


def _served_lists(engine: ServingEngine, request: pd.DataFrame) -> list[tuple]:
    """What `fairrec serve` answers for each row: (user, rank, item, score, basis, explanation text)."""
    rows = []
    for user, k, explain in request.itertuples(index=False):
        result = engine.recommend(user, k=int(k), explain=bool(explain))
        rows += [(user, item.rank, item.item_id, item.score, result.basis,
                  "" if item.explanation is None else item.explanation.text) for item in result.items]
    return rows


def test_the_champion_loads_as_pyfunc_and_predicts_the_served_lists(champion: MlflowServer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.pyfunc

    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion.uri)
    engine = ServingEngine(resolve_model(f"models:/{NAME}@champion", tracking_uri=champion.uri))
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    request = _request(engine)
    predicted = model.predict(request)
    assert list(predicted.columns) == ["user_id", "rank", "item_id", "score", "basis", "explanation"]
    assert list(predicted.itertuples(index=False, name=None)) == _served_lists(engine, request)
    assert len(predicted) == 5 + 3 + 10 + 4
    assert set(predicted["basis"]) == {"history", "unknown_user"}
    # the version page's schema: user_id, k and an optional explain in; the list out
    signature = model.metadata.signature
    assert [(c.name, c.type.name, c.required) for c in signature.inputs.inputs] == [
        ("user_id", "string", True), ("k", "long", True), ("explain", "boolean", False)]
    assert signature.outputs.input_names() == list(predicted.columns)
    # explain left out: no explanation text, the same lists
    plain = model.predict(request[["user_id", "k"]])
    assert plain[["user_id", "rank", "item_id", "score"]].equals(predicted[["user_id", "rank", "item_id", "score"]])
    assert set(plain["explanation"]) == {""}


def test_the_registered_version_shows_its_datasets_tables_and_description(champion: MlflowServer) -> None:
    client = MlflowClient(champion.uri, champion.uri)
    version = client.get_model_version_by_alias(NAME, "champion")
    run = client.get_run(version.run_id)
    contexts = {d.dataset.name: [t.value for t in d.tags] for d in run.inputs.dataset_inputs}
    assert contexts == {"pyfunc-training": ["training"], "pyfunc-testing": ["testing"]}
    assert run.data.tags["mlflow.note.content"].startswith("Candidate ease_fair_share of pyfunc: ease (")
    tables = {a.path for a in client.list_artifacts(version.run_id, "tables")}
    assert tables == {"tables/per_group.json", "tables/per_attribute.json", "tables/gate_checks.json"}
    assert "gender.ndcg_at_10.F" not in run.data.metrics  # in tables/per_group.json instead
    assert {"ndcg_at_10", "gender.ndcg_at_10.difference", "disparate_impact.gender"} <= set(run.data.metrics)


@pytest.mark.slow
def test_mlflow_models_serve_answers_invocations_with_the_served_lists(champion: MlflowServer,
                                                                        tmp_path: Path) -> None:
    port = free_port()
    # mlflow runs `uvicorn` from PATH: the venv's bin directory, as in an activated venv
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": champion.uri, "PATH": path}
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(mlflow_cli), "models", "serve", "-m", f"models:/{NAME}@champion", "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _wait_ping(proc, port, tmp_path / "serve.log")
        engine = ServingEngine(resolve_model(f"models:/{NAME}@champion", tracking_uri=champion.uri))
        request = _request(engine)
        body = json.dumps({"dataframe_split": request.to_dict(orient="split")}).encode()
        post = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                      headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(post, timeout=60) as response:
            answer = json.loads(response.read())["predictions"]
        got = [(r["user_id"], r["rank"], r["item_id"], r["score"], r["basis"], r["explanation"]) for r in answer]
        assert got == _served_lists(engine, request)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        log.close()


def _wait_ping(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mlflow models serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"mlflow models serve did not answer within {timeout} s:\n{log.read_text()}")
