"""notebooks/explanations.ipynb on MovieLens 100K: the deletion fidelity is a number, not nan."""

from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.notebooks.test_explanations_notebook import NOTEBOOK, _kernel_manager, _text


@pytest.mark.ml100k
@pytest.mark.slow
def test_on_movielens_the_deletion_fidelity_is_defined(ml100k_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRREC_ML100K", str(ml100k_dir))
    monkeypatch.delenv("FAIRREC_NOTEBOOK_DATA", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=300,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    text = "\n".join(_text(c) for c in code)
    assert "data: ml-100k, 943 users, 1682 items" in text
    fidelity = float(re.search(r"deletion fidelity over the list: (\S+)", text).group(1))
    assert math.isfinite(fidelity) and fidelity > 1.0
