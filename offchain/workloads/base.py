"""Shared pieces of the workload kinds: spec checks, the `Output` container, its canonical
bytes, content hashes, and the dtype-aware tensor comparison.

Canonical output bytes (`output_bytes`), version 1::

    b"GPUNETWL1\\n" || u32_be(len(header)) || header || tensor bytes, in header order

`header` is compact, key-sorted JSON: ``{"kind", "meta", "tensors": [[name, dtype, shape], ...]}``
with tensors sorted by name; each tensor's bytes are its contiguous CPU storage, little-endian
(bf16 as its raw 16-bit pattern). `result_hash` is sha256 of those bytes.

Comparison (`compare_tensors`): shapes and dtypes must be equal; integer and bool tensors must
be equal exactly; NaN/inf positions must agree. For floats, with ``d = |a - b|``:

- mode ``"scale"``:       ``max(d) <= rtol * max(|b|)`` (error relative to the tensor's scale,
  robust for values near zero; `max_rel_err` reports ``max(d) / max(|b|)``);
- mode ``"elementwise"``: ``d <= rtol * |b| + rtol * 1e-3 * max(|b|)`` for every element
  (`max_rel_err` reports the worst ``d / (|b| + 1e-3 max|b|)``).

``rtol`` is chosen per kind as a multiple of the dtype's machine epsilon (see `EPS` and each
kind's docstring), calibrated by `python -m offchain.workloads.calibrate`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# cuBLAS needs this before its first use to run deterministically (no effect on CPU).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402

MAGIC = b"GPUNETWL1\n"
GFLOP = 10**9  # 1 compute unit = 1 GFLOP (10^9 floating-point operations), at least 1 per job
MAX_SEED = 2**63 - 1
HEX64 = re.compile(r"^[0-9a-f]{64}$")
TOP_LEVEL_KEYS = {"kind", "params", "seed", "inputs", "meta"}

DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
# Unit roundoff of each float dtype (machine epsilon: distance from 1.0 to the next value).
EPS = {
    torch.float64: 2.0**-52,
    torch.float32: 2.0**-23,
    torch.float16: 2.0**-10,
    torch.bfloat16: 2.0**-7,
}


class SpecError(ValueError):
    """A job spec is invalid; the message says what to fix."""


class WorkloadError(RuntimeError):
    """A valid spec failed while executing (bad blob, model over its declared FLOPs, ...)."""


@dataclass
class Output:
    """A job's result: named tensors (moved to CPU) plus small JSON-able metadata."""

    kind: str
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompareResult:
    match: bool
    detail: str
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0

    def __bool__(self) -> bool:
        return self.match


@dataclass(frozen=True)
class Kind:
    """One job kind. `flops(spec)` returns the FLOPs `compute_units` is derived from;
    `validate(spec, blobs)` checks params (top-level fields are checked by the registry)."""

    name: str
    validate: Callable[[dict, Mapping[str, bytes] | None], None]
    flops: Callable[[dict], int]
    execute: Callable[[dict, torch.device, Mapping[str, bytes]], Output]
    compare: Callable[[Output, Output], CompareResult] | None = None
    doc: str = ""


# --------------------------------------------------------------------------- hashing


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def spec_hash(spec: dict) -> str:
    """sha256 hex of the spec's canonical JSON (what the chain and outputs refer to)."""
    return hashlib.sha256(canonical_json(spec)).hexdigest()


def blob_hash(data: bytes) -> str:
    """Content address of an uploaded blob: sha256 hex."""
    return hashlib.sha256(data).hexdigest()


def get_blob(blobs: Mapping[str, bytes] | None, h: str, what: str) -> bytes:
    if blobs is None or h not in blobs:
        raise WorkloadError(f"input {what!r}: blob {h} not available")
    data = blobs[h]
    if blob_hash(data) != h:
        raise WorkloadError(f"input {what!r}: blob content does not hash to {h}")
    return data


# --------------------------------------------------------------------------- spec checks


def check_int(params: dict, name: str, lo: int, hi: int, default: int | None = None) -> int:
    if name not in params:
        if default is not None:
            return default
        raise SpecError(f"params.{name} is required (an integer in [{lo}, {hi}])")
    v = params[name]
    if isinstance(v, bool) or not isinstance(v, int):
        raise SpecError(f"params.{name} must be an integer in [{lo}, {hi}], got {v!r}")
    if not lo <= v <= hi:
        raise SpecError(f"params.{name} = {v} is out of range: must be in [{lo}, {hi}]")
    return v


