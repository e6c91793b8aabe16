from offchain.constants import JobStatus


def test_lifecycle__happy_path__pays_provider(submitted_job, market, jobs, keeper, chain, token, provider):
    job_id, _ = submitted_job
    job = jobs[job_id]
    before = token.balanceOf(provider)
    chain.mine(timestamp=job["challenge_end"] + 1)
    tx = market.finalize(job_id, jobs.t(job_id), sender=keeper)
    assert market.job_status(job_id) == JobStatus.FINALIZED
    assert token.balanceOf(provider) - before == job["payment"] * 95 // 100
    print("finalize gas", tx.gas_used)
