"""Who may call what (docs/security.md's table, row by row), and the attacks that used to work.

401: no valid credential; 403: a valid credential of someone else. Each row is asked by its
owner (allowed) and by everyone else: nobody, a wrong or expired token, another user, the
operator where a user is needed, a user where the operator is needed.
"""

from __future__ import annotations

import base64

import pytest

from recsys.serving import issue_user_token
from tests.serving.helpers import AS_OPERATOR, OPERATOR_TOKEN, USER_SECRET, as_user, user_token

USER_ENDPOINTS = [
    ("GET", "/users/{id}/recommendations?k=3&explain=true", None),
    ("GET", "/users/{id}/consent", None),
    ("PUT", "/users/{id}/consent", {"personalisation": False}),
]
OPERATOR_ENDPOINTS = [("GET", "/model"), ("POST", "/admin/reload"), ("GET", "/openapi.json"), ("GET", "/docs")]


@pytest.fixture
def client(bundles, make_client):
    return make_client(bundles["hand_ease"], acting=False)


def call(client, method, path, body=None, headers=None, user_id="u0"):
    return client.request(method, path.format(id=user_id), json=body, headers=headers or {})


def expired(user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(user_id, ttl_seconds=60, now=1_000_000)}"}


def forged(user_id: str) -> dict[str, str]:
    token = issue_user_token(user_id, secret="an-attacker-guessed-secret-0123456789")
    return {"Authorization": f"Bearer {token}"}


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"ops:{password}".encode()).decode()}


# -- public -----------------------------------------------------------------------------------

def test_health_readiness_and_swagger_files_are_public(client):
    assert client.get("/health").status_code == 200
    assert client.get("/ready").json()["status"] == "ready"
    r = client.get("/docs/static/swagger-ui-bundle.js")
    assert r.status_code == 200 and "SwaggerUIBundle" in r.text[:2000]


# -- the user's own data ----------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body"), USER_ENDPOINTS)
def test_a_users_endpoints_serve_that_user(client, method, path, body):
    assert call(client, method, path, body, as_user("u0")).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), USER_ENDPOINTS)
@pytest.mark.parametrize(("who", "headers", "status", "says"), [
    ("nobody", {}, 401, "got no credentials"),
    ("a wrong scheme", {"Authorization": "Token abc"}, 401, "got no credentials"),
    ("garbage", {"Authorization": "Bearer abc"}, 401, "got a token that is not valid"),
    ("an expired token", expired("u0"), 401, "got a token that has expired"),
    ("a forged token", forged("u0"), 401, "Signature verification failed"),
    ("another user", as_user("u1"), 403, "the token is for another user"),
    ("the operator", AS_OPERATOR, 403, "the operator token gives no access to a user's data"),
])
def test_a_users_endpoints_refuse_everyone_else(client, method, path, body, who, headers, status, says):
    r = call(client, method, path, body, headers)
    assert r.status_code == status, who
    assert says in r.json()["detail"]
    if status == 401:
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="fairrec"'
    assert client.app.state.consent.get("u0") is None  # nothing was changed


def test_the_refusal_comes_before_parameter_validation(client):
    r = client.get(f"/users/{'x' * 500}/recommendations", params={"k": 10_000})
    assert r.status_code == 401  # not a 422 that would tell what is checked first


def test_an_attacker_cannot_recover_a_victims_history(client):
    """The reported attack: lists of 100 with explanations and exclusions, for the victim's id."""
    for headers in ({}, as_user("attacker")):
        for _ in range(5):
            r = client.get("/users/u0/recommendations",
                           params={"k": 4, "explain": "true", "exclude": ["c", "d"]}, headers=headers)
            assert r.status_code in (401, 403) and "items" not in r.json()
            assert "Alien" not in r.text and "Brazil" not in r.text


@pytest.mark.parametrize(("method", "path", "body"), USER_ENDPOINTS)
@pytest.mark.parametrize("headers", [{}, as_user("attacker"), AS_OPERATOR, expired("attacker")],
                         ids=["nobody", "another user", "operator", "expired"])
