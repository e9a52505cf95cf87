"""notebooks/quickstart.ipynb runs top to bottom and shows the gate deciding (config -> champion)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def test_quickstart_notebook_runs_and_promotes_the_mitigated_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRREC_NOTEBOOK_DIR", str(tmp_path))  # the kernel inherits it
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit it without outputs"
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
    assert ("=> FAIL: 2 of 8 checks block promotion (demographic_parity_difference.gender, "
            "outcome_parity.gender)") in text
    assert "no candidate passed the gate; no alias moved" in text
    assert "@champion -> 2 ease_fair_share pass: 9 checks (9 pass)" in text
    assert "PromotionRefused - refusing 'planted-bias-recommender' version 1: it fails the gate" in text
    assert (tmp_path / "mitigated" / "ease_fair_share" / "model_card.html").is_file()
