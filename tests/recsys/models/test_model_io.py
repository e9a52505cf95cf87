"""save_model / load_model: the on-disk layout and the errors on bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recsys import __version__
from recsys.errors import DataError
from recsys.models import ALS, EASE, ItemKNN, Popularity, Recommender, load_model, save_model

X = sp.csr_matrix(
    np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0], [2, 0, 1, 1]], np.float32)
)


@pytest.fixture
def saved_als(tmp_path: Path) -> Path:
    save_model(ALS(factors=3, iterations=2, num_threads=1).fit(X), tmp_path / "als")
    return tmp_path / "als"


def test_layout_is_json_and_npz_without_pickle(saved_als: Path) -> None:
    assert sorted(p.name for p in saved_als.iterdir()) == ["arrays.npz", "model.json"]
    meta = json.loads((saved_als / "model.json").read_text())
    assert meta["model"] == "als"
    assert meta["fairrec_version"] == __version__
    assert (meta["n_users"], meta["n_items"]) == (5, 4)
    assert meta["params"] == ALS(factors=3, iterations=2, num_threads=1).get_params()
    with np.load(saved_als / "arrays.npz", allow_pickle=False) as npz:
        assert set(npz.files) == {
            "user_items_.data",
            "user_items_.indices",
            "user_items_.indptr",
            "user_items_.shape",
            "item_popularity_",
            "cold_users_",
            "user_factors_",
            "item_factors_",
        }


def test_item_knn_similarity_is_stored_as_csr_parts(tmp_path: Path) -> None:
    model = ItemKNN(k_neighbours=2).fit(X)
    save_model(model, tmp_path / "knn")
    with np.load(tmp_path / "knn" / "arrays.npz", allow_pickle=False) as npz:
        assert {"similarity_.data", "similarity_.indices", "similarity_.indptr"} <= set(npz.files)
    loaded = load_model(tmp_path / "knn")
    assert (loaded.similarity_ != model.similarity_).nnz == 0


def test_saving_twice_to_the_same_directory_overwrites(tmp_path: Path) -> None:
    save_model(Popularity().fit(X), tmp_path)
    save_model(EASE(l2=2.0).fit(X), tmp_path)
    loaded = load_model(str(tmp_path))
    assert isinstance(loaded, EASE)
    assert loaded.l2 == 2.0


def test_numpy_scalar_parameters_are_saved_as_numbers(tmp_path: Path) -> None:
    save_model(EASE(l2=np.float64(3.0), max_items=np.int64(10)).fit(X), tmp_path)
    loaded = load_model(tmp_path)
    assert (loaded.l2, loaded.max_items) == (3.0, 10)


def test_saving_an_unregistered_model_is_refused(tmp_path: Path) -> None:
    class Custom(Popularity):
        pass

    with pytest.raises(ValueError, match="model: Custom is not a registered model"):
        save_model(Custom().fit(X), tmp_path)


def _edit_meta(directory: Path, **changes: object) -> Path:
    meta_file = directory / "model.json"
    meta = json.loads(meta_file.read_text())
    meta.update(changes)
    meta_file.write_text(json.dumps(meta))
    return meta_file


def test_unknown_model_key_names_the_file(saved_als: Path) -> None:
    meta_file = _edit_meta(saved_als, model="svd")
    message = (
        f"{meta_file}: unknown model key 'svd'; expected one of "
        "['als', 'bpr', 'ease', 'item_knn', 'popularity']"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        load_model(saved_als)


def test_unknown_parameter_names_the_file(saved_als: Path) -> None:
    params = json.loads((saved_als / "model.json").read_text())["params"]
    meta_file = _edit_meta(saved_als, params={**params, "gamma": 1})
    message = f"{meta_file}: params: unknown parameter(s) ['gamma'] for model 'als'"
    with pytest.raises(DataError, match=re.escape(message)):
        load_model(saved_als)


def test_missing_array_names_the_file(saved_als: Path) -> None:
    arrays_file = saved_als / "arrays.npz"
    with np.load(arrays_file, allow_pickle=False) as npz:
        kept = {name: npz[name] for name in npz.files if name != "item_factors_"}
    np.savez(arrays_file, **kept)
    message = f"{arrays_file}: missing array 'item_factors_' needed by ALS"
    with pytest.raises(DataError, match=re.escape(message)):
        load_model(saved_als)


def test_missing_sparse_part_names_the_file(saved_als: Path) -> None:
    arrays_file = saved_als / "arrays.npz"
    with np.load(arrays_file, allow_pickle=False) as npz:
        kept = {name: npz[name] for name in npz.files if name != "user_items_.indptr"}
    np.savez(arrays_file, **kept)
    with pytest.raises(DataError, match=re.escape(f"{arrays_file}: missing array 'user_items_'")):
        load_model(saved_als)


def test_inconsistent_shape_names_both_files(saved_als: Path) -> None:
    meta_file = _edit_meta(saved_als, n_users=6)
    message = (
        f"{saved_als / 'arrays.npz'}: user_items_ has shape (5, 4), but {meta_file} says "
        "(n_users, n_items) = (6, 4)"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        load_model(saved_als)


def test_not_json_names_the_file(saved_als: Path) -> None:
    (saved_als / "model.json").write_text("{not json")
    with pytest.raises(DataError, match=re.escape(f"{saved_als / 'model.json'}: not valid JSON")):
        load_model(saved_als)


def test_corrupt_npz_names_the_file(saved_als: Path) -> None:
    (saved_als / "arrays.npz").write_bytes(b"not a zip file")
    message = f"{saved_als / 'arrays.npz'}: not a readable .npz file"
    with pytest.raises(DataError, match=re.escape(message)):
        load_model(saved_als)


@pytest.mark.parametrize("missing", ["model.json", "arrays.npz"])
def test_missing_files_are_named(saved_als: Path, missing: str) -> None:
    (saved_als / missing).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{saved_als / missing}: no such file")):
        load_model(saved_als)


def test_loaded_model_is_fitted_and_refittable(saved_als: Path) -> None:
    loaded: Recommender = load_model(saved_als)
    assert loaded.personalised([0, 3]).tolist() == [True, False]
    refitted = loaded.fit(X[:4])
    assert refitted.n_users_ == 4
