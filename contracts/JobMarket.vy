# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize codesize
"""
@title Job escrow and settlement
@custom:contract-name JobMarket
@license AGPL-3.0-only
@notice Holds users' payments for compute jobs until they are final, locks the
        provider's collateral (in ProviderRegistry) while a job runs, and runs the
        job state machine of docs/PROTOCOL.md:

        Open -accept-> Running -submit_result-> Submitted -window passes-> Finalized
        Submitted -drawn for audit (probability audit_bps) -open_audit-> Audit
        Submitted -dispute (bond)-> Audit -verdict valid-> Finalized
                                   Audit -verdict invalid-> Failed
                                   Audit -audit timeout-> Finalized (bond returned)
        Open -cancel (user) / acceptance deadline passes-> Cancelled (refund)
        Running -completion deadline passes-> Expired (refund + no-show penalty)

        Storage holds one slot per job: the job's keccak256 commitment with its
        status in the low byte. Callers pass the full `Job` struct (contracts/interfaces/IJobMarket.vyi; rebuilt from
        this contract's events, see offchain/chain/jobs.py) and the contract checks
        it against the commitment. This keeps a whole job lifecycle near 250k gas.

        Sampled audits: at acceptance the provider's audit rate `audit_bps` (from its
        on-chain reputation) is fixed in the job, and its collateral is raised so that
        cheating never pays: audit_bps * detection_bps * (payment + collateral) >= payment.
        The draw reads AuditBeacon's seed for the round after the submission's, a
        commit-reveal among the oracle operators that nobody can know or bias before the
        result is committed; a round the operators did not fully reveal is degraded and
        every job drawn from it is audited (docs/SECURITY.md, "The audit draw").
@custom:security Roles (snekmate access_control, admin = governance timelock
        outside local networks):
        - DEFAULT_ADMIN_ROLE: protocol parameters, role grants.
        - VERIFIER_ROLE: audit verdicts (the oracle quorum, OracleHub).
        - PAUSER_ROLE (guardian): pauses create_job(s) and accept(s) only.
        Refunds, submit, dispute, verdicts, finalize, expire, cancel and fee sweeps
        are never paused, and every waiting state has a deadline after which
        anyone can move the job on: no funds can be stuck.
        Is ProviderRegistry's `job_market` (set once, not a revocable role): it
        locks, releases and slashes collateral and records job outcomes in the
        provider's reputation there. Parameter bounds are checked by
        JobMarketParams (a pure contract, reverts with this contract's reasons) to
        keep this one under 20,000 bytes. Assumes the token moves exact amounts
        (no fee, no rebase).
"""

from ethereum.ercs import IERC20
from interfaces import IAuditBeacon
from interfaces import IComputeToken
from interfaces import IJobMarket
from interfaces import IJobMarketParams
from interfaces import IProviderRegistry
from interfaces import ISettlement

from snekmate.auth import access_control
# Role-based access for governance, verifiers and the guardian.
initializes: access_control

from snekmate.utils import pausable
# Guardian stop for new jobs (create and accept) only.
initializes: pausable

exports: (
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.DEFAULT_ADMIN_ROLE,
    pausable.paused,
)

################################################################
#                          CONSTANTS                           #
################################################################

# Posts audit verdicts: held by the oracle quorum (OracleHub).
VERIFIER_ROLE: public(constant(bytes32)) = keccak256("VERIFIER_ROLE")
# Pauses new jobs, nothing else.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER_ROLE")

# Job status values, stored in the low byte of the job slot (mirrored in offchain/constants.py).
STATUS_NONE: public(constant(uint8)) = 0
STATUS_OPEN: public(constant(uint8)) = 1
STATUS_RUNNING: public(constant(uint8)) = 2
STATUS_SUBMITTED: public(constant(uint8)) = 3
STATUS_AUDIT: public(constant(uint8)) = 4
STATUS_FINALIZED: public(constant(uint8)) = 5
STATUS_FAILED: public(constant(uint8)) = 6
STATUS_CANCELLED: public(constant(uint8)) = 7
STATUS_EXPIRED: public(constant(uint8)) = 8

# Basis-point denominator.
MAX_BPS: public(constant(uint256)) = 10_000
# Bounds on every window: long enough for a block or two, short enough that nothing waits forever.
MIN_WINDOW_SECONDS: public(constant(uint256)) = 60
MAX_WINDOW_SECONDS: public(constant(uint256)) = 30 * 86400
# Largest batch in the *_many / *_jobs forms (a batch of 100 stays far below the block gas limit).
MAX_BATCH: public(constant(uint256)) = 100
# AuditBeacon.draw_seed round states.
_ROUND_READY: constant(uint8) = 1
_ROUND_DEGRADED: constant(uint8) = 2

# Bit offsets of the packed parameters in `_hot_params`: basis points and job counts take
# 16 bits, windows and collateral_bps 24 bits (each bounded below that by `_set_params`).
_FEE_BPS_SHIFT: constant(uint256) = 0
_COLLATERAL_BPS_SHIFT: constant(uint256) = 16
_CHALLENGE_WINDOW_SHIFT: constant(uint256) = 40
_MIN_ACCEPT_WINDOW_SHIFT: constant(uint256) = 64
_MAX_ACCEPT_WINDOW_SHIFT: constant(uint256) = 88
_MIN_COMPLETE_WITHIN_SHIFT: constant(uint256) = 112
_MAX_COMPLETE_WITHIN_SHIFT: constant(uint256) = 136
_BASE_AUDIT_SHIFT: constant(uint256) = 160
_NEW_AUDIT_SHIFT: constant(uint256) = 176
_TRUSTED_AFTER_SHIFT: constant(uint256) = 192
_BAD_RECORD_AUDIT_SHIFT: constant(uint256) = 208
_DETECTION_SHIFT: constant(uint256) = 224
_MASK_16: constant(uint256) = 2**16 - 1
_MASK_24: constant(uint256) = 2**24 - 1

