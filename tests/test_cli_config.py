"""`gpunet`'s settings: flags > environment > config file (./gpunet.toml, or $GPUNET_CONFIG), with a
[group] table overriding the top level for that group's commands. Real `gpunet` processes, no chain:
a public network's missing deployment record names the network that was chosen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GPUNET = str(Path(sys.executable).with_name("gpunet"))


def _run(cwd: Path, *args: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GPUNET_", "APE_FOUNDRY"))}
    base.update(GPUNET_DEPLOYMENTS_DIR=str(cwd / "none"), XDG_CONFIG_HOME=str(cwd / "xdg"), **env)
    r = subprocess.run([GPUNET, *args], cwd=cwd, env=base, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    return r.stderr


def test_precedence__flag_over_env_over_config_table_over_config(tmp_path):
    (tmp_path / "gpunet.toml").write_text('network = "ethereum:sepolia"\n[job]\nnetwork = "ethereum:holesky"\n')
    assert "ethereum-sepolia.json" in _run(tmp_path, "info")
    assert "ethereum-holesky.json" in _run(tmp_path, "job", "show", "1")  # the [job] table
    assert "ethereum-mainnet.json" in _run(tmp_path, "job", "show", "1", GPUNET_NETWORK="ethereum:mainnet")
    flag = _run(tmp_path, "job", "show", "1", "--network", "ethereum:local:foundry", "--rpc", "http://127.0.0.1:1",
                GPUNET_NETWORK="ethereum:mainnet")  # fmt: skip
    assert "no node answers at http://127.0.0.1:1" in flag


def test_user_config_file__used_outside_a_project_and_named_by_env(tmp_path):
    xdg = tmp_path / "xdg" / "gpunet"
    xdg.mkdir(parents=True)
    (xdg / "config.toml").write_text('network = "ethereum:sepolia"\n')
    assert "ethereum-sepolia.json" in _run(tmp_path, "info")
    other = tmp_path / "other.toml"
    other.write_text('network = "ethereum:holesky"\n')
    assert "ethereum-holesky.json" in _run(tmp_path, "info", GPUNET_CONFIG=str(other))


def test_config_keys_never_meet_commands_of_the_same_name(tmp_path):
    """An option named like a command (`job submit --provider`, `provider serve --claim`) gets its own
    default, not a table: a config holding only `rpc` leaves them alone."""
    (tmp_path / "gpunet.toml").write_text('rpc = "http://127.0.0.1:1"\n')
    spec = tmp_path / "spec.json"
    spec.write_text('{"kind": "matmul_chain", "params": {"n": 8, "k": 2}, "seed": 1}')
    err = _run(tmp_path, "job", "submit", str(spec), "--test-account", "3", "--yes")
    assert "no node answers at http://127.0.0.1:1" in err
