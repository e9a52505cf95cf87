"""Driver memory of bringing a Spark training matrix to the driver for the servable bundle.

Two ways, each in a fresh process on the same Parquet interactions (synthetic,
``--interactions`` entries, written once with pyarrow, read by Spark's ``table``
loader so the driver never held them before):

* ``collect``: :func:`recsys.data.collect_interactions` (the frame as pandas,
  then the CSR matrix built from it), what the Spark run's bundle export did
  until it streamed;
* ``stream``: :func:`recsys.data.stream_matrix` (Spark writes sorted Parquet
  parts, the driver fills the CSR arrays batch by batch), what it does now.

Prints, per way, the seconds and the driver Python process's peak resident
size during the call over its resident size just before (``VmHWM`` reset with
``/proc/self/clear_refs``; Arrow and numpy buffers included), in bytes per entry, against the CSR matrix itself (8 bytes per entry
plus 8 per user). The JVM is not counted: both ways run the same Spark scan.

    .venv/bin/python benchmarks/spark_bundle_export.py [--interactions 10000000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _status_gb(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024**2


def _reset_peak() -> None:
    """Set the peak resident size (VmHWM) to the current one (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _write(path: Path, n: int, users: int, items: int, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    pairs = np.unique(rng.integers(0, users * items, size=int(n * 1.05), dtype=np.int64))[:n]
    rng.shuffle(pairs)
    table = pa.table({"user_id": pairs // items, "item_id": pairs % items,
                      "rating": rng.integers(1, 6, size=pairs.size).astype(np.float32)})
    pq.write_table(table, path, row_group_size=1 << 20)


def _child(way: str, path: Path) -> None:
    from _bench_spark import bench_spark

    from recsys.data import collect_interactions, read_table_spark, stream_matrix

    spark = bench_spark("local[2]", "6g", 8, f"fairrec-bundle-export-{way}")
    try:
        data = read_table_spark(spark, interactions=path)
        data = data.with_frame(data.frame.cache())
        n = data.frame.count()
        import pyarrow.parquet  # noqa: F401 - loaded before the baseline, as pandas and scipy are
        before = _status_gb("VmRSS:")
        _reset_peak()
        start = time.perf_counter()
        if way == "collect":
            matrix = collect_interactions(data).matrix
        else:
            with tempfile.TemporaryDirectory() as d:
                matrix = stream_matrix(data, Path(d) / "staging")
        seconds = time.perf_counter() - start
        grown = max(_status_gb("VmHWM:") - before, 0.0)
        csr = (matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes) / 1024**3
        print(json.dumps({"way": way, "entries": n, "users": data.n_users, "seconds": seconds,
                          "driver_growth_gb": grown, "csr_gb": csr,
                          "growth_bytes_per_entry": grown * 1024**3 / n}))
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--interactions", type=int, default=10_000_000)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    p.add_argument("--child", choices=["collect", "stream"], help=argparse.SUPPRESS)
    p.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.child, args.path)
        return
    if args.interactions > args.users * args.items // 2:
        sys.exit(f"--interactions: expected at most half of --users x --items, got {args.interactions}")
    results = []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "interactions.parquet"
        _write(path, args.interactions, args.users, args.items, args.seed)
        for way in ("collect", "stream"):
            out = subprocess.run([sys.executable, __file__, "--child", way, "--path", str(path)],
                                 check=True, capture_output=True, text=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            r = results[-1]
            print(f"{way:>8}: {r['seconds']:6.1f} s, driver grew {r['driver_growth_gb']:.2f} GiB "
                  f"({r['growth_bytes_per_entry']:.0f} bytes per entry; the CSR matrix is "
                  f"{r['csr_gb']:.2f} GiB)", flush=True)
    ratio = results[0]["driver_growth_gb"] / max(results[1]["driver_growth_gb"], 1e-9)
    print(f"collect / stream driver growth: {ratio:.1f}x")
    if args.out:
        args.out.write_text(json.dumps({"interactions": args.interactions, "results": results,
                                        "collect_over_stream": ratio}, indent=2) + "\n")


if __name__ == "__main__":
    main()