def check_float(params: dict, name: str, lo: float, hi: float, default: float | None = None) -> float:
    if name not in params:
        if default is not None:
            return default
        raise SpecError(f"params.{name} is required (a number in [{lo}, {hi}])")
    v = params[name]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise SpecError(f"params.{name} must be a finite number in [{lo}, {hi}], got {v!r}")
    if not lo <= v <= hi:
        raise SpecError(f"params.{name} = {v} is out of range: must be in [{lo}, {hi}]")
    return float(v)


def check_choice(params: dict, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    if name not in params:
        if default is not None:
            return default
        raise SpecError(f"params.{name} is required (one of {list(choices)})")
    v = params[name]
    if v not in choices:
        raise SpecError(f"params.{name} must be one of {list(choices)}, got {v!r}")
    return v


def check_keys(params: dict, allowed: set[str]) -> None:
    extra = sorted(set(params) - allowed)
    if extra:
        raise SpecError(f"unknown params {extra}; allowed: {sorted(allowed)}")


def check_flops(flops: int, cap: int, kind: str) -> None:
    if flops > cap:
        raise SpecError(
            f"{kind}: job needs {flops / GFLOP:.3g} GFLOP, over the cap of {cap / GFLOP:.3g} GFLOP; make it smaller"
        )


def check_inputs(spec: dict, required: tuple[str, ...], blobs: Mapping[str, bytes] | None) -> None:
    inputs = spec.get("inputs", {})
    missing = [n for n in required if n not in inputs]
    if missing:
        raise SpecError(f"inputs {missing} are required (sha256 hex of the uploaded blob)")
    extra = sorted(set(inputs) - set(required))
    if extra:
        raise SpecError(f"unknown inputs {extra}; this kind takes {list(required)}")
    if blobs is not None:
        unknown = [f"{n}={inputs[n]}" for n in required if inputs[n] not in blobs]
        if unknown:
            raise SpecError(f"inputs not found in the blob store (upload them first): {unknown}")


def check_top_level(spec: Any) -> None:
    if not isinstance(spec, dict):
        raise SpecError(f"a spec is a JSON object, got {type(spec).__name__}")
    extra = sorted(set(spec) - TOP_LEVEL_KEYS)
    if extra:
        raise SpecError(f"unknown top-level fields {extra}; allowed: {sorted(TOP_LEVEL_KEYS)}")
    if not isinstance(spec.get("kind"), str):
        raise SpecError("spec.kind is required: a string naming the job kind (see workloads.kinds())")
    if not isinstance(spec.get("params", {}), dict):
        raise SpecError("spec.params must be an object")
    seed = spec.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SpecError(f"spec.seed is required: an integer in [0, 2^63 - 1], got {seed!r}")
    inputs = spec.get("inputs", {})
    if not isinstance(inputs, dict):
        raise SpecError("spec.inputs must be an object {name: sha256 hex}")
    for name, h in inputs.items():
        if not isinstance(h, str) or not HEX64.fullmatch(h):
            raise SpecError(f"spec.inputs.{name} must be a lowercase sha256 hex string (64 chars), got {h!r}")
    try:
        canonical_json(spec)
    except (TypeError, ValueError) as e:
        raise SpecError(f"spec must be plain JSON (no NaN/inf, no non-JSON types): {e}") from e


# --------------------------------------------------------------------------- execution helpers


def generator(seed: int, stream: int = 0) -> torch.Generator:
    """CPU generator for one named stream of a spec's seed (data is made on CPU, then moved)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int.from_bytes(hashlib.sha256(f"{seed}:{stream}".encode()).digest()[:8], "big") >> 1)
    return g


@contextlib.contextmanager
def deterministic():
    """Deterministic kernels, no TF32 (fp32 must mean fp32 on GPUs); restores the old settings."""
    old = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        yield
    finally:
        torch.use_deterministic_algorithms(old[0], warn_only=old[1])
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
            torch.backends.cudnn.deterministic,
        ) = old[2:]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --------------------------------------------------------------------------- serialization


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().to("cpu").contiguous()
    if t.dtype not in DTYPE_NAMES:
        raise WorkloadError(f"unsupported output dtype {t.dtype}")
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def output_bytes(out: Output) -> bytes:
    names = sorted(out.tensors)
    header = {
        "kind": out.kind,
        "meta": out.meta,
        "tensors": [[n, DTYPE_NAMES[out.tensors[n].dtype], list(out.tensors[n].shape)] for n in names],
    }
    hb = canonical_json(header)
    return MAGIC + struct.pack(">I", len(hb)) + hb + b"".join(_tensor_bytes(out.tensors[n]) for n in names)


def output_from_bytes(data: bytes) -> Output:
    """Inverse of `output_bytes` (for outputs downloaded from a provider)."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise WorkloadError("not a gpunet workload output (bad magic)")
    (n,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
    pos = len(MAGIC) + 4
    header = json.loads(data[pos : pos + n])
    pos += n
    tensors = {}
    for name, dt, shape in header["tensors"]:
        dtype = DTYPES[dt]
        numel = math.prod(shape)
        size = numel * torch.empty((), dtype=dtype).element_size()
        if pos + size > len(data):
            raise WorkloadError("truncated workload output")
        raw = torch.frombuffer(bytearray(data[pos : pos + size]), dtype=torch.uint8) if size else None
        t = raw.view(dtype).reshape(shape) if raw is not None else torch.empty(shape, dtype=dtype)
        tensors[name] = t
        pos += size
    if pos != len(data):
        raise WorkloadError("trailing bytes after workload output")
    return Output(kind=header["kind"], tensors=tensors, meta=header["meta"])


def result_hash(out: Output) -> bytes:
    """bytes32 committed on-chain: sha256 of `output_bytes`."""
    return hashlib.sha256(output_bytes(out)).digest()


# --------------------------------------------------------------------------- comparison


def compare_tensors(a: torch.Tensor, b: torch.Tensor, rtol: float, mode: str = "scale") -> CompareResult:
    """Compare claimed `a` with reference `b` (see module docstring)."""
    if a.dtype != b.dtype:
        return CompareResult(False, f"dtype {a.dtype} != {b.dtype}", math.inf, math.inf)
    if tuple(a.shape) != tuple(b.shape):
        return CompareResult(False, f"shape {tuple(a.shape)} != {tuple(b.shape)}", math.inf, math.inf)
    a, b = a.detach().cpu(), b.detach().cpu()
    if a.numel() == 0 or torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)):
        return CompareResult(True, "bitwise equal")
    if not a.is_floating_point():
        diff = int((a != b).sum())
        ad = float((a.to(torch.float64) - b.to(torch.float64)).abs().max())
        return CompareResult(False, f"{diff} elements differ (exact dtype {a.dtype})", ad, math.inf)
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    fa, fb = torch.isfinite(a64), torch.isfinite(b64)
    if not torch.equal(fa, fb) or not torch.equal(a64[~fa].nan_to_num(0.0), b64[~fb].nan_to_num(0.0)):
        return CompareResult(False, "non-finite values (nan/inf) differ", math.inf, math.inf)
    d = (a64[fa] - b64[fb]).abs()
    ref = b64[fb].abs()
    scale = float(ref.max()) if ref.numel() else 0.0
    max_abs = float(d.max()) if d.numel() else 0.0
    if mode == "scale":
        max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
        ok = max_abs <= rtol * scale
    elif mode == "elementwise":
        denom = ref + 1e-3 * scale
        rel = torch.where(denom > 0, d / denom.clamp_min(1e-300), torch.where(d > 0, math.inf, 0.0))
        max_rel = float(rel.max()) if rel.numel() else 0.0
        ok = max_rel <= rtol
    else:
        raise ValueError(f"unknown compare mode {mode!r}")
    detail = f"max_abs_err={max_abs:.3g} max_rel_err={max_rel:.3g} ({mode}) {'<=' if ok else '>'} rtol={rtol:.3g}"
    return CompareResult(ok, detail, max_abs, max_rel)


