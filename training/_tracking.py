"""MLflow tracking through an explicit :class:`mlflow.MlflowClient`.

No fluent global state: every call names its run. One parent run per
invocation, one child run per model (``mlflow.parentRunId`` tag), so the
MLflow UI nests them.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from recsys.errors import FairrecError

__all__ = ["DEFAULT_TRACKING_URI", "Tracker", "TrackingError", "ui_command"]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_PARAM_KEY = re.compile(r"[^A-Za-z0-9_\-. :/]")
_BATCH = 100  # MLflow accepts at most 100 params per log_batch call


class TrackingError(FairrecError):
    """The tracking server or store could not be used."""


def _artifact_root(uri: str) -> str | None:
    """For a local SQLite store, keep artifacts beside the database file."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    db = Path(uri[len("sqlite:///") :]).resolve()
    return (db.parent / "mlartifacts").as_uri()


def ui_command(uri: str) -> str:
    """The command that opens the MLflow UI on this store."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri}"


class Tracker:
    """Logs runs, params, metrics and artifacts to one MLflow experiment."""

    def __init__(self, uri: str, experiment: str | None) -> None:
        """Open (or create) ``experiment``; with None, only the registry and existing runs are used."""
        from mlflow import MlflowClient

        # mlflow sets up its own INFO logging when first imported; database set-up chatter
        # ("Creating initial MLflow database tables") is not the user's business
        for noisy in ("mlflow", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self.experiment_id: str | None = None
        if experiment is None:
            return
        try:
            exp = self.client.get_experiment_by_name(experiment)
            if exp is None:
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=_artifact_root(uri)
                )
            else:
                self.experiment_id = exp.experiment_id
        except Exception as exc:  # mlflow raises many types; the message is what matters
            raise TrackingError(
                f"MLflow tracking at {uri}: cannot open experiment {experiment!r}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc

    def guard(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TrackingError(f"MLflow tracking at {self.uri}: {what} failed: {first}") from exc

    def child_runs(self, parent: str) -> list[tuple[str, str]]:
        """(run name, run id) of the runs nested under ``parent``, oldest first; [] for a leaf run."""
        run = self.guard(f"reading run {parent}", self.client.get_run, parent)
        found = self.guard(
            "searching child runs",
            self.client.search_runs,
            [run.info.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent}'",
            order_by=["attributes.start_time ASC"],
        )
        return [(r.info.run_name, r.info.run_id) for r in found]

    def start_run(
        self, name: str, *, parent: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        all_tags = dict(tags or {})
        if parent is not None:
            all_tags["mlflow.parentRunId"] = parent
        run = self.guard(
            "creating a run",
            self.client.create_run,
            self.experiment_id,
            run_name=name,
            tags=all_tags,
        )
        return str(run.info.run_id)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        # MLflow keys allow alphanumerics and _ - . space : / only (a config key may hold "{k}")
        items = [Param(_PARAM_KEY.sub("_", str(k)), str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self.guard("logging params", self.client.log_batch, run_id, params=items[i : i + _BATCH])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, 0)
            for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))
        ]
        for i in range(0, len(items), 1000):
            self.guard("logging metrics", self.client.log_batch, run_id, metrics=items[i : i + 1000])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items()]
        self.guard("setting tags", self.client.log_batch, run_id, tags=items)

    def log_artifacts(self, run_id: str, local_dir: Path, artifact_path: str | None = None) -> None:
        self.guard(
            f"uploading artifacts from {local_dir}",
            self.client.log_artifacts,
            run_id,
            str(local_dir),
            artifact_path,
        )

    def log_artifact(self, run_id: str, local_file: Path) -> None:
        self.guard(
            f"uploading {local_file.name}", self.client.log_artifact, run_id, str(local_file)
        )

    def finish(self, run_id: str, *, ok: bool) -> None:
        self.guard(
            "closing a run",
            self.client.set_terminated,
            run_id,
            status="FINISHED" if ok else "FAILED",
        )

    def try_fail(self, run_id: str) -> None:
        """Best effort: mark a run failed (the store may be the thing that broke)."""
        try:
            self.client.set_tag(run_id, "fairrec.status", "failed")
            self.client.set_terminated(run_id, status="FAILED")
        except Exception:  # the original error is what the user needs to see
            pass