def test_known_and_unknown_users_look_the_same_to_others(client, method, path, body, headers):
    known = call(client, method, path, body, headers, user_id="u0")  # in the training data
    unknown = call(client, method, path, body, headers, user_id="ghost")  # not
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert dict(known.headers) == dict(unknown.headers)


def test_similar_items_need_a_signed_in_user(client):
    assert client.get("/items/a/similar").status_code == 401
    assert client.get("/items/a/similar", headers=forged("u0")).status_code == 401
    assert client.get("/items/a/similar", headers=AS_OPERATOR).status_code == 403
    assert client.get("/items/a/similar", headers=as_user("anyone")).status_code == 200


# -- the operator -----------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), OPERATOR_ENDPOINTS)
def test_operator_endpoints_serve_the_operator(client, method, path):
    assert client.request(method, path, headers=AS_OPERATOR).status_code == 200
    assert client.request(method, path, headers=basic(OPERATOR_TOKEN)).status_code == 200  # a browser


@pytest.mark.parametrize(("method", "path"), OPERATOR_ENDPOINTS)
@pytest.mark.parametrize(("who", "headers", "status"), [
    ("nobody", {}, 401),
    ("a wrong token", {"Authorization": "Bearer " + "x" * 40}, 401),
    ("a wrong Basic password", basic("x" * 40), 401),
    ("a user", as_user("u0"), 403),
    ("the user-token secret itself", {"Authorization": f"Bearer {USER_SECRET}"}, 401),
])
def test_operator_endpoints_refuse_everyone_else(client, method, path, who, headers, status):
    before = client.app.state.holder.engine
    r = client.request(method, path, headers=headers)
    assert r.status_code == status, who
    assert "authorization:" in r.json()["detail"]
    if status == 401:  # a browser asks for the operator's password
        assert r.headers["WWW-Authenticate"].startswith('Basic realm="fairrec operator"')
    assert client.app.state.holder.engine is before  # no reload happened


# -- the transparency page ----------------------------------------------------------------------

def test_the_page_needs_a_sign_in_and_shows_only_the_signed_in_user(client):
    r = client.get("/transparency")
    assert r.status_code == 401 and "Not signed in" in r.text
    for uid in ("u0", "ghost"):  # nobody's page by id, known or not
        assert client.get("/transparency", params={"user_id": uid}).status_code == 401
    r = client.get("/transparency", params={"token": user_token("u0", ttl_seconds=60, now=1_000_000)})
    assert r.status_code == 401 and "expired" in r.text and "fairrec_session" not in r.headers.get("set-cookie", "")

    r = client.get("/transparency", params={"token": user_token("u1")}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/transparency")
    session = r.headers["set-cookie"]
    assert "fairrec_session=" in session and "HttpOnly" in session and "SameSite=lax" in session
    assert "Path=/transparency" in session
    page = client.get("/transparency")
    assert page.status_code == 200 and 'name="user_id" value="u1"' in page.text
    other = client.get("/transparency", params={"user_id": "u0"})
    ghost = client.get("/transparency", params={"user_id": "ghost"})
    assert other.status_code == ghost.status_code == 403 and other.text == ghost.text
    assert "Alien" not in other.text  # u0's history is not shown


def test_a_token_that_expires_while_in_use_is_refused_from_then_on(client, monkeypatch):
    """The signature of a token is checked once; its expiry on every request."""
    import time as real_time

    import recsys.serving._guards as guards_module

    headers = as_user("u0", ttl_seconds=60)
    assert client.get("/users/u0/consent", headers=headers).status_code == 200

    class Later:
        @staticmethod
        def time() -> float:
            return real_time.time() + 3600

    monkeypatch.setattr(guards_module, "time", Later)
    r = client.get("/users/u0/consent", headers=headers)
    assert r.status_code == 401 and r.json()["detail"].endswith("got a token that has expired")
