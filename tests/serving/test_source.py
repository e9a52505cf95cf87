"""Resolving the served model from a real MLflow registry (SQLite store): gate tags decide."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from recsys.serving import GateRefusedError, ModelSourceError, create_app, resolve_model
from recsys.serving._source import parse_model_uri
from tests.serving.helpers import ActingFor

PASS = {"fairrec.gate": "pass", "fairrec.gate.summary": "all 7 gate checks passed",
        "fairrec.gate.failed": "", "fairrec.candidate": "ease_fair_share",
        "fairrec.servable": "true", "fairrec.servable.reason": ""}


@pytest.fixture(scope="module")
def registry(tmp_path_factory, bundles):
    """A registry with versions of model "m" (one per gate situation) and of "movable"."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("serving", artifact_location=(root / "artifacts").as_uri())
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(bundles["hand_ease"]), "bundle")
    client.set_terminated(run.info.run_id)

    client.create_registered_model("m")
    versions = {
        "pass": (str(bundles["ease"]), PASS),
        "fail": (str(bundles["ease"]), {**PASS, "fairrec.gate": "fail",
                                        "fairrec.gate.summary": "2 of 7 gate checks failed",
                                        "fairrec.gate.failed": "ndcg@10,exposure_gap"}),
        "unservable": (str(bundles["ease"]), {**PASS, "fairrec.servable": "false",
                                              "fairrec.servable.reason": "user_blend needs attributes"}),
        "untagged": (str(bundles["ease"]), {}),
        "run_artifact": (f"runs:/{run.info.run_id}/bundle", PASS),
    }
    number = {}
    for label, (source, tags) in versions.items():
        mv = client.create_model_version("m", source=source, run_id=run.info.run_id, tags=tags)
        number[label] = str(mv.version)
    client.set_registered_model_alias("m", "champion", number["pass"])
    client.set_registered_model_alias("m", "rejected", number["fail"])

    client.create_registered_model("movable")
    for source, tags in [(str(bundles["ease"]), PASS), (str(bundles["hand_ease"]), PASS),
                         (str(bundles["ease"]), {**PASS, "fairrec.gate": "fail",
                                                 "fairrec.gate.summary": "1 of 7 gate checks failed",
                                                 "fairrec.gate.failed": "exposure_gap"})]:
        client.create_model_version("movable", source=source, run_id=run.info.run_id, tags=tags)
    client.set_registered_model_alias("movable", "champion", "1")
    return {"uri": uri, "client": client, "version": number}


def test_the_champion_alias_resolves_to_its_version_and_gate(registry):
    served = resolve_model("models:/m@champion", tracking_uri=registry["uri"])
    assert (served.name, served.version, served.ref.alias) == ("m", registry["version"]["pass"], "champion")
    assert served.ref.gate.summary == "all 7 gate checks passed"
    assert (served.ref.gate.result, served.ref.gate.failed, served.ref.candidate) == ("pass", (), "ease_fair_share")
    assert served.bundle.name == "ease"


def test_a_version_whose_source_is_a_run_artifact_is_downloaded(registry):
    version = registry["version"]["run_artifact"]
    served = resolve_model(f"models:/m/{version}", tracking_uri=registry["uri"])
    assert served.version == version
    assert served.bundle.name == "hand"
    assert served.bundle.item_ids.tolist() == ["a", "b", "c", "d", "e"]


def test_a_failed_gate_is_refused_with_the_gates_own_words(registry):
    version = registry["version"]["fail"]
    with pytest.raises(GateRefusedError) as info:
        resolve_model("models:/m@rejected", tracking_uri=registry["uri"])
    assert str(info.value) == (
        f"models:/m@rejected (version {version} of 'm'): refusing to serve: its gate result "
        "(fairrec.gate) is 'fail', expected 'pass': 2 of 7 gate checks failed; failing metrics: "
        "ndcg@10, exposure_gap"
    )


def test_a_version_that_is_not_servable_is_refused(registry):
    version = registry["version"]["unservable"]
    with pytest.raises(GateRefusedError, match=r"it is not servable \(fairrec.servable is not 'true'\): "
                                               r"user_blend needs attributes$"):
        resolve_model(f"models:/m/{version}", tracking_uri=registry["uri"])


