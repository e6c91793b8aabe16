"""Following a deployment's events from a stored cursor: the one event layer of the worker, the
oracle and the client index.

- **One query per chunk.** Every event of interest of every contract comes from one
  `eth_getLogs` per chunk of blocks (the addresses and the event selectors in one filter),
  decoded once by ape into `ContractLog`s and handed over in chain order.
- **A cursor.** The last block handed over, and its hash, are saved (through the caller's
  store: `get_meta` / `set_meta`) after the handler returned, chunk by chunk; a restart reads
  again at most the chunk it died in, so handlers must be idempotent (every handler here is:
  it rewrites the same rows).
- **Reorgs within `reorg_depth` blocks.** Before reading on, the cursor block's stored hash is
  compared with the chain's. If they differ, the blocks it covered were replaced: the cursor
  moves back `reorg_depth` blocks and those are handed over again (idempotent handlers rewrite
  what the new branch says; a row written from the abandoned branch and not rewritten is the
  caller's to revalidate against the chain, as every caller does before it acts). A fork deeper
  than `reorg_depth` blocks is not recoverable from the cursor: `ReorgTooDeep`, which the
  services treat as a broken invariant (stop, say why). `reorg_depth=0` skips the check (a
  local anvil never reorganises on its own): one block read less per cycle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eth_utils import encode_hex, keccak

CHUNK_BLOCKS = 5_000
LOCAL_CHAIN_IDS = (1337, 31337)  # anvil and other dev nodes: no reorganisations of their own
PUBLIC_REORG_DEPTH = 12


def default_reorg_depth(chain_id: int) -> int:
    """0 on a local dev chain (no check, one block read less per cycle), else PUBLIC_REORG_DEPTH."""
    return 0 if int(chain_id) in LOCAL_CHAIN_IDS else PUBLIC_REORG_DEPTH


class CursorStore(Protocol):
    def get_meta(self, key: str, default: str | None = None) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


class ReorgTooDeep(RuntimeError):
    """The chain no longer has the block the cursor points at, even `reorg_depth` blocks back."""


@dataclass(frozen=True)
class Source:
    """Events of one contract to follow: `Source(h.market, ("JobCreated", "JobAccepted"))`."""

    contract: Any
    events: tuple[str, ...]


def contract_logs(provider: Any, sources: Sequence[Source], start: int, stop: int) -> list[Any]:
    """Every log of `sources` in blocks [start, stop], in chain order, from one `eth_getLogs`
    (per `provider.block_page_size` blocks).

    `stop` must be at or below a head the caller read. Not ape's `get_contract_logs`: it reads
    the head again before every query (one `eth_getBlockByNumber` per cycle of every follower).
    """
    from ape.types import LogFilter

    abis = [getattr(s.contract, name).abi for s in sources for name in s.events]
    selectors = sorted({encode_hex(keccak(text=abi.selector)) for abi in abis})
    addresses = sorted({s.contract.address for s in sources})
    flt = LogFilter(addresses=addresses, events=abis, topic_filter=[selectors], start_block=start, stop_block=stop)
    page = max(1, int(getattr(provider, "block_page_size", 5000) or 5000))
    logs: list[Any] = []
    for lo in range(start, stop + 1, page):
        params = flt.model_copy(update={"start_block": lo, "stop_block": min(lo + page - 1, stop)})
        raw = provider.web3.eth.get_logs(params.model_dump(mode="json"))
        logs.extend(provider.network.ecosystem.decode_logs([dict(lg) for lg in raw], *abis))
    return sorted(logs, key=lambda lg: (int(lg.block_number), int(lg.log_index)))


def _hash_hex(block: Any) -> str:
    h = block.hash
    return h.hex() if isinstance(h, bytes) else str(h)


class Follower:
    """Hands the logs of `sources` since the cursor `key` in `store` to a handler, chunk by chunk.

    `start_block`: where a store without a cursor starts (the deployment block).
    """

    def __init__(
        self,
        chain: Any,
        sources: Sequence[Source],
        store: CursorStore,
        key: str = "cursor",
        *,
        start_block: int = 0,
        reorg_depth: int = 0,
        chunk_blocks: int = CHUNK_BLOCKS,
        on_reorg: Callable[[], None] | None = None,
    ):
        if reorg_depth < 0 or chunk_blocks < 1:
            raise ValueError("reorg_depth must be >= 0 and chunk_blocks >= 1")
        self.chain, self.sources, self.store, self.key = chain, tuple(sources), store, key
        self.start_block, self.reorg_depth, self.chunk_blocks = start_block, reorg_depth, chunk_blocks
        # on_reorg: instead of replaying from the fork, the caller drops what it derived (a cache
        # it can rebuild, e.g. the client's index) and everything is read again from start_block.
        self.on_reorg = on_reorg
        self._checks = bool(reorg_depth or on_reorg)
        self.reorgs = 0  # reorganisations seen (and replayed) since this follower was made

    @property
    def cursor(self) -> int:
        """The last block handed over (start_block - 1 before the first)."""
        return int(self.store.get_meta(self.key, str(self.start_block - 1)) or self.start_block - 1)

    def _ring(self) -> list[list]:
        return json.loads(self.store.get_meta(f"{self.key}_hashes", "[]") or "[]")

    def _save(self, block: int) -> None:
        if self._checks:
            # (block, hash) of the saved cursors within `reorg_depth` blocks (and the last one
            # before them): where a replay can restart once a fork is found.
            ring = [e for e in self._ring() if e[0] < block] + [[block, _hash_hex(self.chain.blocks[block])]]
            keep = [e for e in ring if e[0] >= block - self.reorg_depth]
            older = [e for e in ring if e[0] < block - self.reorg_depth]
            self.store.set_meta(f"{self.key}_hashes", json.dumps(older[-1:] + keep))
        self.store.set_meta(self.key, str(block))

    def _check_reorg(self, head: int) -> int:
        """The cursor; moved back to the newest saved block still on the chain if the block it
        points at was replaced (a reorganisation), within `reorg_depth` blocks."""
        cursor = self.cursor
        ring = self._ring() if self._checks else []
        if not ring or ring[-1][0] != cursor:
            return cursor
        if cursor <= head and _hash_hex(self.chain.blocks[cursor]) == ring[-1][1]:
            return cursor
        self.reorgs += 1
        if self.on_reorg is not None:
            self.on_reorg()
            self.store.set_meta(f"{self.key}_hashes", "[]")
            self.store.set_meta(self.key, str(self.start_block - 1))
            return self.start_block - 1
        for block, h in reversed(ring[:-1]):
            if block <= head and _hash_hex(self.chain.blocks[block]) == h:
                back = block
                break
        else:
            if ring[0][0] <= cursor - self.reorg_depth:
                raise ReorgTooDeep(
                    f"the chain replaced block {cursor} and every saved block back to {ring[0][0]}: a fork deeper "
                    f"than reorg_depth={self.reorg_depth} blocks; rebuild this store from the deployment block"
                )
            back = max(self.start_block - 1, cursor - self.reorg_depth)
        self.store.set_meta(f"{self.key}_hashes", json.dumps([e for e in ring if e[0] <= back]))
        self.store.set_meta(self.key, str(back))
        return back

    def follow(self, head: int, handle: Callable[[list[Any], int, int], None]) -> int:
        """Hands `handle(logs, start, stop)` every chunk of logs in (cursor, head], saving the
        cursor after each; returns the new cursor."""
        start = self._check_reorg(head) + 1
        while start <= head:
            stop = min(head, start + self.chunk_blocks - 1)
            handle(contract_logs(self.chain.provider, self.sources, start, stop), start, stop)
            self._save(stop)
            start = stop + 1
        return self.cursor
