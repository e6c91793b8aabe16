"""offchain/chain/ape_compat.py: receipt polling on a real anvil mining a block a second (a sent
transaction's receipt is asked for every 0.5 s; ape's web3 default, 0.1 s, asks about ten
times a block; the first ask is immediate, and the receipt is the mined one); a `gpunet`
process without ape's in-process test chain or its query cache (neither py-evm nor SQLAlchemy
imported; anvil's provider offered, ape's own queries answered)."""

import json
import subprocess
import sys

import pytest
from web3 import Web3

from offchain.chain.anvil import running_anvil
from offchain.chain.ape_compat import poll_receipts_every


@pytest.mark.anvil
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


WITHOUT_UNUSED_PLUGINS = """
import json, sys
from offchain.chain.ape_compat import without_unused_plugins
without_unused_plugins()
without_unused_plugins()  # idempotent
from ape import accounts, chain, networks
with networks.parse_network_choice("ethereum:local:foundry", provider_settings={"host": sys.argv[1]}):
    engines = sorted(type(e).__name__ for e in chain.query_manager.engines.values())
    blocks = len(list(chain.blocks.range(0, chain.blocks.height + 1)))  # through ape's query manager
print(json.dumps({"providers": sorted(networks.ethereum.local.providers), "engines": engines, "blocks": blocks,
                  "test_accounts": len(accounts.test_accounts) > 0,
                  "py_evm": sorted(m for m in sys.modules if m == "eth.vm" or m.startswith("eth.vm."))[:3],
                  "sqlalchemy": "sqlalchemy" in sys.modules}))
"""


@pytest.mark.anvil
def test_without_unused_plugins__no_py_evm_no_sqlalchemy__anvil_and_ape_queries_work(tmp_path):
    """In a process of its own (the pytest process runs on that very test chain), on a real anvil:
    anvil's provider is offered and connects, ape's default query engine answers, test accounts
    still sign; neither py-evm nor SQLAlchemy is imported."""
    with running_anvil(log_path=tmp_path / "anvil.log") as url:
        out = subprocess.run([sys.executable, "-c", WITHOUT_UNUSED_PLUGINS, url], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert "foundry" in got["providers"] and "test" not in got["providers"]
    assert "DefaultQueryProvider" in got["engines"] and "CacheQueryProvider" not in got["engines"]
    assert got["blocks"] >= 1
    assert got["test_accounts"] and got["py_evm"] == [] and got["sqlalchemy"] is False
