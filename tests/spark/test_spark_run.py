"""A whole run on the Spark engine (local mode): outputs, metric names, gate and a servable bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.engine import SparkEngineError
from recsys.serving import load_bundle
from training._run import run_experiment
from training._schema import ExperimentConfig


def _config(**engine) -> ExperimentConfig:
    return ExperimentConfig.model_validate({
        "name": "spark-smoke",
        "data": {"loader": "synthetic", "n_users": 120, "n_items": 50, "n_interactions": 1500},
        "split": {"method": "random_holdout", "test_fraction": 0.25},
        "models": [{"type": "als", "name": "als", "params": {"factors": 8, "iterations": 4}},
                   {"type": "popularity", "name": "pop"}],
        "evaluation": {"k": 5},
        "fairness": {"sensitive": ["gender"]},
        "engine": {"kind": "spark", "master": "local[2]", **engine},
    })


@pytest.mark.slow
def test_spark_run_writes_the_in_process_outputs(spark, tmp_path) -> None:
    result = run_experiment(_config(), out_dir=tmp_path / "run")
    out = tmp_path / "run"
    assert [m.name for m in result.models] == ["als", "pop"]
    for name in ("als", "pop"):
        metrics = json.loads((out / name / "metrics.json").read_text())
        for key in ("ndcg_at_5", "recall_at_5", "gender.ndcg_at_5.F", "demographic_parity_difference.gender",
                    "exposure_share.popularity.tail", "bias_amplification.gender.category.mean_abs"):
            assert key in metrics, key
        assert 0.0 <= metrics["ndcg_at_5"] <= 1.0
        assert json.loads((out / name / "gate.json").read_text())["checks"] is not None
        lists = spark.read.parquet(str(out / name / "recommendations.parquet")).toPandas()
        assert lists.groupby("user_id")["rank"].max().eq(5).all()
    assert result.data_stats["n_test_users"] == lists["user_id"].nunique()
    bundle = load_bundle(out / "als" / "model")
    assert type(bundle.model).__name__ == "ALS" and bundle.model.item_factors_.shape == (50, 8)
    ids, _ = bundle.recommend(np.arange(3), 5)
    assert ids.shape == (3, 5) and (ids >= 0).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "spark" and set(summary["models"]) == {"als", "pop"}


def test_unsupported_model_is_refused_before_spark_starts(tmp_path) -> None:
    config = _config().model_copy(update={"models": ExperimentConfig.model_validate({
        "name": "x", "data": {"loader": "synthetic"},
        "models": [{"type": "bpr", "name": "bpr"}]}).models})
    with pytest.raises(SparkEngineError, match=r"models\[0\].type: the Spark engine runs als, popularity; "
                                                r"got 'bpr'"):
        run_experiment(config, out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_bad_master_url_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"engine.master\n.*expected local, local\[N\], local\[\*\], "
                                         r"spark://HOST:PORT, yarn or k8s://https://HOST:PORT, got 'spark:/x'"):
        _config(master="spark:/x")


def test_unreachable_master_names_the_setting(tmp_path) -> None:
    from recsys.engine import spark_session

    with pytest.raises(SparkEngineError, match=r"engine.master: cannot reach the Spark master at "
                                               r"spark://127.0.0.1:1 \(Connection refused\)"):
        spark_session("spark://127.0.0.1:1", path="/usr/bin")