# Reputation counters, 40 bits each, packed in one word per provider in ProviderRegistry
# (`ProviderRegistry.Reputation`); the market sends `n << offset` increments.
_REP_COMPLETED: constant(uint256) = 0
_REP_FAILED: constant(uint256) = 40
_REP_EXPIRED: constant(uint256) = 80
_REP_AUDITS_PASSED: constant(uint256) = 120
_REP_DISPUTES_WON: constant(uint256) = 160
_REP_DISPUTES_LOST: constant(uint256) = 200
_MASK_40: constant(uint256) = 2**40 - 1

# Slash reasons (bytes32 tags logged by ProviderRegistry.Slashed).
_REASON_NO_SHOW: constant(bytes32) = keccak256("NO_SHOW")
_REASON_INVALID_RESULT: constant(bytes32) = keccak256("INVALID_RESULT")

################################################################
#                           STRUCTS                            #
################################################################

struct Dispute:
    challenger: address
    bond: uint256
    audit_deadline: uint256

################################################################
#                            STATE                             #
################################################################

# The payment token (ComputeToken).
TOKEN: public(immutable(address))
# Prices jobs in tokens and mints providers' pay (burn-and-mint, docs/ECONOMICS.md).
SETTLEMENT: public(immutable(address))
# Where stake and collateral live.
REGISTRY: public(immutable(address))

# job id -> keccak256(abi_encode(Job)) with the low byte replaced by the status.
_jobs: HashMap[uint256, uint256]

# Number of jobs ever created (= the last id; ids start at 1).
job_count: public(uint256)

# Open disputes and audits, by job id (a sampled audit has no challenger and no bond).
disputes: public(HashMap[uint256, Dispute])

# Current protocol parameters (governance); `params()` returns them as a struct.
# The seven that every job reads (fee, collateral, challenge window, window bounds) are
# packed 32 bits each into one word, so creating or submitting a job reads one slot, not
# seven (6 x 2,100 gas saved per job). Each is bounded far below 2**32 by `_set_params`.
_hot_params: uint256
_audit_timeout: uint256
_dispute_bond_bps: uint256
_min_dispute_bond: uint256
_noshow_penalty_bps: uint256
_user_compensation_bps: uint256
_challenger_reward_bps: uint256
# Smallest USD value (18 decimals) of a finalized job that counts toward the provider's
# `completed` record (finding 5: dust jobs must not end probation).
_min_reputation_usd: uint256

# Checks parameter sets (bounds and reasons) for `set_params`.
PARAMS_CHECK: public(immutable(address))
# The audit draw's randomness, and its round length (a result submitted at T is drawn from
# round T // DRAW_ROUND_SECONDS + 1).
BEACON: public(immutable(address))
DRAW_ROUND_SECONDS: public(immutable(uint256))
# A round's seed is final this many seconds after the submission at the latest (one round
# plus the beacon's reveal window): the challenge window must be longer.
_DRAW_LATENCY: immutable(uint256)


################################################################
#                            EVENTS                            #
################################################################

event JobCreated:
    job_id: indexed(uint256)
    user: indexed(address)
    provider: indexed(address)
    class_id: uint16
    spec_hash: bytes32
    compute_units: uint256
    payment: uint256
    usd_value: uint256
    collateral: uint256
    fee_bps: uint256
    accept_by: uint256
    complete_within: uint256

event JobAccepted:
    job_id: indexed(uint256)
    provider: indexed(address)
    machine_id: indexed(uint256)
    complete_by: uint256
    # Final collateral (the creation-time floor raised for the audit rate) and the audit rate.
    collateral: uint256
    audit_bps: uint256

event ResultSubmitted:
    job_id: indexed(uint256)
    provider: indexed(address)
    result_hash: bytes32
    result_uri: String[256]
    challenge_end: uint256
    draw_round: uint256

event AuditOpened:
    job_id: indexed(uint256)
    provider: indexed(address)
    audit_deadline: uint256

event JobDisputed:
    job_id: indexed(uint256)
    challenger: indexed(address)
    bond: uint256
    audit_deadline: uint256

event VerdictPosted:
    job_id: indexed(uint256)
    valid: bool
    verifier: indexed(address)

event JobFinalized:
    job_id: indexed(uint256)
    provider: indexed(address)
    # The job's USD value and its escrow, all of it burned (Settlement mints the provider's pay).
    usd_value: uint256
    burned: uint256
    # The fee's share of the escrow (tokens): the provider is minted at most `burned - fee`.
    fee: uint256
    # True when an audit ran out of time without a verdict.
    audit_timed_out: bool

event JobFailed:
    job_id: indexed(uint256)
    provider: indexed(address)
    refund: uint256
    user_compensation: uint256
    challenger_reward: uint256
    burned: uint256

event JobCancelled:
    job_id: indexed(uint256)
    user: indexed(address)
    refund: uint256

event JobExpired:
    job_id: indexed(uint256)
    provider: indexed(address)
    refund: uint256
    penalty: uint256

event ParamsSet:
    fee_bps: uint256
    collateral_bps: uint256
    challenge_window: uint256
    audit_timeout: uint256
    min_accept_window: uint256
    max_accept_window: uint256
    min_complete_within: uint256
    max_complete_within: uint256
    dispute_bond_bps: uint256
    min_dispute_bond: uint256
    noshow_penalty_bps: uint256
    user_compensation_bps: uint256
    challenger_reward_bps: uint256
    base_audit_bps: uint256
    new_provider_audit_bps: uint256
    trusted_after_jobs: uint256
    bad_record_audit_bps: uint256
    detection_bps: uint256
    min_reputation_usd: uint256


@deploy
def __init__(
    token: address,
    registry: address,
    settlement: address,
    params_check: address,
    beacon: address,
    initial_params: IJobMarketParams.Params,
):
    assert token != empty(address), "job_market: token is the zero address"
    assert registry != empty(address), "job_market: registry is the zero address"
    assert settlement != empty(address), "job_market: settlement is the zero address"
    access_control.__init__()
    pausable.__init__()
    TOKEN = token
    REGISTRY = registry
    SETTLEMENT = settlement
    PARAMS_CHECK = params_check
    BEACON = beacon
    DRAW_ROUND_SECONDS = staticcall IAuditBeacon(beacon).ROUND_SECONDS()
    _DRAW_LATENCY = DRAW_ROUND_SECONDS + staticcall IAuditBeacon(beacon).REVEAL_WINDOW()
    self._set_params(initial_params)


