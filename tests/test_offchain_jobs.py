"""offchain.chain.jobs: rebuilding the Job struct from events, as every off-chain actor does."""

import pytest
from conftest import PRICE, UNITS

from offchain.chain.beacon import ROUND_DEGRADED, audit_draw, draw_round
from offchain.chain.jobs import as_tuple, check_job, commitment, job_from_chain


def test_job_from_chain__submitted_job__matches_commitment(submitted_job, market, jobs):
    job_id, _ = submitted_job
    rebuilt = job_from_chain(market, job_id)
    assert rebuilt == jobs[job_id]
    # The job's USD value (offer x units) and its escrow at $1.00 a token (conftest).
    assert rebuilt["usd_value"] == rebuilt["payment"] == UNITS * PRICE
    assert check_job(market, job_id, as_tuple(rebuilt))
    assert commitment(rebuilt) == market.job_commitment(job_id)


@pytest.mark.parametrize("field", ["payment", "usd_value"])
def test_job_from_chain__tampered_struct__fails_check(submitted_job, market, jobs, field):
    job_id, _ = submitted_job
    tampered = dict(jobs[job_id], **{field: jobs[job_id][field] + 1})
    assert not check_job(market, job_id, as_tuple(tampered))


def test_job_from_chain__unknown_job__raises_lookup_error(market):
    with pytest.raises(LookupError, match="no JobCreated or OrderFilled event"):
        job_from_chain(market, 999)


def test_audit_draw__mirrors_the_market_on_the_beacon(submitted_job, market, deployment, jobs, chain):
    """offchain.chain.beacon.audit_draw: None before submission and while the job's round is
    pending, False at p = 0, True for an audited job of a degraded round (the session beacon has
    no members, so every round degrades), also from `now` before a block exists past the window."""
    beacon = deployment.beacon
    job_id, _ = submitted_job
    job = jobs[job_id]
    r = job["draw_round"]
    assert r == draw_round(chain.blocks.head.timestamp, beacon.ROUND_SECONDS())
    audited = dict(job, audit_bps=5_000)  # as the job of a provider with a 50% audit rate
    deadline = r * beacon.ROUND_SECONDS() + beacon.REVEAL_WINDOW()
    assert audit_draw(beacon, job_id, dict(job, draw_round=0)) is None
    assert audit_draw(beacon, job_id, audited) is None
    assert audit_draw(beacon, job_id, audited, now=deadline) is None
    assert audit_draw(beacon, job_id, audited, now=deadline + 1) is True
    assert audit_draw(beacon, job_id, job) is market.audit_drawn(job_id, jobs.t(job_id)) is False  # p = 0 here
    chain.mine(timestamp=deadline + 1)
    assert tuple(beacon.draw_seed(r))[0] == ROUND_DEGRADED
    assert audit_draw(beacon, job_id, audited) is True
    assert audit_draw(beacon, job_id, job) is market.audit_drawn(job_id, jobs.t(job_id)) is False
