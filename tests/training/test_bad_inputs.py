"""The catalogue of bad inputs: each is one message naming the setting, exit 2, and nothing left behind.

One line per case: (id, base config, overrides or CLI arguments, expected exit code,
expected message fragment). A new config field or data check gets its line here.
Every case runs ``fairrec run`` in-process with ``--out``; none may raise (a traceback),
print more than the one ``error:`` message, create the output folder or a staged
folder, or leave an MLflow run RUNNING.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from training.cli import main

SYNTHETIC = {
    "name": "bad",
    "seed": 1,
    "data": {"loader": "synthetic", "n_users": 60, "n_items": 40, "n_interactions": 800},
    "split": {"method": "random_holdout", "test_fraction": 0.25},
    "models": [{"name": "pop", "type": "popularity"}],
    "evaluation": {"k": 5},
    "explain": {"enabled": False},
}
MOVIELENS = dict(SYNTHETIC, data={"loader": "movielens-100k", "path": "ml-garbage"})
TABLE = dict(SYNTHETIC, data={"loader": "table", "interactions": "good.csv", "users": "users.csv"})

# (id, base config, arguments after `run CONFIG`, exit code, message fragment)
CASES = [
    ("negative-seed", "synthetic", ["--set", "seed=-1"], 2, "seed: input should be greater than or equal to 0; received -1"),
    ("negative-split-seed", "synthetic", ["--set", "split.seed=-5"], 2, "split.seed: input should be greater than or equal to 0; received -5"),
    ("huge-seed", "synthetic", ["--set", "seed=99999999999"], 2, "seed: input should be less than or equal to 4294967295"),
    ("uri-unknown-scheme", "synthetic", ["--set", "tracking.uri=foo://me:s3cret@host"], 2, "tracking.uri: expected a URI with one of the schemes sqlite, file, http, https"),
    ("cli-uri-unknown-scheme", "synthetic", ["--tracking-uri", "foo://bar"], 2, "--tracking-uri: expected a URI with one of the schemes"),
    ("sqlite-uri-two-slashes", "synthetic", ["--tracking-uri", "sqlite://mlflow.db"], 2, "--tracking-uri: expected sqlite:///PATH"),
    ("biased-category-absent", "synthetic", ["--set", "data.biased_category=cat_99"], 2, "biased_category: expected one of the 8 categories 'cat_0'..'cat_7' (n_categories = 8), got 'cat_99'"),
    ("biased-group-absent", "synthetic", ["--set", "data.biased_group=X"], 2, "data.biased_group: input should be 'F' or 'M'; received 'X'"),
    ("min-train-above-every-history", "synthetic", ["--set", "split.min_train=1000"], 2, "split.min_train: expected less than the longest history in the data"),
    ("leave-last-min-train", "synthetic", ["--set", "split={method: leave_last_k, min_train: 500}"], 2, "split.min_train: expected less than the longest history"),
    ("protected-group-not-a-group", "synthetic", ["--set", "fairness.protected_group=nope"], 2, "fairness.protected_group: expected one of the groups of fairness.item_group 'popularity' (head, tail), received 'nope'"),
    ("protected-group-not-a-category", "synthetic", ["--set", "fairness.item_group=category"], 2, "fairness.protected_group: expected one of the groups of fairness.item_group 'category' (cat_0, cat_1"),
    ("threshold-above-every-rating", "synthetic", ["--set", "split.relevance_threshold=100"], 2, "split.relevance_threshold: expected at most the highest rating, 5, received 100"),
    ("time-cutoff-zero", "synthetic", ["--set", "split={method: time_cutoff, cutoff: 0}"], 2, "split.cutoff: expected a cutoff after the earliest timestamp"),
    ("time-cutoff-after-all", "synthetic", ["--set", "split={method: time_cutoff, cutoff: 99999999999}"], 2, "the test side would be empty"),
    ("k-above-catalogue", "synthetic", ["--set", "evaluation.k=500"], 2, "evaluation.k: expected at most the number of items in the data (40), received 500"),
    ("yaml-billion-laughs", "laughs", [], 2, "expected at most 100,000 values once YAML aliases are expanded"),
    ("yaml-recursive-alias", "recursive", [], 2, "an alias refers to a node that contains it"),
    ("yaml-too-deep", "deep", [], 2, "values are nested too deeply"),
    ("config-too-large", "large", [], 2, "expected a config file of at most 1,000,000 bytes"),
    ("override-billion-laughs", "synthetic", ["--set", "card.limitations=" + "[" * 3000 + "]" * 3000], 2, "--set card.limitations"),
    ("every-rating-zero", "table", ["--set", "data.interactions=zeros.csv"], 2, "zeros.csv): every rating is 0; expected some ratings above 0"),
    ("negative-rating", "table", ["--set", "data.interactions=negative.csv"], 2, "negative.csv: column 'rating' must not be negative, got -3 at data row 1"),
    ("one-item", "table", ["--set", "data.interactions=one_item.csv"], 2, "expected at least 2 users and 2 items, received 20 user(s) and 1 item(s)"),
    ("one-user", "table", ["--set", "data.interactions=one_user.csv"], 2, "expected at least 2 users and 2 items, received 1 user(s) and 15 item(s)"),
    ("binary-garbage-csv", "table", ["--set", "data.interactions=garbage.csv"], 2, "garbage.csv: expected UTF-8 CSV text, received something else"),
    ("binary-garbage-parquet", "table", ["--set", "data.interactions=garbage.parquet"], 2, "garbage.parquet: expected a Parquet file, received something else"),
    ("movielens-garbage", "movielens", [], 2, "u.data: expected the MovieLens 100K file as GroupLens ships it, received something else"),
    ("one-test-user", "table", ["--set", "data.interactions=one_long_history.csv"], 2, "split: 1 user(s) would have a test item, expected at least 2"),
]


def _csv(path: Path, rows: list[tuple], header: str = "user_id,item_id,rating,timestamp") -> None:
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The configs and data files the catalogue refers to, and one MLflow store for all cases."""
    root = tmp_path_factory.mktemp("bad")
    rng = random.Random(0)
    rows = [(u, i, rng.randint(1, 5), 1000 + 50 * u + i) for u in range(20) for i in range(15) if rng.random() < 0.6]
    _csv(root / "good.csv", rows)
    _csv(root / "zeros.csv", [(u, i, 0, t) for u, i, _, t in rows])
    _csv(root / "negative.csv", [(u, i, -r, t) for u, i, r, t in rows])
    _csv(root / "one_item.csv", [(u, 0, 3, 1000 + u) for u in range(20)])
    _csv(root / "one_user.csv", [(0, i, 4, 1000 + i) for i in range(15)])
    _csv(root / "one_long_history.csv", [(0, i, 4, 1000 + i) for i in range(15)] + [(u, u % 15, 3, 2000 + u) for u in range(1, 20)])
    _csv(root / "users.csv", [(u, "FM"[u % 2]) for u in range(20)], header="user_id,gender")
    garbage = bytes(rng.randrange(256) for _ in range(4000))
    (root / "garbage.csv").write_bytes(b"\x97" + garbage)
    (root / "garbage.parquet").write_bytes(garbage)
    (root / "synthetic.yaml").write_text(yaml.safe_dump(SYNTHETIC), encoding="utf-8")
    (root / "table.yaml").write_text(yaml.safe_dump(TABLE), encoding="utf-8")
    (root / "movielens.yaml").write_text(yaml.safe_dump(MOVIELENS), encoding="utf-8")
    (root / "ml-garbage").mkdir()
    for name in ("u.data", "u.user", "u.item"):
        (root / "ml-garbage" / name).write_bytes(garbage)
    laughs = ["name: laughs", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    (root / "laughs.yaml").write_text("\n".join(laughs) + "\n", encoding="utf-8")
    (root / "recursive.yaml").write_text("name: &a [*a]\n", encoding="utf-8")
    (root / "deep.yaml").write_text("name: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    (root / "large.yaml").write_text("name: big\n" + "# padding\n" * 110_000, encoding="utf-8")
    return root


@pytest.mark.parametrize(("base", "args", "code", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_message(workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                        base: str, args: list[str], code: int, fragment: str) -> None:
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    out = tmp_path / "out"
    argv = ["run", str(workdir / f"{base}.yaml"), "--out", str(out), "--quiet"]
    if "--tracking-uri" not in args:
        argv += ["--tracking-uri", uri]
    assert main(argv + args, env={}) == code
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ")
    assert sum(line.startswith("error: ") for line in captured.err.splitlines()) == 1  # one message
    assert fragment in captured.err
    assert "Traceback" not in captured.err and "s3cret" not in captured.err + captured.out
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no result, no staged folder
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("bad")
    if experiment is not None:
        running = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
        assert running == []


def test_rank_by_a_metric_the_run_does_not_produce(workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    argv = ["run", str(workdir / "synthetic.yaml"), "--out", str(tmp_path / "out"), "--quiet",
            "--tracking-uri", uri, "--set", "gate.rank_by=ndgc_at_{k}"]
    assert main(argv, env={}) == 2
    err = capsys.readouterr().err
    assert "gate.rank_by: 'ndgc_at_5' is not a metric this run produces (did you mean 'ndcg_at_5'?)" in err
