"""`make figures`: the hardware decision rule's error rates, measured -> build/figures/hardware.json.

What it runs (real agent processes, `gpunet provider serve`, challenged over HTTP by
`run_hardware_challenge` with the production defaults: 0.25 s network allowance, memory proof
at 85% of a 256 MB claim, k = 3 rounds, fail line 2x):

1. Honest CPU agents claiming the CPU class, at each background load level (0%, 50%, 100% of
   the cores busy with `python3 -c 'while True: pass'` processes this command starts and
   stops itself). Two challenger threads share two agents, as a quorum's operators do, so
   challenges also queue behind each other (429, retried). Counted: PASS, FAIL, INCONCLUSIVE,
   and each round's seconds against its allowance.
2. Liars at 0% load (their best case): a CPU agent claiming every GPU class (T4 ... H200), and
   CPU-class agents with the `wrong-challenge` and `slow` cheats. Counted the same way.
3. Provider time: the seconds an honest agent computes per challenge (median, its own clock:
   matmul rounds and memory proof), times the challenges per hour at the default
   re-attestation rate (`provider_seconds_per_hour`).

    python -m scripts.figures [--honest 70] [--liar-repeats 2] [--out build/figures/hardware.json]

Timing depends on this machine, so the file records it (cores, CPU, torch capability).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import torch

from offchain.benchmark import decision as dc
from offchain.benchmark.gpu_classes import GPU_CLASS_TABLE
from offchain.benchmark.measure import _cpu_count, _cpu_name
from offchain.devnet import Devnet, free_ports
from offchain.oracle import challenger as chg

OUT = Path("build/figures/hardware.json")
LOAD_LEVELS = (0.0, 0.5, 1.0)
HONEST_VRAM_BYTES = 256 << 20
# The oracle service's defaults (offchain/oracle/service.py, `gpunet oracle run`): attestations
# last 24 h and are renewed 6 h (TTL/4) before expiry; the leader and every peer challenge once
# per renewal; uptime probes are ~6 GET /health per operator per hour.
TTL_H = 24.0
RENEW_MARGIN_H = 6.0
OPERATORS = 3
PROBES_PER_OPERATOR_HOUR = 6
ADDR = "0x" + "11" * 20


def spin(k: int) -> list[subprocess.Popen]:
    """k busy loops, each a process of its own (the load a provider's other work puts on its CPU)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def _summary(outcomes: list[chg.ChallengeOutcome]) -> dict:
    c = Counter(o.outcome for o in outcomes)
    failed = c[chg.FAIL_MISREPORT] + c[chg.FAIL_UNREACHABLE]
    rates = dc.ErrorRates(len(outcomes), c[chg.PASS], failed, c[chg.INCONCLUSIVE])
    ratios = sorted((o.elapsed_s / o.allowance_s) for o in outcomes if o.elapsed_s and o.allowance_s)
    rounds = [t for o in outcomes for t in o.round_seconds]
    allow = outcomes[0].allowance_s if outcomes else None

    def q(p: float) -> float | None:
        return round(ratios[min(len(ratios) - 1, int(p * len(ratios)))], 3) if ratios else None

    return {
        "challenges": rates.challenges,
        "passed": rates.passed,
        "failed": rates.failed,
        "inconclusive": rates.inconclusive,
        "fail_rate_upper_95": round(rates.fail_upper_95, 4),
        "best_over_allowance": {"p50": q(0.5), "p99": q(0.99), "max": ratios[-1] if ratios else None},
        "rounds": len(rounds),
        "rounds_over_allowance": sum(1 for t in rounds if t is None or (allow and t > allow)),
        "rounds_over_fail_line": sum(1 for t in rounds if t is None),
        "allowance_s": round(allow, 4) if allow else None,
        "reasons": sorted({r.split(" (")[0][:120] for o in outcomes for r in o.reasons})[:8],
    }


def honest_level(urls: list[str], count: int, threads: int = 2) -> tuple[list[chg.ChallengeOutcome], list[float]]:
    """`count` challenges of the honest agents from `threads` concurrent challengers."""
    outcomes: list[chg.ChallengeOutcome] = []
    walls: list[float] = []
    lock = threading.Lock()
    todo = iter(range(count))

    def worker(k: int) -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            t0 = time.monotonic()
            o = chg.run_hardware_challenge(urls[(i + k) % len(urls)], "CPU", memory_claim_bytes=HONEST_VRAM_BYTES)
            with lock:
                outcomes.append(o)
                walls.append(time.monotonic() - t0)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return outcomes, walls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--honest", type=int, default=70, help="honest challenges per load level")
    ap.add_argument("--liar-repeats", type=int, default=2, help="challenges per liar")
    ap.add_argument("--levels", default=",".join(str(x) for x in LOAD_LEVELS), help="load levels, share of cores")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    levels = [float(x) for x in args.levels.split(",")]
    cores = _cpu_count()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="gpunet-figures-") as tmp:
        devnet = Devnet(Path(tmp))
        try:
            liars = [c for c in GPU_CLASS_TABLE if not c.is_floor]
            cheats = ("wrong-challenge", "slow")
            ports = free_ports(2 + len(liars) + len(cheats))
            honest = [devnet.start_agent(f"honest-{i}", ADDR, "CPU", ports[i]) for i in range(2)]
            liar_urls = {
                c.name: devnet.start_agent(f"liar-{c.class_id}", ADDR, str(c.class_id), ports[2 + i])
                for i, c in enumerate(liars)
            }
            cheat_urls = {
                name: devnet.start_agent(f"cheat-{name}", ADDR, "CPU", ports[2 + len(liars) + i], cheat=name)
                for i, name in enumerate(cheats)
            }
            for name, url in [*zip(("honest-0", "honest-1"), honest, strict=True),
                              *((f"liar-{c.class_id}", liar_urls[c.name]) for c in liars),
                              *((f"cheat-{n}", u) for n, u in cheat_urls.items())]:  # fmt: skip
                devnet.wait_http(name, url, timeout=180)

            per_level: dict[str, dict] = {}
            all_honest: list[chg.ChallengeOutcome] = []
            walls: list[float] = []
            for level in levels:
                load = spin(round(level * cores))
                try:
                    time.sleep(1.0)
                    t0 = time.monotonic()
                    outs, w = honest_level(honest, args.honest)
                finally:
                    stop(load)
                per_level[f"{level:.0%}"] = {**_summary(outs), "seconds": round(time.monotonic() - t0, 1)}
                print(f"honest at {level:.0%} load: {json.dumps(per_level[f'{level:.0%}'])}", flush=True)
                all_honest += outs
                walls += w

            liar_rows: dict[str, dict] = {}
            liar_outs: list[chg.ChallengeOutcome] = []
            for c in liars:
                outs = [
                    chg.run_hardware_challenge(liar_urls[c.name], c.class_id, check_memory=False)
                    for _ in range(args.liar_repeats)
                ]
                liar_rows[c.name] = _summary(outs) | {"n": outs[0].n, "dtype": outs[0].dtype}
                liar_outs += outs
                print(f"liar claiming {c.name}: {[o.outcome for o in outs]}", flush=True)
            for name, url in cheat_urls.items():
                outs = [
                    chg.run_hardware_challenge(url, "CPU", memory_claim_bytes=HONEST_VRAM_BYTES)
                    for _ in range(args.liar_repeats + 1)
                ]
                liar_rows[f"cheat:{name}"] = _summary(outs)
                liar_outs += outs
                print(f"cheat {name}: {[o.outcome for o in outs]}", flush=True)
        finally:
            devnet.stop_all()

    honest_all = _summary(all_honest)
    liar_all = _summary(liar_outs)
    wall_median = statistics.median(walls)
    # What a challenge costs the provider: the seconds its agent computed (matmul rounds and the
    # memory proof, on its own clock), not the wall time, which includes waiting for the other
    # challenger's turn.
    busy_median = statistics.median(o.provider_seconds for o in all_honest)
    renewals_per_hour = 1.0 / (TTL_H - RENEW_MARGIN_H)
    challenges_per_hour = renewals_per_hour * OPERATORS
    probe_s = 0.005  # a GET /health on loopback; negligible next to a challenge
    per_hour = challenges_per_hour * busy_median + OPERATORS * PROBES_PER_OPERATOR_HOUR * probe_s
    result = {
        "honest_challenges": honest_all["challenges"],
        "honest_failed": honest_all["failed"],
        "honest_inconclusive": honest_all["inconclusive"],
        "honest_passed": honest_all["passed"],
        "honest_fail_rate_upper_95": honest_all["fail_rate_upper_95"],
        "liar_challenges": liar_all["challenges"],
        "liar_passed": liar_all["passed"],
        "liar_failed": liar_all["failed"],
        "liar_inconclusive": liar_all["inconclusive"],
        "provider_seconds_per_hour": round(per_hour, 3),
        "provider_seconds_per_challenge_median": round(busy_median, 3),
        "challenge_wall_seconds_median": round(wall_median, 3),
        "challenges_per_hour": round(challenges_per_hour, 4),
        "load_levels": levels,
        "load_processes": {f"{lv:.0%}": round(lv * cores) for lv in levels},
        "honest_by_load": per_level,
        "liars": liar_rows,
        "rule": {
            "rounds": dc.DEFAULT_ROUNDS,
            "fail_factor": dc.FAIL_FACTOR,
            "network_allowance_s": chg.DEFAULT_NETWORK_ALLOWANCE_S,
            "cpu_overhead_ns": chg.CPU_OVERHEAD_NS,
            "gpu_overhead_ns": chg.GPU_OVERHEAD_NS,
            "round_budget_s": chg.ROUND_BUDGET_S,
            "renewal": f"every {TTL_H - RENEW_MARGIN_H:g} h, {OPERATORS} operators each challenge once",
        },
        "machine": {
            "cores": cores,
            "cpu": _cpu_name(),
            "torch": torch.__version__,
            "capability": torch.backends.cpu.get_cpu_capability(),
            "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
        },
        "command": "make figures",
        "seconds": round(time.time() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=2))
    print(f"wrote {args.out}")
    ok = result["honest_failed"] == 0 and result["liar_passed"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
