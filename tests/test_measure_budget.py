"""offchain.benchmark.measure: matrix sizes chosen from a time budget.

Behaviour, not speed: the size choice is driven by fake timings (a pure `time_one`, or a simulated
device clock patched over `measure._timed`), so nothing here depends on how fast the machine is.
Matrices stay small (n <= 256) so the file runs in a couple of seconds on 2 cores.
"""

import pytest
import torch

from offchain.benchmark import measure as m


def cubic(seconds_at_256: float, calls: list[int] | None = None):
    """time_one for a device whose product takes seconds_at_256 * (n / 256)^3, logging sizes."""

    def time_one(n: int) -> float:
        if calls is not None:
            calls.append(n)
        return seconds_at_256 * (n / 256) ** 3

    return time_one


# ----------------------------------------------------------------------------- choose_size


def test_choose_size__climbs_to_largest_size_within_budget():
    calls: list[int] = []
    # 0.01 s at 256 -> 0.08 @ 512, 0.64 @ 1024: 1024 is over 0.25 s, predicted, so never timed.
    fits = m.choose_size((1024, 256, 2048, 512), cubic(0.01, calls), 0.25)
    assert [n for n, _ in fits] == [256, 512]
    assert fits[-1][1] == pytest.approx(0.08)
    assert calls == [256, 512]


def test_choose_size__fast_device_reaches_the_top_size():
    fits = m.choose_size(m.DEFAULT_SIZES["cpu"], cubic(1e-5), 0.25)
    assert fits[-1][0] == max(m.DEFAULT_SIZES["cpu"])


def test_choose_size__stops_when_timed_size_is_over_budget_despite_prediction():
    # Efficiency collapses with size (as bf16 without native support does): predicted 0.16 s at
    # 512, timed 2 s -> the climb keeps 256 and goes no further.
    times = {256: 0.02, 512: 2.0, 1024: 1.0}
    calls: list[int] = []
    fits = m.choose_size((256, 512, 1024), lambda n: calls.append(n) or times[n], 0.25)
    assert fits == [(256, 0.02)]
    assert calls == [256, 512]


def test_choose_size__smallest_over_budget_is_returned_alone():
    calls: list[int] = []
    fits = m.choose_size((256, 512), cubic(3.0, calls), 0.25)
    assert fits == [(256, 3.0)] and calls == [256]


def test_choose_size__single_candidate():
    assert m.choose_size((128,), cubic(100.0), 0.25)[0][0] == 128


# ----------------------------------------------------------------------------- simulated device

FLOPS = {torch.float32: 1e9, torch.bfloat16: 1e7}  # bf16 100x slower than fp32: no native bf16
COPY_BYTES_PER_S = 1e10


def simulated_timed(fn, iters, dev):
    """Seconds the simulated device takes for `iters` calls of `fn`, without running it.

    Reads the operands from the closure `measure` builds: a matmul `out` (n x n) or a copy `dst`.
    """
    cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ()), strict=True))
    if "out" in cells:
        out = cells["out"]
        return iters * 2 * out.shape[0] ** 3 / FLOPS[out.dtype]
    return iters * 2 * cells["dst"].numel() * cells["dst"].element_size() / COPY_BYTES_PER_S


@pytest.fixture
def sim(monkeypatch):
    monkeypatch.setattr(m, "_timed", simulated_timed)


def test_matmul_budgeted__cpu_picks_largest_fitting_size_and_explains(sim):
    # fp32 at 1 GFLOPS: 128 -> 4.2 ms, 256 -> 34 ms; 0.02 s budget stops at 128 (256 predicted 34 ms).
    tflops, n, note = m.matmul_budgeted("fp32", (64, 128, 256), torch.device("cpu"), 2, 0.01, 0.02)
    assert n == 128
    assert tflops == pytest.approx(1e9 / 1e12)
    assert note.startswith("fp32 measured at n=128: n=256 would take ~0.034 s a product (budget 0.02 s)")


def test_matmul_budgeted__top_size_has_no_note(sim):
    tflops, n, note = m.matmul_budgeted("fp32", (64, 128), torch.device("cpu"), 2, 0.01, 1.0)
    assert (n, note) == (128, None) and tflops == pytest.approx(1e-3)


def test_matmul_budgeted__smallest_over_budget_is_timed_once(sim):
    tflops, n, note = m.matmul_budgeted("bf16", (64, 128), torch.device("cpu"), 3, 0.01, 1e-3)
    assert n == 64 and tflops == pytest.approx(1e7 / 1e12)
    assert note.startswith("bf16 timed once at n=64")


def test_matmul_budgeted__over_budget_after_prediction_keeps_previous_size(monkeypatch):
    # Timed over budget at 128 although predicted within it: the figure comes from n=64's operands.
    def slow_at_128(fn, iters, dev):
        n = fn.__closure__[fn.__code__.co_freevars.index("out")].cell_contents.shape[0]
        return iters * (0.001 if n == 64 else 5.0)

    monkeypatch.setattr(m, "_timed", slow_at_128)
    tflops, n, note = m.matmul_budgeted("fp32", (64, 128, 256), torch.device("cpu"), 2, 0.01, 0.05)
    assert n == 64 and tflops == pytest.approx(2 * 64**3 / 0.001 / 1e12)
    assert "n=128" in note


def test_measure__slow_bf16_measured_smaller_with_note(sim):
    # Budget 0.06 s: fp32 at 1 GFLOPS fits 256 (34 ms); bf16 at 10 MFLOPS only 64 (52 ms; 128 -> 0.42 s).
    p = m.measure("cpu", sizes=(64, 128, 256), repeats=2, bandwidth_bytes=1 << 20, target_s=0.01, max_product_s=0.06)
    assert set(p.tflops) == {"fp32", "bf16"}
    assert p.matmul_n == {"fp32": 256, "bf16": 64}
    assert p.tflops["fp32"] == pytest.approx(1e-3) and p.tflops["bf16"] == pytest.approx(1e-5)
    bf16_notes = [x for x in p.notes if x.startswith("bf16")]
    assert len(bf16_notes) == 1
    note = bf16_notes[0]
    assert "n=64" in note and "n=128 would take" in note and "budget 0.06 s" in note
    assert "0.01x fp32" in note and "no native bf16" in note
    assert not any(x.startswith("fp32") for x in p.notes)  # fp32 reached the top size
    assert p.bandwidth_gbs == pytest.approx(COPY_BYTES_PER_S / 1e9) and p.bandwidth_bytes == 1 << 20


def test_measure__native_bf16_gets_no_note(sim, monkeypatch):
    monkeypatch.setitem(FLOPS, torch.bfloat16, 2e9)  # bf16 twice fp32, as with AVX512-BF16 / AMX
    p = m.measure("cpu", sizes=(64, 128), repeats=2, bandwidth_bytes=1 << 20, target_s=0.01, max_product_s=1.0)
    assert p.matmul_n == {"fp32": 128, "bf16": 128}
    assert [x for x in p.notes if "bf16" in x] == []


def test_measure__real_cpu_run_within_candidates():
    # Real timings: which size wins depends on the machine, but it is one of the candidates and both
    # dtypes are measured (a generous budget: all sizes are tiny).
    p = m.measure("cpu", sizes=(32, 64), repeats=1, bandwidth_bytes=1 << 20, target_s=0.002, max_product_s=1.0)
    assert set(p.tflops) == {"fp32", "bf16"} and all(v > 0 for v in p.tflops.values())
    assert set(p.matmul_n.values()) <= {32, 64}