################################################################
#                        USER ACTIONS                          #
################################################################

@external
def create_job(
    provider: address,
    class_id: uint16,
    spec_hash: bytes32,
    compute_units: uint256,
    max_price_per_unit: uint256,
    accept_window: uint256,
    complete_within: uint256,
    max_tokens: uint256,
) -> uint256:
    """
    @notice Escrows the payment for a job (needs an allowance or a prior permit): the job's
            USD value at the current token price, `Settlement.quote(price per unit) * units`
            (tokens per unit rounded up: at most one wei per unit above the exact amount).
    @param provider The provider whose offer to take, or empty for an open job that any
           provider with an Active machine of the class may accept at `max_price_per_unit`.
    @param max_price_per_unit USD per compute unit (18 decimals). For a targeted job, the
           highest offer accepted (the job is priced at the provider's current offer); for an
           open job, the price paid.
    @param max_tokens The most tokens the caller will escrow (slippage bound on the price).
    @return The new job id.
    """
    return self._create(
        provider, class_id, spec_hash, compute_units, max_price_per_unit, accept_window, complete_within, max_tokens
    )


@external
def create_job_with_permit(
    provider: address,
    class_id: uint16,
    spec_hash: bytes32,
    compute_units: uint256,
    max_price_per_unit: uint256,
    accept_window: uint256,
    complete_within: uint256,
    max_tokens: uint256,
    permit_amount: uint256,
    permit_deadline: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
) -> uint256:
    """
    @notice `create_job` in one transaction from a wallet with no allowance: applies the
            caller's EIP-2612 permit for this contract first.
    @dev The permit call may fail because someone front-ran the same signature onto the
         token (that sets the same allowance): its failure is ignored and the transfer
         decides, with "transfer failed" if the allowance is still short.
    """
    permit_ok: bool = raw_call(
        TOKEN,
        abi_encode(
            msg.sender, self, permit_amount, permit_deadline, v, r, s,
            method_id=method_id("permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"),
        ),
        revert_on_failure=False,
    )
    return self._create(
        provider, class_id, spec_hash, compute_units, max_price_per_unit, accept_window, complete_within, max_tokens
    )


@external
def create_jobs(
    provider: address,
    class_id: uint16,
    spec_hashes: DynArray[bytes32, MAX_BATCH],
    compute_units: DynArray[uint256, MAX_BATCH],
    max_price_per_unit: uint256,
    accept_window: uint256,
    complete_within: uint256,
    max_tokens: uint256,
) -> DynArray[uint256, MAX_BATCH]:
    """
    @notice Batch form of `create_job`: the same provider, class, price and windows for
            every job; one token transfer for the total, bounded by `max_tokens`.
    @return The new job ids, in order.
    """
    pausable._require_not_paused()
    self._check_batch(len(spec_hashes), len(compute_units))
    price: uint256 = self._price(provider, class_id, max_price_per_unit, accept_window, complete_within)
    unit_tokens: uint256 = staticcall ISettlement(SETTLEMENT).quote(price)
    ids: DynArray[uint256, MAX_BATCH] = []
    total: uint256 = 0
    for i: uint256 in range(len(spec_hashes), bound=MAX_BATCH):
        job_id: uint256 = 0
        payment: uint256 = 0
        job_id, payment = self._new_job(
            provider, class_id, spec_hashes[i], compute_units[i], price, unit_tokens, accept_window, complete_within
        )
        ids.append(job_id)
        total += payment
    self._collect(total, max_tokens)
    return ids


@external
def cancel(job_id: uint256, job: IJobMarket.Job):
    """
    @notice The user takes back an Open job's payment. Never paused.
    """
    self._check_open(job_id, job)
    self._check_user(job)
    self._store(job_id, job, STATUS_CANCELLED)
    self._push(job.user, job.payment)
    log JobCancelled(job_id=job_id, user=job.user, refund=job.payment)


@external
def dispute(job_id: uint256, job: IJobMarket.Job):
    """
    @notice The job's user may challenge a submitted result before its challenge window ends
            by posting a bond (see `dispute_bond`). The job waits in Audit for a verdict until
            `audit_deadline`; after that anyone may `finalize` it (provider paid, bond returned).
            Only the user: the party the result was owed to is the only one with standing, and
            a provider watching the mempool cannot dispute first from a second address to
            collect the challenger's share of its own slash (docs/SECURITY.md, finding 4).
    """
    self._check_challengeable(job_id, job)
    self._check_user(job)
    # A drawn job is audited anyway (open_audit), with no bond and no challenger's share.
    self._check_undrawn(job_id, job)
    bond: uint256 = self._dispute_bond(job.payment)
    audit_deadline: uint256 = block.timestamp + self._audit_timeout
    self.disputes[job_id] = Dispute(challenger=msg.sender, bond=bond, audit_deadline=audit_deadline)
    self._store(job_id, job, STATUS_AUDIT)
    self._pull(msg.sender, bond)
    log JobDisputed(job_id=job_id, challenger=msg.sender, bond=bond, audit_deadline=audit_deadline)


@external
def open_audit(job_id: uint256, job: IJobMarket.Job):
    """
    @notice Moves a Submitted job that the draw selected (`audit_drawn`) into Audit. Anyone
            may call (the oracle service does, for every selected job), also after the
            challenge window: a selected job cannot be finalized before its audit opens, and
            an audit that gets no verdict times out into a normal finalize, so the job always
            has an exit. No bond: a sampled audit has no challenger.
    """
    self._check_submitted(job_id, job)
    assert self._drawn(job_id, job), "job_market: job not drawn for audit"
    audit_deadline: uint256 = block.timestamp + self._audit_timeout
    self.disputes[job_id] = Dispute(challenger=empty(address), bond=0, audit_deadline=audit_deadline)
    self._store(job_id, job, STATUS_AUDIT)
    log AuditOpened(job_id=job_id, provider=job.provider, audit_deadline=audit_deadline)


