"""examples/specs/: every example job spec is valid with its input files and runs on a CPU in
seconds, the way a provider runs it. Pure: no chain, no HTTP.

Each spec goes through what `gpunet job submit SPEC --blob FILE` checks (`sdk.load_spec`,
`sdk.read_blob_files`, `sdk.check_spec`), then through the provider's path: the spec and its
inputs stored in a `BlobStore` as uploaded (the spec as canonical JSON under its hash), the
spec read back and validated against the store, `workloads.execute` on CPU, the output's
canonical bytes and hash; the user's local re-execution (`gpunet job result --verify`) must
then match it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from offchain import workloads
from offchain.client import sdk
from offchain.provider.blobs import BlobStore
from offchain.workloads.base import canonical_json

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPECS = sorted((EXAMPLES / "specs").glob("*.json"))
INPUTS = sorted(p for p in (EXAMPLES / "inputs").glob("*") if p.is_file())
# "A few seconds" on a CPU; generous, as the suite may share the machine with anvil and agents.
MAX_SECONDS = 10.0


def _input_files(spec: dict) -> list[Path]:
    """The files in examples/inputs/ the spec names by sha256 (what to pass as --blob)."""
    by_hash = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in INPUTS}
    wanted = spec.get("inputs", {})
    missing = {name: h for name, h in wanted.items() if h not in by_hash}
    assert not missing, f"inputs not in examples/inputs/ (run examples/make_inputs.py): {missing}"
    return [by_hash[h] for h in wanted.values()]


def test_one_example_per_registered_kind():
    from importlib.metadata import entry_points

    # The kinds the package ships (tests may register probes of their own in the same process).
    shipped = sorted(ep.name for ep in entry_points(group="gpunet.workloads"))
    kinds = [sdk.load_spec(p)["kind"] for p in SPECS]
    assert sorted(kinds) == shipped, f"examples/specs/ has {sorted(kinds)}"
    assert set(shipped) <= set(workloads.kinds())
    for p in SPECS:
        assert p.stem == sdk.load_spec(p)["kind"], f"{p.name}: name the file after its kind"


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_example_spec__valid_with_its_blobs__and_runs_on_cpu_like_a_provider(path, tmp_path):
    # What `gpunet job submit` checks before anything reaches the chain.
    spec = sdk.load_spec(path)
    blobs = sdk.read_blob_files(_input_files(spec))
    units = sdk.check_spec(spec, blobs)
    assert units == workloads.compute_units(spec) >= 1
    assert sdk.spec_class(spec, None) == 1, "examples are sized for the CPU class"

    # The provider's side: the uploads in its blob store, the spec read back by hash.
    store = BlobStore(tmp_path / "blobs")
    spec_hex = store.put(canonical_json(spec))
    assert spec_hex == workloads.spec_hash(spec)
    for h, data in blobs.items():
        assert store.put(data, expected=h) == h
    stored = json.loads(store.get(spec_hex))
    workloads.validate(stored, store.mapping())

    t0 = time.perf_counter()
    out = workloads.execute(stored, "cpu", store.mapping())
    elapsed = time.perf_counter() - t0
    assert elapsed < MAX_SECONDS, f"{path.name} took {elapsed:.1f} s on CPU: make it smaller"
    data = workloads.output_bytes(out)
    assert hashlib.sha256(data).digest() == workloads.result_hash(out)
    assert out.tensors and all(t.numel() for t in out.tensors.values())

    # The user's check of the downloaded result: a re-execution here matches it.
    claimed = workloads.output_from_bytes(data)
    reference = workloads.execute(spec, "cpu", blobs)
    assert workloads.compare(claimed, reference).match


def test_blob_flags_are_checked():
    """A spec with inputs needs its files; a stray --blob is refused (the README's commands)."""
    with_inputs = [p for p in SPECS if sdk.load_spec(p).get("inputs")]
    assert with_inputs, "no example spec takes input blobs"
    spec = sdk.load_spec(with_inputs[0])
    with pytest.raises(sdk.ClientError, match="pass each input file with --blob FILE"):
        sdk.check_spec(spec, {})
    stray = sdk.read_blob_files([EXAMPLES / "specs" / "matmul_chain.json"])
    with pytest.raises(sdk.ClientError, match="not named in the spec's inputs"):
        sdk.check_spec(spec, {**sdk.read_blob_files(_input_files(spec)), **stray})


def test_make_inputs__writes_a_consistent_spec__with_the_committed_model(tmp_path):
    """examples/make_inputs.py writes inputs and a spec naming them; the rebuilt model computes
    what the committed one does (its bytes may differ: see the script's docstring)."""
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "make_inputs.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    spec = sdk.load_spec(tmp_path / "specs" / "torchscript_infer.json")
    blobs = sdk.read_blob_files(sorted((tmp_path / "inputs").iterdir()))
    sdk.check_spec(spec, blobs)
    rebuilt = workloads.execute(spec, "cpu", blobs)
    committed = sdk.load_spec(EXAMPLES / "specs" / "torchscript_infer.json")
    assert spec["params"] == committed["params"]
    reference = workloads.execute(committed, "cpu", sdk.read_blob_files(_input_files(committed)))
    assert rebuilt.tensors.keys() == reference.tensors.keys()
    for name, t in reference.tensors.items():
        assert torch.equal(rebuilt.tensors[name], t), name
