# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title JobMarket's audit draw, from AuditBeacon's commit-reveal rounds
@custom:contract-name audit_draw
@license AGPL-3.0-only
@notice A result submitted at T is drawn from beacon round T // DRAW_ROUND_SECONDS + 1, whose
        seed nobody can know when the result is committed (docs/SECURITY.md, "The audit draw").
"""

from interfaces import IAuditBeacon
from interfaces import IJobMarket
from modules import market_params

# AuditBeacon.draw_seed round states.
_ROUND_READY: constant(uint8) = 1
_ROUND_DEGRADED: constant(uint8) = 2

# The audit draw's randomness, and its round length.
BEACON: public(immutable(address))
DRAW_ROUND_SECONDS: public(immutable(uint256))
# A round's seed is final this many seconds after the submission at the latest (one round
# plus the beacon's reveal window): the challenge window must be longer.
_DRAW_LATENCY: immutable(uint256)


@deploy
def __init__(beacon: address):
    assert beacon != empty(address), "job_market: beacon is the zero address"
    BEACON = beacon
    DRAW_ROUND_SECONDS = staticcall IAuditBeacon(beacon).ROUND_SECONDS()
    _DRAW_LATENCY = DRAW_ROUND_SECONDS + staticcall IAuditBeacon(beacon).REVEAL_WINDOW()


@internal
@view
def _draw_round() -> uint256:
    # The round a result submitted now is drawn from: the next one, not yet started.
    return block.timestamp // DRAW_ROUND_SECONDS + 1


@internal
@view
def _check_latency(challenge_window: uint256):
    assert challenge_window > _DRAW_LATENCY, "job_market: challenge window ends before the audit draw"


@internal
@view
def _drawn(job_id: uint256, job: IJobMarket.Job) -> bool:
    # AuditBeacon's seed for the job's round, unknown to everyone when the result was committed.
    # A degraded round (not fully revealed in time) audits every job drawn from it, so a silent,
    # bribed or censored operator can only add audits. Pending rounds draw nothing yet; the
    # challenge window outlasts them (`_check_latency`), so `finalize` never sees one.
    if job.audit_bps == 0:
        return False
    state: uint8 = 0
    seed: bytes32 = empty(bytes32)
    state, seed = staticcall IAuditBeacon(BEACON).draw_seed(job.draw_round)
    if state == _ROUND_DEGRADED:
        return True
    if state != _ROUND_READY:
        return False
    return convert(keccak256(abi_encode(seed, job_id)), uint256) % market_params.MAX_BPS < job.audit_bps
