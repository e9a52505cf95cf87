"""Faults during a run: one clear message, exit 2, nothing half-written, no MLflow run left RUNNING.

The machine runs tests as root, whom a read-only directory does not stop; a write is
made to fail instead by a path whose parent is a regular file, by patching the one
rename that commits the output, or by a file-size limit (RLIMIT_FSIZE, which binds
root too) for a full disk. A dying tracking server is a loopback proxy in front of a
real ``mlflow server`` (tests/support/fault_proxy.py) that stops answering after the
N-th matching request.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.support.fault_proxy import FaultProxy
from tests.support.mlflow_server import MlflowServer
from training._outdir import StagedDir, clean_stale
from training._tracking import Tracker
from training.cli import main

REPO = Path(__file__).resolve().parents[2]
SMALL = {
    "name": "faults",
    "seed": 1,
    "data": {"loader": "synthetic", "n_users": 60, "n_items": 40, "n_interactions": 800},
    "split": {"method": "random_holdout", "test_fraction": 0.25},
    "models": [{"name": "pop", "type": "popularity"}, {"name": "knn", "type": "item_knn"},
               {"name": "ease", "type": "ease", "params": {"l2": 10.0}}],
    "evaluation": {"k": 5},
    "explain": {"enabled": False},
    # no check that could fail: every candidate passes, so the aliases move
    "gate": {"utility_parity": None, "levelling_down": None, "protected_reliance": None,
             "counterfactual_flip_rate": None, "non_regression": None},
}
# long enough to be caught mid-fit by a signal
LONG = dict(SMALL, data={"loader": "synthetic", "n_users": 3000, "n_items": 800, "n_interactions": 60_000},
            models=[{"name": "als", "type": "als", "params": {"factors": 32, "iterations": 1000}}])


def _config(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _statuses(uri: str, experiment: str = "faults") -> dict[str, str]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return {}
    return {r.info.run_id: r.info.status for r in client.search_runs([exp.experiment_id])}


def _staged(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name)


def _versions(uri: str, name: str = "faults") -> list[str]:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return sorted(mv.version for mv in client.search_model_versions(f"name = '{name}'"))


def _alias(uri: str, alias: str, name: str = "faults") -> str | None:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception:  # no such model or alias
        return None


# ----------------------------------------------------------------- the output folder
def test_out_under_a_regular_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "blocker" / "out"
    code = main(["run", str(_config(tmp_path, SMALL)), "--out", str(out), "--tracking-uri", uri, "--quiet"], env={})
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: --out {out}: expected {tmp_path / 'blocker'} to be a folder, received a file\n"
    assert "RUNNING" not in _statuses(uri).values()


def test_out_that_is_a_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "out").write_text("not a folder")
    code = main(["run", str(_config(tmp_path, SMALL)), "--out", str(tmp_path / "out"),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--quiet"], env={})
    assert code == 2
    assert capsys.readouterr().err.startswith(f"error: --out {tmp_path / 'out'}: expected a folder")


def test_a_commit_that_fails_keeps_the_previous_result_and_moves_no_alias(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--out's parent turned unwritable as the run commits: FAILED, previous result kept, registry untouched."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("keep me")
    real_rename = Path.rename

    def rename(self: Path, target: str | Path) -> Path:
        if ".partial-" in self.name:  # the staged result moving into place
            raise PermissionError(13, "Permission denied", str(target))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(["run", str(_config(tmp_path, SMALL)), "--out", str(out), "--tracking-uri", uri, "--quiet"], env={})
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: --out {out}: could not move the finished result into place: Permission denied")
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["previous.txt"]
    assert _staged(tmp_path) == []
    statuses = _statuses(uri)
    assert statuses and "RUNNING" not in statuses.values()
    # the lead's fix: registration and aliases come after the commit, so a failed commit leaves the registry alone
    assert _alias(uri, "champion") is None and _alias(uri, "challenger") is None
    assert _versions(uri) == []


def test_a_full_disk_while_writing_the_output_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import pandas as pd

    def full(self: pd.DataFrame, path: object, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "out"
    code = main(["run", str(_config(tmp_path, SMALL)), "--out", str(out), "--tracking-uri", uri, "--quiet"], env={})
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "parquet: No space left on device; nothing was committed\n" in err
    assert not out.exists() and _staged(tmp_path) == []
    statuses = _statuses(uri)
    assert statuses and set(statuses.values()) == {"FAILED"}


# ------------------------------------------------------------ staged folders left behind
def test_staged_folders_of_dead_processes_are_cleaned_on_the_next_run(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above Linux's pid_max default: no such process
    target = tmp_path / "out"
    target.mkdir()
    stale = [tmp_path / f".out.partial-{dead}-abcd1234", tmp_path / f".out.old-{dead}-abcd1234"]
    alive = tmp_path / f".out.partial-{os.getpid()}-live0000"
    other = tmp_path / f".other.partial-{dead}-abcd1234"
    for folder in [*stale, alive, other]:
        folder.mkdir()
    with StagedDir(target) as staged:
        assert staged.path.name.startswith(f".out.partial-{os.getpid()}-")
        assert not stale[0].exists() and not stale[1].exists()
        assert alive.exists() and other.exists()  # a live run's folder, another target's folder


def test_a_result_moved_aside_by_a_killed_commit_comes_back(tmp_path: Path) -> None:
    dead = 2**22 + 12345
    aside = tmp_path / f".out.old-{dead}-abcd1234"
    aside.mkdir()
    (aside / "summary.json").write_text("{}")
    assert clean_stale(tmp_path / "out") == []
    assert (tmp_path / "out" / "summary.json").is_file() and not aside.exists()


# ------------------------------------------------------------------ signals, in a subprocess
def _start(config: Path, out: Path, uri: str, **popen: object) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "training.cli", "run", str(config), "--out", str(out), "--tracking-uri", uri]
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    env.pop("CI", None)  # progress lines on stderr tell the test where the run is
    return subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, **popen)  # type: ignore[call-overload]


def _wait_for(proc: subprocess.Popen[str], text: str) -> list[str]:
    """Lines of stderr up to the one containing ``text`` (the process's progress)."""
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"the run ended before {text!r}:\n{''.join(lines)}")


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "ctrl-c"])
def test_a_signal_stops_the_run_and_marks_it_killed(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = _start(_config(tmp_path, LONG), tmp_path / "out", uri)
    _wait_for(proc, "fitting")
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == code
    err = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in err and "no result was committed" in err
    assert not (tmp_path / "out").exists() and _staged(tmp_path) == []
    statuses = _statuses(uri)
    assert statuses and set(statuses.values()) == {"KILLED"}


@pytest.mark.slow
def test_after_sigkill_the_next_run_cleans_staged_folders_and_closes_running_runs(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = _start(_config(tmp_path, LONG), tmp_path / "out", uri)
    _wait_for(proc, "fitting")
    proc.kill()
    proc.wait(timeout=60)
    left = _staged(tmp_path)
    assert len(left) == 1 and "RUNNING" in _statuses(uri).values()  # what SIGKILL leaves behind
    tracker = Tracker(uri, "faults")
    closed = tracker.close_abandoned_runs()
    assert closed and set(_statuses(uri).values()) == {"FAILED"}
    StagedDir(tmp_path / "out").commit()  # the next run's staging cleans up first
    assert _staged(tmp_path) == []


@pytest.mark.slow
def test_two_runs_on_a_fresh_store_both_succeed_or_one_fails_clearly(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = _config(tmp_path, dict(SMALL, models=SMALL["models"][:1], gate={"register_models": False,
                                                                             "promote": False}))
    procs = [_start(config, tmp_path / f"out{i}", uri) for i in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    for code, err in results:
        assert "Traceback" not in err, err
        assert code == 0 or (code == 2 and err.count("error: ") == 1), err
    assert any(code == 0 for code, _ in results)
    assert "RUNNING" not in _statuses(uri).values()


@pytest.mark.slow
def test_a_full_disk_while_logging_to_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    Tracker(uri, "faults")  # the store exists; it may not grow past a few pages more
    limit = (tmp_path / "mlflow.db").stat().st_size + 16_384

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = _start(_config(tmp_path, SMALL), tmp_path / "out", uri, preexec_fn=full_disk)
    code = proc.wait(timeout=300)
    err = proc.stderr.read() if proc.stderr else ""
    assert code == 2, err
    assert "Traceback" not in err and err.count("error: ") == 1
    assert not (tmp_path / "out").exists() and _staged(tmp_path) == []
    Tracker(uri, "faults").close_abandoned_runs()  # what the next run does first
    assert "RUNNING" not in _statuses(uri).values()


# ------------------------------------------------------- a tracking server that dies
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield srv
    srv.stop()


@pytest.fixture
def proxy(server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a dropped request fails at once
    fault = FaultProxy(server.uri)
    yield fault
    fault.close()


def _named(tmp_path: Path, name: str) -> Path:
    return _config(tmp_path, dict(SMALL, name=name, gate=dict(SMALL["gate"], registered_model=name)))


def _run_through(proxy: FaultProxy, tmp_path: Path, name: str, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(["run", str(_named(tmp_path, name)), "--out", str(tmp_path / "out"),
                 "--tracking-uri", proxy.uri, "--quiet"], env={})
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_server_dying_after_the_second_version_leaves_no_version(
    proxy: FaultProxy, server: MlflowServer, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    proxy.break_after(r"POST /api/2\.0/mlflow/model-versions/create", 2)
    code, err = _run_through(proxy, tmp_path, "fault-versions", capsys)
    assert proxy.fired and code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert _versions(server.uri, "fault-versions") == []  # the two created versions were rolled back
    assert _alias(server.uri, "champion", "fault-versions") is None
    assert "RUNNING" not in _statuses(server.uri, "fault-versions").values()


@pytest.mark.slow
def test_server_dying_after_challenger_moved_leaves_the_aliases_as_they_were(
    proxy: FaultProxy, server: MlflowServer, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, err = _run_through(proxy, tmp_path, "fault-aliases", capsys)
    assert code == 0, err
    before = {a: _alias(server.uri, a, "fault-aliases") for a in ("challenger", "champion")}
    versions = _versions(server.uri, "fault-aliases")
    assert before["champion"] is not None
    proxy.break_after(r"POST /api/2\.0/mlflow/registered-models/alias", 1)  # @challenger moves, then death
    code, err = _run_through(proxy, tmp_path, "fault-aliases", capsys)
    assert proxy.fired and code == 2 and "Traceback" not in err
    assert {a: _alias(server.uri, a, "fault-aliases") for a in ("challenger", "champion")} == before
    assert _versions(server.uri, "fault-aliases") == versions
    assert "RUNNING" not in _statuses(server.uri, "fault-aliases").values()


@pytest.mark.slow
def test_server_killed_mid_evaluation_leaves_no_run_running_after_the_next_run(
    proxy: FaultProxy, server: MlflowServer, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # the real server dies once the first candidate's run exists, and stays dead until the failed
    # run (a separate process, as in life) has ended
    proxy.break_after(r"POST /api/2\.0/mlflow/runs/create", 2, down=0, on_break=server.kill)
    proc = _start(_named(tmp_path, "fault-kill"), tmp_path / "out", proxy.uri)
    code, err = proc.wait(timeout=300), proc.stderr.read() if proc.stderr else ""
    assert proxy.fired and code == 2, err
    assert "Traceback" not in err and err.count("error: ") == 1 and f"MLflow tracking at {proxy.uri}" in err
    server.start()
    assert "RUNNING" in _statuses(server.uri, "fault-kill").values()  # nobody could close them
    code, err = _run_through(proxy, tmp_path, "fault-kill", capsys)
    assert code == 0, err
    assert "RUNNING" not in _statuses(server.uri, "fault-kill").values()
