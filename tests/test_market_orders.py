"""Signed orders (contracts/modules/job_orders.vy): the user signs, the provider fills.

A fill does create_job + accept (+ submit_result) in the provider's one transaction, with the
same escrow, collateral, audit rate, draw and settlement. The attacks: replaying an order (same
provider, another provider, after a cancel), a signature from someone else, for another chain
or another contract, an order altered after signing (price, units, provider), an order for
another provider, an expired one, a fill while paused, above the user's slippage bound, from a
user whose allowance is gone, and a cancel by someone other than the user.
"""

import ape
import pytest
from conftest import COMPLETE_WITHIN, CPU, H100, PRICE, UNITS
from market_helpers import RESULT, SPEC, ZERO_ADDRESS, assert_job, credit, ev, no_change

from offchain.chain.deploy import MARKET_DUST
from offchain.chain.jobs import job_from_chain
from offchain.chain.orders import (
    ORDER_BATCH_TYPEHASH,
    ORDER_TYPEHASH,
    order_batch_id,
    order_batch_tuple,
    order_id,
    order_tuple,
    sign_order,
    sign_order_batch,
)
from offchain.constants import MAX_BPS, JobStatus

snap = __import__("market_helpers").snap
settlement = __import__("market_helpers").settlement

PAYMENT = PRICE * UNITS  # conftest prices the token at $1
URI = "ipfs://bafy-result"


@pytest.fixture
def order(chain, user, provider):
    """order(**changes) -> an order dict from `user` for `provider` (a $1 CPU job)."""

    def _make(**changes):
        o = {
            "user": user.address,
            "provider": provider.address,
            "class_id": CPU,
            "spec_hash": SPEC,
            "compute_units": UNITS,
            "price_per_unit": PRICE,
            "max_tokens": 2 * PAYMENT,
            "accept_by": chain.pending_timestamp + 3600,
            "complete_within": COMPLETE_WITHIN,
            "salt": 1,
        }
        o.update(changes)
        return o

    return _make


@pytest.fixture
def signed(chain, market, user):
    """signed(order, signer=user) -> (order tuple, 65-byte signature)."""

    def _sign(o, signer=None, market_address=None, chain_id=None):
        sig = sign_order(signer or user, market_address or market.address, chain_id or chain.chain_id, o)
        return order_tuple(o), sig

    return _sign


def _fill(market, jobs, o, sig, machine, sender, result=RESULT, uri=URI):
    return jobs.track(market.fill_order(o, sig, machine, result, uri, sender=sender))


def test_fill__with_result__escrows_locks_and_submits_in_one_transaction(
    chain, market, registry, token, jobs, make_provider, order, signed, user, provider
):
    machine = make_provider(provider)
    o = order()
    user_before, market_before = token.balanceOf(user), token.balanceOf(market)
    locked_before = registry.stakes(provider).locked
    count_before = market.job_count()
    tx = _fill(market, jobs, *signed(o), machine, provider)
    job_id = order_id(market.address, chain.chain_id, o)
    e = ev(tx, market.OrderFilled)
    assert e["job_id"] == job_id == market.order_id(order_tuple(o))
    job = jobs[job_id]
    assert (job["user"], job["provider"], job["machine_id"]) == (user.address, provider.address, machine)
    assert (job["payment"], job["usd_value"], job["result_hash"]) == (PAYMENT, PRICE * UNITS, RESULT)
    assert_job(market, jobs, job_id, JobStatus.SUBMITTED)
    assert token.balanceOf(user) == user_before - PAYMENT
    assert token.balanceOf(market) == market_before + PAYMENT
    assert registry.stakes(provider).locked == locked_before + job["collateral"] > locked_before
    # Order jobs take their digest as id: the sequential counter is create_job's alone.
    assert market.job_count() == count_before
    assert e["result_uri"] == URI


def test_fill__then_finalize_and_claim__paid_like_any_job(
    chain, market, registry, token, jobs, make_provider, order, signed, provider, keeper
):
    machine = make_provider(provider)
    o = order()
    _fill(market, jobs, *signed(o), machine, provider)
    job_id = order_id(market.address, chain.chain_id, o)
    chain.mine(timestamp=jobs[job_id]["challenge_end"] + 1)
    market.finalize(job_id, jobs.t(job_id), sender=keeper)
    assert market.job_status(job_id) == JobStatus.FINALIZED
    assert tuple(market.accrued(provider)) == credit(jobs, [job_id])
    locked = registry.stakes(provider).locked
    before = token.balanceOf(provider)
    market.claim(provider, sender=keeper)
    fee = PAYMENT * jobs[job_id]["fee_bps"] // MAX_BPS
    assert token.balanceOf(provider) == before + PAYMENT - fee
    assert registry.stakes(provider).locked == locked - jobs[job_id]["collateral"]
    assert token.balanceOf(market) == MARKET_DUST


