"""ServeSettings refuse bad values, naming the field, what is allowed and what was given."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.serving import ServeSettings

BASE = {"model": "models:/fairrec@champion", "tracking_uri": "sqlite:///m.db",
        "consent_path": Path("c.sqlite"), "audit_path": Path("a.jsonl"),
        "user_token_secret": "u" * 32, "admin_token": "o" * 32}


def test_defaults():
    s = ServeSettings(**BASE)
    assert (s.host, s.port, s.k_default, s.k_max, s.max_exclusions, s.reload_interval) == (
        "127.0.0.1", 8000, 10, 100, 500, None)
    assert s.audit_format == "jsonl"
    assert ServeSettings(**{**BASE, "audit_path": "audit.DB"}).audit_format == "sqlite"


@pytest.mark.parametrize(("change", "message"), [
    ({"tracking_uri": None}, ("tracking_uri: required to read 'models:/fairrec@champion' from the "
                             "MLflow registry, got None")),
    ({"model": " "}, ("model: expected 'models:/NAME@ALIAS', 'models:/NAME/VERSION' or a bundle "
                     "directory, got ' '")),
    ({"audit_path": Path("audit.txt")}, ("audit_path: expected a file ending in .jsonl, .sqlite, "
                                        ".sqlite3, .db (JSON lines or SQLite), got 'audit.txt'")),
    ({"k_max": 0}, "k_max: expected an integer in [1, 10000], got 0"),
    ({"k_max": 5}, "k_default: expected at most k_max=5, got 10"),
    ({"port": 70000}, "port: expected an integer in [0, 65535], got 70000"),
    ({"max_reasons": True}, "max_reasons: expected an integer in [1, 50], got True"),
    ({"reload_interval": 0}, "reload_interval: expected None or a number of seconds > 0, got 0"),
    ({"admin_token": ""}, "admin_token: expected None or a string of at least 32 characters, got a "
                          "string of 0 characters"),
    ({"consent_path": ""}, "consent_path: expected a file path, got ''"),
])
def test_bad_values_are_named(change, message):
    with pytest.raises(ValueError) as info:
        ServeSettings(**{**BASE, **change})
    assert str(info.value) == message


@pytest.mark.parametrize(("change", "message"), [
    ({"max_body_bytes": 10}, "max_body_bytes: expected an integer in [1024, 1073741824], got 10"),
    ({"audit_backups": 0}, "audit_backups: expected an integer in [1, 1000], got 0"),
    ({"audit_max_bytes": -1}, "audit_max_bytes: expected an integer in [0, 1099511627776], got -1"),
    ({"allowed_hosts": "localhost"}, "allowed_hosts: expected a non-empty list of host names, got 'localhost'"),
    ({"allowed_hosts": ()}, "allowed_hosts: expected a non-empty list of host names, got ()"),
    ({"user_token_secret": 12345}, "user_token_secret: expected None or a string of at least 32 characters, "
                                   "got int"),
    ({"insecure_local": "yes", "user_token_secret": None, "admin_token": None},
     "insecure_local: expected a bool, got 'yes'"),
])
def test_bad_security_values_are_named(change, message):
    with pytest.raises((ValueError, TypeError)) as info:
        ServeSettings(**{**BASE, **change})
    assert str(info.value) == message
