"""A Spark step that fails becomes a :class:`SparkEngineError` naming ``engine.master`` and the step.

Spark waits for resources forever when the last worker of a cluster dies mid-run;
:class:`ExecutorWatch` turns that wait into the same clear error after
``engine.lost_executor_timeout`` seconds.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from recsys.engine import SparkEngineError

__all__ = ["ExecutorWatch", "guard"]

_T = TypeVar("_T")
_WATCH: list[ExecutorWatch] = []  # the watch of the run in progress (one run per process)


def guard(master: str, what: str, fn: Callable[[], _T]) -> _T:
    """Run one Spark step; a failing cluster becomes a SparkEngineError naming the step."""
    try:
        return fn()
    except (SparkEngineError, ValueError):
        raise
    except Exception as exc:  # Py4JJavaError, PySparkException, Py4JNetworkError ...
        if _WATCH and _WATCH[-1].lost:
            raise SparkEngineError(
                f"engine.master: the cluster at {master} lost every executor while {what} and got none "
                f"back within {_WATCH[-1].timeout:g} s (engine.lost_executor_timeout); nothing was "
                "committed or promoted") from None
        first = _first_reason(str(exc), type(exc).__name__)
        raise SparkEngineError(f"engine.master: the Spark job failed while {what} on {master}: "
                               f"{first.strip()[:300]}; nothing was committed or promoted") from None


class ExecutorWatch:
    """Cancel the running jobs when a cluster has had no executor for ``timeout`` seconds.

    From then on the run is lost: every job is cancelled, also those submitted
    later, until the context ends.

    Local masters run tasks in the driver and are not watched. Used as a context
    manager around a run; :func:`guard` reads it to name the cause.
    """

    def __init__(self, spark: Any, master: str, timeout: float) -> None:
        self.spark, self.master, self.timeout = spark, master, timeout
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fairrec-executor-watch", daemon=True)

    def __enter__(self) -> ExecutorWatch:
        _WATCH.append(self)
        if not self.master.startswith("local"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        _WATCH.remove(self)

    def _executors(self) -> int:
        # the driver counts as one block manager; executors are the rest
        return int(self.spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()) - 1

    def _watch(self) -> None:
        since = None
        while not self._stop.wait(1.0):
            try:
                alive = self._executors()
            except Exception:  # noqa: BLE001 - the context is stopping; nothing to watch
                return
            now = time.monotonic()
            since = None if alive > 0 else (since or now)
            if since is not None and now - since >= self.timeout:
                self.lost = True
            if self.lost:  # every second until the run ends: a job submitted after a cancel
                # (the loss found between jobs, while the driver worked alone) would wait forever
                self.spark.sparkContext.cancelAllJobs()


_PY_ERROR = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit): .+")


def _first_reason(message: str, fallback: str) -> str:
    """The line that says why: a Python worker's exception line over Spark's generic first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return fallback
    if "Python worker" in lines[0] or lines[0].endswith(":"):
        python = [line for line in lines if _PY_ERROR.match(line)]
        if python:
            return python[-1]
    return lines[0]
