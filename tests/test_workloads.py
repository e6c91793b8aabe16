"""offchain.workloads: spec validation, compute units, deterministic execution, canonical
hashes, and `compare` against honest re-executions and tampered outputs. Pure: no chain."""

import copy
import io

import pytest
import torch

from offchain import workloads as W
from offchain.workloads import mlp_train
from offchain.workloads.base import Output

MM = {"kind": "matmul_chain", "params": {"n": 64, "k": 4, "dtype": "float32"}, "seed": 1}
MLP = {
    "kind": "mlp_train",
    "params": {"in_dim": 12, "hidden": [32, 16], "out_dim": 3, "samples": 256, "batch": 16, "steps": 50, "lr": 0.05},
    "seed": 2,
}


@pytest.fixture
def threads():
    old = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(old)


def _tiny(seed: int, width: int = 32):
    torch.manual_seed(seed)
    return torch.jit.script(torch.nn.Sequential(torch.nn.Linear(8, width), torch.nn.Tanh(), torch.nn.Linear(width, 5)))


def _blob(obj, jit=False) -> bytes:
    buf = io.BytesIO()
    (torch.jit.save if jit else torch.save)(obj, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def ts():
    model, other = _blob(_tiny(0), jit=True), _blob(_tiny(1), jit=True)
    x = _blob(torch.randn(40, 8, generator=torch.Generator().manual_seed(3)))
    blobs = {W.blob_hash(b): b for b in (model, other, x)}
    spec = {
        "kind": "torchscript_infer",
        "params": {"gflops": 0.001, "batch_size": 16},
        "seed": 0,
        "inputs": {"model": W.blob_hash(model), "input": W.blob_hash(x)},
    }
    return spec, blobs, W.blob_hash(other)


def test_registry_lists_builtins_from_entry_points():
    assert {"matmul_chain", "mlp_train", "torchscript_infer"} <= set(W.kinds())
    assert W.get_kind("mlp_train").name == "mlp_train"
    with pytest.raises(W.SpecError, match="unknown job kind 'nope'.*known kinds"):
        W.get_kind("nope")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.update(kind="nope"), "unknown job kind"),
        (lambda s: s.pop("seed"), "spec.seed is required"),
        (lambda s: s.update(seed=-1), "spec.seed is required"),
        (lambda s: s.update(extra=1), "unknown top-level fields"),
        (lambda s: s["params"].pop("n"), r"params.n is required"),
        (lambda s: s["params"].update(n="64"), r"params.n must be an integer"),
        (lambda s: s["params"].update(n=10**6), r"params.n = 1000000 is out of range"),
        (lambda s: s["params"].update(dtype="float8"), r"params.dtype must be one of"),
        (lambda s: s["params"].update(bogus=1), r"unknown params \['bogus'\]"),
        (lambda s: s["params"].update(n=8192, k=64), "over the cap"),
        (lambda s: s.update(inputs={"x": "zz"}), "sha256 hex"),
        (lambda s: s.update(inputs={"x": "a" * 64}), r"unknown inputs \['x'\]"),
    ],
)
def test_validate_rejects_bad_specs(mutate, message):
    spec = copy.deepcopy(MM)
    mutate(spec)
    with pytest.raises(W.SpecError, match=message):
        W.validate(spec)


def test_validate_mlp_and_inputs(ts):
    bad = copy.deepcopy(MLP)
    bad["params"]["hidden"] = [32] * 9
    with pytest.raises(W.SpecError, match="at most 8 layer widths"):
        W.validate(bad)
    bad["params"]["hidden"] = [0]
    with pytest.raises(W.SpecError, match=r"hidden\[0\] = 0 is out of range"):
        W.validate(bad)
    bad = copy.deepcopy(MLP)
    bad["params"].update(steps=100_000, batch=4096, hidden=[4096] * 8)
    with pytest.raises(W.SpecError, match="over the cap"):
        W.validate(bad)
    spec, blobs, _ = ts
    W.validate(spec, blobs)
    with pytest.raises(W.SpecError, match="not found in the blob store"):
        W.validate(spec, {})
    missing = copy.deepcopy(spec)
    del missing["inputs"]["model"]
    with pytest.raises(W.SpecError, match=r"inputs \['model'\] are required"):
        W.validate(missing)
    with pytest.raises(W.SpecError, match="params.gflops is required"):
        W.validate({**spec, "params": {}})


