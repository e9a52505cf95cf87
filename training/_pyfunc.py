"""A fairrec bundle as an MLflow ``pyfunc`` model: ``mlflow.pyfunc.load_model`` and ``mlflow models serve``.

The bundle directory itself becomes the MLflow model: :func:`add_pyfunc_flavor`
writes ``MLmodel`` (the ``python_function`` flavor with this module as its
``loader_module``, a signature and an input example) and the environment files
next to the bundle's JSON and npz files. Nothing is pickled: loading reads the
bundle with :func:`recsys.serving.load_bundle`, exactly as ``fairrec serve``
does, and predicting calls the same :class:`recsys.serving.ServingEngine`, so
the lists are the ones the HTTP service returns.

Input (one row per request)::

    user_id   string   the user's id (an unknown user gets the popular items)
    k         long     list length
    explain   boolean  optional: add each item's explanation text

Output (one row per recommended item, users in input order, rank ascending)::

    user_id, rank, item_id, score, basis, explanation ("" when not asked for)

The model needs the ``fairrec`` package installed where it is loaded
(``--env-manager local``, or an environment built from ``requirements.txt``,
which lists fairrec's own dependencies).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.errors import DataError
from recsys.serving import GateInfo, ListRequest, ModelRef, ServedModel, ServingEngine, load_bundle

__all__ = ["BundlePredictor", "add_pyfunc_flavor", "example_input"]

INPUT_COLUMNS = ("user_id", "k", "explain")
OUTPUT_COLUMNS = ("user_id", "rank", "item_id", "score", "basis", "explanation")
_MODEL_FILES = ("MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt",
                "input_example.json", "serving_input_example.json")


class BundlePredictor:
    """The ``pyfunc`` implementation: a :class:`ServingEngine` over one loaded bundle.

    Parameters
    ----------
    directory : str or Path
        A bundle directory (``bundle.json`` at its root).
    """

    def __init__(self, directory: str | Path) -> None:
        bundle = load_bundle(directory)
        ref = ModelRef(uri=str(directory), name=bundle.name, version=None, alias=None,
                       source=str(directory), candidate=bundle.name,
                       gate=GateInfo(result="unregistered", summary="loaded as an MLflow pyfunc model"))
        self.engine = ServingEngine(ServedModel(ref=ref, bundle=bundle, loaded_at=datetime.now(UTC)))

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Recommendations for every row of ``model_input`` (see the module docstring)."""
        frame = pd.DataFrame(model_input)
        missing = [c for c in ("user_id", "k") if c not in frame.columns]
        if missing:
            raise DataError(
                f"model input: expected columns user_id, k[, explain], got {list(frame.columns)} "
                f"(missing {', '.join(missing)})"
            )
        explain = frame["explain"] if "explain" in frame.columns else pd.Series(False, index=frame.index)
        requests = [
            ListRequest(user_id=str(u), k=int(k), explain=bool(e))
            for u, k, e in zip(frame["user_id"].tolist(), frame["k"].tolist(), explain.tolist(), strict=True)
        ]
        rows = [
            (r.user_id, item.rank, item.item_id, item.score, r.basis,
             "" if item.explanation is None else item.explanation.text)
            for r in self.engine.recommend_many(requests)
            for item in r.items
        ]
        out = pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))
        return out.astype({"user_id": str, "rank": "int64", "item_id": str, "score": "float64",
                           "basis": str, "explanation": str})


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> BundlePredictor:
    """MLflow's ``loader_module`` hook: ``data_path`` is the model directory (the bundle)."""
    return BundlePredictor(data_path)


EXAMPLE_USER = "example-user"  # not a user of the data: the logged example names no real person


def example_input(predictor: BundlePredictor, *, k: int) -> pd.DataFrame:
    """An input example that names no real user: an unknown id, served the non-personalised list.

    Model artifacts are readable by anyone with access to the tracking server, so the example
    is not one of the bundle's users (erasure would otherwise have to rewrite it).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from recsys.models import Popularity
    >>> from recsys.serving import save_bundle
    >>> d = tempfile.mkdtemp()
    >>> save_bundle(d, name="pop", model=Popularity().fit(sp.csr_matrix([[1, 0], [1, 1]])),
    ...             reranker=None, n_candidates=0, user_ids=np.array(["ann", "bob"]),
    ...             item_ids=np.array([7, 8]), items=pd.DataFrame({"item_id": [7, 8]}))
    >>> example_input(BundlePredictor(d), k=1)
            user_id  k  explain
    0  example-user  1     True
    >>> BundlePredictor(d).predict(example_input(BundlePredictor(d), k=1))[["user_id", "rank", "item_id"]]
            user_id  rank item_id
    0  example-user     1       7
    """
    return pd.DataFrame({"user_id": [EXAMPLE_USER], "k": [int(k)], "explain": [True]})


def _requirements() -> list[str]:
    """fairrec's runtime dependencies, pinned to the installed versions (the model imports fairrec)."""
    names = ["mlflow", "numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "implicit", "fairlearn",
             "shap", "lime", "pydantic", "pyyaml", "threadpoolctl", "matplotlib", "fastapi"]
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def add_pyfunc_flavor(directory: str | Path, *, k: int) -> None:
    """Make the bundle in ``directory`` an MLflow ``pyfunc`` model (files listed in the module docstring).

    The signature is inferred (:func:`mlflow.models.infer_signature`) from the
    bundle's own answer to :func:`example_input`, which is also saved as the
    input example.
    """
    import mlflow.pyfunc
    from mlflow.models import Model, ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    path = Path(directory)
    predictor = BundlePredictor(path)
    example = example_input(predictor, k=k)
    with warnings.catch_warnings():  # k is an integer on purpose: a list length is never missing
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
        inferred = infer_signature(example, predictor.predict(example))
    inputs = Schema([  # as inferred, except that a request may leave out explain
        ColSpec(c.type, c.name, required=c.name != "explain") for c in inferred.inputs.inputs
    ])
    signature = ModelSignature(inputs=inputs, outputs=inferred.outputs)
    # mlflow.pyfunc.save_model writes into an empty directory only; the bundle is already
    # there, so the model files are written beside it and moved in (no copy of the bundle)
    with tempfile.TemporaryDirectory(prefix="fairrec-pyfunc-", dir=path.parent) as tmp:
        target = Path(tmp) / "model"
        quiet = logging.getLogger("mlflow")
        level = quiet.level
        quiet.setLevel(logging.WARNING)  # "Validating input example against model signature"
        try:
            mlflow.pyfunc.save_model(
                str(target), loader_module=__name__, signature=signature, input_example=example,
                pip_requirements=_requirements(),
            )
        finally:
            quiet.setLevel(level)
        for name in _MODEL_FILES:
            if (target / name).exists():
                shutil.move(str(target / name), str(path / name))
    model = Model.load(str(path / "MLmodel"))
    model.model_size_bytes = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    model.save(str(path / "MLmodel"))
