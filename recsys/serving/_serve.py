"""Run the service on uvicorn."""

from __future__ import annotations

import gc
import logging

import uvicorn

from recsys.serving._app import create_app
from recsys.serving._settings import ServeSettings
from recsys.serving._web import RedactAccessLog

_REDACT_ACCESS_LOG = RedactAccessLog()

__all__ = ["build_server", "serve"]


def build_server(settings: ServeSettings, *, log_level: str = "info", access_log: bool = True) -> uvicorn.Server:
    """A uvicorn server for the app of ``settings``; ``run()`` it, set ``should_exit`` to stop.

    The model is loaded and gate-checked here, before any port is bound: a
    refused model raises :class:`~recsys.serving.GateRefusedError`. The access log
    masks credentials in request lines (the page's ``?token=``).
    """
    app = create_app(settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=log_level, access_log=access_log,
        server_header=False,
    )
    # after uvicorn.Config, which (re)configures uvicorn's loggers; adding the same filter twice is a no-op
    logging.getLogger("uvicorn.access").addFilter(_REDACT_ACCESS_LOG)
    return uvicorn.Server(config)


def serve(settings: ServeSettings, *, log_level: str = "info", access_log: bool = True) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM stops it cleanly); meant to own the process.

    Once the model is loaded, every object alive is moved out of the cyclic garbage
    collector's reach (``gc.freeze``): the loaded model, the libraries and the app live as
    long as the process, and a full collection walking them all is a latency spike of
    tens of milliseconds under load.
    """
    server = build_server(settings, log_level=log_level, access_log=access_log)
    gc.collect()
    gc.freeze()
    server.run()
