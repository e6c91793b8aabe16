"""Dishonest job execution, on purpose: what a cheating provider would return instead of the
honest output. Used by `gpunet provider serve --cheat ...` for the tests, the demo and the
detection-rate measurements; an honest agent never calls this module.

Every cheat returns an `Output` with the honest output's *layout* (kind, metadata, tensor
names, shapes and dtypes), so it is caught only by comparing values against a re-execution,
never by a format check:

- ``wrong-output``: runs the job honestly, then moves a few entries of its largest float
  tensor by about the tensor's scale (or, for an all-integer output, bumps a few integers), as
  a buggy or tampered result would. Costs as much as honest work.
- ``skip-work``: does no work. Returns seeded noise of the right shapes: uniform token ids
  for integer outputs, N(0, 1) values for floats. For `torchscript_infer`, whose output
  shape depends on the model, it runs the model on one input row only and repeats that row's
  output for the whole batch (a "cheap run").
- ``cheaper-model``: does the work with less effort, per kind:

  * `matmul_chain`: float32 specs are multiplied in bfloat16 (about 2-16x cheaper on GPUs)
    and cast back to float32; bfloat16 specs multiply only the first ``max(1, k // 2)``
    matrices (half the chain).
  * `mlp_train`: trains in bfloat16 instead of float32 (same data, same steps).
  * `toploc_generate`: generates with the seeded model's weights cast to bfloat16 (a
    "quantized model"), committing top-k values cast back to float32.
  * `torchscript_infer`: runs the model and its float input in bfloat16, casting float
    outputs back to float32; a model that cannot run in bfloat16 falls back to ``skip-work``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import torch

from offchain import workloads
from offchain.workloads import toploc_generate
from offchain.workloads.base import Output, get_blob, spec_hash

JOB_CHEATS = ("wrong-output", "skip-work", "cheaper-model")
_WRONG_ENTRIES = 4


def _seed(spec: dict, what: str) -> int:
    return int.from_bytes(hashlib.sha256(f"gpunet/cheat/{what}/{spec_hash(spec)}".encode()).digest()[:8], "big") >> 1


def _gen(spec: dict, what: str) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(_seed(spec, what))


def perturb(out: Output, spec: dict) -> Output:
    """The wrong-output cheat applied to an honest output: a few entries of the largest float
    tensor moved by max(|t|, 1), far outside any kind's tolerance."""
    tensors = {k: v.clone() for k, v in out.tensors.items()}
    floats = [k for k in sorted(tensors) if tensors[k].is_floating_point() and tensors[k].numel()]
    g = _gen(spec, "wrong-output")
    if floats:
        name = max(floats, key=lambda k: tensors[k].numel())
        flat = tensors[name].reshape(-1)
        scale = max(float(flat.to(torch.float64).abs().max()), 1.0)
        for i in torch.randint(0, flat.numel(), (_WRONG_ENTRIES,), generator=g).tolist():
            flat[i] = float(flat[i]) + scale
    else:
        ints = [k for k in sorted(tensors) if tensors[k].numel() and tensors[k].dtype != torch.bool]
        if not ints:
            raise ValueError("wrong-output: the output has no tensor to perturb")
        flat = tensors[ints[0]].reshape(-1)
        for i in torch.randint(0, flat.numel(), (_WRONG_ENTRIES,), generator=g).tolist():
            flat[i] = flat[i] + 1
    return Output(out.kind, tensors, dict(out.meta))


def _noise(shape: tuple[int, ...], dtype: torch.dtype, g: torch.Generator, high: int = 2) -> torch.Tensor:
    if dtype.is_floating_point:
        return torch.randn(shape, generator=g).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).to(torch.bool)
    return torch.randint(0, high, shape, generator=g).to(dtype)


