"""The documented CI recipe (docs/ci/fairrec-gate.yml) fails the build exactly when the gate fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "docs" / "ci" / "fairrec-gate.yml"


def _fairrec_steps() -> list[str]:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["gate"]["steps"]
    scripts = [s["run"] for s in steps if "fairrec " in s.get("run", "")]
    assert len(scripts) == 2, "the recipe trains, then gates"
    return scripts


@pytest.mark.parametrize(("config", "expected"), [("planted_bias_unmitigated", 1), ("planted_bias_mitigated", 0)])
def test_the_recipe_fails_the_build_only_for_the_rejected_model(tmp_path: Path, config: str, expected: int) -> None:
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)  # the recipe calls .venv/bin/...
    (tmp_path / "configs").symlink_to(REPO / "configs")
    env = {
        **os.environ,
        "CONFIG": f"configs/{config}.yaml",
        "CI": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    script = "set -euo pipefail\n" + "\n".join(_fairrec_steps())
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == expected, done.stderr
    assert ("=> PASS" in done.stdout) == (expected == 0)
    assert (tmp_path / "runs" / "ci" / "summary.json").is_file()
