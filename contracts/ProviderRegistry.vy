# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Provider staking, machine registry and offers
@custom:contract-name ProviderRegistry
@license AGPL-3.0-only
@notice Providers stake ComputeToken, register machines (GPU class, count,
        VRAM, endpoint) and post offers (token price per compute unit per
        class). The job market locks per-job collateral out of free stake;
        slashers take stake away for proven misbehaviour.

        Stake lifecycle: `stake` -> staked; `request_unstake` moves free
        stake (staked - locked) into a single unbonding entry per provider
        that stays slashable for `unbonding_period` seconds; `withdraw`
        pays it out afterwards. A second request adds to the entry and
        restarts the clock.

        Machine lifecycle: Pending (registered) -> Active / Jailed (set by
        the attester role, the oracle quorum) -> Exited (by its provider,
        final). Only Active machines can take jobs.
@custom:security Roles (snekmate access_control, admin = governance
        timelock outside local networks):
        - DEFAULT_ADMIN_ROLE: GPU class table, unbonding period, role grants.
        - ATTESTER_ROLE: machine status Pending/Active/Jailed.
        - The job market (`job_market`, set once, not a role): locks and
          releases per-job collateral, records job outcomes in the
          provider's reputation, slashes. Set once and never revocable, so
          governance cannot strand a job's escrow or collateral
          (docs/SECURITY.md, finding 6).
        - SLASHER_ROLE (OracleHub): slash stake, never more than the
          provider has (staked + unbonding).
        - PAUSER_ROLE (guardian): pauses machine registration only (new
          jobs are paused in JobMarket); stake, unstake, withdraw, unlock
          and slash always work, so no exit is ever blocked by a pause.
        Assumes ComputeToken moves exact amounts (no fee, no rebase).
