"""The HTTP endpoints in-process: lists, 422 messages, consent, similar items, model info, admin."""

from __future__ import annotations

import pytest

from recsys.serving import create_app
from recsys.serving._engine import LABELS
from tests.serving.helpers import AS_OPERATOR, as_user


@pytest.fixture
def client(bundles, make_client):
    return make_client(bundles["hand_ease"], k_max=4, k_default=3, max_exclusions=2)


def _ids(body):
    return [i["item_id"] for i in body["items"]]


def test_recommendations_for_a_known_user(client):
    r = client.get("/users/u0/recommendations", params={"k": 2, "explain": "true"})
    assert r.status_code == 200
    body = r.json()
    assert (body["user_id"], body["personalised"], body["basis"]) == ("u0", True, "history")
    assert _ids(body) == ["c", "d"]
    assert [i["rank"] for i in body["items"]] == [1, 2]
    assert body["items"][0]["explanation"]["text"] == "Because you watched Alien"
    assert body["items"][0]["explanation"]["reasons"][0]["item_id"] == "a"
    assert body["model"] == {"name": "hand", "version": None}
    assert len(r.headers["X-Request-ID"]) == 32


def test_explanations_only_when_asked(client):
    body = client.get("/users/u0/recommendations", params={"k": 2}).json()
    assert [i["explanation"] for i in body["items"]] == [None, None]


@pytest.mark.parametrize(("params", "message"), [
    ({"k": 0}, "query parameter 'k': Input should be greater than or equal to 1; got '0'"),
    ({"k": 5}, "query parameter 'k': Input should be less than or equal to 4; got '5'"),
    ({"k": "ten"}, ("query parameter 'k': Input should be a valid integer, unable to parse string "
                   "as an integer; got 'ten'")),
    ({"explain": "maybe"}, ("query parameter 'explain': Input should be a valid boolean, unable to "
                           "interpret input; got 'maybe'")),
    ({"exclude": ["a", "b", "c"]}, ("query parameter 'exclude': List should have at most 2 items "
                                   "after validation, not 3; got ['a', 'b', 'c']")),
])
def test_bad_parameters_get_a_422_naming_the_parameter(client, params, message):
    r = client.get("/users/u0/recommendations", params=params)
    assert r.status_code == 422
    assert r.json()["message"] == message
    assert r.json()["detail"][0]["loc"][0] == "query"


def test_a_too_long_user_id_is_a_422(client):
    r = client.get(f"/users/{'x' * 129}/recommendations")
    assert r.status_code == 422
    assert r.json()["message"].startswith(
        "path parameter 'user_id': String should have at most 128 characters")


def test_unknown_users_get_labelled_non_personalised_items(client):
    body = client.get("/users/stranger/recommendations", params={"k": 4}).json()
    assert (body["personalised"], body["basis"], body["label"]) == (
        False, "unknown_user", LABELS["unknown_user"])
    assert _ids(body) == ["a", "b", "c", "d"]


def test_unknown_exclusions_are_ignored_and_reported(client):
    body = client.get("/users/stranger/recommendations",
                      params={"k": 3, "exclude": ["b", "nope"]}).json()
    assert _ids(body) == ["a", "c", "d"]
    assert (body["excluded"], body["unknown_exclusions"]) == (["b"], ["nope"])


def test_consent_defaults_to_allowed_without_a_record(client):
    assert client.get("/users/u0/consent").json() == {
        "user_id": "u0", "personalisation": True, "explicit": False,
        "created_at": None, "updated_at": None, "withdrawn_categories": [],
    }


def test_opting_out_takes_effect_from_the_next_request(client):
    assert client.get("/users/u0/recommendations", params={"k": 4}).json()["personalised"]
    r = client.put("/users/u0/consent", json={"personalisation": False})
    assert r.status_code == 200
    first = r.json()
    assert (first["personalisation"], first["explicit"]) == (False, True)
    assert first["created_at"] == first["updated_at"]
    body = client.get("/users/u0/recommendations", params={"k": 4}).json()
    assert (body["personalised"], body["basis"], body["label"]) == (False, "opted_out", LABELS["opted_out"])
    assert _ids(body) == _ids(client.get("/users/stranger/recommendations", params={"k": 4}).json())
    # and back on: created_at stays, updated_at moves
    again = client.put("/users/u0/consent", json={"personalisation": True}).json()
    assert again["created_at"] == first["created_at"] and again["updated_at"] >= first["updated_at"]
    assert client.get("/users/u0/recommendations", params={"k": 2}).json()["basis"] == "history"


