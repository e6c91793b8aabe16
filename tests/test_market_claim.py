"""JobMarket.claim: finalizing credits the provider; `claim(provider)` burns the credited escrow
and has Settlement mint the provider its pay, once for every job finalized since its last claim.

Anyone may claim for a provider and the tokens always go to the provider. Other files cover the
rest of the claim's rules: the price and the cap (test_settlement.py, test_market_lifecycle.py),
sums over runs (test_finalize_many_payout.py), verdicts and timed-out audits
(test_market_disputes.py), paused markets (test_market_admin.py), slashed or exited providers and
failed jobs (test_attacks_v2.py), the Emissions taper (test_emissions.py) and every sequence of
them (tests/fuzz/test_stateful_market.py).
"""

import ape
import market_helpers
from market_helpers import assert_books, ev, no_change

from offchain.constants import MAX_BPS

snap = market_helpers.snap
ledger = market_helpers.ledger
settlement = market_helpers.settlement

RESULT = b"\x22" * 32


def _finalized(market, jobs, make_job, machine_id, provider, user, chain, keeper, n=1):
    ids = []
    for i in range(n):
        job_id, _ = make_job(user, target=provider, spec_hash=bytes([0x40 + i]) * 32)
        jobs.track(market.accept_and_submit(job_id, jobs.t(job_id), machine_id, RESULT, "r", sender=provider))
        ids.append(job_id)
    chain.pending_timestamp = max(jobs[i]["challenge_end"] for i in ids) + 1
    jobs.track(market.finalize_many(ids, [jobs.t(i) for i in ids], sender=keeper))
    return ids


def test_claim__by_a_stranger__pays_the_provider_not_the_caller(
    make_provider, make_job, market, token, settlement, jobs, chain, provider, user, keeper, attacker, ledger
):
    machine_id = make_provider(provider)
    ids = _finalized(market, jobs, make_job, machine_id, provider, user, chain, keeper, n=2)
    escrow = sum(jobs[i]["payment"] for i in ids)
    fees = sum(jobs[i]["payment"] * jobs[i]["fee_bps"] // MAX_BPS for i in ids)
    ledger.mark()
    tx = market.claim(provider, sender=attacker)
    e = ev(tx, settlement.Settled)
    assert (e["provider"], e["burned"], e["minted"]) == (provider.address, escrow, escrow - fees)
    ledger.expect(provider=escrow - fees, market=-escrow, supply=-fees, settled=escrow)
    assert market.accrued(provider) == (0, 0, 0)
    assert_books(market, token, jobs)


def test_claim__nothing_credited__reverts_and_moves_nothing(
    make_provider, make_job, market, jobs, chain, provider, provider2, user, keeper, snap
):
    # A provider that never finished a job, the zero address, and a provider right after its
    # claim: nothing to burn, nothing to mint.
    machine_id = make_provider(provider)
    _finalized(market, jobs, make_job, machine_id, provider, user, chain, keeper)
    market.claim(provider, sender=keeper)
    for who in (provider, provider2, "0x" + "00" * 20):
        with no_change(snap), ape.reverts("job_market: nothing to claim"):
            market.claim(who, sender=keeper)


def test_claim__one_provider__leaves_anothers_credit_untouched(
    make_provider, make_job, market, token, jobs, chain, provider, provider2, user, keeper
):
    m1 = make_provider(provider)
    m2 = make_provider(provider2)
    _finalized(market, jobs, make_job, m1, provider, user, chain, keeper)
    ids2 = _finalized(market, jobs, make_job, m2, provider2, user, chain, keeper)
    credit2 = tuple(market.accrued(provider2))
    assert credit2[0] == jobs[ids2[0]]["payment"]
    market.claim(provider, sender=provider2)
    assert tuple(market.accrued(provider2)) == credit2
    assert_books(market, token, jobs)
