"""Shared fixtures. Tests read the environment here (the library never does)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]
_ML100K_FILES = ("u.data", "u.user", "u.item")


def _find_ml100k() -> Path | None:
    candidates = []
    if os.environ.get("FAIRREC_ML100K"):
        candidates.append(Path(os.environ["FAIRREC_ML100K"]))
    candidates.append(_REPO.parent / "shared" / "data" / "ml-100k")
    for c in candidates:
        if all((c / f).is_file() for f in _ML100K_FILES):
            return c
    return None


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """Directory with the GroupLens MovieLens 100K files, or skip."""
    found = _find_ml100k()
    if found is None:
        pytest.skip(
            "MovieLens 100K not found: expected u.data, u.user, u.item in $FAIRREC_ML100K "
            f"or {_REPO.parent / 'shared' / 'data' / 'ml-100k'}"
        )
    return found
