"""offchain.chain.jobs: rebuilding the Job struct from events, as every off-chain actor does."""

import pytest

from offchain.chain.jobs import as_tuple, commitment, job_from_chain


def test_job_from_chain__submitted_job__matches_commitment(submitted_job, market, jobs):
    job_id, _ = submitted_job
    rebuilt = job_from_chain(market, job_id)
    assert rebuilt == jobs[job_id]
    assert market.check_job(job_id, as_tuple(rebuilt))
    assert commitment(rebuilt) == market.job_commitment(job_id)


def test_job_from_chain__tampered_struct__fails_check(submitted_job, market, jobs):
    job_id, _ = submitted_job
    tampered = dict(jobs[job_id], payment=jobs[job_id]["payment"] + 1)
    assert not market.check_job(job_id, as_tuple(tampered))


def test_job_from_chain__unknown_job__raises_lookup_error(market):
    with pytest.raises(LookupError, match="no JobCreated event"):
        job_from_chain(market, 999)
