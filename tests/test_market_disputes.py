"""JobMarket disputes and audits: dispute, dispute_bond, post_verdict and the audit timeout
through finalize.

Only the job's user may dispute (a third party or the provider from a second address may not:
docs/SECURITY.md, finding 4), so the user is also the challenger: on an invalid verdict it gets
the refund, the user compensation, the challenger reward and its bond back.

Submitted -> Audit -> Finalized (valid: the provider is credited its pay, the bond goes to
                                 the provider)
Submitted -> Audit -> Failed (invalid: user refunded, compensated and rewarded as the challenger
                              from the collateral, bond returned, the rest burned)
Submitted -> Audit -> audit deadline passes -> finalize (provider credited, bond returned to the
                                                         user)
A finalized job's escrow stays in the market until `claim(provider)` burns it and Settlement
mints the provider its pay (`_claim_pays`).

Defaults: payment 1 token ($1 at conftest's price), collateral 1.5 tokens, fee 0.05 (burned),
bond max(1 token, 10%) = 1 token, compensation 50% / reward 25% / burn 25% of the collateral.
A refund (invalid verdict) returns the escrow unburned: no settlement burn, no mint.
"""

import ape
import market_helpers
import pytest
from conftest import PRICE, STAKE, UNIT_PARAMS, UNITS
from eth_utils import keccak
from market_helpers import (
    ZERO_ADDRESS,
    assert_books,
    assert_job,
    ev,
    evs,
    isolated,
    no_change,
    set_params,
    tampered,
)

from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus

# Fixtures shared by the market tests.
snap = market_helpers.snap
ledger = market_helpers.ledger
settlement = market_helpers.settlement

