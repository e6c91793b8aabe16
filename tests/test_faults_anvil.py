"""`make faults`, two of its scenarios in the suite (the whole set is `make faults`): the verdict
leader dies holding a quorum of signatures, and anvil is stopped and started again from its
dumped state, on a live network (anvil with 1 s blocks, 3 oracle processes, 2 provider agents).
Every job ends, none is paid twice, the books balance to the wei, the killed operator resumes
from the cursors it had stored, and no process that was not killed died of the node's outage."""

import json
import subprocess
import sys

import pytest

from offchain.chain.deploy import REPO_ROOT

pytestmark = pytest.mark.anvil


def test_faults__leader_killed_mid_quorum_and_anvil_restarted__every_job_ends_books_balance(tmp_path):
    out = tmp_path / "summary.json"
    run = subprocess.run(
        [sys.executable, "-m", "scripts.faults", "--scenarios", "leader_killed_mid_quorum,anvil_restarted",
         "--jobs", "2", "--out", str(out), "--log-dir", str(tmp_path / "logs")],  # fmt: skip
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    s = json.loads(out.read_text())
    assert s["escrow_mismatch_wei"] == 0 and s["processes_died"] == []
    leader, anvil = s["scenarios"]["leader_killed_mid_quorum"], s["scenarios"]["anvil_restarted"]
    for sc in (leader, anvil):
        assert sc["recovered"] and sc["jobs"] == 2 and sc["jobs_lost"] == 0 and sc["paid_twice"] == 0
        assert sc["accepted_twice"] == 0 and set(sc["states"]) <= {"FINALIZED", "FAILED", "CANCELLED", "EXPIRED"}
    assert leader["ok_crashed_holding_quorum"] and leader["ok_verdict_posted"]
    assert leader["resumed_from"] == leader["stored_cursors"] and leader["stored_cursors"]["events_cursor"] > 0
    assert anvil["ok_state_written"] and anvil["ok_restarted_at_or_past_height"]
    logs = tmp_path / "logs"
    assert "Traceback" not in "".join(p.read_text() for p in logs.glob("oracle-*.log*"))
    assert "Traceback" not in run.stdout + run.stderr
