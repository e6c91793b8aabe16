"""`ape run deploy` end to end against a real anvil node (started here), as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from offchain.chain.anvil import running_anvil
from offchain.chain.deploy import DEPLOYMENTS_DIR_ENV, REPO_ROOT

pytestmark = pytest.mark.anvil


def _record(directory: Path) -> Path:
    """The one record in `directory` (local records are keyed by chain id and genesis hash)."""
    found = list(directory.glob("ethereum-local-31337-*.json"))
    assert len(found) == 1, found
    return found[0]


def _deploy(*extra: str) -> subprocess.CompletedProcess:
    ape = Path(sys.executable).with_name("ape")
    return subprocess.run(
        [str(ape), "run", "deploy", "--network", "ethereum:local:foundry", *extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


def _gpunet(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("gpunet")
    return subprocess.run(
        [str(exe), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )


def test_ape_run_deploy__records_and_does_not_redeploy__one_record_per_node(tmp_path, monkeypatch):
    monkeypatch.setenv(DEPLOYMENTS_DIR_ENV, str(tmp_path / "deployments"))
    monkeypatch.delenv("GPUNET_DEPLOYMENT", raising=False)
    with running_anvil(log_path=tmp_path / "anvil.log"):
        first = _deploy()
        assert first.returncode == 0, first.stdout + first.stderr
        path = _record(tmp_path / "deployments")
        record = json.loads(path.read_text())
        assert record["chain_id"] == 31337
        assert set(record["contracts"]) == {
            "ComputeToken",
            "ProviderRegistry",
            "JobMarket",
            "JobMarketExt",
            "JobMarketParams",
            "AuditBeacon",
            "KeyDirectory",
            "OracleHub",
            "PriceFeed",
            "Settlement",
            "Emissions",
        }
        assert record["vyper_version"] == "0.4.3"
        assert record["block"] >= 1
        assert set(record["tx"]) == set(record["contracts"])
        assert record["git_commit"]

        cli = _gpunet("info", "--json")
        assert cli.returncode == 0, cli.stdout + cli.stderr
        info = json.loads(cli.stdout)
        assert info["contracts"] == record["contracts"]
        assert info["params"]["fee_bps"] == 500
        assert info["job_count"] == 0
        assert info["settlement_burned"] == info["finalized_escrow"] == 0 and "fees_accrued" not in info
        missing = _gpunet("job", "show", "1")
        assert missing.returncode == 1
        assert "job 1 does not exist" in missing.stderr

        again = _deploy()
        assert again.returncode == 0, again.stdout + again.stderr
        assert "Already deployed" in again.stdout
        assert json.loads(path.read_text())["contracts"] == record["contracts"]

        forced = _deploy("--redeploy")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        new = json.loads(path.read_text())
        assert new["contracts"]["JobMarket"] != record["contracts"]["JobMarket"]

    # A second node (another genesis) gets its own record; the first one's is untouched.
    with running_anvil(log_path=tmp_path / "anvil2.log"):
        other = _deploy()
        assert other.returncode == 0, other.stdout + other.stderr
        records = sorted((tmp_path / "deployments").glob("ethereum-local-31337-*.json"))
        assert len(records) == 2 and path in records
        assert json.loads(path.read_text()) == new


def test_gpunet_info__no_deployment__says_how_to_deploy(tmp_path):
    out = _gpunet("info", "--network", "ethereum:sepolia:node")
    assert out.returncode == 1
    assert "ape run deploy --network ethereum:sepolia:node" in out.stderr
