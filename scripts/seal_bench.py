"""`make seal-bench`: what sealing job data end to end costs (issue 13's figures).

Two measurements, written to build/bench/sealing.json:

1. **Per megabyte** (in-process): `seal_data` and `open_blob` on 1, 16 and 64 MiB, the median
   of `--runs` runs each, as ms per MiB. And **per job**, the crypto a small job adds on each
   side: the client seals its spec to the provider, 3 operators and itself and signs its
   uploads; the provider opens the envelope, checks every auditor's wrap, seals its output and
   checks the signed requests; an auditor opens the envelope and the output.
2. **End to end** (`--live`, the default too): a local anvil, one provider agent with its job
   worker (signed blob access on, as `gpunet provider serve` runs it) and an oracle operator's
   published key; the same small matmul job submitted `--jobs` times sealed and as many times in
   plaintext, alternating (A B A B ...), each timed from `sdk.submit` to its result downloaded,
   checked and opened by the user. The medians and their ratio are the overhead a user sees.

Run: `python -m scripts.seal_bench` (about a minute); `--micro-only` skips the live network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from offchain import sealing as S

OUT = Path("build/bench/sealing.json")
JOB = {"kind": "matmul_chain", "params": {"n": 64, "k": 3}, "seed": 1}


def _median_s(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def micro(runs: int) -> dict:
    from eth_account import Account

    from offchain.blob_auth import Domain, RequestSigner, Verifier
    from offchain.workloads.base import canonical_json

    key = S.new_data_key()
    per_mb = {}
    for mib in (1, 16, 64):
        data = os.urandom(mib << 20)
        sealed = S.seal_data(data, key)
        per_mb[f"{mib}MiB"] = {
            "seal_ms_per_mib": round(_median_s(lambda d=data: S.seal_data(d, key), runs) * 1e3 / mib, 3),
            "open_ms_per_mib": round(_median_s(lambda b=sealed: S.open_blob(b, key), runs) * 1e3 / mib, 3),
        }
    rings = {n: S.Keyring(f"0x{i:040x}", {1: S.X25519PrivateKey.generate()}, 1) for i, n in
             enumerate(("user", "provider", "op0", "op1", "op2"), 1)}  # fmt: skip
    readers = [r.recipient() for r in rings.values()]
    auditors = [rings[n].recipient() for n in ("op0", "op1", "op2")]
    spec_doc = S.pack_spec(JOB, {}, "0x" + "01" * 20)
    output = os.urandom(64 * 64 * 4 + 200)  # a 64x64 fp32 product and its header, the job's output
    user, provider = Account.create(), Account.create()
    signer = RequestSigner(user.key, 31337, "0x" + "ab" * 20)
    verifier = Verifier(Domain(31337, "0x" + "ab" * 20, provider.address))

    def client():
        S.seal_envelope(spec_doc, S.new_data_key(), readers)
        signer.headers(provider.address, "PUT", "ab" * 32)

    env = S.seal_envelope(spec_doc, key, readers)
    sealed_out = S.seal_data(output, key)

    def provider_side():
        k = rings["provider"].open_key(env)
        S.open_blob(env, k)
        assert not S.verify_wraps(env, k, auditors)
        S.seal_data(output, k)
        verifier.verify(signer.headers(provider.address, "GET", "cd" * 32)["X-Gpunet-Auth"], "GET", "cd" * 32)

    def auditor_side():
        k = rings["op0"].open_key(env)
        S.open_blob(env, k)
        S.open_blob(sealed_out, k)

    per_job = {
        "client_ms": round(_median_s(client, runs * 10) * 1e3, 3),
        "provider_ms": round(_median_s(provider_side, runs * 10) * 1e3, 3),
        "auditor_ms": round(_median_s(auditor_side, runs * 10) * 1e3, 3),
        "envelope_bytes": len(env),
        "spec_bytes": len(canonical_json(JOB)),
        "sealed_output_overhead_bytes": len(sealed_out) - len(output),
    }
    return {"per_mib": per_mb, "per_job": per_job}


def live(jobs: int, log_dir: Path) -> dict:
    from ape import accounts, chain, networks, project

    from offchain.chain import keys
    from offchain.chain.anvil import running_anvil
    from offchain.chain.client import DEPLOYMENT_ENV
    from offchain.chain.deploy import deploy_all
    from offchain.chain.price import ONE_USD, post_price
    from offchain.client import sdk
    from offchain.client.sealed import user_keyring
    from offchain.constants import ONE_TOKEN, JobStatus, MachineStatus
    from offchain.devnet import Devnet, free_ports
    from offchain.params import MarketParams, OracleParams

    shutil.rmtree(log_dir, ignore_errors=True)  # a fresh chain each run: no state from the last one
    log_dir.mkdir(parents=True)
    record = log_dir / "deployment.json"
    os.environ[DEPLOYMENT_ENV] = str(record)
    devnet = Devnet(log_dir)
    times: dict[str, list[float]] = {"sealed": [], "public": []}
    try:
        with running_anvil(log_path=log_dir / "anvil.log"), networks.parse_network_choice("ethereum:local:foundry"):
            a = accounts.test_accounts
            op, prov, user = a[9], a[1], a[3]
            params = MarketParams(base_audit_bps=0, new_provider_audit_bps=0, bad_record_audit_bps=0)
            d = deploy_all(project, a[0], local=True, params=params, operators=[op.address], record_path=record,
                           chain_id=chain.chain_id)  # fmt: skip
            stake = OracleParams().min_operator_stake
            d.token.mint(op, stake, sender=a[0])
            d.token.approve(d.hub, stake, sender=op)
            d.hub.stake(stake, sender=op)
            h = d.handles(chain)
            keys.publish(h, op, S.Keyring.create(op.address, log_dir / "operator.keys.json"))
            (port,) = free_ports(1)
            d.token.mint(prov, 2_000 * ONE_TOKEN, sender=a[0])
            d.token.approve(d.registry, 2**256 - 1, sender=prov)
            d.registry.stake(1_000 * ONE_TOKEN, sender=prov)
            mid = d.registry.register(1, 1, 256, f"http://127.0.0.1:{port}", sender=prov)
            d.registry.set_machine_status(mid.decode_logs(d.registry.MachineRegistered)[0].machine_id,
                                          MachineStatus.ACTIVE, sender=a[0])  # fmt: skip
            d.registry.set_offer(1, 10**15, sender=prov)
            d.token.mint(user, 1_000 * ONE_TOKEN, sender=a[0])
            post_price(d.price_feed, chain.chain_id, [op], ONE_USD // 2, chain.blocks.head.timestamp, op)
            url = devnet.start_agent("agent", prov.address, "CPU", port, test_account=1, state_dir=log_dir / "agent",
                                     extra=["--poll", "0.2"])  # fmt: skip
            devnet.wait_http("agent", url, timeout=180)
            ring = user_keyring(user.address, log_dir / "user.keys.json")
            deadline = time.monotonic() + 60
            while keys.recipients(h, [prov.address])[prov.address] is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the agent published no encryption key within 60 s: see {log_dir}/agent.log")
                time.sleep(0.5)
            for i in range(2 * jobs + 2):
                mode = "sealed" if i % 2 == 0 else "public"
                spec = dict(JOB, seed=1000 + i)
                t0 = time.perf_counter()
                sub = sdk.submit(h, user, spec, class_id=1, keyring=ring if mode == "sealed" else None)
                end = time.monotonic() + 120
                while JobStatus(d.market.job_status(sub.job_id)) != JobStatus.SUBMITTED:
                    if time.monotonic() > end:
                        raise RuntimeError(f"job {sub.job_id} not submitted within 120 s: see {log_dir}/agent.log")
                    time.sleep(0.05)
                # A plaintext job fetched as before sealing existed: no key file, no sealed-spec check.
                sdk.fetch_result(h, sub.job_id, keyring=ring if mode == "sealed" else None, account=user)
                if i >= 2:  # the first pair warms the agent and the client up
                    times[mode].append(time.perf_counter() - t0)
    finally:
        devnet.stop_all()
    med = {m: statistics.median(v) for m, v in times.items()}
    pairs = [s / p for s, p in zip(times["sealed"], times["public"], strict=True)]
    return {
        "jobs_each": jobs,
        "sealed_median_s": round(med["sealed"], 4),
        "public_median_s": round(med["public"], 4),
        "sealed_over_public_median_ratio": round(statistics.median(pairs), 4),
        "sealed_min_max_s": [round(min(times["sealed"]), 4), round(max(times["sealed"]), 4)],
        "public_min_max_s": [round(min(times["public"]), 4), round(max(times["public"]), 4)],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per in-process figure (median)")
    p.add_argument("--jobs", type=int, default=10, help="live jobs of each kind (sealed, plaintext)")
    p.add_argument("--micro-only", action="store_true", help="skip the live network")
    args = p.parse_args(argv)
    if args.runs < 1 or args.jobs < 1:
        p.error("--runs and --jobs must be >= 1")
    out = {"micro": micro(args.runs)}
    print(json.dumps(out["micro"], indent=2))
    if not args.micro_only:
        out["live"] = live(args.jobs, Path("build/bench/sealing-live"))
        print(json.dumps(out["live"], indent=2))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