################################################################
#                      PROVIDER ACTIONS                        #
################################################################

@external
def accept(job_id: uint256, job: IJobMarket.Job, machine_id: uint256):
    """
    @notice The caller takes the job on one of its Active machines of the job's class and
            locks `job.collateral` of its free stake.
    """
    pausable._require_not_paused()
    audit_bps: uint256 = self._audit_rate(msg.sender)
    collateral: uint256 = self._accept(job_id, job, machine_id, audit_bps)
    extcall IProviderRegistry(REGISTRY).lock_collateral(msg.sender, machine_id, job.class_id, collateral)


@external
def accept_jobs(job_ids: DynArray[uint256, MAX_BATCH], jobs: DynArray[IJobMarket.Job, MAX_BATCH], machine_id: uint256):
    """
    @notice Batch form of `accept`, all on one machine; one collateral lock for the total.
    """
    pausable._require_not_paused()
    self._check_batch(len(job_ids), len(jobs))
    total: uint256 = 0
    class_id: uint16 = jobs[0].class_id
    audit_bps: uint256 = self._audit_rate(msg.sender)
    for i: uint256 in range(len(job_ids), bound=MAX_BATCH):
        assert jobs[i].class_id == class_id, "job_market: class mismatch in batch"
        total += self._accept(job_ids[i], jobs[i], machine_id, audit_bps)
    extcall IProviderRegistry(REGISTRY).lock_collateral(msg.sender, machine_id, class_id, total)


@external
def submit_result(job_id: uint256, job: IJobMarket.Job, result_hash: bytes32, result_uri: String[256]):
    """
    @notice The provider commits to the result (content hash) and says where it is served.
            Opens the challenge window. Never paused: a provider must always be able to deliver.
    """
    self._submit(job_id, job, result_hash, result_uri)


@external
def submit_results(
    job_ids: DynArray[uint256, MAX_BATCH],
    jobs: DynArray[IJobMarket.Job, MAX_BATCH],
    result_hashes: DynArray[bytes32, MAX_BATCH],
    result_uris: DynArray[String[256], MAX_BATCH],
):
    """
    @notice Batch form of `submit_result`.
    """
    self._check_batch(len(job_ids), len(jobs))
    self._check_batch(len(job_ids), len(result_hashes))
    self._check_batch(len(job_ids), len(result_uris))
    for i: uint256 in range(len(job_ids), bound=MAX_BATCH):
        self._submit(job_ids[i], jobs[i], result_hashes[i], result_uris[i])


################################################################
#                    KEEPER (anyone) ACTIONS                   #
################################################################

@external
def finalize(job_id: uint256, job: IJobMarket.Job):
    """
    @notice Settles a Submitted job whose challenge window is over, or an Audit whose
            deadline passed without a verdict (provider paid, challenger's bond returned).
    """
    self._finalize(job_id, job)


@external
def finalize_many(job_ids: DynArray[uint256, MAX_BATCH], jobs: DynArray[IJobMarket.Job, MAX_BATCH]):
    """
    @notice Batch form of `finalize`; reverts if any job is not ready. Each run of
            consecutive jobs of one provider is settled with one burn, one mint (the cap
            applies to the run's sums) and one collateral unlock (JobFinalized is still
            logged per job).
    """
    self._check_batch(len(job_ids), len(jobs))
    payee: address = empty(address)
    burned: uint256 = 0
    usd_net: uint256 = 0
    cap: uint256 = 0
    unlock: uint256 = 0
    count: uint256 = 0
    for i: uint256 in range(len(job_ids), bound=MAX_BATCH):
        if jobs[i].provider != payee:
            self._pay_out(payee, burned, usd_net, cap, unlock, count)
            payee = jobs[i].provider
            burned = 0
            usd_net = 0
            cap = 0
            unlock = 0
            count = 0
        job_usd: uint256 = 0
        job_cap: uint256 = 0
        job_usd, job_cap = self._close_finalized(job_ids[i], jobs[i])
        burned += jobs[i].payment
        usd_net += job_usd
        cap += job_cap
        unlock += jobs[i].collateral
        count += self._counts(jobs[i].usd_value)
    self._pay_out(payee, burned, usd_net, cap, unlock, count)


@external
def expire(job_id: uint256, job: IJobMarket.Job):
    """
    @notice Ends a job whose deadline passed: an Open job past `accept_by` is Cancelled
            (full refund); a Running job past `complete_by` is Expired (full refund, plus
            the no-show penalty slashed from the provider's collateral to the user).
    """
    status: uint8 = self._load(job_id, job)
    if status == STATUS_OPEN:
        assert block.timestamp > job.accept_by, "job_market: acceptance window open"
        self._store(job_id, job, STATUS_CANCELLED)
        self._push(job.user, job.payment)
        log JobCancelled(job_id=job_id, user=job.user, refund=job.payment)
    elif status == STATUS_RUNNING:
        assert block.timestamp > job.complete_by, "job_market: job not overdue"
        self._store(job_id, job, STATUS_EXPIRED)
        self._push(job.user, job.payment)
        extcall IProviderRegistry(REGISTRY).unlock_collateral(job.provider, job.collateral, 1 << _REP_EXPIRED)
        penalty: uint256 = job.collateral * self._noshow_penalty_bps // MAX_BPS
        if penalty > 0:
            penalty = extcall IProviderRegistry(REGISTRY).slash(job.provider, penalty, _REASON_NO_SHOW, job.user)
        log JobExpired(job_id=job_id, provider=job.provider, refund=job.payment, penalty=penalty)
    else:
        raise "job_market: job cannot expire"


################################################################
#                            VIEWS                             #
################################################################

@external
@view
def job_status(job_id: uint256) -> uint8:
    return convert(self._jobs[job_id] & 255, uint8)


@external
@view
def job_commitment(job_id: uint256) -> bytes32:
    """
    @notice The stored commitment (status byte cleared); compare with `hash_job`.
    """
    return convert((self._jobs[job_id] >> 8) << 8, bytes32)


