"""Starting the real off-chain processes of a local gpunet network (demo and integration tests).

Every process is a real `gpunet ...` command talking to anvil and to each other over HTTP on
127.0.0.1; this module only starts, waits for and stops them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from offchain.chain.anvil import free_ports  # also re-exported for the demo and tests

REPO_ROOT = Path(__file__).resolve().parents[1]
GPUNET = str(Path(sys.executable).with_name("gpunet"))


@dataclass
class Devnet:
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)  # name -> its last `gpunet` arguments

    def log_path(self, name: str) -> Path:
        """Where process `name` writes its stdout and stderr."""
        return self.log_dir / f"{name}.log"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        # The child's environment is this process's: GPUNET_DEPLOYMENT, APE_FOUNDRY_HOST and the
        # like set in os.environ before the call reach it.
        env = dict(os.environ)
        env.setdefault("GPUNET_NETWORK", "ethereum:local:foundry")
        with open(self.log_path(name), "w") as log:  # the child holds its own copy of the descriptor
            p = subprocess.Popen([GPUNET, *args], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs[name], self.commands[name] = p, list(args)
        return p

    def start_agent(
        self,
        name: str,
        provider: str,
        claim: str,
        port: int,
        cheat: str | None = None,
        *,
        test_account: int | None = None,
        state_dir: Path | None = None,
        extra: Sequence[str] = (),
    ) -> str:
        """An agent process; with `test_account` and `state_dir` it also runs the job worker."""
        args = ["provider", "serve", "--port", str(port), "--provider-address", provider, "--claim", claim]
        if cheat:
            args += ["--cheat", cheat]
        if test_account is not None:
            args += ["--test-account", str(test_account)]
        if state_dir is not None:
            args += ["--state-dir", str(state_dir)]
        self._spawn(name, [*args, *extra])
        return f"http://127.0.0.1:{port}"

    def start_oracle(
        self, name: str, test_account: int, port: int, peers: dict[str, str], db: Path, extra: list[str] = ()
    ) -> str:
        args = ["oracle", "run", "--test-account", str(test_account), "--port", str(port), "--db", str(db), "-v"]
        for addr, url in peers.items():
            args += ["--peer", f"{addr}={url}"]
        self._spawn(name, [*args, *extra])
        return f"http://127.0.0.1:{port}"

    def start_oracles(
        self,
        test_accounts: Sequence[int],
        addresses: Sequence[str],
        db_dir: Path,
        extra: Sequence[str] = (),
        *,
        ports: Sequence[int] | None = None,
        each: Sequence[Sequence[str]] = (),
    ) -> dict[str, str]:
        """A quorum: `oracle-i` runs as test account `test_accounts[i]` (address `addresses[i]`) on
        `ports[i]` (free ones by default), with the others as peers, its store at
        db_dir/oracle-i.sqlite and `extra` (+ `each[i]`) on its command line. Returns {address: url}."""
        ports = free_ports(len(addresses)) if ports is None else ports
        urls = {addr: f"http://127.0.0.1:{port}" for addr, port in zip(addresses, ports, strict=True)}
        for i, (index, addr) in enumerate(zip(test_accounts, addresses, strict=True)):
            peers = {a: u for a, u in urls.items() if a != addr}
            args = [*extra, *(each[i] if each else ())]
            self.start_oracle(f"oracle-{i}", index, ports[i], peers, db_dir / f"oracle-{i}.sqlite", args)
        return urls

    def wait_http(self, name: str, url: str, timeout: float = 90.0) -> None:
        """Waits for `url`/health to answer (an agent: with its blob access ready). On failure the
        error's first line says what happened and where the log is; the lines after it are the
        log's last lines."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self.procs[name]
            if p.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {p.returncode} before answering (log: {self.log_path(name)})\n"
                    + self.tail(name)
                )
            try:
                r = requests.get(f"{url}/health", timeout=1)
                # An agent's job worker reports "starting" until it checks signed blob requests.
                if r.status_code < 500 and _health_field(r, "blob_access") != "starting":
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise TimeoutError(
            f"{name} did not answer on {url}/health, or its blob access was still starting, within {timeout:.0f} s "
            f"(log: {self.log_path(name)})\n" + self.tail(name)
        )

    def wait_for(self, cond, timeout: float, what: str, poll: float = 0.5) -> None:
        """Polls `cond()` until it is true; on timeout raises AssertionError with every process's
        last log lines (what a failing integration test needs to say why)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(poll)
        logs = "\n".join(f"--- {n}\n{self.tail(n, 40)}" for n in list(self.procs))
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_path(name)
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    def stop(self, name: str) -> None:
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def restart(self, name: str) -> subprocess.Popen:
        """Starts process `name` again with the arguments it last ran with, once it has exited, was
        killed or stopped (its previous log is kept as `<name>.log.1`)."""
        old = self.procs.get(name)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"{name} is still running (pid {old.pid}): stop or kill it first")
        log = self.log_path(name)
        if log.exists():
            log.replace(log.with_name(log.name + ".1"))
        return self._spawn(name, self.commands[name])

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def stake_operators(token, hub, admin, operators: Sequence, stake: int, mint: int | None = None) -> None:
    """Mints each operator `mint` tokens (default: `stake`) from `admin` and stakes `stake` of
    them in OracleHub (the approval is unlimited)."""
    for o in operators:
        token.mint(o, stake if mint is None else mint, sender=admin)
        token.approve(hub, 2**256 - 1, sender=o)
        hub.stake(stake, sender=o)


def _health_field(r: requests.Response, name: str) -> object:
    try:
        body = r.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None
