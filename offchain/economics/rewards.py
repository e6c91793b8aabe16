"""Epoch rewards for contracts/Emissions.vy: schedule, split, leaves, Merkle proofs, typed data.

Pure Python (no chain): the oracle service builds an epoch's rewards from plain records of the
jobs finalized and the machines observed in the epoch, the quorum signs the `EpochRewards`
report, anyone submits it, and each provider claims with its leaf and proof:

    rewards = epoch_rewards(epoch, jobs, machines, stakes, EmissionsParams())
    typed = rewards_typed_data(emissions.address, chain_id, rewards.report())
    sigs = sort_signatures([(op.address, sign_report(op.key, typed)) for op in quorum])
    emissions.submit_rewards(report_tuple(REWARDS_FIELDS, rewards.report()), sigs, sender=...)
    emissions.claim(*rewards.claim_args(provider), sender=anyone)

Work units are the network fees (token wei) of a provider's finalized jobs in the epoch: the
contract caps emission per unit of work below the fee itself (wash guard), so weighting by fee
(not by raw compute units, whose price a wash trader chooses) keeps self-dealing unprofitable.
Availability weight per machine is its hardware weight (the stake its class requires, which the
class table sets in proportion to capacity) times its uptime, if it holds a valid attestation,
reached `min_uptime_bps` and is covered by its provider's stake; per provider, the first
`free_machines` machines count fully and each further one `extra_machine_decay_bps` of the
previous (Render RNP-015-style), so a farm earns no more than the hardware it really runs.
A provider with a job found invalid in the epoch (a Failed job record) or a job it accepted and
never delivered (an Expired one) gets no availability share for that epoch: standing by is
rewarded only for providers whose work holds up, so a caught cheater or a no-show with real,
attested hardware does not live off the availability pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from offchain.chain import reports as R
from offchain.chain.reports import type_string
from offchain.constants import MAX_BPS, JobStatus
from offchain.params import EmissionsParams

DOMAIN_NAME = "gpunet Emissions"

# Field order and types: must match `struct EpochRewards` and REWARDS_TYPEHASH in contracts/Emissions.vy.
REWARDS_FIELDS: tuple[tuple[str, str], ...] = (
    ("epoch", "uint256"),
    ("root", "bytes32"),
    ("total_work", "uint256"),
    ("total_availability", "uint256"),
    ("nonce", "uint256"),
)
REWARDS_TYPEHASH = keccak(text=type_string("EpochRewards", REWARDS_FIELDS))


################################################################
#                  schedule and split (mirrors)                #
################################################################


def tapered(scheduled: int, burned: int, taper_reference: int) -> int:
    """scheduled * R // (R + burned): the whole schedule with no burns, half at burned == R."""
    return scheduled * taper_reference // (taper_reference + burned)


def epoch_budgets(params: EmissionsParams, burned: Iterable[int]) -> list[int]:
    """Budgets of epochs 0, 1, ... finalized in time, given each epoch's burns (Emissions.finalize_epoch).

    Assumes no pool is released back under the cap (every epoch has work and availability)."""
    out: list[int] = []
    scheduled = params.initial_epoch_emission
    allocated = 0
    for b in burned:
        budget = min(tapered(scheduled, b, params.taper_reference), params.emission_cap - allocated)
        allocated += budget
        out.append(budget)
        scheduled = scheduled * (MAX_BPS - params.decay_bps) // MAX_BPS
    return out


