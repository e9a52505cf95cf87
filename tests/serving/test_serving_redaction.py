"""A tracking URI with a password never leaves the service: not in /model, not in a failed
reload's 409, not in what ``fairrec serve`` prints, not in the access log."""

from __future__ import annotations

import logging

import pytest

from recsys.serving import ServeSettings
from tests.serving.helpers import AS_OPERATOR, CREDENTIALS

SECRET_URI = "http://alice:s3cret-pw@127.0.0.1:9"  # nothing listens on port 9 (discard)


@pytest.fixture
def no_retries(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def test_a_failed_reload_and_model_info_do_not_echo_the_password(bundles, make_client, tmp_path, no_retries):
    client = make_client(bundles["hand_ease"])
    holder = client.app.state.holder
    holder.settings = ServeSettings(model="models:/fairrec@champion", tracking_uri=SECRET_URI,
                                    consent_path=tmp_path / "c.sqlite", audit_path=tmp_path / "a.jsonl",
                                    **CREDENTIALS)
    r = client.post("/admin/reload", headers=AS_OPERATOR)
    assert r.status_code == 409
    message = r.json()["message"]
    assert "s3cret-pw" not in r.text
    assert message.startswith("models:/fairrec@champion: cannot read it from the registry at "
                              "http://alice:***@127.0.0.1:9: ")
    assert "(still serving hand)" in message
    info = client.get("/model", headers=AS_OPERATOR)
    assert "s3cret-pw" not in info.text and info.json()["last_reload"]["message"] == message


def test_fairrec_serve_does_not_print_the_password(tmp_path, capsys, no_retries):
    from training.cli import main

    code = main(["serve", "--model", "models:/fairrec@champion", "--tracking-uri", SECRET_URI,
                 "--consent", str(tmp_path / "c.sqlite"), "--audit", str(tmp_path / "a.jsonl"),
                 "--insecure-local"], env={})
    out, err = capsys.readouterr()
    assert code == 2
    assert "s3cret-pw" not in out + err
    assert "(tracking at http://alice:***@127.0.0.1:9)" in err
    assert "error: models:/fairrec@champion: cannot read it from the registry at http://alice:***@" in err


def test_fairrec_serve_without_credentials_refuses_to_start(tmp_path, capsys):
    from training.cli import main

    code = main(["serve", "--model", str(tmp_path), "--allow-unregistered",
                 "--consent", str(tmp_path / "c.sqlite"), "--audit", str(tmp_path / "a.jsonl")], env={})
    assert code == 2
    assert "refuses to start without credentials" in capsys.readouterr().err
    assert not (tmp_path / "c.sqlite").exists()  # refused before anything was opened


def test_the_access_log_masks_a_token_in_the_query(caplog):
    from recsys.serving._web import RedactAccessLog

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/transparency?token=eyJ.abc.def", "1.1", 303), None)
    assert RedactAccessLog().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /transparency?token=*** HTTP/1.1" 303'


def test_the_served_access_log_has_the_filter(bundles, make_settings):
    from recsys.serving import build_server
    from recsys.serving._serve import _REDACT_ACCESS_LOG

    build_server(make_settings(bundles["hand_ease"]))
    assert _REDACT_ACCESS_LOG in logging.getLogger("uvicorn.access").filters
