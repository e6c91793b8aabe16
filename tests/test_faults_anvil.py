"""`make faults`, one of its scenarios in the suite (the whole set, anvil's restart from its dumped
state among them, is `make faults`): the verdict leader dies holding a quorum of signatures, on a
live network (anvil with 1 s blocks, 3 oracle processes, 2 provider agents). Every job ends, none
is paid twice, the books balance to the wei, the killed operator resumes from the cursors it had
stored, and no process that was not killed died."""

import json
import subprocess
import sys

import pytest

from offchain.chain.deploy import REPO_ROOT

pytestmark = pytest.mark.anvil


def test_faults__leader_killed_mid_quorum__every_job_ends_books_balance(tmp_path):
    out = tmp_path / "summary.json"
    run = subprocess.run(
        [sys.executable, "-m", "scripts.faults", "--scenarios", "leader_killed_mid_quorum",
         "--jobs", "2", "--out", str(out), "--log-dir", str(tmp_path / "logs")],  # fmt: skip
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    s = json.loads(out.read_text())
    assert s["escrow_mismatch_wei"] == 0 and s["processes_died"] == []
    assert set(s["scenarios"]) == {"leader_killed_mid_quorum"}
    leader = s["scenarios"]["leader_killed_mid_quorum"]
    assert leader["recovered"] and leader["jobs"] == 2 and leader["jobs_lost"] == 0 and leader["paid_twice"] == 0
    assert leader["accepted_twice"] == 0 and set(leader["states"]) <= {"FINALIZED", "FAILED", "CANCELLED", "EXPIRED"}
    assert leader["ok_crashed_holding_quorum"] and leader["ok_verdict_posted"]
    assert leader["resumed_from"] == leader["stored_cursors"] and leader["stored_cursors"]["events_cursor"] > 0
    logs = tmp_path / "logs"
    assert "Traceback" not in "".join(p.read_text() for p in logs.glob("oracle-*.log*"))
    assert "Traceback" not in run.stdout + run.stderr