P = UNIT_PARAMS
USD_VALUE = PRICE * UNITS
PAYMENT = USD_VALUE  # $1 per token
COLLATERAL = PAYMENT * P.collateral_bps // MAX_BPS
FEE = PAYMENT * P.fee_bps // MAX_BPS
USD_NET = USD_VALUE - USD_VALUE * P.fee_bps // MAX_BPS
BOND = max(P.min_dispute_bond, PAYMENT * P.dispute_bond_bps // MAX_BPS)
INVALID_RESULT = keccak(text="INVALID_RESULT")


def _ts(chain, tx):
    return chain.blocks[tx.block_number].timestamp


def _claim_pays(market, token, settlement, jobs, provider, claimer, ledger):
    """The provider was credited exactly one $1 job (and no token moved since `ledger`'s last
    mark, checked by the caller); `claimer`'s claim burns its escrow and mints the provider
    its pay at $1, whoever calls."""
    assert tuple(market.accrued(provider)) == (PAYMENT, USD_NET, PAYMENT - FEE)
    tx = market.claim(provider, sender=claimer)
    e = ev(tx, settlement.Settled)
    assert (e["provider"], e["burned"], e["usd_net"], e["cap"], e["minted"]) == (
        provider.address,
        PAYMENT,
        USD_NET,
        PAYMENT - FEE,
        PAYMENT - FEE,
    )
    ledger.expect(provider=PAYMENT - FEE, market=-PAYMENT, supply=-FEE, settled=PAYMENT)
    assert tuple(market.accrued(provider)) == (0, 0, 0)
    assert_books(market, token, jobs)


def _rep(registry, who):
    """The provider's record in ProviderRegistry (completed, failed, expired, audits_passed,
    disputes_won, disputes_lost)."""
    return tuple(registry.reputation(who))


@pytest.fixture
def disputed_job(submitted_job, market, jobs, user):
    """`submitted_job` disputed by its `user` (the only one who may): (job_id, machine_id)."""
    job_id, machine_id = submitted_job
    market.dispute(job_id, jobs.t(job_id), sender=user)
    return job_id, machine_id


################################################################
#                            dispute                           #
################################################################


def test_dispute__submitted__takes_bond_and_opens_audit(submitted_job, market, token, jobs, chain, user, ledger):
    job_id, _ = submitted_job
    ledger.mark()
    tx = market.dispute(job_id, jobs.t(job_id), sender=user)
    deadline = _ts(chain, tx) + P.audit_timeout
    assert BOND == ONE_TOKEN
    assert ev(tx, market.JobDisputed) == {
        "job_id": job_id,
        "challenger": user.address,
        "bond": BOND,
        "audit_deadline": deadline,
    }
    assert tuple(market.disputes(job_id)) == (user.address, BOND, deadline)
    assert_job(market, jobs, job_id, JobStatus.AUDIT)
    ledger.expect(user=-BOND, market=BOND)
    assert_books(market, token, jobs)


def test_dispute__at_challenge_end__works__one_second_after__reverts(
    submitted_job, market, jobs, chain, user, user2, snap
):
    job_id, _ = submitted_job
    challenge_end = jobs[job_id]["challenge_end"]
    with isolated(chain):
        chain.pending_timestamp = challenge_end
        market.dispute(job_id, jobs.t(job_id), sender=user)
        assert market.job_status(job_id) == JobStatus.AUDIT
    chain.pending_timestamp = challenge_end + 1
    with no_change(snap):
        # The window is checked before the caller: a third party is told the window is over too.
        for caller in (user, user2):
            with ape.reverts("job_market: challenge window over"):
                market.dispute(job_id, jobs.t(job_id), sender=caller)


def test_dispute__not_submitted__reverts(
    running_job, make_job, market, jobs, chain, provider, user, user2, keeper, snap
):
    running_id, machine_id = running_job
    open_id, _ = make_job(user)
    audit_id, _ = make_job(user)
    finalized_id, _ = make_job(user)
    for job_id in (audit_id, finalized_id):
        jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
        jobs.track(market.submit_result(job_id, jobs.t(job_id), b"\x22" * 32, "r", sender=provider))
    market.dispute(audit_id, jobs.t(audit_id), sender=user)
    chain.pending_timestamp = jobs[finalized_id]["challenge_end"] + 1
    market.finalize(finalized_id, jobs.t(finalized_id), sender=keeper)
    with no_change(snap):
        for job_id in (open_id, running_id, audit_id, finalized_id):
            # The status is checked before the caller: the same reason for the user and others.
            for caller in (user, user2):
                with ape.reverts("job_market: job not submitted"):
                    market.dispute(job_id, jobs.t(job_id), sender=caller)


def test_dispute__no_allowance__reverts(submitted_job, market, token, jobs, user, snap):
    job_id, _ = submitted_job
    token.approve(market, 0, sender=user)
    with no_change(snap), ape.reverts("erc20: insufficient allowance"):
        market.dispute(job_id, jobs.t(job_id), sender=user)


def test_dispute__not_the_user__reverts(submitted_job, market, token, jobs, provider, user2, keeper, attacker, snap):
    # Third parties (even ones holding tokens and an allowance, like user2 and attacker) and the
    # provider itself may not dispute: only the user the result was owed to has standing.
    job_id, _ = submitted_job
    assert token.allowance(user2, market) > 0 and token.balanceOf(user2) > BOND
    with no_change(snap):
        for caller in (user2, provider, attacker, keeper):
            with ape.reverts("job_market: caller is not the user"):
                market.dispute(job_id, jobs.t(job_id), sender=caller)
    assert market.job_status(job_id) == JobStatus.SUBMITTED
    assert tuple(market.disputes(job_id)) == (ZERO_ADDRESS, 0, 0)


def test_dispute__user_of_another_job__reverts(submitted_job, make_job, market, jobs, provider, user2, snap):
    # user2 has a job of its own with the same provider: that gives it no standing on user's job.
    job_id, machine_id = submitted_job
    own_id, _ = make_job(user2)
    jobs.track(market.accept(own_id, jobs.t(own_id), machine_id, sender=provider))
    jobs.track(market.submit_result(own_id, jobs.t(own_id), b"\x22" * 32, "r", sender=provider))
    with no_change(snap), ape.reverts("job_market: caller is not the user"):
        market.dispute(job_id, jobs.t(job_id), sender=user2)
    market.dispute(own_id, jobs.t(own_id), sender=user2)
    assert market.job_status(own_id) == JobStatus.AUDIT
    assert market.job_status(job_id) == JobStatus.SUBMITTED


def test_dispute__tampered_job__reverts(submitted_job, market, jobs, user, snap):
    job_id, _ = submitted_job
    with no_change(snap):
        for field in ("challenge_end", "payment", "result_hash"):
            with ape.reverts("job_market: job data mismatch"):
                market.dispute(job_id, tampered(jobs, job_id, field), sender=user)


def test_dispute_bond__max_of_minimum_and_share(market, deployer, params):
    floor_payment = P.min_dispute_bond * MAX_BPS // P.dispute_bond_bps  # 10 tokens
    assert market.dispute_bond(0) == P.min_dispute_bond
    assert market.dispute_bond(PAYMENT) == P.min_dispute_bond
    assert market.dispute_bond(floor_payment) == P.min_dispute_bond
    assert market.dispute_bond(floor_payment + 10) == P.min_dispute_bond + 1
    assert market.dispute_bond(100 * ONE_TOKEN) == 10 * ONE_TOKEN
    set_params(market, deployer, params, min_dispute_bond=0, dispute_bond_bps=0)
    assert market.dispute_bond(100 * ONE_TOKEN) == 0


def test_dispute__large_job__bond_is_share_of_payment(
    make_provider, make_job, market, token, jobs, provider, user, ledger
):
    machine_id = make_provider(provider)
    job_id, job = make_job(user, units=100 * UNITS)  # 100 tokens
    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    jobs.track(market.submit_result(job_id, jobs.t(job_id), b"\x22" * 32, "r", sender=provider))
    ledger.mark()
    tx = market.dispute(job_id, jobs.t(job_id), sender=user)
    assert ev(tx, market.JobDisputed)["bond"] == 10 * ONE_TOKEN
    ledger.expect(user=-10 * ONE_TOKEN, market=10 * ONE_TOKEN)
    assert_books(market, token, jobs)


################################################################
#                    post_verdict: valid                       #
################################################################


def test_post_verdict__valid__credits_provider_bond_to_provider__claim_pays(
    disputed_job, market, registry, token, settlement, jobs, deployer, provider, keeper, ledger
):
    job_id, _ = disputed_job
    ledger.mark()
    tx = market.post_verdict(job_id, jobs.t(job_id), True, sender=deployer)
    assert ev(tx, market.VerdictPosted) == {"job_id": job_id, "valid": True, "verifier": deployer.address}
    assert ev(tx, market.JobFinalized) == {
        "job_id": job_id,
        "provider": provider.address,
        "usd_value": USD_VALUE,
        "burned": PAYMENT,
        "fee": FEE,
        "audit_timed_out": False,
    }
    assert evs(tx, settlement.Settled) == []
    assert_job(market, jobs, job_id, JobStatus.FINALIZED)
    assert tuple(market.disputes(job_id)) == (ZERO_ADDRESS, 0, 0)
    # The user's bond is transferred to the provider; its pay is credited, the escrow stays.
    ledger.expect(provider=BOND, market=-BOND)
    assert evs(tx, registry.Slashed) == []
    # The provider passed the audit and won the dispute, on record at once; the collateral
    # and the completed count wait for its claim.
    assert tuple(registry.stakes(provider)) == (STAKE, COLLATERAL, 0, 0)
    assert _rep(registry, provider) == (0, 0, 0, 1, 1, 0)
    assert_books(market, token, jobs)
    # The claim burns the escrow and the provider is minted its pay.
    _claim_pays(market, token, settlement, jobs, provider, keeper, ledger)
    # A $1 job counts as completed.
    assert tuple(registry.stakes(provider)) == (STAKE, 0, 0, 0)
    assert _rep(registry, provider) == (1, 0, 0, 1, 1, 0)


def test_post_verdict__at_audit_deadline__works__one_second_after__reverts(
    disputed_job, market, jobs, chain, deployer, snap
):
    job_id, _ = disputed_job
    deadline = market.disputes(job_id).audit_deadline
    with isolated(chain):
        chain.pending_timestamp = deadline
        market.post_verdict(job_id, jobs.t(job_id), True, sender=deployer)
        assert market.job_status(job_id) == JobStatus.FINALIZED
    chain.pending_timestamp = deadline + 1
    with no_change(snap):
        for valid in (True, False):
            with ape.reverts("job_market: audit deadline passed"):
                market.post_verdict(job_id, jobs.t(job_id), valid, sender=deployer)


################################################################
#                    post_verdict: invalid                     #
################################################################


def test_post_verdict__invalid__refunds_user_compensates_rewards_and_burns(
    disputed_job, market, registry, token, jobs, deployer, provider, user, ledger
):
    job_id, _ = disputed_job
    compensation = COLLATERAL * P.user_compensation_bps // MAX_BPS
    reward = COLLATERAL * P.challenger_reward_bps // MAX_BPS
    burned = COLLATERAL - compensation - reward
    assert (compensation, reward, burned) == (750 * 10**15, 375 * 10**15, 375 * 10**15)
    ledger.mark()
    tx = market.post_verdict(job_id, jobs.t(job_id), False, sender=deployer)
    assert ev(tx, market.VerdictPosted) == {"job_id": job_id, "valid": False, "verifier": deployer.address}
    assert ev(tx, market.JobFailed) == {
        "job_id": job_id,
        "provider": provider.address,
        "refund": PAYMENT,
        "user_compensation": compensation,
        "challenger_reward": reward,
        "burned": burned,
    }
    assert evs(tx, registry.Slashed) == [
        {
            "provider": provider.address,
            "amount": compensation,
            "reason": INVALID_RESULT,
            "beneficiary": user.address,
            "slasher": market.address,
        },
        {
            "provider": provider.address,
            "amount": reward,
            "reason": INVALID_RESULT,
            "beneficiary": user.address,  # the user is the challenger
            "slasher": market.address,
        },
        {
            "provider": provider.address,
            "amount": burned,
            "reason": INVALID_RESULT,
            "beneficiary": ZERO_ADDRESS,
            "slasher": market.address,
        },
    ]
    assert evs(tx, market.JobFinalized) == []
    assert_job(market, jobs, job_id, JobStatus.FAILED)
    assert tuple(market.disputes(job_id)) == (ZERO_ADDRESS, 0, 0)
    # The user (the challenger): refund, compensation, challenger reward and its bond back.
    ledger.expect(
        user=PAYMENT + compensation + reward + BOND,
        market=-(PAYMENT + BOND),
        registry=-COLLATERAL,
        supply=-burned,
    )
    assert tuple(registry.stakes(provider)) == (STAKE - COLLATERAL, 0, 0, 0)
    assert _rep(registry, provider) == (0, 1, 0, 0, 0, 1)  # failed, dispute lost
    assert_books(market, token, jobs)


def test_post_verdict__invalid__stake_already_slashed_elsewhere__pays_what_is_left(
    disputed_job, market, registry, token, jobs, deployer, provider, user, roles, ledger
):
    # Another slasher (e.g. the oracle hub) took all but 1 token: the job's collateral is gone too.
    job_id, _ = disputed_job
    registry.grantRole(roles["SLASHER_ROLE"], deployer, sender=deployer)
    registry.slash(provider, STAKE - ONE_TOKEN, b"\x01" * 32, ZERO_ADDRESS, sender=deployer)
    assert tuple(registry.stakes(provider)) == (ONE_TOKEN, COLLATERAL, 0, 0)  # locked stays
    ledger.mark()
    tx = market.post_verdict(job_id, jobs.t(job_id), False, sender=deployer)
    compensation = COLLATERAL * P.user_compensation_bps // MAX_BPS  # 0.75, fully covered
    reward = ONE_TOKEN - compensation  # 0.25 of the wanted 0.375
    e = ev(tx, market.JobFailed)
    assert (e["refund"], e["user_compensation"], e["challenger_reward"], e["burned"]) == (
        PAYMENT,
        compensation,
        reward,
        0,
    )
    ledger.expect(user=PAYMENT + compensation + reward + BOND, market=-(PAYMENT + BOND), registry=-ONE_TOKEN)
    assert tuple(registry.stakes(provider)) == (0, 0, 0, 0)
    assert_job(market, jobs, job_id, JobStatus.FAILED)
    assert_books(market, token, jobs)


def test_dispute_then_invalid__user_nets_refund_compensation_and_reward__bond_back(
    submitted_job, market, token, jobs, deployer, user, ledger
):
    # Over the whole dispute (bond paid, then returned) the wronged user gains exactly the
    # refund, the compensation and the challenger reward; nobody else receives anything.
    job_id, _ = submitted_job
    ledger.mark()
    market.dispute(job_id, jobs.t(job_id), sender=user)
    market.post_verdict(job_id, jobs.t(job_id), False, sender=deployer)
    compensation = COLLATERAL * P.user_compensation_bps // MAX_BPS
    reward = COLLATERAL * P.challenger_reward_bps // MAX_BPS
    ledger.expect(
        user=PAYMENT + compensation + reward,
        market=-PAYMENT,
        registry=-COLLATERAL,
        supply=-(COLLATERAL - compensation - reward),
    )
    assert_books(market, token, jobs)


def test_dispute_then_valid__user_loses_bond_to_provider(
    submitted_job, market, registry, token, settlement, jobs, deployer, provider, user, ledger
):
    # A wrong accusation: the user's bond goes to the provider, which is also paid in full (at
    # its claim, here by the provider itself).
    job_id, _ = submitted_job
    ledger.mark()
    market.dispute(job_id, jobs.t(job_id), sender=user)
    market.post_verdict(job_id, jobs.t(job_id), True, sender=deployer)
    ledger.expect(user=-BOND, provider=BOND)
    assert_books(market, token, jobs)
    _claim_pays(market, token, settlement, jobs, provider, provider, ledger)
    assert tuple(registry.stakes(provider)) == (STAKE, 0, 0, 0)


def test_dispute__zero_bond_params__user_may_dispute_for_free(
    submitted_job, market, registry, token, jobs, deployer, provider, user, user2, params, ledger, snap
):
    set_params(market, deployer, params, min_dispute_bond=0, dispute_bond_bps=0)
    job_id, _ = submitted_job
    # The user holds and approved nothing (its tokens went to the deployer, outside the ledger).
    token.approve(market, 0, sender=user)
    token.transfer(deployer, token.balanceOf(user), sender=user)
    assert token.balanceOf(user) == 0 and token.allowance(user, market) == 0
    # A free dispute is still the user's alone.
    with no_change(snap), ape.reverts("job_market: caller is not the user"):
        market.dispute(job_id, jobs.t(job_id), sender=user2)
    ledger.mark()
    tx = market.dispute(job_id, jobs.t(job_id), sender=user)
    assert ev(tx, market.JobDisputed)["bond"] == 0
    assert tuple(market.disputes(job_id))[:2] == (user.address, 0)
    tx = market.post_verdict(job_id, jobs.t(job_id), False, sender=deployer)
    reward = COLLATERAL * P.challenger_reward_bps // MAX_BPS
    assert ev(tx, market.JobFailed)["challenger_reward"] == reward
    compensation = COLLATERAL * P.user_compensation_bps // MAX_BPS
    ledger.expect(
        user=PAYMENT + compensation + reward,
        market=-PAYMENT,
        registry=-COLLATERAL,
        supply=-(COLLATERAL - compensation - reward),
    )
    assert_books(market, token, jobs)


################################################################
#                  post_verdict: rejections                    #
################################################################


def test_post_verdict__not_verifier__reverts(disputed_job, market, jobs, provider, user, user2, attacker, snap):
    job_id, _ = disputed_job
    with no_change(snap):
        for caller in (attacker, provider, user, user2):
            with ape.reverts("access_control: account is missing role"):
                market.post_verdict(job_id, jobs.t(job_id), True, sender=caller)


def test_post_verdict__granted_verifier__may_post_until_revoked(
    disputed_job, market, jobs, chain, deployer, keeper, roles, snap
):
    job_id, _ = disputed_job
    market.grantRole(roles["VERIFIER_ROLE"], keeper, sender=deployer)
    with isolated(chain):
        market.post_verdict(job_id, jobs.t(job_id), True, sender=keeper)
        assert market.job_status(job_id) == JobStatus.FINALIZED
    market.revokeRole(roles["VERIFIER_ROLE"], keeper, sender=deployer)
    with no_change(snap), ape.reverts("access_control: account is missing role"):
        market.post_verdict(job_id, jobs.t(job_id), True, sender=keeper)


def test_post_verdict__not_in_audit__reverts(
    submitted_job, make_job, market, jobs, chain, provider, user, deployer, keeper, snap
):
    submitted_id, machine_id = submitted_job
    open_id, _ = make_job(user)
    running_id, _ = make_job(user)
    jobs.track(market.accept(running_id, jobs.t(running_id), machine_id, sender=provider))
    decided_id, _ = make_job(user)
    jobs.track(market.accept(decided_id, jobs.t(decided_id), machine_id, sender=provider))
    jobs.track(market.submit_result(decided_id, jobs.t(decided_id), b"\x22" * 32, "r", sender=provider))
    market.dispute(decided_id, jobs.t(decided_id), sender=user)
    market.post_verdict(decided_id, jobs.t(decided_id), True, sender=deployer)
    with no_change(snap):
        for job_id in (open_id, running_id, submitted_id, decided_id):
            for valid in (True, False):
                with ape.reverts("job_market: job not in audit"):
                    market.post_verdict(job_id, jobs.t(job_id), valid, sender=deployer)


def test_post_verdict__tampered_job__reverts(disputed_job, market, jobs, deployer, snap):
    job_id, _ = disputed_job
    with no_change(snap):
        for field in ("provider", "collateral", "payment", "user", "result_hash"):
            with ape.reverts("job_market: job data mismatch"):
                market.post_verdict(job_id, tampered(jobs, job_id, field), False, sender=deployer)


################################################################
#                       audit timeout                          #
################################################################


def test_finalize__audit__at_deadline_reverts__after_credits_provider_and_returns_bond(
    disputed_job, market, registry, token, settlement, jobs, chain, provider, user, keeper, deployer, ledger, snap
):
    job_id, _ = disputed_job
    deadline = market.disputes(job_id).audit_deadline
    chain.pending_timestamp = deadline
    with no_change(snap), ape.reverts("job_market: audit in progress"):
        market.finalize(job_id, jobs.t(job_id), sender=keeper)
    chain.pending_timestamp = deadline + 1
    ledger.mark()
    tx = market.finalize(job_id, jobs.t(job_id), sender=keeper)
    assert ev(tx, market.JobFinalized) == {
        "job_id": job_id,
        "provider": provider.address,
        "usd_value": USD_VALUE,
        "burned": PAYMENT,
        "fee": FEE,
        "audit_timed_out": True,
    }
    assert_job(market, jobs, job_id, JobStatus.FINALIZED)
    assert tuple(market.disputes(job_id)) == (ZERO_ADDRESS, 0, 0)
    # No verdict in time: the provider is credited its pay and the user's bond comes back.
    ledger.expect(user=BOND, market=-BOND)
    assert_books(market, token, jobs)
    # The verdict comes too late for the finalized job.
    with no_change(snap), ape.reverts("job_market: job not in audit"):
        market.post_verdict(job_id, jobs.t(job_id), False, sender=deployer)
    _claim_pays(market, token, settlement, jobs, provider, user, ledger)
    assert tuple(registry.stakes(provider)) == (STAKE, 0, 0, 0)
    # Paid without a verdict: completed, but neither an audit passed nor a dispute won.
    assert _rep(registry, provider) == (1, 0, 0, 0, 0, 0)


def test_finalize__audit_twice__reverts(disputed_job, market, jobs, chain, keeper, snap):
    job_id, _ = disputed_job
    chain.pending_timestamp = market.disputes(job_id).audit_deadline + 1
    market.finalize(job_id, jobs.t(job_id), sender=keeper)
    with no_change(snap), ape.reverts("job_market: job not finalizable"):
        market.finalize(job_id, jobs.t(job_id), sender=keeper)


def test_expire__audit__reverts(disputed_job, market, jobs, chain, keeper, snap):
    job_id, _ = disputed_job
    chain.pending_timestamp = market.disputes(job_id).audit_deadline + 1
    with no_change(snap), ape.reverts("job_market: job cannot expire"):
        market.expire(job_id, jobs.t(job_id), sender=keeper)
