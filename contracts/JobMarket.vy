# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize codesize
"""
@title Job escrow and settlement
@custom:contract-name JobMarket
@license AGPL-3.0-only
@notice Holds users' payments for compute jobs until they are final (and a finalized job's
        escrow until its provider's `claim` burns it and has Settlement mint the pay), locks
        the provider's collateral (in ProviderRegistry) while a job runs, and runs the
        job state machine of docs/PROTOCOL.md:

        Open -accept-> Running -submit_result-> Submitted -window passes-> Finalized
        Submitted, drawn for audit (probability audit_bps) -verdict valid-> Finalized
                                                           -verdict invalid-> Failed
                                                           -audit timeout-> Finalized
        Submitted -dispute (bond)-> Audit -verdict valid-> Finalized
                                   Audit -verdict invalid-> Failed
                                   Audit -audit timeout-> Finalized (bond returned)
        Open -cancel (user) / acceptance deadline passes-> Cancelled (refund)
        Running -completion deadline passes-> Expired (refund + no-show penalty)

        Storage holds one slot per job: the job's keccak256 commitment with its
        status in the low byte (modules/job_store.vy). Callers pass the full `Job`
        struct and the contract checks it against the commitment.

        The source is split along duties: modules/job_store.vy (the job slots),
        modules/market_params.vy (parameters and the rules derived from them),
        modules/audit_draw.vy (the draw), modules/market_funds.vy (escrow and
        burn-and-mint settlement), modules/market_audits.vy (disputes, sampled audits,
        verdicts). This file is the job lifecycle.

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

from interfaces import IJobMarket
from interfaces import IJobMarketParams
from interfaces import IProviderRegistry

interface IJobMarketExt:
    def TOKEN() -> address: view
    def REGISTRY() -> address: view
    def SETTLEMENT() -> address: view
    def PARAMS_CHECK() -> address: view
    def BEACON() -> address: view

from snekmate.auth import access_control
# Role-based access for governance, verifiers and the guardian.
initializes: access_control


from modules import job_store
initializes: job_store

from modules import market_params
initializes: market_params

from modules import audit_draw
initializes: audit_draw

from modules import market_funds
initializes: market_funds

from modules import job_intake
initializes: job_intake[
    job_store := job_store,
    market_params := market_params,
    market_funds := market_funds,
]

from snekmate.utils import eip712_domain_separator
# EIP-712 domain of signed orders: this chain and this contract (immutables, no storage).
initializes: eip712_domain_separator

from modules import job_orders
initializes: job_orders[
    job_store := job_store,
    market_params := market_params,
    market_funds := market_funds,
    audit_draw := audit_draw,
    eip712_domain_separator := eip712_domain_separator,
]

from modules import market_audits
initializes: market_audits[
    job_store := job_store,
    market_params := market_params,
    market_funds := market_funds,
    audit_draw := audit_draw,
    access_control := access_control,
]

exports: (
    market_params.paused,
    job_store.job_count,
    job_store.job_status,
    audit_draw.BEACON,
    market_funds.TOKEN,
    market_funds.SETTLEMENT,
    market_funds.REGISTRY,
    market_funds.claim,
    market_funds.total_burned,
    job_store.MAX_BATCH,
    job_intake.create_job,
    job_intake.create_job_with_permit,
    job_intake.create_jobs,
    eip712_domain_separator.eip712Domain,
    job_orders.ORDER_TYPEHASH,
    job_orders.order_id,
)

# Most bytes a JobMarketExt function returns (its largest answer is `params()`, 19 words).
_EXT_MAX_RETURN: constant(uint256) = 1024

# JobMarketExt (cancel, expire, disputes, verdicts, parameters, pause, roles, views): every
# selector this contract does not have runs there, on this contract's storage (`__default__`).
# Immutable: the code of a deployed market never changes.
EXTENSION: public(immutable(address))

################################################################
#                            EVENTS                            #
################################################################

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


@deploy
def __init__(
    token: address,
    registry: address,
    settlement: address,
    params_check: address,
    beacon: address,
    extension: address,
    initial_params: IJobMarketParams.Params,
):
    access_control.__init__()
    market_funds.__init__(token, registry, settlement)
    market_params.__init__(params_check)
    audit_draw.__init__(beacon)
    eip712_domain_separator.__init__(job_orders.DOMAIN_NAME, job_orders.DOMAIN_VERSION)
    # The extension's code reads its own immutables: they must be this market's.
    ext: IJobMarketExt = IJobMarketExt(extension)
    assert extension.is_contract, "job_market: extension has no code"
    assert (
        staticcall ext.TOKEN() == token
        and staticcall ext.REGISTRY() == registry
        and staticcall ext.SETTLEMENT() == settlement
        and staticcall ext.PARAMS_CHECK() == params_check
        and staticcall ext.BEACON() == beacon
    ), "job_market: extension built for another market"
    EXTENSION = extension
    market_params._set(initial_params)
    market_funds._set_min_reputation(initial_params.min_reputation_usd)
    audit_draw._check_latency(initial_params.challenge_window)


@external
@reentrant
@raw_return
def __default__() -> Bytes[_EXT_MAX_RETURN]:
    """
    @notice Every other JobMarket function (cancel, expire, dispute, post_verdict, set_params,
            pause, roles, views) runs in JobMarketExt on this contract's storage: its return
            data or revert is passed through unchanged. Not itself nonreentrant: the
            extension's functions take this contract's lock (the same transient slot).
    """
    return raw_call(EXTENSION, msg.data, max_outsize=_EXT_MAX_RETURN, is_delegate_call=True)


################################################################
#                      PROVIDER ACTIONS                        #
################################################################

@external
def accept(job_id: uint256, job: IJobMarket.Job, machine_id: uint256):
    """
    @notice The caller takes the job on one of its Active machines of the job's class and
            locks `job.collateral` of its free stake.
    """
    market_params._require_not_paused()
    audit_bps: uint256 = self._audit_rate(msg.sender)
    market_funds._lock(msg.sender, machine_id, job.class_id, self._accept(job_id, job, machine_id, audit_bps))


@external
def accept_jobs(job_ids: DynArray[uint256, job_store.MAX_BATCH], jobs: DynArray[IJobMarket.Job, job_store.MAX_BATCH], machine_id: uint256):
    """
    @notice Batch form of `accept`, all on one machine; one collateral lock for the total.
    """
    market_params._require_not_paused()
    job_store._check_batch(len(job_ids), len(jobs))
    total: uint256 = 0
    class_id: uint16 = jobs[0].class_id
    audit_bps: uint256 = self._audit_rate(msg.sender)
    for i: uint256 in range(len(job_ids), bound=job_store.MAX_BATCH):
        assert jobs[i].class_id == class_id, "job_market: class mismatch in batch"
        total += self._accept(job_ids[i], jobs[i], machine_id, audit_bps)
    market_funds._lock(msg.sender, machine_id, class_id, total)


@external
def submit_result(job_id: uint256, job: IJobMarket.Job, result_hash: bytes32, result_uri: String[256]):
    """
    @notice The provider commits to the result (content hash) and says where it is served.
            Opens the challenge window. Never paused: a provider must always be able to deliver.
    """
    self._submit(job_id, job, result_hash, result_uri)


@external
def submit_results(
    job_ids: DynArray[uint256, job_store.MAX_BATCH],
    jobs: DynArray[IJobMarket.Job, job_store.MAX_BATCH],
    result_hashes: DynArray[bytes32, job_store.MAX_BATCH],
    result_uris: DynArray[String[256], job_store.MAX_BATCH],
):
    """
    @notice Batch form of `submit_result`.
    """
    job_store._check_batch(len(job_ids), len(jobs))
    job_store._check_batch(len(job_ids), len(result_hashes))
    job_store._check_batch(len(job_ids), len(result_uris))
    for i: uint256 in range(len(job_ids), bound=job_store.MAX_BATCH):
        self._submit(job_ids[i], jobs[i], result_hashes[i], result_uris[i])


@external
def accept_and_submit(
    job_id: uint256, job: IJobMarket.Job, machine_id: uint256, result_hash: bytes32, result_uri: String[256]
):
    """
    @notice `accept` and `submit_result` in one transaction, for short jobs the provider has
            already run from the spec (if another provider takes an open job first, or the
            user cancels, it loses only that work). Locks the collateral, fixes the audit rate
            and opens the challenge window at once; the audit is drawn as for any submission.
            Paused with `accept`.
    """
    market_params._require_not_paused()
    running: IJobMarket.Job = self._accepted(job_id, job, machine_id, self._audit_rate(msg.sender))
    submitted: IJobMarket.Job = self._submitted(job_id, running, result_hash, result_uri)
    job_store._store(job_id, submitted, job_store.STATUS_SUBMITTED)
    market_funds._lock(msg.sender, machine_id, job.class_id, submitted.collateral)


@external
def fill_order(
    order: job_orders.Order, signature: Bytes[65], machine_id: uint256, result_hash: bytes32, result_uri: String[256]
) -> uint256:
    """
    @notice Fills a user's signed order on one of the caller's Active machines of its class:
            escrows the payment from the user, locks the collateral and stores the job,
            Submitted with `result_hash` (challenge window open; a short job already run from
            the spec) or Running when `result_hash` is empty (`submit_result` follows).
            Paused with `accept`. See modules/job_orders.vy.
    @param signature The user's EIP-712 signature of `order` (65 bytes, or 64 per EIP-2098).
    @return The job id (`order_id(order)`).
    """
    job_id: uint256 = 0
    collateral: uint256 = 0
    job_id, collateral = job_orders._fill(
        order, signature, machine_id, self._audit_rate(msg.sender), result_hash, result_uri
    )
    market_funds._lock(msg.sender, machine_id, order.class_id, collateral)
    return job_id


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
def finalize_many(job_ids: DynArray[uint256, job_store.MAX_BATCH], jobs: DynArray[IJobMarket.Job, job_store.MAX_BATCH]):
    """
    @notice Batch form of `finalize`; reverts if any job is not ready. Each run of
            consecutive jobs of one provider is settled with one burn, one mint (the cap
            applies to the run's sums) and one collateral unlock (JobFinalized is still
            logged per job).
    """
    job_store._check_batch(len(job_ids), len(jobs))
    payee: address = empty(address)
    burned: uint256 = 0
    usd_net: uint256 = 0
    cap: uint256 = 0
    unlock: uint256 = 0
    count: uint256 = 0
    for i: uint256 in range(len(job_ids), bound=job_store.MAX_BATCH):
        if jobs[i].provider != payee:
            market_funds._pay_out(payee, burned, usd_net, cap, unlock, count)
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
        count += market_funds._counts(jobs[i].usd_value)
    market_funds._pay_out(payee, burned, usd_net, cap, unlock, count)



################################################################
#                          INTERNAL                            #
################################################################

@internal
@view
def _audit_rate(provider: address) -> uint256:
    # Audit probability (basis points) for a job `provider` accepts now, from its reputation.
    return market_params._audit_rate_for(market_funds._reputation(provider))


@internal
def _accept(job_id: uint256, job: IJobMarket.Job, machine_id: uint256, audit_bps: uint256) -> uint256:
    # Returns the collateral to lock (the caller locks the total once).
    new_job: IJobMarket.Job = self._accepted(job_id, job, machine_id, audit_bps)
    job_store._store(job_id, new_job, job_store.STATUS_RUNNING)
    return new_job.collateral


@internal
def _accepted(job_id: uint256, job: IJobMarket.Job, machine_id: uint256, audit_bps: uint256) -> IJobMarket.Job:
    # Checks that the caller may take the Open job and returns it Running (the caller stores it).
    job_store._check_open(job_id, job)
    assert block.timestamp <= job.accept_by, "job_market: acceptance window over"
    if job.provider != empty(address):
        assert msg.sender == job.provider, "job_market: job is for another provider"
    new_job: IJobMarket.Job = job
    new_job.provider = msg.sender
    new_job.machine_id = machine_id
    new_job.complete_by = block.timestamp + job.complete_within
    new_job.audit_bps = audit_bps
    new_job.collateral = market_params._required_collateral(job.payment, job.collateral, audit_bps)
    log JobAccepted(
        job_id=job_id,
        provider=msg.sender,
        machine_id=machine_id,
        complete_by=new_job.complete_by,
        collateral=new_job.collateral,
        audit_bps=audit_bps,
    )
    return new_job


@internal
def _submit(job_id: uint256, job: IJobMarket.Job, result_hash: bytes32, result_uri: String[256]):
    assert job_store._load(job_id, job) == job_store.STATUS_RUNNING, "job_market: job not running"
    job_store._store(job_id, self._submitted(job_id, job, result_hash, result_uri), job_store.STATUS_SUBMITTED)


@internal
def _submitted(job_id: uint256, job: IJobMarket.Job, result_hash: bytes32, result_uri: String[256]) -> IJobMarket.Job:
    # Checks the caller's result for the Running `job` and returns it Submitted (the caller stores it).
    assert msg.sender == job.provider, "job_market: caller is not the provider"
    assert block.timestamp <= job.complete_by, "job_market: completion deadline passed"
    assert result_hash != empty(bytes32), "job_market: result hash is empty"
    new_job: IJobMarket.Job = job
    new_job.result_hash = result_hash
    new_job.challenge_end = block.timestamp + market_params._challenge_window()
    new_job.draw_round = audit_draw._draw_round()
    log ResultSubmitted(
        job_id=job_id,
        provider=msg.sender,
        result_hash=result_hash,
        result_uri=result_uri,
        challenge_end=new_job.challenge_end,
        draw_round=new_job.draw_round,
    )
    return new_job


@internal
def _finalize(job_id: uint256, job: IJobMarket.Job):
    usd_net: uint256 = 0
    cap: uint256 = 0
    usd_net, cap = self._close_finalized(job_id, job)
    market_funds._pay_out(job.provider, job.payment, usd_net, cap, job.collateral, market_funds._counts(job.usd_value))


@internal
def _close_finalized(job_id: uint256, job: IJobMarket.Job) -> (uint256, uint256):
    # Checks that a job may be finalized, marks it Finalized, returns a timed-out audit's bond
    # and settles it; the caller calls `_pay_out` (once per run of one provider's jobs in
    # `finalize_many`). Returns `_settle`'s (usd_net, cap).
    status: uint8 = job_store._load(job_id, job)
    d: market_audits.Dispute = empty(market_audits.Dispute)
    timed_out: bool = False
    if status == job_store.STATUS_SUBMITTED:
        assert block.timestamp > job.challenge_end, "job_market: challenge window open"
        if audit_draw._drawn(job_id, job):
            assert block.timestamp > market_audits._sampled_deadline(job), "job_market: job drawn for audit"
            timed_out = True
    elif status == job_store.STATUS_AUDIT:
        d = market_audits._close_timed_out(job_id)
        timed_out = True
    else:
        raise "job_market: job not finalizable"
    job_store._store(job_id, job, job_store.STATUS_FINALIZED)
    market_funds._push(d.challenger, d.bond)
    return market_funds._settle(job_id, job, timed_out)

