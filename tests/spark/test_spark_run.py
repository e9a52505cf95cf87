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


def _share_served_alike(bundle, lists, n_users: int = 15) -> float:
    """Share of list positions where the bundle serves the item the Spark run listed (first users)."""
    same = total = 0
    for user_id, rows in list(lists.groupby("user_id"))[:n_users]:
        user = int(np.flatnonzero(bundle.user_ids.astype(str) == str(user_id))[0])
        ids, _ = bundle.recommend(np.array([user]), 5)
        served = bundle.item_ids[ids[0]].astype(str).tolist()
        same += sum(a == b for a, b in zip(served, rows.sort_values("rank")["item_id"].astype(str), strict=True))
        total += len(served)
    return same / total


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


@pytest.mark.slow
def test_a_re_ranked_sweep_is_chosen_on_validation_and_served_as_spark_ranked_it(spark, tmp_path) -> None:
    """FA*IR per partition: a sweep chosen on validation, the twin comparison, and a bundle that re-ranks alike."""
    config = ExperimentConfig.model_validate({
        **_config().model_dump(mode="json", exclude={"models"}),
        "models": [{"type": "als", "name": "als_fair", "params": {"factors": 8, "iterations": 4},
                    "mitigation": {"kind": "fair_share", "strength": 0.5, "n_candidates": 20},
                    "sweep": {"parameter": "strength", "values": [0.2, 0.9]}}],
    })
    result = run_experiment(config, out_dir=tmp_path / "run")
    out = tmp_path / "run"
    validation = json.loads((out / "validation.json").read_text())
    assert len(validation) == 2  # both sweep values scored on validation, one refitted and tested
    (chosen,) = result.models
    assert chosen.name in validation and chosen.sweep_of == "als_fair"
    metrics = json.loads((out / chosen.name / "metrics.json").read_text())
    assert "twin.ndcg_at_5" in metrics and "mitigation.ndcg_at_5.relative_change" in metrics
    assert any(k.startswith("gate.levelling_down.gender") for k in metrics)
    report = json.loads((out / chosen.name / "fairness_report.json").read_text())
    assert report["twin_comparison"]
    bundle = load_bundle(out / chosen.name / "model")
    assert type(bundle.reranker).__name__ == "FairShareReranker"
    lists = spark.read.parquet(str(out / chosen.name / "recommendations.parquet")).toPandas()
    assert _share_served_alike(bundle, lists) >= 0.9  # Spark's float32 BLAS vs numpy's may swap near-ties


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


@pytest.mark.slow
def test_category_share_with_bootstrap_intervals_runs_and_serves_as_spark_ranked(spark, tmp_path) -> None:
    """category_share fitted on the driver from Spark lists, re-ranked per partition; n_boot intervals."""
    base = _config().model_dump(mode="json", exclude={"models"})
    config = ExperimentConfig.model_validate({
        **base, "fairness": {**base["fairness"], "n_boot": 30},
        "models": [{"type": "als", "name": "als_cat", "params": {"factors": 8, "iterations": 4},
                    "mitigation": {"kind": "category_share", "strength": 1.0, "n_candidates": 20,
                                   "max_fit_users": 40}}],
    })
    result = run_experiment(config, out_dir=tmp_path / "run")
    out = tmp_path / "run"
    (chosen,) = result.models
    metrics = json.loads((out / chosen.name / "metrics.json").read_text())
    assert "twin.ndcg_at_5" in metrics
    report = json.loads((out / chosen.name / "fairness_report.json").read_text())
    gender = report["consumer"]["gender"]
    assert gender["ci_level"] == 0.95
    low, high = gender["metrics"]["ndcg"]["ci"]["F"]
    assert low <= gender["metrics"]["ndcg"]["by_group"]["F"] <= high and low < high
    bundle = load_bundle(out / chosen.name / "model")
    assert type(bundle.reranker).__name__ == "CategoryShareReranker"
    assert np.abs(bundle.reranker.offsets_).max() > 0
    lists = spark.read.parquet(str(out / chosen.name / "recommendations.parquet")).toPandas()
    assert _share_served_alike(bundle, lists) >= 0.9
