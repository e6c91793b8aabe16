"""`make demo` runs green: a real anvil, 3 oracle operators, 3 provider agents (one sloppy, one
lying about its hardware), two users."""

import subprocess
import sys

import pytest

from offchain.chain.deploy import REPO_ROOT

pytestmark = pytest.mark.anvil


def test_demo__runs_and_every_outcome_is_the_expected_one():
    out = subprocess.run(
        [sys.executable, "-m", "scripts.demo"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "demo OK" in out.stdout
    for outcome in ("EXPIRED", "FAILED", "FINALIZED", "ACTIVE", "JAILED"):
        assert outcome in out.stdout
    assert "lying provider -" in out.stdout
