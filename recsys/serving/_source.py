"""Where the served model comes from: an MLflow registry version (gated) or a local bundle.

A registered version is served only if its tags say the gate passed
(``fairrec.gate = "pass"``) and the bundle is servable
(``fairrec.servable = "true"``); otherwise :class:`GateRefusedError` says why,
with the gate's own summary and failing metrics. The version's artifacts (its
``source``, a bundle directory) are downloaded to a temporary directory, loaded
into memory and the download is removed.

MLflow is imported lazily: serving a local bundle never imports it.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys._redact import redact_text, redact_uri
from recsys.errors import FairrecError
from recsys.serving._bundle import ModelBundle, load_bundle
from recsys.serving._digest import bundle_sha256

__all__ = [
    "GateInfo",
    "GateRefusedError",
    "ModelRef",
    "ModelSourceError",
    "ServedModel",
    "describe_model",
    "fetch_model",
    "resolve_model",
]

TAG_GATE = "fairrec.gate"
TAG_SUMMARY = "fairrec.gate.summary"
TAG_FAILED = "fairrec.gate.failed"
TAG_CANDIDATE = "fairrec.candidate"
TAG_SERVABLE = "fairrec.servable"
TAG_SERVABLE_REASON = "fairrec.servable.reason"
UNREGISTERED_SUMMARY = "unregistered bundle"

_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


class ModelSourceError(FairrecError):
    """The model cannot be found, read or loaded (the message names the model URI)."""


class GateRefusedError(ModelSourceError):
    """The model version did not pass the gate or is not servable; it is not served."""


@dataclass(frozen=True, kw_only=True)
class GateInfo:
    """The gate decision recorded on a model version (``result`` "unregistered" for a local bundle)."""

    result: str
    summary: str
    failed: tuple[str, ...] = ()
    servable: bool = True
    servable_reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ModelRef:
    """What a model URI points at, before anything is downloaded."""

    uri: str
    name: str
    version: str | None
    alias: str | None
    source: str  # the artifact location of the bundle (or the local directory)
    candidate: str | None
    gate: GateInfo
    tracking_uri: str | None = None
    bundle_sha256: str | None = None  # checked after download when the gate was verified


@dataclass(frozen=True, kw_only=True)
class ServedModel:
    """A loaded bundle with where it came from and its gate decision."""

    ref: ModelRef
    bundle: ModelBundle
    loaded_at: datetime

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def version(self) -> str | None:
        return self.ref.version


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, alias, version)`` of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.

    Examples
    --------
    >>> parse_model_uri("models:/fairrec@champion")
    ('fairrec', 'champion', None)
    >>> parse_model_uri("models:/fairrec/3")
    ('fairrec', None, '3')
    >>> parse_model_uri("models:/fairrec/latest")
    Traceback (most recent call last):
    ...
    recsys.serving._source.ModelSourceError: model: expected 'models:/NAME@ALIAS' or 'models:/NAME/VERSION' (VERSION a number), got 'models:/fairrec/latest'
    """
    match = _MODEL_URI.match(uri)
    if match is None:
        raise ModelSourceError(
            "model: expected 'models:/NAME@ALIAS' or 'models:/NAME/VERSION' (VERSION a number), "
            f"got {uri!r}"
        )
    return match["name"], match["alias"], match["version"]


def describe_model(
    model: str, *, tracking_uri: str | None = None, allow_unregistered: bool = False,
    verifier: Callable[[Any, str, str], str] | None = None,
) -> ModelRef:
    """Look ``model`` up (registry metadata only) and check that it may be served.

    Raises
    ------
    GateRefusedError
        The version's gate tag is not ``"pass"`` or it is not servable.
    ModelSourceError
        Unknown model, alias or version; a registry that cannot be reached; a
        local directory without ``allow_unregistered``.
    """
    if not model.startswith("models:/"):
        return _local_ref(model, allow_unregistered)
    name, alias, version = parse_model_uri(model)
    if not tracking_uri:
        raise ModelSourceError(f"tracking_uri: required to read {model!r}, got {tracking_uri!r}")
    client = _client(tracking_uri)
    try:
        mv = (
            client.get_model_version_by_alias(name, alias)
            if alias is not None
            else client.get_model_version(name, version)
        )
        source = client.get_model_version_download_uri(name, mv.version)
    except Exception as exc:  # MlflowException and the transport errors behind it
        raise ModelSourceError(f"{model}: cannot read it from the registry at {redact_uri(tracking_uri)}: "
                               f"{redact_text(str(exc))}") from exc
    tags: dict[str, Any] = dict(mv.tags or {})
    ref = ModelRef(
        uri=model,
        name=name,
        version=str(mv.version),
        alias=alias,
        source=str(source),
        candidate=tags.get(TAG_CANDIDATE),
        gate=GateInfo(
            result=str(tags.get(TAG_GATE, "")),
            summary=str(tags.get(TAG_SUMMARY, "")),
            failed=tuple(f.strip() for f in str(tags.get(TAG_FAILED, "")).split(",") if f.strip()),
            servable=str(tags.get(TAG_SERVABLE, "")).lower() == "true",
            servable_reason=str(tags.get(TAG_SERVABLE_REASON, "")),
        ),
        tracking_uri=tracking_uri,
    )
    if verifier is None:
        _check_gate(ref)
        return ref
    try:  # the decision recomputed from the version's logged record; its tags are only a display copy
        digest = verifier(client, name, str(mv.version))
    except FairrecError as exc:
        raise GateRefusedError(f"{model} (version {mv.version} of {name!r}): refusing to serve: {exc}") from exc
    except Exception as exc:  # MlflowException: the record cannot be read
        raise ModelSourceError(f"{model}: cannot verify its gate record: {type(exc).__name__}: {exc}") from exc
    return replace(ref, bundle_sha256=digest)


