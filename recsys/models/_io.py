"""Save and load fitted models without pickle: a directory of JSON and ``.npz``.

Layout of a saved model directory::

    model.json   {"format", "format_version", "model" (registry key), "params"
                  (get_params()), "fairrec_version", "n_users", "n_items"}
    arrays.npz   every learned array; a sparse matrix ``name`` is stored as
                 ``name.data``, ``name.indices``, ``name.indptr`` and ``name.shape``

The arrays are the base ones (``user_items_``, ``item_popularity_``,
``cold_users_``) plus the model class's ``_state_arrays``. After loading, a
model that wraps another library rebuilds its inner object from the arrays
(its ``_after_load`` hook), so the loaded model recommends exactly as the saved one.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys import __version__
from recsys.errors import DataError
from recsys.models._base import Recommender, check_fitted
from recsys.models._registry import MODELS, make_model, model_key

__all__ = ["load_model", "save_model"]

_FORMAT = "fairrec-model"
_FORMAT_VERSION = 1
_META_FILE = "model.json"
_ARRAYS_FILE = "arrays.npz"
_BASE_ARRAYS: tuple[str, ...] = ("user_items_", "item_popularity_", "cold_users_")
_SPARSE_PARTS: tuple[str, ...] = ("data", "indices", "indptr", "shape")


def _array_names(cls: type[Recommender]) -> tuple[str, ...]:
    return _BASE_ARRAYS + tuple(getattr(cls, "_state_arrays", ()))


def save_model(model: Recommender, path: str | Path) -> None:
    """Write a fitted registered model to the directory ``path`` (created if needed).

    Existing ``model.json`` and ``arrays.npz`` files in ``path`` are overwritten.

    Examples
    --------
    >>> import tempfile, scipy.sparse as sp
    >>> from recsys.models import Popularity
    >>> model = Popularity().fit(sp.csr_matrix([[1, 0], [1, 1]]))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_model(model, d)
    ...     load_model(d).recommend([0], k=1)[0].tolist()
    [[1]]
    """
    check_fitted(model)
    key = model_key(model)
    try:
        # a round trip through JSON also turns numpy scalars into Python numbers
        params = json.loads(json.dumps(model.get_params(deep=False), default=_numpy_scalar))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"model: every parameter must be a JSON value to be saved, got "
            f"{model.get_params(deep=False)!r}"
        ) from exc
    arrays: dict[str, np.ndarray] = {}
    for name in _array_names(type(model)):
        value = getattr(model, name)
        if sp.issparse(value):
            csr = sp.csr_matrix(value)
            arrays.update(
                {
                    f"{name}.data": csr.data,
                    f"{name}.indices": csr.indices,
                    f"{name}.indptr": csr.indptr,
                    f"{name}.shape": np.asarray(csr.shape, dtype=np.int64),
                }
            )
        else:
            arrays[name] = np.asarray(value)
    meta = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "model": key,
        "params": params,
        "fairrec_version": __version__,
        "n_users": int(model.n_users_),
        "n_items": int(model.n_items_),
    }
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / _ARRAYS_FILE, **arrays)
    (directory / _META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_model(path: str | Path) -> Recommender:
    """Read a model written by :func:`save_model` from the directory ``path``.

    Raises
    ------
    FileNotFoundError
        If ``model.json`` or ``arrays.npz`` is missing.
    DataError
        If a file is malformed: bad JSON, another format, an unknown model key,
        unknown parameters, or a missing or inconsistent array. The message
        names the file.
    """
    directory = Path(path)
    meta_file, arrays_file = directory / _META_FILE, directory / _ARRAYS_FILE
    meta = _read_meta(meta_file)
    try:
        model = make_model(meta["model"], meta["params"])
    except ValueError as exc:
        raise DataError(f"{meta_file}: {exc}") from exc
    if not arrays_file.is_file():
        raise FileNotFoundError(f"{arrays_file}: no such file; expected it next to {meta_file}")
    try:
        with np.load(arrays_file, allow_pickle=False) as npz:
            state = {
                name: _read_array(npz, name, arrays_file, type(model).__name__)
                for name in _array_names(type(model))
            }
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{arrays_file}: not a readable .npz file ({exc})") from exc
    expected = (meta["n_users"], meta["n_items"])
    shapes = {
        "user_items_": expected,
        "item_popularity_": (expected[1],),
        "cold_users_": (expected[0],),
    }
    for name, shape in shapes.items():
        if state[name].shape != shape:
            raise DataError(
                f"{arrays_file}: {name} has shape {state[name].shape}, but {meta_file} says "
                f"(n_users, n_items) = {expected}"
            )
    for name, value in state.items():
        setattr(model, name, value)
    after_load = getattr(model, "_after_load", None)
    if after_load is not None:
        after_load()
    # set last: these mark the model as fitted
    model.n_users_, model.n_items_ = expected
    return model


def _numpy_scalar(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _read_meta(meta_file: Path) -> dict[str, Any]:
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"{meta_file}: no such file; expected a model directory written by save_model"
        )
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{meta_file}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise DataError(f"{meta_file}: expected a {_FORMAT!r} file, got another JSON document")
    if meta.get("format_version") != _FORMAT_VERSION:
        raise DataError(
            f"{meta_file}: format_version: expected {_FORMAT_VERSION}, "
            f"got {meta.get('format_version')!r}"
        )
    if meta.get("model") not in MODELS:
        raise DataError(
            f"{meta_file}: unknown model key {meta.get('model')!r}; expected one of "
            f"{sorted(MODELS)}"
        )
    for field, kind in (("params", dict), ("n_users", int), ("n_items", int)):
        if not isinstance(meta.get(field), kind):
            raise DataError(
                f"{meta_file}: {field}: expected {kind.__name__}, got {meta.get(field)!r}"
            )
    return meta


def _read_array(
    npz: np.lib.npyio.NpzFile, name: str, arrays_file: Path, model_name: str
) -> np.ndarray | sp.csr_matrix:
    if name in npz.files:
        return npz[name]
    parts = [f"{name}.{part}" for part in _SPARSE_PARTS]
    if not all(p in npz.files for p in parts):
        raise DataError(f"{arrays_file}: missing array {name!r} needed by {model_name}")
    data, indices, indptr, shape = (npz[p] for p in parts)
    return sp.csr_matrix((data, indices, indptr), shape=tuple(int(n) for n in shape))
