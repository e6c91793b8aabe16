"""The job worker's taking of jobs (`offchain/provider/worker.py`, step 2), in batches.

Every cycle, each candidate job is checked (the rules in worker.py's docstring) against one
snapshot of the provider's state read once per cycle (`_Cycle`: offers by class, audit rate,
free stake, stake floor, the collateral rule's detection parameter), so a hundred candidates
cost a handful of RPC calls, not a handful each. The collateral a job needs is the contract's
rule (`required_collateral`, mirrored by `required_collateral` below and checked against the
contract in tests/test_worker_intake.py). The acceptable jobs are then taken with one
`accept_jobs` transaction per machine (`accept` for one job), at most `max_pending` in flight.

A batch is all or nothing: if it reverts (a job was cancelled or taken by someone else in the
meantime), each job's state is looked up on-chain and the ones still open are taken one by one.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from offchain import workloads
from offchain.chain.jobs import apply_event, as_tuple
from offchain.chain.views import read_many
from offchain.provider.metrics import metrics_of
from offchain.sealing import SealError, is_sealed, shallow_json
from offchain.workloads.base import canonical_json

log = logging.getLogger("gpunet.provider.worker")
MAX_BPS = 10_000


def _event(**kw: Any) -> None:
    log.info(json.dumps(kw, default=str))


def _hex32(v: Any) -> str:
    """bytes32 from ape (HexBytes / bytes / hex str) as 64 lowercase hex characters."""
    if isinstance(v, str):
        return v.removeprefix("0x").lower().rjust(64, "0")
    return bytes(v).hex().rjust(64, "0")


def required_collateral(payment: int, minimum: int, audit_bps: int, detection_bps: int) -> int:
    """JobMarket's `required_collateral` (modules/market_params.vy): cheating must never pay,
    audit_bps * detection_bps * (payment + collateral) >= payment, rounded up; the creation-time
    floor `minimum` when the job is never audited."""
    if audit_bps == 0:
        return minimum
    pd = audit_bps * detection_bps
    return max(minimum, (payment * MAX_BPS * MAX_BPS + pd - 1) // pd - payment)


class Skip(Exception):  # noqa: N818 - control flow: not now, maybe later
    """Not acceptable now but maybe later (blobs not uploaded yet, no free stake, ...)."""


class Refuse(Exception):  # noqa: N818 - control flow: never
    """Never acceptable (invalid spec, compute units that do not match it, ...)."""


@dataclass
class _Cycle:
    """The provider's state for one cycle's decisions, read once and updated as jobs are picked."""

    offers: dict[int, int]
    audit_bps: int
    detection_bps: int
    free: int
    stake_ok: bool
    pending: int
    picked: dict[int, list[tuple[int, dict, dict]]] = field(default_factory=dict)  # machine -> jobs


class Intake:
    """Candidates -> accepted jobs for a `JobWorker` (`w`: its chain handle `h`, `cfg`, `store`,
    `jobs`, `blobs`, `address`, `account` and helpers)."""

    def __init__(self, worker: Any):
        self.w = worker
        self.metrics = metrics_of(worker)  # failed accepts: errors{where="accept"}
        self._kept: set[int] = set()  # candidates whose spec blob is kept for them (blob_access)
        self._linked: set[int] = set()  # ... and whose user may read it (once its spec checked out)

    def _snapshot(self) -> _Cycle:
        w = self.w
        m, r, a = w.h.market, w.h.registry, (w.address,)
        audit_bps, params, free, staked, required = read_many(
            w.h.chain.provider,
            [(m.audit_rate, a), (m.params, ()), (r.free_stake, a), (r.staked, a), (r.required_stake, a)],
        )
        return _Cycle(
            offers={},
            audit_bps=int(audit_bps),
            detection_bps=int(params.detection_bps),
            free=int(free),
            stake_ok=int(staked) >= int(required),
            pending=len(w.store.jobs_in("accepting", "running", "executed")),
        )

    def cycle(self, now: int, stop: Any = None) -> None:
        w = self.w
        rows = w.store.jobs_in("candidate")
        if not rows:
            return
        snap = self._snapshot()
        for row in rows:
            if stop is not None and stop.is_set():
                return
            if snap.pending >= w.cfg.max_pending:  # full: the rest wait for the next cycle, unread
                break
            try:
                self.consider(row["job_id"], now, snap)
            except Exception as e:  # noqa: BLE001 - one job's trouble must not stop the worker's cycle
                w._retry_at[row["job_id"]] = time.monotonic() + w.cfg.tx_retry_s
                log.warning(json.dumps({"event": "consider_error", "job_id": row["job_id"],
                                        "error": f"{type(e).__name__}: {str(e)[:300]}"}))  # fmt: skip
        for machine_id, items in snap.picked.items():
            self.accept(machine_id, items)

    def forget(self, jid: int) -> None:
        """The job is no longer a candidate: its bookkeeping here goes (the sets would otherwise
        grow by every job the worker ever saw)."""
        self._kept.discard(jid)
        self._linked.discard(jid)

    # ------------------------------------------------------------------ deciding
    def consider(self, jid: int, now: int, snap: _Cycle) -> None:
        w = self.w
        if w._retry_at.get(jid, 0) > time.monotonic():
            return
        job = w.jobs.get(jid)
        if job is None:
            try:
                job = w.jobs[jid] = w._rebuild(jid)
            except (LookupError, RuntimeError) as e:
                w._done(jid, f"cannot rebuild from the chain: {e}")
                return
        if jid not in self._kept:  # its spec is kept while it waits (not an orphan), nobody reads it by it
            w.guard.keep(jid, [_hex32(job["spec_hash"])])
            self._kept.add(jid)
        if now + w.cfg.accept_margin_s > job["accept_by"]:
            w._done(jid, "acceptance window over")
            return
        machines = w._active_machines(job["class_id"], now)
        if not machines:  # checked before any RPC: open jobs of other classes
            w._waiting(jid, f"no Active machine of class {job['class_id']}")
            return
        try:
            spec, need = self.check(job, snap, jid)
        except Skip as e:
            w._waiting(jid, str(e))
            return
        except Refuse as e:
            w.store.set_state(jid, "refused", reason=str(e))
            w.guard.job_final(jid)  # nothing of it is kept for it: its links (if any) age out
            self.forget(jid)
            w.jobs.pop(jid, None)
            _event(event="job_refused", job_id=jid, reason=str(e))
            return
        snap.free -= need
        snap.pending += 1
        snap.picked.setdefault(machines[0], []).append((jid, job, spec))

    def load_spec(self, job: dict, check_auditors: bool = True) -> dict:
        """The spec blob named by the job's spec_hash, parsed and validated with its inputs."""
        blobs = self.w.blobs
        spec_hex = _hex32(job["spec_hash"])
        raw = blobs.get(spec_hex)
        if raw is None:
            raise Skip(f"spec blob {spec_hex} not uploaded yet (PUT /blobs/{spec_hex})")
        key, where = None, None
        if is_sealed(raw):
            try:
                key, spec, where = self.w.guard.open_envelope(raw, str(job["user"]), check_auditors=check_auditors)
            except Refuse:
                raise
            except Exception as e:  # noqa: BLE001 - any malformed envelope is the user's: refuse the job
                raise Refuse(f"invalid sealed spec: {type(e).__name__}: {str(e)[:200]}") from None
            raw = canonical_json(spec)
        try:
            if not shallow_json(raw):
                raise Refuse("spec blob nests too deep to be a spec")
            spec = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Refuse("spec blob is not JSON") from None
        try:
            if canonical_json(spec) != raw:
                raise Refuse("spec blob is not canonical JSON (upload workloads.base.canonical_json(spec))")
            workloads.validate(spec)
        except workloads.SpecError as e:
            raise Refuse(f"invalid spec: {e}") from None
        except (TypeError, ValueError) as e:
            raise Refuse(f"invalid spec: {e}") from None
        stored = blobs.mapping(key, where)
        missing = sorted(h for h in spec.get("inputs", {}).values() if h not in stored)
        if missing:
            raise Skip(f"input blobs not uploaded yet: {missing}")
        try:
            workloads.validate(spec, stored)
        except workloads.SpecError as e:
            raise Refuse(f"invalid spec with its inputs: {e}") from None
        except SealError as e:  # an input not sealed under the job's key, altered, or not its hash
            raise Refuse(f"sealed input does not open: {e}") from None
        except Exception as e:  # noqa: BLE001 - a malformed input blob is the user's: refuse the job
            raise Refuse(f"invalid input: {type(e).__name__}: {str(e)[:200]}") from None
        if key is not None:
            self.w.guard.data_keys[spec_hex] = (key, where)
        return spec

    def check(self, job: dict, snap: _Cycle, jid: int | None = None) -> tuple[dict, int]:
        """(spec, collateral to lock) if the job is acceptable now; Skip or Refuse otherwise.
        With `jid`, the job's spec blob is linked to it once the spec checks out."""
        w = self.w
        class_id = int(job["class_id"])
        if class_id not in snap.offers:
            snap.offers[class_id] = int(w.h.registry.offers(w.address, class_id))
        offer = snap.offers[class_id]
        if offer == 0:
            raise Skip(f"no offer posted for class {class_id}")
        if job["usd_value"] < offer * job["compute_units"]:
            per_unit = job["usd_value"] // max(1, job["compute_units"])
            raise Skip(f"pays {per_unit} USD-wei per unit, below the offer {offer} (USD per unit, 18 decimals)")
        spec = self.load_spec(job)
        if jid is not None and jid not in self._linked:
            # Its spec is in use from now on (not an orphan blob), and its user a reader of it:
            # only once the spec is checked to be this user's job. Linked earlier, anyone funding
            # a job that names someone else's blob (a spec, or a result) became its reader.
            w.guard.link(jid, job, [_hex32(job["spec_hash"])])
            self._linked.add(jid)
        units = workloads.compute_units(spec)
        if units != job["compute_units"]:
            raise Refuse(f"compute units mismatch: the spec is {units} units, the job pays for {job['compute_units']}")
        if snap.pending >= w.cfg.max_pending:
            raise Skip(f"{snap.pending} accepted jobs still to run (max_pending {w.cfg.max_pending})")
        need = required_collateral(job["payment"], job["collateral"], snap.audit_bps, snap.detection_bps)
        if need > snap.free:
            raise Skip(f"collateral {need} is more than the free stake {snap.free}: stake more or wait for jobs to end")
        if not snap.stake_ok:
            raise Skip("stake below the machines' required minimum: stake more")
        return spec, need

    # ------------------------------------------------------------------ taking
    def accept(self, machine_id: int, items: list[tuple[int, dict, dict]]) -> None:
        """One transaction for the jobs picked on one machine; one by one if that batch reverts."""
        w = self.w
        ids = [jid for jid, _, _ in items]
        for jid in ids:
            w.store.set_state(jid, "accepting", machine_id=machine_id)
        try:
            if len(items) == 1:
                receipt = w.tx().transact(w.h.market.accept, ids[0], as_tuple(items[0][1]), machine_id)
            else:
                jobs = [as_tuple(job) for _, job, _ in items]
                receipt = w.tx().transact(w.h.market.accept_jobs, ids, jobs, machine_id, items=len(ids))
        except Exception as e:  # noqa: BLE001 - a revert (a job taken or cancelled meanwhile) or an RPC error
            self.metrics.error("accept")
            log.warning(json.dumps({"event": "tx_failed", "tx": "accept_jobs" if len(items) > 1 else "accept",
                                    "job_ids": ids, "error": f"{type(e).__name__}: {e}"}))  # fmt: skip
            for jid in ids:
                w._resolve_after_failure(jid)
            if len(items) > 1:
                still = [it for it in items if (w.store.job(it[0]) or {}).get("state") == "candidate"]
                for it in still:
                    self.accept(machine_id, [it])
            else:
                w._retry_at[ids[0]] = time.monotonic() + w.cfg.tx_retry_s
            return
        w._crash_point("accepted", ids[0])
        for lg in receipt.decode_logs(w.h.market.JobAccepted):
            if int(lg.job_id) in w.jobs:
                w.jobs[int(lg.job_id)] = apply_event(w.jobs[int(lg.job_id)], "JobAccepted", lg)
        for jid, job, spec in items:
            w.store.set_state(jid, "running", machine_id=machine_id)
            spec_hex = _hex32(job["spec_hash"])
            where = (w.guard.data_keys.get(spec_hex) or (None, None))[1] or {}
            inputs = [where.get(h, h) for h in spec.get("inputs", {}).values()]
            w.guard.link(jid, job, [spec_hex, *inputs])
            self.forget(jid)
            w.checked.add(jid)
            w.specs[jid] = spec  # checked above: the run needs no second read
            _event(event="accepted", job_id=jid, machine_id=machine_id, kind=spec["kind"], units=job["compute_units"],
                   batch=len(items))  # fmt: skip


__all__ = ["Intake", "Refuse", "Skip", "required_collateral"]
