"""Who may call what: user tokens (JWT, via PyJWT) and the operator token.

The application that embeds fairrec holds ``user_token_secret``. For each of its
users it signs a short-lived token (:func:`issue_user_token`): a JWT, HS256,
whose ``sub`` is the user id, ``aud`` is ``"fairrec"`` and ``exp`` is required.
A user's endpoints accept only a token whose ``sub`` is the user id in the path.
The operator holds ``admin_token``, a static secret compared in constant time.

Signing and checking tokens is PyJWT's; nothing cryptographic is written here.
"""

from __future__ import annotations

import hmac
import time

import jwt

__all__ = [
    "AUDIENCE",
    "ALGORITHM",
    "LEEWAY_SECONDS",
    "TokenRefused",
    "check_operator_token",
    "issue_user_token",
    "user_token_claims",
    "verify_user_token",
]

AUDIENCE = "fairrec"
ALGORITHM = "HS256"
#: clock difference tolerated between the application that signs and the service
LEEWAY_SECONDS = 10


class TokenRefused(Exception):
    """A credential was missing or not valid; the message says why (never what it was)."""


def issue_user_token(user_id: str, *, secret: str, ttl_seconds: int = 300, now: float | None = None) -> str:
    """A signed token that lets its bearer act as ``user_id`` for ``ttl_seconds``.

    This is what the application that embeds fairrec runs (or its own JWT
    library's equivalent) for each signed-in user.

    Parameters
    ----------
    user_id : str
        The external user id, as in the service's paths.
    secret : str
        ``ServeSettings.user_token_secret``.
    ttl_seconds : int, default 300
        Lifetime of the token.
    now : float or None
        The issue time (Unix seconds); None: the current time.

    Examples
    --------
    >>> token = issue_user_token("42", secret="k" * 32, ttl_seconds=60)
    >>> verify_user_token(token, secret="k" * 32)
    '42'
    """
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"user_id: expected a non-empty string, got {user_id!r}")
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds: expected a positive integer, got {ttl_seconds!r}")
    issued = int(time.time() if now is None else now)
    claims = {"sub": user_id, "aud": AUDIENCE, "iat": issued, "exp": issued + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_user_token(token: str, *, secret: str) -> str:
    """The user id a valid token names; :class:`TokenRefused` says why a token is not valid.

    The token must be signed with ``secret`` (HS256), name ``aud`` "fairrec", a
    non-empty ``sub`` and an ``exp`` not passed (``LEEWAY_SECONDS`` of tolerance).

    Examples
    --------
    >>> verify_user_token("not-a-token", secret="k" * 32)
    Traceback (most recent call last):
    ...
    recsys.serving._auth.TokenRefused: a token that is not valid (Not enough segments)
    >>> old = issue_user_token("42", secret="k" * 32, ttl_seconds=60, now=1_000_000)
    >>> verify_user_token(old, secret="k" * 32)
    Traceback (most recent call last):
    ...
    recsys.serving._auth.TokenRefused: a token that has expired
    """
    return user_token_claims(token, secret=secret)[0]


def user_token_claims(token: str, *, secret: str) -> tuple[str, float]:
    """``(user id, expiry in Unix seconds)`` of a valid token (see :func:`verify_user_token`).

    >>> import time
    >>> user_id, expires = user_token_claims(issue_user_token("7", secret="k" * 32, ttl_seconds=60),
    ...                                      secret="k" * 32)
    >>> user_id, 50 < expires - time.time() <= 60
    ('7', True)
    """
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "aud", "exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenRefused("a token that has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenRefused(f"a token that is not valid ({exc})") from exc
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise TokenRefused("a token that is not valid (its 'sub' claim is not a user id)")
    return subject, float(claims["exp"])


def check_operator_token(given: str | None, *, expected: str) -> None:
    """Raise :class:`TokenRefused` unless ``given`` is the operator token (constant-time comparison).

    >>> check_operator_token("o" * 32, expected="o" * 32)
    >>> check_operator_token("guess", expected="o" * 32)
    Traceback (most recent call last):
    ...
    recsys.serving._auth.TokenRefused: a wrong operator token
    """
    if given is None:
        raise TokenRefused("no credentials")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise TokenRefused("a wrong operator token")
