"""Load test of ``fairrec serve``: EASE on MovieLens 100K behind real uvicorn, 16 concurrent clients.

What it does:

1. fits EASE on a per-user 75/25 random hold-out of MovieLens 100K and writes a bundle;
2. times the raw in-process work per request (recommend + explain, no HTTP) as the baseline;
3. starts the service in a separate process (uvicorn on a free loopback port, the bundle
   served as an unregistered bundle, consent store and audit log in a temporary directory),
   with authentication on (a user-token secret and an operator token) unless ``--no-auth``;
4. drives ``GET /users/{id}/recommendations?k=10&explain=true`` from ``--clients`` threads,
   each with its own keep-alive HTTP connection, in a closed loop over all users; each
   request carries that user's token (signed once per user before the run, as the embedding
   application would; the service checks the signature on every request);
5. prints throughput, p50/p99 latency and the number of errors (anything but a 200 with
   10 explained items), and checks the audit log has one record per request; the baseline
   for comparison is the same work done in process, one request at a time.

Run: ``.venv/bin/python benchmarks/serve_load.py [--data DIR] [--clients 16] [--requests 6000] [--no-auth]``.
The floor the service must meet: p99 under 50 ms at 16 clients with zero errors (exit status 1
otherwise).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

P99_FLOOR_MS = 50.0
# benchmark-only credentials, generated per run (never a real deployment's)
USER_SECRET = os.urandom(32).hex()
OPERATOR_TOKEN = os.urandom(32).hex()


def build_bundle(data_dir: Path, out: Path) -> Path:
    from recsys.data import load_movielens_100k, random_holdout
    from recsys.models import EASE
    from recsys.serving import save_bundle

    ds = load_movielens_100k(data_dir)
    split = random_holdout(ds.interactions, test_fraction=0.25, random_state=0)
    model = EASE(l2=500.0).fit(split.train.matrix)
    save_bundle(out, name="ease-ml100k", model=model, reranker=None, n_candidates=0,
                user_ids=ds.interactions.user_ids, item_ids=ds.interactions.item_ids,
                items=ds.items[["item_id", "title", "category"]])
    return out


def baseline(bundle_dir: Path, users: list[str], k: int) -> dict[str, float]:
    """Per-request time of the work itself, in process: raw model + explainer, and the engine."""
    from recsys.explain import HistoryShapExplainer
    from recsys.serving import ServingEngine, load_bundle, resolve_model

    bundle = load_bundle(bundle_dir)
    explainer = HistoryShapExplainer(bundle.model)
    index = {str(u): i for i, u in enumerate(bundle.user_ids.tolist())}
    engine = ServingEngine(resolve_model(str(bundle_dir), allow_unregistered=True))
    out = {}
    for name, fn in [
        ("raw recommend + explain", lambda u: explainer.explain(index[u], bundle.recommend(
            np.array([index[u]]), k)[0][0])),
        ("engine (lists, explanations, texts)", lambda u: engine.recommend(u, k=k, explain=True)),
    ]:
        times = []
        for u in users:
            start = time.perf_counter()
            fn(u)
            times.append(time.perf_counter() - start)
        out[name] = 1e3 * float(np.mean(times))
    return out


def serve_process(bundle_dir: Path, work: Path, port: int, *, auth: bool) -> subprocess.Popen:
    # the credentials go through the environment, not the command line (which `ps` shows)
    code = (
        "import os, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from recsys.serving import ServeSettings, serve;"
        "auth = sys.argv[5] == 'auth';"
        "serve(ServeSettings(model=sys.argv[2], allow_unregistered=True, port=int(sys.argv[3]),"
        " consent_path=Path(sys.argv[4]) / 'consent.sqlite', audit_path=Path(sys.argv[4]) / 'audit.jsonl',"
        " user_token_secret=os.environ['BENCH_USER_SECRET'] if auth else None,"
        " admin_token=os.environ['BENCH_OPERATOR_TOKEN'] if auth else None, insecure_local=not auth),"
        " log_level='warning', access_log=False)"
    )
    env = {**os.environ, "BENCH_USER_SECRET": USER_SECRET, "BENCH_OPERATOR_TOKEN": OPERATOR_TOKEN}
    return subprocess.Popen([sys.executable, "-c", code, str(REPO), str(bundle_dir), str(port), str(work),
                             "auth" if auth else "open"], env=env)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready")


def drive(port: int, users: list[str], *, clients: int, n_requests: int, k: int,
          tokens: dict[str, str]) -> tuple[list[float], int, float]:
    """Closed-loop load: each client sends its share of requests back to back."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_gate = threading.Barrier(clients + 1)

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start_gate.wait()
        for r in range(c, n_requests, clients):
            user = users[r % len(users)]
            t0 = time.perf_counter()
            try:
                headers = {"Authorization": f"Bearer {tokens[user]}"} if tokens else {}
                conn.request("GET", f"/users/{user}/recommendations?k={k}&explain=true", headers=headers)
                response = conn.getresponse()
                body = response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok, body = False, b""
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            latencies[c].append(time.perf_counter() - t0)
            if ok:
                items = json.loads(body)["items"]
                ok = len(items) == k and all(i["explanation"] for i in items)
            errors[c] += not ok
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return [x for per in latencies for x in per], sum(errors), elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--no-auth", action="store_true",
                        help="serve with insecure_local (no credentials), as before authentication existed")
    args = parser.parse_args(argv)
    auth = not args.no_auth

    with tempfile.TemporaryDirectory(prefix="fairrec-serve-load-") as tmp:
        work = Path(tmp)
        bundle_dir = build_bundle(args.data, work / "bundle")
        from recsys.serving import load_bundle

        users = [str(u) for u in load_bundle(bundle_dir).user_ids.tolist()]
        raw = baseline(bundle_dir, users, args.k)
        from recsys.serving import issue_user_token

        tokens = {u: issue_user_token(u, secret=USER_SECRET, ttl_seconds=3600) for u in users} if auth else {}
        port = free_port()
        proc = serve_process(bundle_dir, work, port, auth=auth)
        try:
            wait_ready(port, proc)
            drive(port, users, clients=args.clients, n_requests=args.warmup, k=args.k, tokens=tokens)
            latencies, errors, elapsed = drive(port, users, clients=args.clients,
                                               n_requests=args.requests, k=args.k, tokens=tokens)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        audited = sum(1 for _ in (work / "audit.jsonl").open())

    ms = np.asarray(latencies) * 1e3
    p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
    expected_records = args.warmup + len(ms)
    print(f"EASE on MovieLens 100K (943 users, 1682 items), top-{args.k} with explanations")
    print(f"machine: {os.cpu_count()} CPUs, shared by the server and the clients; server: uvicorn, "
          f"1 process; clients: {args.clients} threads, keep-alive connections, closed loop")
    print("authentication: " + ("on (a signed user token per request)" if auth else
                                "off (insecure_local)"))
    print(f"requests {len(ms)} (after {args.warmup} warm-up), errors {errors}, audit records "
          f"{audited} (expected {expected_records})")
    print(f"throughput {len(ms) / elapsed:.0f} requests/s")
    print(f"latency ms: p50 {p50:.1f}  p90 {np.percentile(ms, 90):.1f}  p99 {p99:.1f}  "
          f"max {ms.max():.1f}  mean {statistics.fmean(ms):.1f}")
    print("baseline, in process, one request at a time (no HTTP, no concurrency, no audit):")
    for name, value in raw.items():
        print(f"  {name}: {value:.2f} ms per request = {1e3 / value:.0f} requests/s on one core")
    ok = errors == 0 and p99 < P99_FLOOR_MS and audited == expected_records
    print(f"floor (p99 < {P99_FLOOR_MS:.0f} ms, 0 errors, every request audited): "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
