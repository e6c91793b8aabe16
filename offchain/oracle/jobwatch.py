"""Following JobMarket from the oracle's cursor loop: its events, the jobs they rebuild, the audit draw.

All of a batch's market events come from one `eth_getLogs` (every event type of interest in one
topic filter), not one query per event type, and each job's struct is cached in the oracle's
SQLite store and updated by `offchain.chain.jobs.apply_event`; nothing is re-read from the
start of the chain on later cycles.
"""

from __future__ import annotations

import re
from typing import Any

from offchain.chain.follow import Source, contract_logs
from offchain.chain.jobs import MARKET_EVENTS as JOB_EVENTS
from offchain.chain.jobs import apply_event, job_from_batch, job_from_created, job_from_filled
from offchain.constants import JobStatus

# Every job's events, and a batch order's shared fields (OrderBatchFilled: no job id of its own).
MARKET_EVENTS = (*JOB_EVENTS, "OrderBatchFilled")

BYTES32_FIELDS = ("spec_hash", "result_hash")
TERMINAL_EVENTS = {
    "JobFinalized": JobStatus.FINALIZED,
    "JobFailed": JobStatus.FAILED,
    "JobCancelled": JobStatus.CANCELLED,
    "JobExpired": JobStatus.EXPIRED,
}
_BLOB_URI = re.compile(r"^(https?://.+?)/blobs/[0-9a-fA-F]{64}/?$")


def market_logs(
    market: Any, provider: Any, start: int, stop: int, events: tuple[str, ...] = MARKET_EVENTS
) -> list[Any]:
    """Every `events` log (default: MARKET_EVENTS) of `market` in blocks [start, stop], in chain
    order, from one query (`stop` at or below a head the caller read)."""
    return contract_logs(provider, [Source(market, events)], start, stop)


def job_to_store(job: dict) -> dict:
    """A Job dict made JSON-able: bytes32 fields as 0x-hex, addresses as strings, ints as ints."""
    out: dict[str, Any] = {}
    for k, v in job.items():
        if k in BYTES32_FIELDS:
            out[k] = "0x" + bytes(v).hex() if not isinstance(v, str) else v
        elif isinstance(v, str):
            out[k] = v
        else:
            out[k] = int(v)
    return out


def job_from_store(data: dict) -> dict:
    """Inverse of `job_to_store`: bytes32 fields back to bytes (what `as_tuple` must pass on-chain)."""
    job = dict(data)
    for k in BYTES32_FIELDS:
        job[k] = bytes.fromhex(str(job[k]).removeprefix("0x"))
    return job


def _filled(store: Any, job_id: int, job: dict, uri: str, block_ts: int) -> None:
    # A signed order's job starts Running, or Submitted when its fill carried the result.
    if any(bytes(job["result_hash"])):
        store.upsert_job(job_id, job_to_store(job), JobStatus.SUBMITTED, result_uri=uri, submitted_at=block_ts)
    else:
        store.upsert_job(job_id, job_to_store(job), JobStatus.RUNNING)


def apply_market_log(store: Any, log: Any, block_ts: int, batch_jobs: dict | None = None) -> None:
    """Updates the cached job (store.jobs) from one market event. Idempotent: replaying a batch
    after a crash rewrites the same values. `batch_jobs` (one dict per chunk of logs, in chain
    order) holds a batch order's OrderJobFilled logs until its OrderBatchFilled, later in the
    same transaction, completes them."""
    name = log.event_name
    args = log.event_arguments
    if name == "OrderBatchFilled":
        uri = str(args["result_uri"])
        for lg in (batch_jobs or {}).pop(str(log.transaction_hash), []):
            _filled(store, int(lg.event_arguments["job_id"]), job_from_batch(log, lg), uri, block_ts)
        return
    if name == "OrderCancelled":  # an order never filled: no job
        return
    job_id = int(args["job_id"])
    if name == "JobCreated":
        store.upsert_job(job_id, job_to_store(job_from_created(log)), JobStatus.OPEN)
        return
    if name == "OrderFilled":
        _filled(store, job_id, job_from_filled(log), str(args["result_uri"]), block_ts)
        return
    if name == "OrderJobFilled":
        if batch_jobs is not None:
            batch_jobs.setdefault(str(log.transaction_hash), []).append(log)
        return
    row = store.job(job_id)
    if row is None:  # created before this database's cursor: nothing to rebuild it from
        return
    job = job_from_store(row["job"])
    if name == "JobAccepted":
        store.upsert_job(job_id, job_to_store(apply_event(job, name, log)), JobStatus.RUNNING)
    elif name == "ResultSubmitted":
        store.upsert_job(
            job_id,
            job_to_store(apply_event(job, name, log)),
            JobStatus.SUBMITTED,
            result_uri=str(args["result_uri"]),
            submitted_at=block_ts,
        )
    elif name == "JobDisputed":
        # A sampled audit has no event: the oracle's draw marks it (verdicts.VerdictsMixin._check_draw).
        store.set_job_fields(
            job_id,
            status=int(JobStatus.AUDIT),
            audit_opened_at=block_ts,
            audit_deadline=int(args["audit_deadline"]),
            challenger=str(args["challenger"]),
        )
    elif name in TERMINAL_EVENTS:
        store.set_job_fields(job_id, status=int(TERMINAL_EVENTS[name]))
    # VerdictPosted is followed by JobFinalized or JobFailed in the same transaction.


def provider_urls(result_uri: str, endpoint: str | None) -> list[str]:
    """Base URLs to fetch a job's blobs from: the result URI's base (`<agent>/blobs/<hex>`),
    then the machine's registered endpoint. Both are the provider's own word; a provider that
    points them nowhere withholds its output."""
    out: list[str] = []
    m = _BLOB_URI.match(result_uri.strip())
    if m:
        out.append(m.group(1))
    if endpoint:
        out.append(endpoint)
    return out
