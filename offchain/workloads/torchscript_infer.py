"""`torchscript_infer`: batch inference of a user-supplied TorchScript model on a user-supplied
input tensor, both uploaded as content-addressed blobs.

Inputs: ``model`` (sha256 of a `torch.jit.save` file, <= 256 MiB) and ``input`` (sha256 of a
`torch.save`d tensor, <= 256 MiB, loaded with ``weights_only=True``; first dim is the batch).
Params: ``gflops`` (the FLOPs the user declares and pays for, 0 < gflops <= 10^6),
``batch_size`` (rows per forward call, 1..65536, default 256), ``rtol`` (optional tolerance
override for float outputs, 0..0.1).

The model runs under `torch.no_grad()` in eval mode; its FLOPs are counted with
`torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions, attention) and the job fails
if they exceed the declared ``gflops``, so `compute_units` stays a function of the spec alone.
`declared_gflops(model_bytes, input_bytes, batch_size)` helps a client fill it in.
The model must return a tensor, or a tuple/list of tensors (named ``out0``, ``out1``, ...).
Output: ``output`` (or ``out{i}``) concatenated over chunks; meta: spec hash, rtol override (counted FLOPs are
not in it: kernels chosen per device may count differently).

Compare: integer/bool outputs bitwise; float outputs ``max|a-b| <= rtol * max|b|`` per tensor,
default rtol: fp32/fp64 1e-4, fp16 1e-2, bf16 5e-2 (a few hundred ulps of the output scale:
room for other kernels and summation orders, far below what a different model produces).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping

import torch
from torch.utils.flop_counter import FlopCounterMode

from offchain.workloads.base import (
    GFLOP,
    CompareResult,
    Kind,
    Output,
    SpecError,
    WorkloadError,
    check_float,
    check_inputs,
    check_int,
    check_keys,
    compare_outputs,
    deterministic,
    get_blob,
    spec_hash,
)

NAME = "torchscript_infer"
MAX_GFLOPS = 10**6
MAX_BLOB = 256 * 2**20
DEFAULT_RTOL = {torch.float64: 1e-4, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 5e-2}


def _params(spec: dict) -> tuple[float, int, float | None]:
    p = spec.get("params", {})
    check_keys(p, {"gflops", "batch_size", "rtol"})
    gf = check_float(p, "gflops", 0.0, MAX_GFLOPS)
    if gf <= 0:
        raise SpecError("params.gflops must be > 0 (the FLOPs of the whole job, in units of 1e9)")
    bs = check_int(p, "batch_size", 1, 65536, 256)
    rtol = check_float(p, "rtol", 0.0, 0.1) if "rtol" in p else None
    return gf, bs, rtol


def flops(spec: dict) -> int:
    gf, _, _ = _params(spec)
    return math.ceil(gf * GFLOP)


def validate(spec: dict, blobs: Mapping[str, bytes] | None = None) -> None:
    _params(spec)
    check_inputs(spec, ("model", "input"), blobs)
    if blobs is not None:
        for name in ("model", "input"):
            if len(blobs[spec["inputs"][name]]) > MAX_BLOB:
                raise SpecError(f"input {name!r} is over the {MAX_BLOB // 2**20} MiB cap")


def _load(model_bytes: bytes, input_bytes: bytes, device: torch.device):
    try:
        model = torch.jit.load(io.BytesIO(model_bytes), map_location=device)
    except Exception as e:  # noqa: BLE001 - any load failure is the user's blob
        raise WorkloadError(f"model blob is not a loadable TorchScript file: {e}") from e
    model.eval()
    try:
        x = torch.load(io.BytesIO(input_bytes), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise WorkloadError(f"input blob is not a torch.save'd tensor: {e}") from e
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise WorkloadError("input blob must hold one tensor with a batch dimension")
    return model, x


def _infer(model, x: torch.Tensor, batch_size: int, device: torch.device) -> tuple[dict[str, torch.Tensor], int]:
    chunks: list[list[torch.Tensor]] = []
    single = True
    with deterministic(), torch.no_grad(), FlopCounterMode(display=False) as fc:
        for i in range(0, x.shape[0], batch_size):
            y = model(x[i : i + batch_size].to(device))
            if isinstance(y, torch.Tensor):
                ys = [y]
            elif isinstance(y, tuple | list) and y and all(isinstance(t, torch.Tensor) for t in y):
                ys, single = list(y), False
            else:
                raise WorkloadError("the model must return a tensor or a tuple/list of tensors")
            chunks.append([t.detach().cpu() for t in ys])
    outs = [torch.cat(parts) for parts in zip(*chunks, strict=True)]
    names = ["output"] if single else [f"out{i}" for i in range(len(outs))]
    return dict(zip(names, outs, strict=True)), int(fc.get_total_flops())


def declared_gflops(model_bytes: bytes, input_bytes: bytes, batch_size: int = 256) -> float:
    """The FLOPs (in GFLOP) to declare for this model and input: counted on CPU."""
    model, x = _load(model_bytes, input_bytes, torch.device("cpu"))
    _, counted = _infer(model, x, batch_size, torch.device("cpu"))
    return max(counted / GFLOP, 1e-9)


def execute(spec: dict, device: torch.device, blobs: Mapping[str, bytes]) -> Output:
    gf, bs, rtol = _params(spec)
    device = torch.device(device)
    model, x = _load(
        get_blob(blobs, spec["inputs"]["model"], "model"), get_blob(blobs, spec["inputs"]["input"], "input"), device
    )
    tensors, counted = _infer(model, x, bs, device)
    if counted > gf * GFLOP:
        raise WorkloadError(f"model used {counted / GFLOP:.4g} GFLOP, over the declared {gf} (params.gflops)")
    meta = {"spec": spec_hash(spec), "rtol": rtol}
    return Output(NAME, tensors, meta)


def compare(a: Output, b: Output) -> CompareResult:
    override = b.meta.get("rtol")
    tol = {}
    for name, t in b.tensors.items():
        if t.is_floating_point():
            tol[name] = (override if override is not None else DEFAULT_RTOL.get(t.dtype, 1e-4), "scale")
    return compare_outputs(a, b, tol)


KIND = Kind(NAME, validate, flops, execute, compare, __doc__ or "")
