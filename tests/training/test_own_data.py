"""README's "Your own data" example, run on MovieLens 100K written out with other column names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from recsys.data import load_movielens_100k
from training.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_config() -> dict:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Your own data", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None, "README: the 'Your own data' section has no yaml block"
    return yaml.safe_load(block.group(1))


def _write_files(ml100k_dir: Path, root: Path, *, one_genre: bool = False) -> None:
    ds = load_movielens_100k(ml100k_dir)
    frame = ds.interactions.to_frame()
    frame.rename(columns={"user_id": "uid", "item_id": "iid", "rating": "stars", "timestamp": "ts"}).to_csv(
        root / "ratings.csv", index=False)
    ds.users[["user_id", "gender", "age_group"]].rename(
        columns={"user_id": "uid", "gender": "sex", "age_group": "age_bucket"}).to_csv(root / "users.csv", index=False)
    items = ds.items[["item_id", "title", "category"]].rename(
        columns={"item_id": "iid", "title": "name", "category": "genre"})
    if one_genre:
        items["genre"] = "Drama"
    items.to_csv(root / "items.csv", index=False)


def _run(root: Path, raw: dict, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and what was printed (errors on stderr, the summary and its warnings on stdout)."""
    (root / "my_data.yaml").write_text(yaml.safe_dump(raw))
    code = main(["run", str(root / "my_data.yaml"), "--out", str(root / "out"), "--quiet",
                 "--tracking-uri", f"sqlite:///{root / 'mlflow.db'}"])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.mark.ml100k
@pytest.mark.slow
def test_the_readme_example_reproduces_movielens_categories(ml100k_dir: Path, tmp_path: Path, capsys) -> None:
    _write_files(ml100k_dir, tmp_path)
    code, err = _run(tmp_path, _readme_config(), capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "ease" / "metrics.json").read_text())
    # the genre column became the category: diversity and amplification are real numbers, not 0
    assert metrics["diversity_at_10"] > 0.5
    assert abs(metrics["bias_amplification.gender.category.gap"]) > 0
    items = pd.read_parquet(tmp_path / "out" / "items.parquet")
    expected = load_movielens_100k(ml100k_dir).items["category"].astype(str).tolist()
    assert items["category"].astype(str).tolist() == expected  # each item's genre, as the movielens loader gives
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert not any(w.startswith("[one_category]") for w in summary["warnings"])


@pytest.mark.ml100k
def test_an_unmapped_attribute_names_the_file_the_column_and_the_field(ml100k_dir: Path, tmp_path: Path,
                                                                         capsys) -> None:
    _write_files(ml100k_dir, tmp_path)
    raw = _readme_config()
    del raw["data"]["user_columns"]
    code, err = _run(tmp_path, raw, capsys)
    assert code == 2
    assert err.strip() == (
        "error: fairness.sensitive: 'gender' is not a user attribute of this data; available: sex, age_bucket "
        f"(columns of {tmp_path / 'users.csv'}; rename one with data.user_columns)"
    )
    raw = _readme_config()
    raw["data"]["item_columns"] = {"category": "genres"}
    code, err = _run(tmp_path, raw, capsys)
    assert code == 2
    assert err.strip() == (
        f"error: {tmp_path / 'items.csv'}: missing column 'genres' (named by item_columns.category); "
        "found columns ['iid', 'name', 'genre']"
    )


@pytest.mark.ml100k
@pytest.mark.slow
def test_one_genre_only_is_a_named_warning_everywhere(ml100k_dir: Path, tmp_path: Path, capsys) -> None:
    _write_files(ml100k_dir, tmp_path, one_genre=True)
    code, err = _run(tmp_path, _readme_config(), capsys)
    assert code == 0
    expected = ("[one_category] every item has the same category ('Drama'): diversity_at_10 and "
                "bias_amplification.*.category.* are 0 by construction (map the items file's column with "
                "data.item_columns.category)")
    assert f"warning: {expected}" in err.splitlines()
    assert expected in json.loads((tmp_path / "out" / "summary.json").read_text())["warnings"]
    assert expected in (tmp_path / "out" / "ease" / "model_card.md").read_text()
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("my-data").experiment_id],
                             filter_string="tags.`mlflow.parentRunId` IS NULL")[0]
    assert expected in run.data.tags["fairrec.warnings"].splitlines()
    metrics = json.loads((tmp_path / "out" / "ease" / "metrics.json").read_text())
    assert metrics["diversity_at_10"] == 0.0