@external
@view
def check_job(job_id: uint256, job: IJobMarket.Job) -> bool:
    """
    @notice True when `job` is the current data of `job_id`.
    """
    stored: uint256 = self._jobs[job_id]
    return stored != 0 and (stored >> 8) == (self._commit(job, 0) >> 8)


@external
@view
def params() -> IJobMarketParams.Params:
    """
    @notice The current protocol parameters.
    """
    return IJobMarketParams.Params(
        fee_bps=self._hot(_FEE_BPS_SHIFT, _MASK_16),
        collateral_bps=self._hot(_COLLATERAL_BPS_SHIFT, _MASK_24),
        challenge_window=self._hot(_CHALLENGE_WINDOW_SHIFT, _MASK_24),
        audit_timeout=self._audit_timeout,
        min_accept_window=self._hot(_MIN_ACCEPT_WINDOW_SHIFT, _MASK_24),
        max_accept_window=self._hot(_MAX_ACCEPT_WINDOW_SHIFT, _MASK_24),
        min_complete_within=self._hot(_MIN_COMPLETE_WITHIN_SHIFT, _MASK_24),
        max_complete_within=self._hot(_MAX_COMPLETE_WITHIN_SHIFT, _MASK_24),
        dispute_bond_bps=self._dispute_bond_bps,
        min_dispute_bond=self._min_dispute_bond,
        noshow_penalty_bps=self._noshow_penalty_bps,
        user_compensation_bps=self._user_compensation_bps,
        challenger_reward_bps=self._challenger_reward_bps,
        base_audit_bps=self._hot(_BASE_AUDIT_SHIFT, _MASK_16),
        new_provider_audit_bps=self._hot(_NEW_AUDIT_SHIFT, _MASK_16),
        trusted_after_jobs=self._hot(_TRUSTED_AFTER_SHIFT, _MASK_16),
        bad_record_audit_bps=self._hot(_BAD_RECORD_AUDIT_SHIFT, _MASK_16),
        detection_bps=self._hot(_DETECTION_SHIFT, _MASK_16),
        min_reputation_usd=self._min_reputation_usd,
    )


@external
@view
def dispute_bond(payment: uint256) -> uint256:
    return self._dispute_bond(payment)


@external
@view
def audit_rate(provider: address) -> uint256:
    """
    @notice Audit probability (basis points) a job accepted now by `provider` would get.
    """
    return self._audit_rate(provider)


@external
@view
def required_collateral(payment: uint256, minimum: uint256, audit_bps: uint256) -> uint256:
    """
    @notice Collateral locked at acceptance for a job of `payment` whose creation-time
            collateral is `minimum`, at audit rate `audit_bps`.
    """
    return self._required_collateral(payment, minimum, audit_bps)


@external
@view
def audit_drawn(job_id: uint256, job: IJobMarket.Job) -> bool:
    """
    @notice True when a Submitted job was selected for audit: `open_audit` may be called,
            and `dispute` and `finalize` refuse it. False while its
            beacon round is pending (not fully revealed, reveal window open); True for every
            job of a degraded round (not fully revealed in time) with a non-zero audit rate.
    """
    if self._load(job_id, job) != STATUS_SUBMITTED:
        return False
    return self._drawn(job_id, job)


@external
@view
def quote(provider: address, class_id: uint16, compute_units: uint256) -> uint256:
    """
    @notice USD value (18 decimals) of a job at `provider`'s current offer (0 if it has
            none); the tokens escrowed now are `Settlement.quote(offer) * compute_units`.
    """
    return staticcall IProviderRegistry(REGISTRY).offers(provider, class_id) * compute_units


################################################################
#                        ROLE-GATED                            #
################################################################

@external
def post_verdict(job_id: uint256, job: IJobMarket.Job, valid: bool):
    """
    @notice Verifier only, while the job is in Audit and before its deadline.
            valid: provider paid, challenger's bond goes to the provider.
            invalid: user refunded; collateral slashed (user compensation, challenger
            reward, rest burned); challenger's bond returned.
    """
    access_control._check_role(VERIFIER_ROLE, msg.sender)
    status: uint8 = self._load(job_id, job)
    assert status == STATUS_AUDIT, "job_market: job not in audit"
    d: Dispute = self.disputes[job_id]
    assert block.timestamp <= d.audit_deadline, "job_market: audit deadline passed"
    self.disputes[job_id] = empty(Dispute)
    log VerdictPosted(job_id=job_id, valid=valid, verifier=msg.sender)
    if valid:
        self._store(job_id, job, STATUS_FINALIZED)
        usd_net: uint256 = 0
        cap: uint256 = 0
        usd_net, cap = self._settle(job_id, job, False)
        record: uint256 = (1 << _REP_AUDITS_PASSED) + self._counts(job.usd_value)
        if d.challenger != empty(address):
            record += 1 << _REP_DISPUTES_WON
            # The challenger's bond goes to the provider it wrongly accused.
            self._push(job.provider, d.bond)
        self._pay_out(job.provider, job.payment, usd_net, cap, job.collateral, record)
        return

    self._store(job_id, job, STATUS_FAILED)
    record: uint256 = 1 << _REP_FAILED
    if d.challenger != empty(address):
        record += 1 << _REP_DISPUTES_LOST
    self._push(job.user, job.payment)
    if d.bond > 0:
        self._push(d.challenger, d.bond)
    extcall IProviderRegistry(REGISTRY).unlock_collateral(job.provider, job.collateral, record)
    compensation: uint256 = job.collateral * self._user_compensation_bps // MAX_BPS
    reward: uint256 = 0
    # Audits opened by sampling (the job-verification issue) have no challenger to reward.
    if d.challenger != empty(address):
        reward = job.collateral * self._challenger_reward_bps // MAX_BPS
    burn: uint256 = job.collateral - compensation - reward
    if compensation > 0:
        compensation = extcall IProviderRegistry(REGISTRY).slash(
            job.provider, compensation, _REASON_INVALID_RESULT, job.user
        )
    if reward > 0:
        reward = extcall IProviderRegistry(REGISTRY).slash(
            job.provider, reward, _REASON_INVALID_RESULT, d.challenger
        )
    if burn > 0:
        burn = extcall IProviderRegistry(REGISTRY).slash(job.provider, burn, _REASON_INVALID_RESULT, empty(address))
    log JobFailed(
        job_id=job_id,
        provider=job.provider,
        refund=job.payment,
        user_compensation=compensation,
        challenger_reward=reward,
        burned=burn,
    )


