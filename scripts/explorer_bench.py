"""`make explorer-bench`: the explorer's pages with 10,000 jobs indexed.

On a fresh anvil: the contracts, one provider with an Active CPU machine, three oracle
operators and a price; then `--jobs` jobs (default 10,000) in batches of 50 through the real
JobMarket calls (create_jobs, accept_jobs, submit_results, finalize_many, a claim per ten
batches: every job finalized and paid). The explorer's index is built from that chain (timed),
then each page and its JSON API are fetched `--runs` times over HTTP from the running explorer,
its page cache off (each fetch computes the page, as the first visit after a sync does): the
time to the last byte, as the client sees it, and the server's own render time (its
Server-Timing header); then the two slowest pages again with the cache on. Medians, with min
and max; the goal is at most 200 ms a page.

Writes build/bench/explorer.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT = REPO_ROOT / "build" / "bench" / "explorer.json"
GOAL_MS = 200.0
BATCH = 50


def build_chain(n_jobs: int, console) -> tuple:
    """Deploys and runs `n_jobs` jobs; returns (deployment, handles, provider address)."""
    from ape import accounts, chain, project

    from offchain.chain.deploy import deploy_all
    from offchain.constants import ONE_TOKEN
    from scripts._bench_lib import Driver
    from scripts.bench import NO_AUDITS, STAKE, post_round, setup_operators

    a = accounts.test_accounts
    deployer, prov, user, keeper = a[0], a[1], a[3], a[5]
    d = deploy_all(project, deployer, local=True, params=NO_AUDITS, settlement_max_age=7 * 86400)
    drv = Driver(d, chain)
    drv.fund(deployer, user, 10**9 * ONE_TOKEN)
    drv.fund(deployer, prov, 10**6 * ONE_TOKEN)
    machine = drv.make_provider(prov, deployer, STAKE * 100, names=False)
    ops = setup_operators(drv, deployer)
    post_round(drv, ops, keeper, None)
    t0, done, pending = time.monotonic(), 0, []
    while done < n_jobs:
        size = min(BATCH, n_jobs - done)
        ids, _ = drv.create_batch(user, prov, done, size)
        drv.accept_batch(ids, prov, machine)
        drv.submit_batch(ids, prov)
        pending.append(ids)
        done += size
        if len(pending) == 10 or done == n_jobs:
            for batch in pending:
                drv.finalize_batch(batch, keeper)
            drv.jobs.clear()
            drv.record(None, d.market.claim(prov, sender=keeper))
            pending = []
            console.print(f"  {done} jobs ({time.monotonic() - t0:.0f} s)")
    h = d.handles(chain)
    return d, h, prov.address.lower()


def time_pages(url: str, pages: list[str], runs: int) -> dict:
    import requests

    s = requests.Session()
    out = {}
    for path in pages:
        s.get(url + path, timeout=60)  # warm-up
        wall, render = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            r = s.get(url + path, timeout=60)
            wall.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, f"{path}: HTTP {r.status_code} {r.text[:200]}"
            timing = r.headers.get("Server-Timing", "")
            if "dur=" in timing:
                render.append(float(timing.split("dur=")[1]))
        out[path] = {
            "median_ms": round(statistics.median(wall), 1),
            "min_ms": round(min(wall), 1),
            "max_ms": round(max(wall), 1),
            "server_render_median_ms": round(statistics.median(render), 1) if render else None,
            "bytes": len(r.content),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.explorer_bench", description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=10_000, help="jobs to run and index (default 10,000)")
    p.add_argument("--runs", type=int, default=20, help="timed fetches per page (default 20)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    from ape import networks
    from ape.logging import LogLevel, logger
    from rich.console import Console

    from offchain.chain.anvil import running_anvil
    from offchain.explorer.server import Explorer, serve

    console = Console(width=160)
    logger.set_level(LogLevel.WARNING)
    with running_anvil(), networks.parse_network_choice("ethereum:local:foundry"):
        console.print(f"running {args.jobs} jobs on a fresh anvil ...")
        t0 = time.monotonic()
        _, h, provider = build_chain(args.jobs, console)
        chain_s = time.monotonic() - t0
        with tempfile.TemporaryDirectory() as tmp:
            # No page cache: every fetch computes its page from the index (what the first visitor
            # after each sync waits for); the cached figure is measured apart below.
            ex = Explorer(h, index_path=Path(tmp) / "index.sqlite", cache_pages=0)
            t1 = time.monotonic()
            block = ex.sync_once()
            index_s = time.monotonic() - t1
            jobs = ex.views.overview()["jobs_total"]
            assert jobs == args.jobs, f"indexed {jobs} jobs, ran {args.jobs}"
            server = serve(ex, "127.0.0.1", 0)
            try:
                mid = args.jobs // 2
                pages = [
                    "/",
                    "/providers",
                    f"/providers/{provider}",
                    "/jobs",
                    f"/jobs?provider={provider}&before={mid}",
                    f"/jobs/{mid}",
                    "/oracles",
                    "/verification",
                ]
                pages += ["/api/overview" if pg == "/" else "/api" + pg for pg in pages]
                timed = time_pages(server.url, pages, args.runs)
                ex.cache_pages = 256
                cached = time_pages(server.url, ["/", f"/providers/{provider}"], args.runs)
            finally:
                server.server_close()
    worst = max(v["median_ms"] for v in timed.values())
    result = {
        "jobs": args.jobs,
        "blocks": block,
        "chain_build_s": round(chain_s, 1),
        "index_build_s": round(index_s, 1),
        "runs_per_page": args.runs,
        "goal_ms": GOAL_MS,
        "worst_median_ms": worst,
        "pages": timed,
        "cached": cached,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for path, v in timed.items():
        console.print(
            f"{path:50} median {v['median_ms']:7.1f} ms (min {v['min_ms']:.1f}, max {v['max_ms']:.1f}; "
            f"render {v['server_render_median_ms']} ms; {v['bytes']:,} bytes)"
        )
    for path, v in cached.items():
        console.print(f"{path + ' (cached)':50} median {v['median_ms']:7.1f} ms")
    console.print(
        f"{args.jobs} jobs indexed in {index_s:.1f} s; slowest page median {worst:.1f} ms "
        f"(goal {GOAL_MS:.0f} ms); wrote {args.out}"
    )
    return 0 if worst <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
