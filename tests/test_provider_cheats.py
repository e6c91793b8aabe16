"""The job cheats of `gpunet provider serve --cheat ...` (offchain/provider/cheats.py) and the job
worker's state file (offchain/provider/store.py). No chain: real torch on the CPU.

Every cheat must keep the honest output's layout (so only a re-execution can catch it) and must
be caught by the kind's `compare` against an honest run.
"""

import io

import pytest
import torch

from offchain import workloads
from offchain.provider.cheats import JOB_CHEATS, execute_cheating
from offchain.provider.store import StateMismatch, WorkerStore
from offchain.workloads.base import blob_hash
from offchain.workloads.torchscript_infer import declared_gflops


def _model_blobs() -> tuple[dict, dict]:
    torch.manual_seed(0)
    model = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)))
    buf = io.BytesIO()
    torch.jit.save(model, buf)
    mb = buf.getvalue()
    buf = io.BytesIO()
    torch.save(torch.randn(64, 16), buf)
    xb = buf.getvalue()
    inputs = {"model": blob_hash(mb), "input": blob_hash(xb)}
    return inputs, {blob_hash(mb): mb, blob_hash(xb): xb}


INPUTS, BLOBS = _model_blobs()
SPECS = {
    "matmul_fp32": {"kind": "matmul_chain", "params": {"n": 48, "k": 3}, "seed": 1},
    "matmul_bf16": {"kind": "matmul_chain", "params": {"n": 48, "k": 4, "dtype": "bfloat16"}, "seed": 1},
    "mlp": {
        "kind": "mlp_train",
        "params": {"in_dim": 8, "hidden": [16], "out_dim": 2, "samples": 64, "batch": 16, "steps": 10},
        "seed": 2,
    },
    "torchscript": {
        "kind": "torchscript_infer",
        "params": {
            "gflops": declared_gflops(BLOBS[INPUTS["model"]], BLOBS[INPUTS["input"]], 32) * 1.01,
            "batch_size": 32,
        },
        "seed": 0,
        "inputs": INPUTS,
    },  # fmt: skip
    "toploc": {
        "kind": "toploc_generate",
        "params": {
            "vocab": 64,
            "d_model": 32,
            "layers": 2,
            "heads": 2,
            "prompt_len": 4,
            "new_tokens": 8,
            "commit_every": 4,
            "topk": 4,
        },
        "seed": 3,
    },  # fmt: skip
}


@pytest.mark.parametrize("mode", JOB_CHEATS)
@pytest.mark.parametrize("name", sorted(SPECS))
def test_cheat__same_layout__caught_by_compare(name, mode):
    spec = SPECS[name]
    honest = workloads.execute(spec, "cpu", BLOBS)
    cheat = execute_cheating(mode, spec, "cpu", BLOBS)
    assert cheat.kind == honest.kind and cheat.meta == honest.meta
    assert {k: (tuple(v.shape), v.dtype) for k, v in cheat.tensors.items()} == {
        k: (tuple(v.shape), v.dtype) for k, v in honest.tensors.items()
    }
    assert workloads.result_hash(cheat) != workloads.result_hash(honest)
    result = workloads.compare(cheat, honest)
    assert not result, result.detail
    # The output survives the wire format (what the agent stores and serves).
    back = workloads.output_from_bytes(workloads.output_bytes(cheat))
    assert workloads.result_hash(back) == workloads.result_hash(cheat)


def test_cheat__deterministic_and_validates_first():
    spec = SPECS["matmul_fp32"]
    a = execute_cheating("wrong-output", spec, "cpu")
    b = execute_cheating("wrong-output", spec, "cpu")
    assert workloads.result_hash(a) == workloads.result_hash(b)
    with pytest.raises(workloads.SpecError):
        execute_cheating("skip-work", {"kind": "matmul_chain", "params": {"n": 0, "k": 2}, "seed": 1}, "cpu")
    with pytest.raises(ValueError, match="job cheat must be one of"):
        execute_cheating("lazy", spec, "cpu")


def test_cli_cheat_list_matches_the_module():
    from offchain.cli import provider as cli

    assert cli.JOB_CHEATS == JOB_CHEATS


def test_worker_store__states_and_binding(tmp_path):
    path = tmp_path / "w.sqlite"
    s = WorkerStore(path)
    s.check_binding(31337, "0xAbC", "0xDef", "aa" * 32)
    s.check_binding(31337, "0xabc", "0xDEF", "AA" * 32)  # same binding, any case
    with pytest.raises(StateMismatch, match="use another --state-dir"):
        s.check_binding(1, "0xabc", "0xdef", "aa" * 32)
    with pytest.raises(StateMismatch, match="deployment block"):  # redeployed at the same addresses
        s.check_binding(31337, "0xabc", "0xdef", "bb" * 32)
    assert s.add_candidate(5) and not s.add_candidate(5)
    s.set_state(5, "accepting", machine_id=2)
    s.set_state(5, "executed", result_hex="ab" * 32)
    s.set_state(5, "submitted")
    row = s.job(5)
    assert row == {"job_id": 5, "state": "submitted", "machine_id": 2, "result_hex": "ab" * 32, "reason": None}
    s.set_meta("cursor", "17")
    s.add_machine(3)
    s.add_machine(3)
    s.close()
    s = WorkerStore(path)  # survives a restart
    assert s.get_meta("cursor") == "17" and s.machines() == [3] and s.job(5)["state"] == "submitted"
    assert [r["job_id"] for r in s.jobs_in("submitted", "running")] == [5]
    with pytest.raises(ValueError, match="unknown job state"):
        s.set_state(5, "bogus")
