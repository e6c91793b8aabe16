"""Part of the oracle service (`offchain/oracle/service.py`, which documents the whole loop): the
operator's duty as an AuditBeacon member (contracts/AuditBeacon.vy, `offchain.chain.beacon`).

Every result submitted at time T is drawn from beacon round T // R + 1 (R = ROUND_SECONDS); the
round's seed is known once every member revealed the next value of its hash chain, which it may
do from the round's start to REVEAL_WINDOW seconds after it. A round not fully revealed in time
is degraded: every job drawn from it is audited. So an operator that misses reveals only adds
audits; one that reveals *early* (before the round started, while results drawn from it may
still be submitted) lets a provider who learns its value predict the draw. This duty:

- derives its hash chain from the operator's key (`HashChain.derive(key, chain id + beacon
  address + generation)`), the generations it committed kept in the store's meta table, so a
  restart rebuilds the chain and finds its place from the on-chain tip (`next_after`);
- commits at start when it is a member and its on-chain tip (or pending tip) is on none of its
  chains (a new member, or a lost database), and commits a new generation when fewer than
  `refresh_below` values are left; a generation is the round it was committed in, so a lost
  database never makes it commit a chain it revealed from before;
- follows JobMarket's JobAccepted and ResultSubmitted events itself (its own cursor, from the
  blocks of the last R + REVEAL_WINDOW seconds at start) and reveals, in increasing order, for
  every round that a result with a non-zero audit rate is drawn from;
- reveals only once the round has started at the chain's time: the head's timestamp, or on a
  dev chain that mines only on transactions (`dev_chain`: local networks, whose head may be
  minutes old) the pending block's, which the block that includes the reveal is stamped no
  earlier than (anvil: the wall clock plus any `evm_increaseTime`); never before;
- skips rounds it can no longer reveal (window over, not a member then, chain unknown),
  counting them as missed. Failures are logged in one line and retried while the window is open.

It runs on a thread of its own (`run`), not in the service's main loop, whose hardware challenges
and co-signing rounds can take longer than the reveal window; chain access takes the service's
chain lock like everything else.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from offchain.chain.beacon import CHAIN_LENGTH, HashChain
from offchain.constants import JobStatus
from offchain.oracle import jobwatch
from offchain.oracle.common import log

ZERO32 = b"\x00" * 32
# A new chain is committed when fewer values than this are left (at three reveals a minute at
# most, 1000 values last over five hours; the new one applies two rounds later).
REFRESH_BELOW = 1_000
# How often the member's on-chain state is re-read to check its commitment when nothing happens.
MEMBER_CHECK_S = 30.0
# Generations kept in the store (the chains that may still hold the on-chain tips).
KEEP_GENERATIONS = 4
# Submissions fix a job's draw round: a result, or a signed order filled with its result (a batch
# order's fill carries the round and the audit rate once, in OrderBatchFilled).
BEACON_EVENTS = ("JobAccepted", "ResultSubmitted", "OrderFilled", "OrderBatchFilled")
# Audit rates of accepted jobs kept until their results come (forgotten beyond this many: an
# unknown rate counts as non-zero).
MAX_PENDING_RATES = 100_000


def _key_bytes(key: Any) -> bytes:
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    return bytes.fromhex(str(key).removeprefix("0x"))


def key_signer(private_key: Any) -> Any:
    """An ape account that signs with `private_key` (reveals must come from the member itself)."""
    from ape_accounts.accounts import ApeSigner

    return ApeSigner(private_key="0x" + _key_bytes(private_key).hex())


class BeaconDuty:
    """One member's commits and reveals; `tick()` does what is due now, `run()` ticks until stopped."""

    def __init__(
        self,
        *,
        beacon: Any,
        market: Any,
        chain: Any,
        store: Any,
        key: Any,
        address: str,
        sender: Any,
        lock: Any = None,
        metrics: Any = None,
        dev_chain: bool = False,
        deploy_block: int = 0,
        chain_length: int = CHAIN_LENGTH,
        refresh_below: int = REFRESH_BELOW,
    ):
        self.beacon, self.market, self.chain, self.store = beacon, market, chain, store
        self._key = _key_bytes(key)
        self.address = address
        self.sender = sender
        self.lock = lock if lock is not None else threading.RLock()
        self.metrics = metrics
        self.dev_chain = dev_chain
        self.deploy_block = int(deploy_block)
        self.chain_length = int(chain_length)
        self.refresh_below = int(refresh_below)
        self._chains: dict[int, HashChain] = {}
        self._rounds: set[int] = set()  # rounds to reveal in
        self._bps: dict[int, int] = {}  # job id -> audit rate, from JobAccepted
        self._cursor: int | None = None  # last block whose events were read
        self._member: Any = None
        self._member_read_at = -1e18
        self._committed_in: int | None = None  # round of the last commit sent (one per round at most)
        self._not_member_logged = False
        self.started = False

    # ------------------------------------------------------------------ setup
    @property
    def _meta_key(self) -> str:
        return f"beacon_generations:{str(self.beacon.address).lower()}"

    def _generations(self) -> list[int]:
        return [int(g) for g in json.loads(self.store.get_meta(self._meta_key, "[]"))]

    def start(self) -> None:
        with self.lock:
            self.R = int(self.beacon.ROUND_SECONDS())
            self.W = int(self.beacon.REVEAL_WINDOW())
            self.chain_id = int(self.chain.chain_id)
            head = int(self.chain.blocks.height)
            head_ts = int(self.chain.blocks.head.timestamp)
            # Only results of the last R + W seconds can still need a reveal (a round more: slack).
            lo = min(self.deploy_block, head)
            first = _first_block_at(self.chain, head_ts - self.R - self.W - self.R, lo, head)
        self._cursor = first - 1
        for g in self._generations():
            self._chain(g)
        self.started = True
        self._check_commitment(self._now()[1], force=True)

    def _chain(self, generation: int) -> HashChain:
        if generation not in self._chains:
            context = (
                self.chain_id.to_bytes(32, "big")
                + bytes.fromhex(str(self.beacon.address).removeprefix("0x"))
                + int(generation).to_bytes(32, "big")
            )
            self._chains[generation] = HashChain.derive(self._key, context, self.chain_length)
        return self._chains[generation]

    def _chain_with(self, tip: bytes) -> HashChain | None:
        if bytes(tip) == ZERO32:
            return None
        return next((c for _, c in sorted(self._chains.items(), reverse=True) if bytes(tip) in c), None)

    # ------------------------------------------------------------------ the loop
    def run(self, stop: threading.Event, period: float = 1.0) -> None:
        """Ticks every `period` seconds until `stop` is set; errors are logged and retried."""
        last_error = None
        while not stop.is_set():
            try:
                self.tick()
                last_error = None
            except Exception as e:  # noqa: BLE001 - RPC trouble and the like: one line, retry
                msg = f"{type(e).__name__}: {str(e)[:200]}"
                if msg != last_error:
                    log.warning(json.dumps({"event": "beacon_error", "error": msg}))
                last_error = msg
                if self.metrics is not None:
                    self.metrics.rpc_errors.inc()
            stop.wait(period)

    def _now(self) -> tuple[int, int]:
        """(head block number, the time a transaction sent now is included at the earliest)."""
        with self.lock:
            block = self.chain.blocks.head  # one read for both: number and time
            head, ts = int(block.number), int(block.timestamp)
            if self.dev_chain:
                ts = max(ts, int(self.chain.pending_timestamp))
        return head, ts

    def tick(self) -> None:
        if not self.started:
            self.start()
        head, now = self._now()
        self._follow(head)
        self._reveal_due(now)
        if time.monotonic() - self._member_read_at > MEMBER_CHECK_S:
            self._check_commitment(now, force=True)

    def _follow(self, head: int) -> None:
        start = self._cursor + 1
        if start > head:
            return
        with self.lock:
            logs = jobwatch.market_logs(self.market, self.chain.provider, start, head, BEACON_EVENTS)
        for lg in logs:
            args = lg.event_arguments
            if lg.event_name in ("OrderFilled", "OrderBatchFilled"):  # accepted and, with a result, submitted
                if int(args["draw_round"]) and int(args["audit_bps"]) != 0:
                    self._rounds.add(int(args["draw_round"]))
                elif not int(args["draw_round"]) and lg.event_name == "OrderFilled":  # Running: its rate, for later
                    self._bps[int(args["job_id"])] = int(args["audit_bps"])
                continue
            job_id = int(args["job_id"])
            if lg.event_name == "JobAccepted":
                if len(self._bps) > MAX_PENDING_RATES:  # accepted, never submitted: forget them
                    self._bps.clear()
                self._bps[job_id] = int(args["audit_bps"])
                continue
            bps = self._bps.pop(job_id, None)
            if bps is None:  # accepted before our cursor: the service's job cache may know its rate
                row = self.store.job(job_id)
                if row is not None and int(row["status"]) != int(JobStatus.OPEN):
                    bps = int(row["job"]["audit_bps"])
            if bps != 0:  # unknown rates count as non-zero: a needless reveal costs only gas
                self._rounds.add(int(args["draw_round"]))
        self._cursor = head

    # ------------------------------------------------------------------ member state
    def _read_member(self) -> Any:
        with self.lock:
            self._member = self.beacon.members(self.address)
        self._member_read_at = time.monotonic()
        return self._member

    def _tip_for(self, m: Any, round_: int) -> bytes:
        """The value the member's reveal for `round_` must hash to."""
        if int(m.pending_from) != 0 and round_ >= int(m.pending_from):
            return bytes(m.pending_tip)
        return bytes(m.tip)

    def _check_commitment(self, now: int, force: bool = False) -> None:
        """Commits a new chain when the member's future tip is on none of this operator's chains
        (never committed, or state lost) or its chain is nearly used up."""
        m = self._read_member() if force or self._member is None else self._member
        current = now // self.R
        if int(m.active_until) <= current:
            if not self._not_member_logged:
                log.info(json.dumps({"event": "beacon_not_member", "operator": self.address,
                                     "beacon": str(self.beacon.address)}))  # fmt: skip
                self._not_member_logged = True
            return
        self._not_member_logged = False
        future = bytes(m.pending_tip) if int(m.pending_from) != 0 else bytes(m.tip)
        chain = self._chain_with(future)
        left = chain.remaining_after(future) if chain is not None else 0
        if self.metrics is not None:
            self.metrics.beacon_chain_left.set(left)
        if chain is not None and left >= self.refresh_below:
            return
        if self._committed_in is not None and self._committed_in >= current:
            return  # one commit per round (the one sent may not be mined yet)
        why = "new member" if future == ZERO32 else ("chain unknown" if chain is None else f"{left} values left")
        self._commit(current, why)

    def _commit(self, generation: int, why: str) -> None:
        # The generation is recorded before the commitment is sent: a crash in between must not
        # lose the chain a mined commitment belongs to.
        gens = [g for g in self._generations() if g != generation][-(KEEP_GENERATIONS - 1) :] + [generation]
        self.store.set_meta(self._meta_key, json.dumps(gens))
        for g in list(self._chains):
            if g not in gens:
                del self._chains[g]
        chain = self._chain(generation)
        self._committed_in = generation
        try:
            with self.lock:
                tx = self.beacon.commit(chain.commitment, sender=self.sender)
        except Exception as e:  # noqa: BLE001 - retried in a later round
            log.warning(json.dumps({"event": "beacon_commit_failed", "why": why, "error": _reason(e)}))
            return
        if self.metrics is not None:
            self.metrics.beacon_commits.inc()
        applies = [int(x.applies_from) for x in tx.decode_logs(self.beacon.Committed)]
        log.info(json.dumps({"event": "beacon_committed", "why": why, "generation": generation,
                             "applies_from": applies[0] if applies else None}))  # fmt: skip
        self._read_member()

    # ------------------------------------------------------------------ reveals
    def _reveal_due(self, now: int) -> None:
        """Reveals for every round that has started (at `now`) and is still open, oldest first;
        drops the rounds it can no longer reveal in."""
        if not self._rounds or now < min(self._rounds) * self.R:
            return
        m = self._read_member()
        for r in sorted(self._rounds):
            start = r * self.R
            if now < start:
                return  # not started: never reveal early (later rounds start later still)
            if r <= int(m.last_round):
                self._rounds.discard(r)  # revealed (by us, before a restart) or superseded
                continue
            if not (int(m.active_from) <= r < int(m.active_until)):
                self._rounds.discard(r)  # not a member for that round: nothing to reveal
                continue
            if now > start + self.W:
                self._missed(r, "reveal window over")
                continue
            tip = self._tip_for(m, r)
            chain = self._chain_with(tip)
            value = chain.next_after(tip) if chain is not None else None
            if value is None:
                self._missed(r, "no chain value for the on-chain tip (new commitment pending)")
                self._check_commitment(now)
                continue
            try:
                with self.lock:
                    self.beacon.reveal(r, value, sender=self.sender)
            except Exception as e:  # noqa: BLE001 - retried while the window is open
                reason = _reason(e)
                log.warning(json.dumps({"event": "beacon_reveal_failed", "round": r, "error": reason}))
                if "already revealed" in reason or "not a member" in reason or "window over" in reason:
                    self._missed(r, reason)
                    continue
                return  # keep the order: retry this round first next time
            self._rounds.discard(r)
            if self.metrics is not None:
                self.metrics.beacon_reveals.inc()
            log.info(json.dumps({"event": "beacon_revealed", "round": r, "left": chain.remaining_after(value)}))
            m = self._read_member()
            if chain.remaining_after(value) < self.refresh_below:
                self._check_commitment(now)

    def _missed(self, round_: int, why: str) -> None:
        self._rounds.discard(round_)
        if self.metrics is not None:
            self.metrics.beacon_rounds_missed.inc()
        log.warning(json.dumps({"event": "beacon_round_missed", "round": round_, "why": why}))


