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
    assert "=> FAIL: 2 of 5 checks failed (disparate_impact.gender, demographic_parity_difference.gender)" in text
    assert "no candidate passed the gate; no alias moved" in text
    assert "@champion -> 2 ease_fair_share pass: all 5 checks passed" in text
    assert "PromotionRefused - refusing to promote 'planted-bias-recommender' version 1" in text
    assert (tmp_path / "mitigated" / "ease_fair_share" / "model_card.html").is_file()