"""

from ethereum.ercs import IERC20
from interfaces import IComputeToken
from modules import reputation as rep_layout

from snekmate.auth import access_control
# Role-based access for governance, attesters, the job market and slashers.
initializes: access_control

from snekmate.utils import pausable
# Guardian stop for new machine registrations (JobMarket pauses new jobs itself).
initializes: pausable

exports: (
    access_control.supportsInterface,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
    access_control.DEFAULT_ADMIN_ROLE,
    pausable.paused,
)

################################################################
#                          CONSTANTS                           #
################################################################

# Sets Pending/Active/Jailed on machines: held by the oracle quorum (OracleHub).
ATTESTER_ROLE: public(constant(bytes32)) = keccak256("ATTESTER_ROLE")
# Takes stake away: held by OracleHub (the job market slashes by its set-once address).
SLASHER_ROLE: public(constant(bytes32)) = keccak256("SLASHER_ROLE")
# Pauses new registrations and new jobs, nothing else.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER_ROLE")

# Machine status values (mirrored in offchain/constants.py).
STATUS_NONE: public(constant(uint8)) = 0
STATUS_PENDING: public(constant(uint8)) = 1
STATUS_ACTIVE: public(constant(uint8)) = 2
STATUS_JAILED: public(constant(uint8)) = 3
STATUS_EXITED: public(constant(uint8)) = 4

# Bit offsets of the packed machine fields.
_CLASS_SHIFT: constant(uint256) = 160
_STATUS_SHIFT: constant(uint256) = 176
_GPUS_SHIFT: constant(uint256) = 184
_VRAM_SHIFT: constant(uint256) = 200
_ATTESTED_SHIFT: constant(uint256) = 224
_MASK_24: constant(uint256) = 2**24 - 1
_MASK_32: constant(uint256) = 2**32 - 1
# `attested_until` of a machine activated by hand (set_machine_status): no expiry.
NO_EXPIRY: public(constant(uint256)) = 2**32 - 1

# Reputation counters: 40 bits each, packed in one word per provider (see `Reputation`), at
# the offsets of modules/reputation.vy; JobMarket adds `n << offset` increments.

# Every stake amount fits in 128 bits (the token's whole supply is far below 2**128 wei).
_MAX_AMOUNT: constant(uint256) = 2**128 - 1

# Largest GPU count one machine entry may claim (an 8-GPU node is typical; 64 leaves room for pods).
MAX_GPUS_PER_MACHINE: public(constant(uint16)) = 64
# Unbonding must outlast every job deadline plus challenge and audit windows; bounded so exits stay possible.
MIN_UNBONDING_SECONDS: public(constant(uint256)) = 3600
MAX_UNBONDING_SECONDS: public(constant(uint256)) = 60 * 86400

################################################################
#                           STRUCTS                            #
################################################################

struct GpuClass:
    name: String[32]
    # Stake required per GPU of this class before its machines may lock collateral.
    min_stake_per_gpu: uint256
    # Disabled classes accept no new machines or offers; existing ones keep working.
    enabled: bool

struct Stake:
    # Bonded tokens, slashable, of which `locked` back open jobs.
    staked: uint256
    # Collateral locked for accepted, unfinished jobs (always <= staked).
    locked: uint256
    # Tokens leaving the bond: still slashable until `unbonding_release`.
    unbonding: uint256
    unbonding_release: uint256

struct Machine:
    provider: address
    class_id: uint16
    gpu_count: uint16
    vram_mb: uint32
    status: uint8
    endpoint: String[256]
    # Last second at which the machine's attestation lets it take jobs (0 if none).
    attested_until: uint256

struct Reputation:
    # Jobs finalized (paid) whose USD value reached the market's `min_reputation_usd`.
    completed: uint256
    # Jobs found invalid by an audit or dispute.
    failed: uint256
    # Jobs accepted and never delivered.
    expired: uint256
    # Audits and disputes that found the result valid.
    audits_passed: uint256
    # Users' disputes against the provider that it won / lost.
    disputes_won: uint256
    disputes_lost: uint256

################################################################
#                            STATE                             #
################################################################

# The staking token (ComputeToken).
TOKEN: public(immutable(address))

# GPU class table, governance-set; ids are chosen by governance (0 is reserved for "none").
# Kept field by field (Vyper copies a whole storage struct, strings included, on member
# access; job creation needs only `enabled`). `gpu_classes(id)` returns the struct.
_class_name: HashMap[uint16, String[32]]
_class_min_stake: HashMap[uint16, uint256]
_class_enabled: HashMap[uint16, bool]

# Bonded stake (high 128 bits) and locked collateral (low 128 bits) of each provider, in one
# word: accepting and settling a job then reads and writes a single slot, and the slot does not
# flip between zero and non-zero (22.1k gas) while the provider has stake. See `stakes()`.
_bond: HashMap[address, uint256]

# Tokens leaving the bond, still slashable until `unbonding_release`.
unbonding: public(HashMap[address, uint256])
unbonding_release: public(HashMap[address, uint256])

# Registered machines by id (ids start at 1), field by field for the same reason as the
# class table: accepting a job must not read the endpoint string. `machines(id)` returns the struct.
# The fixed-size fields are packed in one word (provider | class << 160 | status << 176 |
# gpus << 184 | vram (24 bits) << 200 | attested_until (32 bits) << 224) so accepting a job
# checks owner, status, class and attestation expiry with one read.
_machine_core: HashMap[uint256, uint256]
_machine_endpoint: HashMap[uint256, String[256]]

# Number of machines ever registered (= the last id).
machine_count: public(uint256)

# Sum over a provider's non-exited machines of min_stake_per_gpu * gpu_count, fixed at registration.
required_stake: public(HashMap[address, uint256])

# Each machine's share of `required_stake`, recorded at registration so that exiting removes
# exactly what registering added, whatever governance did to the class minimum in between.
machine_requirement: public(HashMap[uint256, uint256])

# Offer price: token wei per compute unit, per provider and class; 0 = no offer.
offers: public(HashMap[address, HashMap[uint16, uint256]])

# Seconds between request_unstake and withdraw.
unbonding_period: public(uint256)

# The JobMarket that locks, releases and slashes collateral (set once by governance; no role
# can take this away, so open jobs can always settle or refund).
job_market: public(address)

# Per provider: the `Reputation` counters packed 40 bits each, written by the job market with
# each job's outcome; read with `reputation()` (and `reputation_word()` by the market).
_reputation: HashMap[address, uint256]

################################################################
#                            EVENTS                            #
################################################################

event GpuClassSet:
    class_id: indexed(uint16)
    name: String[32]
    min_stake_per_gpu: uint256
    enabled: bool

event UnbondingPeriodSet:
    seconds: uint256

event MachineRegistered:
    machine_id: indexed(uint256)
    provider: indexed(address)
    class_id: uint16
    gpu_count: uint16
    vram_mb: uint32
    endpoint: String[256]

event MachineStatusChanged:
    machine_id: indexed(uint256)
    provider: indexed(address)
    old_status: uint8
    new_status: uint8

event AttestationRecorded:
    machine_id: indexed(uint256)
    status: uint8
    attested_until: uint256

event EndpointUpdated:
    machine_id: indexed(uint256)
    endpoint: String[256]

event Staked:
    provider: indexed(address)
    amount: uint256
    staked: uint256

event UnstakeRequested:
    provider: indexed(address)
    amount: uint256
    unbonding: uint256
    release_time: uint256

event Withdrawn:
    provider: indexed(address)
    amount: uint256

event OfferSet:
    provider: indexed(address)
    class_id: indexed(uint16)
    price_per_unit: uint256

event CollateralUnlocked:
    provider: indexed(address)
    amount: uint256
    locked: uint256

event JobMarketSet:
    job_market: indexed(address)

event Slashed:
    provider: indexed(address)
    amount: uint256
    reason: bytes32
    beneficiary: indexed(address)
    slasher: address


@deploy
def __init__(token: address, unbonding_period_seconds: uint256):
    """
    @param token The ComputeToken address.
    @param unbonding_period_seconds Initial unbonding period.
    """
    assert token != empty(address), "registry: token is the zero address"
    access_control.__init__()
    pausable.__init__()
    TOKEN = token
    self._set_unbonding_period(unbonding_period_seconds)


################################################################
#                     PROVIDER (permissionless)                #
################################################################

@external
def register(class_id: uint16, gpu_count: uint16, vram_mb: uint32, endpoint: String[256]) -> uint256:
    """
    @notice Registers a machine in status Pending; it needs an attestation to become Active.
    @return The new machine id.
    """
    pausable._require_not_paused()
    assert self._class_enabled[class_id], "registry: unknown or disabled class"
    assert gpu_count > 0, "registry: gpu count is zero"
    assert gpu_count <= MAX_GPUS_PER_MACHINE, "registry: gpu count too large"
    assert vram_mb > 0, "registry: vram is zero"
    assert convert(vram_mb, uint256) <= _MASK_24, "registry: vram too large"
    assert len(endpoint) > 0, "registry: endpoint is empty"

    machine_id: uint256 = self.machine_count + 1
    self.machine_count = machine_id
    self._machine_core[machine_id] = (
        convert(msg.sender, uint256)
        | (convert(class_id, uint256) << _CLASS_SHIFT)
        | (convert(STATUS_PENDING, uint256) << _STATUS_SHIFT)
        | (convert(gpu_count, uint256) << _GPUS_SHIFT)
        | (convert(vram_mb, uint256) << _VRAM_SHIFT)
    )
    self._machine_endpoint[machine_id] = endpoint
    requirement: uint256 = self._class_min_stake[class_id] * convert(gpu_count, uint256)
    self.machine_requirement[machine_id] = requirement
    self.required_stake[msg.sender] += requirement
    log MachineRegistered(
        machine_id=machine_id,
        provider=msg.sender,
        class_id=class_id,
        gpu_count=gpu_count,
        vram_mb=vram_mb,
        endpoint=endpoint,
    )
    log MachineStatusChanged(
        machine_id=machine_id, provider=msg.sender, old_status=STATUS_NONE, new_status=STATUS_PENDING
    )
    return machine_id


@external
def update_endpoint(machine_id: uint256, endpoint: String[256]):
    """
    @notice Changes where a machine is reached. Only its provider; not for exited machines.
    """
    self._check_own_machine(machine_id)
    assert self._m_status(self._machine_core[machine_id]) != STATUS_EXITED, "registry: machine exited"
    assert len(endpoint) > 0, "registry: endpoint is empty"
    self._machine_endpoint[machine_id] = endpoint
    log EndpointUpdated(machine_id=machine_id, endpoint=endpoint)


@external
def request_attestation(machine_id: uint256):
    """
    @notice On-demand re-attestation: the provider puts its Active or Jailed machine back to
            Pending, so the oracle quorum challenges it again (after a hardware change, or to
            leave jail). It takes no new jobs until attested; running jobs are unaffected.
            A machine that fails again is jailed and its provider slashed again, so asking
            costs a liar more each time.
    """
    self._check_own_machine(machine_id)
    status: uint8 = self._m_status(self._machine_core[machine_id])
    assert status == STATUS_ACTIVE or status == STATUS_JAILED, "registry: machine not active or jailed"
    self._attest(machine_id, STATUS_PENDING, 0)


@external
def exit_machine(machine_id: uint256):
    """
    @notice Retires a machine for good and releases its stake requirement.
            Jobs it already accepted keep their collateral and deadlines.
    """
    self._check_own_machine(machine_id)
    core: uint256 = self._machine_core[machine_id]
    old_status: uint8 = self._m_status(core)
    assert old_status != STATUS_EXITED, "registry: machine exited"
    self._set_status(machine_id, core, STATUS_EXITED)
    # Exactly what registration added (the sum includes it, so this cannot underflow).
    self.required_stake[msg.sender] -= self.machine_requirement[machine_id]
    log MachineStatusChanged(
        machine_id=machine_id, provider=msg.sender, old_status=old_status, new_status=STATUS_EXITED
    )


@external
def stake(amount: uint256):
    """
    @notice Bonds `amount` tokens (needs an allowance). Not pausable: more stake only adds security.
    """
    assert amount > 0, "registry: amount is zero"
    staked: uint256 = 0
    locked: uint256 = 0
    staked, locked = self._get_bond(msg.sender)
    staked += amount
    self._set_bond(msg.sender, staked, locked)
    assert extcall IERC20(TOKEN).transferFrom(msg.sender, self, amount, default_return_value=True), \
        "registry: transfer failed"
    log Staked(provider=msg.sender, amount=amount, staked=staked)


@external
def request_unstake(amount: uint256):
    """
    @notice Moves `amount` of free stake (staked - locked) into unbonding. It stays
            slashable until released; a new request adds to it and restarts the clock.
    """
    assert amount > 0, "registry: amount is zero"
    staked: uint256 = 0
    locked: uint256 = 0
    staked, locked = self._get_bond(msg.sender)
    # Written as a sum: after a slash `staked` may be below `locked` (see `slash`).
    assert locked + amount <= staked, "registry: not enough free stake"
    self._set_bond(msg.sender, staked - amount, locked)
    unbonding: uint256 = self.unbonding[msg.sender] + amount
    release: uint256 = block.timestamp + self.unbonding_period
    self.unbonding[msg.sender] = unbonding
    self.unbonding_release[msg.sender] = release
    log UnstakeRequested(provider=msg.sender, amount=amount, unbonding=unbonding, release_time=release)


@external
def withdraw() -> uint256:
    """
    @notice Pays out the whole unbonding entry once its release time has passed. Never paused.
    @return The amount paid.
    """
    amount: uint256 = self.unbonding[msg.sender]
    assert amount > 0, "registry: nothing unbonding"
    assert block.timestamp >= self.unbonding_release[msg.sender], "registry: still unbonding"
    self.unbonding[msg.sender] = 0
    self.unbonding_release[msg.sender] = 0
    assert extcall IERC20(TOKEN).transfer(msg.sender, amount, default_return_value=True), \
        "registry: transfer failed"
    log Withdrawn(provider=msg.sender, amount=amount)
    return amount


@external
def set_offer(class_id: uint16, price_per_unit: uint256):
    """
    @notice Posts (or, with price 0, withdraws) the caller's price per compute unit for a class.
    """
    if price_per_unit > 0:
        assert self._class_enabled[class_id], "registry: unknown or disabled class"
    self.offers[msg.sender][class_id] = price_per_unit
    log OfferSet(provider=msg.sender, class_id=class_id, price_per_unit=price_per_unit)


################################################################
#                            VIEWS                             #
################################################################

@external
@view
def class_exists(class_id: uint16) -> bool:
    return self._class_enabled[class_id]


@external
@view
def gpu_classes(class_id: uint16) -> GpuClass:
    return GpuClass(
        name=self._class_name[class_id],
        min_stake_per_gpu=self._class_min_stake[class_id],
        enabled=self._class_enabled[class_id],
    )


@external
@view
def machines(machine_id: uint256) -> Machine:
    core: uint256 = self._machine_core[machine_id]
    return Machine(
        provider=self._m_provider(core),
        class_id=self._m_class(core),
        gpu_count=convert((core >> _GPUS_SHIFT) & 65535, uint16),
        vram_mb=convert((core >> _VRAM_SHIFT) & _MASK_24, uint32),
        status=self._m_status(core),
        endpoint=self._machine_endpoint[machine_id],
        attested_until=core >> _ATTESTED_SHIFT,
    )


@external
@view
def machine_status(machine_id: uint256) -> uint8:
    return self._m_status(self._machine_core[machine_id])


@external
@view
def attested_until(machine_id: uint256) -> uint256:
    return self._machine_core[machine_id] >> _ATTESTED_SHIFT


@external
@view
def machine_provider(machine_id: uint256) -> address:
    return self._m_provider(self._machine_core[machine_id])


@external
@view
def free_stake(provider: address) -> uint256:
    """
    @notice Stake that can back new jobs or be unstaked.
    """
    staked: uint256 = 0
    locked: uint256 = 0
    staked, locked = self._get_bond(provider)
    if staked <= locked:
        return 0
    return staked - locked


@external
@view
def slashable(provider: address) -> uint256:
    """
    @notice Everything a slash can reach: bonded plus unbonding.
    """
    return (self._bond[provider] >> 128) + self.unbonding[provider]


@external
@view
def staked(provider: address) -> uint256:
    return self._bond[provider] >> 128


@external
@view
def locked(provider: address) -> uint256:
    return self._bond[provider] & _MAX_AMOUNT


@external
@view
def stakes(provider: address) -> Stake:
    """
    @notice All of a provider's stake accounting in one struct.
    """
    staked: uint256 = 0
    locked: uint256 = 0
    staked, locked = self._get_bond(provider)
    return Stake(
        staked=staked,
        locked=locked,
        unbonding=self.unbonding[provider],
        unbonding_release=self.unbonding_release[provider],
    )


@external
@view
def machine_endpoint(machine_id: uint256) -> String[256]:
    return self._machine_endpoint[machine_id]


@external
@view
def reputation(provider: address) -> Reputation:
    """
    @notice The provider's on-chain record (drives its audit rate and clients' ranking).
    """
    w: uint256 = self._reputation[provider]
    return Reputation(
        completed=(w >> rep_layout.COMPLETED) & rep_layout.MASK,
        failed=(w >> rep_layout.FAILED) & rep_layout.MASK,
        expired=(w >> rep_layout.EXPIRED) & rep_layout.MASK,
        audits_passed=(w >> rep_layout.AUDITS_PASSED) & rep_layout.MASK,
        disputes_won=(w >> rep_layout.DISPUTES_WON) & rep_layout.MASK,
        disputes_lost=(w >> rep_layout.DISPUTES_LOST) & rep_layout.MASK,
    )


@external
@view
def reputation_word(provider: address) -> uint256:
    """
    @notice The packed reputation counters (40 bits each, `Reputation`'s order from bit 0).
    """
    return self._reputation[provider]


################################################################
#                        ROLE-GATED                            #
################################################################

@external
def set_gpu_class(class_id: uint16, name: String[32], min_stake_per_gpu: uint256, enabled: bool):
    """
    @notice Adds or edits a GPU class. Governance only.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert class_id != 0, "registry: class id zero is reserved"
    assert len(name) > 0, "registry: class name is empty"
    self._class_name[class_id] = name
    self._class_min_stake[class_id] = min_stake_per_gpu
    self._class_enabled[class_id] = enabled
    log GpuClassSet(class_id=class_id, name=name, min_stake_per_gpu=min_stake_per_gpu, enabled=enabled)


@external
def set_job_market(market: address):
    """
    @notice Once: the JobMarket allowed to lock, release and slash collateral.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert self.job_market == empty(address), "registry: job market already set"
    assert market != empty(address), "registry: job market is the zero address"
    self.job_market = market
    log JobMarketSet(job_market=market)


@external
def set_unbonding_period(seconds: uint256):
    """
    @notice Governance only; applies to requests made afterwards.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._set_unbonding_period(seconds)


@external
def set_machine_status(machine_id: uint256, status: uint8):
    """
    @notice Attester only: the manual override (local chains, emergencies). Pending, Active
            or Jailed; Exited machines stay exited. Active set here has no expiry
            (`NO_EXPIRY`); the oracle quorum uses `record_attestation`, which does.
    """
    access_control._check_role(ATTESTER_ROLE, msg.sender)
    assert status == STATUS_PENDING or status == STATUS_ACTIVE or status == STATUS_JAILED, \
        "registry: invalid status"
    self._attest(machine_id, status, NO_EXPIRY if status == STATUS_ACTIVE else 0)


@external
def record_attestation(machine_id: uint256, class_id: uint16, passed: bool, valid_until: uint256):
    """
    @notice Attester only (OracleHub): a benchmark attestation for the machine's claimed class.
            Passed: Active until `valid_until` (then it takes no new jobs until renewed).
            Failed: Jailed. A failed attestation of a machine its provider has exited since
            is recorded and leaves it Exited: exiting must not make the report (and the
            hardware slash that comes with it) revert (docs/SECURITY.md, finding 2).
            A Jailed machine takes no attestation until its provider calls
            `request_attestation`: a report drawn up before the jail landed (a second leader's,
            at the next nonce) must neither slash it twice nor free it.
    """
    access_control._check_role(ATTESTER_ROLE, msg.sender)
    core: uint256 = self._machine_core[machine_id]
    assert self._m_status(core) != STATUS_NONE, "registry: unknown machine"
    assert self._m_status(core) != STATUS_JAILED, "registry: machine jailed (its provider must request_attestation)"
    assert self._m_class(core) == class_id, "registry: class mismatch"
    if not passed and self._m_status(core) == STATUS_EXITED:
        log AttestationRecorded(machine_id=machine_id, status=STATUS_EXITED, attested_until=0)
        return
    if passed:
        assert valid_until > block.timestamp, "registry: attestation already expired"
        assert valid_until < NO_EXPIRY, "registry: attestation too long"
        self._attest(machine_id, STATUS_ACTIVE, valid_until)
    else:
        self._attest(machine_id, STATUS_JAILED, 0)


@external
def lock_collateral(provider: address, machine_id: uint256, class_id: uint16, amount: uint256):
    """
    @notice Locks `amount` of `provider`'s free stake behind a job run on `machine_id`.
            Checks that the machine is the provider's, Active, of the job's class, and that
            the provider's stake covers its machines' minimum. JobMarket only (which pauses it).
    """
    assert msg.sender == self.job_market, "registry: caller is not the job market"
    core: uint256 = self._machine_core[machine_id]
    assert self._m_provider(core) == provider, "registry: not the provider's machine"
    assert self._m_status(core) == STATUS_ACTIVE, "registry: machine not active"
    assert self._m_class(core) == class_id, "registry: class mismatch"
    assert block.timestamp <= core >> _ATTESTED_SHIFT, "registry: attestation expired"
    staked: uint256 = 0
    locked: uint256 = 0
    staked, locked = self._get_bond(provider)
    assert staked >= self.required_stake[provider], "registry: stake below minimum"
    assert locked + amount <= staked, "registry: not enough free stake"
    locked += amount
    # No event: the market's JobAccepted / OrderFilled carries each job's collateral (2k gas a job).
    self._set_bond(provider, staked, locked)


@external
def unlock_collateral(provider: address, amount: uint256, record: uint256):
    """
    @notice Releases collateral of jobs that ended and adds their outcome to the provider's
            reputation (`record`: packed counter increments, `Reputation`'s layout). JobMarket
            only; never paused.
    """
    assert msg.sender == self.job_market, "registry: caller is not the job market"
    if record != 0:
        # Each increment is at most the jobs since the provider's last claim and a 40-bit counter
        # would need 10^12 jobs: no field can carry into the next.
        self._reputation[provider] += record
    if amount == 0:
        return
    staked: uint256 = 0
    locked: uint256 = 0
    staked, locked = self._get_bond(provider)
    # `locked` holds every release JobMarket can ask for (slashes never lower it); min() only
    # keeps the arithmetic safe.
    released: uint256 = min(amount, locked)
    locked -= released
    self._set_bond(provider, staked, locked)
    log CollateralUnlocked(provider=provider, amount=released, locked=locked)


@external
def slash(provider: address, amount: uint256, reason: bytes32, beneficiary: address) -> uint256:
    """
    @notice Takes up to `amount` from the provider's bonded stake, then from its unbonding
            entry (so unstaking does not escape a slash). The tokens go to `beneficiary`,
            or are burned when it is the zero address. The job market and SLASHER_ROLE
            (OracleHub) only; never paused.
    @return The amount actually slashed (less than `amount` if the provider has less).
    """
    if msg.sender != self.job_market:
        access_control._check_role(SLASHER_ROLE, msg.sender)
    assert amount > 0, "registry: amount is zero"
    staked: uint256 = 0
    locked: uint256 = 0
    staked, locked = self._get_bond(provider)
    unbonding: uint256 = self.unbonding[provider]
    from_staked: uint256 = min(amount, staked)
    from_unbonding: uint256 = min(amount - from_staked, unbonding)
    staked -= from_staked
    # `locked` stays the sum of the open jobs' collateral even when this leaves `staked` below
    # it: nothing is free (no unstake, no new job) until the provider restakes above it, so
    # stake added after a slash cannot be unstaked from under jobs that are still open.
    self._set_bond(provider, staked, locked)
    if from_unbonding > 0:
        self.unbonding[provider] = unbonding - from_unbonding
        if from_unbonding == unbonding:
            self.unbonding_release[provider] = 0
    slashed: uint256 = from_staked + from_unbonding
    if slashed > 0:
        if beneficiary == empty(address):
            extcall IComputeToken(TOKEN).burn(slashed)
        else:
            assert extcall IERC20(TOKEN).transfer(beneficiary, slashed, default_return_value=True), \
                "registry: transfer failed"
    log Slashed(provider=provider, amount=slashed, reason=reason, beneficiary=beneficiary, slasher=msg.sender)
    return slashed


@external
def pause():
    access_control._check_role(PAUSER_ROLE, msg.sender)
    pausable._pause()


@external
def unpause():
    access_control._check_role(PAUSER_ROLE, msg.sender)
    pausable._unpause()


################################################################
#                          INTERNAL                            #
################################################################

@internal
@view
def _check_own_machine(machine_id: uint256):
    core: uint256 = self._machine_core[machine_id]
    assert self._m_status(core) != STATUS_NONE, "registry: unknown machine"
    assert self._m_provider(core) == msg.sender, "registry: not the machine's provider"


@internal
@pure
def _m_provider(core: uint256) -> address:
    return convert(convert(core & (2**160 - 1), uint160), address)


@internal
@pure
def _m_class(core: uint256) -> uint16:
    return convert((core >> _CLASS_SHIFT) & 65535, uint16)


@internal
@pure
def _m_status(core: uint256) -> uint8:
    return convert((core >> _STATUS_SHIFT) & 255, uint8)


@internal
def _set_status(machine_id: uint256, core: uint256, status: uint8):
    cleared: uint256 = core & ~(255 << _STATUS_SHIFT)
    self._machine_core[machine_id] = cleared | (convert(status, uint256) << _STATUS_SHIFT)


@internal
def _attest(machine_id: uint256, status: uint8, attested_until: uint256):
    core: uint256 = self._machine_core[machine_id]
    old_status: uint8 = self._m_status(core)
    assert old_status != STATUS_NONE, "registry: unknown machine"
    assert old_status != STATUS_EXITED, "registry: machine exited"
    # Clear status and expiry, then write both (attested_until < 2**32 by the callers' checks).
    core = core & ~(255 << _STATUS_SHIFT) & ~(_MASK_32 << _ATTESTED_SHIFT)
    self._machine_core[machine_id] = (
        core | (convert(status, uint256) << _STATUS_SHIFT) | (attested_until << _ATTESTED_SHIFT)
    )
    log MachineStatusChanged(
        machine_id=machine_id, provider=self._m_provider(core), old_status=old_status, new_status=status
    )
    log AttestationRecorded(machine_id=machine_id, status=status, attested_until=attested_until)


@internal
@view
def _get_bond(provider: address) -> (uint256, uint256):
    word: uint256 = self._bond[provider]
    return word >> 128, word & _MAX_AMOUNT


@internal
def _set_bond(provider: address, staked: uint256, locked: uint256):
    assert staked <= _MAX_AMOUNT, "registry: amount too large"
    # locked <= staked is kept by every caller, so it fits in 128 bits too.
    self._bond[provider] = (staked << 128) | locked


@internal
def _set_unbonding_period(seconds: uint256):
    assert seconds >= MIN_UNBONDING_SECONDS, "registry: unbonding period too short"
    assert seconds <= MAX_UNBONDING_SECONDS, "registry: unbonding period too long"
    self.unbonding_period = seconds
    log UnbondingPeriodSet(seconds=seconds)
