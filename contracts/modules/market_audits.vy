# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title JobMarket's audits: user disputes, sampled audits and the verifier's verdicts
@custom:contract-name market_audits
@license AGPL-3.0-only
@notice Submitted and drawn for audit (AuditBeacon's seed for its round): the job is in audit
        with no transaction; `post_verdict` until `challenge_end + audit_timeout`, after
        which `finalize` pays the provider (the audit timed out).
        Submitted -dispute (the job's user, bond)-> Audit, until its stored `audit_deadline`.
        post_verdict valid-> Finalized; invalid-> Failed (refund, collateral slashed).
        Audit -audit_deadline passes-> finalize (in JobMarket): provider paid, bond returned.
"""

from interfaces import IJobMarket
from modules import reputation
from modules import job_store
from modules import market_params
from modules import audit_draw
from modules import market_funds
from snekmate.auth import access_control

uses: job_store
uses: market_params
uses: market_funds
uses: audit_draw
uses: access_control

# Posts audit verdicts: held by the oracle quorum (OracleHub).
VERIFIER_ROLE: public(constant(bytes32)) = keccak256("VERIFIER_ROLE")

_REASON_INVALID_RESULT: constant(bytes32) = keccak256("INVALID_RESULT")


struct Dispute:
    challenger: address
    bond: uint256
    audit_deadline: uint256


# Open disputes, by job id (a sampled audit has no entry: its deadline is derived from the job).
disputes: public(HashMap[uint256, Dispute])


event JobDisputed:
    job_id: indexed(uint256)
    challenger: indexed(address)
    bond: uint256
    audit_deadline: uint256

event VerdictPosted:
    job_id: indexed(uint256)
    valid: bool
    verifier: indexed(address)

event JobFailed:
    job_id: indexed(uint256)
    provider: indexed(address)
    refund: uint256
    user_compensation: uint256
    challenger_reward: uint256
    burned: uint256


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
    job_store._check_submitted(job_id, job)
    assert block.timestamp <= job.challenge_end, "job_market: challenge window over"
    job_store._check_user(job)
    # A drawn job is audited anyway, with no bond and no challenger's share.
    self._check_undrawn(job_id, job)
    bond: uint256 = market_params._dispute_bond(job.payment)
    audit_deadline: uint256 = block.timestamp + market_params._p.audit_timeout
    self.disputes[job_id] = Dispute(challenger=msg.sender, bond=bond, audit_deadline=audit_deadline)
    job_store._store(job_id, job, job_store.STATUS_AUDIT)
    market_funds._pull(msg.sender, bond)
    log JobDisputed(job_id=job_id, challenger=msg.sender, bond=bond, audit_deadline=audit_deadline)


@external
def post_verdict(job_id: uint256, job: IJobMarket.Job, valid: bool):
    """
    @notice Verifier only: a disputed job (Audit) before its `audit_deadline`, or a Submitted
            job drawn for audit before `challenge_end + audit_timeout`.
            valid: provider paid, challenger's bond goes to the provider.
            invalid: user refunded; collateral slashed (user compensation, challenger
            reward, rest burned); challenger's bond returned.
    """
    access_control._check_role(VERIFIER_ROLE, msg.sender)
    status: uint8 = job_store._load(job_id, job)
    d: Dispute = empty(Dispute)
    if status == job_store.STATUS_AUDIT:
        d = self.disputes[job_id]
        assert block.timestamp <= d.audit_deadline, "job_market: audit deadline passed"
        self.disputes[job_id] = empty(Dispute)
    else:
        # A sampled audit needs no opening: the draw itself puts a Submitted job in audit.
        assert status == job_store.STATUS_SUBMITTED and audit_draw._drawn(job_id, job), "job_market: job not in audit"
        assert block.timestamp <= self._sampled_deadline(job), "job_market: audit deadline passed"
    log VerdictPosted(job_id=job_id, valid=valid, verifier=msg.sender)
    if valid:
        job_store._store(job_id, job, job_store.STATUS_FINALIZED)
        usd_net: uint256 = 0
        cap: uint256 = 0
        usd_net, cap = market_funds._settle(job_id, job, False)
        record: uint256 = 1 << reputation.AUDITS_PASSED
        if d.challenger != empty(address):
            record += 1 << reputation.DISPUTES_WON
            # The challenger's bond goes to the provider it wrongly accused.
            market_funds._push(job.provider, d.bond)
        # The audit's record now; the collateral and the completed count with the next claim.
        market_funds._release(job.provider, 0, record)
        market_funds._pay_out(job.provider, job.payment, usd_net, cap, job.collateral, market_funds._counts(job.usd_value))
        return

    job_store._store(job_id, job, job_store.STATUS_FAILED)
    record: uint256 = 1 << reputation.FAILED
    if d.challenger != empty(address):
        record += 1 << reputation.DISPUTES_LOST
    market_funds._push(job.user, job.payment)
    market_funds._push(d.challenger, d.bond)
    market_funds._release(job.provider, job.collateral, record)
    compensation: uint256 = job.collateral * market_params._p.user_compensation_bps // market_params.MAX_BPS
    reward: uint256 = 0
    # Audits opened by sampling (the job-verification issue) have no challenger to reward.
    if d.challenger != empty(address):
        reward = job.collateral * market_params._p.challenger_reward_bps // market_params.MAX_BPS
    burn: uint256 = job.collateral - compensation - reward
    compensation = market_funds._slash(job.provider, compensation, _REASON_INVALID_RESULT, job.user)
    reward = market_funds._slash(job.provider, reward, _REASON_INVALID_RESULT, d.challenger)
    burn = market_funds._slash(job.provider, burn, _REASON_INVALID_RESULT, empty(address))
    log JobFailed(
        job_id=job_id,
        provider=job.provider,
        refund=job.payment,
        user_compensation=compensation,
        challenger_reward=reward,
        burned=burn,
    )


@external
@view
def audit_drawn(job_id: uint256, job: IJobMarket.Job) -> bool:
    """
    @notice True when a Submitted job was selected for audit: it awaits a verdict until
            `challenge_end + audit_timeout` (after that it stays True, but `post_verdict`
            refuses it and `finalize` pays it as a timed-out audit), and `dispute` refuses it. False while its beacon round is pending
            (not fully revealed, reveal window open); True for every job of a degraded round
            (not fully revealed in time) with a non-zero audit rate.
    """
    if job_store._load(job_id, job) != job_store.STATUS_SUBMITTED:
        return False
    return audit_draw._drawn(job_id, job)


@internal
@view
def _check_undrawn(job_id: uint256, job: IJobMarket.Job):
    assert not audit_draw._drawn(job_id, job), "job_market: job drawn for audit"


@internal
@view
def _sampled_deadline(job: IJobMarket.Job) -> uint256:
    # A drawn job's audit ends audit_timeout after its challenge window: the draw is known
    # before the window ends (audit_draw._check_latency), so auditors get at least the
    # audit_timeout in force. Not stored: a (timelocked) set_params changing audit_timeout
    # moves the deadline of the drawn jobs in flight (docs/SECURITY.md).
    return job.challenge_end + market_params._p.audit_timeout


@internal
def _close_timed_out(job_id: uint256) -> Dispute:
    # Written rule (docs/PROTOCOL.md): an audit that times out neither slashes the provider
    # nor forfeits the bond; the submitted result stands and the challenger gets its bond back.
    d: Dispute = self.disputes[job_id]
    assert block.timestamp > d.audit_deadline, "job_market: audit in progress"
    self.disputes[job_id] = empty(Dispute)
    return d
