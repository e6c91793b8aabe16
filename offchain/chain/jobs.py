"""Rebuilding JobMarket's `Job` structs from its events.

JobMarket stores only a commitment (hash + status) per job; every call that moves a job
takes the full struct. Its events carry every field, so anyone (user, provider, keeper,
oracle) can rebuild the current struct from logs and `check_job` it against the chain's commitment.
"""

from __future__ import annotations

from typing import Any

from offchain.constants import JOB_FIELDS

# Every JobMarket event of a job, in its lifecycle order (the job_id is indexed in each).
MARKET_EVENTS = (
    "JobCreated",
    "OrderFilled",
    "OrderJobFilled",
    "JobAccepted",
    "ResultSubmitted",
    "JobDisputed",
    "VerdictPosted",
    "JobFinalized",
    "JobFailed",
    "JobCancelled",
    "JobExpired",
    "OrderCancelled",
)
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = b"\x00" * 32


def _get(log: Any, name: str) -> Any:
    # ape ContractLog exposes event args as attributes; plain dicts (web3) as keys.
    # Use ape's `event_arguments`, not attributes: `log.provider` is ape's network provider.
    if isinstance(log, dict):
        return log[name]
    return log.event_arguments[name]


def job_from_created(log: Any) -> dict:
    """The Job as created, from a JobCreated event."""
    return {
        "user": _get(log, "user"),
        "provider": _get(log, "provider"),
        "machine_id": 0,
        "class_id": _get(log, "class_id"),
        "spec_hash": _get(log, "spec_hash"),
        "compute_units": _get(log, "compute_units"),
        "payment": _get(log, "payment"),
        "usd_value": _get(log, "usd_value"),
        "collateral": _get(log, "collateral"),
        "fee_bps": _get(log, "fee_bps"),
        "accept_by": _get(log, "accept_by"),
        "complete_within": _get(log, "complete_within"),
        "complete_by": 0,
        "result_hash": ZERO_BYTES32,
        "challenge_end": 0,
        "audit_bps": 0,
        "draw_round": 0,
    }


def job_from_filled(log: Any) -> dict:
    """The Job as a provider filled its signed order, from an OrderFilled event (Running, or
    Submitted when the fill carried a result)."""
    return {
        "user": _get(log, "user"),
        "provider": _get(log, "provider"),
        **{f: _get(log, f) for f in JOB_FIELDS if f not in ("user", "provider")},
    }


def job_from_batch(batch: Any, log: Any) -> dict:
    """A batch order's job, from its OrderJobFilled and the batch's OrderBatchFilled."""
    return {
        "user": _get(batch, "user"),
        "provider": _get(batch, "provider"),
        "machine_id": _get(batch, "machine_id"),
        "class_id": _get(batch, "class_id"),
        "spec_hash": _get(log, "spec_hash"),
        "compute_units": _get(log, "compute_units"),
        "payment": _get(log, "payment"),
        "usd_value": _get(batch, "price_per_unit") * _get(log, "compute_units"),
        "collateral": _get(log, "collateral"),
        "fee_bps": _get(batch, "fee_bps"),
        "accept_by": _get(batch, "accept_by"),
        "complete_within": _get(batch, "complete_within"),
        "complete_by": _get(batch, "complete_by"),
        "result_hash": _get(log, "result_hash"),
        "challenge_end": _get(batch, "challenge_end"),
        "audit_bps": _get(batch, "audit_bps"),
        "draw_round": _get(batch, "draw_round"),
    }


def _batch_jobs(batches: list, job_logs: list) -> list[tuple[int, int, dict]]:
    # (log index, job id, job) of batch order jobs: each OrderJobFilled belongs to the
    # OrderBatchFilled that follows it in the same transaction.
    return [(log.log_index, log.job_id, job_from_batch(_batch_of(batches, log), log)) for log in job_logs]


def _batch_of(batches: list, log: Any) -> Any:
    # The OrderBatchFilled a batch job's OrderJobFilled belongs to: the next one in its transaction.
    return min(
        (b for b in batches if b.transaction_hash == log.transaction_hash and b.log_index > log.log_index),
        key=lambda b: b.log_index,
    )


def apply_event(job: dict, event_name: str, log: Any) -> dict:
    """Returns the job after `event_name` (only JobAccepted and ResultSubmitted change fields)."""
    job = dict(job)
    if event_name == "JobAccepted":
        job["provider"] = _get(log, "provider")
        job["machine_id"] = _get(log, "machine_id")
        job["complete_by"] = _get(log, "complete_by")
        job["collateral"] = _get(log, "collateral")
        job["audit_bps"] = _get(log, "audit_bps")
    elif event_name == "ResultSubmitted":
        job["result_hash"] = _get(log, "result_hash")
        job["challenge_end"] = _get(log, "challenge_end")
        job["draw_round"] = _get(log, "draw_round")
    return job


def as_tuple(job: dict) -> tuple:
    """The struct in ABI field order."""
    return tuple(job[f] for f in JOB_FIELDS)


# ABI types of JobMarket.Job, in JOB_FIELDS order.
JOB_ABI_TYPES = (
    "address", "address", "uint256", "uint16", "bytes32", "uint256", "uint256", "uint256", "uint256",
    "uint256", "uint256", "uint256", "uint256", "bytes32", "uint256", "uint256", "uint256",
)  # fmt: skip