@external
def set_params(new_params: IJobMarketParams.Params):
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._set_params(new_params)


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
@pure
def _commit(job: IJobMarket.Job, status: uint8) -> uint256:
    # 248 bits of keccak256 keep 124-bit collision resistance; the low byte holds the status.
    return ((convert(keccak256(abi_encode(job)), uint256) >> 8) << 8) | convert(status, uint256)


@internal
@view
def _load(job_id: uint256, job: IJobMarket.Job) -> uint8:
    stored: uint256 = self._jobs[job_id]
    assert stored != 0, "job_market: unknown job"
    assert (stored >> 8) == (self._commit(job, 0) >> 8), "job_market: job data mismatch"
    return convert(stored & 255, uint8)


@internal
def _store(job_id: uint256, job: IJobMarket.Job, status: uint8):
    self._jobs[job_id] = self._commit(job, status)


@internal
def _create(
    provider: address,
    class_id: uint16,
    spec_hash: bytes32,
    compute_units: uint256,
    max_price_per_unit: uint256,
    accept_window: uint256,
    complete_within: uint256,
    max_tokens: uint256,
) -> uint256:
    pausable._require_not_paused()
    price: uint256 = self._price(provider, class_id, max_price_per_unit, accept_window, complete_within)
    job_id: uint256 = 0
    payment: uint256 = 0
    unit_tokens: uint256 = staticcall ISettlement(SETTLEMENT).quote(price)
    job_id, payment = self._new_job(
        provider, class_id, spec_hash, compute_units, price, unit_tokens, accept_window, complete_within
    )
    self._collect(payment, max_tokens)
    return job_id


@internal
@view
def _audit_rate(provider: address) -> uint256:
    # Base rate; at least the new-provider rate until `trusted_after_jobs` completions; plus
    # `bad_record_audit_bps` per failed or expired job on record; at most 100%.
    # The packed parameters are read once (one SLOAD) for the four fields used here.
    w: uint256 = staticcall IProviderRegistry(REGISTRY).reputation_word(provider)
    hot: uint256 = self._hot_params
    p: uint256 = (hot >> _BASE_AUDIT_SHIFT) & _MASK_16
    if (w >> _REP_COMPLETED) & _MASK_40 < (hot >> _TRUSTED_AFTER_SHIFT) & _MASK_16:
        p = max(p, (hot >> _NEW_AUDIT_SHIFT) & _MASK_16)
    bad: uint256 = ((w >> _REP_FAILED) & _MASK_40) + ((w >> _REP_EXPIRED) & _MASK_40)
    return min(MAX_BPS, p + bad * ((hot >> _BAD_RECORD_AUDIT_SHIFT) & _MASK_16))


@internal
@view
def _required_collateral(payment: uint256, minimum: uint256, audit_bps: uint256) -> uint256:
    # Cheating must never pay (docs/ECONOMICS.md): with audit rate p, detection d, payment R
    # forfeited and collateral S slashed when caught, and gain G <= R from skipping the work,
    # p*d*(R + S) >= R  <=>  S >= R * (1/(p*d) - 1). In basis points, rounded up (the user's side).
    # With p = 0 only disputes protect the user and the creation-time floor applies.
    if audit_bps == 0:
        return minimum
    pd: uint256 = audit_bps * self._hot(_DETECTION_SHIFT, _MASK_16)
    # MAX_BPS**2 / pd >= 1 since both factors are <= MAX_BPS; the subtraction cannot underflow.
    needed: uint256 = (payment * (MAX_BPS * MAX_BPS) + pd - 1) // pd - payment
    return max(minimum, needed)


@internal
@view
def _drawn(job_id: uint256, job: IJobMarket.Job) -> bool:
    # AuditBeacon's seed for the job's round, unknown to everyone when the result was committed.
    # A degraded round (not fully revealed in time) audits every job drawn from it, so a silent,
    # bribed or censored operator can only add audits. Pending rounds draw nothing yet; the
    # challenge window outlasts them (`_set_params`), so `finalize` never sees one.
    if job.audit_bps == 0:
        return False
    state: uint8 = 0
    seed: bytes32 = empty(bytes32)
    state, seed = staticcall IAuditBeacon(BEACON).draw_seed(job.draw_round)
    if state == _ROUND_DEGRADED:
        return True
    if state != _ROUND_READY:
        return False
    return convert(keccak256(abi_encode(seed, job_id)), uint256) % MAX_BPS < job.audit_bps


@internal
@view
def _price(
    provider: address, class_id: uint16, max_price_per_unit: uint256, accept_window: uint256, complete_within: uint256
) -> uint256:
    # Parameters are read field by field: copying the struct would cost 13 cold slot reads.
    assert staticcall IProviderRegistry(REGISTRY).class_exists(class_id), "job_market: unknown class"
    assert accept_window >= self._hot(_MIN_ACCEPT_WINDOW_SHIFT, _MASK_24), "job_market: accept window too short"
    assert accept_window <= self._hot(_MAX_ACCEPT_WINDOW_SHIFT, _MASK_24), "job_market: accept window too long"
    assert complete_within >= self._hot(_MIN_COMPLETE_WITHIN_SHIFT, _MASK_24), "job_market: completion time too short"
    assert complete_within <= self._hot(_MAX_COMPLETE_WITHIN_SHIFT, _MASK_24), "job_market: completion time too long"
    if provider == empty(address):
        assert max_price_per_unit > 0, "job_market: price is zero"
        return max_price_per_unit
    offer: uint256 = staticcall IProviderRegistry(REGISTRY).offers(provider, class_id)
    assert offer > 0, "job_market: provider has no offer"
    assert offer <= max_price_per_unit, "job_market: offer above max price"
    return offer


