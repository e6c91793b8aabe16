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
        - COLLATERAL_ROLE (JobMarket): lock and unlock per-job collateral.
        - SLASHER_ROLE (JobMarket, later OracleHub): slash stake, never more
          than the provider has (staked + unbonding).
        - PAUSER_ROLE (guardian): pauses registration and collateral
          locking (new jobs) only; unstake, withdraw, unlock and slash
          always work, so no exit is ever blocked by a pause.
        Assumes ComputeToken moves exact amounts (no fee, no rebase).
"""

from ethereum.ercs import IERC20
from interfaces import IComputeToken

from snekmate.auth import access_control
# Role-based access for governance, attesters, the job market and slashers.
initializes: access_control

from snekmate.utils import pausable
# Guardian stop for new registrations and new collateral locks.
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
# Locks and unlocks per-job collateral: held by JobMarket.
COLLATERAL_ROLE: public(constant(bytes32)) = keccak256("COLLATERAL_ROLE")
# Takes stake away: held by JobMarket and OracleHub.
SLASHER_ROLE: public(constant(bytes32)) = keccak256("SLASHER_ROLE")
# Pauses new registrations and new jobs, nothing else.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER_ROLE")

# Machine status values (mirrored in offchain/constants.py).
STATUS_NONE: public(constant(uint8)) = 0
STATUS_PENDING: public(constant(uint8)) = 1
STATUS_ACTIVE: public(constant(uint8)) = 2
STATUS_JAILED: public(constant(uint8)) = 3
STATUS_EXITED: public(constant(uint8)) = 4

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

################################################################
#                            STATE                             #
################################################################

# The staking token (ComputeToken).
TOKEN: public(immutable(address))

# GPU class table, governance-set; ids are chosen by governance (0 is reserved for "none").
gpu_classes: public(HashMap[uint16, GpuClass])

# Per-provider stake accounting.
stakes: public(HashMap[address, Stake])

# Registered machines by id (ids start at 1).
machines: public(HashMap[uint256, Machine])

# Number of machines ever registered (= the last id).
machine_count: public(uint256)

# Sum over a provider's non-exited machines of min_stake_per_gpu * gpu_count, fixed at registration.
required_stake: public(HashMap[address, uint256])

# Offer price: token wei per compute unit, per provider and class; 0 = no offer.
offers: public(HashMap[address, HashMap[uint16, uint256]])

# Seconds between request_unstake and withdraw.
unbonding_period: public(uint256)

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

event CollateralLocked:
    provider: indexed(address)
    machine_id: indexed(uint256)
    amount: uint256
    locked: uint256

event CollateralUnlocked:
    provider: indexed(address)
    amount: uint256
    locked: uint256

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
    gpu_class: GpuClass = self.gpu_classes[class_id]
    assert gpu_class.enabled, "registry: unknown or disabled class"
    assert gpu_count > 0, "registry: gpu count is zero"
    assert gpu_count <= MAX_GPUS_PER_MACHINE, "registry: gpu count too large"
    assert vram_mb > 0, "registry: vram is zero"
    assert len(endpoint) > 0, "registry: endpoint is empty"

    machine_id: uint256 = self.machine_count + 1
    self.machine_count = machine_id
    self.machines[machine_id] = Machine(
        provider=msg.sender,
        class_id=class_id,
        gpu_count=gpu_count,
        vram_mb=vram_mb,
        status=STATUS_PENDING,
        endpoint=endpoint,
    )
    self.required_stake[msg.sender] += gpu_class.min_stake_per_gpu * convert(gpu_count, uint256)
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
    machine: Machine = self._own_machine(machine_id)
    assert machine.status != STATUS_EXITED, "registry: machine exited"
    assert len(endpoint) > 0, "registry: endpoint is empty"
    self.machines[machine_id].endpoint = endpoint
    log EndpointUpdated(machine_id=machine_id, endpoint=endpoint)


@external
def exit_machine(machine_id: uint256):
    """
    @notice Retires a machine for good and releases its stake requirement.
            Jobs it already accepted keep their collateral and deadlines.
    """
    machine: Machine = self._own_machine(machine_id)
    assert machine.status != STATUS_EXITED, "registry: machine exited"
    self.machines[machine_id].status = STATUS_EXITED
    requirement: uint256 = self.gpu_classes[machine.class_id].min_stake_per_gpu * convert(
        machine.gpu_count, uint256
    )
    # The class minimum may have changed since registration: never underflow.
    self.required_stake[msg.sender] -= min(requirement, self.required_stake[msg.sender])
    log MachineStatusChanged(
        machine_id=machine_id, provider=msg.sender, old_status=machine.status, new_status=STATUS_EXITED
    )


@external
def stake(amount: uint256):
    """
    @notice Bonds `amount` tokens (needs an allowance). Not pausable: more stake only adds security.
    """
    assert amount > 0, "registry: amount is zero"
    self.stakes[msg.sender].staked += amount
    assert extcall IERC20(TOKEN).transferFrom(msg.sender, self, amount, default_return_value=True), \
        "registry: transfer failed"
    log Staked(provider=msg.sender, amount=amount, staked=self.stakes[msg.sender].staked)


@external
def request_unstake(amount: uint256):
    """
    @notice Moves `amount` of free stake (staked - locked) into unbonding. It stays
            slashable until released; a new request adds to it and restarts the clock.
    """
    assert amount > 0, "registry: amount is zero"
    s: Stake = self.stakes[msg.sender]
    assert amount <= s.staked - s.locked, "registry: not enough free stake"
    s.staked -= amount
    s.unbonding += amount
    s.unbonding_release = block.timestamp + self.unbonding_period
    self.stakes[msg.sender] = s
    log UnstakeRequested(
        provider=msg.sender, amount=amount, unbonding=s.unbonding, release_time=s.unbonding_release
    )


@external
def withdraw() -> uint256:
    """
    @notice Pays out the whole unbonding entry once its release time has passed. Never paused.
    @return The amount paid.
    """
    s: Stake = self.stakes[msg.sender]
    assert s.unbonding > 0, "registry: nothing unbonding"
    assert block.timestamp >= s.unbonding_release, "registry: still unbonding"
    amount: uint256 = s.unbonding
    self.stakes[msg.sender].unbonding = 0
    self.stakes[msg.sender].unbonding_release = 0
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
        assert self.gpu_classes[class_id].enabled, "registry: unknown or disabled class"
    self.offers[msg.sender][class_id] = price_per_unit
    log OfferSet(provider=msg.sender, class_id=class_id, price_per_unit=price_per_unit)


################################################################
#                            VIEWS                             #
################################################################

@external
@view
def class_exists(class_id: uint16) -> bool:
    return self.gpu_classes[class_id].enabled


@external
@view
def free_stake(provider: address) -> uint256:
    """
    @notice Stake that can back new jobs or be unstaked.
    """
    s: Stake = self.stakes[provider]
    return s.staked - s.locked


@external
@view
def slashable(provider: address) -> uint256:
    """
    @notice Everything a slash can reach: bonded plus unbonding.
    """
    s: Stake = self.stakes[provider]
    return s.staked + s.unbonding


@external
@view
def machine_endpoint(machine_id: uint256) -> String[256]:
    return self.machines[machine_id].endpoint


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
    self.gpu_classes[class_id] = GpuClass(name=name, min_stake_per_gpu=min_stake_per_gpu, enabled=enabled)
    log GpuClassSet(class_id=class_id, name=name, min_stake_per_gpu=min_stake_per_gpu, enabled=enabled)


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
    @notice Attester only: Pending, Active or Jailed. Exited machines stay exited.
    """
    access_control._check_role(ATTESTER_ROLE, msg.sender)
    machine: Machine = self.machines[machine_id]
    assert machine.status != STATUS_NONE, "registry: unknown machine"
    assert machine.status != STATUS_EXITED, "registry: machine exited"
    assert status == STATUS_PENDING or status == STATUS_ACTIVE or status == STATUS_JAILED, \
        "registry: invalid status"
    self.machines[machine_id].status = status
    log MachineStatusChanged(
        machine_id=machine_id, provider=machine.provider, old_status=machine.status, new_status=status
    )


