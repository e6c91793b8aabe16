"""The job worker's getting-paid duty (`offchain/provider/worker.py`, step 4).

1. Finalize the provider's own jobs once the challenge window is over (status still Submitted,
   not drawn for audit: AuditBeacon's round is final by then; never while it is pending), or
   once an audit got no verdict in time (a drawn job: `challenge_end + audit_timeout`; a
   disputed one: its `audit_deadline`): `finalize_many` for several (one by one when a
   batch reverts), so the provider is paid without waiting for a keeper. Finalizing only credits
   the provider (`JobMarket.accrued`): no token moves yet.
2. Claim: at the end of a cycle after which the worker has seen its jobs finalized (by itself, a
   verdict someone else posted, a keeper's finalize; `market.accrued` is read only then, and
   once at start for credit from before a restart) and it shows credited escrow, and at
   least `claim_every_s` after its previous claim (0 by default: `--claim-every` trades the
   claim's gas, the same for one job or fifty, against waiting for the pay, keeping the
   finalized jobs' collateral locked and their `completed` count off the record), call
   `market.claim(provider)` once: JobMarket burns the credited escrow and Settlement mints the
   pay (the jobs' USD value minus fees at the claim's price, at most their escrow minus fees);
   the claim also releases those jobs' collateral and records them in the provider's reputation.
   The `paid` log line reports that claim's `Settled` event (minted, burned, USD net, cap,
   price) and the ids of its jobs the worker saw finalized since its previous claim. A failed
   claim is logged and tried again after `tx_retry_s`; it never stops the worker.

Metrics (the agent's `AgentMetrics`): `credited_wei` grows by each own job's escrow minus fee
when the worker sees it finalized (by itself, a verdict or a keeper: what JobMarket credited, the
most its claim can mint), `claimed_wei` by the tokens each own claim minted (`Settled.minted`);
failed finalize and claim transactions count in `errors`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from offchain.chain.beacon import audit_draw
from offchain.chain.jobs import as_tuple
from offchain.constants import MAX_BATCH, MAX_BPS, JobStatus
from offchain.provider.metrics import metrics_of

log = logging.getLogger("gpunet.provider.worker")
AUDIT_TIMEOUT_READ_S = 300.0


def _event(**kw: Any) -> None:
    log.info(json.dumps(kw, default=str))


class Payout:
    """Finalizes a worker's ready jobs and claims its credited pay. `worker` is the `JobWorker`
    (its chain handle `h`, `cfg`, `account`, `address`, `store`, `jobs`, `_rebuild`, `_done`,
    `_tx_failed`, `_retry_at`)."""

    def __init__(self, worker: Any):
        self.w = worker
        self.metrics = metrics_of(worker)
        # Our jobs seen finalized (by us, a verdict or a keeper) since the last claim; in memory
        # only: after a restart the first claim still pays everything credited, its log names fewer.
        self.unclaimed_jobs: list[int] = []
        self._claim_retry_at = 0.0  # after a failed claim, or claim_every_s after the last one (time.monotonic())
        # Credit this worker has not seen finalized (from before a restart) is looked for once;
        # after that `accrued` is read only while `unclaimed_jobs` is not empty: no RPC per idle cycle.
        self._look_for_credit = True
        self._seeds: dict[int, tuple] = {}  # final beacon rounds, for `audit_draw`
        self._timeout: tuple[int, float] | None = None  # (audit_timeout, when read)

    def cycle(self, now: int) -> None:
        self.finalize_ready(now)
        self.claim_if_due()

    # ------------------------------------------------------------------ finalizing
    def finalize_ready(self, now: int) -> int:
        """Finalizes the jobs that are ready; returns how many were finalized."""
        w = self.w
        ready: list[int] = []
        for row in w.store.jobs_in("submitted"):
            jid = row["job_id"]
            if w._retry_at.get(jid, 0) > time.monotonic():
                continue
            job = w.jobs.get(jid)
            if job is None:
                job = w.jobs[jid] = w._rebuild(jid)
            # Nothing can finalize a job before its challenge window ends (a verdict needs a drawn
            # or disputed job, which waits for its audit): no status read until then.
            if now <= int(job["challenge_end"]):
                continue
            # The job's state from the events the worker follows (no read per job and cycle).
            status, deadline = w.onchain.get(jid, (JobStatus.SUBMITTED, 0))
            if status == JobStatus.SUBMITTED:
                drawn = self._draw(jid, job, now)
                # Drawn: the oracles audit it with no transaction; without a verdict by
                # challenge_end + audit_timeout it is paid as a timed-out audit.
                if drawn is False or (drawn and now > int(job["challenge_end"]) + self._audit_timeout()):
                    ready.append(jid)
            elif status == JobStatus.AUDIT:
                if now > deadline:
                    ready.append(jid)
            else:
                if status == JobStatus.FINALIZED:  # by a verdict or a keeper: credited to us all the same
                    self.unclaimed_jobs.append(jid)
                    self._credited(job)
                w._done(jid, f"final ({status.name})")
        done = 0
        for i in range(0, len(ready), MAX_BATCH):
            done += self._finalize_batch(ready[i : i + MAX_BATCH])
        return done

    def _finalize_batch(self, batch: list[int]) -> int:
        """`finalize_many` for the batch. If it reverts (a job moved on meanwhile: a verdict, a
        dispute), the batch's states are read, the jobs still Submitted are tried once more
        together, and only if that fails too one by one."""
        w, m = self.w, self.w.h.market
        for attempt in (0, 1):
            if len(batch) < 2:
                break
            try:
                w.tx().transact(m.finalize_many, batch, [as_tuple(w.jobs[j]) for j in batch], items=len(batch))
            except Exception as e:  # noqa: BLE001 - one job not ready reverts all
                self.metrics.error("finalize")
                log.info(json.dumps({"event": "finalize_many_failed", "jobs": batch, "error": str(e)[:300]}))
                if attempt == 0:
                    for jid in batch:
                        self.refresh(jid)
                    batch = [j for j in batch if j not in w.onchain]
                continue
            self._finalized(batch)
            return len(batch)
        done = 0
        for jid in batch:
            try:
                w.tx().transact(m.finalize, jid, as_tuple(w.jobs[jid]))
            except Exception as e:  # noqa: BLE001 - e.g. the chain's clock is a second behind ours
                self.metrics.error("finalize")
                w._tx_failed(jid, "finalize", e)
                self.refresh(jid)  # an event missed (a restart): read its state once
                continue
            self._finalized([jid])
            done += 1
        return done

    def refresh(self, jid: int) -> None:
        """Reads a submitted job's on-chain state once (after a restart, or a finalize that failed)."""
        w, m = self.w, self.w.h.market
        try:
            status = JobStatus(m.job_status(jid))
            deadline = int(m.disputes(jid).audit_deadline) if status == JobStatus.AUDIT else 0
        except Exception as e:  # noqa: BLE001 - an RPC error: the next failure reads again
            log.warning(json.dumps({"event": "status_read_failed", "job_id": jid, "error": str(e)[:200]}))
            return
        if status == JobStatus.SUBMITTED:
            w.onchain.pop(jid, None)
        else:
            w.onchain[jid] = (status, deadline)

    def _finalized(self, job_ids: list[int]) -> None:
        self.unclaimed_jobs.extend(job_ids)
        for jid in job_ids:
            self._credited(self.w.jobs.get(jid))
            self.w._done(jid, "finalized by us")

    def _credited(self, job: dict | None) -> None:
        """Counts what JobMarket credited for a finalized job: its escrow minus the fee (wei)."""
        if job is None:
            return
        try:
            payment = int(job["payment"])
            fee = payment * int(job.get("fee_bps", 0)) // MAX_BPS
        except (KeyError, TypeError, ValueError):
            return
        self.metrics.credited.inc(payment - fee)

    def _audit_timeout(self) -> int:
        """JobMarket's `audit_timeout` (a drawn job's audit ends that long after its challenge
        window), read at most every AUDIT_TIMEOUT_READ_S: governance changes it rarely."""
        if self._timeout is None or time.monotonic() - self._timeout[1] > AUDIT_TIMEOUT_READ_S:
            self._timeout = (int(self.w.h.market.params().audit_timeout), time.monotonic())
        return self._timeout[0]

    def _draw(self, jid: int, job: dict, now: int) -> bool | None:
        """The job's audit draw from AuditBeacon (`offchain.chain.beacon.audit_draw`): None while
        its round is pending (no finalize is tried then: the chain would refuse it as soon as the
        round turned out drawn or degraded), True when drawn (the oracles audit it)."""
        beacon = getattr(self.w.h, "beacon", None)
        if beacon is None:  # a deployment record from before the beacon
            return bool(self.w.h.market.audit_drawn(jid, as_tuple(job)))
        return audit_draw(beacon, jid, job, now, self._seeds)

    # ------------------------------------------------------------------ claiming
    def claim_if_due(self) -> int | None:
        """Claims when `market.accrued` shows credited escrow (after this worker finalized jobs,
        or a verdict or a keeper's finalize credited it); returns the tokens minted, None when no
        claim was made."""
        w, m = self.w, self.w.h.market
        if time.monotonic() < self._claim_retry_at or not (self.unclaimed_jobs or self._look_for_credit):
            return None
        try:
            self._look_for_credit = False
            if int(m.accrued(w.address)[0]) == 0:
                if self.unclaimed_jobs:  # anyone may claim for anyone: someone claimed for us
                    _event(event="claimed_by_another", job_ids=self.unclaimed_jobs)
                    self.unclaimed_jobs = []
                return None
            receipt = w.tx().transact(m.claim, w.address)
        except Exception as e:  # noqa: BLE001 - RPC error or a revert: logged, tried again after tx_retry_s
            self.metrics.error("claim")
            self._look_for_credit = True
            self._claim_retry_at = time.monotonic() + float(getattr(w.cfg, "tx_retry_s", 5.0))
            log.warning(json.dumps({"event": "claim_failed", "job_ids": self.unclaimed_jobs,
                                    "error": f"{type(e).__name__}: {e}"}))  # fmt: skip
            return None
        self._claim_retry_at = time.monotonic() + float(getattr(w.cfg, "claim_every_s", 0.0))
        minted = self._log_paid(receipt)
        self.metrics.claims.inc()
        if minted:
            self.metrics.claimed.inc(minted)
        self.unclaimed_jobs = []
        return minted

    def _log_paid(self, receipt: Any) -> int | None:
        """Logs the claim's `Settled` event: the provider's pay under burn-and-mint."""
        settlement = getattr(self.w.h, "settlement", None)
        if settlement is None:
            return None
        try:
            logs = receipt.decode_logs(settlement.Settled)
        except Exception:  # noqa: BLE001 - logging only
            return None
        mine = [lg for lg in logs if str(lg.event_arguments["provider"]).lower() == self.w.address.lower()]
        if not mine:
            return None
        a = mine[0].event_arguments
        _event(
            event="paid",
            job_ids=self.unclaimed_jobs,
            minted=int(a["minted"]),
            burned=int(a["burned"]),
            usd_net=int(a["usd_net"]),
            cap=int(a["cap"]),
            price=int(a["price"]),
            tx=str(receipt.txn_hash),
        )
        return int(a["minted"])


__all__ = ["Payout"]
