"""The registry of deterministic job kinds: validate a spec, price it, run it, hash and compare
its output. Pure: no chain, no HTTP.

A spec is plain JSON::

    {"kind": "matmul_chain", "params": {...}, "seed": 7, "inputs": {"model": "<sha256 hex>"}, "meta": {...}}

(`inputs` and `meta` optional; `meta` is free-form and ignored by execution). API:

- `kinds()`, `get_kind(name)` -> `Kind`
- `validate(spec, blobs=None)` raises `SpecError` (with blobs, also checks inputs are uploaded)
- `compute_units(spec)` -> int: ``max(1, ceil(FLOPs / 10^9))``, i.e. 1 compute unit = 1 GFLOP,
  from the spec alone (never from timing)
- `execute(spec, device=None, blobs=None)` -> `Output` (CUDA when present unless `device` given)
- `output_bytes(out)`, `output_from_bytes(b)`, `result_hash(out)` -> bytes32 (sha256)
- `compare(claimed, reference)` -> `CompareResult(match, detail, max_abs_err, max_rel_err)`
- `spec_hash(spec)`, `blob_hash(bytes)`: sha256 hex content addresses

Kinds are found through the entry-point group ``gpunet.workloads`` (each entry point names a
`Kind` object); the built-ins below are used when entry points are missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from importlib import import_module
from importlib.metadata import entry_points

import torch

from offchain.workloads.base import (
    GFLOP,
    CompareResult,
    Kind,
    Output,
    SpecError,
    WorkloadError,
    blob_hash,
    check_top_level,
    compare_outputs,
    default_device,
    output_bytes,
    output_from_bytes,
    result_hash,
    spec_hash,
)

ENTRY_POINT_GROUP = "gpunet.workloads"
BUILTINS = {
    "matmul_chain": "offchain.workloads.matmul_chain:KIND",
    "mlp_train": "offchain.workloads.mlp_train:KIND",
    "torchscript_infer": "offchain.workloads.torchscript_infer:KIND",
    "toploc_generate": "offchain.workloads.toploc_generate:KIND",
}

_registry: dict[str, Kind] | None = None


def _load_ref(ref: str) -> Kind:
    mod, _, attr = ref.partition(":")
    return getattr(import_module(mod), attr)


def _load() -> dict[str, Kind]:
    global _registry
    if _registry is None:
        reg: dict[str, Kind] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                k = ep.load()
            except Exception:  # noqa: BLE001 - a broken plugin must not hide the others
                continue
            if isinstance(k, Kind):
                reg[ep.name] = k
        for name, ref in BUILTINS.items():
            reg.setdefault(name, _load_ref(ref))
        _registry = reg
    return _registry


def kinds() -> list[str]:
    return sorted(_load())


def get_kind(name: str) -> Kind:
    reg = _load()
    if name not in reg:
        raise SpecError(f"unknown job kind {name!r}; known kinds: {sorted(reg)}")
    return reg[name]


def register(kind: Kind) -> None:
    """Add a kind at run time (tests, plugins loaded by hand)."""
    _load()[kind.name] = kind


def validate(spec: dict, blobs: Mapping[str, bytes] | None = None) -> None:
    check_top_level(spec)
    get_kind(spec["kind"]).validate(spec, blobs)


def compute_units(spec: dict) -> int:
    validate(spec)
    return max(1, math.ceil(get_kind(spec["kind"]).flops(spec) / GFLOP))


def execute(spec: dict, device: torch.device | str | None = None, blobs: Mapping[str, bytes] | None = None) -> Output:
    validate(spec, blobs)
    dev = torch.device(device) if device is not None else default_device()
    return get_kind(spec["kind"]).execute(spec, dev, blobs or {})


def compare(claimed: Output, reference: Output) -> CompareResult:
    """Does a provider's `claimed` output match an honest `reference` re-execution?"""
    if claimed.kind != reference.kind:
        return CompareResult(False, f"kind {claimed.kind!r} != {reference.kind!r}", math.inf, math.inf)
    k = get_kind(reference.kind)
    if k.compare is None:
        return compare_outputs(claimed, reference, {})
    return k.compare(claimed, reference)


__all__ = [
    "ENTRY_POINT_GROUP",
    "GFLOP",
    "CompareResult",
    "Kind",
    "Output",
    "SpecError",
    "WorkloadError",
    "blob_hash",
    "compare",
    "compute_units",
    "execute",
    "get_kind",
    "kinds",
    "output_bytes",
    "output_from_bytes",
    "register",
    "result_hash",
    "spec_hash",
    "validate",
]
