"""offchain.benchmark: class table, classification, challenge protocol pieces, CPU measurement.

Pure pytest (no chain): runs under `ape test` and plain pytest alike. Sizes are tiny so the
whole file stays within a few seconds on a 2-core machine.
"""

import hashlib
import json
import struct
from dataclasses import replace

import pytest
import torch

from offchain.benchmark import challenge as ch
from offchain.benchmark.classify import best_match, check_claim
from offchain.benchmark.gpu_classes import CLASS_BY_ID, GPU_CLASS_TABLE, get_class
from offchain.benchmark.profile import Profile
from offchain.params import GPU_CLASSES

GiB = 2**30
CPU, T4, A10, RTX4090, A100_SXM, H100_PCIE, H100_SXM, H200 = 1, 2, 4, 6, 8, 9, 10, 11
NONCE = bytes(range(32))
OTHER_NONCE = bytes(range(1, 33))


def make_profile(**kw) -> Profile:
    """An H100 SXM5 as REFERENCES measured it: bf16 at 80% of peak, copy at 90% of 3.35 TB/s."""
    base = dict(
        device_type="cuda",
        device="cuda:0",
        name="NVIDIA H100 80GB HBM3",
        tflops={"fp32": 53.0, "tf32": 380.0, "bf16": 792.0, "fp16": 795.0},
        bandwidth_gbs=3015.0,
        memory_total_bytes=81559 * 2**20,
        memory_free_bytes=80000 * 2**20,
        fp32_rel_error=3e-7,
        capability=(9, 0),
        pci_id="10de:2330",
    )
    base.update(kw)
    return Profile(**base)


def cpu_profile(**kw) -> Profile:
    base = dict(
        device_type="cpu",
        device="cpu",
        name="Intel Xeon",
        tflops={"fp32": 0.1, "bf16": 0.06},
        bandwidth_gbs=10.0,
        memory_total_bytes=24 * GiB,
        memory_free_bytes=20 * GiB,
        fp32_rel_error=3e-7,
    )
    base.update(kw)
    return Profile(**base)


# ----------------------------------------------------------------------------- class table


def test_table__matches_onchain_class_ids_and_names():
    assert [(c.class_id, c.name) for c in GPU_CLASS_TABLE] == [(c.class_id, c.name) for c in GPU_CLASSES]
    assert all(c.source for c in GPU_CLASS_TABLE)


def test_table__bf16_fp32_ratios_match_references():
    ratios = {c.name: c.bf16_fp32_ratio for c in GPU_CLASS_TABLE}
    assert ratios["H100 SXM5"] == pytest.approx(15, rel=0.05)
    assert ratios["A100 SXM4 80GB"] == pytest.approx(16, rel=0.01)
    assert ratios["A10"] == pytest.approx(4, rel=0.01) and ratios["L4"] == pytest.approx(4, rel=0.01)
    assert ratios["RTX 3090"] == pytest.approx(2, rel=0.01) and ratios["RTX 4090"] == pytest.approx(2, rel=0.01)
    assert ratios["CPU"] is None and ratios["T4"] is None


def test_get_class__by_id_name_and_unknown():
    assert get_class(10) is get_class("h100 sxm5") is get_class("10") is CLASS_BY_ID[10]
    with pytest.raises(KeyError):
        get_class(99)
    with pytest.raises(KeyError):
        get_class("B200")


# ----------------------------------------------------------------------------- classification


def test_check_claim__h100_profile_claims_h100__passes_clean():
    r = check_claim(make_profile(), H100_SXM)
    assert r.passed and not r.suspicious and r.reasons == []
    assert r.best_match.class_id == H100_SXM


def test_check_claim__cpu_profile_claims_h100__fails_naming_the_figure():
    r = check_claim(cpu_profile(), H100_SXM)
    assert not r.passed
    text = " | ".join(r.reasons)
    assert "bf16 matmul measured 0.06 TFLOPS" in text and "989" in text
    assert "copy bandwidth measured 10 GB/s" in text
    assert r.best_match.class_id == CPU


def test_check_claim__cpu_profile_claims_cpu__passes():
    r = check_claim(cpu_profile(), CPU)
    assert r.passed and not r.suspicious


