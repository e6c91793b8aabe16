"""Starting and stopping a local anvil node (npm `@foundry-rs/anvil`) for tests, demo and bench."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Same as ape's test mnemonic (ape-config.yaml), so ape's test accounts are anvil's funded ones.
MNEMONIC = "test test test test test test test test test test test junk"


def anvil_bin() -> str:
    local = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if not found:
        raise FileNotFoundError("anvil not found: run `make install` (npm ci installs @foundry-rs/anvil)")
    return found


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (all held open until all are chosen, so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def _rpc_ready(url: str) -> bool:
    req = urllib.request.Request(
        url,
        data=b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def running_anvil(port: int | None = None, log_path: Path | None = None, timeout: float = 20.0) -> Iterator[str]:
    """Starts anvil on 127.0.0.1:<port>, yields its URL and sets APE_FOUNDRY_HOST for ape; stops it after."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed in `finally`
    proc = subprocess.Popen(
        [
            anvil_bin(),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--mnemonic",
            MNEMONIC,
            "--hardfork",
            "cancun",
            "--accounts",
            "20",
            "--balance",
            "10000",
            "--gas-price",
            "0",
            "--base-fee",
            "0",
            *os.environ.get("GPUNET_ANVIL_ARGS", "").split(),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    old_host = os.environ.get("APE_FOUNDRY_HOST")
    try:
        deadline = time.monotonic() + timeout
        while not _rpc_ready(url):
            if proc.poll() is not None:
                raise RuntimeError(f"anvil exited with code {proc.returncode} (port {port} in use?)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"anvil did not answer on {url} within {timeout}s")
            time.sleep(0.1)
        os.environ["APE_FOUNDRY_HOST"] = url
        from offchain.chain.ape_compat import receipts_wait_for_blocks

        receipts_wait_for_blocks()
        yield url
    finally:
        if old_host is None:
            os.environ.pop("APE_FOUNDRY_HOST", None)
        else:
            os.environ["APE_FOUNDRY_HOST"] = old_host
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not subprocess.DEVNULL:
            log.close()
