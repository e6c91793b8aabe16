"""An Emissions epoch's rewards records, read from the chain at one snapshot block.

Every operator builds the same records independently from the chain, so they reach the same
Merkle root without trusting each other: all state is read at one **snapshot block** (the
leader's choice, carried in its proposal; it must be at or after the epoch's end), events are
read up to it.

- Jobs: every `JobFinalized` event whose block time falls in the epoch (`rewards.epoch_of`),
  work units = its `fee` (the network fee in token wei, `payment * fee_bps // MAX_BPS`, burned
  with the rest of the escrow at settlement: the provider is minted the job's USD value minus
  the fee; finalized jobs only: failed, expired and cancelled jobs emit no JobFinalized).
- Machines: every registered machine, read at the snapshot: provider, attested = Active with
  `attested_until >= epoch end` (a PASS attestation valid through the epoch; renewals happen
  ahead of expiry, and the manual Active override never expires), uptime = OracleHub
  `uptime_bps(epoch, machine)` (0 without an UptimeReport), hardware weight = the class's
  stake per GPU (whole tokens) x GPUs, required stake = `machine_requirement`.
- Stakes: `staked(provider)` (bonded, collateral included) of each machine's provider.

The uptime epochs must be Emissions' epochs: run the oracle service with `--emissions-epochs`
(uptime epoch = (t - GENESIS) // EPOCH_SECONDS), otherwise `uptime_bps(epoch, ...)` names
another window and every machine reads as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offchain.constants import ONE_TOKEN, JobStatus, MachineStatus
from offchain.economics import rewards as R
from offchain.params import EmissionsParams


@dataclass(frozen=True)
class EpochWindow:
    epoch: int
    start: int
    end: int  # exclusive


def epoch_window(emissions: Any, epoch: int, genesis: int | None = None, seconds: int | None = None) -> EpochWindow:
    genesis = int(emissions.GENESIS()) if genesis is None else genesis
    seconds = int(emissions.EPOCH_SECONDS()) if seconds is None else seconds
    return EpochWindow(epoch, genesis + epoch * seconds, genesis + (epoch + 1) * seconds)


def first_block_at(chain: Any, timestamp: int, lo: int, hi: int) -> int:
    """The first block in [lo, hi] with time >= `timestamp` (hi + 1 if none)."""
    while lo <= hi:
        mid = (lo + hi) // 2
        if int(chain.blocks[mid].timestamp) >= timestamp:
            hi = mid - 1
        else:
            lo = mid + 1
    return lo


def job_records(market: Any, chain: Any, window: EpochWindow, block: int, from_block: int = 0) -> list[R.JobRecord]:
    """JobFinalized (work), JobFailed (invalid results) and JobExpired (no-shows) events of the epoch,
    up to the snapshot block."""
    lo = first_block_at(chain, window.start, from_block, block)
    if lo > block:
        return []
    out: list[R.JobRecord] = []
    ts: dict[int, int] = {}
    # Finalized jobs are work (their fees); failed jobs (invalid verdicts) and expired ones
    # (accepted, never delivered) cost the provider its availability share of the epoch.
    events = (
        (market.JobFinalized, JobStatus.FINALIZED),
        (market.JobFailed, JobStatus.FAILED),
        (market.JobExpired, JobStatus.EXPIRED),
    )
    for event, status in events:
        for lg in event.range(lo, block + 1):
            b = int(lg.block_number)
            if b not in ts:
                ts[b] = int(chain.blocks[b].timestamp)
            if not window.start <= ts[b] < window.end:
                continue
            args = lg.event_arguments
            out.append(
                R.JobRecord(
                    provider=str(args["provider"]),
                    epoch=window.epoch,
                    status=int(status),
                    compute_units=0,  # not needed: work units are fees
                    fee=int(args["fee"]) if status == JobStatus.FINALIZED else 0,
                )
            )
    return out


def machine_records(
    registry: Any, hub: Any, window: EpochWindow, block: int
) -> tuple[list[R.MachineRecord], dict[str, int]]:
    """Every registered machine as of the snapshot block, and its providers' bonded stakes."""
    at = {"block_id": block}
    count = int(registry.machine_count(**at))
    classes: dict[int, int] = {}
    machines: list[R.MachineRecord] = []
    stakes: dict[str, int] = {}
    for mid in range(1, count + 1):
        m = registry.machines(mid, **at)
        status = int(m.status)
        if status == MachineStatus.EXITED:
            continue
        cid = int(m.class_id)
        if cid not in classes:
            classes[cid] = int(registry.gpu_classes(cid, **at).min_stake_per_gpu)
        provider = str(m.provider)
        attested = status == MachineStatus.ACTIVE and int(m.attested_until) >= window.end
        uptime = int(hub.uptime_bps(window.epoch, mid, **at)) if attested else 0
        machines.append(
            R.MachineRecord(
                provider=provider,
                machine_id=mid,
                attested=attested,
                uptime_bps=uptime,
                hardware_weight=classes[cid] * int(m.gpu_count) // ONE_TOKEN,
                required_stake=int(registry.machine_requirement(mid, **at)),
            )
        )
        if provider not in stakes:
            stakes[provider] = int(registry.staked(provider, **at))
    return machines, stakes


def build_epoch_rewards(
    h: Any, epoch: int, block: int, params: EmissionsParams | None = None, from_block: int = 0
) -> R.EpochRewards | None:
    """The epoch's rewards (leaves, root, totals, proofs) from the chain at `block`; None when
    no provider has work or availability. `h`: Handles (market, registry, hub, emissions, chain)."""
    params = params or EmissionsParams()
    window = epoch_window(h.emissions, epoch)
    jobs = job_records(h.market, h.chain, window, block, from_block)
    machines, stakes = machine_records(h.registry, h.hub, window, block)
    return R.epoch_rewards(epoch, jobs, machines, stakes, params)


def rewards_to_json(r: R.EpochRewards, block: int) -> dict[str, Any]:
    return {
        "epoch": r.epoch,
        "block": block,
        "root": "0x" + r.root.hex(),
        "total_work": str(r.total_work),
        "total_availability": str(r.total_availability),
        "leaves": {p: [str(w), str(a)] for p, (w, a) in r.leaves.items()},
    }


def rewards_from_json(d: dict[str, Any]) -> R.EpochRewards:
    """Rebuilds the tree (and proofs) from stored leaves; the root must come out the same."""
    leaves = {p: (int(w), int(a)) for p, (w, a) in d["leaves"].items()}
    r = R.build_rewards(int(d["epoch"]), {p: w for p, (w, _) in leaves.items()}, {p: a for p, (_, a) in leaves.items()})
    if r is None or "0x" + r.root.hex() != d["root"]:
        raise ValueError("stored rewards do not rebuild to their root")
    return r
