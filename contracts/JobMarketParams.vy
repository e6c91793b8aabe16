# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title Bounds on JobMarket's protocol parameters
@custom:contract-name JobMarketParams
@license AGPL-3.0-only
@notice A pure contract: `pack(p)` reverts with JobMarket's own reason ("job_market: ...")
        when a parameter set is out of bounds, and otherwise returns the values every job reads
        packed in one word (modules/hot_params.vy). JobMarket calls it in its constructor and
        in `set_params`; the revert data passes through unchanged.
        It lives apart from JobMarket only to keep that contract's runtime code under
        20,000 bytes (22 checks with their reasons take ~3.6 kB); it holds no state and no
        role, so it cannot be changed or used to block anything.
"""

from interfaces import IJobMarketParams
from modules import hot_params

implements: IJobMarketParams

# Basis-point denominator.
MAX_BPS: public(constant(uint256)) = 10_000
# Hard cap on the protocol fee (20%) so governance cannot confiscate payments.
MAX_FEE_BPS: public(constant(uint256)) = 2_000
# Collateral can be up to 100x the payment (sized from the audit rate at acceptance).
MAX_COLLATERAL_BPS: public(constant(uint256)) = 1_000_000
# Bounds on every window: long enough for a block or two, short enough that nothing waits forever.
MIN_WINDOW_SECONDS: public(constant(uint256)) = 60
MAX_WINDOW_SECONDS: public(constant(uint256)) = 30 * 86400
# `trusted_after_jobs` is packed in 16 bits.
MAX_TRUSTED_AFTER_JOBS: constant(uint256) = 65_535
# Reputation threshold at most $1,000,000 per job (18 decimals).
MAX_REPUTATION_USD: constant(uint256) = 10**24


@external
@pure
def pack(p: IJobMarketParams.Params) -> uint256:
    """
    @notice Reverts with the first bound `p` breaks ("job_market: <reason>").
    @return JobMarket's hot parameter word for `p` (modules/hot_params.vy; pause flag clear).
    """
    assert p.fee_bps <= MAX_FEE_BPS, "job_market: fee too high"
    assert p.collateral_bps > 0, "job_market: collateral is zero"
    assert p.collateral_bps <= MAX_COLLATERAL_BPS, "job_market: collateral too high"
    assert p.challenge_window >= MIN_WINDOW_SECONDS, "job_market: challenge window too short"
    assert p.challenge_window <= MAX_WINDOW_SECONDS, "job_market: challenge window too long"
    assert p.audit_timeout >= MIN_WINDOW_SECONDS, "job_market: audit timeout too short"
    assert p.audit_timeout <= MAX_WINDOW_SECONDS, "job_market: audit timeout too long"
    assert p.min_accept_window >= MIN_WINDOW_SECONDS, "job_market: accept window bounds invalid"
    assert p.min_accept_window <= p.max_accept_window, "job_market: accept window bounds invalid"
    assert p.max_accept_window <= MAX_WINDOW_SECONDS, "job_market: accept window bounds invalid"
    assert p.min_complete_within >= MIN_WINDOW_SECONDS, "job_market: completion bounds invalid"
    assert p.min_complete_within <= p.max_complete_within, "job_market: completion bounds invalid"
    assert p.max_complete_within <= MAX_WINDOW_SECONDS, "job_market: completion bounds invalid"
    assert p.dispute_bond_bps <= MAX_BPS, "job_market: dispute bond too high"
    assert p.noshow_penalty_bps <= MAX_BPS, "job_market: no-show penalty too high"
    assert p.user_compensation_bps + p.challenger_reward_bps <= MAX_BPS, "job_market: slash shares above 100%"
    assert p.base_audit_bps <= MAX_BPS, "job_market: audit rate above 100%"
    assert p.new_provider_audit_bps <= MAX_BPS, "job_market: audit rate above 100%"
    assert p.bad_record_audit_bps <= MAX_BPS, "job_market: audit rate above 100%"
    assert p.trusted_after_jobs <= MAX_TRUSTED_AFTER_JOBS, "job_market: trusted_after_jobs too high"
    assert p.detection_bps >= MAX_BPS // 2, "job_market: detection rate below 50%"
    assert p.detection_bps <= MAX_BPS, "job_market: detection rate above 100%"
    assert p.min_reputation_usd <= MAX_REPUTATION_USD, "job_market: reputation threshold too high"
    # Each field fits its width: the bounds above keep windows below 2**24 and the rest below 2**16.
    return (
        (p.fee_bps << hot_params.FEE_BPS_SHIFT)
        | (p.collateral_bps << hot_params.COLLATERAL_BPS_SHIFT)
        | (p.challenge_window << hot_params.CHALLENGE_WINDOW_SHIFT)
        | (p.min_accept_window << hot_params.MIN_ACCEPT_WINDOW_SHIFT)
        | (p.max_accept_window << hot_params.MAX_ACCEPT_WINDOW_SHIFT)
        | (p.min_complete_within << hot_params.MIN_COMPLETE_WITHIN_SHIFT)
        | (p.max_complete_within << hot_params.MAX_COMPLETE_WITHIN_SHIFT)
        | (p.base_audit_bps << hot_params.BASE_AUDIT_SHIFT)
        | (p.new_provider_audit_bps << hot_params.NEW_AUDIT_SHIFT)
        | (p.trusted_after_jobs << hot_params.TRUSTED_AFTER_SHIFT)
        | (p.bad_record_audit_bps << hot_params.BAD_RECORD_AUDIT_SHIFT)
        | (p.detection_bps << hot_params.DETECTION_SHIFT)
    )
