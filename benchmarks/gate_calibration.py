"""Calibration of the gate itself: how often it fails a fair model, and how often it catches a biased one.

On the quick-start's synthetic shape (2,000 users, 800 items, 60,000 interactions,
realistic group sizes: gender 40/60, four age groups, three activity levels), with
the quick-start's gate (the default gate plus its named outcome, "the top-10 holds a
cat_0 item"), EASE (l2 = 200) is scored over many data seeds:

* no planted bias: the share of seeds in which the gate fails EASE (target: at most 5%);
* the quick-start's planted bias (group F interacts 60% less with cat_0): the share of
  seeds in which it fails the unmitigated EASE (target: at least 80%).

Both rates are printed with each seed's blocking checks. No MLflow, no explanations
(the explanation-based checks are not defined without them).

    python benchmarks/gate_calibration.py [--seeds 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training._candidate import expand_sweeps  # noqa: E402
from training._components import load_dataset, split_dataset  # noqa: E402
from training._config import load_config  # noqa: E402
from training._gate import evaluate_gate, rules_from_config  # noqa: E402
from training._phase import Phase  # noqa: E402
from training._progress import Progress  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


def gate_fails(seed: int, bias: float) -> tuple[bool, list[str]]:
    cfg = load_config(CONFIG, [f"seed={seed}", f"data.bias_strength={bias}", "explain.enabled=false"])
    fc = cfg.fairness
    rules = rules_from_config(cfg.gate, sensitive=fc.sensitive, segments=fc.segments, k=cfg.evaluation.k,
                              item_group=fc.item_group, protected_group=fc.protected_group)
    dataset = load_dataset(cfg.data, seed=cfg.seed)
    split = split_dataset(cfg.split, dataset, seed=cfg.seed)
    phase = Phase("test", cfg, dataset, split, rules, Progress(quiet=True))
    (ease,) = [c for c in expand_sweeps(list(cfg.models)) if c.name == "ease"]
    decision = evaluate_gate(phase.score(ease).metrics, rules)
    return not decision.passed, [c.name for c in decision.failed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    start = time.perf_counter()
    for label, bias, target in (("no planted bias", 0.0, "<= 5%"), ("planted bias 0.6", 0.6, ">= 80%")):
        fails = 0
        for seed in range(args.seeds):
            failed, checks = gate_fails(seed, bias)
            fails += failed
            print(f"  {label}, seed {seed:2d}: {'FAIL' if failed else 'pass'} {', '.join(checks)}", flush=True)
        print(f"{label}: the gate fails EASE in {fails} of {args.seeds} seeds = {fails / args.seeds:.0%} "
              f"(target {target})\n", flush=True)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
