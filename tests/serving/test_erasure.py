"""A user can see what fairrec keeps about them, and after `fairrec erase` nothing fairrec manages names them."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from recsys.serving import (
    AuditRecord,
    ConsentStore,
    JsonLinesAuditLog,
    SqliteAuditLog,
    erase_user,
    opted_out_users,
    personal_data,
)
from training.cli import main

USERS = [f"p-{1000 + u}" for u in range(40)]


def _config(root: Path, name: str) -> Path:
    raw = {
        "name": name,
        "seed": 2,
        "data": {"loader": "table", "interactions": "ratings.csv", "users": "users.csv"},
        "split": {"method": "random_holdout", "test_fraction": 0.3},
        "models": [{"name": "knn", "type": "item_knn", "params": {"k_neighbours": 10}}],
        "evaluation": {"k": 5},
        "explain": {"enabled": True, "n_users": 40, "shap_samples": 10, "lime_samples": 10},
        "consent": {"store": "consent.sqlite"},
        "gate": {"utility_parity": None, "levelling_down": None, "protected_reliance": None,
                 "counterfactual_flip_rate": None, "non_regression": None},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _audit(uid: str, n: int) -> AuditRecord:
    return AuditRecord(time=f"2026-01-01T00:00:0{n}+00:00", request_id=f"r{n}", endpoint="recommendations",
                       user_id=uid, model_name="m", model_version="1", k=2, items=("1", "2"),
                       basis="history", reasons=("history", "history"), explained=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A run folder, its local MLflow artifacts, a consent store and two audit logs that all name one user."""
    root = tmp_path_factory.mktemp("erase")
    rng = random.Random(1)
    rows = [(u, i, rng.randint(1, 5), 1000 + 40 * n + i)
            for n, u in enumerate(USERS) for i in range(30) if rng.random() < 0.4]
    pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]).to_csv(root / "ratings.csv", index=False)
    pd.DataFrame({"user_id": USERS, "gender": ["F", "M"] * 20}).to_csv(root / "users.csv", index=False)
    store = ConsentStore(root / "consent.sqlite")
    store.set(USERS[0], personalisation=True)
    store.set_categories(USERS[0], ["unknown"])
    store.set(USERS[1], personalisation=False)
    store.close()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    assert main(["run", str(_config(root, "before")), "--out", str(root / "run"), "--tracking-uri", uri,
                 "--quiet"], env={}) == 0
    explained = pd.read_parquet(next((root / "run").rglob("explanations.parquet")))
    target = next(u for u in explained["user_id"].astype(str) if u not in (USERS[0], USERS[1], USERS[5]))
    store = ConsentStore(root / "consent.sqlite")
    store.set(target, personalisation=False)
    store.set(target, personalisation=True)
    store.close()
    for log in (JsonLinesAuditLog(root / "audit.jsonl"), SqliteAuditLog(root / "audit.sqlite")):
        for n, uid in enumerate([target, USERS[5], target]):
            log.record(_audit(uid, n))
        log.close()
    return root, target


