"""One user client of `make load` (scripts/load.py): submits tiny matmul jobs with the real SDK
(`offchain.client.sdk.submit`: rank offers, quote, upload, fund by permit), one after another
or paced at `--rate` jobs per minute, until a wall-clock deadline, and appends one JSON line
per attempt to its output file:
{"job_id": N | null, "t0": wall s before submit, "t1": after, "error": text | null}.

Run by the harness as `python -m scripts._load_client --test-account N --provider ADDR
--until UNIX_S --out FILE --seed-base S` with GPUNET_DEPLOYMENT and APE_FOUNDRY_HOST set.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from offchain.chain.client import connect


def tiny_matmul(seed: int) -> dict:
    # 2 * 64^3 FLOP: one compute unit, a few milliseconds on a CPU.
    return {"kind": "matmul_chain", "params": {"n": 64, "k": 2}, "seed": seed}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts._load_client")
    p.add_argument("--test-account", type=int, required=True)
    p.add_argument("--provider", required=True, help="the provider whose offer every job takes")
    p.add_argument("--until", type=float, required=True, help="stop submitting at this wall-clock time (s)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed-base", type=int, default=0)
    p.add_argument("--batch", type=int, default=1, help="jobs per create transaction (1: sdk.submit, a permit each)")
    p.add_argument("--rate", type=float, default=0, help="jobs per minute offered (0: no pause)")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # ape's INFO/WARNING lines: the harness reads only --out

    from ape import accounts

    from offchain.client import sdk
    from offchain.client.batch import submit_batch

    with connect("ethereum:local:foundry") as h, open(args.out, "a", buffering=1) as out:
        account = accounts.test_accounts[args.test_account]
        seed = args.seed_base
        # Paced: batch k starts at start + k * interval (a late batch starts at once, none is
        # skipped), so the offered load is fixed and does not shrink when the network is slow.
        interval = 60.0 * args.batch / args.rate if args.rate > 0 else 0.0
        start, k = time.time(), 0
        while time.time() < args.until:
            if interval:
                time.sleep(max(0.0, start + k * interval - time.time()))
                k += 1
                if time.time() >= args.until:
                    break
            t0 = time.time()
            try:
                if args.batch == 1:
                    seed += 1
                    ids = [sdk.submit(h, account, tiny_matmul(seed), class_id=1, provider=args.provider).job_id]
                else:
                    specs = [tiny_matmul(seed + i + 1) for i in range(args.batch)]
                    seed += args.batch
                    subs = submit_batch(h, account, specs, provider=args.provider, allowance=10**30)
                    ids = [s.job_id for s in subs]
                rows = [{"job_id": j, "t0": t0, "t1": time.time(), "error": None} for j in ids]
            except Exception as e:  # noqa: BLE001 - recorded and counted by the harness, then go on
                rows = [{"job_id": None, "t0": t0, "t1": time.time(), "error": f"{type(e).__name__}: {e}"[:300]}]
                time.sleep(1)
            for row in rows:
                out.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
