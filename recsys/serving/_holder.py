"""The model being served, and reloading it without a restart.

:class:`ModelHolder` keeps the current :class:`~recsys.serving._engine.ServingEngine`.
A reload looks the model URI up again; a registry version that is already
being served is left alone ("unchanged"); otherwise the new version is
gate-checked, downloaded and loaded *before* it replaces the old engine in one
attribute assignment, so a request sees either the old model or the new one,
never a mix. A failed reload (gate refused, download or load error) keeps the
old model and records why (:attr:`ModelHolder.last_reload`).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from recsys._redact import redact_text
from recsys.serving._engine import ServingEngine
from recsys.serving._schemas import ReloadOut, ReloadStatus
from recsys.serving._settings import ServeSettings
from recsys.serving._source import describe_model, fetch_model, resolve_model

__all__ = ["ModelHolder", "ReloadPoller"]


class ModelHolder:
    """The current engine (read :attr:`engine` once per request) and its reloads."""

    def __init__(self, settings: ServeSettings, engine: ServingEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.last_reload: ReloadStatus | None = None
        self._lock = threading.Lock()  # one reload at a time

    @classmethod
    def load(cls, settings: ServeSettings) -> ModelHolder:
        """Resolve and load ``settings.model``; raises if it may not be served."""
        served = resolve_model(
            settings.model,
            tracking_uri=settings.tracking_uri,
            allow_unregistered=settings.allow_unregistered,
            verifier=settings.verifier,
        )
        return cls(settings, ServingEngine(served, max_reasons=settings.max_reasons))

    def reload(self) -> ReloadOut:
        """Load the model the URI points at now, if it changed; never raises."""
        with self._lock:
            previous = self.engine
            try:
                ref = describe_model(
                    self.settings.model,
                    tracking_uri=self.settings.tracking_uri,
                    allow_unregistered=self.settings.allow_unregistered,
                    verifier=self.settings.verifier,
                )
                current = previous.served.ref
                if ref.version is not None and (ref.name, ref.version) == (current.name, current.version):
                    outcome, message = "unchanged", f"already serving {ref.name} version {ref.version}"
                else:
                    engine = ServingEngine(fetch_model(ref), max_reasons=self.settings.max_reasons)
                    self.engine = engine  # the swap
                    outcome, message = "reloaded", f"now serving {_describe(engine)}"
            # a failed reload must never stop the model being served: whatever went
            # wrong is reported, and the old engine stays
            except Exception as exc:  # noqa: BLE001
                outcome = "failed"
                # returned by /admin/reload and shown by /model: no credentials in it
                message = redact_text(f"{exc} (still serving {_describe(previous)})")
            self.last_reload = ReloadStatus(time=datetime.now(UTC), outcome=outcome, message=message)
            return ReloadOut(
                outcome=outcome,
                message=message,
                previous=previous.summary,
                current=self.engine.summary,
            )


def _describe(engine: ServingEngine) -> str:
    s = engine.summary
    return s.name if s.version is None else f"{s.name} version {s.version}"


class ReloadPoller:
    """Calls :meth:`ModelHolder.reload` every ``interval`` seconds in a daemon thread."""

    def __init__(self, holder: ModelHolder, interval: float) -> None:
        self.holder = holder
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fairrec-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.holder.reload()
