"""The job worker's step 3 (`offchain/provider/worker.py`): run its accepted jobs, one at a
time, holding the agent's device lock (a hardware challenge then waits, see agent.py), store
each output in the blob store (sealed under the job's data key for a sealed job), then submit
every result of the cycle with one `submit_results` (`submit_result` for one; job by job if the
batch reverts). A result computed before a crash is in the blob store under its hash, so a
restart submits it without recomputing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from offchain import workloads
from offchain.chain.jobs import apply_event, as_tuple
from offchain.constants import JobStatus
from offchain.provider.cheats import execute_cheating
from offchain.provider.intake import Refuse, Skip, _event, _hex32
from offchain.sealing import SealError, seal_data

log = logging.getLogger("gpunet.provider.worker")


class Delivery:
    """Runs a worker's accepted jobs and submits their results (`w`: the JobWorker)."""

    def __init__(self, worker: Any):
        self.w = worker

    def _result_url(self, machine_id: int | None, result_hex: str) -> str:
        w = self.w
        base = w.cfg.public_url
        if not base and machine_id in w.machines:
            base = w.machines[machine_id].endpoint
        base = (base or w.server_url).rstrip("/")
        if "://" not in base:
            base = "http://" + base
        return f"{base}/blobs/{result_hex}"

    def execute(self, spec: dict, sealed: tuple[bytes, dict] | None = None) -> bytes:
        """The job's output bytes: honest, or the configured cheat. `sealed`: a sealed job's data
        key and where its inputs are stored; they are opened as they are read, and the output is
        sealed under the key."""
        w = self.w
        key, where = sealed or (None, None)
        blobs = w.blobs.mapping(key, where)
        with w.agent.device_lock():
            if w.cfg.cheat:
                out = execute_cheating(w.cfg.cheat, spec, w.agent.device, blobs)
            else:
                out = workloads.execute(spec, w.agent.device, blobs)
        data = workloads.output_bytes(out)
        return data if key is None else seal_data(data, key)

    def cycle(self, stop: threading.Event | None = None) -> None:
        """Runs every accepted job not run yet, then submits all the results at once."""
        w = self.w
        ready = []
        for row in w.store.jobs_in("running", "executed"):
            if stop is not None and stop.is_set():
                break
            item = self.work(row)
            if item is not None:
                ready.append(item)
        if ready:
            self.submit(ready)

    def work(self, row: dict) -> tuple[int, dict, str, str] | None:
        """Runs one accepted job (or finds its stored output); (id, job, result hex, uri) to submit."""
        w = self.w
        jid = row["job_id"]
        if w._retry_at.get(jid, 0) > time.monotonic():
            return None
        job = w.jobs.get(jid)
        if job is None:
            job = w.jobs[jid] = w._rebuild(jid)
        if jid not in w.checked:  # after a restart: it may have been submitted before the crash
            status = JobStatus(w.h.market.job_status(jid))
            if status != JobStatus.RUNNING or job["provider"].lower() != w.address.lower():
                if status in (JobStatus.SUBMITTED, JobStatus.AUDIT):
                    w.store.set_state(jid, "submitted")
                else:
                    w._done(jid, f"not running for us ({status.name})")
                return None
            w.checked.add(jid)
        if w.clock() > job["complete_by"]:
            w._done(jid, "completion deadline passed before the result was submitted")
            return None
        result_hex = row["result_hex"]
        if not (result_hex and w.blobs.has(result_hex)):
            try:
                # Re-opened after a restart: accepted already, so no auditor re-check.
                spec = w.specs.pop(jid, None) or w.intake.load_spec(job, check_auditors=False)
            except (Skip, Refuse) as e:  # blobs vanished from the store after acceptance
                w._done(jid, f"cannot run: {e}")
                return None
            t0 = time.perf_counter()
            try:
                data = self.execute(spec, w.guard.data_keys.get(_hex32(job["spec_hash"])))
            except (workloads.WorkloadError, workloads.SpecError, SealError) as e:
                # The job cannot be done (a bad model blob, ...): it will expire on-chain.
                w._done(jid, f"execution failed: {e}")
                return None
            seconds = time.perf_counter() - t0
            result_hex = w.blobs.put(data)
            w.guard.link(jid, job, [result_hex])
            w.store.set_state(jid, "executed", result_hex=result_hex)
            w.metrics.jobs_executed.labels(str(spec["kind"])).inc()
            w.metrics.job_seconds.observe(seconds)
            _event(event="executed", job_id=jid, kind=spec["kind"], result=result_hex,
                   seconds=round(seconds, 3), cheat=w.cfg.cheat)  # fmt: skip
            w._crash_point("executed", jid)
        return jid, job, result_hex, self._result_url(row["machine_id"] or int(job["machine_id"]), result_hex)

    def submit(self, ready: list[tuple[int, dict, str, str]]) -> None:
        """One `submit_results` for the batch (`submit_result` for one); one by one if it reverts."""
        w = self.w
        m = w.h.market
        try:
            if len(ready) == 1:
                jid, job, result_hex, uri = ready[0]
                receipt = w.tx().transact(m.submit_result, jid, as_tuple(job), bytes.fromhex(result_hex), uri)
            else:
                receipt = w.tx().transact(
                    m.submit_results, [r[0] for r in ready], [as_tuple(r[1]) for r in ready],
                    [bytes.fromhex(r[2]) for r in ready], [r[3] for r in ready], items=len(ready),
                )  # fmt: skip
        except Exception as e:  # noqa: BLE001 - a revert (a deadline passed meanwhile) or an RPC error
            w.metrics.error("submit")
            if len(ready) > 1:
                log.warning(json.dumps({"event": "tx_failed", "tx": "submit_results", "job_ids": [r[0] for r in ready],
                                        "error": f"{type(e).__name__}: {e}"}))  # fmt: skip
                for item in ready:
                    w.checked.discard(item[0])  # look its state up before trying it alone
                    self.submit([item])
            else:
                w.checked.discard(ready[0][0])
                w._tx_failed(ready[0][0], "submit_result", e)
            return
        for lg in receipt.decode_logs(m.ResultSubmitted):
            if int(lg.job_id) in w.jobs:
                w.jobs[int(lg.job_id)] = apply_event(w.jobs[int(lg.job_id)], "ResultSubmitted", lg)
        for jid, _, result_hex, uri in ready:
            w.store.set_state(jid, "submitted")
            _event(event="submitted", job_id=jid, result=result_hex, uri=uri, batch=len(ready))
