"""`make demo` runs green: a real anvil, 3 oracle operators (quorum 2 of 3), three provider agents
(one lying about its hardware, one returning wrong job results, one taking a job and never
delivering it), two users submitting jobs of three kinds, priced in USD and settled by
burn-and-mint; drawn and disputed jobs get JobVerdicts from the oracle processes; then the economy:
PriceFeed rounds, Emissions epoch 0 finalized, its rewards root posted and claimed, supply checked."""

import subprocess
import sys
import time

import pytest

from offchain.chain.deploy import REPO_ROOT

pytestmark = pytest.mark.anvil


def test_demo__runs_and_every_outcome_is_the_expected_one():
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "scripts.demo"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "demo OK" in out.stdout
    for outcome in ("FAILED", "FINALIZED", "EXPIRED", "ACTIVE", "JAILED"):
        assert outcome in out.stdout
    for kind in ("matmul_chain", "mlp_train", "toploc_generate"):
        assert kind in out.stdout
    assert "audit verdicts" in out.stdout and "invalid (mismatch)" in out.stdout
    assert "bob (wrongly)" in out.stdout and "+ bond 1.0" in out.stdout  # the false dispute lost its bond
    assert "honest ends richer than cheater" in out.stdout
    # The economy (issue 5): price round, epoch 0's root posted and claimed, supply identity.
    assert "PriceFeed GPU/USD" in out.stdout and "1.25 USD" in out.stdout
    for table in ("economy: token", "economy: emissions epoch 0", "economy: provider earnings"):
        assert table in out.stdout
    assert "rewards root posted" in out.stdout and "no-show penalty" in out.stdout
    assert "settlement (Settlement.Settled" in out.stdout and "burn-and-mint settlement: users' escrow" in out.stdout
    assert "NO" not in out.stdout.split("settlement (Settlement.Settled")[1].split("providers (job phase)")[0]
    assert (
        "economy checks: rewards root posted yes, claims minted exactly what the proofs and the on-chain pools "
        "imply yes, supply == minted - burned yes"
    ) in out.stdout
    assert time.monotonic() - t0 < 300
