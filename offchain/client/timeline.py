"""A job's story told by chain events (`gpunet job logs`) and the jobs of a user or a provider
(`gpunet job list`, `gpunet provider jobs`). Read-only, over the SDK's handles (`h.market`,
`h.registry`, `h.settlement`, `h.hub`, `h.chain`, `h.record`).

Each step of a timeline is a dict: `event` (created, accepted, submitted, audit draw,
disputed, verdict, finalized, failed, cancelled, expired), `block`, `time` (the
block's unix time), `tx`, `text` (one line for people) and `data` (the numbers behind it).
`waiting` says why the job waits now and until when, or that it has ended.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from offchain.chain.beacon import ROUND_DEGRADED, ROUND_READY, audit_draw
from offchain.chain.events import logs, start_block
from offchain.chain.jobs import MARKET_EVENTS, apply_event, check_job, job_from_chain, job_from_created
from offchain.client.sdk import ClientError, fmt_usd, tokens
from offchain.constants import TERMINAL_JOB_STATUSES, JobStatus

# Event arguments that are bools (ape decodes them as 0/1).
BOOL_ARGS = frozenset({"valid", "audit_timed_out"})


# ---------------------------------------------------------------------------- small helpers


class BlockTimes(dict):
    """{block number: unix time}, each block read once."""

    def __init__(self, h: Any):
        super().__init__()
        self.h = h

    def __missing__(self, number: int) -> int:
        t = int(self.h.chain.blocks[int(number)].timestamp)
        self[int(number)] = t
        return t


def now(h: Any) -> int:
    """What the next block's time will be at least: the head's time or the wall clock."""
    return max(int(h.chain.blocks.head.timestamp), int(time.time()))


def fmt_time(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(ts)))


def span(seconds: int) -> str:
    s = abs(int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60} s"
    if s < 2 * 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def relative(ts: int, t_now: int) -> str:
    """E.g. "in 59 min 0 s" or "3 s ago"."""
    d = int(ts) - int(t_now)
    return f"in {span(d)}" if d >= 0 else f"{span(d)} ago"


def when(ts: int, t_now: int) -> str:
    return f"{fmt_time(ts)} ({relative(ts, t_now)})"


def is_zero(addr: str) -> bool:
    return int(str(addr), 16) == 0


def _hex(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    text = str(v)
    return text if text.startswith("0x") else "0x" + text


def _args(lg: Any) -> dict:
    return dict(lg.event_arguments)


def class_name(class_id: int) -> str:
    from offchain.benchmark.gpu_classes import get_class

    try:
        return get_class(int(class_id)).name
    except KeyError:
        return f"class {class_id}"


def check_job_id(h: Any, job_id: int) -> None:
    from offchain.client.sdk import _check_id

    _check_id(h, int(job_id))  # create_job's ids, or a filled order's digest


# ---------------------------------------------------------------------------- one job's timeline


def job_logs(h: Any, job_id: int) -> list[Any]:
    """Every JobMarket event of the job, oldest first."""
    found = [lg for name in MARKET_EVENTS for lg in logs(h, getattr(h.market, name), job_id=job_id)]
    return sorted(found, key=lambda lg: (lg.block_number, lg.log_index))


def _machine(h: Any, machine_id: int) -> dict:
    m = h.registry.machines(machine_id)
    cid = int(m.class_id)
    return {"machine_id": int(machine_id), "class_id": cid, "class": class_name(cid), "gpu_count": int(m.gpu_count),
            "vram_mb": int(m.vram_mb)}  # fmt: skip


def _same_tx(found: Iterable[Any], tx: str) -> list[Any]:
    return sorted((lg for lg in found if _hex(lg.transaction_hash) == tx), key=lambda lg: lg.log_index)


def settlement_of(h: Any, fin: Any) -> dict | None:
    """Settlement.Settled for a JobFinalized log: finalizing only credits the provider; its next
    claim (`JobMarket.claim`, the first Settled for that provider after the job's finalization)
    burns the escrow and mints the pay for every job of its finalized since its previous claim;
    `jobs` counts them. None while the job's pay is still credited, not claimed."""
    if getattr(h, "settlement", None) is None:
        return None
    who = _args(fin)["provider"]
    at = (int(fin.block_number), int(fin.log_index))
    settled = logs(h, h.settlement.Settled, provider=who)
    after = [x for x in settled if (int(x.block_number), int(x.log_index)) > at]
    if not after:
        return None
    s = after[0]
    before = [x for x in settled if (int(x.block_number), int(x.log_index)) < at]
    lo = (int(before[-1].block_number), int(before[-1].log_index)) if before else (-1, -1)
    hi = (int(s.block_number), int(s.log_index))
    fins = h.market.JobFinalized.range(lo[0] if before else start_block(h), hi[0] + 1,
                                       search_topics={"provider": who})  # fmt: skip
    a = _args(s)
    return {"burned": int(a["burned"]), "usd_net": int(a["usd_net"]), "cap": int(a["cap"]),
            "minted": int(a["minted"]), "price": int(a["price"]), "tx": _hex(s.transaction_hash),
            "jobs": sum(1 for f in fins if lo < (int(f.block_number), int(f.log_index)) < hi)}  # fmt: skip


def _quorum_signers(h: Any, lg: Any) -> int | None:
    hub = getattr(h, "hub", None)
    if hub is None:
        return None
    b = int(lg.block_number)
    found = _same_tx(hub.VerdictAccepted.range(b, b + 1, search_topics={"job_id": int(_args(lg)["job_id"])}),
                     _hex(lg.transaction_hash))  # fmt: skip
    return int(_args(found[0])["signers"]) if found else None


def _created(h: Any, a: dict, t_now: int) -> str:
    who = "any provider (open job)" if is_zero(a["provider"]) else f"provider {a['provider']}"
    return (f"created by {a['user']} for {who}: {a['compute_units']} compute units of class {a['class_id']} "
            f"({class_name(a['class_id'])}), {fmt_usd(a['usd_value'])} = {tokens(a['payment'])} tokens escrowed, "
            f"fee {a['fee_bps'] / 100:g}%; accept by {fmt_time(a['accept_by'])}")  # fmt: skip


def _accepted(h: Any, a: dict, t_now: int) -> str:
    m = a["machine"]
    return (f"accepted by {a['provider']} on machine {m['machine_id']} ({m['class']}, {m['gpu_count']} GPU, "
            f"{m['vram_mb']} MB); collateral {tokens(a['collateral'])} tokens, audit rate "
            f"{a['audit_bps'] / 100:g}%; result due by {fmt_time(a['complete_by'])}")  # fmt: skip


def _submitted(h: Any, a: dict, t_now: int) -> str:
    return (f"result {_hex(a['result_hash'])} at {a['result_uri']}; challenge window until "
            f"{fmt_time(a['challenge_end'])}")  # fmt: skip


def _has_result(a: dict) -> bool:
    return "result_hash" in a and any(bytes.fromhex(str(a["result_hash"]).removeprefix("0x")))


def _filled(h: Any, a: dict, t_now: int) -> str:
    # OrderFilled (the whole job) or OrderJobFilled (a batch order's job: its own fields only).
    if "user" in a:
        head = (f"signed order of {a['user']} filled by {a['provider']} on machine {a['machine_id']}: "
                f"{a['compute_units']} compute units of class {a['class_id']} ({class_name(a['class_id'])}), "
                f"{fmt_usd(a['usd_value'])} = ")  # fmt: skip
    else:
        head = f"filled in a batch order: {a['compute_units']} units, "
    head += f"{tokens(a['payment'])} tokens escrowed, collateral {tokens(a['collateral'])} tokens"
    if not _has_result(a):
        return head + (f"; result due by {fmt_time(a['complete_by'])}" if "complete_by" in a else "; running")
    if "challenge_end" in a:
        return (
            head
            + f"; result {_hex(a['result_hash'])} at {a['result_uri']}, challenge window until "
            + fmt_time(a["challenge_end"])
        )
    return head + f"; result {_hex(a['result_hash'])}"


def _disputed(h: Any, a: dict, t_now: int) -> str:
    return (f"disputed by {a['challenger']} (bond {tokens(a['bond'])} tokens); verdict due by "
            f"{fmt_time(a['audit_deadline'])}")  # fmt: skip


def _verdict(h: Any, a: dict, t_now: int) -> str:
    n = a.get("quorum_signers")
    by = f"the oracle quorum ({n} signatures, via {a['verifier']})" if n else a["verifier"]
    return f"verdict: {'valid' if a['valid'] else 'INVALID'} result, posted by {by}"


def _finalized(h: Any, a: dict, t_now: int) -> str:
    s = a.get("settled")
    text = f"finalized: escrow {tokens(a['burned'])} tokens (burned at the claim), fee {tokens(a['fee'])} tokens"
    if a["audit_timed_out"]:
        text += " (the audit timed out: the result stands)"
    if s is None:
        return text + "; credited to the provider, not claimed yet (`gpunet provider claim`)"
    if s["jobs"] == 1:
        return text + f"; claimed: provider minted {tokens(s['minted'])} tokens for {fmt_usd(s['usd_net'])}"
    return text + (f"; claimed with {s['jobs']} jobs: provider minted {tokens(s['minted'])} tokens "
                   f"for {fmt_usd(s['usd_net'])} in all")  # fmt: skip


def _failed(h: Any, a: dict, t_now: int) -> str:
    return (f"failed: user refunded {tokens(a['refund'])} tokens; provider's collateral slashed: "
            f"{tokens(a['user_compensation'])} to the user, {tokens(a['challenger_reward'])} to the challenger, "
            f"{tokens(a['burned'])} burned")  # fmt: skip


def _cancelled(h: Any, a: dict, t_now: int) -> str:
    return f"cancelled: user refunded {tokens(a['refund'])} tokens"


def _expired(h: Any, a: dict, t_now: int) -> str:
    return (f"expired (no result by the deadline): user refunded {tokens(a['refund'])} tokens plus a no-show "
            f"penalty of {tokens(a['penalty'])} tokens slashed from the provider")  # fmt: skip


STEPS = {
    "JobCreated": ("created", _created), "JobAccepted": ("accepted", _accepted),
    "OrderFilled": ("filled", _filled), "OrderJobFilled": ("filled", _filled),
    "ResultSubmitted": ("submitted", _submitted),
    "JobDisputed": ("disputed", _disputed), "VerdictPosted": ("verdict", _verdict),
    "JobFinalized": ("finalized", _finalized), "JobFailed": ("failed", _failed),
    "JobCancelled": ("cancelled", _cancelled), "JobExpired": ("expired", _expired),
}  # fmt: skip


def _plain(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return _hex(v)
    if isinstance(v, bool) or isinstance(v, (dict, list)):
        return v
    if isinstance(v, int):
        return int(v)
    return str(v)


def _step(h: Any, lg: Any, times: BlockTimes, t_now: int) -> dict:
    a = {k: bool(v) if k in BOOL_ARGS else _plain(v) for k, v in _args(lg).items()}
    if lg.event_name == "JobAccepted":
        a["machine"] = _machine(h, a["machine_id"])
    elif lg.event_name == "JobFinalized":
        a["settled"] = settlement_of(h, lg)
    elif lg.event_name == "VerdictPosted":
        a["quorum_signers"] = _quorum_signers(h, lg)
    name, describe = STEPS[lg.event_name]
    text = describe(h, a, t_now)
    return {"event": name, "block": int(lg.block_number), "time": times[lg.block_number],
            "tx": _hex(lg.transaction_hash), "text": text, "data": a}  # fmt: skip


def audit_draw_state(h: Any, job_id: int, job: dict, t_now: int | None = None) -> dict:
    """The submitted job's audit draw, from AuditBeacon's round `draw_round`: the round's state
    ("ready": every member revealed, the seed is known; "degraded": the reveal window closed
    first, so every job drawn from it is audited; "pending": reveals still due), its reveals so
    far and the members required, its reveal deadline, and whether the job was drawn (None while
    pending; False at an audit rate of 0 whatever the round)."""
    t_now = now(h) if t_now is None else t_now
    round_, bps = int(job["draw_round"]), int(job["audit_bps"])
    beacon = getattr(h, "beacon", None)
    d: dict[str, Any] = {"round": round_, "audit_bps": bps, "state": None, "revealed": None, "required": None,
                         "reveal_deadline": None, "drawn": False if bps == 0 else None}  # fmt: skip
    if beacon is not None:
        state, _ = beacon.draw_seed(round_)
        revealed, required = (int(x) for x in beacon.round_counts(round_))
        deadline = round_ * int(beacon.ROUND_SECONDS()) + int(beacon.REVEAL_WINDOW())
        name = {ROUND_READY: "ready", ROUND_DEGRADED: "degraded"}.get(int(state), "pending")
        if name == "pending" and t_now > deadline:
            name = "degraded"  # no block since the window closed (a dev chain mines on transactions)
        d.update(state=name, revealed=revealed, required=required or int(beacon.required_members(round_)),
                 reveal_deadline=deadline)  # fmt: skip
        if bps:
            d["drawn"] = audit_draw(beacon, job_id, job, t_now)
    rate, r = f"audit rate {bps / 100:g}%", f"beacon round {round_}"
    if d["drawn"] is None and d["state"] == "pending":
        text = (f"audit draw pending ({rate}): {r} has {d['revealed']} of {d['required']} reveals, due by "
                f"{when(d['reveal_deadline'], t_now)}")  # fmt: skip
    elif d["drawn"] is None:
        text = f"audit draw unknown ({rate}): the deployment record has no AuditBeacon"
    elif not d["drawn"]:
        text = f"not drawn for audit ({rate}, {r})"
    elif d["state"] == "degraded":
        text = (f"drawn for audit ({rate}): {r} was not fully revealed by {fmt_time(d['reveal_deadline'])} "
                f"({d['revealed']} of {d['required']} reveals), so every job drawn from it is audited")  # fmt: skip
    else:
        text = f"drawn for audit ({rate}, {r})"
    if d["drawn"]:
        text += "; the oracle quorum re-executes it, no transaction needed"
    d["text"] = text
    return d


def _draw_step(h: Any, job_id: int, job: dict, found: list[Any], times: BlockTimes, t_now: int) -> dict:
    """The draw as a step: when its round's last reveal landed (ready), when its reveal window
    closed (degraded), else (pending, or no audit) with the submission."""
    d = audit_draw_state(h, job_id, job, t_now)
    sub = next(lg for lg in found if lg.event_name == "ResultSubmitted")
    block, tx = int(sub.block_number), _hex(sub.transaction_hash)
    at = times[block]
    if d["state"] == "ready":
        reveals = logs(h, h.beacon.Revealed, round=d["round"])
        if reveals:
            block, tx = int(reveals[-1].block_number), _hex(reveals[-1].transaction_hash)
            at = times[block]
    elif d["state"] == "degraded":
        at = max(at, int(d["reveal_deadline"]))
    return {"event": "audit draw", "block": block, "time": at, "tx": tx, "text": d.pop("text"), "data": d}


def rebuild(h: Any, job_id: int, found: list[Any]) -> dict:
    """The job's current struct from its own logs, checked against JobMarket's commitment."""
    if found[0].event_name != "JobCreated":  # a signed order's job: its fill has it whole
        return job_from_chain(h.market, job_id, start_block(h), int(h.chain.blocks.height) + 1)
    job = job_from_created(found[0])
    for lg in found:
        job = apply_event(job, lg.event_name, lg)
    if not check_job(h.market, job_id, job):
        raise ClientError(f"job {job_id}: its events do not match the on-chain commitment (wrong start block?)")
    return job


def timeline(h: Any, job_id: int) -> dict:
    """{"job_id", "status", "now", "job", "steps": [...], "waiting": {...}} for `gpunet job logs`."""
    check_job_id(h, job_id)
    found = job_logs(h, job_id)
    if not found or found[0].event_name not in ("JobCreated", "OrderFilled", "OrderJobFilled"):
        raise ClientError(
            f"job {job_id}: no JobCreated or OrderFilled event found (wrong deployment record or start block?)"
        )
    job = rebuild(h, job_id, found)
    st = JobStatus(int(h.market.job_status(job_id)))
    times, t_now = BlockTimes(h), now(h)
    steps = [_step(h, lg, times, t_now) for lg in found]
    draw = None
    if int(job["draw_round"]):
        draw = _draw_step(h, job_id, job, found, times, t_now)
        at = next(i for i, s in enumerate(steps) if s["event"] in ("submitted", "filled") and _has_result(s["data"]))
        steps.insert(at + 1, draw)
    plain_job = {k: _plain(v) for k, v in job.items()}
    waiting = waiting_for(h, job_id, st, plain_job, draw["data"] if draw else None, t_now)
    return {"job_id": job_id, "status": st.name, "now": t_now, "job": plain_job, "steps": steps, "waiting": waiting}


# ---------------------------------------------------------------------------- why it waits


def waiting_for(h: Any, job_id: int, st: JobStatus, job: dict, draw: dict | None, t_now: int) -> dict:
    """{"status", "until" (unix time or None), "text"}: what the job waits for now."""
    if st in TERMINAL_JOB_STATUSES:
        return {"status": st.name, "until": None, "text": f"ended: {st.name}"}
    until, text = {
        JobStatus.OPEN: _wait_open, JobStatus.RUNNING: _wait_running, JobStatus.SUBMITTED: _wait_submitted,
        JobStatus.AUDIT: _wait_audit,
    }[st](h, job_id, job, draw, t_now)  # fmt: skip
    return {"status": st.name, "until": until, "text": text}


def _wait_open(h: Any, job_id: int, job: dict, draw: dict | None, t_now: int) -> tuple[int, str]:
    until = int(job["accept_by"])
    who = (f"any provider of class {job['class_id']} ({class_name(job['class_id'])})" if is_zero(job["provider"])
           else f"provider {job['provider']}")  # fmt: skip
    if t_now <= until:
        return until, (f"waiting for {who} to accept, until {when(until, t_now)}; after that anyone can "
                       f"`gpunet job expire {job_id}` (full refund); the user may `gpunet job cancel {job_id}` "
                       "any time before it is accepted")  # fmt: skip
    return until, (f"nobody accepted by {when(until, t_now)}: anyone can `gpunet job expire {job_id}` "
                   "(full refund to the user)")  # fmt: skip


def _wait_running(h: Any, job_id: int, job: dict, draw: dict | None, t_now: int) -> tuple[int, str]:
    until = int(job["complete_by"])
    if t_now <= until:
        return until, (f"provider {job['provider']} is running it on machine {job['machine_id']}, result due by "
                       f"{when(until, t_now)}; after that anyone can `gpunet job expire {job_id}` (refund and a "
                       "no-show penalty)")  # fmt: skip
    return until, (f"result overdue since {when(until, t_now)}: anyone can `gpunet job expire {job_id}` (refund "
                   "and a no-show penalty from the provider's collateral)")  # fmt: skip


def _wait_submitted(h: Any, job_id: int, job: dict, draw: dict | None, t_now: int) -> tuple[int, str]:
    end = int(job["challenge_end"])
    if draw and draw["drawn"]:
        until = end + int(h.market.params().audit_timeout)
        if t_now <= until:
            return until, (f"drawn for audit: the oracle quorum re-executes it, verdict due by {when(until, t_now)} "
                           "(challenge window end + audit timeout); after that anyone may finalize and the result "
                           "stands")  # fmt: skip
        return until, (f"drawn for audit, no verdict by {when(until, t_now)}: anyone may finalize (the result "
                       "stands)")  # fmt: skip
    if draw and draw["drawn"] is None and draw["state"] == "pending":
        return end, (f"audit draw pending: beacon round {draw['round']} is revealed by "
                     f"{when(draw['reveal_deadline'], t_now)} (or every job of it is audited); challenge window "
                     f"until {when(end, t_now)}: anyone may `gpunet job dispute {job_id}`")  # fmt: skip
    if t_now <= end:
        return end, (f"challenge window until {when(end, t_now)}: anyone may `gpunet job dispute {job_id}`; then "
                     "anyone may finalize (the provider's agent does)")  # fmt: skip
    return end, (f"challenge window closed {relative(end, t_now)}: waiting for anyone to finalize (the provider's "
                 "agent does)")  # fmt: skip


def _wait_audit(h: Any, job_id: int, job: dict, draw: dict | None, t_now: int) -> tuple[int, str]:
    d = h.market.disputes(job_id)
    until = int(d.audit_deadline)
    kind = "a sampled audit" if is_zero(d.challenger) else f"disputed by {d.challenger}"
    if t_now <= until:
        return until, (f"audit by the oracle quorum ({kind}), verdict due by {when(until, t_now)}; after that "
                       "anyone may finalize and the result stands")  # fmt: skip
    return until, (f"no verdict by the audit deadline {when(until, t_now)}: anyone may finalize (the result stands, "
                   "a challenger's bond is returned)")  # fmt: skip


# ---------------------------------------------------------------------------- lists of jobs


def _first(h: Any, event: str, job_id: int) -> Any | None:
    found = logs(h, getattr(h.market, event), job_id=job_id)
    return found[0] if found else None


def jobs_of(h: Any, *, user: str | None = None, provider: str | None = None,
            states: Iterable[str] | None = None) -> list[dict]:  # fmt: skip
    """The jobs a user created, or a provider was offered or accepted, as rows sorted by state
    (lifecycle order) then newest first; `states` (names) keeps only those."""
    created: dict[int, Any] = {}
    accepted: dict[int, Any] = {}
    if user:
        created.update({int(_args(lg)["job_id"]): lg for lg in logs(h, h.market.JobCreated, user=user)})
    if provider:
        created.update({int(_args(lg)["job_id"]): lg for lg in logs(h, h.market.JobCreated, provider=provider)})
        accepted = {int(_args(lg)["job_id"]): lg for lg in logs(h, h.market.JobAccepted, provider=provider)}
        for jid in accepted.keys() - created.keys():
            created[jid] = _first(h, "JobCreated", jid)
    wanted = {s.upper() for s in states} if states else None
    times, t_now = BlockTimes(h), now(h)
    rows = []
    for jid, lg in created.items():
        st = JobStatus(int(h.market.job_status(jid)))
        if wanted is None or st.name in wanted:
            rows.append(_row(h, jid, st, lg, accepted.get(jid), times, t_now))
    return sorted(rows, key=lambda r: (JobStatus[r["status"]].value, -r["job_id"]))


def _row(h: Any, jid: int, st: JobStatus, created: Any, acc: Any, times: BlockTimes, t_now: int) -> dict:
    a = _args(created)
    prov = None if is_zero(a["provider"]) else str(a["provider"])
    if acc is None and st not in (JobStatus.OPEN, JobStatus.CANCELLED):
        acc = _first(h, "JobAccepted", jid)
    if acc is not None:
        prov = str(_args(acc)["provider"])
    at = times[created.block_number]
    return {
        "job_id": jid, "status": st.name, "user": str(a["user"]), "provider": prov,
        "machine_id": int(_args(acc)["machine_id"]) if acc is not None else None, "class_id": int(a["class_id"]),
        "compute_units": int(a["compute_units"]), "usd_value": int(a["usd_value"]), "payment": int(a["payment"]),
        "created_block": int(created.block_number), "created_at": at, "age_s": max(t_now - at, 0),
    }  # fmt: skip


__all__ = ["check_job_id", "jobs_of", "timeline", "waiting_for"]