@external
def lock_collateral(provider: address, machine_id: uint256, class_id: uint16, amount: uint256):
    """
    @notice Locks `amount` of `provider`'s free stake behind a job run on `machine_id`.
            Checks that the machine is the provider's, Active, of the job's class, and that
            the provider's stake covers its machines' minimum. JobMarket only; paused with it.
    """
    access_control._check_role(COLLATERAL_ROLE, msg.sender)
    pausable._require_not_paused()
    machine: Machine = self.machines[machine_id]
    assert machine.provider == provider, "registry: not the provider's machine"
    assert machine.status == STATUS_ACTIVE, "registry: machine not active"
    assert machine.class_id == class_id, "registry: class mismatch"
    s: Stake = self.stakes[provider]
    assert s.staked >= self.required_stake[provider], "registry: stake below minimum"
    assert amount <= s.staked - s.locked, "registry: not enough free stake"
    s.locked += amount
    self.stakes[provider].locked = s.locked
    log CollateralLocked(provider=provider, machine_id=machine_id, amount=amount, locked=s.locked)


@external
def unlock_collateral(provider: address, amount: uint256):
    """
    @notice Releases collateral of a job that ended. JobMarket only; never paused.
    """
    access_control._check_role(COLLATERAL_ROLE, msg.sender)
    locked: uint256 = self.stakes[provider].locked
    # A slash by another slasher may already have cut `locked` down to `staked`.
    locked -= min(amount, locked)
    self.stakes[provider].locked = locked
    log CollateralUnlocked(provider=provider, amount=amount, locked=locked)


@external
def slash(provider: address, amount: uint256, reason: bytes32, beneficiary: address) -> uint256:
    """
    @notice Takes up to `amount` from the provider's bonded stake, then from its unbonding
            entry (so unstaking does not escape a slash). The tokens go to `beneficiary`,
            or are burned when it is the zero address. Slasher roles only; never paused.
    @return The amount actually slashed (less than `amount` if the provider has less).
    """
    access_control._check_role(SLASHER_ROLE, msg.sender)
    assert amount > 0, "registry: amount is zero"
    s: Stake = self.stakes[provider]
    from_staked: uint256 = min(amount, s.staked)
    from_unbonding: uint256 = min(amount - from_staked, s.unbonding)
    s.staked -= from_staked
    s.unbonding -= from_unbonding
    # Keep locked <= staked: collateral that no longer exists is no longer locked.
    s.locked = min(s.locked, s.staked)
    self.stakes[provider] = s
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
def _own_machine(machine_id: uint256) -> Machine:
    machine: Machine = self.machines[machine_id]
    assert machine.status != STATUS_NONE, "registry: unknown machine"
    assert machine.provider == msg.sender, "registry: not the machine's provider"
    return machine


@internal
def _set_unbonding_period(seconds: uint256):
    assert seconds >= MIN_UNBONDING_SECONDS, "registry: unbonding period too short"
    assert seconds <= MAX_UNBONDING_SECONDS, "registry: unbonding period too long"
    self.unbonding_period = seconds
    log UnbondingPeriodSet(seconds=seconds)
