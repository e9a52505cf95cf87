"""Long work looks like long work: candidates n/N, stage and ETA; quiet when asked; tables fit a terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import yaml

from training._progress import Progress
from training.cli import main


def _loop(progress: Progress, names: tuple[str, ...] = ("pop", "ease", "als")) -> None:
    with progress.candidates("validation", len(names)) as start:
        for name in names:
            start(name)
            with progress.step(f"[{name}] fitting"):
                pass
            progress.info(f"  note about {name}")


def test_plain_lines_count_candidates_with_an_eta() -> None:
    out = io.StringIO()
    _loop(Progress(stream=out))
    lines = out.getvalue().splitlines()
    assert lines[0] == "  validation 1/3: pop"  # no estimate before one candidate has finished
    assert re.fullmatch(r"  validation 2/3: ease \(ETA \d+:\d\d:\d\d\)", lines[4])
    assert re.fullmatch(r"  validation 3/3: als \(ETA \d+:\d\d:\d\d\)", lines[8])
    assert lines[1:4] == ["  [pop] fitting ...", lines[2], "  note about pop"]
    assert lines[2].startswith("  [pop] fitting: done in ")


def test_a_live_bar_shows_the_stage_in_place_and_sums_up() -> None:
    out = io.StringIO()
    _loop(Progress(stream=out, live=True))
    text = out.getvalue()
    assert "note about als" in text  # info lines still scroll above the bar
    assert "fitting: done in" not in text  # stages update the bar instead of adding lines
    assert re.search(r"  validation: 3/3 candidates in \d+:\d\d:\d\d", text)


def test_quiet_writes_nothing() -> None:
    out = io.StringIO()
    _loop(Progress(stream=out, quiet=True))
    _loop(Progress(stream=out, quiet=True, live=True))
    assert out.getvalue() == ""


CONFIG = {
    "name": "sweep",
    "data": {"loader": "synthetic", "n_users": 120, "n_items": 60, "n_interactions": 2000},
    "models": [{"name": "pop", "type": "popularity"},
               {"name": "ease_fair", "type": "ease", "params": {"l2": 100.0},
                "mitigation": {"kind": "fair_share", "strength": 0.3},
                "sweep": {"parameter": "strength", "values": [0.2, 0.4]}}],
    "explain": {"enabled": False},
}


@pytest.mark.parametrize("columns", ["60", "400"])
def test_the_header_counts_swept_candidates_and_tables_fit_the_terminal(
        tmp_path: Path, capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)  # what shutil.get_terminal_size reads first
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"],
                env={}) == 0
    captured = capfd.readouterr()
    assert "fairrec run " in captured.err and ": 3 candidate(s) from 2 model entries," in captured.err
    assert "validation 3/3:" in captured.err
    width = int(columns)
    tables = captured.out.split("\nFairness:")[0].split("\n(the tables are wider")[0]  # the prose may wrap
    if width == 60:
        assert max(len(line) for line in tables.splitlines()) <= width
        full = out / "summary_tables.txt"
        assert f"one line per model in {full}" in captured.out
        assert max(len(line) for line in full.read_text().splitlines()) > width
    else:
        assert "summary_tables.txt" not in captured.out and not (out / "summary_tables.txt").exists()
