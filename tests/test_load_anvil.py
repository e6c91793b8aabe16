"""`make load`, short: 2 provider agents and 2 user clients submitting batches of 5 jobs for 10 s
(240 jobs a minute offered, paced) on the live network (anvil with 1 s blocks, 3 oracle
processes, default audit rates), drained until every job ended. The summary has every figure
the long run reports, nothing is lost or paid twice, and the books balance to the wei. Speed is
`make load`'s to measure, not this test's."""

import json
import subprocess
import sys

import pytest

from offchain.chain.deploy import REPO_ROOT

pytestmark = pytest.mark.anvil


def test_load__short_run__every_job_ends_none_paid_twice_books_balance(tmp_path):
    out = tmp_path / "summary.json"
    run = subprocess.run(
        [sys.executable, "-m", "scripts.load", "--duration", "10", "--drain", "400", "--providers", "2",
         "--clients", "2", "--batch", "5", "--rate", "240", "--out", str(out),
         "--log-dir", str(tmp_path / "logs")],  # fmt: skip
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    s = json.loads(out.read_text())
    assert s["jobs_submitted"] >= 5 and s["submit_errors"] == 0
    assert s["jobs_lost"] == 0 and s["paid_twice"] == 0 and s["escrow_mismatch_wei"] == 0
    assert s["jobs_finalized"] + s["jobs_by_state"].get("FAILED", 0) == s["jobs_submitted"]
    # Paced, not a flood: each client sends at most one batch per 2.5 s of its 10 s (and one at its start).
    assert s["offered_jobs_per_min"] == 240 and s["jobs_submitted"] <= 2 * (4 + 1) * 5
    for key in (
        "jobs_per_min",
        "end_to_end_jobs_per_min",
        "peak_jobs_per_min",
        "p50_latency_s",
        "p95_latency_s",
        "rpc_per_job",
        "cpu_s_per_job",
    ):
        assert isinstance(s[key], int | float) and s[key] > 0, key
    assert set(s["rpc_by_role"]) == {"oracles", "agents", "clients"} and all(s["rpc_by_role"].values())
    assert s["p50_latency_s"] <= s["p95_latency_s"]