def _local_ref(model: str, allow_unregistered: bool) -> ModelRef:
    path = Path(model)
    if not allow_unregistered:
        raise ModelSourceError(
            f"model: {model!r} is a local bundle directory, which has no gate result; expected "
            "'models:/NAME@ALIAS' or 'models:/NAME/VERSION' (serve a local bundle only with "
            "allow_unregistered=True)"
        )
    meta_file = path / "bundle.json"
    try:
        name = json.loads(meta_file.read_text(encoding="utf-8"))["name"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelSourceError(
            f"model: {model!r} is not a fairrec bundle directory ({meta_file} missing or unreadable: {exc})"
        ) from exc
    return ModelRef(
        uri=model,
        name=str(name),
        version=None,
        alias=None,
        source=str(path.resolve()),
        candidate=None,
        gate=GateInfo(result="unregistered", summary=UNREGISTERED_SUMMARY),
    )


def _check_gate(ref: ModelRef) -> None:
    where = f"{ref.uri} (version {ref.version} of {ref.name!r})"
    gate = ref.gate
    if gate.result != "pass":
        failed = f"; failing metrics: {', '.join(gate.failed)}" if gate.failed else ""
        summary = f": {gate.summary}" if gate.summary else ""
        raise GateRefusedError(
            f"{where}: refusing to serve: its gate result ({TAG_GATE}) is "
            f"{gate.result or 'missing'!r}, expected 'pass'{summary}{failed}"
        )
    if not gate.servable:
        reason = f": {gate.servable_reason}" if gate.servable_reason else ""
        raise GateRefusedError(
            f"{where}: refusing to serve: it is not servable ({TAG_SERVABLE} is not 'true'){reason}"
        )


def fetch_model(ref: ModelRef) -> ServedModel:
    """Download (registry) or read (local) the bundle of ``ref`` and load it into memory."""
    try:
        if ref.version is None:
            bundle = load_bundle(ref.source)
        else:
            import mlflow.artifacts

            with tempfile.TemporaryDirectory(prefix="fairrec-bundle-") as tmp:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=ref.source, dst_path=tmp, tracking_uri=ref.tracking_uri
                )
                if ref.bundle_sha256 is not None and bundle_sha256(local) != ref.bundle_sha256:
                    raise GateRefusedError(
                        f"{ref.uri}: refusing to serve: its bundle at {ref.source} is not the one the gate "
                        "judged (content hash differs from the run's fairrec.bundle_sha256): the record was altered"
                    )
                bundle = load_bundle(local)
    except GateRefusedError:
        raise
    except FairrecError as exc:
        raise ModelSourceError(f"{ref.uri}: cannot load its bundle from {redact_uri(ref.source)}: "
                               f"{redact_text(str(exc))}") from exc
    except Exception as exc:  # MlflowException, OSError: a download that failed
        raise ModelSourceError(
            f"{ref.uri}: cannot download its bundle from {redact_uri(ref.source)}: "
            f"{type(exc).__name__}: {redact_text(str(exc))}"
        ) from exc
    return ServedModel(ref=ref, bundle=bundle, loaded_at=datetime.now(UTC))


def resolve_model(
    model: str, *, tracking_uri: str | None = None, allow_unregistered: bool = False,
    verifier: Callable[[Any, str, str], str] | None = None,
) -> ServedModel:
    """The model to serve: looked up, gate-checked, downloaded and loaded.

    Parameters
    ----------
    model : str
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or (with
        ``allow_unregistered``) a local bundle directory.
    tracking_uri : str or None
        MLflow tracking and registry URI (required for ``models:/`` URIs).
    allow_unregistered : bool
        Accept a local bundle directory (gate summary "unregistered bundle").

    Raises
    ------
    GateRefusedError
        The version did not pass the gate or is not servable.
    ModelSourceError
        Anything else that stops it from being served.

    Examples
    --------
    >>> resolve_model("/no/such/bundle")
    Traceback (most recent call last):
    ...
    recsys.serving._source.ModelSourceError: model: '/no/such/bundle' is a local bundle directory, which has no gate result; expected 'models:/NAME@ALIAS' or 'models:/NAME/VERSION' (serve a local bundle only with allow_unregistered=True)
    """
    return fetch_model(
        describe_model(model, tracking_uri=tracking_uri, allow_unregistered=allow_unregistered, verifier=verifier)
    )


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient  # lazily: importing mlflow takes seconds

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
