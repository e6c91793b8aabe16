"""The oracle's view of the chain: ProviderRegistry's machine events and JobMarket's job events
since its cursor, through the one event layer (`offchain.chain.follow`: one `eth_getLogs` per
chunk for both contracts, a cursor saved after each chunk, reorganisations within
`reorg_depth` blocks replayed from the newest saved block still on the chain).

Handlers are idempotent, so a restart re-reads at most the chunk it died in and converges to the
same tables: a machine row is rewritten from the registry's current state, a job row from its
event (`jobwatch.apply_market_log`).
"""

from __future__ import annotations

import json
from typing import Any

from offchain.chain.follow import Follower, ReorgTooDeep, Source, default_reorg_depth
from offchain.oracle import jobwatch
from offchain.oracle.common import CircuitBreaker, log

REGISTRY_EVENTS = ("MachineRegistered", "MachineStatusChanged", "AttestationRecorded", "EndpointUpdated")
CURSOR = "events_cursor"


class FollowingMixin:
    """`follow_chain` for OracleService (uses self.h, self.store, self.metrics)."""

    def _make_follower(self) -> Follower:
        h, store = self.h, self.store
        start = int(h.record.get("block") or 0)
        if store.get_meta(CURSOR) is None and store.get_meta("cursor") is not None:
            # A database from before the event layer kept a cursor per contract (and none for
            # the market if it predates job following): resume from the older one; the replay
            # is idempotent.
            old = min(int(store.get_meta("cursor")), int(store.get_meta("market_cursor", str(start - 1))))
            store.set_meta(CURSOR, str(old))
        depth = self.cfg.reorg_depth if self.cfg.reorg_depth is not None else default_reorg_depth(h.chain.chain_id)
        sources = [Source(h.registry, REGISTRY_EVENTS), Source(h.market, jobwatch.MARKET_EVENTS)]
        return Follower(h.chain, sources, store, CURSOR, start_block=start, reorg_depth=depth)

    def follow_chain(self) -> None:
        if getattr(self, "follower", None) is None:
            self.follower = self._make_follower()
        try:
            self.follower.follow(int(self.h.chain.blocks.height), self._apply_logs)
        except ReorgTooDeep as e:
            raise CircuitBreaker(str(e)) from None
        self.index_synced = True  # followed to a head read after start-up: verdicts may be co-signed
        self.metrics.last_block.set(self.follower.cursor)

    def _apply_logs(self, logs: list[Any], start: int, stop: int) -> None:
        reg = self.h.registry.address
        block_ts: dict[int, int] = {}
        batch_jobs: dict[str, list] = {}  # a batch order's jobs until its OrderBatchFilled
        # machine id -> block of its latest event in this chunk: every operator derives the same
        # "first seen" chain time from it, so they agree on who leads (see `leader_for`).
        touched: dict[int, int] = {}
        for lg in logs:
            if lg.contract_address == reg:
                mid = int(lg.event_arguments["machine_id"])
                touched[mid] = max(touched.get(mid, 0), int(lg.block_number))
            else:
                self._market_log(lg, block_ts, batch_jobs)
        for mid, block in sorted(touched.items()):
            info = self.h.registry.machines(mid)
            seen = self._block_ts(block, block_ts)
            self.store.upsert_machine(
                mid, info.provider, info.class_id, info.vram_mb, info.endpoint, info.status, info.attested_until, seen
            )

    def _block_ts(self, block: int, cache: dict[int, int]) -> int:
        if block not in cache:
            cache[block] = int(self.h.chain.blocks[block].timestamp)
        return cache[block]

    def _follow_market(self, start: int, head: int) -> None:
        """Applies JobMarket's events in [start, head] to the cached jobs (one log query)."""
        block_ts: dict[int, int] = {}
        batch_jobs: dict[str, list] = {}
        for lg in jobwatch.market_logs(self.h.market, self.h.chain.provider, start, head):
            self._market_log(lg, block_ts, batch_jobs)

    def _market_log(self, lg: Any, block_ts: dict[int, int], batch_jobs: dict[str, list]) -> None:
        jobwatch.apply_market_log(self.store, lg, self._block_ts(int(lg.block_number), block_ts), batch_jobs)
        if lg.event_name == "ResultSubmitted":
            row = self.store.job(int(lg.event_arguments["job_id"]))
            if row is not None:
                self.metrics.submitted_job_units.inc(int(row["job"]["compute_units"]))
        elif lg.event_name == "VerdictPosted":
            valid = bool(lg.event_arguments["valid"])
            self.metrics.verdicts.labels(valid=str(valid).lower()).inc()
            log.info(json.dumps({"event": "verdict_posted", "job_id": int(lg.event_arguments["job_id"]),
                                 "valid": valid}))  # fmt: skip
