"""notebooks/explanations.ipynb runs top to bottom on small synthetic data and shows SHAP additivity."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explanations.ipynb"


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def _kernel_manager(prefix: Path) -> KernelManager:
    """A "python3" kernel that is this interpreter (the .venv), whatever python is on PATH."""
    install(prefix=str(prefix), kernel_name="python3")
    specs = KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])
    assert specs.get_kernel_spec("python3").argv[0] == sys.executable
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def test_explanations_notebook_runs_and_shows_additivity(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRREC_NOTEBOOK_DATA", "synthetic")  # the kernel inherits it
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
        "commit it without outputs"
    )
    NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=120,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    text = "\n".join(_text(c) for c in code)
    assert "data: synthetic, 300 users, 150 items" in text
    assert "SHAP additivity holds: True" in text
    error = float(re.search(r"max \|base \+ sum\(SHAP\) - served score\| = (\S+)", text).group(1))
    assert error < 1e-6
    assert "Because you watched Item " in text
    fidelity = float(re.search(r"deletion fidelity over the list: (\S+)", text).group(1))
    assert fidelity > 1.0