def _names(root: Path, uid: str) -> list[str]:
    """Every place under ``root`` that fairrec manages and that still names ``uid`` as a user."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            if "user_id" in frame and (frame["user_id"].astype(str) == uid).any():
                found.append(str(path))
        elif path.name == "vocab.npz":
            with np.load(path) as vocab:
                if uid in vocab["user_ids"].astype(str):
                    found.append(str(path))
        elif path.suffix == ".sqlite":
            conn = sqlite3.connect(path)
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                columns = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
                if "user_id" in columns and conn.execute(f"SELECT 1 FROM {table} WHERE user_id = ?", (uid,)).fetchone():
                    found.append(f"{path}:{table}")
            conn.close()
        elif path.suffix == ".jsonl" and any(json.loads(line)["user_id"] == uid
                                             for line in path.read_text().splitlines() if line):
            found.append(str(path))
        elif path.is_file() and path.suffix in {".json", ".yaml", ".csv", ".md", ".html"} and path.name not in {
                "ratings.csv", "users.csv"}:  # the operator's source data is theirs to delete
            if uid in path.read_text(encoding="utf-8", errors="replace"):
                found.append(str(path))
    return found


def test_a_user_can_see_what_is_kept_about_them(world: tuple[Path, str]) -> None:
    root, uid = world
    data = personal_data(uid, consent_path=root / "consent.sqlite", audit_path=root / "audit.jsonl",
                         run_dirs=[root / "run"])
    assert data.consent is not None and data.consent.personalisation is True
    assert [h["value"] for h in data.consent_history] == ["0", "1"]
    assert [r.request_id for r in data.audit] == ["r0", "r2"]
    assert data.explanations and all(row["user_id"] == uid for rows in data.explanations.values() for row in rows)


def test_after_erase_nothing_fairrec_manages_names_the_user(world: tuple[Path, str], capsys: pytest.CaptureFixture) -> None:
    root, uid = world
    assert _names(root, uid)  # the run folder, its MLflow copies, consent and audit all do
    code = main(["erase", uid, "--consent", str(root / "consent.sqlite"), "--audit", str(root / "audit.jsonl"),
                 "--runs", str(root / "run"), "--runs", str(root / "mlartifacts")])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith(f"erased user {uid!r}:")
    assert "consent history rows: 2" in out and "audit.jsonl: audit records pseudonymised: 2" in out
    assert "explanations.parquet: rows" in out and "vocab.npz: user id replaced: 1" in out
    report = erase_user(uid, audit_path=root / "audit.sqlite")
    assert list(report.removed.values()) == [2]
    assert _names(root, uid) == []
    after = personal_data(uid, consent_path=root / "consent.sqlite", audit_path=root / "audit.jsonl",
                          run_dirs=[root / "run"])
    assert (after.consent, after.consent_history, after.audit, after.rows) == (None, (), (), {})
    # what others have is untouched, and the served lists stay for aggregate monitoring
    log = JsonLinesAuditLog(root / "audit.jsonl")
    assert [r.user_id for r in log.read()] == ["erased", USERS[5], "erased"]
    log.close()
    assert USERS[1] in opted_out_users(root / "consent.sqlite")


def test_the_next_training_run_leaves_an_erased_user_out(world: tuple[Path, str]) -> None:
    root, uid = world
    erase_user(uid, consent_path=root / "consent.sqlite")  # idempotent
    uri = f"sqlite:///{root / 'mlflow.db'}"
    assert main(["run", str(_config(root, "after")), "--out", str(root / "run2"), "--tracking-uri", uri,
                 "--quiet"], env={}) == 0
    for part in ("train", "test"):
        split = pd.read_parquet(root / "run2" / "split" / f"{part}.parquet")
        assert uid not in set(split["user_id"].astype(str))
    explained = pd.read_parquet(next((root / "run2").rglob("explanations.parquet")))
    assert uid not in set(explained["user_id"].astype(str))
    summary = json.loads((root / "run2" / "summary.json").read_text())
    assert summary["data"]["n_opted_out_interactions"] > 0


def test_the_next_run_does_not_even_name_an_erased_user(world: tuple[Path, str]) -> None:
    root, uid = world
    erase_user(uid, consent_path=root / "consent.sqlite")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    assert main(["run", str(_config(root, "names")), "--out", str(root / "run3"), "--tracking-uri", uri,
                 "--quiet"], env={}) == 0
    assert _names(root / "run3", uid) == []


@pytest.mark.parametrize(("args", "fragment"), [
    ([], "erase: name at least one of --consent, --audit, --runs"),
    (["--runs", "no/such/folder"], "--runs no/such/folder: expected a folder of fairrec run outputs, it does not exist"),
    (["--audit", "audit.txt"], "audit_path: expected a file ending in"),
    (["--consent", "consnet.sqlite"], "consent_path: consnet.sqlite does not exist; expected the service's consent store"),
    (["--audit", "audit.jsonl"], "audit_path: audit.jsonl does not exist; expected the service's audit log"),
], ids=["nothing-named", "missing-runs-folder", "unknown-audit-suffix", "missing-consent", "missing-audit"])
def test_erase_with_bad_arguments_is_one_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture, args: list[str],
                                                        fragment: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audit.txt").write_text("")
    assert main(["erase", "p-1000", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err
