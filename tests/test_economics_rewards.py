"""offchain/economics/rewards.py: work units, the availability rule with per-operator decay,
leaves, the Merkle tree and proofs, the schedule and split mirrors. Pure (no chain); the
contract-side cross-checks (leaf hash, digest, claims) are in tests/test_emissions.py."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus
from offchain.economics import rewards as E
from offchain.params import EmissionsParams

P = EmissionsParams()
A = "0x" + "11" * 20
B = "0x" + "22" * 20
C = "0x" + "33" * 20


def _machine(provider, mid, attested=True, uptime=10_000, weight=100, stake=100 * ONE_TOKEN):
    return E.MachineRecord(provider, mid, attested, uptime, weight, stake)


def test_work_units__only_finalized_jobs_of_the_epoch_count():
    jobs = [
        E.JobRecord(A, 3, JobStatus.FINALIZED, 100, 5),
        E.JobRecord(A, 3, JobStatus.FINALIZED, 100, 7),
        E.JobRecord(A, 4, JobStatus.FINALIZED, 100, 1_000),  # another epoch
        E.JobRecord(B, 3, JobStatus.FAILED, 100, 50),  # found invalid
        E.JobRecord(B, 3, JobStatus.EXPIRED, 100, 50),
        E.JobRecord(B, 3, JobStatus.SUBMITTED, 100, 50),  # not final yet
        E.JobRecord(C, 3, JobStatus.CANCELLED, 100, 50),
    ]
    assert E.work_units(jobs, 3) == {E.to_checksum_address(A): 12}


def test_decay_factor__three_free_then_halving():
    assert [E.decay_factor_bps(k, P) for k in range(7)] == [10_000, 10_000, 10_000, 5_000, 2_500, 1_250, 625]


def test_availability__rules_attestation_uptime_stake():
    machines = [
        _machine(A, 1),
        _machine(A, 2, attested=False),  # no valid attestation
        _machine(A, 3, uptime=P.min_uptime_bps - 1),  # below the uptime threshold
        _machine(B, 4, uptime=P.min_uptime_bps),  # exactly at it: counts, scaled by uptime
        _machine(C, 5),  # provider C has no stake
    ]
    w = E.availability_weights(machines, {A: 10**30, B: 100 * ONE_TOKEN}, P)
    assert w == {E.to_checksum_address(A): 100 * MAX_BPS, E.to_checksum_address(B): 100 * P.min_uptime_bps}


def test_availability__stake_covers_heaviest_machines_first():
    machines = [_machine(A, 1, weight=300, stake=300), _machine(A, 2, weight=100, stake=100)]
    assert E.availability_weights(machines, {A: 399}, P) == {E.to_checksum_address(A): 300 * MAX_BPS}
    assert E.availability_weights(machines, {A: 400}, P) == {E.to_checksum_address(A): 400 * MAX_BPS}
    # Not enough for the heavy one: the light one still counts.
    assert E.availability_weights(machines, {A: 299}, P) == {E.to_checksum_address(A): 100 * MAX_BPS}


def test_availability__farm_decays_per_operator():
    """Ten identical machines under one operator earn 3 + 0.5 + 0.25 + ... < 4 machines' worth;
    spread over ten operators (each with its own stake and attestation) they earn 10."""
    farm = [_machine(A, i) for i in range(10)]
    w = E.availability_weights(farm, {A: 10**30}, P)[E.to_checksum_address(A)]
    one = 100 * MAX_BPS
    assert w == sum(one * E.decay_factor_bps(k, P) // MAX_BPS for k in range(10))
    assert 3 * one < w < 4 * one
    no_decay = replace(P, free_machines=100)
    assert E.availability_weights(farm, {A: 10**30}, no_decay)[E.to_checksum_address(A)] == 10 * one


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 60), free=st.integers(0, 10), decay=st.integers(0, 10_000))
def test_availability__property__marginal_machine_never_earns_more(n, free, decay):
    params = replace(P, free_machines=free, extra_machine_decay_bps=decay)
    ws = [E.availability_weights([_machine(A, i) for i in range(k)], {A: 10**30}, params) for k in range(1, n + 1)]
    totals = [w.get(E.to_checksum_address(A), 0) for w in ws]
    marginals = [totals[0]] + [b - a for a, b in zip(totals, totals[1:], strict=False)]
    assert all(m >= 0 for m in marginals)
    assert all(b <= a for a, b in zip(marginals, marginals[1:], strict=False))
    if decay < MAX_BPS:
        # A geometric tail: the farm is bounded by free + 1 / (1 - d) machines, however large.
        bound = (free + MAX_BPS / (MAX_BPS - decay)) * 100 * MAX_BPS
        assert totals[-1] <= bound


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 13])
def test_tree__every_proof_verifies_and_tampering_fails(n):
    work = {"0x" + f"{i + 1:040x}": (i + 1) * 10 for i in range(n)}
    r = E.build_rewards(9, work, {"0x" + f"{i + 1:040x}": i for i in range(n)})
    assert len(r.leaves) == n
    assert r.total_work == sum(work.values())
    for p, (w, a) in r.leaves.items():
        leaf = E.leaf_hash(9, p, w, a)
        assert E.verify_proof(r.proofs[p], r.root, leaf)
        assert not E.verify_proof(r.proofs[p], r.root, E.leaf_hash(9, p, w + 1, a))
        assert not E.verify_proof(r.proofs[p], r.root, E.leaf_hash(8, p, w, a))
        assert len(r.proofs[p]) <= max(1, (n - 1).bit_length())
    if n == 1:
        ((p, (w, a)),) = r.leaves.items()
        assert r.root == E.leaf_hash(9, p, w, a)
        assert r.proofs[p] == []


def test_build_rewards__nothing_to_reward__none():
    assert E.build_rewards(0, {}, {}) is None
    assert E.build_rewards(0, {A: 0}, {B: 0}) is None


def test_build_rewards__zero_weight_providers_left_out():
    r = E.build_rewards(0, {A: 5, B: 0}, {C: 3})
    assert set(r.leaves) == {E.to_checksum_address(A), E.to_checksum_address(C)}
    assert (r.total_work, r.total_availability) == (5, 3)


def test_split__wash_guard_and_missing_availability():
    budget = 1_000 * ONE_TOKEN
    # Plenty of fees: the work share binds.
    assert E.split(budget, 10**30, 1, P) == (700 * ONE_TOKEN, 300 * ONE_TOKEN)
    # 100 tokens of fees: the work pool is 50 tokens (wash guard 50%).
    assert E.split(budget, 100 * ONE_TOKEN, 1, P) == (50 * ONE_TOKEN, 300 * ONE_TOKEN)
    assert E.split(budget, 0, 0, P) == (0, 0)


@settings(max_examples=300, deadline=None)
@given(
    budget=st.integers(0, 10**30),
    fees=st.lists(st.integers(1, 10**24), min_size=1, max_size=20),
    avail=st.lists(st.integers(0, 10**12), min_size=1, max_size=20),
)
def test_wash__property__work_emission_below_fee_paid(budget, fees, avail):
    """Whatever the budget and the other providers, a provider's work emission is at most
    wash_guard_bps of the fees it paid: paying itself a fee f earns back < f."""
    total_work, total_avail = sum(fees), sum(avail)
    work_pool, avail_pool = E.split(budget, total_work, total_avail, P)
    paid = 0
    for f in fees:
        got = E.claim_amount(work_pool, 0, total_work, total_avail, f, 0)
        assert got * MAX_BPS <= f * P.wash_guard_bps
        paid += E.claim_amount(work_pool, avail_pool, total_work, total_avail, f, 0)
    assert paid <= work_pool + avail_pool <= budget


def test_epoch_rewards__from_records():
    # B's job was cancelled by its user (not B's doing): no work, availability kept.
    jobs = [E.JobRecord(A, 0, JobStatus.FINALIZED, 10, 40), E.JobRecord(B, 0, JobStatus.CANCELLED, 10, 40)]
    machines = [_machine(B, 1), _machine(C, 2, attested=False)]
    r = E.epoch_rewards(0, jobs, machines, {B: 10**30, C: 10**30}, P)
    assert r.leaves == {E.to_checksum_address(A): (40, 0), E.to_checksum_address(B): (0, 100 * MAX_BPS)}


def test_rewards_typed_data__hash_matches_typehash():
    typed = E.rewards_typed_data(
        A, 1, {"epoch": 1, "root": "0x" + "ab" * 32, "total_work": 2, "total_availability": 3, "nonce": 0}
    )
    assert typed["message"]["root"] == bytes.fromhex("ab" * 32)
    with pytest.raises(ValueError):
        E.rewards_typed_data(A, 1, {"epoch": 1, "root": b"\x01", "total_work": 2, "total_availability": 3, "nonce": 0})
    assert E.REWARDS_TYPEHASH == E.keccak(
        text="EpochRewards(uint256 epoch,bytes32 root,uint256 total_work,uint256 total_availability,uint256 nonce)"
    )


def test_epoch_of__matches_contract_rule():
    assert E.epoch_of(1_000, 1_000, 86_400) == 0
    assert E.epoch_of(1_000 + 86_399, 1_000, 86_400) == 0
    assert E.epoch_of(1_000 + 86_400, 1_000, 86_400) == 1
    with pytest.raises(ValueError):
        E.epoch_of(999, 1_000, 86_400)


def test_epoch_rewards__invalid_job_in_epoch__no_availability_share():
    """A provider with a job found invalid in the epoch keeps no availability share (its real,
    attested hardware earns nothing that epoch); its finalized work still counts."""
    machines = [_machine(A, 1, uptime=MAX_BPS, stake=0), _machine(B, 2, uptime=MAX_BPS, stake=0)]
    jobs = [
        E.JobRecord(provider=A, epoch=3, status=int(JobStatus.FAILED), compute_units=1, fee=0),
        E.JobRecord(provider=A, epoch=3, status=int(JobStatus.FINALIZED), compute_units=1, fee=7),
        E.JobRecord(provider=B, epoch=2, status=int(JobStatus.FAILED), compute_units=1, fee=0),  # other epoch
    ]
    r = E.epoch_rewards(3, jobs, machines, {A: 10**30, B: 10**30}, P)
    assert r.leaves[E.to_checksum_address(A)] == (7, 0)
    assert r.leaves[E.to_checksum_address(B)][1] > 0


def test_epoch_rewards__expired_job_in_epoch__no_availability_share():
    """A no-show (a job accepted and never delivered, Expired in the epoch) loses the epoch's
    availability share like a caught cheater; an expiry in another epoch does not count."""
    machines = [_machine(A, 1, uptime=MAX_BPS, stake=0), _machine(B, 2, uptime=MAX_BPS, stake=0)]
    jobs = [
        E.JobRecord(provider=A, epoch=3, status=int(JobStatus.EXPIRED), compute_units=1, fee=0),
        E.JobRecord(provider=B, epoch=4, status=int(JobStatus.EXPIRED), compute_units=1, fee=0),  # other epoch
    ]
    r = E.epoch_rewards(3, jobs, machines, {A: 10**30, B: 10**30}, P)
    assert E.to_checksum_address(A) not in r.leaves
    assert r.leaves[E.to_checksum_address(B)][1] > 0
