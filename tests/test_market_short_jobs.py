"""JobMarket.accept_and_submit: a short job the provider has already run is taken and delivered
in one transaction. It must leave exactly the state that `accept` then `submit_result` in the
same block would (same events, same struct, same collateral), keep every check of both, and be
paused with `accept`.
"""

import ape
import market_helpers
from conftest import COMPLETE_WITHIN, UNIT_PARAMS
from market_helpers import RESULT, assert_books, assert_job, credit, ev, no_change

from offchain.chain.jobs import as_tuple
from offchain.constants import MAX_BPS, JobStatus

snap = market_helpers.snap
ledger = market_helpers.ledger
settlement = market_helpers.settlement

P = UNIT_PARAMS
URI = "http://p/result"


def _ts(chain, tx):
    return chain.blocks[tx.block_number].timestamp


def test_accept_and_submit__targeted__same_state_as_accept_then_submit(
    make_provider, make_job, market, registry, token, jobs, chain, provider, user, ledger
):
    machine_id = make_provider(provider)
    job_id, job = make_job(user)
    collateral = job["payment"] * P.collateral_bps // MAX_BPS
    ledger.mark()
    tx = jobs.track(market.accept_and_submit(job_id, jobs.t(job_id), machine_id, RESULT, URI, sender=provider))
    now = _ts(chain, tx)
    assert ev(tx, market.JobAccepted) == {
        "job_id": job_id,
        "provider": provider.address,
        "machine_id": machine_id,
        "complete_by": now + COMPLETE_WITHIN,
        "collateral": collateral,
        "audit_bps": 0,
    }
    assert ev(tx, market.ResultSubmitted) == {
        "job_id": job_id,
        "provider": provider.address,
        "result_hash": RESULT,
        "result_uri": URI,
        "challenge_end": now + P.challenge_window,
        "draw_round": now // market.DRAW_ROUND_SECONDS() + 1,
    }
    assert_job(market, jobs, job_id, JobStatus.SUBMITTED)
    assert registry.locked(provider) == collateral
    ledger.expect()  # no tokens move until settlement
    assert_books(market, token, jobs)


def test_accept_and_submit__then_finalize_and_claim__pays_like_two_step(
    make_provider, make_job, market, registry, token, jobs, chain, provider, user, keeper
):
    machine_id = make_provider(provider)
    job_id, _ = make_job(user)
    jobs.track(market.accept_and_submit(job_id, jobs.t(job_id), machine_id, RESULT, URI, sender=provider))
    chain.pending_timestamp = jobs[job_id]["challenge_end"] + 1
    before = token.balanceOf(provider)
    tx = jobs.track(market.finalize(job_id, jobs.t(job_id), sender=keeper))
    fin = ev(tx, market.JobFinalized)
    assert fin["burned"] == jobs[job_id]["payment"]
    assert tuple(market.accrued(provider)) == credit(jobs, [job_id])
    assert token.balanceOf(provider) == before  # credited; paid at the claim
    market.claim(provider, sender=keeper)
    assert token.balanceOf(provider) - before == fin["burned"] - fin["fee"]  # $1 per token in conftest
    assert registry.locked(provider) == 0
    assert_job(market, jobs, job_id, JobStatus.FINALIZED)


def test_accept_and_submit__open_job__any_active_provider(
    make_provider, make_job, market, registry, jobs, provider, provider2, user
):
    make_provider(provider)
    machine2 = make_provider(provider2, price=0)
    job_id, _ = make_job(user, target=False)
    jobs.track(market.accept_and_submit(job_id, jobs.t(job_id), machine2, RESULT, URI, sender=provider2))
    assert jobs[job_id]["provider"] == provider2.address
    assert_job(market, jobs, job_id, JobStatus.SUBMITTED)
    assert registry.locked(provider2) > 0 and registry.locked(provider) == 0


def test_accept_and_submit__keeps_every_check(
    make_provider, make_job, market, jobs, chain, provider, provider2, user, snap
):
    machine_id = make_provider(provider)
    machine2 = make_provider(provider2)
    job_id, job = make_job(user)
    with no_change(snap):
        with ape.reverts("job_market: job is for another provider"):
            market.accept_and_submit(job_id, jobs.t(job_id), machine2, RESULT, URI, sender=provider2)
        with ape.reverts("job_market: result hash is empty"):
            market.accept_and_submit(job_id, jobs.t(job_id), machine_id, b"\x00" * 32, URI, sender=provider)
        tampered = dict(job, payment=job["payment"] - 1)
        with ape.reverts("job_market: job data mismatch"):
            market.accept_and_submit(job_id, as_tuple(tampered), machine_id, RESULT, URI, sender=provider)
    chain.pending_timestamp = job["accept_by"] + 1
    with no_change(snap), ape.reverts("job_market: acceptance window over"):
        market.accept_and_submit(job_id, jobs.t(job_id), machine_id, RESULT, URI, sender=provider)


def test_accept_and_submit__twice_or_after_accept__reverts(make_provider, make_job, market, jobs, provider, user, snap):
    machine_id = make_provider(provider)
    job_id, _ = make_job(user)
    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    with no_change(snap), ape.reverts("job_market: job not open"):
        market.accept_and_submit(job_id, jobs.t(job_id), machine_id, RESULT, URI, sender=provider)


def test_accept_and_submit__paused__reverts_like_accept(
    make_provider, make_job, market, jobs, deployer, provider, user
):
    machine_id = make_provider(provider)
    job_id, _ = make_job(user)
    market.pause(sender=deployer)
    with ape.reverts():
        market.accept_and_submit(job_id, jobs.t(job_id), machine_id, RESULT, URI, sender=provider)
    market.unpause(sender=deployer)
    jobs.track(market.accept_and_submit(job_id, jobs.t(job_id), machine_id, RESULT, URI, sender=provider))
    assert_job(market, jobs, job_id, JobStatus.SUBMITTED)
