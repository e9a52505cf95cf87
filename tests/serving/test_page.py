"""The transparency page's HTML (without a browser): sign-in, escaping, the form post and its errors."""

from __future__ import annotations

import pytest

from tests.serving.helpers import csrf_token, user_token

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def client(bundles, make_client):
    return make_client(bundles["hand_ease"], k_default=3)


@pytest.fixture
def local(bundles, make_client):
    """The service without credentials (insecure_local): the page asks for an id."""
    return make_client(bundles["hand_ease"], k_default=3, insecure_local=True)


def sign_in(client, user_id: str) -> str:
    """Open the page through the application's link; the page's HTML."""
    r = client.get("/transparency", params={"token": user_token(user_id)})
    assert r.status_code == 200 and r.history[0].status_code == 303
    assert str(r.url).endswith("/transparency")  # the token has left the address
    return r.text


def test_the_bare_page_has_only_the_lookup_form_without_authentication(local):
    r = local.get("/transparency")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="lookup"' in r.text and 'id="recommendations"' not in r.text
    assert "fairness and quality gate: unregistered bundle" in r.text


def test_user_ids_are_escaped(local):
    r = local.get("/transparency", params={"user_id": '<script>alert("x")</script>'})
    assert r.status_code == 200
    assert "<script>" not in r.text
    assert 'value="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"' in r.text
    assert 'data-basis="unknown_user"' in r.text


def test_the_page_explains_each_item(client):
    html = sign_in(client, "u0")
    assert html.count("<summary>Why am I seeing this?</summary>") == 3
    assert '<p class="why-text">Because you watched Alien</p>' in html
    assert 'data-personalisation="on"' in html and "Turn personalisation off" in html
    assert 'id="lookup"' not in html  # signed in: no asking for an id


def test_the_switch_records_consent_and_redirects_to_the_page(client):
    html = sign_in(client, "u 0")
    r = client.post("/transparency/personalisation",
                    content=f"user_id=u%200&personalisation=off&csrf_token={csrf_token(html)}",
                    headers=FORM, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/transparency")
    assert client.app.state.consent.allows_personalisation("u 0") is False


def test_the_switch_without_authentication_redirects_to_the_users_page(local):
    html = local.get("/transparency", params={"user_id": "u 0"}).text
    r = local.post("/transparency/personalisation",
                   content=f"user_id=u%200&personalisation=off&csrf_token={csrf_token(html)}",
                   headers=FORM, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/transparency?user_id=u%200")
    assert local.app.state.consent.allows_personalisation("u 0") is False


@pytest.mark.parametrize(("body", "message"), [
    ("user_id=u0", "form field &#x27;personalisation&#x27;: expected &#x27;on&#x27; or &#x27;off&#x27;, got []"),
    ("user_id=u0&personalisation=maybe", ("form field &#x27;personalisation&#x27;: expected "
                                         "&#x27;on&#x27; or &#x27;off&#x27;, got [&#x27;maybe&#x27;]")),
    ("personalisation=on", "form field &#x27;user_id&#x27;: expected one id of 1 to 128 characters, got []"),
    ("user_id=a&user_id=b&personalisation=on", ("form field &#x27;user_id&#x27;: expected one id of "
                                               "1 to 128 characters, got [&#x27;a&#x27;, &#x27;b&#x27;]")),
])
def test_bad_form_posts_get_a_422_page_naming_the_field(client, body, message):
    token = csrf_token(sign_in(client, "u0"))
    r = client.post("/transparency/personalisation", content=f"{body}&csrf_token={token}", headers=FORM)
    assert r.status_code == 422
    assert f'<p class="error" id="error">{message}</p>' in r.text