def test_check_claim__below_cpu_floor__fails():
    r = check_claim(cpu_profile(tflops={"fp32": 0.005}), CPU)
    assert not r.passed and "fp32 matmul measured 0.005 TFLOPS" in r.reasons[0]
    assert best_match(cpu_profile(tflops={"fp32": 0.005})) is None


def test_check_claim__h100_claims_a100__passes_but_suspicious():
    r = check_claim(make_profile(), A100_SXM)
    assert r.passed and r.suspicious
    assert any("bf16 matmul measured 792 TFLOPS, above 105%" in x for x in r.reasons)


def test_check_claim__figure_above_105pct_of_claimed_class__suspicious():
    r = check_claim(make_profile(tflops={"fp32": 70.0, "bf16": 1100.0}), H100_SXM)
    assert r.passed and r.suspicious
    assert any("1,100 TFLOPS" in x and "above 105%" in x for x in r.reasons)


def test_check_claim__ratio_mismatch__fails():
    # bf16 figure of an H100 but fp32 of a GeForce-like 2x architecture.
    r = check_claim(make_profile(tflops={"fp32": 400.0, "bf16": 800.0}), H100_SXM)
    assert not r.passed
    assert len(r.reasons) == 1 and "bf16/fp32 ratio measured 2.0x" in r.reasons[0]


def test_check_claim__bandwidth_compute_ratio_off__fails():
    # An H100's compute with a memory figure 2.4x its spec: alone only "suspicious", but no
    # device of the class has that ratio.
    r = check_claim(make_profile(bandwidth_gbs=8000.0), H100_SXM)
    assert not r.passed
    assert any(x.startswith("bandwidth/compute ratio measured 10.10 GB/s per bf16 TFLOPS") for x in r.reasons)


def test_check_claim__bandwidth_compute_ratio__every_class_at_expected_efficiency_passes():
    for cls in GPU_CLASS_TABLE:
        if cls.is_floor:
            continue
        dtype = cls.primary_dtype
        tflops = {"fp32": 0.8 * cls.fp32_tflops}
        if cls.bf16_tflops is not None:
            tflops["bf16"] = 0.8 * cls.bf16_tflops
        p = make_profile(
            tflops=tflops, bandwidth_gbs=0.9 * cls.bandwidth_gbs, memory_total_bytes=cls.vram_bytes, pci_id=None
        )
        r = check_claim(p, cls.class_id)
        assert not any("bandwidth/compute" in x for x in r.reasons), (cls.name, dtype, r.reasons)


def test_check_claim__power_capped_h100_below_70pct__fails():
    r = check_claim(make_profile(tflops={"fp32": 35.0, "bf16": 600.0}), H100_SXM)
    assert not r.passed and "below 70%" in r.reasons[0] and "needs >= 692" in r.reasons[0]


def test_check_claim__low_bandwidth__fails():
    r = check_claim(make_profile(bandwidth_gbs=2000.0), H100_SXM)
    assert not r.passed and r.reasons == [
        "copy bandwidth measured 2,000 GB/s, below 70% of H100 SXM5's 3350 GB/s (needs >= 2,345)"
    ]


def test_check_claim__small_memory__fails():
    r = check_claim(make_profile(memory_total_bytes=40 * GiB), H100_SXM)
    assert not r.passed and "memory 40.0 GiB" in r.reasons[0]


def test_check_claim__fp32_with_tf32_error_signature__fails():
    r = check_claim(make_profile(fp32_rel_error=3e-4), H100_SXM)
    assert not r.passed and "not true fp32" in r.reasons[0]


def test_check_claim__pci_id_mismatch__flagged_not_failed():
    r = check_claim(make_profile(pci_id="10de:2331"), H100_SXM)
    assert r.passed and r.suspicious and "PCI id 10de:2331" in r.reasons[0]


def test_best_match__h200_profile__not_h100():
    h200 = make_profile(bandwidth_gbs=4300.0, memory_total_bytes=143771 * 2**20, pci_id="10de:2335")
    assert best_match(h200).class_id == H200
    assert best_match(make_profile()).class_id == H100_SXM  # 3 TB/s is below 70% of the H200's 4.8


