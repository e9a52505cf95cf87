"""Estimate what a larger shape needs on Spark from ``spark_scale.py``'s measured throughput.

Reads the JSON that ``benchmarks/spark_scale.py`` prints last (saved to a file)
and scales each stage by the work it does, at the measured rate per task slot:

* fit: interaction-iterations (MLlib ALS is linear in interactions per iteration;
  the per-user solves grow with users, see ``--users`` below);
* top-k: user-item pairs scored (``SparkALS.recommend`` scores every user
  against every item, the broadcast item factors, one matrix product per
  block of users: users x items);
* evaluation: list entries and training rows (the larger of the two estimates).

Prints slot-hours per stage, the wall time on ``--executors`` x ``--cores``
slots, and the memory the driver and the executors hold. The rates come from one
2-core machine in local mode (MLlib on Java's vector BLAS, no native one; fixed
per-job overhead included), so the estimates are upper bounds on time, not forecasts. Usage::

    .venv/bin/python benchmarks/spark_scale_out.py benchmarks/spark_scale_20m.json \\
        --interactions 1e9 --users 1e8 --items 1e6
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recsys.models._spark_als import TOPK_BLOCK_SCORES


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("measured", type=Path, help="spark_scale.py's final JSON")
    p.add_argument("--interactions", type=float, default=1e9)
    p.add_argument("--users", type=float, default=1e8)
    p.add_argument("--items", type=float, default=1e6)
    p.add_argument("--executors", type=int, default=100)
    p.add_argument("--cores", type=int, default=4)
    args = p.parse_args(argv)

    m = json.loads(args.measured.read_text())
    rate = m["spark"]["throughput_per_slot"]
    iters, k, f = m["args"]["iterations"], m["args"]["k"], m["args"]["factors"]
    slots = args.executors * args.cores
    train = 0.75 * args.interactions  # the benchmark's split keeps 3/4 for training
    stages = {
        "fit": train * iters / rate["fit_interaction_iterations"],
        "topk": args.users * args.items / rate["topk_user_items"],
        "evaluate": max(args.users * k / rate["evaluate_list_entries"],
                        train / rate["evaluate_train_rows"]),
    }
    out = {
        "target": {"interactions": args.interactions, "users": args.users, "items": args.items,
                   "slots": slots},
        "measured_shape": m["shape"],
        "slot_hours": {s: v / 3600 for s, v in stages.items()},
        "wall_hours_on_slots": {s: v / 3600 / slots for s, v in stages.items()},
        "memory_gb": {
            # collected to the driver: item factors (float32) and a few per-item float64 vectors
            "driver_item_factors": args.items * f * 4 / 1e9,
            "driver_item_vectors": args.items * 8 * 6 / 1e9,
            # the bundle stores the training matrix (CSR: int32 index + float32 value, int64 indptr)
            "driver_bundle_export": (train * 8 + args.users * 8) / 1e9,
            # cluster-wide: factors of both sides plus MLlib's in/out blocks of the ratings (about 2 x 16 B each)
            "executors_total_als": (args.users + args.items) * f * 4 / 1e9 + train * 32 / 1e9,
            # top-k: every executor holds the broadcast item factors; a task scores one block of
            # users at a time (SparkALS.recommend's TOPK_BLOCK_SCORES float32 scores)
            "executor_item_factors_broadcast": args.items * f * 4 / 1e9,
            "per_task_topk_block": TOPK_BLOCK_SCORES * 4 / 1e9,
        },
        "first_to_stop_scaling": max(stages, key=stages.get),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
