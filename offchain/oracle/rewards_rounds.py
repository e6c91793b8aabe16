"""Part of the oracle service (`offchain/oracle/service.py`, which documents the whole loop): Epoch
rewards (Emissions): finalizing epochs, building and proposing the rewards root, co-signing it,
serving trees and proofs.

A mixin of `OracleService`: it uses the service's chain handles, store, metrics and signing.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests
from eth_utils import to_checksum_address

from offchain.economics import rewards as RW
from offchain.oracle import epoch_rewards
from offchain.oracle.common import (
    _hex32,
    log,
)
from offchain.oracle.quorum import Duty


def _rewards_agree(svc: Any, report: dict) -> bool:
    try:
        return svc._rewards_match(report) is None
    except Exception:  # noqa: BLE001 - unreadable snapshot: no agreement
        return False


# Epoch rewards: one root per epoch, signed under Emissions' own EIP-712 domain; a peer agrees
# when its own rebuild at the same snapshot block gives the same root.
REWARDS = Duty(
    kind="rewards",
    subject=lambda svc, r: svc._rewards_subject(int(r["epoch"])),
    typed_data=lambda svc, r: RW.rewards_typed_data(svc.h.emissions.address, svc.chain_id, r),
    agrees=_rewards_agree,
    submit=lambda svc, r, sigs, job: svc.h.emissions.submit_rewards(RW.report_tuple(r), sigs, sender=svc.sender),
    taken=("wrong nonce", "rewards already posted"),
)


class RewardsRoundsMixin:
    def _rewards_subject(self, epoch: int) -> str:
        return f"rewards:{epoch}"

    def _epoch_end(self, epoch: int) -> int:
        em = self.h.emissions
        if not hasattr(self, "_em_timing"):
            with self._chain_lock:
                self._em_timing = (int(em.GENESIS()), int(em.EPOCH_SECONDS()))
        genesis, seconds = self._em_timing
        return genesis + (epoch + 1) * seconds

    def own_rewards(self, epoch: int, block: int) -> RW.EpochRewards | None:
        """This operator's own rewards tree for `epoch` from the chain at snapshot `block`
        (memoized, and stored so that its proofs are served); None when nothing is due."""
        key = (epoch, block)
        if key in self._rewards_cache:
            return self._rewards_cache[key]
        with self._chain_lock:
            if block > self.h.chain.blocks.height:
                raise ValueError(f"snapshot block {block} is ahead of the head")
            if int(self.h.chain.blocks[block].timestamp) < self._epoch_end(epoch):
                raise ValueError(f"snapshot block {block} is before the end of epoch {epoch}")
            t0 = time.monotonic()
            r = epoch_rewards.build_epoch_rewards(self.h, epoch, block, from_block=int(self.h.record.get("block") or 0))
        self.metrics.rewards_built.inc()
        log.info(json.dumps({"event": "rewards_built", "epoch": epoch, "block": block,
                             "root": "0x" + r.root.hex() if r else None, "leaves": len(r.leaves) if r else 0,
                             "seconds": round(time.monotonic() - t0, 3)}))  # fmt: skip
        if r is not None:
            self.store.record_rewards(epoch, block, "0x" + r.root.hex(), epoch_rewards.rewards_to_json(r, block))
        self._rewards_cache[key] = r
        return r

    def _rewards_match(self, report: dict) -> str | None:
        """None when this operator's own tree at the report's snapshot block has the same root
        and totals; else why not."""
        own = self.own_rewards(int(report["epoch"]), int(report["block"]))
        if own is None:
            return "I find no work and no availability in that epoch"
        if "0x" + own.root.hex() != "0x" + _hex32(report["root"]):
            return f"my root is 0x{own.root.hex()}"
        if own.total_work != int(report["total_work"]) or own.total_availability != int(report["total_availability"]):
            return "my totals differ"
        return None

    def _uptime_settled(self, epoch: int, block: int | None = None) -> bool:
        """Every machine this operator probed in `epoch` has its uptime on-chain (at `block`)."""
        at = {} if block is None else {"block_id": block}
        for m in self.store.machines():
            if self.store.probe_counts(epoch, m["machine_id"])[0] == 0:
                continue
            with self._chain_lock:
                if int(self.h.hub.uptime_nonce(epoch, m["machine_id"], **at)) == 0:
                    return False
        return True

    def _epoch_seen_at(self, epoch: int) -> int | None:
        """Time of the first block at or after the epoch's end (the same for every operator,
        unlike the wall clock when a chain idles): the rewards delays count from it."""
        cache = self.__dict__.setdefault("_epoch_seen", {})
        if epoch not in cache:
            with self._chain_lock:
                head = int(self.h.chain.blocks.height)
                lo = int(self.h.record.get("block") or 0)
                b = epoch_rewards.first_block_at(self.h.chain, self._epoch_end(epoch), lo, head)
                if b > head:
                    return None
                cache[epoch] = int(self.h.chain.blocks[b].timestamp)
        return cache[epoch]

    def rewards_round(self, clock: int) -> None:
        """Finalizes ended Emissions epochs (the epoch's leader) and gets each finalized epoch's
        rewards root posted (leader proposes, peers rebuild and co-sign, leader submits)."""
        em = getattr(self.h, "emissions", None)
        if em is None:
            return
        with self._chain_lock:
            nxt = int(em.next_epoch())
            cur = int(em.current_epoch())
        if cur > nxt and self.leader_for(nxt, 0, clock - self._epoch_end(nxt)) == self.address:
            with self._chain_lock:
                try:
                    tx = em.finalize_epoch(nxt, sender=self.sender)
                except Exception as e:  # noqa: BLE001 - most often: someone else finalized it first
                    log.info(json.dumps({"event": "finalize_epoch_reverted", "epoch": nxt, "error": str(e)[:200]}))
                else:
                    nxt += 1
                    self.metrics.emission_epochs_finalized.inc()
                    log.info(json.dumps({"event": "epoch_finalized", "epoch": nxt - 1, "gas": tx.gas_used}))
        epoch = int(self.store.get_meta("rewards_cursor", "0"))
        while epoch < nxt and self._rewards_epoch(epoch, clock):
            epoch += 1
            self.store.set_meta("rewards_cursor", str(epoch))
            # Done epochs are served from the store: drop their in-memory trees.
            self._rewards_cache = {k: v for k, v in self._rewards_cache.items() if k[0] >= epoch}

    def _rewards_epoch(self, epoch: int, clock: int) -> bool:
        """One step for a finalized epoch's rewards; True once there is nothing left to do."""
        em = self.h.emissions
        subject = self._rewards_subject(epoch)
        with self._chain_lock:
            posted = bytes(em.epochs(epoch).root)
        if posted != b"\x00" * 32:
            self.metrics.rewards_epoch.set(epoch)
            self._adopt_posted(epoch, "0x" + posted.hex())
            return True
        seen = self._epoch_seen_at(epoch)
        delay = self.cfg.rewards_delay_s
        if seen is None or clock < seen + delay or self.store.submitted(subject, 0):
            return False
        if not self._uptime_settled(epoch) and clock < seen + 3 * delay:
            return False
        if self.leader_for(epoch, 0, clock - seen - delay) != self.address:
            return False
        # A proposal that found no quorum is retried (rebuilt at a newer block) at most once per
        # leader timeout: a build reads every machine of the registry.
        if time.monotonic() - self._rewards_tried.get(epoch, -1e9) < max(self.cfg.leader_timeout_s, 5.0):
            return False
        self._rewards_tried[epoch] = time.monotonic()
        on_record = self.store.signed_for(subject, 0)
        if on_record is not None:
            report = on_record.report  # never sign a second version: finish the one we signed
        else:
            with self._chain_lock:
                block = int(self.h.chain.blocks.height)
            own = self.own_rewards(epoch, block)
            if own is None:
                log.info(json.dumps({"event": "rewards_empty", "epoch": epoch, "block": block}))
                return True  # nothing to claim: the budget stays unminted
            report = {**own.report(0), "root": "0x" + own.root.hex(), "block": block}
        with self._proposing_lock:
            self._proposing.add((subject, 0))
        try:
            gathered = self._gather("rewards", report)
        finally:
            with self._proposing_lock:
                self._proposing.discard((subject, 0))
        if gathered is not None:
            self._submit("rewards", subject, *gathered)
        return False

    def _adopt_posted(self, epoch: int, root: str) -> None:
        """Makes sure this operator can serve proofs for the posted root: its own tree if it has
        one with that root, else it rebuilds at the snapshot block its peers name for it."""
        if self.store.rewards_for(epoch, root=root) is not None:
            return
        blocks: list[int] = []
        mine = self.store.signed_for(self._rewards_subject(epoch), 0)
        if mine is not None:
            blocks.append(int(mine.report["block"]))
        for url in self.cfg.peers.values():
            try:
                d = requests.get(f"{url}/rewards/{epoch}", timeout=10).json()
                blocks.append(int(d["block"]))
            except (requests.RequestException, ValueError, KeyError, TypeError):
                continue
        for block in dict.fromkeys(blocks):
            try:
                r = self.own_rewards(epoch, block)
            except ValueError:
                continue
            if r is not None and "0x" + r.root.hex() == root:
                return
        log.warning(json.dumps({"event": "posted_root_not_rebuilt", "epoch": epoch, "root": root}))

    def handle_sign_rewards(self, report: dict) -> tuple[int, dict]:
        """A leader's EpochRewards: signed when the epoch is finalized with no root yet and this
        operator's own tree, built from the chain at the proposal's snapshot block, is identical."""
        try:
            epoch, nonce = int(report["epoch"]), int(report["nonce"])
            int(report["block"])
            _hex32(report["root"])
            int(report["total_work"]), int(report["total_availability"])
        except (KeyError, TypeError, ValueError) as e:
            return 400, {"error": f"malformed report: {e}"}
        em = getattr(self.h, "emissions", None)
        if em is None:
            return 409, {"refused": "this deployment has no Emissions contract"}
        with self._chain_lock:
            finalized = epoch < int(em.next_epoch())
            posted = bytes(em.epochs(epoch).root) != b"\x00" * 32
            onchain_nonce = int(em.rewards_nonce(epoch))
        reason = None
        if not finalized:
            reason = f"epoch {epoch} is not finalized"
        elif posted:
            reason = f"epoch {epoch} already has its root"
        elif nonce != onchain_nonce:
            reason = f"nonce {nonce} is not the current {onchain_nonce}"
        else:
            try:
                reason = self._rewards_match(report)
                seen = self._epoch_seen_at(epoch)
                with self._chain_lock:
                    snapshot_ts = int(self.h.chain.blocks[int(report["block"])].timestamp)
                if reason is None and (seen is None or snapshot_ts < seen + 3 * self.cfg.rewards_delay_s):
                    if not self._uptime_settled(epoch, int(report["block"])):
                        reason = "uptime of machines I probed is not on-chain at the snapshot block yet"
            except ValueError as e:
                reason = str(e)
        if reason:
            self.metrics.signatures_refused.labels(kind="rewards", reason="invalid").inc()
            return 409, {"refused": reason}
        subject = self._rewards_subject(epoch)
        existing = self.store.signed_for(subject, nonce)
        digest = self._digest_hex("rewards", report)
        if existing is not None and existing.digest != digest:
            return 200, {"conflict": True, "report": existing.report, "signature": existing.signature}
        with self._proposing_lock:
            busy = (subject, nonce) in self._proposing
        if existing is None and busy:
            self.metrics.signatures_refused.labels(kind="rewards", reason="proposing").inc()
            return 409, {"refused": "I am proposing my own version of these rewards right now"}
        sig = self._sign_report("rewards", report)
        if sig is None:
            return 409, {"refused": "already signed another version"}
        self.metrics.signatures_given.labels(kind="rewards").inc()
        return 200, {"signature": sig, "digest": digest, "operator": self.address}

    def rewards_record(self, epoch: int) -> dict | None:
        """GET /rewards/<epoch>: this operator's tree for the epoch (the posted root's when it
        has it, else its latest), with `posted` telling whether it is the root on-chain."""
        em = getattr(self.h, "emissions", None)
        if em is None:
            return None
        with self._chain_lock:
            onchain = bytes(em.epochs(epoch).root)
        onchain_hex = "0x" + onchain.hex() if onchain != b"\x00" * 32 else None
        rec = (self.store.rewards_for(epoch, root=onchain_hex) if onchain_hex else None) or self.store.rewards_for(
            epoch
        )
        if rec is None:
            return None
        return {**rec, "posted": rec["root"] == onchain_hex, "onchain_root": onchain_hex, "operator": self.address}

    def rewards_proof(self, epoch: int, provider: str) -> dict | None:
        """GET /rewards/<epoch>/<provider>: the provider's leaf fields and Merkle proof."""
        rec = self.rewards_record(epoch)
        if rec is None:
            return None
        r = epoch_rewards.rewards_from_json(rec)
        try:
            p = to_checksum_address(provider)
        except ValueError:
            return None
        if p not in r.leaves:
            return None
        work, availability = r.leaves[p]
        return {
            "epoch": epoch,
            "provider": p,
            "work_units": str(work),
            "availability_weight": str(availability),
            "proof": ["0x" + x.hex() for x in r.proofs[p]],
            "root": rec["root"],
            "posted": rec["posted"],
            "block": rec["block"],
        }
