"""The hardware decision rule: how timed challenge rounds become PASS, FAIL or INCONCLUSIVE.

Pure (no torch, no HTTP): the oracle's challenger applies it, `make figures` measures its error
rates, docs/PROTOCOL.md ("Hardware verification") states it with the numbers.

A challenge runs up to `rounds` (k = 3) timed matmul rounds, each with a fresh nonce, each timed
on the oracle's own clock. A = `challenge.time_allowance(class, n, dtype)` is what the claimed
class may take for one round; D = `FAIL_FACTOR` x A is the round's deadline: the agent stops
computing when its own clock passes D (its clock starts after the oracle's, so it never stops
early) and the oracle stops waiting a grace period after D. A round is

- fast:   t <= A
- slow:   A < t <= D (could be load, could be a slightly weaker device: not evidence)
- over:   t > D, or no answer by D (aborted by the agent, or read timeout after the grace)

The rounds stop at the first fast one. Then:

- PASS          some round was fast (best of k <= A), and every answered round's product
                verified (and, afterwards, the memory proof);
- FAIL          a product failed verification or its commitment (one is proof enough), the
                memory proof failed, or **every one of the k rounds was over** (best of k > 2A);
- INCONCLUSIVE  anything else: the best round was slow, or the agent stayed busy (a job, another
                operator's challenge) beyond the oracle's wait. Never reported on-chain, never
                slashed: the oracle challenges again later, with back-off.

Why best-of-k: background load only ever adds time, so the fastest of k rounds is the round the
load disturbed least; a slower device cannot be made faster by load. Why a factor 2 between
A and the FAIL line: load on a busy 2-core host stretches an honest round by up to ~1.6x
(`make figures`, 100% background load), while the liars the check exists for (a CPU claiming
any GPU class, an agent sleeping 2 s) are several times over. The oracle service adds two more
layers before anything lands on-chain (see `offchain/oracle/service.py`): a leader proposes a
FAIL only after `fail_confirmations` (2) FAIL verdicts of its own at least `confirm_delay_s`
apart, and each co-signer signs it only after its own challenge reached FAIL too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PASS = "pass"
FAIL = "fail"
INCONCLUSIVE = "inconclusive"

DEFAULT_ROUNDS = 3
# A round slower than FAIL_FACTOR x the allowance is "over": clear evidence, if every round is.
FAIL_FACTOR = 2.0


def round_kind(seconds: float | None, allowance_s: float, fail_factor: float = FAIL_FACTOR) -> str:
    """ "fast", "slow" or "over" for one round's seconds (None: no answer in time)."""
    if seconds is None or seconds > fail_factor * allowance_s:
        return "over"
    return "fast" if seconds <= allowance_s else "slow"


def best_seconds(times: Sequence[float | None]) -> float | None:
    """The fastest answered round (None when no round answered in time)."""
    answered = [t for t in times if t is not None]
    return min(answered) if answered else None


def timing_verdict(
    times: Sequence[float | None],
    allowance_s: float,
    *,
    rounds: int = DEFAULT_ROUNDS,
    fail_factor: float = FAIL_FACTOR,
) -> tuple[str, str]:
    """(PASS | FAIL | INCONCLUSIVE, why) for the timing of the rounds run so far.

    PASS as soon as one round is fast; FAIL only once `rounds` rounds were all over;
    INCONCLUSIVE otherwise (including "not enough rounds yet" -- `more_rounds_needed` says when
    to go on)."""
    if allowance_s <= 0 or fail_factor <= 1 or rounds < 1:
        raise ValueError("decision: allowance > 0, fail_factor > 1 and rounds >= 1")
    kinds = [round_kind(t, allowance_s, fail_factor) for t in times]
    best = best_seconds(times)
    shown = "no answer in time" if best is None else f"best {best:.3f}s"
    if "fast" in kinds:
        return PASS, f"{shown} of {len(times)} round(s), allowed {allowance_s:.3f}s"
    if len(kinds) >= rounds and all(k == "over" for k in kinds):
        return FAIL, (
            f"all {len(kinds)} rounds over {fail_factor:g}x the allowance "
            f"({shown}, allowed {allowance_s:.3f}s, fail line {fail_factor * allowance_s:.3f}s)"
        )
    return INCONCLUSIVE, (
        f"{shown} of {len(times)} round(s): over the allowance {allowance_s:.3f}s but not all "
        f"over the fail line {fail_factor * allowance_s:.3f}s"
    )


def more_rounds_needed(times: Sequence[float | None], allowance_s: float, *, rounds: int = DEFAULT_ROUNDS) -> bool:
    """Whether another round can still change the verdict: no fast round yet and fewer than k run."""
    if any(t is not None and t <= allowance_s for t in times):
        return False
    return len(times) < rounds


@dataclass(frozen=True)
class ErrorRates:
    """What `make figures` reports for one population of challenges."""

    challenges: int
    passed: int
    failed: int
    inconclusive: int

    @property
    def fail_rate(self) -> float:
        return self.failed / self.challenges if self.challenges else math.nan

    @property
    def pass_rate(self) -> float:
        return self.passed / self.challenges if self.challenges else math.nan

    @property
    def fail_upper_95(self) -> float:
        """One-sided 95% upper bound on the true FAIL rate (exact binomial; 'rule of three'
        3/n when none failed)."""
        return binomial_upper_95(self.failed, self.challenges)


def binomial_upper_95(k: int, n: int) -> float:
    """Clopper-Pearson one-sided 95% upper bound on p after k successes in n trials."""
    if n <= 0:
        return 1.0
    if k >= n:
        return 1.0
    # Bisection on P(X <= k; n, p) = 0.05 (monotone decreasing in p); no scipy needed for one number.
    lo, hi = k / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _binom_cdf(k, n, mid) > 0.05:
            lo = mid
        else:
            hi = mid
    return hi


def _binom_cdf(k: int, n: int, p: float) -> float:
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0 if k < n else 1.0
    total, term = 0.0, (1 - p) ** n
    for i in range(k + 1):
        total += term
        term *= (n - i) / (i + 1) * p / (1 - p)
    return min(1.0, total)


__all__ = [
    "DEFAULT_ROUNDS",
    "FAIL",
    "FAIL_FACTOR",
    "INCONCLUSIVE",
    "PASS",
    "ErrorRates",
    "best_seconds",
    "binomial_upper_95",
    "more_rounds_needed",
    "round_kind",
    "timing_verdict",
]