@internal
def _new_job(
    provider: address,
    class_id: uint16,
    spec_hash: bytes32,
    compute_units: uint256,
    price: uint256,
    unit_tokens: uint256,
    accept_window: uint256,
    complete_within: uint256,
) -> (uint256, uint256):
    # Returns (job id, tokens escrowed). `unit_tokens` = Settlement.quote(price): the tokens per
    # compute unit at the current price, rounded up (so a batch reads the price once).
    assert spec_hash != empty(bytes32), "job_market: spec hash is empty"
    assert compute_units > 0, "job_market: compute units is zero"
    usd_value: uint256 = price * compute_units
    payment: uint256 = unit_tokens * compute_units
    # Rounded up: the collateral errs on the side of the user.
    collateral: uint256 = (payment * self._hot(_COLLATERAL_BPS_SHIFT, _MASK_24) + MAX_BPS - 1) // MAX_BPS
    job: IJobMarket.Job = IJobMarket.Job(
        user=msg.sender,
        provider=provider,
        machine_id=0,
        class_id=class_id,
        spec_hash=spec_hash,
        compute_units=compute_units,
        payment=payment,
        usd_value=usd_value,
        collateral=collateral,
        fee_bps=self._hot(_FEE_BPS_SHIFT, _MASK_16),
        accept_by=block.timestamp + accept_window,
        complete_within=complete_within,
        complete_by=0,
        result_hash=empty(bytes32),
        challenge_end=0,
        audit_bps=0,
        draw_round=0,
    )
    job_id: uint256 = self.job_count + 1
    self.job_count = job_id
    self._store(job_id, job, STATUS_OPEN)
    log JobCreated(
        job_id=job_id,
        user=msg.sender,
        provider=provider,
        class_id=class_id,
        spec_hash=spec_hash,
        compute_units=compute_units,
        payment=payment,
        usd_value=usd_value,
        collateral=collateral,
        fee_bps=job.fee_bps,
        accept_by=job.accept_by,
        complete_within=complete_within,
    )
    return job_id, payment


@internal
def _accept(job_id: uint256, job: IJobMarket.Job, machine_id: uint256, audit_bps: uint256) -> uint256:
    # Returns the collateral to lock (the caller locks the total once).
    self._check_open(job_id, job)
    assert block.timestamp <= job.accept_by, "job_market: acceptance window over"
    if job.provider != empty(address):
        assert msg.sender == job.provider, "job_market: job is for another provider"
    new_job: IJobMarket.Job = job
    new_job.provider = msg.sender
    new_job.machine_id = machine_id
    new_job.complete_by = block.timestamp + job.complete_within
    new_job.audit_bps = audit_bps
    new_job.collateral = self._required_collateral(job.payment, job.collateral, audit_bps)
    self._store(job_id, new_job, STATUS_RUNNING)
    log JobAccepted(
        job_id=job_id,
        provider=msg.sender,
        machine_id=machine_id,
        complete_by=new_job.complete_by,
        collateral=new_job.collateral,
        audit_bps=audit_bps,
    )
    return new_job.collateral


@internal
def _submit(job_id: uint256, job: IJobMarket.Job, result_hash: bytes32, result_uri: String[256]):
    status: uint8 = self._load(job_id, job)
    assert status == STATUS_RUNNING, "job_market: job not running"
    assert msg.sender == job.provider, "job_market: caller is not the provider"
    assert block.timestamp <= job.complete_by, "job_market: completion deadline passed"
    assert result_hash != empty(bytes32), "job_market: result hash is empty"
    new_job: IJobMarket.Job = job
    new_job.result_hash = result_hash
    new_job.challenge_end = block.timestamp + self._hot(_CHALLENGE_WINDOW_SHIFT, _MASK_24)
    new_job.draw_round = block.timestamp // DRAW_ROUND_SECONDS + 1
    self._store(job_id, new_job, STATUS_SUBMITTED)
    log ResultSubmitted(
        job_id=job_id,
        provider=msg.sender,
        result_hash=result_hash,
        result_uri=result_uri,
        challenge_end=new_job.challenge_end,
        draw_round=new_job.draw_round,
    )


@internal
def _finalize(job_id: uint256, job: IJobMarket.Job):
    usd_net: uint256 = 0
    cap: uint256 = 0
    usd_net, cap = self._close_finalized(job_id, job)
    self._pay_out(job.provider, job.payment, usd_net, cap, job.collateral, self._counts(job.usd_value))


@internal
def _close_finalized(job_id: uint256, job: IJobMarket.Job) -> (uint256, uint256):
    # Checks that a job may be finalized, marks it Finalized, returns a timed-out audit's bond
    # and settles it; the caller calls `_pay_out` (once per run of one provider's jobs in
    # `finalize_many`). Returns `_settle`'s (usd_net, cap).
    status: uint8 = self._load(job_id, job)
    d: Dispute = empty(Dispute)
    if status == STATUS_SUBMITTED:
        assert block.timestamp > job.challenge_end, "job_market: challenge window open"
        self._check_undrawn(job_id, job)
    elif status == STATUS_AUDIT:
        d = self.disputes[job_id]
        assert block.timestamp > d.audit_deadline, "job_market: audit in progress"
        # Written rule (docs/PROTOCOL.md): an audit that times out neither slashes the provider
        # nor forfeits the bond; the submitted result stands and the challenger gets its bond back.
        self.disputes[job_id] = empty(Dispute)
    else:
        raise "job_market: job not finalizable"
    self._store(job_id, job, STATUS_FINALIZED)
    if d.bond > 0:
        self._push(d.challenger, d.bond)
    return self._settle(job_id, job, status == STATUS_AUDIT)


@internal
def _settle(job_id: uint256, job: IJobMarket.Job, audit_timed_out: bool) -> (uint256, uint256):
    # THE settlement rule, in one place (docs/ECONOMICS.md, "Settlement"): the whole escrow is
    # burned and the provider is minted the job's USD value minus the fee at the settlement
    # price, at most the escrow minus the fee (`Settlement.settle`). Returns (usd_net, cap) for
    # `_pay_out`, which may sum them over a run of one provider's jobs. Rounds down: the fee
    # errs in the provider's favour.
    fee: uint256 = job.payment * job.fee_bps // MAX_BPS
    log JobFinalized(
        job_id=job_id,
        provider=job.provider,
        usd_value=job.usd_value,
        burned=job.payment,
        fee=fee,
        audit_timed_out=audit_timed_out,
    )
    return job.usd_value - job.usd_value * job.fee_bps // MAX_BPS, job.payment - fee


