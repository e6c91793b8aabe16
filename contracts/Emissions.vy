# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Epoch emissions: a declining, capped, tapering schedule split by verified work and availability
@custom:contract-name Emissions
@license AGPL-3.0-only
@notice Time is cut into epochs of EPOCH_SECONDS from GENESIS. Once an epoch is over, anyone
        finalizes it (epochs in order) and its budget is fixed:
            scheduled(e) = scheduled(e-1) * (MAX_BPS - DECAY_BPS) // MAX_BPS,  scheduled(0) = INITIAL
            budget(e)    = min(scheduled(e) * TAPER_REF // (TAPER_REF + burned(e)), CAP - allocated)
        where burned(e) is what JobMarket.total_burned (the escrow of every finalized job, which
        its provider's claim burns; customer revenue, not slashing; counted at finalization so
        that it does not depend on when providers claim) grew by since the previous finalization
        (spread evenly over the epochs being caught up when finalization is late) and
        `allocated` is every budget so far less what no one could ever claim. The oracle quorum
        (OracleHub's operators, M-of-N EIP-712) then posts the epoch's rewards: a Merkle root over
        leaves (epoch, provider, work_units, availability_weight) and the two totals. The budget
        splits into a work pool and an availability pool:
            work_pool  = min(budget * WORK_SHARE_BPS // MAX_BPS, total_work * WASH_GUARD_BPS // MAX_BPS)
            avail_pool = budget - budget * WORK_SHARE_BPS // MAX_BPS         (0 if total_availability == 0)
        Work units are the network fees (token wei) of the provider's finalized jobs in the epoch,
        so the wash guard caps emission per unit of fee below the fee itself: a provider paying
        itself never earns back the fee it paid. A provider (or anyone for it) claims once per
        epoch, O(1):
            amount = work_pool * work_units // total_work + avail_pool * availability_weight // total_availability
        and the amount is minted to the provider. Unclaimed emissions are never minted.
@custom:security Parameters are immutable: no role can raise the schedule; a new schedule is a
        new contract that governance (the token owner) makes a minter. Every formula in checked
        math. Whatever root the quorum posts, an epoch never mints more than its two pools
        (`claimed <= work_pool + avail_pool <= budget <= scheduled`) and the sum of all budgets
        never exceeds EMISSION_CAP. Leaves are double-hashed (keccak256(keccak256(abi_encode(..))),
        OpenZeppelin's StandardMerkleTree form) so an inner node cannot pass as a leaf, and carry
        the epoch. Reports: domain "gpunet Emissions", version "1", chain id and this contract;
        signers strictly increasing, each an OracleHub operator with at least the hub's
        `min_operator_stake`, at least the hub's `threshold` of them, with 2 * threshold >
        operator count. One report per epoch, nonce 0 (`rewards_nonce` is 1 once posted); an
        operator signing two differing reports for one epoch is slashed through OracleHub
        (`prove_rewards_equivocation`, which asks `rewards_digest`). Needs the minter role on
        ComputeToken.
"""

from interfaces import IOracleOperators

from snekmate.utils import eip712_domain_separator
# EIP-712 domain bound to chain id and this contract.
initializes: eip712_domain_separator

from snekmate.utils import ecdsa
# Signature recovery with the low-s malleability check; stateless.

from snekmate.utils import merkle_proof_verification
# Sorted-pair Merkle proofs (OpenZeppelin-compatible); stateless.

exports: eip712_domain_separator.eip712Domain


interface IMintableToken:
    def mint(owner: address, amount: uint256): nonpayable

interface IBurnCounter:
    def total_burned() -> uint256: view


################################################################
#                          CONSTANTS                           #
################################################################

MAX_BPS: public(constant(uint256)) = 10_000

# Upper bound on signatures per report (OracleHub.MAX_OPERATORS).
MAX_SIGNATURES: public(constant(uint256)) = 32

# Upper bound on a proof: 2**32 leaves.
MAX_PROOF_DEPTH: public(constant(uint256)) = 32

REWARDS_TYPEHASH: public(constant(bytes32)) = keccak256(
    "EpochRewards(uint256 epoch,bytes32 root,uint256 total_work,uint256 total_availability,uint256 nonce)"
)

################################################################
#                           STRUCTS                            #
################################################################

struct EpochRewards:
    epoch: uint256
    # Merkle root over keccak256(keccak256(abi_encode(epoch, provider, work_units, availability_weight))).
    root: bytes32
    # Sums of the leaves' work_units and availability_weight.
    total_work: uint256
    total_availability: uint256
    nonce: uint256

struct Epoch:
    # Fixed at finalization.
    budget: uint256
    burned: uint256
    # Set by the quorum's report.
    root: bytes32
    total_work: uint256
    total_availability: uint256
    work_pool: uint256
    availability_pool: uint256
    # Minted so far by claims.
    claimed: uint256

################################################################
#                            STATE                             #
################################################################

TOKEN: public(immutable(address))
HUB: public(immutable(address))
# Counts customer burns (JobMarket.total_burned in deployments): the taper's input.
BURNS: public(immutable(address))
GENESIS: public(immutable(uint256))
EPOCH_SECONDS: public(immutable(uint256))
INITIAL_EPOCH_EMISSION: public(immutable(uint256))
DECAY_BPS: public(immutable(uint256))
EMISSION_CAP: public(immutable(uint256))
# Burned tokens in an epoch at which its emission halves.
TAPER_REFERENCE: public(immutable(uint256))
WORK_SHARE_BPS: public(immutable(uint256))
WASH_GUARD_BPS: public(immutable(uint256))

# The next epoch to finalize (every epoch below it is finalized).
next_epoch: public(uint256)

# Untapered schedule of `next_epoch`.
scheduled_emission: public(uint256)

# BURNS.total_burned already attributed to finalized epochs.
burn_checkpoint: public(uint256)

# Sum of the budgets of finalized epochs, less the pools no leaf can claim. <= EMISSION_CAP.
allocated: public(uint256)

# Minted by claims, all epochs. <= allocated.
total_emitted: public(uint256)

epochs: public(HashMap[uint256, Epoch])

# Report nonce per epoch (0 until its rewards are posted, then 1).
rewards_nonce: public(HashMap[uint256, uint256])

claimed: public(HashMap[uint256, HashMap[address, bool]])

################################################################
#                            EVENTS                            #
################################################################

event EpochFinalized:
    epoch: indexed(uint256)
    scheduled: uint256
    burned: uint256
    budget: uint256
    finalizer: address

event RewardsPosted:
    epoch: indexed(uint256)
    root: bytes32
    total_work: uint256
    total_availability: uint256
    work_pool: uint256
    availability_pool: uint256
    # Budget returned under the cap (no leaf can claim it).
    released: uint256
    signers: uint256

event Claimed:
    epoch: indexed(uint256)
    provider: indexed(address)
    work_units: uint256
    availability_weight: uint256
    amount: uint256


@deploy
def __init__(
    token: address,
    hub: address,
    burns: address,
    genesis: uint256,
    epoch_seconds: uint256,
    initial_epoch_emission: uint256,
    decay_bps: uint256,
    emission_cap: uint256,
    taper_reference: uint256,
    work_share_bps: uint256,
    wash_guard_bps: uint256,
):
    """
    @param genesis Start of epoch 0 (0: the deployment block's time).
    """
    assert token != empty(address), "emissions: token is the zero address"
    assert hub != empty(address), "emissions: hub is the zero address"
    assert burns != empty(address), "emissions: burn counter is the zero address"
    assert epoch_seconds > 0, "emissions: epoch length is zero"
    assert decay_bps < MAX_BPS, "emissions: decay too high"
    assert initial_epoch_emission <= emission_cap, "emissions: initial emission above the cap"
    assert taper_reference > 0, "emissions: taper reference is zero"
    assert work_share_bps <= MAX_BPS, "emissions: work share too high"
    # Emission per unit of fee must stay below the fee: wash trading never pays.
    assert wash_guard_bps < MAX_BPS, "emissions: wash guard too high"
    eip712_domain_separator.__init__("gpunet Emissions", "1")
    TOKEN = token
    HUB = hub
    BURNS = burns
    GENESIS = genesis if genesis != 0 else block.timestamp
    EPOCH_SECONDS = epoch_seconds
    INITIAL_EPOCH_EMISSION = initial_epoch_emission
    DECAY_BPS = decay_bps
    EMISSION_CAP = emission_cap
    TAPER_REFERENCE = taper_reference
    WORK_SHARE_BPS = work_share_bps
    WASH_GUARD_BPS = wash_guard_bps
    self.scheduled_emission = initial_epoch_emission
    self.burn_checkpoint = staticcall IBurnCounter(burns).total_burned()


################################################################
#                        PERMISSIONLESS                        #
################################################################

@external
def finalize_epoch(epoch: uint256) -> uint256:
    """
    @notice Fixes the budget of `epoch` (the next unfinalized one) once it is over.
    @return The epoch's budget.
    """
    nxt: uint256 = self.next_epoch
    assert epoch >= nxt, "emissions: epoch already finalized"
    assert epoch == nxt, "emissions: finalize epochs in order"
    now_epoch: uint256 = self._current_epoch()
    assert now_epoch > epoch, "emissions: epoch not over"

    # Burns since the last finalization, spread evenly over the epochs that are over and not
    # yet finalized (a late catch-up cannot pile every burn onto one epoch).
    burned_now: uint256 = staticcall IBurnCounter(BURNS).total_burned()
    burned: uint256 = (burned_now - self.burn_checkpoint) // (now_epoch - epoch)
    self.burn_checkpoint += burned

    scheduled: uint256 = self.scheduled_emission
    budget: uint256 = self._tapered(scheduled, burned)
    remaining: uint256 = EMISSION_CAP - self.allocated
    budget = min(budget, remaining)
    self.allocated += budget
    self.epochs[epoch].budget = budget
    self.epochs[epoch].burned = burned
    self.scheduled_emission = scheduled * (MAX_BPS - DECAY_BPS) // MAX_BPS
    self.next_epoch = nxt + 1
    log EpochFinalized(epoch=epoch, scheduled=scheduled, burned=burned, budget=budget, finalizer=msg.sender)
    return budget


@external
def submit_rewards(report: EpochRewards, signatures: DynArray[Bytes[65], MAX_SIGNATURES]):
    """
    @notice Posts a finalized epoch's rewards root signed by a quorum of OracleHub operators:
            one report per epoch, ever, with nonce 0 (two differing reports an operator signed
            for one epoch are equivocation: OracleHub.prove_rewards_equivocation).
    """
    assert report.epoch < self.next_epoch, "emissions: epoch not finalized"
    # One root per epoch: claims may start as soon as it is posted, so it can never change.
    assert self.epochs[report.epoch].root == empty(bytes32), "emissions: rewards already posted"
    assert report.nonce == 0, "emissions: wrong nonce"
    assert report.root != empty(bytes32), "emissions: empty root"
    signers: uint256 = self._check_quorum(
        eip712_domain_separator._hash_typed_data_v4(self._rewards_struct_hash(report)), signatures
    )
    self.rewards_nonce[report.epoch] = 1

    budget: uint256 = self.epochs[report.epoch].budget
    work_share: uint256 = budget * WORK_SHARE_BPS // MAX_BPS
    work_pool: uint256 = min(work_share, report.total_work * WASH_GUARD_BPS // MAX_BPS)
    availability_pool: uint256 = 0
    if report.total_availability > 0:
        availability_pool = budget - work_share
    released: uint256 = budget - work_pool - availability_pool
    # What no leaf can claim goes back under the cap (never above any epoch's schedule).
    self.allocated -= released

    self.epochs[report.epoch].root = report.root
    self.epochs[report.epoch].total_work = report.total_work
    self.epochs[report.epoch].total_availability = report.total_availability
    self.epochs[report.epoch].work_pool = work_pool
    self.epochs[report.epoch].availability_pool = availability_pool
    log RewardsPosted(
        epoch=report.epoch,
        root=report.root,
        total_work=report.total_work,
        total_availability=report.total_availability,
        work_pool=work_pool,
        availability_pool=availability_pool,
        released=released,
        signers=signers,
    )


@external
def claim(
    epoch: uint256,
    provider: address,
    work_units: uint256,
    availability_weight: uint256,
    proof: DynArray[bytes32, MAX_PROOF_DEPTH],
) -> uint256:
    """
    @notice Mints `provider`'s share of `epoch` (anyone may call; the tokens go to `provider`).
    @return The amount minted.
    """
    root: bytes32 = self.epochs[epoch].root
    assert root != empty(bytes32), "emissions: no rewards for epoch"
    assert not self.claimed[epoch][provider], "emissions: already claimed"
    leaf: bytes32 = self._leaf(epoch, provider, work_units, availability_weight)
    assert merkle_proof_verification._verify(proof, root, leaf), "emissions: invalid proof"
    self.claimed[epoch][provider] = True

    # A pool is positive only with a positive total (work_pool <= total_work * WASH_GUARD_BPS).
    work_pool: uint256 = self.epochs[epoch].work_pool
    availability_pool: uint256 = self.epochs[epoch].availability_pool
    amount: uint256 = 0
    if work_pool > 0:
        amount = work_pool * work_units // self.epochs[epoch].total_work
    if availability_pool > 0:
        amount += availability_pool * availability_weight // self.epochs[epoch].total_availability
    # Holds for any root: leaves whose weights sum above the totals cannot mint more.
    epoch_claimed: uint256 = self.epochs[epoch].claimed + amount
    assert epoch_claimed <= work_pool + availability_pool, "emissions: epoch budget exhausted"
    self.epochs[epoch].claimed = epoch_claimed
    self.total_emitted += amount
    if amount > 0:
        extcall IMintableToken(TOKEN).mint(provider, amount)
    log Claimed(
        epoch=epoch,
        provider=provider,
        work_units=work_units,
        availability_weight=availability_weight,
        amount=amount,
    )
    return amount


################################################################
#                            VIEWS                             #
################################################################

@external
@view
def current_epoch() -> uint256:
    return self._current_epoch()


@external
@view
def epoch_start(epoch: uint256) -> uint256:
    return GENESIS + epoch * EPOCH_SECONDS


@external
@view
def rewards_digest(report: EpochRewards) -> bytes32:
    """
    @notice The EIP-712 digest operators sign for `report`.
    """
    return eip712_domain_separator._hash_typed_data_v4(self._rewards_struct_hash(report))


@external
@pure
def leaf(epoch: uint256, provider: address, work_units: uint256, availability_weight: uint256) -> bytes32:
    return self._leaf(epoch, provider, work_units, availability_weight)


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    return eip712_domain_separator._domain_separator_v4()


################################################################
#                          INTERNAL                            #
################################################################

@internal
@view
def _current_epoch() -> uint256:
    assert block.timestamp >= GENESIS, "emissions: before genesis"
    return (block.timestamp - GENESIS) // EPOCH_SECONDS


@internal
@view
def _tapered(scheduled: uint256, burned: uint256) -> uint256:
    # In (0, scheduled] for scheduled > 0; halves at burned == TAPER_REFERENCE.
    return scheduled * TAPER_REFERENCE // (TAPER_REFERENCE + burned)


@internal
@pure
def _leaf(epoch: uint256, provider: address, work_units: uint256, availability_weight: uint256) -> bytes32:
    return keccak256(keccak256(abi_encode(epoch, provider, work_units, availability_weight)))


@internal
@pure
def _rewards_struct_hash(r: EpochRewards) -> bytes32:
    return keccak256(abi_encode(REWARDS_TYPEHASH, r.epoch, r.root, r.total_work, r.total_availability, r.nonce))


@internal
@view
def _check_quorum(digest: bytes32, signatures: DynArray[Bytes[65], MAX_SIGNATURES]) -> uint256:
    m: uint256 = staticcall IOracleOperators(HUB).threshold()
    n: uint256 = staticcall IOracleOperators(HUB).operator_count()
    assert m * 2 > n, "emissions: quorum misconfigured"
    assert len(signatures) >= m, "emissions: not enough signatures"
    min_stake: uint256 = staticcall IOracleOperators(HUB).min_operator_stake()
    last: uint160 = 0
    for sig: Bytes[65] in signatures:
        # Only the 65-byte form: EIP-2098 compact signatures would give a second encoding.
        assert len(sig) == 65, "emissions: signature must be 65 bytes"
        signer: address = ecdsa._recover_sig(digest, sig)
        assert convert(signer, uint160) > last, "emissions: signers not strictly increasing"
        assert staticcall IOracleOperators(HUB).is_operator(signer), "emissions: signer is not an operator"
        assert staticcall IOracleOperators(HUB).operator_stake(signer) >= min_stake, "emissions: signer stake too low"
        last = convert(signer, uint160)
    return len(signatures)
