"""``POST /users/{user_id}/feedback``: events go to the audit log; only the user may post them."""

from __future__ import annotations

import json

import pytest

from tests.serving.helpers import as_user
from training._monitor import load_monitor_inputs, run_monitor


@pytest.fixture
def client(bundles, make_client):
    return make_client(bundles["hand_ease"], k_max=4, k_default=3)


def test_feedback_is_audited_and_linked_to_the_list(client, tmp_path):
    listed = client.get("/users/u0/recommendations", params={"k": 2})
    list_id = listed.headers["X-Request-ID"]
    r = client.post("/users/u0/feedback", json={"item_id": "c", "event": "click", "request_id": list_id})
    assert r.status_code == 200
    body = r.json()
    assert (body["user_id"], body["item_id"], body["event"], body["list_request_id"]) == ("u0", "c", "click", list_id)
    r2 = client.post("/users/u0/feedback", json={"item_id": "d", "event": "not_interested"})
    assert r2.json()["list_request_id"] is None
    records = client.app.state.audit.read()
    fb = [x for x in records if x.endpoint == "feedback"]
    assert [(x.user_id, x.items, x.basis, x.reasons, x.k) for x in fb] == [
        ("u0", ("c",), "click", (list_id,), 1), ("u0", ("d",), "not_interested", ("unlinked",), 1)]
    assert fb[0].request_id == body["request_id"]


@pytest.mark.parametrize(("payload", "where"), [
    ({"item_id": "c", "event": "like"}, "body field 'event'"),
    ({"item_id": "", "event": "click"}, "body field 'item_id'"),
    ({"item_id": "c", "event": "click", "user_group": "F"}, "body field 'user_group'"),
])
def test_bad_feedback_is_a_422_naming_the_field(client, payload, where):
    r = client.post("/users/u0/feedback", json=payload)
    assert r.status_code == 422
    assert r.json()["message"].startswith(where)


def test_feedback_is_scoped_to_the_user(client):
    r = client.post("/users/u0/feedback", json={"item_id": "c", "event": "click"}, headers=as_user("u1"))
    assert r.status_code == 403
    assert not [x for x in client.app.state.audit.read() if x.endpoint == "feedback"]


def test_monitor_reads_feedback_from_the_service_log(client, tmp_path):
    import pandas as pd
    import yaml

    client.get("/users/u0/recommendations", params={"k": 2})
    client.get("/users/u1/recommendations", params={"k": 2})
    client.post("/users/u0/feedback", json={"item_id": "c", "event": "click"})
    run = tmp_path / "run"
    (run / "cand").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"fairness": {
        "sensitive": ["group"], "item_group": "category", "protected_group": "scifi"}}))
    items = client.app.state.holder.engine.served.bundle.items
    pd.DataFrame({"item_id": items["item_id"].astype(str), "category": ["scifi", "drama"] * (len(items) // 2)
                  + ["drama"] * (len(items) % 2)}).to_parquet(run / "items.parquet")
    pd.DataFrame({"user_id": ["u0", "u1"], "group": ["x", "y"]}).to_parquet(run / "users.parquet")
    pd.DataFrame({"user_id": ["u0"], "item_id": [str(items["item_id"].iloc[0])], "rank": [1]}).to_parquet(
        run / "cand" / "recommendations.parquet")
    report = run_monitor(client.app.state.audit.path, load_monitor_inputs(run / "cand"), window="day")
    groups = report.windows[0]["groups"]["group"]
    assert (groups["x"]["n_lists"], groups["x"]["n_click"], groups["y"]["n_click"]) == (1, 1, 0)
    assert groups["x"]["click_rate"]["estimate"] == 1.0
    json.dumps(report.to_json()["served_versions"])
