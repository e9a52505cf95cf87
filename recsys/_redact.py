"""Credentials out of URIs before they are printed, returned or logged.

A tracking or artifact URI may carry a password (``http://user:pass@host``) or a
signed query (``...?sig=...``, ``...?token=...``). :func:`redact_uri` masks those
parts of one URI; :func:`redact_text` masks them wherever a URI appears inside a
longer text (an exception message that quotes the URL it failed on).

Written by hand: the standard library splits URIs but masks nothing, and no
maintained package does this one job.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "SECRET_QUERY_PARAMETERS", "redact_text", "redact_uri"]

MASK = "***"

#: query parameters whose values are credentials (compared case-insensitively)
SECRET_QUERY_PARAMETERS: frozenset[str] = frozenset({
    "token", "access_token", "id_token", "refresh_token", "auth", "authorization",
    "password", "passwd", "pwd", "secret", "client_secret", "api_key", "apikey", "key",
    "sig", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "x-goog-signature", "x-goog-credential",
})

# scheme://userinfo@: greedy, so a password holding "@" is masked up to the last "@" before the host
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#'\"<>]+)@")
_QUERY_PAIR = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&;#\s'\"<>]+)=(?P<value>[^&;#\s'\"<>]*)")


def _userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match["userinfo"].partition(":")
    # "user:password" keeps the user name; a lone userinfo (often a bare token) is masked whole
    return f"{match['scheme']}{user}:{MASK}@" if colon else f"{match['scheme']}{MASK}@"


def _query_pair(match: re.Match[str]) -> str:
    if match["name"].lower() not in SECRET_QUERY_PARAMETERS:
        return match.group(0)
    return f"{match['sep']}{match['name']}={MASK}"


def redact_text(text: str) -> str:
    """``text`` with the password (or bare token) of every ``scheme://...@`` and secret query values masked.

    Examples
    --------
    >>> redact_text("cannot reach http://alice:s3cret@mlflow:5000/api (refused)")
    'cannot reach http://alice:***@mlflow:5000/api (refused)'
    >>> redact_text("GET /transparency?token=eyJhbGc.x.y&lang=en")
    'GET /transparency?token=***&lang=en'
    >>> redact_text("no uri here")
    'no uri here'
    """
    if "@" in text:
        text = _USERINFO.sub(_userinfo, text)
    if "=" in text:
        text = _QUERY_PAIR.sub(_query_pair, text)
    return text


def redact_uri(uri: str | None) -> str | None:
    """``uri`` without its credentials: the password (or a bare token as userinfo) and secret query values.

    The rest of the URI is kept character for character (no re-encoding).

    Examples
    --------
    >>> redact_uri("http://alice:s3cret@mlflow.internal:5000")
    'http://alice:***@mlflow.internal:5000'
    >>> redact_uri("https://ghp_abc123@example.org/repo")
    'https://***@example.org/repo'
    >>> redact_uri("https://store.blob/x?sv=2024&sig=abc%2Fdef")
    'https://store.blob/x?sv=2024&sig=***'
    >>> redact_uri("sqlite:///mlflow.db"), redact_uri("models:/fairrec@champion")
    ('sqlite:///mlflow.db', 'models:/fairrec@champion')
    >>> redact_uri(None) is None
    True
    """
    return None if uri is None else redact_text(uri)
