"""`make demo` runs green: a real anvil, 3 oracle operators (quorum 2 of 3), four provider agents
(one lying about its hardware, one returning wrong job results, one taking a job and never
delivering it), two users submitting jobs of three kinds, priced in USD and settled by
burn-and-mint at each provider's claim (its worker claims what finalization credited it); drawn
and disputed jobs get JobVerdicts from the oracle processes; then the economy:
PriceFeed rounds, Emissions epoch 0 finalized, its rewards root posted and claimed, supply checked.

And it reads well: nothing on the console but the demo's own lines (no ape log line, no library
warning, nothing on stderr), no line over 100 columns, a closing summary of 10-15 lines, and the
shared deployments/ record left alone (the demo's record is in its own log directory)."""

import re
import subprocess
import sys

import pytest

from offchain.chain.deploy import REPO_ROOT

pytestmark = pytest.mark.anvil

APE_LOG_LINE = re.compile(r"^\s*(INFO|WARNING|SUCCESS|ERROR|DEBUG|CRITICAL):")
LIBRARY_WARNING = re.compile(r"\w+Warning\b|warnings\.warn")


def test_demo__runs_and_every_outcome_is_the_expected_one(tmp_path):
    shared = sorted((REPO_ROOT / "deployments").glob("*.json"))
    before = {p: p.stat().st_mtime_ns for p in shared}
    out = subprocess.run(
        [sys.executable, "-m", "scripts.demo", "--log-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    text = out.stdout
    assert out.returncode == 0, text[-6000:] + out.stderr[-4000:]
    lines = text.splitlines()

    # The console: the demo's lines only, each within 100 columns.
    assert out.stderr.strip() == "", out.stderr[-4000:]
    assert [ln for ln in lines if APE_LOG_LINE.match(ln)] == []
    assert [ln for ln in lines if LIBRARY_WARNING.search(ln)] == []
    assert [ln for ln in lines if len(ln) > 100] == []
    assert "Confirmed 0x" in (tmp_path / "demo.log").read_text()  # ape's lines went to the log file
    # Its own deployment record, handed to the child processes; the shared ones untouched.
    assert (tmp_path / "deployment.json").exists() and "deployment record:" in text
    assert {p: p.stat().st_mtime_ns for p in shared if p.exists()} == before

    for phase in ("1. Chain.", "2. Processes.", "3. Hardware.", "4. Price.", "5. Jobs.", "6. Checking.",
                  "7. Settlement.", "8. Rewards."):  # fmt: skip
        assert phase in text
    for outcome in ("FAILED", "FINALIZED", "EXPIRED", "ACTIVE", "JAILED"):
        assert outcome in text
    for kind in ("matmul_chain", "mlp_train", "toploc_generate"):
        assert kind in text
    assert "audit verdicts" in text and "mismatch" in text
    assert "wrongly disputed" in text and "(bond 1.000)" in text  # the false dispute lost its bond
    assert "honest ends richer than cheater" in text
    assert "PriceFeed GPU/USD: 1.25 USD" in text
    for table in ("economy: token", "economy: emissions epoch 0", "economy: provider earnings"):
        assert table in text
    assert "no-show penalty" in text and "was posted" in text
    assert "settlement (each Settlement.Settled" in text
    settlement = text.split("settlement (each Settlement.Settled")[1].split("reputation after the jobs")[0]
    assert "NO" not in settlement and "claim by" in settlement
    # honest's worker claimed (one row per claim, each naming the finalized jobs it paid).
    assert any(ln.split()[:1] == ["honest"] and "yes" in ln for ln in settlement.splitlines())
    assert "totalSupply (== total_minted - total_burned: yes)" in text

    # The summary: who cheated and how each was caught, who earned what, the supply change.
    start = lines.index("Summary")
    end = next(i for i, ln in enumerate(lines) if "expectations held: demo OK" in ln)
    summary = "\n".join(lines[start : end + 1])
    assert 10 <= end + 1 - start <= 15, summary
    for said in ("liar", "failed the timed hardware challenge", "cheater", "flaky", "no-show penalty", "wrong",
                 "Net", "honest +", "Token supply"):  # fmt: skip
        assert said in summary, said
    assert "drawn for audit" in summary or "own re-run differed" in summary