def test_best_match__other_classes():
    a100 = make_profile(
        name="A100-SXM4-80GB",
        tflops={"fp32": 19.0, "bf16": 268.0},
        bandwidth_gbs=1800.0,
        memory_total_bytes=80 * GiB,
        pci_id="10de:20b2",
    )
    assert best_match(a100).class_id == A100_SXM
    rtx = make_profile(
        tflops={"fp32": 60.0, "bf16": 160.0}, bandwidth_gbs=950.0, memory_total_bytes=24 * GiB, pci_id=None
    )
    assert best_match(rtx).class_id == RTX4090


def test_check_claim__t4_without_bf16__judged_by_fp32():
    t4 = make_profile(
        tflops={"fp32": 7.0, "fp16": 50.0}, bandwidth_gbs=290.0, memory_total_bytes=15 * GiB, pci_id="10de:1eb8"
    )
    assert check_claim(t4, T4).passed
    r = check_claim(t4, A10)
    assert not r.passed and any("no bf16 matmul figure" in x for x in r.reasons)


def test_profile__json_roundtrip():
    p = make_profile(notes=("a note",))
    back = Profile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p


# ----------------------------------------------------------------------------- challenge


def test_derive_inputs__deterministic_and_nonce_bound():
    a1, b1 = ch.derive_inputs(NONCE, 64, "fp32")
    a2, b2 = ch.derive_inputs(NONCE, 64, torch.float32)
    a3, _ = ch.derive_inputs(OTHER_NONCE, 64, "fp32")
    assert torch.equal(a1, a2) and torch.equal(b1, b2) and not torch.equal(a1, b1)
    assert not torch.equal(a1, a3)
    assert a1.abs().max() <= 1.0
    ab, _ = ch.derive_inputs(NONCE, 64, "bf16")
    assert ab.dtype == torch.bfloat16 and torch.equal(ab, a1.to(torch.bfloat16))


def _serialize_reference(t: torch.Tensor) -> bytes:
    """The documented commit serialization, written out independently."""
    head = b"gpunet/bench/commit/v1" + str(t.dtype).encode() + b"\x00" + bytes([t.dim()])
    head += b"".join(struct.pack(">Q", d) for d in t.shape)
    return head + struct.pack(f"<{t.numel()}f", *t.reshape(-1).tolist())


def test_commit__deterministic_and_canonical():
    c = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    assert ch.commit(c) == ch.commit(c.clone()) == hashlib.sha256(_serialize_reference(c)).digest()
    # Layout does not matter, values/shape/dtype do.
    assert ch.commit(c.t().contiguous().t()) == ch.commit(c)
    assert ch.commit(c.reshape(4, 3)) != ch.commit(c)
    assert ch.commit(c.to(torch.float64)) != ch.commit(c)
    d = c.clone()
    d[2, 3] = torch.nextafter(d[2, 3], torch.tensor(100.0))
    assert ch.commit(d) != ch.commit(c)
    assert len(ch.commit(c.to(torch.bfloat16))) == 32


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_freivalds__honest_product__passes_across_seeds(dtype):
    a, b = ch.derive_inputs(NONCE, 192, dtype)
    c = ch.compute_product(a, b)
    assert all(ch.freivalds_check(a, b, c, seed=s) for s in range(5))


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_freivalds__single_wrong_entry__fails(dtype):
    a, b = ch.derive_inputs(NONCE, 192, dtype)
    c = ch.compute_product(a, b)
    typical = c.float().abs().mean().item()  # ~4 for n = 192
    for seed, (i, j) in enumerate([(0, 0), (17, 101), (191, 3)]):
        bad = c.clone()
        bad[i, j] += typical  # one entry off by one typical entry's size
        assert not ch.freivalds_check(a, b, bad, seed=seed)
        assert ch.freivalds_check(a, b, c, seed=seed)


