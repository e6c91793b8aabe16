"""offchain.chain.follow: the one event layer. On ape's anvil: every event of several contracts
from one eth_getLogs per chunk, in chain order, each once; a cursor that survives a restart
(a new Follower on the same store); a real reorganisation (anvil snapshot, revert, a different
branch) replayed from the newest saved block still on the chain; a fork deeper than the
configured depth refused with a reason."""

import pytest

from offchain.chain.follow import Follower, ReorgTooDeep, Source, contract_logs


class MetaStore:
    """The smallest store a Follower needs (both SQLite stores have the same two methods)."""

    def __init__(self):
        self.meta = {}

    def get_meta(self, key, default=None):
        return self.meta.get(key, default)

    def set_meta(self, key, value):
        self.meta[key] = value


def _collect(follower, head):
    got = []
    follower.follow(head, lambda logs, start, stop: got.extend(logs))
    return got


def _amounts(logs):
    return [int(lg.event_arguments["value"]) for lg in logs if lg.event_name == "Transfer"]


def test_one_query_for_every_source__chain_order__cursor_resumes(chain, token, registry, deployer, accounts):
    start = int(chain.blocks.height) + 1
    token.mint(accounts[12], 5, sender=deployer)
    registry.set_offer(1, 10**17, sender=accounts[12])
    token.mint(accounts[12], 7, sender=deployer)
    head = int(chain.blocks.height)
    logs = contract_logs(chain.provider, [Source(token, ("Transfer",)), Source(registry, ("OfferSet",))], start, head)
    assert [lg.event_name for lg in logs] == ["Transfer", "OfferSet", "Transfer"]
    store = MetaStore()
    f = Follower(chain, [Source(token, ("Transfer",))], store, "c", start_block=start, chunk_blocks=1)
    assert _amounts(_collect(f, head)) == [5, 7] and f.cursor == head
    assert _collect(f, head) == []  # nothing twice
    token.mint(accounts[12], 9, sender=deployer)
    again = Follower(chain, [Source(token, ("Transfer",))], store, "c", start_block=start)  # a restart
    assert _amounts(_collect(again, int(chain.blocks.height))) == [9]


def test_reorg__replayed_from_the_newest_saved_block_on_the_chain(chain, token, deployer, accounts):
    start = int(chain.blocks.height) + 1
    store = MetaStore()
    f = Follower(chain, [Source(token, ("Transfer",))], store, "c", start_block=start, reorg_depth=8)
    token.mint(accounts[12], 1, sender=deployer)
    assert _amounts(_collect(f, int(chain.blocks.height))) == [1]
    snap = chain.snapshot()
    token.mint(accounts[12], 2, sender=deployer)
    assert _amounts(_collect(f, int(chain.blocks.height))) == [2]
    chain.restore(snap)  # the block holding "2" is gone; another branch grows past it
    token.mint(accounts[12], 3, sender=deployer)
    chain.mine(2)
    assert _amounts(_collect(f, int(chain.blocks.height))) == [3] and f.reorgs == 1


def test_reorg_deeper_than_the_depth__refused_with_a_reason(chain, token, deployer, accounts):
    start = int(chain.blocks.height) + 1
    f = Follower(chain, [Source(token, ("Transfer",))], MetaStore(), "c", start_block=start, reorg_depth=1)
    chain.mine(1)
    snap = chain.snapshot()
    for v in (1, 2, 3):
        token.mint(accounts[12], v, sender=deployer)
        _collect(f, int(chain.blocks.height))
    chain.restore(snap)
    chain.mine(6)
    with pytest.raises(ReorgTooDeep, match="deeper than reorg_depth=1"):
        _collect(f, int(chain.blocks.height))


def test_bad_settings_are_refused(chain, token):
    with pytest.raises(ValueError, match="reorg_depth must be >= 0"):
        Follower(chain, [Source(token, ("Transfer",))], MetaStore(), reorg_depth=-1)