def test_a_version_without_a_gate_tag_is_refused(registry):
    version = registry["version"]["untagged"]
    with pytest.raises(GateRefusedError, match=r"its gate result \(fairrec.gate\) is 'missing', expected 'pass'$"):
        resolve_model(f"models:/m/{version}", tracking_uri=registry["uri"])


def test_an_unknown_alias_is_a_clear_error(registry):
    with pytest.raises(ModelSourceError, match=r"^models:/m@nope: cannot read it from the registry at sqlite:"):
        resolve_model("models:/m@nope", tracking_uri=registry["uri"])


def test_model_uris_must_name_an_alias_or_a_version_number():
    assert parse_model_uri("models:/fair rec@champion") == ("fair rec", "champion", None)
    for bad in ["models:/m", "models:/m/latest", "models:/m@", "models:/m/1/2"]:
        with pytest.raises(ModelSourceError, match=r"^model: expected 'models:/NAME@ALIAS'"):
            parse_model_uri(bad)


def test_local_bundles_need_the_explicit_flag(bundles):
    with pytest.raises(ModelSourceError, match="which has no gate result"):
        resolve_model(str(bundles["ease"]))
    served = resolve_model(str(bundles["ease"]), allow_unregistered=True)
    assert (served.name, served.version, served.ref.gate.summary) == ("ease", None, "unregistered bundle")


def test_the_app_is_not_built_for_a_refused_champion(registry, make_settings):
    with pytest.raises(GateRefusedError, match="refusing to serve"):
        create_app(make_settings("models:/m@rejected", tracking_uri=registry["uri"],
                                 allow_unregistered=False))


def test_reload_follows_the_alias_and_keeps_the_old_model_when_the_new_one_fails(registry, make_settings):
    client_mlflow = registry["client"]
    client_mlflow.set_registered_model_alias("movable", "champion", "1")
    settings = make_settings("models:/movable@champion", tracking_uri=registry["uri"],
                             allow_unregistered=False)
    with TestClient(create_app(settings)) as client:
        client.auth = ActingFor()
        assert client.get("/model").json()["version"] == "1"
        assert client.post("/admin/reload").json()["outcome"] == "unchanged"

        client_mlflow.set_registered_model_alias("movable", "champion", "2")
        r = client.post("/admin/reload")
        assert (r.status_code, r.json()["outcome"], r.json()["current"]) == (
            200, "reloaded", {"name": "movable", "version": "2"})
        assert client.get("/users/u0/recommendations").json()["model"]["version"] == "2"

        client_mlflow.set_registered_model_alias("movable", "champion", "3")
        r = client.post("/admin/reload")
        assert r.status_code == 409
        assert r.json()["outcome"] == "failed"
        assert r.json()["message"] == (
            "models:/movable@champion (version 3 of 'movable'): refusing to serve: its gate result "
            "(fairrec.gate) is 'fail', expected 'pass': 1 of 7 gate checks failed; failing metrics: "
            "exposure_gap (still serving movable version 2)"
        )
        info = client.get("/model").json()
        assert (info["version"], info["last_reload"]["outcome"]) == ("2", "failed")
        assert client.get("/users/u0/recommendations").status_code == 200


def test_a_poll_interval_picks_up_a_moved_alias(registry, make_settings):
    client_mlflow = registry["client"]
    client_mlflow.set_registered_model_alias("movable", "champion", "1")
    settings = make_settings("models:/movable@champion", tracking_uri=registry["uri"],
                             allow_unregistered=False, reload_interval=0.1)
    with TestClient(create_app(settings)) as client:
        client.auth = ActingFor()
        assert client.get("/model").json()["version"] == "1"
        client_mlflow.set_registered_model_alias("movable", "champion", "2")
        deadline = time.monotonic() + 30
        while client.get("/model").json()["version"] != "2" and time.monotonic() < deadline:
            time.sleep(0.05)
        info = client.get("/model").json()
        assert (info["version"], info["last_reload"]["outcome"]) in {("2", "reloaded"), ("2", "unchanged")}
