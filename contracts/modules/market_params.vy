# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title JobMarket's protocol parameters: storage, packing and the rules derived from them
@custom:contract-name market_params
@license AGPL-3.0-only
@notice Bounds and reasons are checked by JobMarketParams (a pure contract that reverts with
        JobMarket's "job_market: ..." reasons). The values every job reads are packed in one
        word (`_hot_params`), so creating or submitting a job reads one slot, not twelve.
"""

from interfaces import IJobMarketParams
from modules import reputation
from modules import hot_params

# Basis-point denominator.
MAX_BPS: public(constant(uint256)) = 10_000

# The guardian's pause flag lives in the hot word's top bit (hot_params.PAUSED): every path it
# guards (create and accept) reads that word anyway, so checking it costs no extra storage read.
# This is snekmate's `pausable` (same reasons, same events) moved into that word, for 2.1k gas
# per create and per accept (a separate slot is one more cold read each).

# Checks parameter sets (bounds and reasons) for `set_params`.
PARAMS_CHECK: public(immutable(address))

# The seven values every job reads, packed into one word (one SLOAD per job, not seven).
_hot_params: uint256
# Every parameter as set (the cold ones are read from here; `params()` returns it whole).
_p: IJobMarketParams.Params

event Paused:
    account: address

event Unpaused:
    account: address

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
def __init__(params_check: address):
    PARAMS_CHECK = params_check


@external
@view
def paused() -> bool:
    """
    @notice True while the guardian has paused new jobs (create and accept).
    """
    return self._hot_params & hot_params.PAUSED != 0


@external
@view
def params() -> IJobMarketParams.Params:
    """
    @notice The current protocol parameters.
    """
    return self._p


@external
@view
def dispute_bond(payment: uint256) -> uint256:
    return self._dispute_bond(payment)


@external
@view
def required_collateral(payment: uint256, minimum: uint256, audit_bps: uint256) -> uint256:
    """
    @notice Collateral locked at acceptance for a job of `payment` whose creation-time
            collateral is `minimum`, at audit rate `audit_bps`.
    """
    return self._required_collateral(payment, minimum, audit_bps)


@internal
@view
def _audit_rate_for(w: uint256) -> uint256:
    # The audit rate of a provider whose reputation word is `w`: the base rate; at least the
    # new-provider rate until `trusted_after_jobs` completions; plus `bad_record_audit_bps`
    # per failed or expired job on record; at most 100%. One SLOAD for the four fields.
    hot: uint256 = self._hot_params
    p: uint256 = (hot >> hot_params.BASE_AUDIT_SHIFT) & hot_params.MASK_16
    if (w >> reputation.COMPLETED) & reputation.MASK < (hot >> hot_params.TRUSTED_AFTER_SHIFT) & hot_params.MASK_16:
        p = max(p, (hot >> hot_params.NEW_AUDIT_SHIFT) & hot_params.MASK_16)
    bad: uint256 = ((w >> reputation.FAILED) & reputation.MASK) + ((w >> reputation.EXPIRED) & reputation.MASK)
    return min(MAX_BPS, p + bad * ((hot >> hot_params.BAD_RECORD_AUDIT_SHIFT) & hot_params.MASK_16))


@internal
@view
def _required_collateral(payment: uint256, minimum: uint256, audit_bps: uint256) -> uint256:
    # Cheating must never pay (docs/ECONOMICS.md): with audit rate p, detection d, payment R
    # forfeited and collateral S slashed when caught, and gain G <= R from skipping the work,
    # p*d*(R + S) >= R  <=>  S >= R * (1/(p*d) - 1). In basis points, rounded up (the user's side).
    # With p = 0 only disputes protect the user and the creation-time floor applies.
    if audit_bps == 0:
        return minimum
    pd: uint256 = audit_bps * self._hot(hot_params.DETECTION_SHIFT, hot_params.MASK_16)
    # MAX_BPS**2 / pd >= 1 since both factors are <= MAX_BPS; the subtraction cannot underflow.
    needed: uint256 = (payment * (MAX_BPS * MAX_BPS) + pd - 1) // pd - payment
    return max(minimum, needed)


@internal
@view
def _collateral_floor(payment: uint256) -> uint256:
    # The creation-time collateral, rounded up: it errs on the side of the user.
    return (payment * self._hot(hot_params.COLLATERAL_BPS_SHIFT, hot_params.MASK_24) + MAX_BPS - 1) // MAX_BPS


@internal
@view
def _fee_bps() -> uint256:
    return self._hot(hot_params.FEE_BPS_SHIFT, hot_params.MASK_16)


@internal
@view
def _challenge_window() -> uint256:
    return self._hot(hot_params.CHALLENGE_WINDOW_SHIFT, hot_params.MASK_24)


@internal
@view
def _check_windows(accept_window: uint256, complete_within: uint256):
    assert accept_window >= self._hot(hot_params.MIN_ACCEPT_WINDOW_SHIFT, hot_params.MASK_24), "job_market: accept window too short"
    assert accept_window <= self._hot(hot_params.MAX_ACCEPT_WINDOW_SHIFT, hot_params.MASK_24), "job_market: accept window too long"
    self._check_complete_within(complete_within)


@internal
@view
def _check_complete_within(complete_within: uint256):
    assert complete_within >= self._hot(hot_params.MIN_COMPLETE_WITHIN_SHIFT, hot_params.MASK_24), "job_market: completion time too short"
    assert complete_within <= self._hot(hot_params.MAX_COMPLETE_WITHIN_SHIFT, hot_params.MASK_24), "job_market: completion time too long"


@internal
@view
def _hot(offset: uint256, mask: uint256) -> uint256:
    return (self._hot_params >> offset) & mask


@internal
@view
def _dispute_bond(payment: uint256) -> uint256:
    return max(self._p.min_dispute_bond, payment * self._p.dispute_bond_bps // MAX_BPS)


@internal
def _set(p: IJobMarketParams.Params):
    # Bounds and reasons ("job_market: ...") and the packing: JobMarketParams.pack. The pause
    # flag stays as it is.
    self._hot_params = (self._hot_params & hot_params.PAUSED) | staticcall IJobMarketParams(PARAMS_CHECK).pack(p)
    self._p = p
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


@internal
@view
def _require_not_paused():
    assert self._hot_params & hot_params.PAUSED == 0, "pausable: contract is paused"


@internal
def _pause():
    self._require_not_paused()
    self._hot_params |= hot_params.PAUSED
    log Paused(account=msg.sender)


@internal
def _unpause():
    assert self._hot_params & hot_params.PAUSED != 0, "pausable: contract is not paused"
    self._hot_params &= ~hot_params.PAUSED
    log Unpaused(account=msg.sender)
