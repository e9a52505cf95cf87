"""FastAPI dependencies that decide who may call an endpoint (see ``docs/security.md``).

* :meth:`Guards.user`: the user named in the path (``/users/{user_id}/...``), with a
  user token for that id.
* :meth:`Guards.any_user`: any user with a valid user token (similar items).
* :meth:`Guards.operator`: the operator token (``Authorization: Bearer``, or the
  password of HTTP Basic so a browser can open ``/docs``).

401: no valid credential. 403: a valid credential of someone else (another user, or
a user where the operator is needed, or the operator where a user is). The answer
never depends on whether the user id in the path is known: a refusal is decided
before the model or the consent store is looked at. With ``insecure_local`` every
guard lets everything through.

The schemes are FastAPI's own (``HTTPBearer``, ``HTTPBasic``, ``APIKeyCookie``), so
the OpenAPI document describes them.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import (
    APIKeyCookie,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from recsys.serving._auth import LEEWAY_SECONDS, TokenRefused, check_operator_token, user_token_claims
from recsys.serving._settings import ServeSettings

__all__ = ["SESSION_COOKIE", "Guards", "bearer_scheme", "session_scheme"]

SESSION_COOKIE = "fairrec_session"
OPERATOR_REALM = "fairrec operator"

bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="token", bearerFormat="JWT",
    description="A user token (JWT, HS256, signed by the application with the user-token secret; "
                "`sub` the user id, `aud` \"fairrec\", `exp` required), or the operator token.",
)
basic_scheme = HTTPBasic(
    auto_error=False, scheme_name="operator_basic", realm=OPERATOR_REALM,
    description="The operator token as the password (any user name), for a browser opening /docs.",
)
session_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, scheme_name="session",
    description="Set by GET /transparency?token=USER_TOKEN: the transparency page's sign-in.",
)

Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]
Basic = Annotated[HTTPBasicCredentials | None, Security(basic_scheme)]
Session = Annotated[str | None, Security(session_scheme)]

_USER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="fairrec"'}
_OPERATOR_CHALLENGE = {"WWW-Authenticate": f'Basic realm="{OPERATOR_REALM}", Bearer realm="fairrec"'}


class Guards:
    """The access rules of one app, built from its settings."""

    def __init__(self, settings: ServeSettings) -> None:
        self.enabled = settings.authenticated
        self._secret = settings.user_token_secret or ""
        self._operator = settings.admin_token or ""
        # A client sends the same token with every request until it expires: its signature is
        # checked once, and only its expiry on later requests (PyJWT's checks cost more than a
        # tenth of a request). Refusals are not cached; the cache holds this app's tokens only.
        self._claims = lru_cache(maxsize=16_384)(self._decode)

    def _decode(self, token: str) -> tuple[str, float]:
        return user_token_claims(token, secret=self._secret)

    def _verify(self, token: str) -> str:
        subject, expires = self._claims(token)
        if time.time() > expires + LEEWAY_SECONDS:
            raise TokenRefused("a token that has expired")
        return subject

    # -- plain checks (no FastAPI): the page routes call these too -------------------------

    def user_of(self, token: str | None) -> str:
        """The user id a token names; HTTPException 401/403 otherwise."""
        if not token:
            raise HTTPException(401, "authorization: expected 'Bearer TOKEN' with a user token, "
                                     "got no credentials", headers=_USER_CHALLENGE)
        if self._is_operator(token):
            raise HTTPException(403, "authorization: the operator token gives no access to a user's "
                                     "data; expected a token for the user")
        try:
            return self._verify(token)
        except TokenRefused as exc:
            raise HTTPException(401, f"authorization: expected a valid user token, got {exc}",
                                headers=_USER_CHALLENGE) from exc

    def same_user(self, subject: str, user_id: str | None) -> None:
        """HTTPException 403 unless ``subject`` (from the token) is ``user_id`` (from the request)."""
        if subject != user_id:
            # the same answer whether user_id is known or not
            raise HTTPException(403, "authorization: the token is for another user; this endpoint "
                                     "serves only the user it names")

    def _is_operator(self, token: str) -> bool:
        try:
            check_operator_token(token, expected=self._operator)
        except TokenRefused:
            return False
        return True

    # -- FastAPI dependencies ---------------------------------------------------------------

    async def user(self, request: Request, credentials: Bearer) -> None:
        """Only the user named by the path's ``user_id``."""
        if self.enabled:
            # the raw path value: a refusal comes before any validation of the id
            self.same_user(self.user_of(None if credentials is None else credentials.credentials),
                           request.path_params.get("user_id"))

    async def any_user(self, credentials: Bearer) -> None:
        """Any user with a valid token."""
        if self.enabled:
            self.user_of(None if credentials is None else credentials.credentials)

    async def operator(self, bearer: Bearer, basic: Basic) -> None:
        """Only the operator."""
        if not self.enabled:
            return
        given = bearer.credentials if bearer is not None else (basic.password if basic is not None else None)
        try:
            check_operator_token(given, expected=self._operator)
        except TokenRefused as exc:
            if given is not None and self._is_user_token(given):
                raise HTTPException(403, "authorization: a user token gives no access to operator "
                                         "endpoints; expected the operator token") from exc
            raise HTTPException(401, f"authorization: expected the operator token ('Bearer TOKEN' or "
                                     f"HTTP Basic), got {exc}", headers=_OPERATOR_CHALLENGE) from exc

    def _is_user_token(self, token: str) -> bool:
        try:
            self._verify(token)
        except TokenRefused:
            return False
        return True
