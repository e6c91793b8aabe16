"""Makes the input files of examples/specs/torchscript_infer.json and writes that spec.

    python examples/make_inputs.py               # examples/inputs/tiny_mlp.pt + batch.pt, the spec
    python examples/make_inputs.py --out DIR     # DIR/inputs/..., DIR/specs/torchscript_infer.json

A `torchscript_infer` job names its inputs by sha256: ``model`` is a `torch.jit.save` file and
``input`` a `torch.save`d tensor (first dimension: the batch). The spec's ``params.gflops`` is
what the user declares and pays for: the FLOPs torch counts for this model and input, with 25%
headroom (a provider's run fails if the model needs more than declared).

The files are committed and are the reference: a TorchScript file's bytes depend on the torch
version and even on Python's hash seed (the order of a module's constants), so a rebuild holds
the same model and input under other hashes. Running this script rewrites the spec with the
hashes of the files it writes, so the three always agree.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
IN_DIM, HIDDEN, OUT_DIM, ROWS, BATCH = 16, 64, 4, 256, 64
HEADROOM = 1.25


def build() -> tuple[bytes, bytes]:
    """(model bytes, input bytes): a seeded two-layer MLP in TorchScript and a seeded batch."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(IN_DIM, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, OUT_DIM))
    mb = io.BytesIO()
    torch.jit.save(torch.jit.script(model.eval()), mb)
    xb = io.BytesIO()
    torch.save(torch.randn(ROWS, IN_DIM, generator=torch.Generator().manual_seed(1)), xb)
    return mb.getvalue(), xb.getvalue()


def spec_for(model: bytes, x: bytes) -> dict:
    from offchain.workloads.torchscript_infer import declared_gflops

    counted = declared_gflops(model, x, BATCH)
    gflops = math.ceil(counted * HEADROOM * 1e6) / 1e6  # in steps of 1 kFLOP
    return {
        "kind": "torchscript_infer",
        "params": {"gflops": gflops, "batch_size": BATCH},
        "seed": 0,
        "inputs": {"model": hashlib.sha256(model).hexdigest(), "input": hashlib.sha256(x).hexdigest()},
        "meta": {"class": "CPU", "note": "examples/make_inputs.py: a 16-64-4 MLP on 256 rows"},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE, help="examples/ folder to write (default: this one)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))  # run as a plain script from anywhere in the checkout
    model, x = build()
    spec = spec_for(model, x)
    files = {
        args.out / "inputs" / "tiny_mlp.pt": model,
        args.out / "inputs" / "batch.pt": x,
        args.out / "specs" / "torchscript_infer.json": (json.dumps(spec, indent=2) + "\n").encode(),
    }
    for p, data in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        print(f"wrote {p} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
