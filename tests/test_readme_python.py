"""README's "Use it from Python" block runs as a doctest and gives the CLI's numbers; `make docs` builds."""

from __future__ import annotations

import doctest
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_block() -> str:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Use it from Python", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None, "README: 'Use it from Python' has no python block"
    return block.group(1)


@pytest.mark.ml100k
def test_the_readme_block_runs_as_a_doctest(ml100k_dir: Path) -> None:
    text = _python_block().replace("path/to/ml-100k", str(ml100k_dir))
    test = doctest.DocTestParser().get_doctest(text, {}, "README.md", str(ROOT / "README.md"), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False) == doctest.TestResults(failed=0, attempted=len(test.examples))
    assert len(test.examples) >= 10


@pytest.mark.ml100k
@pytest.mark.slow
def test_the_readme_numbers_are_the_cli_numbers(ml100k_dir: Path, tmp_path: Path) -> None:
    from training._config import load_config
    from training._run import run_experiment

    cfg = load_config(ROOT / "configs" / "ml100k.yaml", [f"data.path={ml100k_dir}", "explain.enabled=false"])
    cfg = cfg.model_copy(update={"models": [m for m in cfg.models if m.name == "ease"]})
    run_experiment(cfg, out_dir=tmp_path / "out")
    metrics = json.loads((tmp_path / "out" / "ease" / "metrics.json").read_text())
    block = _python_block()
    assert f"\n{metrics['ndcg_at_10']:.4f}\n" in block
    assert f"'F': {metrics['gender.ndcg_at_10.F']:.4f}, 'M': {metrics['gender.ndcg_at_10.M']:.4f}" in block


@pytest.mark.slow
def test_make_docs_builds_the_api_reference_offline(tmp_path: Path) -> None:
    out = tmp_path / "api"
    subprocess.run([sys.executable, str(ROOT / "docs" / "build_api.py"), str(out)], cwd=ROOT, check=True,
                   capture_output=True, timeout=600)
    recsys_models = (out / "recsys" / "models.html").read_text(encoding="utf-8")
    assert "EASE" in recsys_models and "no scikit-learn" in recsys_models
    assert (out / "training.html").is_file() and (out / "evaluation.html").is_file()
