"""Everything the HTTP service can be told, in one typed, validated value.

Nothing here reads the environment or the command line: the CLI (or a test)
builds a :class:`ServeSettings` and hands it to :func:`~recsys.serving.create_app`.
"""

from __future__ import annotations

from typing import Any

from collections.abc import Callable

import ipaddress
import numbers
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AUDIT_SUFFIXES", "LOOPBACK_HOSTS", "MIN_SECRET_LENGTH", "ServeSettings", "is_loopback"]

#: Host names a loopback-bound service answers to when ``allowed_hosts`` is not given
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")
#: Shortest user-token secret and operator token accepted (HS256 wants a key of 256 bits)
MIN_SECRET_LENGTH = 32

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
    user_token_secret : str or None
        The secret (at least 32 characters) the application that embeds fairrec
        signs its users' tokens with (JWT, HS256, ``sub`` the user id, ``aud``
        ``"fairrec"``, ``exp`` required); a user's endpoints accept only a token
        for that user. Never printed (not in ``repr``).
    admin_token : str or None
        The operator credential (at least 32 characters): ``GET /model``,
        ``POST /admin/reload``, ``/docs`` and ``/openapi.json`` require it as
        ``Authorization: Bearer TOKEN`` (or as the password of HTTP Basic).
        Never printed.
    insecure_local : bool, default False
        Serve without any credential, for development on a loopback address
        only. Without it the service refuses to start unless both
        ``user_token_secret`` and ``admin_token`` are set.
    allowed_hosts : tuple of str or None
        ``Host`` header values the service answers (others get 400: DNS
        rebinding); ``*.example.org`` matches subdomains. None: the loopback
        names, allowed only when ``host`` is a loopback address.
    verifier : callable or None
        ``verifier(client, name, version)`` recomputes a registered version's gate
        decision from its logged record and returns the bundle's content hash, or
        raises when the version may not be served (``fairrec serve`` passes
        :func:`training._promotion.verify_version`'s serving form). None: the
        version's tags are trusted (library use only).
    max_body_bytes : int
        Largest request body read (413 beyond, before it is read in full).
    audit_max_bytes, audit_backups : int
        A JSON-lines audit log is rotated when it would grow past
        ``audit_max_bytes`` (``audit.jsonl.1`` ... ``audit.jsonl.N``, the
        oldest dropped), so it never holds more than about
        ``(audit_backups + 1) * audit_max_bytes``; 0 bytes: never rotated.

    Examples
    --------
    >>> s = ServeSettings(model="models:/fairrec@champion", tracking_uri="sqlite:///mlflow.db",
    ...                   consent_path=Path("consent.sqlite"), audit_path=Path("audit.jsonl"),
    ...                   user_token_secret="s" * 32, admin_token="o" * 32)
    >>> s.k_max, s.audit_format, s.allowed_hosts, s.authenticated
    (100, 'jsonl', ('127.0.0.1', 'localhost'), True)
    >>> "s" * 32 in repr(s)
    False
    >>> ServeSettings(model="models:/fairrec@champion", tracking_uri="sqlite:///mlflow.db",
    ...               consent_path=Path("c.sqlite"), audit_path=Path("a.jsonl"))
    Traceback (most recent call last):
    ...
    ValueError: user_token_secret, admin_token: the service refuses to start without credentials; ...
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
    user_token_secret: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    insecure_local: bool = False
    allowed_hosts: tuple[str, ...] | None = None
    max_body_bytes: int = 64 * 1024
    audit_max_bytes: int = 16 * 2**20
    audit_backups: int = 4
    verifier: Callable[[Any, str, str], str] | None = field(default=None, repr=False, compare=False)

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
        if not isinstance(self.allow_unregistered, bool):
            raise TypeError(f"allow_unregistered: expected a bool, got {self.allow_unregistered!r}")
        _check_int("max_body_bytes", self.max_body_bytes, 1024, 2**30)
        _check_int("audit_max_bytes", self.audit_max_bytes, 0, 2**40)
        _check_int("audit_backups", self.audit_backups, 1, 1000)
        self._check_credentials()
        self._check_hosts()

    def _check_credentials(self) -> None:
        for name in ("user_token_secret", "admin_token"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH):
                # the value is a secret: say what is wrong with it, never what it is
                got = f"a string of {len(value)} characters" if isinstance(value, str) else type(value).__name__
                raise ValueError(f"{name}: expected None or a string of at least {MIN_SECRET_LENGTH} "
                                 f"characters, got {got}")
        if not isinstance(self.insecure_local, bool):
            raise TypeError(f"insecure_local: expected a bool, got {self.insecure_local!r}")
        given = [n for n in ("user_token_secret", "admin_token") if getattr(self, n) is not None]
        if self.insecure_local:
            if given:
                raise ValueError(f"insecure_local: expected False when credentials are set "
                                 f"({', '.join(given)}), got True")
            if not is_loopback(self.host):
                raise ValueError(f"host: insecure_local serves without authentication, so only on a "
                                 f"loopback address (127.0.0.1, ::1, localhost), got {self.host!r}")
        elif len(given) < 2:
            got = "neither" if not given else f"only {given[0]}"
            raise ValueError("user_token_secret, admin_token: the service refuses to start without "
                             "credentials; expected both set, or insecure_local=True to serve a "
                             f"loopback address without authentication, got {got}")

    def _check_hosts(self) -> None:
        hosts = self.allowed_hosts
        if hosts is None:
            if not is_loopback(self.host):
                raise ValueError(
                    f"allowed_hosts: required when host is not a loopback address ({self.host!r}): "
                    "the host names clients reach the service by (any other Host header is refused), got None"
                )
            object.__setattr__(self, "allowed_hosts", LOOPBACK_HOSTS)
            return
        if isinstance(hosts, str) or not all(isinstance(h, str) and h.strip() for h in hosts) or not hosts:
            raise ValueError(f"allowed_hosts: expected a non-empty list of host names, got {hosts!r}")
        if "*" in hosts:
            raise ValueError("allowed_hosts: expected host names ('*.example.org' for subdomains), "
                             "got '*', which would answer any Host header")
        object.__setattr__(self, "allowed_hosts", tuple(hosts))

    @property
    def authenticated(self) -> bool:
        """Whether requests must carry credentials (False only with ``insecure_local``)."""
        return not self.insecure_local

    @property
    def audit_format(self) -> str:
        """``"jsonl"`` or ``"sqlite"``, from the suffix of ``audit_path``."""
        return AUDIT_SUFFIXES[self.audit_path.suffix.lower()]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) can be reached only from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("example.org")
    (True, True, False, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")