def split(budget: int, total_work: int, total_availability: int, params: EmissionsParams) -> tuple[int, int]:
    """(work_pool, availability_pool) of an epoch (Emissions.submit_rewards)."""
    work_share = budget * params.work_share_bps // MAX_BPS
    work_pool = min(work_share, total_work * params.wash_guard_bps // MAX_BPS)
    availability_pool = budget - work_share if total_availability > 0 else 0
    return work_pool, availability_pool


def claim_amount(
    work_pool: int, availability_pool: int, total_work: int, total_availability: int, work: int, availability: int
) -> int:
    """What Emissions.claim mints for one leaf."""
    amount = work_pool * work // total_work if work_pool > 0 else 0
    if availability_pool > 0:
        amount += availability_pool * availability // total_availability
    return amount


################################################################
#                           records                            #
################################################################


def epoch_of(timestamp: int, genesis: int, epoch_seconds: int) -> int:
    """The Emissions epoch containing `timestamp` (a job counts in the epoch of its finalization
    block; a machine's uptime in the epoch its probes ran). Raises before genesis."""
    if timestamp < genesis:
        raise ValueError("before genesis")
    return (timestamp - genesis) // epoch_seconds


@dataclass(frozen=True)
class JobRecord:
    """A job as the rewards need it. `fee`: the network fee its settlement took, token wei."""

    provider: str
    epoch: int
    status: int
    compute_units: int
    fee: int


@dataclass(frozen=True)
class MachineRecord:
    """A machine over one epoch. `hardware_weight`: its class's stake per GPU x GPUs (token
    units; the class table prices stake in proportion to capacity); `required_stake`: the stake
    the registry requires for it (wei)."""

    provider: str
    machine_id: int
    attested: bool
    uptime_bps: int
    hardware_weight: int
    required_stake: int


def work_units(jobs: Iterable[JobRecord], epoch: int) -> dict[str, int]:
    """{provider: fees of its jobs finalized in `epoch`}. Failed, expired, cancelled and
    still-open jobs count nothing: nothing is minted for work not finalized or found invalid."""
    out: dict[str, int] = {}
    for j in jobs:
        if j.epoch != epoch or int(j.status) != int(JobStatus.FINALIZED) or j.fee <= 0:
            continue
        p = to_checksum_address(j.provider)
        out[p] = out.get(p, 0) + int(j.fee)
    return out


def decay_factor_bps(index: int, params: EmissionsParams) -> int:
    """Share (bps) of a provider's `index`-th machine (0-based, heaviest first): MAX_BPS for the
    first `free_machines`, then multiplied by `extra_machine_decay_bps` per further machine."""
    if index < params.free_machines:
        return MAX_BPS
    f = MAX_BPS
    for _ in range(index - params.free_machines + 1):
        f = f * params.extra_machine_decay_bps // MAX_BPS
    return f


def machine_weight(m: MachineRecord, params: EmissionsParams) -> int:
    """A machine's availability weight before the per-operator decay (0 if not eligible)."""
    if not m.attested or m.uptime_bps < params.min_uptime_bps or m.uptime_bps > MAX_BPS:
        return 0
    return m.hardware_weight * m.uptime_bps


def availability_weights(
    machines: Iterable[MachineRecord],
    stakes: Mapping[str, int],
    params: EmissionsParams,
    excluded: Iterable[str] = (),
) -> dict[str, int]:
    """{provider: availability weight}. Per provider, eligible machines heaviest first (ties by
    id); a machine counts only while the provider's stake covers the required stake of the
    machines counted so far; the k-th counted machine is scaled by `decay_factor_bps(k)`.
    Providers in `excluded` (a job found invalid in the epoch) get nothing."""
    skip = {to_checksum_address(p) for p in excluded}
    by_provider: dict[str, list[MachineRecord]] = {}
    for m in machines:
        if machine_weight(m, params) > 0 and to_checksum_address(m.provider) not in skip:
            by_provider.setdefault(to_checksum_address(m.provider), []).append(m)
    stakes_cs = {to_checksum_address(p): int(s) for p, s in stakes.items()}
    out: dict[str, int] = {}
    for provider, ms in by_provider.items():
        ms.sort(key=lambda m: (-machine_weight(m, params), m.machine_id))
        stake_left = stakes_cs.get(provider, 0)
        total = 0
        k = 0
        for m in ms:
            if m.required_stake > stake_left:
                continue
            stake_left -= m.required_stake
            total += machine_weight(m, params) * decay_factor_bps(k, params) // MAX_BPS
            k += 1
        if total > 0:
            out[provider] = total
    return out


################################################################
#                       leaves and the tree                    #
################################################################


def leaf_hash(epoch: int, provider: str, work: int, availability: int) -> bytes:
    """keccak256(keccak256(abi_encode(epoch, provider, work_units, availability_weight))) (Emissions._leaf)."""
    inner = keccak(
        encode(["uint256", "address", "uint256", "uint256"], [epoch, to_checksum_address(provider), work, availability])
    )
    return keccak(inner)


def _hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def merkle_layers(leaves: list[bytes]) -> list[list[bytes]]:
    """Layers from the sorted leaves to the root; pairs hash sorted (snekmate/OpenZeppelin
    `_hash_pair`), an odd last node moves up unchanged."""
    if not leaves:
        raise ValueError("no leaves")
    layers = [sorted(leaves)]
    while len(layers[-1]) > 1:
        cur = layers[-1]
        nxt = [_hash_pair(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
        if len(cur) % 2:
            nxt.append(cur[-1])
        layers.append(nxt)
    return layers


def merkle_proof(layers: list[list[bytes]], leaf: bytes) -> list[bytes]:
    idx = layers[0].index(leaf)
    proof: list[bytes] = []
    for layer in layers[:-1]:
        sibling = idx ^ 1
        if sibling < len(layer):
            proof.append(layer[sibling])
        idx //= 2
    return proof


def verify_proof(proof: Iterable[bytes], root: bytes, leaf: bytes) -> bool:
    h = leaf
    for p in proof:
        h = _hash_pair(h, p)
    return h == root


@dataclass
class EpochRewards:
    epoch: int
    # {provider (checksummed): (work_units, availability_weight)}
    leaves: dict[str, tuple[int, int]]
    root: bytes = b""
    total_work: int = 0
    total_availability: int = 0
    proofs: dict[str, list[bytes]] = field(default_factory=dict)

    def report(self, nonce: int = 0) -> dict[str, Any]:
        """The EpochRewards report (Emissions.submit_rewards) as a dict."""
        return {
            "epoch": self.epoch,
            "root": self.root,
            "total_work": self.total_work,
            "total_availability": self.total_availability,
            "nonce": nonce,
        }

    def claim_args(self, provider: str) -> tuple:
        """Arguments of Emissions.claim for `provider`."""
        p = to_checksum_address(provider)
        work, availability = self.leaves[p]
        return (self.epoch, p, work, availability, self.proofs[p])


def build_rewards(epoch: int, work: Mapping[str, int], availability: Mapping[str, int]) -> EpochRewards | None:
    """The tree over every provider with work or availability (None when there is none)."""
    work_cs: dict[str, int] = {}
    avail_cs: dict[str, int] = {}
    for src, dst in ((work, work_cs), (availability, avail_cs)):
        for p, v in src.items():
            key = to_checksum_address(p)
            dst[key] = dst.get(key, 0) + int(v)
    providers = sorted({*work_cs, *avail_cs}, key=lambda a: int(a, 16))
    leaves = {}
    for p in providers:
        w, a = work_cs.get(p, 0), avail_cs.get(p, 0)
        if w > 0 or a > 0:
            leaves[p] = (w, a)
    if not leaves:
        return None
    hashes = {p: leaf_hash(epoch, p, w, a) for p, (w, a) in leaves.items()}
    layers = merkle_layers(list(hashes.values()))
    return EpochRewards(
        epoch=epoch,
        leaves=leaves,
        root=layers[-1][0],
        total_work=sum(w for w, _ in leaves.values()),
        total_availability=sum(a for _, a in leaves.values()),
        proofs={p: merkle_proof(layers, h) for p, h in hashes.items()},
    )


def epoch_rewards(
    epoch: int,
    jobs: Iterable[JobRecord],
    machines: Iterable[MachineRecord],
    stakes: Mapping[str, int],
    params: EmissionsParams,
) -> EpochRewards | None:
    jobs = list(jobs)
    work = work_units(jobs, epoch)
    bad = (int(JobStatus.FAILED), int(JobStatus.EXPIRED))
    invalid = {j.provider for j in jobs if j.epoch == epoch and int(j.status) in bad}
    availability = availability_weights(machines, stakes, params, excluded=invalid)
    return build_rewards(epoch, work, availability)


################################################################
#                        EIP-712 typed data                    #
################################################################


def rewards_typed_data(emissions_address: str, chain_id: int, report: Mapping[str, Any]) -> dict[str, Any]:
    """EIP-712 typed data (eth_account `full_message` form) of an EpochRewards report, under
    Emissions' domain; sign with offchain.chain.reports.sign_report."""
    return R.typed_data("EpochRewards", REWARDS_FIELDS, emissions_address, chain_id, report, DOMAIN_NAME)


def report_tuple(report: Mapping[str, Any]) -> tuple:
    """The report as Emissions' struct argument."""
    return R.report_tuple(REWARDS_FIELDS, report)
