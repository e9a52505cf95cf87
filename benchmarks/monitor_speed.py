"""How long ``fairrec monitor`` takes over a million served lists (generated, JSON lines).

What it does: writes a run directory (1,682 items, 943 users, like MovieLens 100K) and an
audit log of ``--lists`` lists of 10 items over 30 days (the generator in
``tests/support/audit_logs.py``), then times :func:`training._monitor.run_monitor` with
daily windows, streaming the log in chunks. Prints lists per second and the peak
resident memory of the process.

Run: ``.venv/bin/python benchmarks/monitor_speed.py [--lists 1000000]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.audit_logs import write_audit, write_run  # noqa: E402
from training._monitor import load_monitor_inputs, run_monitor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lists", type=int, default=1_000_000)
    parser.add_argument("--window", default="day")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        champion = write_run(root / "run", n_users=943, n_items=1682)
        audit = root / "audit.jsonl"
        t0 = time.perf_counter()
        write_audit(audit, n_lists=args.lists, n_users=943, n_items=1682, n_days=30, shift_day=20)
        t1 = time.perf_counter()
        inputs = load_monitor_inputs(champion)
        report = run_monitor(audit, inputs, window=args.window if not args.window.isdigit() else int(args.window))
        t2 = time.perf_counter()
        size = audit.stat().st_size / 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"generated {args.lists:,} lists ({size:.0f} MB of JSON lines) in {t1 - t0:.1f} s")
    print(f"monitor: {t2 - t1:.1f} s for {args.lists:,} lists ({args.lists / (t2 - t1):,.0f} lists/s), "
          f"{len(report.windows)} windows, {len(report.flagged)} flagged; peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
