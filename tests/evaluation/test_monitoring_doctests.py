"""The docstring examples of the monitoring, consent-metric and simulation modules run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["evaluation._monitoring", "evaluation._consent_metrics", "recsys.serving._consent_log",
           "recsys.serving._categories", "training._simulate", "training._consent_report",
           "training._monitor_source"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
