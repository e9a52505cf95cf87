"""What authentication and the web hardening cost per request, measured in process.

The load test (``serve_load.py``) shares two cores with its clients, so on a busy machine
its p99 moves by more than the cost of checking a token. This measures the difference
directly: two apps over the same EASE bundle (MovieLens 100K), one with credentials (a user
token checked per request, Host check, body limit) and one with ``insecure_local``; the same
``GET /users/{id}/recommendations?k=10&explain=true`` requests, one at a time through the
ASGI interface (no sockets), in alternating blocks so that a change in machine load hits
both alike. Each request carries its user's token (signed once per user, as the application
would); ``--fresh-tokens`` signs a new one for every request (the signature is then
checked every time, nothing cached).

Run: ``.venv/bin/python benchmarks/serve_auth_overhead.py [--data DIR] [--blocks 10] [--block 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


async def _time_block(client, users: list[str], start: int, n: int, headers_for) -> float:
    t0 = time.perf_counter()
    for r in range(start, start + n):
        user = users[r % len(users)]
        response = await client.get(f"/users/{user}/recommendations", params={"k": 10, "explain": "true"},
                                    headers=headers_for(user))
        assert response.status_code == 200, response.text
    return (time.perf_counter() - t0) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--fresh-tokens", action="store_true")
    args = parser.parse_args(argv)

    import httpx

    from benchmarks.serve_load import build_bundle
    from recsys.serving import ServeSettings, create_app, issue_user_token, load_bundle

    secret, operator = os.urandom(32).hex(), os.urandom(32).hex()
    with tempfile.TemporaryDirectory(prefix="fairrec-auth-overhead-") as tmp:
        work = Path(tmp)
        bundle_dir = build_bundle(args.data, work / "bundle")
        users = [str(u) for u in load_bundle(bundle_dir).user_ids.tolist()]
        common = {"model": str(bundle_dir), "allow_unregistered": True, "audit_max_bytes": 0}
        apps = {
            "auth on": create_app(ServeSettings(**common, consent_path=work / "c1.sqlite",
                                                audit_path=work / "a1.jsonl",
                                                user_token_secret=secret, admin_token=operator)),
            "auth off": create_app(ServeSettings(**common, consent_path=work / "c2.sqlite",
                                                 audit_path=work / "a2.jsonl", insecure_local=True)),
        }
        tokens = {u: issue_user_token(u, secret=secret, ttl_seconds=3600) for u in users}

        def with_token(user: str) -> dict[str, str]:
            token = (issue_user_token(user, secret=secret, ttl_seconds=3600) if args.fresh_tokens
                     else tokens[user])
            return {"Authorization": f"Bearer {token}"}

        headers = {"auth on": with_token, "auth off": lambda user: {}}

        async def run() -> dict[str, list[float]]:
            times: dict[str, list[float]] = {name: [] for name in apps}
            clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                               base_url="http://127.0.0.1") for name, app in apps.items()}
            for name in apps:  # warm-up
                await _time_block(clients[name], users, 0, args.block, headers[name])
            for b in range(args.blocks):
                order = list(apps) if b % 2 == 0 else list(reversed(apps))
                for name in order:
                    times[name].append(await _time_block(clients[name], users, (b + 1) * args.block,
                                                         args.block, headers[name]))
            for c in clients.values():
                await c.aclose()
            return times

        times = asyncio.run(run())

    means = {name: 1e3 * statistics.fmean(t) for name, t in times.items()}
    medians = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    print(f"EASE on MovieLens 100K, top-10 with explanations, in process (ASGI, no sockets), "
          f"{args.blocks} alternating blocks of {args.block} requests per mode; "
          f"{'a new token per request' if args.fresh_tokens else 'one token per user'}")
    for name in apps:
        print(f"  {name}: mean of block means {means[name]:.3f} ms, median block {medians[name]:.3f} ms")
    diff = means["auth on"] - means["auth off"]
    print(f"authentication and hardening cost: {1e3 * diff:+.0f} us per request "
          f"({100 * diff / means['auth off']:+.1f}%; median blocks "
          f"{100 * (medians['auth on'] - medians['auth off']) / medians['auth off']:+.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
