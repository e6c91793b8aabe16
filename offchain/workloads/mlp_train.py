"""`mlp_train`: `steps` of plain SGD on a small ReLU MLP, fp32, on seeded synthetic data.

Params: ``in_dim`` (1..4096), ``hidden`` (list of 0..8 widths, each 1..4096), ``out_dim``
(1..4096), ``samples`` (dataset size, 1..10^6, ``samples * in_dim <= 10^8``), ``batch``
(1..4096), ``steps`` (1..100000), ``lr`` (0 < lr <= 1, default 0.05).

Data (all drawn on CPU from the seed, then moved): X ~ N(0, 1); targets Y = tanh(X T1) T2 from
a random "teacher"; the student's weights ~ N(0, 1/fan_in), biases 0; the batch indices of
every step are drawn up front. Each step: MSE loss on the batch, backward, ``p -= lr * grad``.
Output tensors: ``loss_curve`` (steps, the loss before each update), ``w{i}``/``b{i}`` (final
weights/biases of layer i); meta: spec hash and the architecture.

FLOPs: ``6 * batch * sum(fan_in * fan_out)`` per step (forward 2, backward 4); cap 10^15.
Compare (fp32 is not bitwise across devices or summation orders, and training amplifies
differences): weights ``max|a-b| <= 1e-4 * max|b|`` per tensor; loss curve elementwise
``|a-b| <= 1e-4 * (|b| + 1e-3 max|b|)``. Honest re-executions (thread counts, fp64 reference
as a proxy for other float orders) stay well under it (see calibrate.py); one skipped step or
one changed weight moves the result far past it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from offchain.workloads.base import (
    CompareResult,
    Kind,
    Output,
    SpecError,
    check_float,
    check_flops,
    check_inputs,
    check_int,
    check_keys,
    compare_outputs,
    deterministic,
    generator,
    spec_hash,
)

NAME = "mlp_train"
MAX_DIM = 4096
MAX_LAYERS = 8
MAX_SAMPLES = 10**6
MAX_DATA = 10**8
MAX_STEPS = 100_000
MAX_FLOPS = 10**15
WEIGHT_RTOL = 1e-4
LOSS_RTOL = 1e-4


def _params(spec: dict) -> dict:
    p = spec.get("params", {})
    check_keys(p, {"in_dim", "hidden", "out_dim", "samples", "batch", "steps", "lr"})
    hidden = p.get("hidden", [])
    if not isinstance(hidden, list) or len(hidden) > MAX_LAYERS:
        raise SpecError(f"params.hidden must be a list of at most {MAX_LAYERS} layer widths, got {hidden!r}")
    for i, w in enumerate(hidden):
        check_int({f"hidden[{i}]": w}, f"hidden[{i}]", 1, MAX_DIM)
    q = {
        "in_dim": check_int(p, "in_dim", 1, MAX_DIM),
        "hidden": list(hidden),
        "out_dim": check_int(p, "out_dim", 1, MAX_DIM),
        "samples": check_int(p, "samples", 1, MAX_SAMPLES),
        "batch": check_int(p, "batch", 1, 4096),
        "steps": check_int(p, "steps", 1, MAX_STEPS),
        "lr": check_float(p, "lr", 0.0, 1.0, 0.05),
    }
    if q["lr"] <= 0:
        raise SpecError("params.lr must be > 0")
    if q["samples"] * q["in_dim"] > MAX_DATA:
        raise SpecError(f"params.samples * params.in_dim must be <= {MAX_DATA} (dataset too large)")
    return q


def _dims(q: dict) -> list[int]:
    return [q["in_dim"], *q["hidden"], q["out_dim"]]


def flops(spec: dict) -> int:
    q = _params(spec)
    d = _dims(q)
    return 6 * q["batch"] * q["steps"] * sum(a * b for a, b in zip(d, d[1:], strict=False))


def validate(spec: dict, blobs: Mapping[str, bytes] | None = None) -> None:
    _params(spec)
    check_inputs(spec, (), blobs)
    check_flops(flops(spec), MAX_FLOPS, NAME)


def run(
    spec: dict, device: torch.device, dtype: torch.dtype = torch.float32, skip_step: int | None = None
) -> dict[str, torch.Tensor]:
    """Train; `dtype` other than fp32 and `skip_step` exist only for calibration and cheat tests."""
    q = _params(spec)
    d = _dims(q)
    g = generator(spec["seed"])
    x = torch.randn(q["samples"], q["in_dim"], generator=g)
    t1 = torch.randn(q["in_dim"], 32, generator=g) / q["in_dim"] ** 0.5
    t2 = torch.randn(32, q["out_dim"], generator=g) / 32**0.5
    y = torch.tanh(x @ t1) @ t2
    ws = [(torch.randn(o, i, generator=g) / i**0.5) for i, o in zip(d, d[1:], strict=False)]
    idx = torch.randint(0, q["samples"], (q["steps"], q["batch"]), generator=g)
    with deterministic():
        x, y, idx = x.to(dtype).to(device), y.to(dtype).to(device), idx.to(device)
        params = []
        for w in ws:
            params.append(w.to(dtype).to(device).requires_grad_())
            params.append(torch.zeros(w.shape[0], dtype=dtype, device=device, requires_grad=True))
        losses = []
        lr = q["lr"]
        for s in range(q["steps"]):
            if s == skip_step:
                losses.append(losses[-1] if losses else torch.zeros((), dtype=dtype, device=device))
                continue
            h = x[idx[s]]
            for li in range(0, len(params), 2):
                h = torch.nn.functional.linear(h, params[li], params[li + 1])
                if li + 2 < len(params):
                    h = torch.relu(h)
            loss = torch.mean((h - y[idx[s]]) ** 2)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, gr in zip(params, grads, strict=True):
                    p.sub_(gr, alpha=lr)
            losses.append(loss.detach())
        out = {"loss_curve": torch.stack(losses).to(torch.float32).cpu()}
        for i in range(0, len(params), 2):
            out[f"w{i // 2}"] = params[i].detach().to(torch.float32).cpu()
            out[f"b{i // 2}"] = params[i + 1].detach().to(torch.float32).cpu()
    return out


def execute(spec: dict, device: torch.device, blobs: Mapping[str, bytes] | None = None) -> Output:
    q = _params(spec)
    meta = {"spec": spec_hash(spec), "dims": _dims(q), "steps": q["steps"], "dtype": "float32"}
    return Output(NAME, run(spec, torch.device(device)), meta)


def compare(a: Output, b: Output) -> CompareResult:
    tol = {name: (WEIGHT_RTOL, "scale") for name in b.tensors}
    tol["loss_curve"] = (LOSS_RTOL, "elementwise")
    return compare_outputs(a, b, tol)


KIND = Kind(NAME, validate, flops, execute, compare, __doc__ or "")
