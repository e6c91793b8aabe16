"""A whole onboarding with nothing but `gpunet` commands, run from a directory outside the checkout.

From an empty anvil and a fresh deployment (`gpunet devnet`):
- three oracle operators bond (`oracle stake`), are admitted (`oracle admit`) and run (`oracle run`);
- a provider stakes, registers a machine, serves it, is challenged and attested, and offers;
- a user submits a job from examples/specs/, follows it with `job logs` and fetches the result;
- the provider sees the income in `provider earnings`.
Every command is a real `gpunet` process; the test only reads their output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from offchain.chain.anvil import MNEMONIC, free_ports

pytestmark = pytest.mark.anvil

REPO_ROOT = Path(__file__).resolve().parents[1]
GPUNET = str(Path(sys.executable).with_name("gpunet"))
# Two operators (a 2-of-2 quorum) keep the processes on a 2-core machine few; the joining steps are
# the same for any number.
OPERATORS = (7, 8)
PROVIDER, USER = 1, 3
ORACLE_ARGS = ["--leader-timeout", "15", "--poll", "0.5", "--network-allowance", "0.5", "--memory-fraction", "0.5",
               "--confirm-delay", "1", "--ttl", "3600", "--audit-fetch-timeout", "5", "--audit-device", "cpu",
               "--price-source", "fixed:1.25"]  # fmt: skip


def _addresses() -> dict[int, str]:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return {i: Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").address for i in range(10)}


class Shell:
    """Runs `gpunet` in `cwd` with `env`; keeps the long-running ones to stop them at the end."""

    def __init__(self, cwd: Path, env: dict):
        self.cwd, self.env, self.procs, self.logs = cwd, env, {}, {}

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        r = subprocess.run([GPUNET, *args], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                           timeout=timeout)  # fmt: skip
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def ok(self, *args: str, timeout: float = 120) -> str:
        r = self.run(*args, timeout=timeout)
        assert r.returncode == 0, f"gpunet {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}\n{self.tails()}"
        return r.stdout

    def ok_all(self, *commands: tuple[str, ...]) -> None:
        """Several `gpunet` commands at once (independent signers), each must succeed."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(commands)) as pool:
            list(pool.map(lambda args: self.ok(*args), commands))

    def json(self, *args: str) -> dict:
        return json.loads(self.ok(*args, "--json"))

    def start(self, name: str, *args: str) -> None:
        log = self.cwd / f"{name}.log"
        self.logs[name] = log
        with open(log, "w") as f:
            self.procs[name] = subprocess.Popen([GPUNET, *args], cwd=self.cwd, env=self.env, stdout=f,
                                                stderr=subprocess.STDOUT)  # fmt: skip

    def tails(self, n: int = 25) -> str:
        return "\n".join(f"--- {k}\n" + "\n".join(p.read_text().splitlines()[-n:]) for k, p in self.logs.items())

    def wait(self, cond, timeout: float, what: str, poll: float = 1.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                assert p.poll() is None, f"{name} exited with {p.returncode}\n{self.tails()}"
            v = cond()
            if v:
                return v
            time.sleep(poll)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.tails()}")

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def _view(rpc: str, to: str, signature: str, *args: int | str) -> int:
    """A view by raw eth_call, its return words read as one number (0 when all are zero): the
    test's cheap way to wait (the steps are `gpunet` commands)."""
    import requests
    from eth_abi import encode
    from eth_utils import keccak

    types = signature[signature.index("(") + 1 : -1].split(",") if args else []
    data = "0x" + (keccak(text=signature)[:4] + encode(types, list(args))).hex()
    r = requests.post(rpc, json={"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                                 "params": [{"to": to, "data": data}, "latest"]}, timeout=5)  # fmt: skip
    return int(r.json()["result"], 16)


def _rpc(rpc: str, method: str, params: list) -> None:
    import requests

    requests.post(rpc, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=5)


def _up(url: str) -> bool:
    import requests

    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.RequestException:
        return False


def _spec() -> Path:
    specs = sorted((REPO_ROOT / "examples" / "specs").glob("matmul*.json"))
    assert specs, "examples/specs/ has no matmul_chain spec"
    return specs[0]


def test_onboarding__every_role_with_gpunet_commands_only__from_outside_the_checkout(tmp_path):
    work = tmp_path / "outside"
    work.mkdir()
    rpc_port, agent_port, *oracle_ports = free_ports(2 + len(OPERATORS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUNET_", "APE_FOUNDRY"))}
    rpc = f"http://127.0.0.1:{rpc_port}"
    # (The user's encryption keys for sealed jobs: in the test's directory, not ~/.gpunet.)
    env.update(GPUNET_RPC=rpc, GPUNET_DEPLOYMENTS_DIR=str(tmp_path / "deployments"),
               GPUNET_KEY_FILE=str(work / "user.keys.json"))  # fmt: skip
    sh = Shell(work, env)
    addr = _addresses()
    t0 = time.monotonic()
    phases = {}
    try:
        # A chain with gpunet deployed: one command.
        sh.start("devnet", "devnet", "--port", str(rpc_port), "--challenge-window", "60")
        # The record file first (a file check), then `gpunet info`: each `gpunet` process costs ~3 s
        # of CPU, which a poll every second would take from the devnet it waits for.
        records = lambda: list((tmp_path / "deployments").glob("ethereum-local-31337-*.json"))  # noqa: E731
        sh.wait(records, 120, "the devnet's deployment record (keyed by node)", poll=0.5)
        info = sh.wait(lambda: sh.run("info", "--json").returncode == 0 and sh.json("info"), 60, "the devnet")
        assert info["job_count"] == 0
        phases["devnet"] = time.monotonic() - t0

        # Operators bond and are admitted by governance (test account 0 holds the admin role locally).
        # Bonding needs no one's leave: the operators and the provider stake at once (separate signers).
        sh.ok_all(*[("oracle", "stake", "1000", "--test-account", str(i), "--yes") for i in OPERATORS],
                  ("provider", "stake", "100", "--test-account", str(PROVIDER), "--yes"))  # fmt: skip
        for i in OPERATORS:
            sh.ok("oracle", "admit", addr[i], "--test-account", "0", "--yes")
        st = sh.json("oracle", "status", "--test-account", str(OPERATORS[0]))
        assert st["is_operator"] and st["threshold"] == 2 and len(st["operators"]) == len(OPERATORS)
        phases["operators joined"] = time.monotonic() - t0
        urls = {addr[i]: f"http://127.0.0.1:{p}" for i, p in zip(OPERATORS, oracle_ports, strict=True)}
        for i, port in zip(OPERATORS, oracle_ports, strict=True):
            peers = [f"--peer={a}={u}" for a, u in urls.items() if a != addr[i]]
            sh.start(f"oracle-{i}", "oracle", "run", "--test-account", str(i), "--port", str(port),
                     "--db", str(work / f"oracle-{i}.sqlite"), *peers, *ORACLE_ARGS)  # fmt: skip

        # The provider: stake, register, serve, get attested, offer.
        # (staked above; tests/test_cli_errors.py covers offers refused without stake or an Active machine)
        endpoint = f"http://127.0.0.1:{agent_port}"
        register = ("provider", "register", "CPU", "--vram-mb", "512", "--endpoint", endpoint, "--test-account",
                    str(PROVIDER), "--yes")  # fmt: skip
        # No agent at the endpoint yet: registering would get the machine jailed, so it is refused.
        refused = sh.run(*register)
        assert refused.returncode == 1 and "no gpunet agent answers" in refused.stderr, refused.stderr
        sh.start("agent", "provider", "serve", "--claim", "CPU", "--port", str(agent_port), "--state-dir",
                 str(work / "provider"), "--test-account", str(PROVIDER), "--poll", "0.5")  # fmt: skip
        sh.wait(lambda: _up(endpoint), 120, "the agent", poll=0.5)
        assert "machine 1 registered" in sh.ok(*register)

        c = info["contracts"]
        sh.wait(lambda: _view(rpc, c["ProviderRegistry"], "machine_status(uint256)", 1) == 2, 300,
                "the machine's attestation")  # fmt: skip
        status = sh.json("provider", "status", "--test-account", str(PROVIDER))
        assert status["machines"][0]["status"] == "ACTIVE" and status["machines"][0]["expires_in_s"] > 0
        sh.ok("provider", "offer", "CPU", "0.002", "--test-account", str(PROVIDER), "--yes")
        phases["attested and offered"] = time.monotonic() - t0

        # The user: a spec from examples/, followed with `job logs`, result fetched and checked.
        sh.wait(lambda: _view(rpc, c["PriceFeed"], "latest_round()"), 90, "a token/USD price round")
        sub = json.loads(sh.ok("job", "submit", str(_spec()), "--gpu", "CPU", "--max-price", "0.01",
                               "--test-account", str(USER), "--yes", "--json", "--timeout", "180",
                               timeout=240))  # fmt: skip
        job_id = sub["job_id"]
        assert sub["provider"] == addr[PROVIDER] and sub["status"] in ("SUBMITTED", "AUDIT", "FINALIZED")
        mine = sh.json("job", "list", "--test-account", str(USER))
        assert [j["job_id"] for j in mine["jobs"]] == [job_id]
        # Sealed by default: the agent serves it only to the user's signed requests, and the
        # user's key file opens it.
        assert sub["sealed"] is True
        refused = sh.run("job", "result", str(job_id), "-o", str(work / "result"))
        assert refused.returncode == 1 and "sign as the user" in refused.stderr, refused.stderr
        sh.ok("job", "result", str(job_id), "-o", str(work / "result"), "--test-account", str(USER))
        assert (work / "result" / "output.json").exists()

        phases["job submitted"] = time.monotonic() - t0
        # Skip the 60 s challenge window (or an audit's wait): the provider's worker then finalizes.
        _rpc(rpc, "evm_increaseTime", [61])
        _rpc(rpc, "evm_mine", [])
        sh.wait(lambda: _view(rpc, c["JobMarket"], "job_status(uint256)", job_id) == 5, 240,
                "the job to be finalized (after the challenge window, or an audit)")  # fmt: skip
        assert sh.json("job", "show", str(job_id))["status"] == "FINALIZED"
        logs = sh.ok("job", "logs", str(job_id))
        for step in ("created", "accepted", "submitted", "finalized"):
            assert step in logs.lower(), logs

        # Finalizing credited the provider; its worker claims it (the escrow burned, its pay minted).
        sh.wait(lambda: _view(rpc, c["JobMarket"], "accrued(address)", addr[PROVIDER]) == 0, 60,
                "the provider's worker to claim its pay")  # fmt: skip
        # The provider's income, as `earnings` reports it.
        earned = sh.json("provider", "earnings", "--test-account", str(PROVIDER))
        assert int(earned["total"]["job_income"]) > 0, earned
        jobs = sh.json("provider", "jobs", "--test-account", str(PROVIDER))
        assert [j["job_id"] for j in jobs["jobs"]] == [job_id]
        phases["earnings"] = time.monotonic() - t0
        print("onboarding:", ", ".join(f"{k} at {v:.0f} s" for k, v in phases.items()))
    finally:
        sh.stop_all()
