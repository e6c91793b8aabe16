"""offchain.chain.jobs: rebuilding the Job struct from events, as every off-chain actor does."""

import pytest
from conftest import PRICE, UNITS

from offchain.chain.jobs import as_tuple, commitment, job_from_chain


def test_job_from_chain__submitted_job__matches_commitment(submitted_job, market, jobs):
    job_id, _ = submitted_job
    rebuilt = job_from_chain(market, job_id)
    assert rebuilt == jobs[job_id]
    # The job's USD value (offer x units) and its escrow at $1.00 a token (conftest).
    assert rebuilt["usd_value"] == rebuilt["payment"] == UNITS * PRICE
    assert market.check_job(job_id, as_tuple(rebuilt))
    assert commitment(rebuilt) == market.job_commitment(job_id)


@pytest.mark.parametrize("field", ["payment", "usd_value"])
def test_job_from_chain__tampered_struct__fails_check(submitted_job, market, jobs, field):
    job_id, _ = submitted_job
    tampered = dict(jobs[job_id], **{field: jobs[job_id][field] + 1})
    assert not market.check_job(job_id, as_tuple(tampered))


def test_job_from_chain__unknown_job__raises_lookup_error(market):
    with pytest.raises(LookupError, match="no JobCreated event"):
        job_from_chain(market, 999)


def test_audit_draw__none_before_submission_and_after_the_window(submitted_job, market, jobs, chain):
    from offchain.chain.jobs import audit_draw

    job_id, _ = submitted_job
    job = jobs[job_id]
    chain.mine(1)
    assert audit_draw(chain, job_id, job) is market.audit_drawn(job_id, jobs.t(job_id)) is False  # p = 0 here
    assert audit_draw(chain, job_id, dict(job, draw_block=0)) is None
    chain.mine(256)
    assert audit_draw(chain, job_id, job) is None
