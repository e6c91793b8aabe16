"""JobMarket.claim: finalizing credits the provider; `claim(provider)` burns the credited escrow
and has Settlement mint the provider its pay, once for every job finalized since its last claim.

Every way a job is finalized (finalize, finalize_many, a valid verdict, a timed-out audit) only
credits `accrued(provider)`: (escrow, USD value minus fees, escrow minus fees), and moves no token.
The claim, open to anyone and never paused, burns the escrow and mints the provider
`min(usd_net / price_at_claim, cap)` over the sums (the cap when the price is stale or missing).
These tests attack the claim itself: who calls it and who is paid, claiming twice, claiming
nothing, the price at the claim, a paused market, a provider that left or was slashed, other
providers' credit, and the books after every step. Other files check each finalizing path's
credit (test_market_lifecycle.py, test_finalize_many_payout.py, test_market_disputes.py,
test_market_audits.py), the attacks on accruals (test_attacks_v2.py), the Emissions taper
(test_emissions.py) and every sequence of them (tests/fuzz/test_stateful_market.py).

Amounts: conftest's $1.00 per token and $1 jobs (1 token of escrow, fee 5%).
"""

import ape
import market_helpers
import pytest
from conftest import SETTLEMENT_MAX_AGE, UNITS, USD_PER_TOKEN
from market_helpers import RESULT, ZERO_ADDRESS, assert_books, credit, ev, evs, no_change

snap = market_helpers.snap
ledger = market_helpers.ledger
settlement = market_helpers.settlement

NOTHING = "job_market: nothing to claim"
GAS = 1_000_000


def _submitted(market, jobs, make_job, machine, provider, payer, n=1, units=UNITS):
    """`n` jobs of `provider` paid by `payer`, accepted and submitted at once: their ids."""
    ids = []
    for _ in range(n):
        # Distinct specs: JobMarket does not care, but the tests read the jobs apart.
        job_id, _ = make_job(payer, target=provider, units=units, spec_hash=bytes([len(jobs) + 1]) * 32)
        jobs.track(market.accept_and_submit(job_id, jobs.t(job_id), machine, RESULT, "r", sender=provider))
        ids.append(job_id)
    return ids


def _finalize(market, jobs, chain, keeper, ids):
    """Finalizes `ids` in one finalize_many once their challenge windows are over."""
    chain.pending_timestamp = max(chain.pending_timestamp, max(jobs[i]["challenge_end"] for i in ids) + 1)
    return jobs.track(market.finalize_many(ids, [jobs.t(i) for i in ids], sender=keeper))


def _books(market, token, jobs):
    """The market holds escrow + bonds + unclaimed credit + dust; the supply is what was minted
    less what was burned."""
    assert_books(market, token, jobs)
    assert token.totalSupply() == token.total_minted() - token.total_burned()


def _claimed(tx, settlement, provider, want, minted, price):
    """The claim's one Settled event settles `want` = (burned, usd_net, cap) for `provider`."""
    e = ev(tx, settlement.Settled)
    assert (e["provider"], e["burned"], e["usd_net"], e["cap"]) == (provider.address, *want)
    assert (e["minted"], e["price"]) == (minted, price)


@pytest.fixture
def machine(make_provider, provider):
    return make_provider(provider)


################################################################
#                 who claims, who is paid, when                #
################################################################


def test_claim__by_a_stranger__pays_the_provider_not_the_caller(
    machine, make_job, market, token, settlement, jobs, chain, provider, user, keeper, attacker, ledger
):
    ids = _submitted(market, jobs, make_job, machine, provider, user, n=2)
    want = credit(jobs, ids)
    ledger.mark()
    tx = _finalize(market, jobs, chain, keeper, ids)
    # Finalizing credits the provider exactly and moves nothing.
    assert tuple(market.accrued(provider)) == want
    assert evs(tx, settlement.Settled) == [] and evs(tx, token.Transfer) == []
    ledger.expect()
    _books(market, token, jobs)

    burned, _, cap = want
    tx = market.claim(provider, sender=attacker)
    _claimed(tx, settlement, provider, want, cap, USD_PER_TOKEN)
    # The attacker paid gas and got nothing; the provider got the pay; the fees left the supply.
    ledger.expect(provider=cap, market=-burned, supply=cap - burned, settled=burned)
    assert tuple(market.accrued(provider)) == (0, 0, 0)
    _books(market, token, jobs)


