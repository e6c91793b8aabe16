"""offchain/chain/ape_compat.py's receipt polling on a real anvil mining a block a second: a sent
transaction's receipt is asked for every 0.5 s (ape's web3 default, 0.1 s, asks about ten
times a block), the first ask is immediate, and the receipt is the mined one."""

import pytest
from web3 import Web3

from offchain.chain.anvil import running_anvil
from offchain.chain.ape_compat import poll_receipts_every

pytestmark = pytest.mark.anvil


def test_receipts_polled_every_half_second__at_most_a_few_asks_per_block(tmp_path):
    with running_anvil(log_path=tmp_path / "anvil.log") as url:
        w3 = Web3(Web3.HTTPProvider(url))
        w3.provider.make_request("evm_setIntervalMining", [1])
        poll_receipts_every(w3, 0.5)
        poll_receipts_every(w3, 0.5)  # idempotent: not wrapped twice
        asks = []
        send = w3.provider.make_request
        w3.provider.make_request = lambda m, p: (asks.append(m), send(m, p))[1]
        a = w3.eth.accounts
        tx = w3.eth.send_transaction({"from": a[0], "to": a[1], "value": 1})
        receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=10)
        assert receipt.status == 1 and receipt.blockNumber >= 1
        assert 1 <= asks.count("eth_getTransactionReceipt") <= 4  # one block: ~2-3 asks, not ~10
