"""ServeSettings refuse bad values, naming the field, what is allowed and what was given."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.serving import ServeSettings

BASE = {"model": "models:/fairrec@champion", "tracking_uri": "sqlite:///m.db",
            "consent_path": Path("c.sqlite"), "audit_path": Path("a.jsonl")}


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
    ({"admin_token": ""}, "admin_token: expected None or a non-empty string, got ''"),
    ({"consent_path": ""}, "consent_path: expected a file path, got ''"),
])
def test_bad_values_are_named(change, message):
    with pytest.raises(ValueError) as info:
        ServeSettings(**{**BASE, **change})
    assert str(info.value) == message