def commitment(job: dict | tuple) -> bytes:
    """What JobMarket stores for a job (`job_commitment`): keccak256(abi_encode(job)), low byte cleared.

    Computed here rather than by a contract view, which JobMarket cannot afford in its code size.
    """
    from eth_abi import encode
    from eth_utils import keccak

    values = job if isinstance(job, tuple) else as_tuple(job)
    digest = keccak(encode(["(" + ",".join(JOB_ABI_TYPES) + ")"], [values]))
    return digest[:31] + b"\x00"


def check_job(market: Any, job_id: int, job: dict | tuple, block: int | None = None) -> bool:
    """True when `job` (a dict or `as_tuple`'s tuple) is `job_id`'s current data (as of `block`,
    default the head): its commitment is what JobMarket stores (`job_commitment`; an unknown id's
    is zero, which no job hashes to)."""
    if block is None:
        return bytes(market.job_commitment(job_id)) == commitment(job)
    return bytes(market.job_commitment(job_id, block_id=block)) == commitment(job)


def job_from_chain(market: Any, job_id: int, start_block: int = 0, stop_block: int | None = None) -> dict:
    """Rebuilds a job from an ape JobMarket instance's logs and checks it on-chain."""
    search = {"job_id": job_id}
    if stop_block is None:
        # ape reads range(start, None) as range(0, start): always pass an explicit stop.
        stop_block = market.chain_manager.blocks.height + 1
    created = list(market.JobCreated.range(start_block, stop_block, search_topics=search))
    if created:
        job = job_from_created(created[0])
    else:
        # A signed order's job begins with its fill (its id is the order's digest).
        filled = list(market.OrderFilled.range(start_block, stop_block, search_topics=search))
        in_batch = [] if filled else list(market.OrderJobFilled.range(start_block, stop_block, search_topics=search))
        if filled:
            job = job_from_filled(filled[0])
        elif in_batch:
            block = in_batch[0].block_number
            batches = list(market.OrderBatchFilled.range(block, block + 1))
            job = _batch_jobs(batches, in_batch[:1])[0][2]
        else:
            raise LookupError(
                f"job {job_id}: no JobCreated or OrderFilled event found (wrong deployment or start block?)"
            )
    events: list[tuple[int, int, str, Any]] = []
    for name in ("JobAccepted", "ResultSubmitted"):
        for log in getattr(market, name).range(start_block, stop_block, search_topics=search):
            events.append((log.block_number, log.log_index, name, log))
    for _, _, name, log in sorted(events, key=lambda e: (e[0], e[1])):
        job = apply_event(job, name, log)
    # Checked at the last block the logs were read from: a provider's accept mined in between
    # would otherwise make a correct rebuild look wrong.
    if not check_job(market, job_id, job, stop_block - 1):
        raise RuntimeError(f"job {job_id}: rebuilt data does not match the on-chain commitment")
    return job


def jobs_from_receipt(market: Any, receipt: Any) -> list[tuple[int, dict]]:
    """(job_id, job) for every job a receipt created (JobCreated, OrderFilled, OrderJobFilled), in order."""
    logs = [(log.log_index, log.job_id, job_from_created(log)) for log in receipt.decode_logs(market.JobCreated)]
    logs += [(log.log_index, log.job_id, job_from_filled(log)) for log in receipt.decode_logs(market.OrderFilled)]
    batch_jobs = receipt.decode_logs(market.OrderJobFilled)
    if batch_jobs:
        logs += _batch_jobs(receipt.decode_logs(market.OrderBatchFilled), batch_jobs)
    return [(job_id, job) for _, job_id, job in sorted(logs, key=lambda e: e[0])]


def update_from_receipt(market: Any, jobs: dict[int, dict], receipt: Any) -> None:
    """Applies JobAccepted / ResultSubmitted events of a receipt to a {job_id: job} map in place."""
    for name in ("JobAccepted", "ResultSubmitted"):
        for log in receipt.decode_logs(getattr(market, name)):
            if log.job_id in jobs:
                jobs[log.job_id] = apply_event(jobs[log.job_id], name, log)


def order_result_event(market: Any, job_id: int, start_block: int, stop_block: int) -> Any | None:
    """For a signed order's job filled with its result: the event carrying `result_hash` and
    `result_uri` (its OrderFilled; for a batch order, its OrderJobFilled's hash with the batch's
    URI), else None (filled Running: the result comes with a ResultSubmitted)."""
    from types import SimpleNamespace

    search = {"job_id": job_id}
    for log in market.OrderFilled.range(start_block, stop_block, search_topics=search):
        return log if any(bytes(_get(log, "result_hash"))) else None
    for log in market.OrderJobFilled.range(start_block, stop_block, search_topics=search):
        if not any(bytes(_get(log, "result_hash"))):
            return None
        batch = _batch_of(list(market.OrderBatchFilled.range(log.block_number, log.block_number + 1)), log)
        return SimpleNamespace(
            event_arguments={"result_hash": _get(log, "result_hash"), "result_uri": _get(batch, "result_uri")}
        )
    return None
