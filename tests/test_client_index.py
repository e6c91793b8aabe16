"""The client's market index (offchain/client/index.py) on the in-process chain: built from the
registry's and hub's events, current after each sync without reading old blocks again, reopened
from its file by a new process (the same rows, the cursor where it was), and dropped and rebuilt
when the chain it was built from is replaced (a revert to a snapshot: an offer and a machine
that only existed on the abandoned branch are gone from it)."""

from types import SimpleNamespace

import pytest
from conftest import CPU, PRICE

from offchain.client.index import MarketIndex
from offchain.constants import MachineStatus


@pytest.fixture(scope="module", autouse=True)
def _wider_fixtures_first(chain, deployment, registry, provider, provider2):
    """Session fixtures first: ape's snapshot isolation rebases when one starts inside a test."""


@pytest.fixture
def h(deployment, chain):
    d = deployment
    return SimpleNamespace(registry=d.registry, hub=d.hub, chain=chain, record={"block": chain.blocks.height})


def test_index__built_from_events__reopened_from_its_file(h, tmp_path, chain, make_provider, provider):
    mid = make_provider(provider)
    idx = MarketIndex(h, tmp_path / "i.sqlite")
    head = idx.sync()
    assert head == chain.blocks.height
    assert (provider.address, PRICE) in idx.offers(CPU)
    [(m, status, _, endpoint)] = idx.machines(provider.address, CPU)
    assert (m, status) == (mid, MachineStatus.ACTIVE) and endpoint.endswith(provider.address)
    again = MarketIndex(h, tmp_path / "i.sqlite")  # another process, the same file
    assert again.follower.cursor == head
    assert again.machines(provider.address, CPU) == idx.machines(provider.address, CPU)


def test_index__chain_reverted__dropped_and_rebuilt(h, tmp_path, chain, make_provider, provider, provider2):
    make_provider(provider)
    idx = MarketIndex(h, tmp_path / "i.sqlite")
    idx.sync()
    snap = chain.snapshot()
    make_provider(provider2, price=2 * PRICE)
    idx.sync()
    assert {p for p, _ in idx.offers(CPU)} == {provider.address, provider2.address}
    chain.restore(snap)  # provider2's machine and offer never happened on this branch
    chain.mine(5)
    idx.sync()
    assert {p for p, _ in idx.offers(CPU)} == {provider.address} and idx.machines(provider2.address, CPU) == []
    assert idx.follower.reorgs == 1