def test_freivalds__fp32_small_error_caught_tf32_rejected():
    a, b = ch.derive_inputs(NONCE, 192, "fp32")
    c = ch.compute_product(a, b)
    bad = c.clone()
    bad[5, 7] += 0.01 * c.abs().mean()  # 1% of a typical entry
    assert not ch.freivalds_check(a, b, bad, seed=1)

    def tf32(x):  # drop the 13 low mantissa bits: what TF32 tensor cores see
        return (x.view(torch.int32) & ~0x1FFF).view(torch.float32)

    assert not ch.freivalds_check(a, b, tf32(a) @ tf32(b), seed=1)
    # A bf16-precision answer to an fp32 challenge fails too.
    assert not ch.freivalds_check(a, b, (a.bfloat16() @ b.bfloat16()).float(), seed=1)


def test_freivalds__garbage__fails():
    a, b = ch.derive_inputs(NONCE, 64, "bf16")
    c = ch.compute_product(a, b)
    assert not ch.freivalds_check(a, b, torch.zeros_like(c), seed=0)
    assert not ch.freivalds_check(a, b, torch.randn(64, 64).to(torch.bfloat16), seed=0)
    nan = c.clone()
    nan[3, 3] = float("nan")
    assert not ch.freivalds_check(a, b, nan, seed=0)
    assert not ch.freivalds_check(a, b, c[:63], seed=0)
    assert not ch.freivalds_check(a, b, 2 * c, seed=0)


def test_answer__verifies_for_its_nonce__replay_on_new_nonce_fails():
    ans = ch.answer_challenge(NONCE, 96, "bf16", "cpu")
    assert ch.verify_answer(NONCE, 96, "bf16", ans.result, ans.commitment, seed=b"verifier")
    # Replay: the same answer (and its commitment) offered for a fresh nonce.
    assert not ch.verify_answer(OTHER_NONCE, 96, "bf16", ans.result, ans.commitment, seed=b"verifier")
    # A result that does not match its commitment, or of the wrong dtype/shape.
    other = ch.answer_challenge(OTHER_NONCE, 96, "bf16", "cpu")
    assert not ch.verify_answer(NONCE, 96, "bf16", ans.result, other.commitment, seed=b"verifier")
    assert not ch.verify_answer(NONCE, 96, "fp32", ans.result, ans.commitment, seed=b"verifier")
    assert not ch.verify_answer(NONCE, 95, "bf16", ans.result, ans.commitment, seed=b"verifier")


def test_time_allowance__formula_and_monotonic():
    t = ch.time_allowance(H100_SXM, 8192, "bf16", 2.0)
    assert t == pytest.approx(2 * 8192**3 / (0.7 * 989e12) + 2.0)
    sizes = [256, 1024, 4096, 16384]
    assert all(
        ch.time_allowance(A100_SXM, m, "bf16", 1.0) < ch.time_allowance(A100_SXM, n, "bf16", 1.0)
        for m, n in zip(sizes, sizes[1:], strict=False)
    )
    # Faster classes get less time; more network allowance gives more.
    assert (
        ch.time_allowance(H100_SXM, 4096, "fp32", 0)
        < ch.time_allowance(A100_SXM, 4096, "fp32", 0)
        < ch.time_allowance(T4, 4096, "fp32", 0)
        < ch.time_allowance(CPU, 4096, "fp32", 0)
    )
    assert ch.time_allowance(H100_SXM, 4096, "bf16", 5) - ch.time_allowance(H100_SXM, 4096, "bf16", 0) == pytest.approx(
        5
    )
    assert ch.time_allowance(CPU, 1024, "fp32", 0) == pytest.approx(2 * 1024**3 / 0.01e12)
    with pytest.raises(ValueError):
        ch.time_allowance(T4, 1024, "bf16", 1.0)
    with pytest.raises(ValueError):
        ch.time_allowance(H100_SXM, 1024, "int8", 1.0)


# ----------------------------------------------------------------------------- memory proof

CLAIM = 1 << 20  # 1 MiB "VRAM"
CHUNK = 32 << 10  # 32 KiB chunks -> 27 chunks at fraction 0.85