def test_compute_units_from_spec_alone(ts):
    big = {"kind": "matmul_chain", "params": {"n": 4096, "k": 3}, "seed": 0}
    assert W.compute_units(big) == -(-2 * 4096**3 * 2 // 10**9)  # 275 GFLOP, rounded up
    assert W.compute_units(MM) == 1  # at least one unit
    assert W.compute_units({**big, "seed": 99}) == W.compute_units(big)  # seed does not change the price
    mlp = copy.deepcopy(MLP)
    mlp["params"].update(steps=10_000, batch=1024, hidden=[1024, 1024], in_dim=1024)
    expected = 6 * 1024 * 10_000 * (1024 * 1024 * 2 + 1024 * 3)
    assert W.compute_units(mlp) == -(-expected // 10**9)
    spec, _, _ = ts
    assert W.compute_units({**spec, "params": {"gflops": 12.5}}) == 13


def test_execute_is_deterministic_and_hash_is_canonical():
    a, b = W.execute(MM, "cpu"), W.execute(MM, "cpu")
    assert W.result_hash(a) == W.result_hash(b) and len(W.result_hash(a)) == 32
    back = W.output_from_bytes(W.output_bytes(a))
    assert W.result_hash(back) == W.result_hash(a)
    assert W.result_hash(W.execute({**MM, "seed": 2}, "cpu")) != W.result_hash(a)
    bf = W.execute({**MM, "params": {**MM["params"], "dtype": "bfloat16"}}, "cpu")
    assert bf.tensors["product"].dtype == torch.bfloat16
    assert W.result_hash(W.output_from_bytes(W.output_bytes(bf))) == W.result_hash(bf)


def test_matmul_compare_honest_and_tampered(threads):
    a = W.execute(MM, "cpu")
    threads(1)
    b = W.execute(MM, "cpu")
    r = W.compare(b, a)
    assert r.match, r.detail
    # an honest result computed in another float order (fp64 then rounded) is still accepted
    from offchain.workloads.matmul_chain import run

    ref = Output(a.kind, {"product": run(MM, torch.device("cpu"), torch.float64).float()}, a.meta)
    assert W.compare(ref, a).match
    bad = copy.deepcopy(a)
    bad.tensors["product"][3, 5] += 1e-3 * float(a.tensors["product"].abs().max())
    r = W.compare(bad, a)
    assert not r.match and "product" in r.detail and r.max_rel_err > 1e-4
    wrong_meta = Output(a.kind, a.tensors, {**a.meta, "k": 5})
    assert not W.compare(wrong_meta, a).match


def test_mlp_train_honest_threads_and_tampering(threads):
    a = W.execute(MLP, "cpu")
    assert a.tensors["loss_curve"].shape == (50,)
    assert float(a.tensors["loss_curve"][-5:].mean()) < float(a.tensors["loss_curve"][:5].mean())  # it learns
    threads(1)
    b = W.execute(MLP, "cpu")
    threads(2)
    assert W.compare(b, a).match
    ref64 = Output(a.kind, mlp_train.run(MLP, torch.device("cpu"), torch.float64), a.meta)
    r = W.compare(ref64, a)
    assert r.match and r.max_rel_err < mlp_train.WEIGHT_RTOL / 10, r.detail
    # one weight changed
    bad = copy.deepcopy(a)
    bad.tensors["w1"][0, 0] += 0.01
    r = W.compare(bad, a)
    assert not r.match and "w1" in r.detail
    # a skipped training step (loss curve padded to the right length)
    skipped = Output(a.kind, mlp_train.run(MLP, torch.device("cpu"), skip_step=25), a.meta)
    assert not W.compare(skipped, a).match
    # fewer steps claimed as the full job
    short = Output(a.kind, W.execute({**MLP, "params": {**MLP["params"], "steps": 49}}, "cpu").tensors, a.meta)
    assert not W.compare(short, a).match


def test_torchscript_infer(ts, threads):
    spec, blobs, other = ts
    a = W.execute(spec, "cpu", blobs)
    assert a.tensors["output"].shape == (40, 5)
    threads(1)
    b = W.execute(spec, "cpu", blobs)
    assert W.result_hash(a) == W.result_hash(b) and W.compare(b, a).match
    # a different model: same shapes, different numbers
    cheap = W.execute({**spec, "inputs": {**spec["inputs"], "model": other}}, "cpu", blobs)
    cheap.meta = a.meta
    r = W.compare(cheap, a)
    assert not r.match and "output" in r.detail
    # blobs are checked against their content address; FLOPs against the declaration
    with pytest.raises(W.WorkloadError, match="does not hash"):
        W.execute(spec, "cpu", {**blobs, spec["inputs"]["model"]: b"junk"})
    with pytest.raises(W.WorkloadError, match="over the declared"):
        W.execute({**spec, "params": {"gflops": 1e-7, "batch_size": 16}}, "cpu", blobs)


def test_compare_rejects_kind_and_shape_mismatch():
    a = W.execute(MM, "cpu")
    assert not W.compare(Output("mlp_train", a.tensors, a.meta), a).match
    half = Output(a.kind, {"product": a.tensors["product"][:10]}, a.meta)
    assert "shape" in W.compare(half, a).detail


TOPLOC = {
    "kind": "toploc_generate",
    "params": {
        "vocab": 97,
        "d_model": 32,
        "layers": 2,
        "heads": 4,
        "prompt_len": 6,
        "new_tokens": 20,
        "commit_every": 8,
    },
    "seed": 5,
}


def test_toploc_generate_and_verify_by_prefill(threads):
    from offchain.workloads import toploc_generate as tg

    a = W.execute(TOPLOC, "cpu")
    assert a.tensors["tokens"].shape == (20,) and a.tensors["topk_idx"].shape == (3, 8)  # commits at 8, 16, 20
    threads(1)
    b = W.execute(TOPLOC, "cpu")
    assert W.result_hash(a) == W.result_hash(b) and W.compare(b, a).match
    r = tg.verify(TOPLOC, a)
    assert r.match, r.detail
    forged = copy.deepcopy(a)
    forged.tensors["tokens"][10] = (int(a.tensors["tokens"][10]) + 1) % 97
    assert not tg.verify(TOPLOC, forged).match
    forged = copy.deepcopy(a)
    forged.tensors["topk_val"][1, 0] += 0.05
    assert not tg.verify(TOPLOC, forged).match
    with pytest.raises(W.SpecError, match="must divide"):
        W.validate({**TOPLOC, "params": {**TOPLOC["params"], "heads": 3}})
