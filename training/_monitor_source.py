"""The served version's offline record for ``fairrec monitor --model models:/NAME@ALIAS``.

A registered version names its candidate's child run (``run_id``). That run
holds the candidate's files (``recommendations.parquet``: the offline top-k lists
the drift is measured against; ``metrics.json``; the ``model/`` bundle) and its
parent run, named by the tag ``mlflow.parentRunId``, holds ``config.yaml`` and
``items.parquet``. They are downloaded into the layout ``fairrec run --out``
writes (``DST/config.yaml``, ``DST/items.parquet``, ``DST/NAME/...``), so the
monitor reads them exactly as it reads a local ``--champion RUN_DIR/NAME``.
``users.parquet`` is the operator's data and is never logged: the caller passes
the user table itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys._redact import redact_text, redact_uri
from recsys.errors import FairrecError
from recsys.serving import bundle_sha256
from recsys.serving._source import ModelSourceError, parse_model_uri

__all__ = ["ServedRun", "download_served_run"]

#: the run parameter holding the content hash of the bundle the gate judged (training._record.PARAM_BUNDLE)
_PARAM_BUNDLE = "fairrec.bundle_sha256"
_CANDIDATE_FILES = ("recommendations.parquet", "metrics.json", "model")
_RUN_FILES = ("config.yaml", "items.parquet")


@dataclass(frozen=True, kw_only=True)
class ServedRun:
    """A registered version's run and where its candidate directory was downloaded."""

    model: str  # the models:/ URI as given
    name: str
    version: str
    run_id: str  # the candidate's child run: the served version's run
    parent_run_id: str
    candidate: Path  # DST/NAME, as ``--champion`` takes it


def download_served_run(model: str, tracking_uri: str, dst: Path, *, client: Any = None) -> ServedRun:
    """Resolve ``model`` in the registry and download its run's offline record into ``dst``.

    Raises
    ------
    FairrecError
        ``model`` is not a ``models:/`` URI; the version, its run or a file cannot be
        read; the downloaded bundle is not the one the gate judged.

    Examples
    --------
    >>> download_served_run("runs/x", "sqlite:///m.db", Path("."))
    Traceback (most recent call last):
    ...
    recsys.errors.FairrecError: monitor --model: expected 'models:/NAME@ALIAS' or 'models:/NAME/VERSION', got 'runs/x'
    """
    try:
        name, alias, version = parse_model_uri(model)
    except ModelSourceError:
        raise FairrecError(f"monitor --model: expected 'models:/NAME@ALIAS' or 'models:/NAME/VERSION', "
                           f"got {model!r}") from None
    if client is None:
        from mlflow import MlflowClient  # lazily: importing mlflow takes seconds

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    where = f"monitor --model {model}: at {redact_uri(tracking_uri)}"
    try:
        mv = client.get_model_version_by_alias(name, alias) if alias is not None else \
            client.get_model_version(name, version)
        run = client.get_run(mv.run_id)
    except Exception as exc:  # MlflowException and the transport errors behind it
        raise FairrecError(f"{where}: cannot read the version or its run: {redact_text(str(exc))}") from exc
    parent = run.data.tags.get("mlflow.parentRunId")
    candidate = run.info.run_name
    if not mv.run_id or not parent or not candidate:
        raise FairrecError(f"{where}: version {mv.version} is not a candidate of a `fairrec run` (expected a "
                           f"child run with tag mlflow.parentRunId; run {mv.run_id!r} has none)")
    out = Path(dst) / candidate
    out.mkdir(parents=True, exist_ok=True)
    for run_id, paths, target in ((mv.run_id, _CANDIDATE_FILES, out), (parent, _RUN_FILES, Path(dst))):
        for path in paths:
            _download(run_id, path, target, tracking_uri, where)
    expected = run.data.params.get(_PARAM_BUNDLE)
    if expected and expected != "none" and bundle_sha256(out / "model") != expected:
        raise FairrecError(f"{where}: the bundle of run {mv.run_id} is not the one the gate judged (its content "
                           f"hash differs from the run's {_PARAM_BUNDLE}): the record was altered")
    return ServedRun(model=model, name=name, version=str(mv.version), run_id=mv.run_id, parent_run_id=parent,
                     candidate=out)


def _download(run_id: str, path: str, target: Path, tracking_uri: str, where: str) -> None:
    import mlflow.artifacts

    try:
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(target),
                                            tracking_uri=tracking_uri)
    except Exception as exc:  # MlflowException, OSError: a file the run did not log, a store that went away
        raise FairrecError(f"{where}: cannot download {path} of run {run_id}: "
                           f"{type(exc).__name__}: {redact_text(str(exc))}") from exc
