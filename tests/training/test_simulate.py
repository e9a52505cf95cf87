"""``fairrec simulate``: deterministic for a seed, round 0 is a normal run, the slope and the check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from training._config import parse_config
from training._run import run_experiment
from training._simulate import (
    AmplificationRate,
    ChoiceModel,
    SimulationResult,
    amplification_rate,
    feedback_loop_check,
    mitigation_over_rounds,
    run_simulation,
)
from training.cli import main

SMALL = {
    "name": "sim-small", "seed": 3,
    "data": {"loader": "synthetic", "n_users": 200, "n_items": 120, "n_interactions": 5000, "n_categories": 4,
             "bias_strength": 0.7},
    "fairness": {"sensitive": ["gender"], "item_group": "category", "protected_group": "cat_0"},
    "models": [{"name": "ease", "type": "ease", "params": {"l2": 50.0}},
               {"name": "ease_fair", "type": "ease", "params": {"l2": 50.0},
                "mitigation": {"kind": "fair_share", "strength": 0.3}}],
    "explain": {"enabled": False},
}


@pytest.fixture(scope="module")
def config():
    return parse_config(SMALL)


@pytest.fixture(scope="module")
def simulated(config) -> SimulationResult:
    return run_simulation(config, rounds=2, seeds=[1, 2])


def test_deterministic_for_a_seed(config, simulated):
    again = run_simulation(config, rounds=2, seeds=[1, 2])
    pd.testing.assert_frame_equal(simulated.rounds, again.rounds)
    other = run_simulation(config, rounds=2, seeds=[5])
    first = simulated.rounds[(simulated.rounds["seed"] == 1) & (simulated.rounds["candidate"] == "ease")]
    assert first["n_chosen"].iloc[0] != other.rounds["n_chosen"].iloc[0] or \
        first["ndcg"].iloc[1] != other.rounds["ndcg"].iloc[1]


def test_round_0_equals_a_normal_run(config, simulated, tmp_path):
    run = run_experiment(config, out_dir=tmp_path / "run")
    for result in run.models:
        round0 = simulated.round0[result.name]
        shared = [k for k in round0 if k in result.metrics and np.isfinite(round0[k])]
        assert len(shared) > 20
        assert {k: round0[k] for k in shared} == {k: result.metrics[k] for k in shared}
        row = simulated.rounds[(simulated.rounds["candidate"] == result.name) & (simulated.rounds["round"] == 0)]
        assert set(row["ndcg"]) == {result.metrics["ndcg_at_10"]}  # the same for every choice seed


def test_rounds_feed_choices_back(simulated):
    ease = simulated.rounds[(simulated.rounds["candidate"] == "ease") & (simulated.rounds["seed"] == 1)]
    assert ease["round"].tolist() == [0, 1, 2]
    assert (ease["n_chosen"].iloc[:2] > 0).all() and ease["n_chosen"].iloc[2] == 0
    assert simulated.twins == {"ease_fair": "ease"}


def test_choice_model_takes_relevant_items_by_position():
    relevant = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=np.float32))
    ids = np.array([[0, 1, 2], [0, 1, -1]])
    # p_relevant = 1 at rank 1: always; rank 3 (item 2): 1 / log2(4) = 0.5; nothing else
    picks = [ChoiceModel(p_relevant=1.0, p_other=0.0).choose(ids, np.array([0, 1]), relevant,
                                                               np.random.default_rng(s)) for s in range(400)]
    assert all(0 in items[users == 0] for users, items in picks)
    assert all(set(items) <= {0, 2} and set(users) == {0} for users, items in picks)
    n = sum(2 in items for _, items in picks)
    assert stats.binomtest(n, 400, 0.5).pvalue > 1e-4


def _frame(slopes: dict[str, list[float]], rounds: int = 5) -> pd.DataFrame:
    rows = []
    for cand, per_seed in slopes.items():
        for seed, slope in enumerate(per_seed):
            rows += [{"candidate": cand, "seed": seed, "round": r, "utility_gap": 0.1 + slope * r}
                     for r in range(rounds + 1)]
    return pd.DataFrame(rows)


def test_amplification_rate_is_the_mean_slope_with_a_t_interval():
    rate = amplification_rate(_frame({"a": [0.01, 0.02, 0.03]}), "a")
    assert rate.slope == pytest.approx(0.02) and rate.n_seeds == 3
    half = stats.t.ppf(0.975, 2) * 0.01 / np.sqrt(3)  # sd of (0.01, 0.02, 0.03) is 0.01
    assert (rate.low, rate.high) == pytest.approx((0.02 - half, 0.02 + half))
    assert rate.per_seed == pytest.approx((0.01, 0.02, 0.03))


def test_feedback_loop_check_verdicts():
    rate = amplification_rate(_frame({"a": [0.01, 0.011, 0.012]}), "a")
    assert feedback_loop_check(rate, max_slope=0.005).verdict == "fail"
    assert not feedback_loop_check(rate, max_slope=0.005).passed
    assert feedback_loop_check(rate, max_slope=0.02).verdict == "pass"
    wide = AmplificationRate(metric="utility_gap", slope=0.01, low=-0.01, high=0.03, n_seeds=2,
                             per_seed=(0.0, 0.02), confidence=0.95)
    check = feedback_loop_check(wide, max_slope=0.005)
    assert (check.verdict, check.passed) == ("inconclusive", True)
    assert "over 2 seed(s)" in check.reason


def test_mitigation_holds_or_decays():
    frame = _frame({"plain": [0.02], "holds": [0.0], "decays": [0.02]})
    frame.loc[frame["candidate"] == "holds", "utility_gap"] -= 0.05  # 0.05 lower at every round
    decays = frame["candidate"] == "decays"
    frame.loc[decays, "utility_gap"] = 0.05 + 0.03 * frame.loc[decays, "round"]  # from 0.05 below to 0.02 above
    result = SimulationResult(rounds=frame, twins={"holds": "plain", "decays": "plain"})
    verdicts = {m["candidate"]: m["verdict"] for m in mitigation_over_rounds(result)}
    assert verdicts == {"holds": "holds", "decays": "decays"}


def test_cli_writes_the_report(tmp_path, capsys):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    code = main(["simulate", str(path), "--rounds", "1", "--seeds", "2", "--out", str(tmp_path / "sim"),
                 "--no-tracking", "--max-slope", "1.0"], env={})
    assert code == 0
    payload = json.loads((tmp_path / "sim" / "simulation.json").read_text())
    assert set(payload["checks"]) == {"ease", "ease_fair"} and payload["checks"]["ease"]["n_seeds"] == 2
    assert (tmp_path / "sim" / "simulation.png").stat().st_size > 0
    assert "ease_fair against ease:" in capsys.readouterr().out
    assert main(["simulate", str(path), "--rounds", "0", "--no-tracking"], env={}) == 2
    assert "simulate --rounds: expected at least 1, got 0" in capsys.readouterr().err
    assert main(["simulate", str(path), "--metric", "ndcg", "--no-tracking"], env={}) == 2
    assert "--metric: expected utility_gap or parity_gap, got 'ndcg'" in capsys.readouterr().err


@pytest.mark.slow
def test_planted_bias_mitigation_holds_over_rounds():
    """configs/simulate_planted_bias.yaml, 5 rounds, 2 seeds (10 rounds, 3 seeds: README numbers)."""
    from pathlib import Path

    from training._config import load_config

    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "simulate_planted_bias.yaml")
    result = run_simulation(config, rounds=5, seeds=[7, 8])
    means = result.rounds.groupby(["candidate", "round"])["parity_gap"].mean()
    assert (means.loc["ease_fair_share"] < means.loc["ease"] - 0.1).all()  # FA*IR keeps cat_0 in F lists
    (held,) = mitigation_over_rounds(result, metric="parity_gap")
    assert held["verdict"] == "holds"
    for cand in ("ease", "ease_fair_share"):
        rate = amplification_rate(result.rounds, cand, metric="parity_gap")
        check = feedback_loop_check(rate, max_slope=0.005)
        assert rate.n_seeds == 2
        assert check.verdict == ("fail" if rate.low > 0.005 else "pass" if rate.high <= 0.005 else "inconclusive")


def test_each_round_is_an_mlflow_step(tmp_path, capsys):
    import yaml
    from mlflow import MlflowClient

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "models": SMALL["models"][:1]}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["simulate", str(path), "--rounds", "2", "--seeds", "1", "--out", str(tmp_path / "sim"),
                 "--tracking-uri", uri, "--max-slope", "1.0"], env={}) == 0
    parent = capsys.readouterr().out.split("MLflow run: ")[1].split()[0]
    client = MlflowClient(tracking_uri=uri)
    (child,) = client.search_runs([client.get_run(parent).info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "sim.ndcg"))
    assert steps == [0, 1, 2]
    assert "simulation/simulation.json" in {f.path for f in client.list_artifacts(parent, "simulation")}