def test_memory_proof__verifies_on_sampled_chunks():
    p = ch.memory_proof(NONCE, CLAIM, "cpu", chunk_bytes=CHUNK)
    assert p.n_chunks == 27 and p.working_set_bytes == 27 * CHUNK >= 0.8 * CLAIM
    idx = ch.sample_chunk_indices(b"after-root", p.n_chunks, 5)
    assert len(set(idx)) == 5 and idx == ch.sample_chunk_indices(b"after-root", p.n_chunks, 5)
    assert ch.verify_memory_proof(NONCE, p, p.root, idx, CLAIM, device="cpu")
    assert ch.verify_memory_proof(NONCE, p, p.root, range(p.n_chunks), CLAIM, device="cpu")


def test_memory_proof__forged_or_replayed_or_small__fails():
    p = ch.memory_proof(NONCE, CLAIM, "cpu", chunk_bytes=CHUNK)
    every = range(p.n_chunks)
    forged = replace(p, digests=p.digests[:3] + (b"\x00" * 32,) + p.digests[4:])
    assert not ch.verify_memory_proof(NONCE, forged, forged.root, [3], CLAIM)  # recomputed chunk differs
    assert not ch.verify_memory_proof(NONCE, forged, p.root, [0], CLAIM)  # digests do not match the root
    old = ch.memory_proof(OTHER_NONCE, CLAIM, "cpu", chunk_bytes=CHUNK)
    assert not ch.verify_memory_proof(NONCE, old, old.root, [0], CLAIM)  # replay of an old nonce
    small = ch.memory_proof(NONCE, CLAIM // 2, "cpu", chunk_bytes=CHUNK)
    assert not ch.verify_memory_proof(NONCE, small, small.root, every[:1], CLAIM)
    assert not ch.verify_memory_proof(NONCE, p, p.root, [p.n_chunks], CLAIM)


def test_memory_proof__chunk_fill_is_exact_int32():
    buf = torch.empty(CHUNK // 4, dtype=torch.int32)
    ch._fill_chunk(buf, NONCE, 0)
    again = torch.empty_like(buf)
    ch._fill_chunk(again, NONCE, 0)
    assert torch.equal(buf, again)
    assert buf.min() < -(2**30) and buf.max() > 2**30  # spread over the full int32 range
    ch._fill_chunk(again, NONCE, 1)
    assert not torch.equal(buf, again)


# ----------------------------------------------------------------------------- measurement


def test_measure__cpu_quick__sane_positive_numbers():
    from offchain.benchmark.measure import measure

    p = measure("cpu", sizes=(128,), repeats=2, bandwidth_bytes=8 << 20, target_s=0.01)
    assert p.device_type == "cpu" and p.cpu_count >= 1 and p.capability is None
    assert set(p.tflops) == {"fp32", "bf16"} and all(v > 0 for v in p.tflops.values())
    assert p.matmul_n == {"fp32": 128, "bf16": 128}
    assert p.bandwidth_gbs > 0 and p.bandwidth_bytes == 8 << 20
    assert 0 < p.memory_free_bytes <= p.memory_total_bytes
    assert p.fp32_rel_error is not None and p.fp32_rel_error < 1e-5
    assert p.elapsed_s < 10


def test_tf32_mode__restores_setting():
    from offchain.benchmark.measure import tf32_mode

    before = torch.backends.cuda.matmul.allow_tf32
    with tf32_mode(not before):
        assert torch.backends.cuda.matmul.allow_tf32 == (not before)
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_cli_bench__json(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from offchain import cli
    from offchain.benchmark import measure as measure_mod

    real = measure_mod.measure
    monkeypatch.setattr(
        measure_mod,
        "measure",
        lambda device=None: real(device, sizes=(128,), repeats=1, bandwidth_bytes=4 << 20, target_s=0.005),
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # where bench saves the profile `register` checks
    res = CliRunner().invoke(cli.cli, ["bench", "--json", "--device", "cpu", "--claim", "H100 SXM5"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["profile"]["device_type"] == "cpu" and out["profile"]["tflops"]["fp32"] > 0
    assert json.loads((tmp_path / "gpunet" / "bench.json").read_text())["device_type"] == "cpu"
    assert out["claim"]["passed"] is False and out["claim"]["reasons"]
