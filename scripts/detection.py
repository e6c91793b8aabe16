"""Detection rate of each cheat mode: does an honest re-execution catch the cheating provider?

For every calibration spec (offchain/workloads/calibrate.py: matmul_chain fp32/bf16, mlp_train,
torchscript_infer, toploc_generate; sizes and seeds vary with the run) it runs the job honestly
and as each `--cheat` mode of the provider agent would (offchain/provider/cheats.py), then asks
the auditor's question: does `compare(cheat, honest)` (for toploc_generate, the one-prefill
`verify`) reject it? Reports detections per kind and mode as JSON.

    python -m scripts.detection --runs 200
"""

from __future__ import annotations

import argparse
import json
import time

from offchain import workloads as W
from offchain.provider.cheats import JOB_CHEATS, execute_cheating
from offchain.workloads import toploc_generate
from offchain.workloads.calibrate import specs_for


def measure(runs: int, device: str = "cpu") -> dict:
    stats: dict[str, dict[str, dict[str, int]]] = {}
    t0 = time.time()
    for run in range(runs):
        for spec, blobs in specs_for(run):
            label = spec["kind"] + ("/" + spec["params"]["dtype"] if "dtype" in spec["params"] else "")
            honest = W.execute(spec, device, blobs)
            for mode in JOB_CHEATS:
                cheat = execute_cheating(mode, spec, device, blobs)
                if spec["kind"] == "toploc_generate":
                    caught = not toploc_generate.verify(spec, cheat, device).match
                else:
                    caught = not W.compare(cheat, honest).match
                s = stats.setdefault(label, {}).setdefault(mode, {"jobs": 0, "detected": 0})
                s["jobs"] += 1
                s["detected"] += int(caught)
    totals = {m: {"jobs": 0, "detected": 0} for m in JOB_CHEATS}
    for per_mode in stats.values():
        for m, s in per_mode.items():
            totals[m]["jobs"] += s["jobs"]
            totals[m]["detected"] += s["detected"]
    return {
        "runs": runs,
        "device": device,
        "seconds": round(time.time() - t0, 1),
        "detection_rate": {m: t["detected"] / t["jobs"] for m, t in totals.items() if t["jobs"]},
        "totals": totals,
        "per_kind": stats,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    print(json.dumps(measure(a.runs, a.device), indent=2))


if __name__ == "__main__":
    main()