@pytest.mark.parametrize("body", [{"personalisation": "no"}, {"personalisation": 0}, {},
                                  {"personalisation": False, "extra": 1}])
def test_consent_bodies_must_be_a_strict_boolean_and_nothing_else(client, body):
    r = client.put("/users/u0/consent", json=body)
    assert r.status_code == 422
    assert "body field" in r.json()["message"]


def test_similar_items(client):
    body = client.get("/items/a/similar", params={"k": 2}).json()
    assert (body["item_id"], body["title"], body["method"]) == ("a", "Alien", "ease_item_weights")
    assert _ids(body) == ["b", "c"]
    r = client.get("/items/nope/similar")
    assert (r.status_code, r.json()) == (404, {"detail": "item_id: 'nope' is not in the catalogue of model 'hand'"})


def test_model_info_shows_the_gate_summary(client, bundles):
    body = client.get("/model").json()
    assert body["gate"] == {"result": "unregistered", "summary": "unregistered bundle", "failed": [],
                            "servable": True}
    assert (body["name"], body["version"], body["first_stage"], body["reranker"]) == (
        "hand", None, "EASE", None)
    assert (body["n_users"], body["n_items"], body["uri"]) == (6, 5, str(bundles["hand_ease"]))


def test_health_and_readiness(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready", "model": {"name": "hand", "version": None},
                                           "problems": []}


def test_an_unavailable_store_gives_503_not_500(client):
    client.app.state.consent._conn.close()  # the database goes away under the running service
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    assert "consent store" in ready.json()["problems"][0]
    r = client.get("/users/u0/recommendations")
    assert r.status_code == 503
    assert r.json()["detail"].startswith("consent store ")


def test_reloading_a_local_bundle_swaps_in_a_new_engine(client):
    before = client.app.state.holder.engine
    r = client.post("/admin/reload")
    assert r.status_code == 200
    assert r.json() == {"outcome": "reloaded", "message": "now serving hand",
                        "previous": {"name": "hand", "version": None},
                        "current": {"name": "hand", "version": None}}
    assert client.app.state.holder.engine is not before
    assert client.get("/model").json()["last_reload"]["outcome"] == "reloaded"


def test_the_operator_token_guards_reload(bundles, make_client):
    client = make_client(bundles["hand_ease"], acting=False)
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/admin/reload", headers=as_user("u0")).status_code == 403
    assert client.post("/admin/reload", headers=AS_OPERATOR).status_code == 200


def test_the_openapi_document_describes_the_bounds(client):
    spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/users/{user_id}/recommendations"]["get"]["parameters"]}
    assert params["k"]["schema"]["maximum"] == 4 and params["k"]["schema"]["minimum"] == 1
    assert params["exclude"]["schema"]["maxItems"] == 2
    assert set(spec["paths"]) == {
        "/health", "/ready", "/model", "/users/{user_id}/recommendations", "/items/{item_id}/similar",
        "/users/{user_id}/consent", "/admin/reload", "/transparency", "/transparency/personalisation",
        "/users/{user_id}/feedback", "/users/{user_id}/consent/categories",
    }


def test_a_refused_model_stops_the_app_from_being_built(make_settings, tmp_path):
    from recsys.serving import ModelSourceError

    with pytest.raises(ModelSourceError, match="no gate result"):
        create_app(make_settings(tmp_path, allow_unregistered=False))


EXPLAINED_BY = {"ease": "shap", "itemknn": "shap", "als": "als_explain", "bpr": "representer",
                "popularity": "popularity"}
SIMILAR_BY = {"ease": "ease_item_weights", "itemknn": "neighbour_similarity", "als": "factor_cosine",
              "bpr": "factor_cosine", "popularity": "co_occurrence_cosine"}


@pytest.mark.parametrize("kind", sorted(EXPLAINED_BY))
def test_every_model_kind_is_served_with_its_explanation(bundles, make_client, kind):
    client = make_client(bundles[kind])
    body = client.get("/users/5/recommendations", params={"k": 5, "explain": "true"}).json()
    assert body["basis"] == "history"
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    for item in body["items"]:
        expl = item["explanation"]
        assert expl["method"] == EXPLAINED_BY[kind]
        assert expl["text"]
        weights = [r["weight"] for r in expl["reasons"]]
        assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
        if expl["method"] == "shap":  # exact: the weights add up to the served score
            assert expl["explained_score"] == pytest.approx(item["score"], abs=1e-5)
    similar = client.get("/items/3/similar", params={"k": 4}).json()
    assert similar["method"] == SIMILAR_BY[kind]
    assert "3" not in [i["item_id"] for i in similar["items"]]
