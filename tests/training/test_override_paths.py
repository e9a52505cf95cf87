"""Relative paths (in the file and in ``--set``) resolve against the config's directory, and errors say so."""

from __future__ import annotations

from pathlib import Path

import pytest

from training._config import ConfigError, load_config

CONFIG = "name: t\ndata: {loader: movielens-100k, path: ml}\nmodels: [{name: p, type: popularity}]\n"


def test_a_set_path_not_found_names_the_base_it_was_resolved_against(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "configs").mkdir()
    cfg = tmp_path / "configs" / "c.yaml"
    cfg.write_text(CONFIG)
    (tmp_path / "shell" / "data").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "shell")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, ["data.path=data/ml"])
    base = tmp_path / "configs"
    assert (f"{base / 'data' / 'ml'} is missing u.data, u.user, u.item ('data/ml' was resolved against the "
            f"config file's directory {base}, also in --set; give an absolute path to use another)") in str(err.value)


def test_an_absolute_path_needs_no_note(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.replace("movielens-100k, path: ml", f"table, interactions: {tmp_path / 'r.csv'}"))
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert str(err.value).endswith(f"expected an existing CSV or Parquet file, got {tmp_path / 'r.csv'}")
