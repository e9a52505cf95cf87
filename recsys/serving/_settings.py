"""Everything the HTTP service can be told, in one typed, validated value.

Nothing here reads the environment or the command line: the CLI (or a test)
builds a :class:`ServeSettings` and hands it to :func:`~recsys.serving.create_app`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AUDIT_SUFFIXES", "ServeSettings"]

#: audit log formats by file suffix
AUDIT_SUFFIXES: dict[str, str] = {
    ".jsonl": "jsonl",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
    ".db": "sqlite",
}


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """Settings of ``fairrec serve``; validated when built.

    Parameters
    ----------
    model : str
        ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` (read from the MLflow
        registry at ``tracking_uri``), or the path of a local bundle directory
        (only with ``allow_unregistered=True``).
    tracking_uri : str or None
        MLflow tracking and registry URI; required for a ``models:/`` model.
    allow_unregistered : bool, default False
        Serve a local bundle directory, which has no gate result.
    consent_path : Path
        SQLite file of the consent store (created if missing).
    audit_path : Path
        Audit log: JSON lines (``.jsonl``) or an SQLite table (``.sqlite``,
        ``.sqlite3``, ``.db``); created if missing, appended to otherwise.
    host, port : str, int
        Where :func:`~recsys.serving.serve` listens.
    k_default, k_max : int
        Default and largest list length a client may ask for.
    max_exclusions : int
        Most item ids one request may exclude.
    max_reasons : int
        History items shown per explanation.
    reload_interval : float or None
        Seconds between checks of the registry alias (a new version is loaded
        and swapped in; a local bundle directory is re-read each time); None:
        reload only on ``POST /admin/reload``.
    admin_token : str or None
        When set, ``POST /admin/reload`` requires the header ``X-Admin-Token``
        with this value.

    Examples
    --------
    >>> s = ServeSettings(model="models:/fairrec@champion", tracking_uri="sqlite:///mlflow.db",
    ...                   consent_path=Path("consent.sqlite"), audit_path=Path("audit.jsonl"))
    >>> s.k_max, s.audit_format
    (100, 'jsonl')
    >>> ServeSettings(model="models:/fairrec@champion", tracking_uri=None,
    ...               consent_path=Path("c.sqlite"), audit_path=Path("a.jsonl"))
    Traceback (most recent call last):
    ...
    ValueError: tracking_uri: required to read 'models:/fairrec@champion' from the MLflow registry, got None
    """

    model: str
    tracking_uri: str | None = None
    allow_unregistered: bool = False
    consent_path: Path
    audit_path: Path
    host: str = "127.0.0.1"
    port: int = 8000
    k_default: int = 10
    k_max: int = 100
    max_exclusions: int = 500
    max_reasons: int = 3
    reload_interval: float | None = None
    admin_token: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model: expected 'models:/NAME@ALIAS', 'models:/NAME/VERSION' "
                             f"or a bundle directory, got {self.model!r}")
        if self.model.startswith("models:/") and not self.tracking_uri:
            raise ValueError(
                f"tracking_uri: required to read {self.model!r} from the MLflow registry, "
                f"got {self.tracking_uri!r}"
            )
        for name in ("consent_path", "audit_path"):
            value = getattr(self, name)
            if not isinstance(value, (str, Path)) or not str(value):
                raise ValueError(f"{name}: expected a file path, got {value!r}")
            object.__setattr__(self, name, Path(value))
        suffix = self.audit_path.suffix.lower()
        if suffix not in AUDIT_SUFFIXES:
            raise ValueError(
                f"audit_path: expected a file ending in {', '.join(AUDIT_SUFFIXES)} "
                f"(JSON lines or SQLite), got {str(self.audit_path)!r}"
            )
        _check_int("port", self.port, 0, 65535)
        _check_int("k_max", self.k_max, 1, 10_000)
        _check_int("k_default", self.k_default, 1, 10_000)
        if self.k_default > self.k_max:
            raise ValueError(f"k_default: expected at most k_max={self.k_max}, got {self.k_default}")
        _check_int("max_exclusions", self.max_exclusions, 0, 100_000)
        _check_int("max_reasons", self.max_reasons, 1, 50)
        if self.reload_interval is not None and (
            isinstance(self.reload_interval, bool)
            or not isinstance(self.reload_interval, numbers.Real)
            or not 0 < self.reload_interval < float("inf")
        ):
            raise ValueError(
                f"reload_interval: expected None or a number of seconds > 0, "
                f"got {self.reload_interval!r}"
            )
        if self.admin_token is not None and not self.admin_token:
            raise ValueError("admin_token: expected None or a non-empty string, got ''")
        if not isinstance(self.allow_unregistered, bool):
            raise TypeError(f"allow_unregistered: expected a bool, got {self.allow_unregistered!r}")

    @property
    def audit_format(self) -> str:
        """``"jsonl"`` or ``"sqlite"``, from the suffix of ``audit_path``."""
        return AUDIT_SUFFIXES[self.audit_path.suffix.lower()]


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")
