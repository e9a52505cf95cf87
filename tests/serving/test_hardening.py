"""Web hardening: CSRF on the form, HTML security headers, allowed hosts, request size limits,
and a service that will not start without credentials."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recsys.serving import ServeSettings
from tests.serving.helpers import AS_OPERATOR, as_user, csrf_token, user_token

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def client(bundles, make_client):
    return make_client(bundles["hand_ease"], k_default=3)


@pytest.fixture
def local(bundles, make_client):
    return make_client(bundles["hand_ease"], k_default=3, insecure_local=True)


def signed_in_page(client, user_id: str = "u0") -> str:
    return client.get("/transparency", params={"token": user_token(user_id)}).text


# -- CSRF -----------------------------------------------------------------------------------------

def test_a_cross_site_post_is_refused_with_and_without_authentication(client, local):
    """A page elsewhere posts the form: the browser sends no SameSite=Strict cookie, and the
    attacker cannot know the signed token."""
    for c in (client, local):
        c.cookies.clear()
        r = c.post("/transparency/personalisation", content="user_id=u0&personalisation=off",
                   headers=FORM, follow_redirects=False)
        assert r.status_code in (401, 403)
        assert c.app.state.consent.get("u0") is None


def test_a_signed_in_browser_needs_the_forms_token(client):
    html = signed_in_page(client)
    no_token = client.post("/transparency/personalisation", content="user_id=u0&personalisation=off",
                           headers=FORM)
    assert no_token.status_code == 403 and "form field &#x27;csrf_token&#x27; missing" in no_token.text
    client.cookies.delete("fairrec_csrf", path="/transparency")  # as a cross-site post arrives
    r = client.post("/transparency/personalisation",
                    content=f"user_id=u0&personalisation=off&csrf_token={csrf_token(html)}", headers=FORM)
    assert r.status_code == 403 and "no session cookie" in r.text
    assert client.app.state.consent.get("u0") is None


def test_a_token_from_another_browser_session_or_user_is_refused(client, bundles, make_client):
    other = make_client(bundles["hand_ease"], k_default=3)
    stolen = csrf_token(other.get("/transparency", params={"token": user_token("u0")}).text)
    signed_in_page(client)  # this browser's own nonce differs
    r = client.post("/transparency/personalisation",
                    content=f"user_id=u0&personalisation=off&csrf_token={stolen}", headers=FORM)
    assert r.status_code == 403 and "does not belong to this browser session" in r.text
    # a signed-in user cannot switch someone else's consent with their own valid form
    token = csrf_token(signed_in_page(client, "u1"))
    r = client.post("/transparency/personalisation",
                    content=f"user_id=u0&personalisation=off&csrf_token={token}", headers=FORM)
    assert r.status_code == 403 and client.app.state.consent.get("u0") is None


# -- headers on HTML --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/transparency?token={token}", "/docs", "local /transparency?user_id=u0"])
def test_html_carries_csp_anti_framing_and_nosniff(client, local, path):
    c = local if path.startswith("local ") else client
    r = c.get(path.removeprefix("local ").format(token=user_token("u0")),
              headers=AS_OPERATOR if path == "/docs" else {})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
    assert "unsafe-inline" not in csp.split("style-src")[0]  # no inline script allowed by a wildcard
    assert (r.headers["X-Frame-Options"], r.headers["X-Content-Type-Options"]) == ("DENY", "nosniff")
    assert r.headers["Referrer-Policy"] == "no-referrer" and r.headers["Cache-Control"] == "no-store"


def test_refusal_pages_carry_the_headers_too(client):
    r = client.get("/transparency")
    assert r.status_code == 401 and r.headers["X-Frame-Options"] == "DENY"


def test_the_page_csp_allows_exactly_its_own_style(client):
    from recsys.serving._page import _STYLE
    from recsys.serving._web import csp_hash

    r = client.get("/transparency", params={"token": user_token("u0")})
    assert f"style-src {csp_hash(_STYLE)};" in r.headers["Content-Security-Policy"]
    assert "<script" not in r.text


def test_swagger_ui_is_served_from_the_service_not_a_cdn(client):
    html = client.get("/docs", headers=AS_OPERATOR).text
    assert not re.search(r"https?://", html.split("<script>")[0])  # no remote script or style
    assert '<script src="/docs/static/swagger-ui-bundle.js">' in html
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    from recsys.serving._web import csp_hash
    csp = client.get("/docs", headers=AS_OPERATOR).headers["Content-Security-Policy"]
    assert inline and all(csp_hash(s) in csp for s in inline)
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        assert client.get(f"/docs/static/{asset}").status_code == 200


# -- hosts -------------------------------------------------------------------------------------

def test_a_foreign_host_header_is_refused(client):
    """DNS rebinding: a page on evil.example resolves to 127.0.0.1 and calls the service."""
    for path in ("/health", "/users/u0/recommendations", "/transparency"):
        r = client.get(path, headers={"Host": "evil.example", **as_user("u0")})
        assert (r.status_code, r.text) == (400, "Invalid host header")
    assert client.get("/health", headers={"Host": "localhost:8000"}).status_code == 200


def test_allowed_hosts_is_required_off_loopback_and_may_not_be_a_wildcard(tmp_path):
    base = {"model": "m", "consent_path": tmp_path / "c.sqlite", "audit_path": tmp_path / "a.jsonl",
            "user_token_secret": "u" * 32, "admin_token": "o" * 32}
    with pytest.raises(ValueError, match=r"^allowed_hosts: required when host is not a loopback address"):
        ServeSettings(**base, host="0.0.0.0")
    with pytest.raises(ValueError, match="got '\\*', which would answer any Host header"):
        ServeSettings(**base, host="0.0.0.0", allowed_hosts=("*",))
    ok = ServeSettings(**base, host="0.0.0.0", allowed_hosts=["recs.example.org"])
    assert ok.allowed_hosts == ("recs.example.org",)


# -- request size ---------------------------------------------------------------------------------

def test_a_large_body_is_refused_before_it_is_read_and_never_echoed(client):
    big = b'{"personalisation": "' + b"x" * (3 * 2**20) + b'"}'
    r = client.put("/users/u0/consent", content=big,
                   headers={"content-type": "application/json", **as_user("u0")})
    assert r.status_code == 413
    assert r.json() == {"detail": f"request body: expected at most 65536 bytes, got Content-Length {len(big)}"}
    assert len(r.content) < 200


def test_a_streamed_body_is_cut_off_at_the_limit(client):
    sent = []

    def chunks():
        for _ in range(100):  # 6.4 MB if read in full
            sent.append(1)
            yield b"x" * 65536

    r = client.put("/users/u0/consent", content=chunks(),
                   headers={"content-type": "application/json", **as_user("u0")})
    assert r.status_code == 413 and "more than 65536 bytes" in r.json()["detail"]


def test_a_422_quotes_a_long_value_only_briefly(client):
    body = '{"personalisation": "' + "y" * 60_000 + '"}'
    r = client.put("/users/u0/consent", content=body,
                   headers={"content-type": "application/json", **as_user("u0")})
    assert r.status_code == 422
    assert len(r.content) < 1000
    assert r.json()["detail"][0]["input"].endswith("...")


# -- starting ------------------------------------------------------------------------------------

def test_the_service_refuses_to_start_without_credentials(tmp_path):
    base = {"model": "m", "consent_path": tmp_path / "c.sqlite", "audit_path": tmp_path / "a.jsonl"}
    with pytest.raises(ValueError, match="refuses to start without credentials.*got neither$"):
        ServeSettings(**base)
    with pytest.raises(ValueError, match="got only admin_token$"):
        ServeSettings(**base, admin_token="o" * 32)
    with pytest.raises(ValueError, match=r"^host: insecure_local serves without authentication, so only on "
                                         r"a loopback address .* got '0.0.0.0'$"):
        ServeSettings(**base, insecure_local=True, host="0.0.0.0", allowed_hosts=("x.example",))
    with pytest.raises(ValueError, match=r"^insecure_local: expected False when credentials are set"):
        ServeSettings(**base, insecure_local=True, user_token_secret="u" * 32, admin_token="o" * 32)
    local = ServeSettings(**base, insecure_local=True)
    assert (local.authenticated, local.host) == (False, "127.0.0.1")


def test_secrets_are_never_printed(tmp_path):
    secret, short = "a-very-secret-value-0123456789abcdef", "shorty"
    s = ServeSettings(model="m", consent_path=Path("c.sqlite"), audit_path=Path("a.jsonl"),
                      user_token_secret=secret, admin_token=secret[::-1])
    assert secret not in repr(s) and secret[::-1] not in repr(s)
    with pytest.raises(ValueError) as info:
        ServeSettings(model="m", consent_path=Path("c.sqlite"), audit_path=Path("a.jsonl"),
                      user_token_secret=short, admin_token=secret)
    assert short not in str(info.value) and "got a string of 6 characters" in str(info.value)


def test_without_credentials_everything_is_open_on_loopback(local):
    assert local.get("/users/u0/recommendations").status_code == 200
    assert local.get("/model").status_code == 200
    assert local.post("/admin/reload").status_code == 200
    assert local.get("/openapi.json").status_code == 200


# -- undeclared query parameters ------------------------------------------------------------------

@pytest.mark.parametrize("query", [{"K": "5"}, {"k": "3", "explian": "true"}], ids=["case-typo", "misspelt"])
def test_an_undeclared_query_parameter_is_a_422_that_names_it(client, query):
    """A typo is not silently ignored (found by the schema fuzzer: `?±dff=true` was served a 200)."""
    r = client.get("/users/u0/recommendations", params=query, headers=as_user("u0"))
    assert r.status_code == 422
    bad = sorted(set(query) - {"k"})[0]
    assert f"query parameter '{bad}': unknown query parameter; allowed: exclude, explain, k" in r.json()["message"]
    assert client.get("/users/u0/recommendations", params={"k": "3"}, headers=as_user("u0")).status_code == 200
