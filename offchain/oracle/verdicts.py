"""Part of the oracle service (`offchain/oracle/service.py`, which documents the whole loop): Jobs:
following JobMarket, drawing submitted jobs for audit (a drawn job is in audit with no
transaction), running this operator's audits, and proposing and co-signing JobVerdicts.

A mixin of `OracleService`: it uses the service's chain handles, store, metrics and signing.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from offchain.chain.beacon import ROUND_DEGRADED, ROUND_READY, draw_outcome
from offchain.chain.jobs import as_tuple
from offchain.chain.reports import VERDICT_FIELDS, report_tuple, verdict_typed_data
from offchain.chain.sender import Sender
from offchain.chain.views import read_many
from offchain.constants import JobStatus
from offchain.oracle import jobwatch
from offchain.oracle.common import (
    _hex32,
    log,
)
from offchain.oracle.quorum import Duty

# Verdicts posted per `submit_verdicts` transaction at most (OracleHub.MAX_VERDICT_BATCH).
VERDICT_BATCH = 20
VERDICT_GATHER_THREADS = 8  # verdicts a leader gathers co-signatures for at once
# How often JobMarket's `audit_timeout` is read again (seconds).
AUDIT_TIMEOUT_READ_S = 300.0


def _verdict_agrees(svc: Any, report: dict) -> bool:
    own = svc.store.audit_for(int(report["job_id"]), _hex32(report["result_hash"]))
    return own is not None and own["valid"] == bool(report["valid"])


# Job verdicts: one per job and nonce; a peer agrees when its own audit reached the same `valid`
# (the evidence hash is the leader's transcript). A job settled meanwhile (another verdict, or
# finalized after the deadline) leaves nothing to submit.
VERDICT = Duty(
    kind="verdict",
    subject=lambda svc, r: svc._verdict_subject(int(r["job_id"])),
    typed_data=lambda svc, r: verdict_typed_data(svc.h.hub.address, svc.chain_id, r),
    agrees=_verdict_agrees,
    submit=lambda svc, r, sigs, job: Sender.of(svc.sender, svc.h.chain.provider).transact(
        svc.h.hub.submit_verdict, report_tuple(VERDICT_FIELDS, r), as_tuple(job), sigs, items=len(sigs)
    ),
    gone=("not in audit", "deadline passed"),
)


class VerdictsMixin:
    def _verdict_subject(self, job_id: int) -> str:
        return f"verdict:{job_id}"

    def jobs_round(self, now: int, clock: int) -> None:
        """Draws, own audits and verdicts for the jobs this operator follows."""
        self._round_states: dict[int, tuple] = {}  # beacon rounds read this cycle: one read per round
        # A Submitted job drawn for audit is in audit with no transaction (JobMarket derives its
        # deadline, challenge_end + audit_timeout): marked here, it joins the disputed ones.
        for row in self.store.jobs_to_draw(JobStatus.SUBMITTED):
            self._check_draw(row, clock)
        ready: list[tuple[str, dict, list[tuple[str, str]], dict]] = []  # verdicts holding a quorum
        in_audit = self.store.jobs_with_status(JobStatus.AUDIT)
        subjects = {self._verdict_subject(int(row["job_id"])) for row in in_audit}
        self._first_asked = {k: v for k, v in self._first_asked.items() if k in subjects}
        work = []
        for row in in_audit:
            if now > row["audit_deadline"]:
                continue  # too late for a verdict: anyone may finalize it now (provider paid)
            if self.address in self._audit_committee(int(row["job_id"])):
                own = self._own_audit(row)
            else:  # audit only when asked to co-sign (or when leading after a timeout)
                own = self.store.audit_for(int(row["job_id"]), _hex32(row["job"]["result_hash"]))
            work.append((row, own))
        # The peers are asked for many jobs at once: one job's co-signing is an HTTP round trip
        # per peer, and one after another they capped a leader at a few verdicts a second.
        threads = max(1, min(VERDICT_GATHER_THREADS, len(work)))
        if threads > 1:
            with ThreadPoolExecutor(threads, thread_name_prefix="verdict") as pool:
                items = list(pool.map(lambda w: self._verdict_round(w[0], w[1], now, clock), work))
        else:
            items = [self._verdict_round(row, own, now, clock) for row, own in work]
        ready.extend(item for item in items if item is not None)
        for i in range(0, len(ready), VERDICT_BATCH):
            self._submit_verdicts(ready[i : i + VERDICT_BATCH])

    def _submit_verdicts(self, batch: list[tuple[str, dict, list[tuple[str, str]], dict]], retry: bool = True) -> None:
        """The cycle's verdicts in one `hub.submit_verdicts` transaction; if it reverts, once
        more without the jobs settled meanwhile (another operator posted their verdict first);
        if that reverts too (a deadline passed), one by one, where the quorum core sorts out
        which reverts are harmless."""
        if len(batch) > 1:
            for subject, _, _, _ in batch:
                self._crash_point("verdict", subject)
            with self._chain_lock:
                try:
                    tx = Sender.of(self.sender, self.h.chain.provider).transact(
                        self.h.hub.submit_verdicts,
                        [report_tuple(VERDICT_FIELDS, r) for _, r, _, _ in batch],
                        [as_tuple(job) for _, _, _, job in batch],
                        [[bytes.fromhex(s.removeprefix("0x")) for _, s in sigs] for _, _, sigs, _ in batch],
                        items=len(batch),
                    )
                except Exception as e:  # noqa: BLE001 - one report reverts the batch: sort it out below
                    ids = [r["job_id"] for _, r, _, _ in batch]
                    log.info(json.dumps({"event": "verdict_batch_reverted", "jobs": ids, "error": str(e)[:200]}))
                    tx = None
            if tx is None and retry:
                # Mostly another leader posted some of these verdicts first (its batch landed
                # while ours was built): one batched read finds them, and the rest go again as
                # one transaction. One by one, 20 verdicts held this loop for 20 receipts.
                still_open = self._drop_settled_verdicts(batch)
                if still_open and len(still_open) < len(batch):
                    return self._submit_verdicts(still_open, retry=False)
                if not still_open:
                    return
            if tx is not None:
                for subject, report, _, _ in batch:
                    self.store.mark_submitted(subject, report["nonce"], str(tx.txn_hash))
                self.metrics.reports_submitted.labels(kind="verdict").inc(len(batch))
                log.info(json.dumps({"event": "submitted", "kind": "verdict", "batch": len(batch), "gas": tx.gas_used,
                                     "jobs": [r["job_id"] for _, r, _, _ in batch]}))  # fmt: skip
                return
        for subject, report, sigs, job in batch:
            try:
                self._submit("verdict", subject, report, sigs, job=job)
            except Exception as e:  # noqa: BLE001 - an RPC error: this verdict is proposed again next cycle
                log.warning(json.dumps({"event": "verdict_submit_failed", "subject": subject, "error": str(e)[:200]}))

    def _drop_settled_verdicts(self, batch: list) -> list:
        """The batch without the jobs whose verdict is on-chain already or that left audit, read
        in one JSON-RPC batch (each dropped one is recorded as the quorum core records the same
        revert from a single submission)."""
        calls = []
        for _, report, _, _ in batch:
            job_id = int(report["job_id"])
            calls += [(self.h.hub.verdict_nonce, (job_id,)), (self.h.market.job_status, (job_id,))]
        try:
            with self._chain_lock:
                answers = read_many(self.h.chain.provider, calls)
        except Exception as e:  # noqa: BLE001 - an RPC error: the caller goes one by one
            log.warning(json.dumps({"event": "verdict_recheck_failed", "error": str(e)[:200]}))
            return batch
        kept = []
        for i, item in enumerate(batch):
            subject, report = item[0], item[1]
            nonce, status = int(answers[2 * i]), int(answers[2 * i + 1])
            if nonce != int(report["nonce"]):
                self.store.mark_submitted(subject, report["nonce"], "by-peer")
            elif status not in (JobStatus.SUBMITTED, JobStatus.AUDIT):
                self.store.mark_submitted(subject, report["nonce"], "gone")
            else:
                kept.append(item)
        log.info(json.dumps({"event": "verdict_batch_rechecked", "kept": len(kept), "dropped": len(batch) - len(kept)}))
        return kept

    def _verdict_leader(self, job_id: int, waited_s: float) -> str:
        """The job's verdict leader: its audit committee's members in turn, one more every
        `leader_timeout_s`. Never an operator outside the committee: it would have to re-execute
        the job too, and since the quorum is a majority, a job whose whole committee is down
        could not reach one anyway (the others still co-sign once asked, see `_verdict_round`)."""
        committee = self._audit_committee(job_id)
        k = int(waited_s // self.cfg.leader_timeout_s) if self.cfg.leader_timeout_s > 0 else 0
        return committee[k % len(committee)]

    def _audit_committee(self, job_id: int) -> list[str]:
        """The `threshold` operators that audit a job without being asked: its first leader
        (`leader_for(job_id, 0, 0)`) and the next ones in rotation order."""
        ops = self.operators()
        m = max(1, min(len(ops), int(getattr(self, "threshold", 1) or 1)))
        return [ops[(job_id + i) % len(ops)] for i in range(m)]

    def _draw_timing(self) -> tuple[int, int]:
        """AuditBeacon's (ROUND_SECONDS, REVEAL_WINDOW), read once."""
        if getattr(self, "_beacon_timing", None) is None:
            with self._chain_lock:
                self._beacon_timing = (int(self.h.beacon.ROUND_SECONDS()), int(self.h.beacon.REVEAL_WINDOW()))
        return self._beacon_timing

    def _draw(self, job_id: int, job: dict, clock: int) -> bool | None:
        """Whether the job was drawn for audit, from AuditBeacon's seed for its round: True/False
        once the round is ready or degraded on-chain (then stored: it never changes), True while
        the head still says pending but `clock` is past the reveal window (a dev chain's head
        lags: the verdict transaction's block sees the round degraded), else None (pending:
        asked again next cycle)."""
        if int(job["audit_bps"]) == 0:
            self.store.set_job_fields(job_id, drawn=0)
            return False
        if getattr(self.h, "beacon", None) is None:
            return None
        round_ = int(job["draw_round"])
        seconds, window = self._draw_timing()
        if clock < round_ * seconds:  # the round has not begun: its seed cannot be known yet
            return None
        cache = getattr(self, "_round_states", None)
        if cache is None or round_ not in cache:
            with self._chain_lock:
                state_seed = self.h.beacon.draw_seed(round_)
            if cache is not None:
                cache[round_] = state_seed
        state, seed = cache[round_] if cache is not None else state_seed
        drawn = draw_outcome(state, seed, job_id, int(job["audit_bps"]), clock, round_, seconds, window)
        if int(state) not in (ROUND_READY, ROUND_DEGRADED):
            return drawn  # pending: True once past the reveal window (not stored: the chain decides)
        self.store.set_job_fields(job_id, drawn=int(drawn))
        log.info(json.dumps({"event": "audit_draw", "job_id": job_id, "round": round_, "drawn": drawn,
                             "degraded": int(state) == ROUND_DEGRADED}))  # fmt: skip
        return drawn

    def _audit_timeout(self) -> int:
        """JobMarket's `audit_timeout`, read at most every AUDIT_TIMEOUT_READ_S (governance
        changes it rarely, behind the timelock's delay)."""
        cached = getattr(self, "_audit_timeout_read", None)
        if cached is None or time.monotonic() - cached[1] > AUDIT_TIMEOUT_READ_S:
            with self._chain_lock:
                cached = (int(self.h.market.params().audit_timeout), time.monotonic())
            self._audit_timeout_read = cached
        return cached[0]

    def _sampled_deadline(self, job: dict) -> int:
        """A drawn job's audit deadline, as JobMarket derives it: challenge_end + audit_timeout."""
        return int(job["challenge_end"]) + self._audit_timeout()

    def _check_draw(self, row: dict, clock: int) -> None:
        """Draws a Submitted job; a drawn one is in audit from now (locally: status Audit, its
        deadline derived as on-chain). Its leader rotation starts at the round's start, the
        earliest the draw can be known, the same on every operator."""
        job_id, job = row["job_id"], row["job"]
        drawn = row["drawn"]
        if drawn is None:
            drawn = self._draw(job_id, job, clock)
        if not drawn:
            return  # not drawn, or its round still pending (asked again next cycle)
        round_start = int(job["draw_round"]) * self._draw_timing()[0]
        self.store.set_job_fields(
            job_id,
            status=int(JobStatus.AUDIT),
            audit_opened_at=max(int(row["submitted_at"]), round_start),
            audit_deadline=self._sampled_deadline(job),
            challenger="",
        )
        self.metrics.audits_opened.inc()
        log.info(json.dumps({"event": "audit_drawn", "job_id": job_id, "deadline": self._sampled_deadline(job)}))

    def _own_audit(self, row: dict) -> dict | None:
        """This operator's audit outcome for the job's current result, or None while it runs
        (started here on the audit worker if it is not running yet)."""
        job_id = int(row["job_id"])
        key = (job_id, _hex32(row["job"]["result_hash"]))
        with self._audit_lock:
            done = self.store.audit_for(*key)
            if done is not None:
                return done
            if key in self._audits_pending or time.monotonic() < self._audit_retry_at.get(key, 0.0):
                return None
            machine_id = int(row["job"]["machine_id"])
            endpoint = next((m["endpoint"] for m in self.store.machines() if m["machine_id"] == machine_id), None)
            urls = jobwatch.provider_urls(row["result_uri"], endpoint)
            self._audits_pending.add(key)
            self._audit_queue.put((key, row["job"], urls))
            return None

    def _audit_worker(self) -> None:
        while not self._stop.is_set():
            try:
                key, job_data, urls = self._audit_queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._run_audit(key, job_data, urls)
            finally:
                with self._audit_lock:
                    self._audits_pending.discard(key)

    def _blob_auth(self, provider: str) -> Callable[[str, str], dict] | None:
        """Signed blob requests to `provider`'s agent, as this operator (offchain/blob_auth.py)."""
        if not provider:
            return None
        if getattr(self, "_request_signer", None) is None:
            from offchain.blob_auth import RequestSigner

            self._request_signer = RequestSigner(self.cfg.operator_key, self.chain_id, str(self.h.registry.address))
        signer = self._request_signer
        return lambda method, blob: signer.headers(provider, method, blob)

    def _run_audit(self, key: tuple[int, str], job_data: dict, urls: list[str]) -> None:
        from offchain.oracle.auditor import audit_job

        job_id, result_hex = key
        try:
            out = audit_job(
                jobwatch.job_from_store(job_data),
                urls,
                job_id=job_id,
                device=self.cfg.audit_device,
                fetch_timeout_s=self.cfg.audit_fetch_timeout_s,
                retries=self.cfg.audit_retries,
                # Only a key confirmed on-chain opens sealed jobs (a fresh, unpublished key file
                # numbers its key 1 like the key it replaced: a wrap to that must not read as forged).
                keyring=self.keyring if getattr(self, "_key_published", False) else None,
                auth=self._blob_auth(str(job_data.get("provider", ""))),
            )
        except Exception as e:  # noqa: BLE001 - AuditUnavailable or a bug: sign nothing, retry later
            self.metrics.audit_failures.inc()
            self._audit_retry_at[key] = time.monotonic() + self.cfg.audit_retry_s
            log.warning(json.dumps({"event": "audit_failed", "job_id": job_id, "error": f"{type(e).__name__}: {e}"}))
            return
        self.store.record_audit(
            job_id, result_hex, out.valid, out.reason, "0x" + out.evidence_hash.hex(), out.evidence,
            out.executed_units, out.seconds,
        )  # fmt: skip
        self.metrics.audits.labels(valid=str(out.valid).lower(), reason=out.reason).inc()
        self.metrics.audit_seconds.observe(out.seconds)
        self.metrics.audit_executed_units.inc(out.executed_units)
        self.metrics.audited_job_units.inc(int(job_data["compute_units"]))
        log.info(
            json.dumps(
                {
                    "event": "audit",
                    "job_id": job_id,
                    "valid": out.valid,
                    "reason": out.reason,
                    "detail": out.detail[:300],
                    "executions": len(out.executions),
                    "executed_units": out.executed_units,
                    "job_units": int(job_data["compute_units"]),
                    "seconds": round(out.seconds, 3),
                }
            )
        )

    def _verdict_round(
        self, row: dict, own: dict | None, now: int, clock: int
    ) -> tuple[str, dict, list[tuple[str, str]], dict] | None:
        """Leads the job's verdict when it is this operator's turn; returns (subject, report,
        signatures, job) once it holds a quorum, for `_submit_verdicts`."""
        job_id = int(row["job_id"])
        # A verdict ends the job (Finalized or Failed), so a job still in audit has had none: its
        # verdict nonce is 0, with no read per job and cycle (a peer checks it on-chain, and a
        # wrong one only makes the submission revert "wrong nonce").
        nonce = 0
        subject = self._verdict_subject(job_id)
        if self.store.submitted(subject, nonce):
            return None
        if self._verdict_leader(job_id, clock - row["audit_opened_at"]) != self.address:
            return None
        on_record = self.store.signed_for(subject, nonce)
        if on_record is not None:
            report = on_record.report  # never sign a second version: finish the one we signed
        elif own is None and self._own_audit(row) is None:
            return None  # our own audit is still running (started now if it was not)
        else:
            own = own or self._own_audit(row)
            report = {
                "job_id": job_id,
                "result_hash": "0x" + _hex32(row["job"]["result_hash"]),
                "valid": own["valid"],
                "evidence_hash": own["evidence_hash"],
                "nonce": nonce,
            }
        with self._proposing_lock:
            self._proposing.add((subject, nonce))
        committee = set(self._audit_committee(job_id))
        # The committee alone is asked until it has had `audit_committee_timeout_s` since this
        # operator first asked it (not since the draw: under a backlog of audits that time is
        # spent in the queues, and asking everyone then made every operator re-execute the job).
        asked_at = self._first_asked.setdefault(subject, clock)
        peers = None if clock - asked_at >= self.cfg.audit_committee_timeout_s else {
            a: u for a, u in self.cfg.peers.items() if a in committee
        }  # fmt: skip
        try:
            gathered = self._gather("verdict", report, peers)
        finally:
            with self._proposing_lock:
                self._proposing.discard((subject, nonce))
        if gathered is None:
            return None
        self._first_asked.pop(subject, None)
        if max(now, int(time.time())) > row["audit_deadline"]:  # no head read: the clock is ahead of it
            log.info(json.dumps({"event": "verdict_too_late", "job_id": job_id}))
            return None
        return subject, gathered[0], gathered[1], jobwatch.job_from_store(row["job"])

    def handle_sign_verdict(self, report: dict) -> tuple[int, dict]:
        """A peer's proposed JobVerdict: signed when the job is in audit (disputed, or Submitted
        and drawn by this operator's own reading of the beacon) for this result and nonce,
        before its deadline, and this operator's own audit reached the same `valid`."""
        try:
            job_id, nonce = int(report["job_id"]), int(report["nonce"])
            result_hex = _hex32(report["result_hash"])
            _hex32(report["evidence_hash"])
            if not isinstance(report["valid"], bool):
                raise ValueError("valid must be true or false")
        except (KeyError, TypeError, ValueError) as e:
            return 400, {"error": f"malformed report: {e}"}
        # The job's state as this operator follows it from JobMarket's events, with no chain read
        # per request (they were most of the operators' calls under load): the contract checks
        # the nonce, status and deadline again, and a signature for a settled job is spent (its
        # verdict nonce moved on). A view that lags the chain refuses, and the leader asks again.
        # Nothing is signed before the index has followed the chain to a head read since start-up:
        # a database restored from an older copy still shows settled jobs in audit, and lacks the
        # signatures given since (a second version signed for one of those jobs is an
        # equivocation, slashable even after the job settled).
        if not self.index_synced:
            return 409, {"refused": "catching up with the chain since start-up", "retry": True}
        row = self.store.job(job_id)
        if row is None:
            return 409, {"refused": f"job {job_id} not followed yet", "retry": True}
        status = JobStatus(int(row["status"]))
        deadline = int(row["audit_deadline"] or 0) if status == JobStatus.AUDIT else 0
        head = getattr(self, "_cycle_head_ts", None)  # the main loop's head of this second
        if head is None:
            with self._chain_lock:
                head = self.h.chain.blocks.head.timestamp
        now = int(head)
        if status == JobStatus.SUBMITTED and self._draw(job_id, row["job"], max(now, int(time.time()))):
            status, deadline = JobStatus.AUDIT, self._sampled_deadline(row["job"])  # drawn: in audit
        reason = None
        if nonce != 0:  # a verdict ends the job: its one verdict has nonce 0
            reason = f"nonce {nonce} is not 0 (a job has one verdict)"
        elif status != JobStatus.AUDIT:
            reason = f"job {job_id} is not in audit (status {status.name}, not drawn)"
        elif result_hex != _hex32(row["job"]["result_hash"]):
            reason = "result hash is not the job's"
        elif now > deadline:
            reason = "audit deadline passed"
        if reason:
            self.metrics.signatures_refused.labels(kind="verdict", reason="invalid").inc()
            return 409, {"refused": reason}
        subject = self._verdict_subject(job_id)
        existing = self.store.signed_for(subject, nonce)
        digest = self._digest_hex("verdict", report)
        if existing is not None and existing.digest != digest:
            return 200, {"conflict": True, "report": existing.report, "signature": existing.signature}
        with self._proposing_lock:
            busy = (subject, nonce) in self._proposing
        if existing is None and busy:
            self.metrics.signatures_refused.labels(kind="verdict", reason="proposing").inc()
            return 409, {"refused": "I am proposing my own version of this verdict right now"}
        own = self._own_audit(row)
        if own is None:
            self.metrics.signatures_refused.labels(kind="verdict", reason="auditing").inc()
            return 409, {"refused": "my own audit of this job is still running", "retry": True}
        if own["valid"] != report["valid"]:
            self.metrics.signatures_refused.labels(kind="verdict", reason="disagree").inc()
            return 409, {"refused": f"my own audit says valid={own['valid']} ({own['reason']})"}
        sig = self._sign_report("verdict", report)
        if sig is None:
            return 409, {"refused": "already signed another version"}
        self.metrics.signatures_given.labels(kind="verdict").inc()
        return 200, {"signature": sig, "digest": digest, "operator": self.address}

    def audit_record(self, job_id: int) -> dict | None:
        """This operator's audit of the job's current result (GET /audits/<job_id>)."""
        row = self.store.job(job_id)
        if row is None:
            return None
        return self.store.audit_for(job_id, _hex32(row["job"]["result_hash"]))
