"""The measuring instruments of `make load` (scripts/load.py): the counting JSON-RPC proxy in
front of a real anvil (answers unchanged, calls counted by role and method, a batch counted
call by call), and the percentile and CPU-time helpers."""

import os
import sys

import pytest
import requests

from offchain.chain.anvil import running_anvil
from offchain.chain.deploy import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))  # scripts/ is run from the checkout (`python -m scripts.load`), not installed
from scripts._rpc_counter import RpcCounter  # noqa: E402
from scripts.load import cpu_s, parse_args, pct  # noqa: E402

pytestmark = pytest.mark.anvil


def _rpc(url, body):
    return requests.post(url, json=body, timeout=10).json()


def test_rpc_counter__forwards_unchanged_and_counts_by_role_and_method(tmp_path):
    with running_anvil(log_path=tmp_path / "anvil.log") as anvil:
        counter = RpcCounter(anvil, ["agents", "clients"])
        urls = counter.start()
        try:
            one = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
            assert _rpc(urls["agents"], one) == _rpc(anvil, one)
            batch = [
                {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []},
                {"jsonrpc": "2.0", "id": 3, "method": "eth_blockNumber", "params": []},
                {"jsonrpc": "2.0", "id": 4, "method": "eth_chainId", "params": []},
            ]
            answers = _rpc(urls["clients"], batch)
            assert [a["id"] for a in answers] == [2, 3, 4] and all("result" in a for a in answers)
            assert counter.counts() == {
                "agents": {"eth_chainId": 1},
                "clients": {"eth_blockNumber": 2, "eth_chainId": 1},
            }
            counter.reset()
            assert counter.counts() == {"agents": {}, "clients": {}}
        finally:
            counter.stop()


def test_pct_and_cpu_helpers():
    assert pct([], 0.5) is None
    assert pct([3.0, 1.0, 2.0], 0.5) == 2.0
    assert pct(list(range(100)), 0.95) == 95
    assert cpu_s(os.getpid()) > 0
    assert cpu_s(2**22 + 12345) == 0.0  # no such process


def test_load_args__bad_values_are_refused_with_a_reason(capsys):
    cases = ((["--providers", "0"], "--providers must be"), (["--clients", "11"], "--clients must be"),
             (["--batch", "101"], "--batch must be"), (["--duration", "0"], "--duration must be"))  # fmt: skip
    for argv, needle in cases:
        with pytest.raises(SystemExit):
            parse_args(argv)
        assert needle in capsys.readouterr().err