def compare_outputs(a: Output, b: Output, tolerances: Mapping[str, tuple[float, str]]) -> CompareResult:
    """Claimed `a` vs reference `b`: kind, meta and tensor names exactly; each tensor by
    `tolerances[name] = (rtol, mode)` (names absent from it must be bitwise equal)."""
    if a.kind != b.kind:
        return CompareResult(False, f"kind {a.kind!r} != {b.kind!r}", math.inf, math.inf)
    if canonical_json(a.meta) != canonical_json(b.meta):
        keys = sorted(k for k in set(a.meta) | set(b.meta) if a.meta.get(k) != b.meta.get(k))
        return CompareResult(False, f"metadata differs in {keys}", math.inf, math.inf)
    if sorted(a.tensors) != sorted(b.tensors):
        return CompareResult(False, f"tensor names {sorted(a.tensors)} != {sorted(b.tensors)}", math.inf, math.inf)
    worst_abs = worst_rel = 0.0
    details = []
    for name in sorted(a.tensors):
        rtol, mode = tolerances.get(name, (0.0, "scale"))
        r = compare_tensors(a.tensors[name], b.tensors[name], rtol, mode)
        worst_abs, worst_rel = max(worst_abs, r.max_abs_err), max(worst_rel, r.max_rel_err)
        if not r.match:
            return CompareResult(False, f"{name}: {r.detail}", worst_abs, worst_rel)
        details.append(f"{name}: {r.detail}")
    return CompareResult(True, "; ".join(details) or "no tensors", worst_abs, worst_rel)
