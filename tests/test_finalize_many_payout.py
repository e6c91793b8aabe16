"""finalize_many credits each run of one provider's jobs with one accrual and one unlock; each
provider's claim then burns and mints once for all its runs.

The end state must equal finalizing the same jobs one by one: the credits (`accrued`), locked
collateral, the providers' reputation in ProviderRegistry, the market's `total_burned`, the
disputing user's bond, job statuses; and after both providers claim, their balances, the supply
and the token's and Settlement's burn/mint counters (the fees burned). JobFinalized is still per
job.
"""

import ape
import pytest
from conftest import UNIT_PARAMS

from offchain.constants import JobStatus

RESULT = b"\x22" * 32


@pytest.fixture
def mixed_batch(make_provider, make_job, market, jobs, chain, provider, provider2, user):
    """Submitted jobs of provider, provider, provider2, provider (two runs of provider), and the
    last of them disputed by its user and past its audit deadline: ids in that order."""
    m1 = make_provider(provider)
    m2 = make_provider(provider2)
    plan = [(provider, m1), (provider, m1), (provider2, m2), (provider, m1)]
    ids = []
    for n, (prov, machine) in enumerate(plan):
        job_id, _ = make_job(user, target=prov, units=1_000 + 7 * n, spec_hash=bytes([n + 1]) * 32)
        jobs.track(market.accept(job_id, jobs.t(job_id), machine, sender=prov))
        jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=prov))
        ids.append(job_id)
    market.dispute(ids[-1], jobs.t(ids[-1]), sender=user)
    deadline = market.disputes(ids[-1]).audit_deadline
    chain.mine(timestamp=max(deadline, max(jobs[i]["challenge_end"] for i in ids)) + 1)
    return ids


def _state(registry, token, settlement, accounts_, market=None):
    return {
        "accrued": [tuple(market.accrued(a)) for a in accounts_] if market else None,
        "counted": market.total_burned() if market else None,
        "balances": [token.balanceOf(a) for a in accounts_],
        "locked": [registry.locked(a) for a in accounts_],
        "staked": [registry.staked(a) for a in accounts_],
        "reputation": [tuple(registry.reputation(a)) for a in accounts_],
        "supply": token.totalSupply(),
        "minted_burned": (token.total_minted(), token.total_burned()),
        "settled": settlement.total_burned(),
    }


def test_finalize_many__mixed_providers_and_audit_timeout__same_end_state_as_one_by_one(
    mixed_batch, deployment, market, registry, token, jobs, chain, provider, provider2, keeper, user, user2
):
    ids = mixed_batch
    settlement = deployment.settlement
    who = [provider, provider2, keeper, user, user2, market]
    before = _state(registry, token, settlement, who)
    snapshot = chain.snapshot()
    for job_id in ids:
        market.finalize(job_id, jobs.t(job_id), sender=keeper)
    credited = _state(registry, token, settlement, who, market)
    claims_one_by_one = [market.claim(p, sender=keeper) for p in (provider, provider2)]
    one_by_one = _state(registry, token, settlement, who, market)
    chain.restore(snapshot)

    tx = market.finalize_many(ids, [jobs.t(i) for i in ids], sender=keeper)
    assert _state(registry, token, settlement, who, market) == credited
    assert tx.decode_logs(settlement.Settled) == []
    claims = [market.claim(p, sender=keeper) for p in (provider, provider2)]
    assert _state(registry, token, settlement, who, market) == one_by_one
    assert [dict(c.decode_logs(settlement.Settled)[0].event_arguments) for c in claims] == [
        dict(c.decode_logs(settlement.Settled)[0].event_arguments) for c in claims_one_by_one
    ]
    # At $1 the whole escrow is burned and the supply falls by exactly the fees.
    payments = [jobs[i]["payment"] for i in ids]
    fees = [p * jobs[i]["fee_bps"] // 10_000 for i, p in zip(ids, payments, strict=True)]
    assert one_by_one["supply"] == before["supply"] - sum(fees)
    assert one_by_one["settled"] == before["settled"] + sum(payments)
    assert [market.job_status(i) for i in ids] == [JobStatus.FINALIZED] * len(ids)
    assert registry.locked(provider) == 0 and registry.locked(provider2) == 0
    # Every job is worth at least $1 (1,000+ units at PRICE): each counts once, in either form.
    assert all(jobs[i]["usd_value"] >= UNIT_PARAMS.min_reputation_usd for i in ids)
    assert tuple(registry.reputation(provider)) == (3, 0, 0, 0, 0, 0)
    assert tuple(registry.reputation(provider2)) == (1, 0, 0, 0, 0, 0)

    finalized = [dict(log.event_arguments) for log in tx.decode_logs(market.JobFinalized)]
    assert [e["job_id"] for e in finalized] == ids
    for e, job_id in zip(finalized, ids, strict=True):
        job = jobs[job_id]
        fee = job["payment"] * job["fee_bps"] // 10_000
        assert (e["provider"], e["usd_value"], e["burned"], e["fee"]) == (
            job["provider"],
            job["usd_value"],
            job["payment"],
            fee,
        )
        assert e["audit_timed_out"] == (job_id == ids[-1])
    # One claim per provider, each minting all its jobs' escrow minus fees (at $1).
    per_provider = [ids[:2] + ids[3:], ids[2:3]]
    settled = [dict(c.decode_logs(settlement.Settled)[0].event_arguments) for c in claims]
    assert [(s["provider"], s["burned"], s["minted"]) for s in settled] == [
        (
            jobs[own[0]]["provider"],
            sum(payments[ids.index(i)] for i in own),
            sum(payments[ids.index(i)] - fees[ids.index(i)] for i in own),
        )
        for own in per_provider
    ]
    # Finalizing releases no collateral; each provider's claim releases all of its jobs' at once.
    assert tx.decode_logs(registry.CollateralUnlocked) == []
    unlocks = [dict(c.decode_logs(registry.CollateralUnlocked)[0].event_arguments) for c in claims]
    assert [(u["provider"], u["amount"]) for u in unlocks] == [
        (provider.address, sum(jobs[i]["collateral"] for i in per_provider[0])),
        (provider2.address, jobs[ids[2]]["collateral"]),
    ]
    assert market.disputes(ids[-1]).bond == 0


def test_finalize_many__one_job_not_ready__reverts_whole_batch(
    make_provider, make_job, market, jobs, token, provider, user, keeper
):
    machine = make_provider(provider)
    ids = []
    for n in range(2):
        job_id, _ = make_job(user, spec_hash=bytes([n + 1]) * 32)
        jobs.track(market.accept(job_id, jobs.t(job_id), machine, sender=provider))
        jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=provider))
        ids.append(job_id)
    before = token.balanceOf(provider)
    with ape.reverts("job_market: challenge window open"):
        market.finalize_many(ids, [jobs.t(i) for i in ids], sender=keeper)
    assert token.balanceOf(provider) == before
    assert [market.job_status(i) for i in ids] == [JobStatus.SUBMITTED] * 2
