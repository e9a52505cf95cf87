"""The transparency page's HTML (without a browser): escaping, the form post and its errors."""

from __future__ import annotations

import pytest


@pytest.fixture
def client(bundles, make_client):
    return make_client(bundles["hand_ease"], k_default=3)


def test_the_bare_page_has_only_the_lookup_form(client):
    r = client.get("/transparency")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="lookup"' in r.text and 'id="recommendations"' not in r.text
    assert "fairness and quality gate: unregistered bundle" in r.text


def test_user_ids_are_escaped(client):
    r = client.get("/transparency", params={"user_id": '<script>alert("x")</script>'})
    assert r.status_code == 200
    assert "<script>" not in r.text
    assert 'value="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"' in r.text
    assert 'data-basis="unknown_user"' in r.text


def test_the_page_explains_each_item(client):
    html = client.get("/transparency", params={"user_id": "u0"}).text
    assert html.count("<summary>Why am I seeing this?</summary>") == 3
    assert '<p class="why-text">Because you watched Alien</p>' in html
    assert 'data-personalisation="on"' in html and "Turn personalisation off" in html


def test_the_switch_records_consent_and_redirects_to_the_page(client):
    r = client.post("/transparency/personalisation", content="user_id=u%200&personalisation=off",
                    headers={"content-type": "application/x-www-form-urlencoded"},
                    follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/transparency?user_id=u%200")
    assert client.app.state.consent.allows_personalisation("u 0") is False


@pytest.mark.parametrize(("body", "message"), [
    ("user_id=u0", "form field &#x27;personalisation&#x27;: expected &#x27;on&#x27; or &#x27;off&#x27;, got []"),
    ("user_id=u0&personalisation=maybe", ("form field &#x27;personalisation&#x27;: expected "
                                         "&#x27;on&#x27; or &#x27;off&#x27;, got [&#x27;maybe&#x27;]")),
    ("personalisation=on", "form field &#x27;user_id&#x27;: expected one id of 1 to 128 characters, got []"),
    ("user_id=a&user_id=b&personalisation=on", ("form field &#x27;user_id&#x27;: expected one id of "
                                               "1 to 128 characters, got [&#x27;a&#x27;, &#x27;b&#x27;]")),
])
def test_bad_form_posts_get_a_422_page_naming_the_field(client, body, message):
    r = client.post("/transparency/personalisation", content=body,
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422
    assert f'<p class="error" id="error">{message}</p>' in r.text