def test_claim__nothing_credited__reverts_and_moves_nothing(
    machine, make_job, market, jobs, chain, provider, provider2, user, keeper, snap
):
    # A provider that never finished a job, the zero address, and a provider right after its
    # claim: nothing to burn, nothing to mint.
    _finalize(market, jobs, chain, keeper, _submitted(market, jobs, make_job, machine, provider, user))
    market.claim(provider, sender=keeper)
    for who in (provider, provider2, ZERO_ADDRESS):
        with no_change(snap), ape.reverts(NOTHING):
            market.claim(who, sender=keeper)


def test_claim__twice_in_one_block__second_reverts_first_pays_once(
    machine, make_job, market, token, settlement, jobs, chain, provider, user, keeper, attacker, ledger
):
    ids = _submitted(market, jobs, make_job, machine, provider, user)
    _finalize(market, jobs, chain, keeper, ids)
    burned, _, cap = credit(jobs, ids)
    ledger.mark()
    chain.provider.auto_mine = False
    try:
        # Explicit gas: the default (the block's limit) leaves no room for a second transaction.
        first = market.claim(provider, sender=keeper, gas=GAS)
        second = market.claim(provider, sender=attacker, gas=GAS, raise_on_revert=False)
        chain.mine()
    finally:
        chain.provider.auto_mine = True
    first, second = (chain.provider.get_receipt(r.txn_hash) for r in (first, second))
    assert first.block_number == second.block_number
    assert not first.failed and second.failed
    ledger.expect(provider=cap, market=-burned, supply=cap - burned, settled=burned)
    _books(market, token, jobs)


def test_claim__after_a_claim__settles_only_jobs_finalized_since(
    machine, make_job, market, token, settlement, jobs, chain, provider, user, keeper, ledger
):
    # The credit words are cumulative (a claim records how far it settled): the second claim
    # must not settle the first job again, nor miss the new one.
    first = _submitted(market, jobs, make_job, machine, provider, user)
    _finalize(market, jobs, chain, keeper, first)
    market.claim(provider, sender=keeper)
    later = _submitted(market, jobs, make_job, machine, provider, user, n=2, units=3 * UNITS)
    _finalize(market, jobs, chain, keeper, later)
    want = credit(jobs, later)
    assert tuple(market.accrued(provider)) == want
    ledger.mark()
    _claimed(market.claim(provider, sender=keeper), settlement, provider, want, want[2], USD_PER_TOKEN)
    ledger.expect(provider=want[2], market=-want[0], supply=want[2] - want[0], settled=want[0])
    assert tuple(market.accrued(provider)) == (0, 0, 0)
    _books(market, token, jobs)


################################################################
#          credits add up; one claim at the claim's price      #
################################################################