def test_fill__without_result__running_then_submit_and_expiry_rules(
    chain, market, jobs, make_provider, order, signed, provider, user, keeper
):
    machine = make_provider(provider)
    o = order()
    _fill(market, jobs, *signed(o), machine, provider, result=b"\x00" * 32, uri="")
    job_id = order_id(market.address, chain.chain_id, o)
    assert_job(market, jobs, job_id, JobStatus.RUNNING)
    assert jobs[job_id]["complete_by"] == chain.blocks.head.timestamp + COMPLETE_WITHIN
    # Too early to expire; the provider delivers as for an accepted job.
    with ape.reverts("job_market: job not overdue"):
        market.expire(job_id, jobs.t(job_id), sender=keeper)
    jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, URI, sender=provider))
    assert_job(market, jobs, job_id, JobStatus.SUBMITTED)


def test_fill__running_past_deadline__expires_with_refund_and_penalty(
    chain, market, token, jobs, make_provider, order, signed, provider, user, keeper
):
    machine = make_provider(provider)
    o = order()
    _fill(market, jobs, *signed(o), machine, provider, result=b"\x00" * 32, uri="")
    job_id = order_id(market.address, chain.chain_id, o)
    chain.mine(timestamp=jobs[job_id]["complete_by"] + 1)
    before = token.balanceOf(user)
    tx = market.expire(job_id, jobs.t(job_id), sender=keeper)
    e = ev(tx, market.JobExpired)
    assert e["refund"] == PAYMENT and e["penalty"] > 0
    assert token.balanceOf(user) == before + PAYMENT + e["penalty"]
    assert market.job_status(job_id) == JobStatus.EXPIRED


def test_fill__user_disputes__goes_to_audit(chain, market, jobs, make_provider, order, signed, provider, user):
    machine = make_provider(provider)
    o = order()
    _fill(market, jobs, *signed(o), machine, provider)
    job_id = order_id(market.address, chain.chain_id, o)
    market.dispute(job_id, jobs.t(job_id), sender=user)
    assert market.job_status(job_id) == JobStatus.AUDIT
    assert market.disputes(job_id).challenger == user.address


def test_replay__same_order_twice__refused(market, jobs, make_provider, order, signed, provider, provider2):
    machine = make_provider(provider)
    other = make_provider(provider2)
    o = order(provider=ZERO_ADDRESS)  # an open order: any provider may fill it, once
    t, sig = signed(o)
    _fill(market, jobs, t, sig, machine, provider)
    for m, who in ((machine, provider), (other, provider2)):
        with ape.reverts("job_market: order filled or cancelled"):
            market.fill_order(t, sig, m, RESULT, URI, sender=who)


def test_signature__other_signer_chain_or_contract__refused(
    chain, market, jobs, make_provider, order, signed, provider, user2, snap
):
    machine = make_provider(provider)
    o = order()
    t, _ = signed(o)
    forged = [
        signed(o, signer=user2)[1],  # someone else signs for `user`
        signed(o, chain_id=chain.chain_id + 1)[1],  # the same order for another chain
        signed(o, market_address=provider.address)[1],  # ... for another contract
        b"\x01" * 65,  # garbage
    ]
    for sig in forged:
        with no_change(snap), ape.reverts():
            market.fill_order(t, sig, machine, RESULT, URI, sender=provider)
    with ape.reverts("job_market: bad order signature"):
        market.fill_order(t, forged[0], machine, RESULT, URI, sender=provider)


