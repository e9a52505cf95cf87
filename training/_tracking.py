"""MLflow tracking through an explicit :class:`mlflow.MlflowClient`.

No fluent global state: every call names its run. One parent run per
invocation, one child run per model (``mlflow.parentRunId`` tag), so the
MLflow UI nests them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from recsys._redact import redact_text, redact_uri
from recsys.errors import FairrecError
from training._liveness import host_name, process_alive

__all__ = ["DEFAULT_TRACKING_URI", "Tracker", "TrackingError", "tracking_uri_problem", "ui_command"]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_PARAM_KEY = re.compile(r"[^A-Za-z0-9_\-. :/]")
_BATCH = 100  # MLflow accepts at most 100 params per log_batch call


# the stores MLflow itself provides (mlflow.tracking._tracking_service.utils registers them)
_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")


class TrackingError(FairrecError):
    """The tracking server or store could not be used."""


def tracking_uri_problem(uri: str) -> str | None:
    """What is wrong with a tracking URI (credentials masked), or None when MLflow can use it.

    >>> tracking_uri_problem("sqlite:///mlflow.db") is None
    True
    >>> tracking_uri_problem("foo://u:pw@host")
    "expected a URI with one of the schemes sqlite, file, http, https, postgresql, mysql, mssql, databricks (or a local directory), received 'foo://u:***@host' (scheme 'foo')"
    """
    if not uri.strip():
        return "expected a tracking URI such as sqlite:///mlflow.db, received an empty string"
    scheme = urlparse(uri).scheme.lower()
    if scheme and scheme.split("+")[0] not in _SCHEMES and len(scheme) > 1:  # "c:" is a Windows drive
        return (
            f"expected a URI with one of the schemes {', '.join(_SCHEMES)} (or a local directory), "
            f"received {redact_uri(uri)!r} (scheme {scheme!r})"
        )
    if scheme == "sqlite" and not uri.startswith("sqlite:///"):
        return f"expected sqlite:///PATH (three slashes, then the database file), received {redact_uri(uri)!r}"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact_text(text.splitlines()[0] if text else type(exc).__name__)


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Serialise the first use of a SQLite store across processes on this host.

    MLflow creates or migrates the schema of a SQLite store on first use; two runs
    starting together on a fresh store both migrate and one dies mid-way. An OS file
    lock (fcntl, in the temporary directory so the user's folder gains no file) makes
    the second wait for the first. Other stores are servers that serialise themselves.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    db = str(Path(uri[len("sqlite:///") :]).resolve())
    lock = Path(tempfile.gettempdir()) / f"fairrec-mlflow-{hashlib.sha256(db.encode()).hexdigest()[:16]}.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
        # a failed database write is logged there with a full traceback, then raised; the raised
        # error becomes one TrackingError line, so the traceback would only bury it
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
        problem = tracking_uri_problem(uri)
        if problem is not None:
            raise TrackingError(f"tracking URI: {problem}")
        self.uri = redact_uri(uri) or ""  # what messages and results show: never a password
        try:
            self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        except Exception as exc:  # an unsupported scheme for the registry, a missing driver
            raise TrackingError(f"MLflow tracking at {self.uri}: cannot use this store: {_first_line(exc)}") from exc
        self.experiment_id: str | None = None
        try:
            with _store_lock(uri):
                if experiment is None:
                    self.client.search_experiments(max_results=1)  # create or migrate the store now
                    return
                exp = self.client.get_experiment_by_name(experiment)
                if exp is None:
                    self.experiment_id = self.client.create_experiment(
                        experiment, artifact_location=_artifact_root(uri)
                    )
                else:
                    self.experiment_id = exp.experiment_id
        except Exception as exc:  # mlflow raises many types; the message is what matters
            what = "cannot open the store" if experiment is None else f"cannot open experiment {experiment!r}"
            raise TrackingError(
                f"MLflow tracking at {self.uri}: {what}: {type(exc).__name__}: {_first_line(exc)}"
            ) from exc

    def guard(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise TrackingError(f"MLflow tracking at {self.uri}: {what} failed: {_first_line(exc)}") from exc

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
        # who owns the run while it is RUNNING: close_abandoned_runs() closes it once that process is gone
        all_tags = {"fairrec.host": host_name(), "fairrec.pid": str(os.getpid()), **(tags or {})}
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
        """Best effort: mark a run failed, or killed when Ctrl-C or SIGTERM stopped it.

        The store may be the thing that broke; a run left RUNNING is closed by the
        next run's :meth:`close_abandoned_runs`.
        """
        interrupted = isinstance(sys.exc_info()[1], KeyboardInterrupt)
        try:
            self.client.set_tag(run_id, "fairrec.status", "killed" if interrupted else "failed")
            self.client.set_terminated(run_id, status="KILLED" if interrupted else "FAILED")
        except Exception:  # the original error is what the user needs to see
            pass

    def close_abandoned_runs(self) -> list[str]:
        """Mark FAILED the experiment's RUNNING runs whose fairrec process on this host is gone.

        A process killed with SIGKILL, or a tracking server that died before a failed
        run could close its runs, leaves them RUNNING for good; the next run closes
        them. Returns their run ids.
        """
        if self.experiment_id is None:
            return []
        from mlflow.entities import ViewType

        found = self.guard(
            "searching abandoned runs",
            self.client.search_runs,
            [self.experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and tags.`fairrec.host` = '{host_name()}'",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
        )
        closed = []
        for run in found:
            pid = run.data.tags.get("fairrec.pid", "")
            if pid.isdigit() and not process_alive(int(pid)):
                self.set_tags(run.info.run_id, {"fairrec.status": "abandoned"})
                self.guard("closing an abandoned run", self.client.set_terminated,
                           run.info.run_id, status="FAILED")
                closed.append(run.info.run_id)
        return closed
