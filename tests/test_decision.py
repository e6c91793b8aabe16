"""The hardware decision rule (offchain/benchmark/decision.py), the challenge sizes from the time
budget (offchain/oracle/challenger.py) and the oracle's back-off (offchain/oracle/hwschedule.py).

Pure: no HTTP, no chain; the schedule runs on a fake clock.
"""

import pytest

from offchain.benchmark import decision as dc
from offchain.benchmark.gpu_classes import GPU_CLASS_TABLE
from offchain.oracle import challenger as chg
from offchain.oracle.hwschedule import HardwareSchedule

A = 1.0


@pytest.mark.parametrize(
    ("times", "verdict"),
    [
        ([0.4], dc.PASS),  # fast at once
        ([None, 0.9], dc.PASS),  # one over, then fast: best of k
        ([1.5, 1.9, 0.99], dc.PASS),
        ([None, None, None], dc.FAIL),  # every round over the fail line
        ([2.01, None, 2.5], dc.FAIL),
        ([1.2, None, None], dc.INCONCLUSIVE),  # one slow round is not evidence of a lie
        ([1.5, 1.6, 1.9], dc.INCONCLUSIVE),
        ([None, None], dc.INCONCLUSIVE),  # not enough rounds yet
        ([2.0, 2.0, 2.0], dc.INCONCLUSIVE),  # exactly on the line is not over it
    ],
)
def test_timing_verdict(times, verdict):
    got, why = dc.timing_verdict(times, A)
    assert got == verdict, why


def test_timing_verdict__reasons_name_the_numbers():
    _, why = dc.timing_verdict([None, 2.5, None], A)
    assert why == "all 3 rounds over 2x the allowance (best 2.500s, allowed 1.000s, fail line 2.000s)"
    _, why = dc.timing_verdict([1.5, 1.7, 1.6], A)
    assert "best 1.500s of 3 round(s)" in why and "fail line 2.000s" in why


def test_more_rounds_needed__stops_at_the_first_fast_round_or_k():
    assert dc.more_rounds_needed([], A)
    assert not dc.more_rounds_needed([0.5], A)
    assert dc.more_rounds_needed([None, 1.5], A)
    assert not dc.more_rounds_needed([None, 1.5, None], A)
    assert dc.more_rounds_needed([None] * 4, A, rounds=5)


def test_bad_rule_parameters():
    for kw in ({"rounds": 0}, {"fail_factor": 1.0}):
        with pytest.raises(ValueError):
            dc.timing_verdict([0.1], A, **kw)
    with pytest.raises(ValueError):
        dc.timing_verdict([0.1], 0.0)


def test_binomial_upper_bound():
    assert dc.binomial_upper_95(0, 200) == pytest.approx(1 - 0.05 ** (1 / 200), rel=1e-6)  # ~3/n
    assert dc.binomial_upper_95(0, 200) < 0.015
    assert dc.binomial_upper_95(5, 10) > 0.5
    assert dc.binomial_upper_95(0, 0) == 1.0
    rates = dc.ErrorRates(challenges=300, passed=297, failed=0, inconclusive=3)
    assert rates.fail_rate == 0 and rates.pass_rate == 0.99 and rates.fail_upper_95 < 0.01


# ----------------------------------------------------------------------------- sizes from the budget


def test_sizes_from_the_time_budget():
    assert chg.default_challenge("CPU") == (1024, "fp32")
    for cls in GPU_CLASS_TABLE:
        if cls.is_floor:
            continue
        n, dtype = chg.default_challenge(cls)
        assert dtype == cls.primary_dtype
        a = chg.round_allowance(cls, n, dtype)
        assert dc.FAIL_FACTOR * a <= chg.ROUND_BUDGET_S  # the fail line fits the budget...
        if n < chg.GPU_SIZES[-1]:  # ...and the next size up would not
            bigger = chg.GPU_SIZES[chg.GPU_SIZES.index(n) + 1]
            assert dc.FAIL_FACTOR * chg.round_allowance(cls, bigger, dtype) > chg.ROUND_BUDGET_S
    # A smaller budget gives smaller challenges; a slow link (network allowance) too.
    assert chg.default_challenge("H100 SXM5", budget_s=1.0)[0] < chg.default_challenge("H100 SXM5")[0]
    assert chg.default_challenge("T4", network_allowance_s=1.5)[0] < chg.default_challenge("T4")[0]


def test_allowance_parts():
    # A = compute at the class floor + network + per-element overhead (CPU 100 ns, GPU 20 ns).
    assert chg.round_allowance("CPU", 1024, "fp32") == pytest.approx(2 * 1024**3 / 0.01e12 + 0.25 + 100e-9 * 1024**2)
    h100 = chg.round_allowance("H100 SXM5", 8192, "bf16", network_allowance_s=0.5)
    assert h100 == pytest.approx(2 * 8192**3 / (0.7 * 989e12) + 0.5 + 20e-9 * 8192**2)


# ----------------------------------------------------------------------------- back-off


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_schedule__inconclusive_backs_off_doubling_then_a_verdict_resets():
    clock = Clock()
    hw = HardwareSchedule(retry_s=30, max_backoff_s=100, clock=clock)
    assert hw.due(7)
    assert hw.record(7, 0, "inconclusive") == 30
    assert not hw.due(7) and hw.seconds_until_due(7) == 30 and hw.due(8)  # per machine
    clock.t += 30
    assert hw.due(7)
    assert hw.record(7, 0, "inconclusive") == 60
    clock.t += 60
    assert hw.record(7, 0, "inconclusive") == 100  # capped
    assert hw.record(7, 0, "inconclusive") == 100
    assert hw.record(7, 0, "pass") == 0 and hw.due(7)
    assert hw.record(7, 0, "inconclusive") == 30  # starts over


def test_schedule__own_outcomes_expire_and_are_per_nonce():
    clock = Clock()
    hw = HardwareSchedule(reuse_s=600, inconclusive_reuse_s=30, clock=clock)
    hw.record(1, 4, "fail_misreport")
    assert hw.own(1, 4) == "fail_misreport" and hw.own(1, 5) is None and hw.own(2, 4) is None
    clock.t += 601
    assert hw.own(1, 4) is None  # a stale FAIL cannot block a PASS forever
    hw.record(1, 4, "inconclusive")
    assert hw.own(1, 4) == "inconclusive"
    clock.t += 31
    assert hw.own(1, 4) is None  # ask the machine again
    hw.record(1, 4, "pass")
    hw.forget_before(1, 5)
    assert hw.own(1, 4) is None


def test_schedule__bad_parameters():
    with pytest.raises(ValueError):
        HardwareSchedule(retry_s=0)
    with pytest.raises(ValueError):
        HardwareSchedule(retry_s=60, max_backoff_s=30)