def skip_work(spec: dict, device: torch.device, blobs: Mapping[str, bytes]) -> Output:
    """Noise in the honest output's layout (see the module docstring)."""
    kind = spec["kind"]
    g = _gen(spec, "skip-work")
    h = spec_hash(spec)
    if kind == "matmul_chain":
        from offchain.workloads.matmul_chain import DTYPES, _params

        n, k, dt = _params(spec)
        return Output(kind, {"product": _noise((n, n), DTYPES[dt], g)}, {"spec": h, "n": n, "k": k, "dtype": dt})
    if kind == "mlp_train":
        from offchain.workloads.mlp_train import _dims, _params

        q = _params(spec)
        dims = _dims(q)
        tensors = {"loss_curve": torch.rand(q["steps"], generator=g)}
        for i, (a, b) in enumerate(zip(dims, dims[1:], strict=False)):
            tensors[f"w{i}"] = _noise((b, a), torch.float32, g)
            tensors[f"b{i}"] = _noise((b,), torch.float32, g)
        return Output(kind, tensors, {"spec": h, "dims": dims, "steps": q["steps"], "dtype": "float32"})
    if kind == "toploc_generate":
        from offchain.workloads.toploc_generate import _commit_steps, _params

        q = _params(spec)
        steps = _commit_steps(q)
        tensors = {
            "tokens": _noise((q["new_tokens"],), torch.int64, g, high=q["vocab"]),
            "commit_pos": torch.tensor([q["prompt_len"] - 1 + s - 1 for s in steps], dtype=torch.int64),
            "topk_idx": _noise((len(steps), q["topk"]), torch.int64, g, high=q["d_model"]),
            "topk_val": _noise((len(steps), q["topk"]), torch.float32, g),
        }
        return Output(kind, tensors, {"spec": h})
    if kind == "torchscript_infer":
        from offchain.workloads import torchscript_infer as ti

        _, _, rtol = ti._params(spec)
        model, x = ti._load(
            get_blob(blobs, spec["inputs"]["model"], "model"), get_blob(blobs, spec["inputs"]["input"], "input"), device
        )
        one, _ = ti._infer(model, x[:1], 1, device)
        tensors = {name: t.expand(x.shape[0], *t.shape[1:]).clone() for name, t in one.items()}
        return Output(kind, tensors, {"spec": h, "rtol": rtol})
    # A kind this module does not know: noise shaped like a cheap honest run is not available,
    # so run it honestly and return noise of the same layout (the cost is not saved, only the
    # result is wrong; fine for tests).
    honest = workloads.execute(spec, device, blobs)
    return Output(kind, {k: _noise(tuple(v.shape), v.dtype, g) for k, v in honest.tensors.items()}, honest.meta)


def cheaper_model(spec: dict, device: torch.device, blobs: Mapping[str, bytes]) -> Output:
    """The job done with less effort (per kind: see the module docstring)."""
    kind = spec["kind"]
    h = spec_hash(spec)
    if kind == "matmul_chain":
        from offchain.workloads import matmul_chain as mc

        n, k, dt = mc._params(spec)
        meta = {"spec": h, "n": n, "k": k, "dtype": dt}
        if dt == "float32":
            product = mc.run(spec, device, compute_dtype=torch.bfloat16).to(torch.float32)
        elif k // 2 >= 2:
            product = mc.run(dict(spec, params=dict(spec["params"], k=k // 2)), device)
        else:  # k in (2, 3): half the chain is its first matrix alone, drawn as `run` draws it
            g = mc.generator(spec["seed"])
            product = (torch.randn(n, n, generator=g) / math.sqrt(n)).to(torch.bfloat16)
        return Output(kind, {"product": product}, meta)
    if kind == "mlp_train":
        from offchain.workloads import mlp_train as mt

        q = mt._params(spec)
        meta = {"spec": h, "dims": mt._dims(q), "steps": q["steps"], "dtype": "float32"}
        return Output(kind, mt.run(spec, device, dtype=torch.bfloat16), meta)
    if kind == "toploc_generate":
        return toploc_generate.generate(spec, device, torch.bfloat16)
    if kind == "torchscript_infer":
        from offchain.workloads import torchscript_infer as ti

        _, bs, rtol = ti._params(spec)
        model, x = ti._load(
            get_blob(blobs, spec["inputs"]["model"], "model"), get_blob(blobs, spec["inputs"]["input"], "input"), device
        )
        try:
            model = model.to(torch.bfloat16)
            xb = x.to(torch.bfloat16) if x.is_floating_point() else x
            tensors, _ = ti._infer(model, xb, bs, device)
        except Exception:  # noqa: BLE001 - the model does not run in bf16: skip the work instead
            return skip_work(spec, device, blobs)
        # Float outputs go back to float32 (what an fp32 model returns), so the layout matches.
        tensors = {k: (v.to(torch.float32) if v.is_floating_point() else v) for k, v in tensors.items()}
        return Output(kind, tensors, {"spec": h, "rtol": rtol})
    # Unknown kind: no cheaper variant is known; the honest result perturbed stands in for it.
    return perturb(workloads.execute(spec, device, blobs), spec)


def execute_cheating(
    mode: str, spec: dict, device: torch.device | str, blobs: Mapping[str, bytes] | None = None
) -> Output:
    """What a provider running `--cheat mode` returns for `spec` (validated first, as honest)."""
    if mode not in JOB_CHEATS:
        raise ValueError(f"job cheat must be one of {', '.join(JOB_CHEATS)}, not {mode!r}")
    workloads.validate(spec, blobs)
    dev = torch.device(device)
    blobs = blobs or {}
    if mode == "wrong-output":
        return perturb(workloads.execute(spec, dev, blobs), spec)
    if mode == "skip-work":
        return skip_work(spec, dev, blobs)
    return cheaper_model(spec, dev, blobs)


__all__ = ["JOB_CHEATS", "cheaper_model", "execute_cheating", "perturb", "skip_work"]
