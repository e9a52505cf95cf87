"""Category-level consent: stored, honoured in served lists, audited, shown on the page, user-scoped."""

from __future__ import annotations

import pytest

from tests.serving.helpers import as_user, user_token


@pytest.fixture
def client(bundles, make_client):
    return make_client(bundles["hand_ease"], k_max=5, k_default=5)


def _ids(r):
    return [i["item_id"] for i in r.json()["items"]]


def test_withdrawn_categories_leave_the_lists_and_are_audited(client):
    before = _ids(client.get("/users/u4/recommendations", params={"k": 5}))  # u4: no history, popular items
    assert sorted(before) == ["a", "b", "c", "d", "e"]
    r = client.put("/users/u4/consent/categories", json={"withdrawn": ["y"]})
    assert r.status_code == 200
    assert r.json() == {"user_id": "u4", "withdrawn": ["y"], "available": ["x", "y"], "not_in_catalogue": []}
    after = _ids(client.get("/users/u4/recommendations", params={"k": 5}))
    assert after == [i for i in before if i in ("a", "b")]  # every "y" item (c, d, e) left out
    assert client.get("/users/u4/consent").json()["withdrawn_categories"] == ["y"]
    records = [x for x in client.app.state.audit.read() if x.endpoint == "recommendations"]
    assert [x.withheld_categories for x in records] == [(), ("y",)]
    # other users are untouched
    assert len(_ids(client.get("/users/u5/recommendations", params={"k": 5}))) == 5


def test_personalised_lists_honour_it_too(client):
    client.put("/users/u0/consent/categories", json={"withdrawn": ["x"]})
    items = _ids(client.get("/users/u0/recommendations", params={"k": 3}))
    assert items and not set(items) & {"a", "b"}


def test_clearing_the_list_restores_the_items(client):
    client.put("/users/u4/consent/categories", json={"withdrawn": ["y"]})
    assert client.put("/users/u4/consent/categories", json={"withdrawn": []}).json()["withdrawn"] == []
    assert len(_ids(client.get("/users/u4/recommendations", params={"k": 5}))) == 5


def test_categories_outside_the_catalogue_are_kept_and_reported(client):
    r = client.put("/users/u4/consent/categories", json={"withdrawn": ["y", "horror"]})
    assert r.status_code == 200
    assert (r.json()["withdrawn"], r.json()["not_in_catalogue"]) == (["horror", "y"], ["horror"])
    assert sorted(_ids(client.get("/users/u4/recommendations", params={"k": 5}))) == ["a", "b"]


def test_bad_bodies_are_a_422_naming_the_field(client):
    r = client.put("/users/u4/consent/categories", json={"withdrawn": [""]})
    assert r.status_code == 422 and r.json()["message"].startswith("body field 'withdrawn.0'")
    r = client.put("/users/u4/consent/categories", json={"categories": ["y"]})
    assert r.status_code == 422 and "'withdrawn'" in r.json()["message"]


def test_only_the_user_may_change_them(client):
    r = client.put("/users/u4/consent/categories", json={"withdrawn": ["y"]}, headers=as_user("u1"))
    assert r.status_code == 403
    assert client.get("/users/u4/consent/categories", headers=as_user("u1")).status_code == 403


def test_the_page_shows_them(client):
    client.put("/users/u2/consent/categories", json={"withdrawn": ["y"]})
    html = client.get("/transparency", params={"token": user_token("u2")}).text
    assert 'id="withdrawn-categories"' in html and "categories you withdrew): y." in html
    page_lists = [x for x in client.app.state.audit.read() if x.endpoint == "transparency"]
    assert page_lists[-1].withheld_categories == ("y",)
    assert not set(page_lists[-1].items) & {"c", "d", "e"}
