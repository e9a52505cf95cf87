"""A malformed config fails before any data is read, naming file, dotted field, allowed and received."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from training import ConfigError, load_config

GOOD = {
    "name": "t",
    "data": {"loader": "synthetic", "n_users": 50, "n_items": 40, "n_interactions": 600},
    "models": [{"name": "pop", "type": "popularity"}, {"name": "als", "type": "als"}],
}


def _write(tmp_path: Path, raw: object, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw), encoding="utf-8")
    return path


def _with(**changes: object) -> dict:
    raw = yaml.safe_load(yaml.safe_dump(GOOD))
    for dotted, value in changes.items():
        node = raw
        keys = dotted.split("__")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        node[keys[-1]] = value
    return raw


BAD = [
    pytest.param(
        _with(data__n_user=10),
        "data: unknown key 'n_user' (did you mean 'n_users'?); allowed keys: loader, n_users",
        id="unknown-key-with-hint",
    ),
    pytest.param(
        _with(models__1__params={"factors": 0}),
        "models[1].params.factors: input should be greater than or equal to 1; received 0",
        id="out-of-range",
    ),
    pytest.param(
        _with(models__1__params={"iterations": "many"}),
        "models[1].params.iterations: input should be a valid integer, unable to parse string "
        "as an integer; received 'many'",
        id="wrong-type",
    ),
    pytest.param(
        _with(models__0__type="svd"),
        "models[0]: unknown type 'svd'; allowed: 'popularity', 'item_knn', 'als', 'bpr', 'ease'",
        id="unknown-model-type",
    ),
    pytest.param(
        _with(data__loader="netflix"),
        "data: unknown loader 'netflix'; allowed: 'synthetic', 'movielens-100k', 'table'",
        id="unknown-loader",
    ),
    pytest.param(
        _with(split={"method": "random_holdout", "test_fraction": 1.5}),
        "split.test_fraction: input should be less than 1; received 1.5",
        id="fraction-out-of-range",
    ),
    pytest.param(
        _with(data={"loader": "movielens-100k", "path": "no/such/dir"}),
        "data.path: expected a MovieLens 100K directory containing u.data, u.user, u.item; ",
        id="missing-data-dir",
    ),
    pytest.param(
        _with(data={"loader": "table", "interactions": "missing.csv"}),
        "data.interactions: expected an existing CSV or Parquet file, got ",
        id="missing-table-file",
    ),
    pytest.param(
        _with(models=[]),
        "models: list should have at least 1 item after validation, not 0; received []",
        id="no-models",
    ),
    pytest.param(
        _with(models=[{"name": "a", "type": "ease"}, {"name": "a", "type": "als"}]),
        "models: model names must be unique, 'a' appears twice",
        id="duplicate-model-names",
    ),
    pytest.param(
        _with(models__0__name="my model"),
        "models[0].name: expected 1-64 characters of letters, digits, '_', '.', '-' starting "
        "with a letter or digit, got 'my model'",
        id="unsafe-model-name",
    ),
    pytest.param(
        _with(split={"method": "time_cutoff"}),
        "split: give exactly one of cutoff (a timestamp) or test_fraction, got cutoff=None "
        "and test_fraction=None",
        id="time-cutoff-needs-one",
    ),
    pytest.param(
        _with(data__n_interactions=5000),
        "data: n_interactions must be at most n_users * n_items = 2000, got 5000",
        id="impossible-synthetic-size",
    ),
    pytest.param(
        {k: v for k, v in GOOD.items() if k != "data"},
        "data: required field is missing",
        id="missing-section",
    ),
    pytest.param(
        _with(models__1__params={"factors": 8, "alpha": -1}),
        "models[1].params.alpha: input should be greater than 0; received -1",
        id="negative-alpha",
    ),
    pytest.param(
        _with(evaluation={"k": 0}),
        "evaluation.k: input should be greater than or equal to 1; received 0",
        id="k-zero",
    ),
    pytest.param(
        _with(explain={"n_jobs": 0}),
        "explain.n_jobs: expected a positive number of processes or -1 (every core), got 0",
        id="n-jobs-zero",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), BAD)
def test_bad_config_names_file_field_and_values(tmp_path: Path, raw: dict, expected: str) -> None:
    path = _write(tmp_path, raw)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert text.startswith(f"{path}: invalid config (")
    assert expected in text


def test_good_config_validates(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, GOOD))
    assert [m.name for m in cfg.models] == ["pop", "als"]
    assert cfg.evaluation.k == 10


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    raw = _with(evaluation={"k": 0}, models__1__params={"factors": 0})
    with pytest.raises(ConfigError, match=r"invalid config \(2 problem\(s\)\)"):
        load_config(_write(tmp_path, raw))


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: t\ndata: [unclosed\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: not valid YAML at line 3")):
        load_config(path)


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level .* received list"):
        load_config(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(_write(tmp_path, ""))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_address_models_by_name_and_index(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    cfg = load_config(path, ["models.als.params.factors=8", "models.0.name=popular", "seed=7"])
    assert cfg.models[1].params.factors == 8
    assert cfg.models[0].name == "popular"
    assert cfg.seed == 7


def test_override_errors_are_clear(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match="no list entry named 'svd'; names: pop, als"):
        load_config(path, ["models.svd.params.factors=8"])
    with pytest.raises(ConfigError, match=r"expected dotted.key=value"):
        load_config(path, ["seed"])
    with pytest.raises(ConfigError, match="name is a value, not a section"):
        load_config(path, ["name.x=1"])


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "r.csv").write_text("user_id,item_id\n1,2\n")
    sub = tmp_path / "configs"
    sub.mkdir()
    raw = _with(data={"loader": "table", "interactions": "../data/r.csv"})
    cfg = load_config(_write(sub, raw))
    assert cfg.data.interactions == sub / ".." / "data" / "r.csv"
    assert cfg.data.interactions.is_file()
