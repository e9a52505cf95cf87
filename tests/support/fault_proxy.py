"""A loopback HTTP proxy in front of a real ``mlflow server`` that breaks after the N-th matching request.

From a client's side a tracking server that dies is a connection closed without an
answer. :meth:`FaultProxy.break_after` arms the fault: once ``n`` requests matching
``pattern`` (``"METHOD /path"``, a regular expression) have been forwarded and
answered, the proxy answers the next ``down`` requests (any of them) by closing the
connection, as a dead server would, then forwards again, as a server restarted by
its supervisor would. With ``on_break`` the test can also act at that moment (kill
the real server, say).

Written by hand: the standard library's ``http.server`` and ``http.client`` carry
the requests; no test dependency offers a programmable fault proxy.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["FaultProxy"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "content-length"}


class FaultProxy:
    """Forward ``http://127.0.0.1:PORT`` to ``upstream``; count requests; break on demand."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None
        self._remaining = 0
        self._down = 0
        self._on_break: Callable[[], None] | None = None
        self._armed_down = 0
        self.fired = False  # whether the armed fault has gone off
        self.log: list[str] = []  # "METHOD /path -> status" of every request, in order
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                proxy._forward(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def break_after(self, pattern: str, n: int, *, down: int = 1,
                    on_break: Callable[[], None] | None = None) -> None:
        """After the ``n``-th request matching ``pattern`` is answered, drop the next ``down`` requests."""
        with self._lock:
            self._pattern, self._remaining, self._down, self._on_break = re.compile(pattern), n, 0, on_break
            self._armed_down, self.fired = down, False

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ internals
    def _read_body(self, handler: BaseHTTPRequestHandler) -> bytes:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(handler.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    handler.rfile.readline()
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        body = self._read_body(handler)
        request = f"{handler.command} {urlsplit(handler.path).path}"
        with self._lock:
            if self._down > 0:
                self._down -= 1
                self.log.append(f"{request} -> dropped")
                handler.close_connection = True
                return  # no answer: the connection closes, as a dead server's would
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        conn = http.client.HTTPConnection(*self._upstream, timeout=120)
        try:
            conn.request(handler.command, handler.path, body=body or None, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            handler.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(payload)
            status = response.status
        except OSError:  # the real server is gone
            handler.close_connection = True
            status = 0
        finally:
            conn.close()
        fire = None
        with self._lock:
            self.log.append(f"{request} -> {status or 'no answer'}")
            if self._pattern is not None and self._pattern.fullmatch(request):
                self._remaining -= 1
                if self._remaining == 0:
                    self._pattern, self._down, fire = None, self._armed_down, self._on_break
                    self.fired = True
        if fire is not None:
            fire()