def test_claim__credits_of_every_finalizing_path_add_up__one_claim_caps_the_sum(
    machine, make_job, market, token, settlement, jobs, chain, set_price, deployer, provider, user, keeper, ledger
):
    # Jobs funded at $1 and at $2 (so with different escrow per USD), finalized by finalize,
    # finalize_many, a valid verdict and a timed-out audit, claimed once at $1.50.
    a, b, c = _submitted(market, jobs, make_job, machine, provider, user, n=3)
    for job_id in (b, c):
        jobs.track(market.dispute(job_id, jobs.t(job_id), sender=user))
    bond_b, bond_c = market.disputes(b).bond, market.disputes(c).bond
    set_price(2 * USD_PER_TOKEN)
    d, e = _submitted(market, jobs, make_job, machine, provider, user, n=2)
    assert jobs[d]["payment"] * 2 == jobs[a]["payment"]
    ledger.mark()

    jobs.track(market.post_verdict(b, jobs.t(b), True, sender=deployer))
    assert tuple(market.accrued(provider)) == credit(jobs, [b])
    ledger.expect(provider=bond_b, market=-bond_b)  # the bond; the pay waits for the claim
    _books(market, token, jobs)
    chain.pending_timestamp = max(jobs[e]["challenge_end"], market.disputes(c).audit_deadline) + 1
    jobs.track(market.finalize(a, jobs.t(a), sender=keeper))
    assert tuple(market.accrued(provider)) == credit(jobs, [b, a])
    _finalize(market, jobs, chain, keeper, [d, e])
    assert tuple(market.accrued(provider)) == credit(jobs, [b, a, d, e])
    ledger.expect()
    _books(market, token, jobs)
    tx = jobs.track(market.finalize(c, jobs.t(c), sender=keeper))
    assert ev(tx, market.JobFinalized)["audit_timed_out"]
    want = credit(jobs, [a, b, c, d, e])
    assert tuple(market.accrued(provider)) == want
    ledger.expect(user=bond_c, market=-bond_c)
    _books(market, token, jobs)

    price = 3 * USD_PER_TOKEN // 2
    set_price(price)
    ledger.mark()
    burned, usd_net, cap = want
    minted = usd_net * 10**8 // price
    # The cap bounds the sum, not each job: the $2 jobs alone would have hit their caps.
    per_job = sum(min(credit(jobs, [i])[1] * 10**8 // price, credit(jobs, [i])[2]) for i in (a, b, c, d, e))
    assert per_job < minted < cap
    _claimed(market.claim(provider, sender=keeper), settlement, provider, want, minted, price)
    ledger.expect(provider=minted, market=-burned, supply=minted - burned, settled=burned)
    _books(market, token, jobs)


@pytest.mark.parametrize("price", [2 * USD_PER_TOKEN, USD_PER_TOKEN // 2], ids=["token_up", "token_down"])
def test_claim__price_moved_since_finalize__minted_at_the_claims_price_capped_by_escrow_minus_fee(
    machine, make_job, market, token, settlement, jobs, chain, set_price, provider, user, keeper, attacker, ledger,
    price,
):  # fmt: skip
    ids = _submitted(market, jobs, make_job, machine, provider, user, n=2)
    _finalize(market, jobs, chain, keeper, ids)
    want = burned, usd_net, cap = credit(jobs, ids)
    set_price(price)  # after the finalize: the finalize's price ($1) plays no part
    ledger.mark()
    minted = min(usd_net * 10**8 // price, cap)
    # Up: $0.95 a job at $2 is 0.475 token. Down: it would be 1.9 tokens, capped at 0.95.
    assert minted == (usd_net // 2 if price > USD_PER_TOKEN else cap)
    _claimed(market.claim(provider, sender=attacker), settlement, provider, want, minted, price)
    ledger.expect(provider=minted, market=-burned, supply=minted - burned, settled=burned)
    _books(market, token, jobs)


@pytest.mark.parametrize("why", ["stale", "missing"])
def test_claim__stale_or_missing_price__pays_the_cap_does_not_revert(
    machine, make_job, market, token, settlement, deployment, jobs, chain, deployer, provider, user, keeper, ledger,
    why,
):  # fmt: skip
    ids = _submitted(market, jobs, make_job, machine, provider, user)
    _finalize(market, jobs, chain, keeper, ids)
    want = burned, _, cap = credit(jobs, ids)
    if why == "stale":
        chain.pending_timestamp = chain.blocks.head.timestamp + settlement.max_age() + 1
    else:  # a feed that never posted a round
        assert deployment.price_feed.latest_round() == 0
        settlement.set_price_feed(deployment.price_feed, SETTLEMENT_MAX_AGE, sender=deployer)
    ledger.mark()
    _claimed(market.claim(provider, sender=keeper), settlement, provider, want, cap, 0)
    ledger.expect(provider=cap, market=-burned, supply=cap - burned, settled=burned)
    _books(market, token, jobs)


################################################################
#           paused, exited, slashed, other providers           #
################################################################


def test_claim__market_and_registry_paused__still_pays(
    machine, make_job, market, registry, token, settlement, jobs, chain, deployer, provider, user, attacker, ledger
):
    ids = _submitted(market, jobs, make_job, machine, provider, user)
    _finalize(market, jobs, chain, keeper=attacker, ids=ids)
    market.pause(sender=deployer)
    registry.pause(sender=deployer)
    want = burned, _, cap = credit(jobs, ids)
    ledger.mark()
    _claimed(market.claim(provider, sender=attacker), settlement, provider, want, cap, USD_PER_TOKEN)
    ledger.expect(provider=cap, market=-burned, supply=cap - burned, settled=burned)
    _books(market, token, jobs)


def test_claim__provider_exited_its_machine_and_unstaked__still_paid(
    machine, make_job, market, registry, token, settlement, jobs, chain, provider, user, keeper, ledger
):
    ids = _submitted(market, jobs, make_job, machine, provider, user)
    _finalize(market, jobs, chain, keeper, ids)
    registry.exit_machine(machine, sender=provider)
    # All but the finalized jobs' collateral, which stays locked until the claim.
    registry.request_unstake(registry.free_stake(provider), sender=provider)
    assert registry.free_stake(provider) == 0
    want = burned, _, cap = credit(jobs, ids)
    assert tuple(market.accrued(provider)) == want
    ledger.mark()
    _claimed(market.claim(provider, sender=keeper), settlement, provider, want, cap, USD_PER_TOKEN)
    ledger.expect(provider=cap, market=-burned, supply=cap - burned, settled=burned)
    _books(market, token, jobs)
    assert registry.free_stake(provider) == sum(jobs[i]["collateral"] for i in ids)
    registry.request_unstake(registry.free_stake(provider), sender=provider)
    assert registry.staked(provider) == 0


def test_claim__releases_the_finalized_jobs_collateral_and_records_them__not_before(
    machine, make_job, market, registry, jobs, chain, provider, user, keeper
):
    """Finalizing leaves the collateral locked and the jobs off the record; the claim (anyone's)
    frees exactly their collateral, so a job that did not fit the free stake before it fits after."""
    ids = _submitted(market, jobs, make_job, machine, provider, user, n=2, units=200 * UNITS)
    collateral = sum(jobs[i]["collateral"] for i in ids)
    _finalize(market, jobs, chain, keeper, ids)
    assert registry.locked(provider) == collateral
    assert registry.reputation(provider).completed == 0
    # Unstake all the rest: the next job's collateral no longer fits while the finalized jobs' is locked.
    registry.request_unstake(registry.free_stake(provider) - registry.required_stake(provider), sender=provider)
    nxt, _ = make_job(user, target=provider, units=200 * UNITS, spec_hash=b"\x66" * 32)
    with ape.reverts("registry: not enough free stake"):
        market.accept(nxt, jobs.t(nxt), machine, sender=provider)
    tx = market.claim(provider, sender=keeper)
    assert ev(tx, registry.CollateralUnlocked) == {"provider": provider.address, "amount": collateral, "locked": 0}
    assert registry.reputation(provider).completed == 2
    jobs.track(market.accept(nxt, jobs.t(nxt), machine, sender=provider))
    assert registry.locked(provider) == jobs[nxt]["collateral"]


def test_claim__after_a_slash_took_all_the_stake__releases_the_collateral_once(
    machine, make_job, market, registry, jobs, chain, deployer, provider, user, keeper, roles
):
    """A hardware slash (OracleHub's SLASHER_ROLE) between finalize and claim takes the whole stake
    but leaves `locked` alone: the claim still releases exactly the finalized jobs' collateral and
    records them, and a second claim has nothing to do."""
    ids = _submitted(market, jobs, make_job, machine, provider, user, n=3)
    collateral = sum(jobs[i]["collateral"] for i in ids)
    _finalize(market, jobs, chain, keeper, ids)
    registry.grantRole(roles["SLASHER_ROLE"], deployer, sender=deployer)
    registry.slash(provider, registry.staked(provider), b"\x01" * 32, ZERO_ADDRESS, sender=deployer)
    assert (registry.staked(provider), registry.locked(provider)) == (0, collateral)
    market.claim(provider, sender=keeper)
    assert (registry.staked(provider), registry.locked(provider)) == (0, 0)
    assert registry.reputation(provider).completed == 3
    assert tuple(market.accrued(provider)) == (0, 0, 0)
    with ape.reverts(NOTHING):
        market.claim(provider, sender=keeper)


def test_claim__one_provider__leaves_anothers_credit_untouched(
    machine, make_provider, make_job, market, token, settlement, jobs, chain, provider, provider2, user, keeper,
    ledger,
):  # fmt: skip
    m2 = make_provider(provider2)
    own = _submitted(market, jobs, make_job, machine, provider, user)
    other = _submitted(market, jobs, make_job, m2, provider2, user, n=2)
    _finalize(market, jobs, chain, keeper, own + other)
    want2 = credit(jobs, other)
    assert tuple(market.accrued(provider)) == credit(jobs, own)
    assert tuple(market.accrued(provider2)) == want2
    market.claim(provider, sender=provider2)  # provider2 claims for provider: its own credit stays
    assert tuple(market.accrued(provider2)) == want2
    _books(market, token, jobs)
    ledger.mark()
    _claimed(market.claim(provider2, sender=provider), settlement, provider2, want2, want2[2], USD_PER_TOKEN)
    ledger.expect(provider2=want2[2], market=-want2[0], supply=want2[2] - want2[0], settled=want2[0])
    _books(market, token, jobs)


def test_slash__failed_job_and_no_show__leave_the_credited_pay_of_finished_jobs_whole(
    machine, make_job, market, registry, token, settlement, jobs, chain, deployer, provider, user, keeper, ledger
):
    done = _submitted(market, jobs, make_job, machine, provider, user, n=2)
    bad = _submitted(market, jobs, make_job, machine, provider, user)[0]
    gone, _ = make_job(user, target=provider)
    jobs.track(market.accept(gone, jobs.t(gone), machine, sender=provider))
    jobs.track(market.dispute(bad, jobs.t(bad), sender=user))
    _finalize(market, jobs, chain, keeper, done)
    want = burned, _, cap = credit(jobs, done)

    staked = registry.staked(provider)
    failed = jobs.track(market.post_verdict(bad, jobs.t(bad), False, sender=deployer))
    assert ev(failed, market.JobFailed)["burned"] > 0
    chain.pending_timestamp = jobs[gone]["complete_by"] + 1
    expired = jobs.track(market.expire(gone, jobs.t(gone), sender=keeper))
    assert ev(expired, market.JobExpired)["penalty"] > 0
    assert registry.staked(provider) < staked  # both slashed the stake...
    assert tuple(market.accrued(provider)) == want  # ...not the finished jobs' pay
    _books(market, token, jobs)
    ledger.mark()
    _claimed(market.claim(provider, sender=keeper), settlement, provider, want, cap, USD_PER_TOKEN)
    ledger.expect(provider=cap, market=-burned, supply=cap - burned, settled=burned)
    _books(market, token, jobs)


################################################################
#                         wash trades                          #
################################################################


@pytest.mark.parametrize(
    "claim_price", [10 * USD_PER_TOKEN, USD_PER_TOKEN // 10, None], ids=["token_up_10x", "token_down_90pct", "stale"]
)
def test_wash_trade__claimed_at_any_price__burns_at_least_the_fee(
    machine, make_job, market, token, settlement, jobs, chain, set_price, provider, keeper, claim_price
):
    """A provider paying itself for its own job, with a claim (anyone's) timed at the price it
    likes best: it never gains; it loses at
    least the fee (exactly the fee when the cap pays)."""
    start = token.balanceOf(provider)
    ids = _submitted(market, jobs, make_job, machine, provider, provider)  # the provider is its own user
    _finalize(market, jobs, chain, keeper, ids)
    burned, usd_net, cap = credit(jobs, ids)
    if claim_price is None:
        chain.pending_timestamp = chain.blocks.head.timestamp + settlement.max_age() + 1
    else:
        set_price(claim_price)
    market.claim(provider, sender=keeper)
    lost = start - token.balanceOf(provider)
    fee = burned - cap
    assert fee > 0
    if claim_price is not None and claim_price > USD_PER_TOKEN:
        assert lost == burned - usd_net * 10**8 // claim_price > fee
    else:
        assert lost == fee
    _books(market, token, jobs)
