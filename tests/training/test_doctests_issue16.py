"""The docstring examples of the modules issue 16 added or changed run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["training._pyfunc", "training._mlflow_extras", "training._degenerate", "training._progress",
           "recsys.data._table", "evaluation._fairness_report"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