@internal
def _pay_out(provider: address, burned: uint256, usd_net: uint256, cap: uint256, collateral: uint256, record: uint256):
    # Settles what `_settle` gave a provider (summed over a run of `completed` jobs in
    # `finalize_many`): burns the escrow, has Settlement mint the provider's pay, releases the
    # collateral and adds `record` (packed reputation increments) to the provider's record;
    # nothing for the empty provider before the first run of a batch.
    if provider == empty(address):
        return
    extcall IComputeToken(TOKEN).burn(burned)
    extcall ISettlement(SETTLEMENT).settle(provider, burned, usd_net, cap)
    extcall IProviderRegistry(REGISTRY).unlock_collateral(provider, collateral, record)


@internal
@view
def _check_challengeable(job_id: uint256, job: IJobMarket.Job):
    # A Submitted job inside its challenge window (dispute).
    self._check_submitted(job_id, job)
    assert block.timestamp <= job.challenge_end, "job_market: challenge window over"


@internal
@view
def _check_submitted(job_id: uint256, job: IJobMarket.Job):
    assert self._load(job_id, job) == STATUS_SUBMITTED, "job_market: job not submitted"


@internal
@view
def _check_open(job_id: uint256, job: IJobMarket.Job):
    assert self._load(job_id, job) == STATUS_OPEN, "job_market: job not open"


@internal
@view
def _check_user(job: IJobMarket.Job):
    assert msg.sender == job.user, "job_market: caller is not the user"


@internal
@view
def _check_undrawn(job_id: uint256, job: IJobMarket.Job):
    assert not self._drawn(job_id, job), "job_market: job drawn for audit"


@internal
def _collect(amount: uint256, max_tokens: uint256):
    # The caller's escrow for what it creates, bounded by its slippage limit.
    assert amount <= max_tokens, "job_market: payment above max tokens"
    self._pull(msg.sender, amount)


@internal
@pure
def _check_batch(n: uint256, m: uint256):
    assert n > 0, "job_market: empty batch"
    assert n == m, "job_market: length mismatch"


@internal
@view
def _counts(usd_value: uint256) -> uint256:
    # 1 when a finalized job of `usd_value` counts as `completed` (the reputation increment).
    if usd_value >= self._min_reputation_usd:
        return 1
    return 0


@internal
@view
def _hot(offset: uint256, mask: uint256) -> uint256:
    return (self._hot_params >> offset) & mask


@internal
@view
def _dispute_bond(payment: uint256) -> uint256:
    return max(self._min_dispute_bond, payment * self._dispute_bond_bps // MAX_BPS)


@internal
def _pull(owner: address, amount: uint256):
    assert extcall IERC20(TOKEN).transferFrom(owner, self, amount, default_return_value=True), \
        "job_market: transfer failed"


@internal
def _push(to: address, amount: uint256):
    if amount > 0:
        assert extcall IERC20(TOKEN).transfer(to, amount, default_return_value=True), "job_market: transfer failed"




@internal
def _set_params(p: IJobMarketParams.Params):
    # Bounds and reasons: JobMarketParams.check (reverts with "job_market: ..." reasons).
    assert staticcall IJobMarketParams(PARAMS_CHECK).check(p)
    assert p.challenge_window > _DRAW_LATENCY, "job_market: challenge window ends before the audit draw"
    self._hot_params = (
        (p.fee_bps << _FEE_BPS_SHIFT)
        | (p.collateral_bps << _COLLATERAL_BPS_SHIFT)
        | (p.challenge_window << _CHALLENGE_WINDOW_SHIFT)
        | (p.min_accept_window << _MIN_ACCEPT_WINDOW_SHIFT)
        | (p.max_accept_window << _MAX_ACCEPT_WINDOW_SHIFT)
        | (p.min_complete_within << _MIN_COMPLETE_WITHIN_SHIFT)
        | (p.max_complete_within << _MAX_COMPLETE_WITHIN_SHIFT)
        | (p.base_audit_bps << _BASE_AUDIT_SHIFT)
        | (p.new_provider_audit_bps << _NEW_AUDIT_SHIFT)
        | (p.trusted_after_jobs << _TRUSTED_AFTER_SHIFT)
        | (p.bad_record_audit_bps << _BAD_RECORD_AUDIT_SHIFT)
        | (p.detection_bps << _DETECTION_SHIFT)
    )
    self._audit_timeout = p.audit_timeout
    self._dispute_bond_bps = p.dispute_bond_bps
    self._min_dispute_bond = p.min_dispute_bond
    self._noshow_penalty_bps = p.noshow_penalty_bps
    self._user_compensation_bps = p.user_compensation_bps
    self._challenger_reward_bps = p.challenger_reward_bps
    self._min_reputation_usd = p.min_reputation_usd
    log ParamsSet(
        fee_bps=p.fee_bps,
        collateral_bps=p.collateral_bps,
        challenge_window=p.challenge_window,
        audit_timeout=p.audit_timeout,
        min_accept_window=p.min_accept_window,
        max_accept_window=p.max_accept_window,
        min_complete_within=p.min_complete_within,
        max_complete_within=p.max_complete_within,
        dispute_bond_bps=p.dispute_bond_bps,
        min_dispute_bond=p.min_dispute_bond,
        noshow_penalty_bps=p.noshow_penalty_bps,
        user_compensation_bps=p.user_compensation_bps,
        challenger_reward_bps=p.challenger_reward_bps,
        base_audit_bps=p.base_audit_bps,
        new_provider_audit_bps=p.new_provider_audit_bps,
        trusted_after_jobs=p.trusted_after_jobs,
        bad_record_audit_bps=p.bad_record_audit_bps,
        detection_bps=p.detection_bps,
        min_reputation_usd=p.min_reputation_usd,
    )
