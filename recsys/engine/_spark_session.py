"""The Spark engine's session: one factory that checks the settings first.

:func:`spark_session` validates ``engine.master`` and ``engine.conf``, looks
for Java and, for a standalone cluster (``spark://host:port``), checks that
the master answers, before asking pyspark for a session. Each failure is a
:class:`SparkEngineError` naming the setting, what was expected and what was
received, never a Java stack trace.

pyspark is imported inside the functions: the in-process engine works
without it installed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from recsys.errors import FairrecError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkEngineError", "check_master", "find_java", "spark_session"]

#: The master URLs fairrec accepts (Spark's own forms; Mesos is gone from Spark 4).
_LOCAL = re.compile(r"^local(\[(\*|[1-9][0-9]*)(,[1-9][0-9]*)?\])?$")
_STANDALONE = re.compile(r"^spark://([A-Za-z0-9.\-\[\]:]+):([0-9]{1,5})$")
_OTHER = re.compile(r"^(yarn|k8s://https?://\S+)$")
#: Seconds to wait for a standalone master's port before calling it unreachable.
_CONNECT_TIMEOUT = 5.0


class SparkEngineError(FairrecError):
    """The Spark engine cannot start or lost its cluster (bad master, no Java, no pyspark)."""


def check_master(master: object) -> str:
    """Validate a Spark master URL; return it unchanged.

    Accepted: ``local``, ``local[N]``, ``local[*]``, ``local[N,F]``,
    ``spark://host:port``, ``yarn`` and ``k8s://https://host:port``.

    Examples
    --------
    >>> check_master("local[2]")
    'local[2]'
    >>> check_master("spark://127.0.0.1:7077")
    'spark://127.0.0.1:7077'
    >>> check_master("local[0]")
    Traceback (most recent call last):
    ...
    recsys.engine._spark_session.SparkEngineError: engine.master: expected local, local[N], local[*], spark://HOST:PORT, yarn or k8s://https://HOST:PORT, got 'local[0]'
    """
    ok = isinstance(master, str) and (
        _LOCAL.match(master) or _OTHER.match(master) or _standalone_port_ok(master)
    )
    if not ok:
        raise SparkEngineError(
            "engine.master: expected local, local[N], local[*], spark://HOST:PORT, yarn or "
            f"k8s://https://HOST:PORT, got {master!r}"
        )
    return master


def _standalone_port_ok(master: str) -> bool:
    m = _STANDALONE.match(master)
    return bool(m) and 0 < int(m.group(2)) < 65536


def find_java(java_home: str | None = None, path: str | None = None) -> Path:
    """The ``java`` executable pyspark will launch: ``JAVA_HOME/bin/java``, else the one on ``PATH``.

    pyspark's launcher reads ``JAVA_HOME`` and ``PATH`` itself; this looks
    where it will look (the caller passes both) so a missing Java is a clear
    error instead of a gateway that "exited before sending its port number".

    Examples
    --------
    >>> find_java(java_home=None, path="/nonexistent")
    Traceback (most recent call last):
    ...
    recsys.engine._spark_session.SparkEngineError: engine: the Spark engine needs Java 17 or later; expected JAVA_HOME/bin/java or java on PATH, found neither (install openjdk-17-jre-headless)
    """
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("java", path=path)
    if found is None:
        raise SparkEngineError(
            "engine: the Spark engine needs Java 17 or later; expected JAVA_HOME/bin/java or "
            "java on PATH, found neither (install openjdk-17-jre-headless)"
        )
    return Path(found)


def _check_reachable(master: str) -> None:
    """A standalone master must accept a TCP connection on its port."""
    m = _STANDALONE.match(master)
    if m is None:
        return
    host, port = m.group(1).strip("[]"), int(m.group(2))
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise SparkEngineError(
            f"engine.master: cannot reach the Spark master at {master} "
            f"({exc.strerror or exc}); expected a running standalone master on that address"
        ) from None


def _check_conf(conf: Mapping[str, object]) -> dict[str, str]:
    out = {}
    for key, value in conf.items():
        if not isinstance(key, str) or not key.startswith("spark."):
            raise SparkEngineError(
                f"engine.conf: expected Spark property names starting with 'spark.', got {key!r}"
            )
        if isinstance(value, bool):
            value = str(value).lower()
        if not isinstance(value, (str, int, float)):
            raise SparkEngineError(
                f"engine.conf.{key}: expected a string, number or boolean, got {value!r}"
            )
        out[key] = str(value)
    return out


def spark_session(
    master: str,
    conf: Mapping[str, object] | None = None,
    *,
    app_name: str = "fairrec",
    java_home: str | None = None,
    path: str | None = None,
    python: str | None = None,
) -> SparkSession:
    """A SparkSession on ``master`` with the properties ``conf``, after checking the settings.

    Parameters
    ----------
    master : str
        Spark master URL (see :func:`check_master`).
    conf : mapping of str to str, number or bool, optional
        Spark properties, e.g. ``{"spark.executor.memory": "4g"}``.
    app_name : str
        Name shown by the cluster UI.
    java_home, path : str, optional
        Where pyspark will look for Java (``JAVA_HOME``, ``PATH``); the caller
        passes them, nothing here reads the environment.
    python : str, optional
        The Python the executors run (``spark.pyspark.python``) unless ``conf``
        names one: fairrec's re-rankers and evaluation run Python on the
        executors, which need fairrec's dependencies (a cluster's workers: the
        same interpreter path with fairrec installed).

    Returns
    -------
    pyspark.sql.SparkSession
        A running session (an existing one in this process is reused by pyspark).

    Raises
    ------
    SparkEngineError
        pyspark not installed, bad master URL or property, no Java, an
        unreachable standalone master, or a JVM that failed to start.
    """
    check_master(master)
    properties = _check_conf(conf or {})
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkEngineError(
            "engine.kind: 'spark' needs pyspark; expected it installed "
            "(pip install 'fairrec[spark]'), found no module named pyspark"
        ) from None
    find_java(java_home, path)
    _check_reachable(master)
    builder = SparkSession.builder.master(master).appName(app_name)
    properties = {"spark.ui.showConsoleProgress": "false", **properties}
    if python is not None:
        properties.setdefault("spark.pyspark.python", python)
    for key, value in properties.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # pyspark raises PySparkRuntimeError / Py4JJavaError subclasses
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparkEngineError(
            f"engine.master: could not start a Spark session on {master!r}: {first}"
        ) from None
    if python is not None:
        # pyspark's SparkContext takes its workers' Python from PYSPARK_PYTHON (else "python3") and
        # ignores spark.pyspark.python outside spark-submit; the functions it ships carry this path
        session.sparkContext.pythonExec = properties.get("spark.pyspark.python", python)
    return session