@pytest.mark.parametrize(
    "field,value",
    [
        ("price_per_unit", PRICE // 2),
        ("compute_units", UNITS * 10),
        ("max_tokens", 10**30),
        ("accept_by", 2**40),
        ("class_id", H100),
        ("salt", 2),
    ],
)
def test_signature__order_altered_after_signing__refused(
    market, make_provider, order, signed, provider, snap, field, value
):
    machine = make_provider(provider)
    o = order()
    _, sig = signed(o)
    altered = order_tuple({**o, field: value})
    with no_change(snap), ape.reverts("job_market: bad order signature"):
        market.fill_order(altered, sig, machine, RESULT, URI, sender=provider)


def test_targeted_order__other_provider__refused(market, make_provider, order, signed, provider2, snap):
    machine = make_provider(provider2)
    t, sig = signed(order())
    with no_change(snap), ape.reverts("job_market: order is for another provider"):
        market.fill_order(t, sig, machine, RESULT, URI, sender=provider2)


def test_open_order__machine_of_another_class__refused(market, make_provider, order, signed, provider, snap):
    machine = make_provider(provider)  # a CPU machine
    t, sig = signed(order(provider=ZERO_ADDRESS, class_id=H100))
    with no_change(snap), ape.reverts():
        market.fill_order(t, sig, machine, RESULT, URI, sender=provider)


def test_expired_paused_slippage_and_bad_terms__refused(
    chain, market, make_provider, order, signed, provider, deployer, snap
):
    machine = make_provider(provider)
    cases = [
        (order(accept_by=chain.pending_timestamp - 1), "job_market: order expired"),
        (order(max_tokens=PAYMENT - 1), "job_market: payment above max tokens"),
        (order(compute_units=0), "job_market: compute units is zero"),
        (order(price_per_unit=0), "job_market: price is zero"),
        (order(spec_hash=b"\x00" * 32), "job_market: spec hash is empty"),
        (order(complete_within=1), "job_market: completion time too short"),
    ]
    for o, reason in cases:
        t, sig = signed(o)
        with no_change(snap), ape.reverts(reason):
            market.fill_order(t, sig, machine, RESULT, URI, sender=provider)
    market.pause(sender=deployer)
    t, sig = signed(order())
    with ape.reverts("pausable: contract is paused"):
        market.fill_order(t, sig, machine, RESULT, URI, sender=provider)


def test_user_without_allowance__refused_and_nothing_moves(
    market, token, make_provider, order, signed, provider, user, snap
):
    machine = make_provider(provider)
    token.approve(market, 0, sender=user)
    t, sig = signed(order())
    with no_change(snap), ape.reverts("erc20: insufficient allowance"):
        market.fill_order(t, sig, machine, RESULT, URI, sender=provider)


def test_cancel_order__only_the_user__then_never_filled(
    chain, market, jobs, make_provider, order, signed, provider, user, attacker
):
    machine = make_provider(provider)
    o = order()
    t, sig = signed(o)
    with ape.reverts("job_market: caller is not the user"):
        market.cancel_order(t, sender=attacker)
    tx = market.cancel_order(t, sender=user)
    job_id = order_id(market.address, chain.chain_id, o)
    assert ev(tx, market.OrderCancelled) == {"job_id": job_id, "user": user.address}
    assert market.job_status(job_id) == JobStatus.CANCELLED
    for action in (
        lambda: market.fill_order(t, sig, machine, RESULT, URI, sender=provider),
        lambda: market.cancel_order(t, sender=user),
    ):
        with ape.reverts("job_market: order filled or cancelled"):
            action()


def test_cancel_order__after_fill__refused(chain, market, jobs, make_provider, order, signed, provider, user):
    machine = make_provider(provider)
    o = order()
    t, sig = signed(o)
    _fill(market, jobs, t, sig, machine, provider)
    with ape.reverts("job_market: order filled or cancelled"):
        market.cancel_order(t, sender=user)
    assert market.job_status(order_id(market.address, chain.chain_id, o)) == JobStatus.SUBMITTED


def test_typehash__contract_and_offchain_agree(market):
    assert bytes(market.ORDER_TYPEHASH()) == ORDER_TYPEHASH
    assert bytes(market.ORDER_BATCH_TYPEHASH()) == ORDER_BATCH_TYPEHASH
    fields, name, version, chain_id, verifying = tuple(market.eip712Domain())[:5]
    assert (name, version, verifying) == ("gpunet JobMarket", "1", market.address)


################################################################
#                     prepaid deposits                         #
################################################################


def test_deposit__fill_draws_from_it__no_token_transfer(
    chain, market, token, jobs, make_provider, order, signed, provider, user
):
    machine = make_provider(provider)
    tx = market.deposit(5 * PAYMENT, sender=user)
    assert ev(tx, market.Deposited) == {"account": user.address, "amount": 5 * PAYMENT, "balance": 5 * PAYMENT}
    assert market.deposits(user) == 5 * PAYMENT
    wallet = token.balanceOf(user)
    tx = _fill(market, jobs, *signed(order()), machine, provider)
    assert market.deposits(user) == 4 * PAYMENT
    assert token.balanceOf(user) == wallet
    assert not tx.decode_logs(token.Transfer)  # paid from the deposit: the token is not called
    _books(chain, market, token, jobs, [user])


def test_deposit__short__fill_uses_the_allowance(
    chain, market, token, jobs, make_provider, order, signed, provider, user
):
    machine = make_provider(provider)
    market.deposit(PAYMENT - 1, sender=user)
    wallet = token.balanceOf(user)
    _fill(market, jobs, *signed(order()), machine, provider)
    assert market.deposits(user) == PAYMENT - 1
    assert token.balanceOf(user) == wallet - PAYMENT
    _books(chain, market, token, jobs, [user])


def test_withdraw_deposit__own_only__any_time_even_paused(market, token, user, attacker, deployer, snap):
    market.deposit(3 * PAYMENT, sender=user)
    with no_change(snap), ape.reverts("job_market: amount above deposit"):
        market.withdraw_deposit(1, sender=attacker)  # a deposit is its depositor's alone
    with no_change(snap), ape.reverts("job_market: amount above deposit"):
        market.withdraw_deposit(3 * PAYMENT + 1, sender=user)
    for bad in (lambda: market.withdraw_deposit(0, sender=user), lambda: market.deposit(0, sender=user)):
        with no_change(snap), ape.reverts("job_market: amount is zero"):
            bad()
    market.pause(sender=deployer)
    before = token.balanceOf(user)
    tx = market.withdraw_deposit(2 * PAYMENT, sender=user)
    assert ev(tx, market.DepositWithdrawn) == {"account": user.address, "amount": 2 * PAYMENT, "balance": PAYMENT}
    assert token.balanceOf(user) == before + 2 * PAYMENT
    assert market.deposits(user) == PAYMENT


def _books(chain, market, token, jobs, depositors):
    """The market holds the escrow of its unfinished jobs, the credit not yet claimed, the
    deposits and its permanent wei (no disputes in these tests)."""
    held = sum(
        j["payment"] for i, j in jobs.items()
        if market.job_status(i) in (JobStatus.RUNNING, JobStatus.SUBMITTED, JobStatus.AUDIT)
    )  # fmt: skip
    held += sum(market.accrued(p)[0] for p in {j["provider"] for j in jobs.values()})
    held += sum(market.deposits(a) for a in depositors)
    assert token.balanceOf(market) == held + MARKET_DUST


################################################################
#                        batch orders                          #
################################################################


@pytest.fixture
def batch(chain, user, provider):
    """batch(n, **changes) -> a batch order dict of n $1 CPU jobs from `user` for `provider`."""

    def _make(n=3, **changes):
        o = {
            "user": user.address,
            "provider": provider.address,
            "class_id": CPU,
            "spec_hashes": [bytes([0x30 + i]) * 32 for i in range(n)],
            "compute_units": [UNITS * (i + 1) for i in range(n)],
            "price_per_unit": PRICE,
            "max_tokens": 2 * PAYMENT * n * (n + 1) // 2,
            "accept_by": chain.pending_timestamp + 3600,
            "complete_within": COMPLETE_WITHIN,
            "salt": 7,
        }
        o.update(changes)
        return o

    return _make


@pytest.fixture
def signed_batch(chain, market, user):
    def _sign(o, signer=None):
        return order_batch_tuple(o), sign_order_batch(signer or user, market.address, chain.chain_id, o)

    return _sign


def _results(n):
    return [bytes([0xA0 + i]) * 32 for i in range(n)]


def test_batch__fill__one_escrow_one_lock_each_job_submitted_then_settled(
    chain, market, registry, token, jobs, make_provider, batch, signed_batch, provider, user, keeper
):
    machine = make_provider(provider)
    o = batch(3)
    first = order_batch_id(market.address, chain.chain_id, o)
    assert market.order_batch_id(order_batch_tuple(o)) == first
    wallet, locked = token.balanceOf(user), registry.locked(provider)
    tx = jobs.track(market.fill_order_batch(*signed_batch(o), machine, _results(3), URI, sender=provider))
    ids = [first + i for i in range(3)]
    assert sorted(jobs) == ids
    e = ev(tx, market.OrderBatchFilled)
    assert (e["order_id"], e["jobs"], e["result_uri"]) == (first, 3, URI)
    total = sum(jobs[i]["payment"] for i in ids)
    assert total == PAYMENT * 6  # 1 + 2 + 3 units-worth
    for n, job_id in enumerate(ids):
        assert_job(market, jobs, job_id, JobStatus.SUBMITTED)
        assert (jobs[job_id]["result_hash"], jobs[job_id]["usd_value"]) == (_results(3)[n], PRICE * UNITS * (n + 1))
        # Anyone rebuilds a batch job from the chain's events alone.
        assert job_from_chain(market, job_id) == jobs[job_id]
    assert token.balanceOf(user) == wallet - total
    assert len(tx.decode_logs(token.Transfer)) == 1  # one escrow for the batch
    assert registry.locked(provider) == locked + sum(jobs[i]["collateral"] for i in ids)
    chain.mine(timestamp=jobs[first]["challenge_end"] + 1)
    market.finalize_many(ids, [jobs.t(i) for i in ids], sender=keeper)
    assert tuple(market.accrued(provider)) == credit(jobs, ids)
    market.claim(provider, sender=keeper)
    assert registry.locked(provider) == locked
    _books(chain, market, token, jobs, [user])


def test_batch__without_results__all_running(chain, market, jobs, make_provider, batch, signed_batch, provider):
    machine = make_provider(provider)
    o = batch(2)
    jobs.track(market.fill_order_batch(*signed_batch(o), machine, [], "", sender=provider))
    first = order_batch_id(market.address, chain.chain_id, o)
    for job_id in (first, first + 1):
        assert_job(market, jobs, job_id, JobStatus.RUNNING)


def test_batch__from_deposit(market, token, jobs, make_provider, batch, signed_batch, provider, user):
    machine = make_provider(provider)
    market.deposit(10 * PAYMENT, sender=user)
    wallet = token.balanceOf(user)
    tx = market.fill_order_batch(*signed_batch(batch(3)), machine, _results(3), URI, sender=provider)
    assert market.deposits(user) == 4 * PAYMENT and token.balanceOf(user) == wallet
    assert not tx.decode_logs(token.Transfer)


def test_batch__replay_alteration_and_bad_shapes__refused(
    chain, market, jobs, make_provider, batch, signed_batch, provider, provider2, user2, snap
):
    machine = make_provider(provider)
    o = batch(3)
    t, sig = signed_batch(o)
    altered = [
        {**o, "spec_hashes": list(reversed(o["spec_hashes"]))},  # the same jobs, another order
        {**o, "compute_units": [u * 2 for u in o["compute_units"]]},
        {**o, "spec_hashes": o["spec_hashes"][:2], "compute_units": o["compute_units"][:2]},  # a job dropped
        {**o, "price_per_unit": PRICE - 1},
    ]
    for a in altered:
        with no_change(snap), ape.reverts("job_market: bad order signature"):
            market.fill_order_batch(order_batch_tuple(a), sig, machine, _results(len(a["spec_hashes"])), URI,
                                    sender=provider)  # fmt: skip
    with no_change(snap), ape.reverts("job_market: bad order signature"):
        market.fill_order_batch(t, signed_batch(o, signer=user2)[1], machine, _results(3), URI, sender=provider)
    with no_change(snap), ape.reverts("job_market: length mismatch"):
        market.fill_order_batch(t, sig, machine, _results(2), URI, sender=provider)
    bad = batch(2, compute_units=[UNITS])
    with no_change(snap), ape.reverts("job_market: length mismatch"):
        market.fill_order_batch(*signed_batch(bad), machine, _results(2), URI, sender=provider)
    cheap = batch(3, max_tokens=PAYMENT * 6 - 1)
    with no_change(snap), ape.reverts("job_market: payment above max tokens"):
        market.fill_order_batch(*signed_batch(cheap), machine, _results(3), URI, sender=provider)
    other = make_provider(provider2)
    with no_change(snap), ape.reverts("job_market: order is for another provider"):
        market.fill_order_batch(t, sig, other, _results(3), URI, sender=provider2)
    jobs.track(market.fill_order_batch(t, sig, machine, _results(3), URI, sender=provider))
    with ape.reverts("job_market: order filled or cancelled"):
        market.fill_order_batch(t, sig, machine, _results(3), URI, sender=provider)


def test_batch__cancel__only_the_user__then_never_filled(
    chain, market, make_provider, batch, signed_batch, provider, user, attacker
):
    machine = make_provider(provider)
    t, sig = signed_batch(batch(2))
    with ape.reverts("job_market: caller is not the user"):
        market.cancel_order_batch(t, sender=attacker)
    market.cancel_order_batch(t, sender=user)
    with ape.reverts("job_market: order filled or cancelled"):
        market.fill_order_batch(t, sig, machine, _results(2), URI, sender=provider)
