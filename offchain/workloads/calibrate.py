"""Calibrate `compare`: re-execute honest specs under different thread counts (and against a
float64 reference where a kind has one) and report the false-positive rate (target 0).

    python -m offchain.workloads.calibrate --runs 50 [--threads 1,2] [--device cpu]

For each run and kind a spec with a fresh seed (and varied small sizes) is executed once per
thread count; every later execution is compared with the first. A mismatch between two honest
executions is a false positive. For matmul_chain and mlp_train the first execution is also
compared with a float64 reference (`*_vs_fp64`), a proxy for other devices' float orders.
"""

from __future__ import annotations

import argparse
import io
import json
import time

import torch

from offchain import workloads as W
from offchain.workloads import matmul_chain, mlp_train, toploc_generate
from offchain.workloads.base import Output, generator


def _tiny_model_blobs(seed: int) -> tuple[dict, dict[str, bytes]]:
    g = generator(seed, 1)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(24, 64), torch.nn.GELU(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    mb, ib = io.BytesIO(), io.BytesIO()
    torch.jit.save(torch.jit.script(model), mb)
    torch.save(torch.randn(100, 24, generator=g), ib)
    blobs = {W.blob_hash(b): b for b in (mb.getvalue(), ib.getvalue())}
    spec = {
        "kind": "torchscript_infer",
        "params": {"gflops": 0.001, "batch_size": 32},
        "seed": seed,
        "inputs": {"model": W.blob_hash(mb.getvalue()), "input": W.blob_hash(ib.getvalue())},
    }
    return spec, blobs


def specs_for(run: int) -> list[tuple[dict, dict[str, bytes]]]:
    n = (48, 64, 96, 128)[run % 4]
    return [
        ({"kind": "matmul_chain", "params": {"n": n, "k": 2 + run % 7, "dtype": "float32"}, "seed": run}, {}),
        ({"kind": "matmul_chain", "params": {"n": n, "k": 2 + run % 7, "dtype": "bfloat16"}, "seed": run}, {}),
        (
            {
                "kind": "mlp_train",
                "params": {
                    "in_dim": 8 + run % 9,
                    "hidden": [32],
                    "out_dim": 3,
                    "samples": 256,
                    "batch": 16,
                    "steps": 60,
                },
                "seed": run,
            },
            {},
        ),
        _tiny_model_blobs(run),
        (
            {
                "kind": "toploc_generate",
                "params": {
                    "vocab": 64 + run,
                    "d_model": 32,
                    "layers": 2,
                    "heads": 4,
                    "prompt_len": 4,
                    "new_tokens": 12,
                },
                "seed": run,
            },
            {},
        ),
    ]


def _reference_fp64(spec: dict, out: Output) -> Output | None:
    cpu = torch.device("cpu")
    if spec["kind"] == "matmul_chain":
        ref = matmul_chain.run(spec, cpu, torch.float64)
        return Output(out.kind, {"product": ref.to(out.tensors["product"].dtype)}, out.meta)
    if spec["kind"] == "mlp_train":
        return Output(out.kind, mlp_train.run(spec, cpu, torch.float64), out.meta)
    return None


def calibrate(runs: int, threads: list[int], device: str = "cpu") -> dict:
    old = torch.get_num_threads()
    stats: dict[str, dict] = {}
    t0 = time.time()
    try:
        for run in range(runs):
            for spec, blobs in specs_for(run):
                label = spec["kind"] + ("/" + spec["params"]["dtype"] if "dtype" in spec["params"] else "")
                s = stats.setdefault(label, {"comparisons": 0, "false_positives": 0, "bitwise": 0, "max_rel_err": 0.0})
                outs = []
                for t in threads:
                    torch.set_num_threads(t)
                    outs.append(W.execute(spec, device, blobs))
                for other in outs[1:]:
                    r = W.compare(other, outs[0])
                    s["comparisons"] += 1
                    s["false_positives"] += 0 if r.match else 1
                    s["bitwise"] += W.output_bytes(other) == W.output_bytes(outs[0])
                    s["max_rel_err"] = max(s["max_rel_err"], r.max_rel_err)
                if spec["kind"] == "toploc_generate":  # the verifier's one-prefill check, per thread count
                    for o in outs:
                        r = toploc_generate.verify(spec, o, device)
                        s["prefill_checks"] = s.get("prefill_checks", 0) + 1
                        s["prefill_false_positives"] = s.get("prefill_false_positives", 0) + (0 if r.match else 1)
                ref = _reference_fp64(spec, outs[0])
                if ref is not None:
                    r = W.compare(ref, outs[0])
                    s["false_positives_vs_fp64"] = s.get("false_positives_vs_fp64", 0) + (0 if r.match else 1)
                    s["max_rel_err_vs_fp64"] = max(s.get("max_rel_err_vs_fp64", 0.0), r.max_rel_err)
    finally:
        torch.set_num_threads(old)
    total = sum(s["comparisons"] for s in stats.values())
    fps = sum(s["false_positives"] for s in stats.values())
    return {
        "runs": runs,
        "threads": threads,
        "device": device,
        "comparisons": total,
        "false_positives": fps,
        "false_positive_rate": fps / total if total else 0.0,
        "seconds": round(time.time() - t0, 1),
        "per_kind": stats,
        "tolerances": {
            "matmul_chain/float32": f"rtol = {matmul_chain.FACTOR['float32']} * eps_fp32 * k",
            "matmul_chain/bfloat16": f"rtol = {matmul_chain.FACTOR['bfloat16']} * eps_bf16 * k",
            "mlp_train": f"weights {mlp_train.WEIGHT_RTOL} (scale), loss {mlp_train.LOSS_RTOL} (elementwise)",
            "torchscript_infer": "fp32 1e-4 (scale)",
            "toploc_generate": f"tokens/indices exact, values {toploc_generate.VAL_RTOL} (scale)",
        },
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    print(json.dumps(calibrate(a.runs, [int(x) for x in a.threads.split(",")], a.device), indent=2))


if __name__ == "__main__":
    main()
