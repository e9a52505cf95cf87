"""Web hardening of the service: request size limit, HTML security headers, form CSRF tokens, log redaction.

* :class:`BodySizeLimit`: a body longer than the limit is refused with 413 before it
  is read in full (a declared ``Content-Length`` at once; a streamed body as soon
  as it passes the limit). Written by hand: neither Starlette nor uvicorn bounds
  request bodies.
* :func:`html_headers`: Content-Security-Policy, ``X-Frame-Options``,
  ``X-Content-Type-Options`` and ``Referrer-Policy`` for HTML responses (a fixed
  set of four headers; a dependency for a dict literal would add nothing).
* :class:`FormGuard`: the transparency form's CSRF protection, a double-submit
  token: a random nonce in a ``SameSite=Strict`` cookie, and in the form the nonce
  and the user id signed with itsdangerous (which does the signing and expiry).
  A cross-site post has neither the cookie nor a way to read it. No maintained
  library protects plain HTML forms on Starlette (``starlette-csrf`` checks a
  header only, which a form without JavaScript cannot send).
* :class:`RedactAccessLog`: masks credentials (``?token=...``) in uvicorn's access log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.exceptions import HTTPException

from recsys._redact import redact_text

__all__ = [
    "CSRF_COOKIE",
    "BodySizeLimit",
    "FormGuard",
    "RedactAccessLog",
    "RequestTooLarge",
    "csp_hash",
    "html_headers",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_COOKIE = "fairrec_csrf"
CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE = 2 * 3600  # seconds a page's form stays valid


class RequestTooLarge(HTTPException):
    """The request body passed ``max_body_bytes`` (413)."""

    def __init__(self, limit: int, received: str) -> None:
        super().__init__(status_code=413, detail=f"request body: expected at most {limit} bytes, got {received}")


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, without reading it all.

    A route reading the body sees :class:`RequestTooLarge` (an HTTP 413 the app's
    exception handling turns into a response) as soon as the limit is passed.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    shown = value[:20].decode("latin-1")
                    await _send_413(send, RequestTooLarge(limit, f"Content-Length {shown}"))
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(limit, f"more than {limit} bytes (streamed)")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestTooLarge as exc:
            if started:
                raise
            await _send_413(send, exc)


async def _send_413(send: Send, exc: RequestTooLarge) -> None:
    body = json.dumps({"detail": exc.detail}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})


def csp_hash(source: str) -> str:
    """The CSP source expression that allows exactly this inline script or style.

    >>> csp_hash("body { color: red; }")
    "'sha256-XeYlw2NVzOfB1UCIJqCyGr+0n7bA4fFslFpvKu84IAw='"
    """
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def html_headers(csp: str) -> dict[str, str]:
    """Headers of every HTML response: ``csp`` plus anti-framing, no sniffing, no referrer, no caching.

    >>> sorted(html_headers("default-src 'none'"))
    ['Cache-Control', 'Content-Security-Policy', 'Referrer-Policy', 'X-Content-Type-Options', 'X-Frame-Options']
    """
    return {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


class FormGuard:
    """CSRF tokens of the transparency form (double submit, signed; see the module docstring).

    Parameters
    ----------
    secret : bytes or str
        Signing key; the app derives it from its user-token secret, or draws a
        random one per process when it runs without credentials.

    Examples
    --------
    >>> guard = FormGuard("k" * 32)
    >>> nonce = guard.new_nonce()
    >>> token = guard.token(nonce, "u1")
    >>> guard.check(token, cookie=nonce, user_id="u1") is None
    True
    >>> guard.check(token, cookie=guard.new_nonce(), user_id="u1")
    'the form does not belong to this browser session'
    >>> guard.check(token, cookie=None, user_id="u1")
    'no session cookie (a form posted from another site?)'
    """

    def __init__(self, secret: bytes | str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="fairrec-transparency-form")

    @staticmethod
    def new_nonce() -> str:
        """A fresh random value for the CSRF cookie."""
        return secrets.token_urlsafe(32)

    def token(self, nonce: str, user_id: str) -> str:
        """The hidden form field for a page shown to ``user_id`` in the browser holding ``nonce``."""
        return self._serializer.dumps([nonce, user_id])

    def check(self, token: str | None, *, cookie: str | None, user_id: str | None) -> str | None:
        """None if ``token`` is valid for this cookie and user (None: any user); otherwise why not."""
        if not cookie:
            return "no session cookie (a form posted from another site?)"
        if not token:
            return f"form field {CSRF_FIELD!r} missing"
        try:
            nonce, signed_user = self._serializer.loads(token, max_age=CSRF_MAX_AGE)
        except SignatureExpired:
            return "the form has expired: reload the page"
        except (BadSignature, ValueError, TypeError):
            return f"form field {CSRF_FIELD!r} is not a valid token"
        if not secrets.compare_digest(str(nonce), cookie):
            return "the form does not belong to this browser session"
        if user_id is not None and signed_user != user_id:
            return "the form was issued for another user id"
        return None


class RedactAccessLog(logging.Filter):
    """Masks credentials in uvicorn's access-log records (the request line's query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_text(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        return True
