"""`offchain.chain.heads.HeadWatcher`: a loop wakes on each new block from a `newHeads`
subscription over the node's websocket, and keeps its poll interval where there is none."""

import logging
import threading
import time

import pytest

from offchain.chain.anvil import free_port, running_anvil
from offchain.chain.heads import HeadWatcher, ws_url


def test_ws_url__same_host_and_port__none_for_other_schemes():
    assert ws_url("http://127.0.0.1:8545") == "ws://127.0.0.1:8545"
    assert ws_url("https://rpc.example/v1/key") == "wss://rpc.example/v1/key"
    assert ws_url("ws://n:1") == "ws://n:1" and ws_url("/tmp/geth.ipc") is None


@pytest.mark.anvil
def test_wakes_on_each_new_block_of_a_real_node(tmp_path):
    stop = threading.Event()
    with running_anvil(log_path=tmp_path / "anvil.log") as url:
        from web3 import Web3

        Web3(Web3.HTTPProvider(url)).provider.make_request("evm_setIntervalMining", [1])
        heads = HeadWatcher(url).start()
        try:
            deadline = time.monotonic() + 20
            while heads.head is None and time.monotonic() < deadline:
                time.sleep(0.1)
            first = heads.head
            assert heads.live and first is not None
            assert heads.wait(stop, 10.0, after=first[0])  # the next block, about a second later
            assert heads.head[0] > first[0] and heads.head[1] >= first[1]
            stop.set()
            assert heads.wait(stop, 10.0, after=10**9) is False  # stop ends the wait at once
        finally:
            heads.close()


def test_no_websocket_there__the_wait_is_the_poll_interval__no_traceback_logged(caplog):
    caplog.set_level(logging.DEBUG)
    heads = HeadWatcher(f"http://127.0.0.1:{free_port()}").start()  # nothing listens there
    try:
        t0 = time.monotonic()
        assert heads.wait(threading.Event(), 0.5) is False
        assert time.monotonic() - t0 >= 0.4  # waited out the poll interval, did not spin
        assert not heads.live and heads.head is None
    finally:
        heads.close()
    time.sleep(2.5)  # past web3's first backoff (1.75 s), had it retried
    assert "Traceback" not in caplog.text and "Retrying" not in caplog.text, caplog.text
    assert "heads_unavailable" in caplog.text  # one line says the caller polls
