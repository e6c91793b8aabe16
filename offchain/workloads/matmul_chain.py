"""`matmul_chain`: the product of `k` seeded `n x n` matrices (the benchmark's cousin).

Params: ``n`` (1..8192), ``k`` (2..64), ``dtype`` ("float32" | "bfloat16", default float32).
Matrices are drawn N(0, 1/n) in fp32 on CPU from the spec's seed (so products keep unit
scale), cast to `dtype`, moved to the device and multiplied left to right.
Output: tensor ``product`` (n x n, `dtype`); meta: spec hash, n, k, dtype.

FLOPs: ``2 n^3 (k - 1)``; cap 10^13 FLOP (10^4 compute units).
Compare: bitwise equal, or ``max|a-b| <= rtol * max|b|`` with ``rtol = factor * eps(dtype) * k``
(fp32: factor 64 -> 7.6e-6 per product; bf16: factor 2 -> 1.6e-2 per product); calibrated
against fp64 references and thread counts by `calibrate.py` (honest errors were >10x smaller).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from offchain.workloads.base import (
    DTYPES,
    EPS,
    CompareResult,
    Kind,
    Output,
    check_choice,
    check_flops,
    check_inputs,
    check_int,
    check_keys,
    compare_outputs,
    deterministic,
    generator,
    spec_hash,
)

NAME = "matmul_chain"
MAX_N = 8192
MAX_K = 64
MAX_FLOPS = 10**13
FACTOR = {"float32": 64, "bfloat16": 2}


def _params(spec: dict) -> tuple[int, int, str]:
    p = spec.get("params", {})
    check_keys(p, {"n", "k", "dtype"})
    return check_int(p, "n", 1, MAX_N), check_int(p, "k", 2, MAX_K), check_choice(p, "dtype", tuple(FACTOR), "float32")


def flops(spec: dict) -> int:
    n, k, _ = _params(spec)
    return 2 * n**3 * (k - 1)


def validate(spec: dict, blobs: Mapping[str, bytes] | None = None) -> None:
    _params(spec)
    check_inputs(spec, (), blobs)
    check_flops(flops(spec), MAX_FLOPS, NAME)


def run(spec: dict, device: torch.device, compute_dtype: torch.dtype | None = None) -> torch.Tensor:
    n, k, dt = _params(spec)
    dtype = compute_dtype or DTYPES[dt]
    g = generator(spec["seed"])
    with deterministic():
        acc = None
        for _ in range(k):
            m = (torch.randn(n, n, generator=g) / n**0.5).to(dtype).to(device)
            acc = m if acc is None else acc @ m
        return acc.cpu()


def execute(spec: dict, device: torch.device, blobs: Mapping[str, bytes] | None = None) -> Output:
    n, k, dt = _params(spec)
    meta = {"spec": spec_hash(spec), "n": n, "k": k, "dtype": dt}
    return Output(NAME, {"product": run(spec, torch.device(device))}, meta)


def rtol(dtype: str, k: int) -> float:
    return FACTOR[dtype] * EPS[DTYPES[dtype]] * k


def compare(a: Output, b: Output) -> CompareResult:
    dt, k = b.meta.get("dtype", "float32"), int(b.meta.get("k", 2))
    return compare_outputs(a, b, {"product": (rtol(dt, k), "scale")})


KIND = Kind(NAME, validate, flops, execute, compare, __doc__ or "")