def _reason(e: Exception) -> str:
    """An exception in one line: the revert reason when there is one."""
    msg = str(getattr(e, "revert_message", None) or e).strip()
    return msg.splitlines()[0][:200] if msg else type(e).__name__


def _first_block_at(chain: Any, timestamp: int, lo: int, hi: int) -> int:
    from offchain.oracle.epoch_rewards import first_block_at

    return first_block_at(chain, timestamp, lo, hi)


def start_for_service(svc: Any) -> BeaconDuty | None:
    """The service's duty on a daemon thread of its own (ticking every poll interval, at most
    every second), or None when the deployment has no AuditBeacon. Reveals come from the
    operator's own account: the service's sender when it is that account, else a signer of
    the operator key."""
    from offchain.chain.client import is_local

    beacon = getattr(svc.h, "beacon", None)
    if beacon is None:
        log.warning(json.dumps({"event": "beacon_absent", "detail": "no AuditBeacon in the deployment record"}))
        return None
    same = str(svc.sender.address).lower() == svc.address.lower()
    duty = BeaconDuty(
        beacon=beacon,
        market=svc.h.market,
        chain=svc.h.chain,
        store=svc.store,
        key=svc.cfg.operator_key,
        address=svc.address,
        sender=svc.sender if same else key_signer(svc.cfg.operator_key),
        lock=svc._chain_lock,
        metrics=svc.metrics,
        dev_chain=is_local(svc.cfg.network),
        deploy_block=int(svc.h.record.get("block") or 0),
    )
    period = min(svc.cfg.poll_s, 1.0)
    threading.Thread(target=duty.run, args=(svc._stop, period), name="beacon", daemon=True).start()
    return duty
