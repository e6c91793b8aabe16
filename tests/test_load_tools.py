"""The instruments of `make load` and `make faults` (scripts/load.py, scripts/faults.py): the
counting JSON-RPC proxy in front of a real anvil (answers unchanged, calls counted by role and
method, a batch counted call by call, a 502 and no traceback while the node is down), the
percentile and CPU-time helpers, the operators' cuttable links, and the argument checks."""

import os
import sys
import time

import pytest
import requests

from offchain.chain.anvil import running_anvil
from offchain.chain.deploy import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))  # scripts/ is run from the checkout (`python -m scripts.load`), not installed
from scripts import faults  # noqa: E402
from scripts._partition import PeerLinks  # noqa: E402
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


def test_rpc_counter__node_down__answers_502_and_serves_again_when_it_is_back(tmp_path, capfd):
    with running_anvil(log_path=tmp_path / "anvil.log") as anvil:
        counter = RpcCounter(anvil, ["agents"])
        url = counter.start()["agents"]
    # anvil has stopped: the proxy answers like an unreachable node, then serves a new one.
    try:
        r = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=10)
        assert r.status_code == 502 and "node unreachable" in r.text
        with running_anvil(port=int(anvil.rsplit(":", 1)[1]), log_path=tmp_path / "anvil2.log"):
            assert "result" in _rpc(url, {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId", "params": []})
    finally:
        counter.stop()
    assert "Traceback" not in capfd.readouterr().err


def test_peer_links__forward__cut_both_ways_goes_silent__heal_forwards_again(tmp_path):
    with running_anvil(log_path=tmp_path / "anvil.log") as anvil:  # any HTTP server will do
        a_port = int(anvil.rsplit(":", 1)[1])
        links = PeerLinks({"a": a_port, "b": a_port, "c": a_port})
        links.start()
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        try:
            assert _rpc(links.url("b", "a"), body)["result"]
            links.cut("a")
            time.sleep(0.2)
            for src, dst in (("b", "a"), ("a", "c")):  # to and from the cut operator: no answer
                with pytest.raises(requests.exceptions.ReadTimeout):
                    requests.post(links.url(src, dst), json=body, timeout=1)
            assert _rpc(links.url("b", "c"), body)["result"]  # the others still talk
            links.heal("a")
            time.sleep(0.2)
            assert _rpc(links.url("b", "a"), body)["result"]
        finally:
            links.stop()


def test_pct_and_cpu_helpers():
    assert pct([], 0.5) is None
    assert pct([3.0, 1.0, 2.0], 0.5) == 2.0
    assert pct(list(range(100)), 0.95) == 95
    assert cpu_s(os.getpid()) > 0
    assert cpu_s(2**22 + 12345) == 0.0  # no such process


def test_load_args__bad_values_are_refused_with_a_reason(capsys):
    cases = ((["--providers", "0"], "--providers must be"), (["--clients", "11"], "--clients must be"),
             (["--batch", "101"], "--batch must be"), (["--duration", "0"], "--duration must be"),
             (["--rate", "-1"], "--rate must be"))  # fmt: skip
    for argv, needle in cases:
        with pytest.raises(SystemExit):
            parse_args(argv)
        assert needle in capsys.readouterr().err


def test_faults_args__unknown_scenario_is_refused_naming_the_choices(capsys):
    assert faults.parse_args(["--scenarios", "anvil_restarted"]).scenarios == ["anvil_restarted"]
    with pytest.raises(SystemExit):
        faults.parse_args(["--scenarios", "anvil_restarted,oracle_on_fire"])
    err = capsys.readouterr().err
    assert "unknown oracle_on_fire" in err and "leader_killed_mid_quorum" in err
