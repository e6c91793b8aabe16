"""JobMarket batch forms: create_jobs, accept_jobs, submit_results, finalize_many.

Each takes N jobs in one call; an empty batch, mismatched lengths or any one bad job
reverts the whole call with nothing changed.
"""

import ape
import market_helpers
import pytest
from conftest import ACCEPT_WINDOW, COMPLETE_WITHIN, CPU, PRICE, STAKE, UNIT_PARAMS, UNITS
from market_helpers import (
    RESULT,
    ZERO32,
    ZERO_ADDRESS,
    assert_books,
    assert_job,
    evs,
    isolated,
    no_change,
    tampered,
)

from offchain.constants import MAX_BATCH, MAX_BPS, ONE_TOKEN, JobStatus
from offchain.params import BeaconParams

# Fixtures shared by the market tests.
snap = market_helpers.snap
ledger = market_helpers.ledger
settlement = market_helpers.settlement

P = UNIT_PARAMS
# AuditBeacon's round length: a result submitted at T is drawn from round T // ROUND + 1.
ROUND = BeaconParams().round_seconds
T4 = 2
MAX_TOKENS = 2**256 - 1
# At conftest's $1 per token a job escrows its USD value in tokens.
PAYMENT = PRICE * UNITS
COLLATERAL = PAYMENT * P.collateral_bps // MAX_BPS
FEE = PAYMENT * P.fee_bps // MAX_BPS
SPECS = [bytes([i]) * 32 for i in (0x11, 0x12, 0x13)]
UNIT_LIST = [UNITS, 2 * UNITS, 3 * UNITS]


def _ts(chain, tx):
    return chain.blocks[tx.block_number].timestamp


def _create_jobs(
    market,
    user,
    provider=ZERO_ADDRESS,
    class_id=CPU,
    specs=SPECS,
    units=UNIT_LIST,
    max_price=PRICE,
    accept_window=ACCEPT_WINDOW,
    complete_within=COMPLETE_WITHIN,
    max_tokens=MAX_TOKENS,
):
    return market.create_jobs(
        provider, class_id, specs, units, max_price, accept_window, complete_within, max_tokens, sender=user
    )


@pytest.fixture
def open_batch(market, jobs, user):
    """Three open CPU jobs (1, 2 and 3 tokens) from one create_jobs call: their ids."""
    tx = jobs.track(_create_jobs(market, user))
    return [e["job_id"] for e in evs(tx, market.JobCreated)]


@pytest.fixture
def running_batch(open_batch, make_provider, market, jobs, provider):
    """`open_batch` accepted by `provider` in one accept_jobs call: (ids, machine_id)."""
    machine_id = make_provider(provider)
    jobs.track(market.accept_jobs(open_batch, [jobs.t(i) for i in open_batch], machine_id, sender=provider))
    return open_batch, machine_id


@pytest.fixture
def submitted_batch(running_batch, market, jobs, provider):
    ids, machine_id = running_batch
    jobs.track(market.submit_results(ids, [jobs.t(i) for i in ids], [RESULT] * 3, ["a", "b", "c"], sender=provider))
    return ids, machine_id


################################################################
#                         create_jobs                          #
################################################################


def test_create_jobs__targeted__creates_each_job_with_one_transfer(
    make_provider, market, token, jobs, chain, provider, user, ledger
):
    make_provider(provider)
    ledger.mark()
    tx = jobs.track(_create_jobs(market, user, provider, max_price=2 * PRICE))
    accept_by = _ts(chain, tx) + ACCEPT_WINDOW
    created = evs(tx, market.JobCreated)
    assert [e["job_id"] for e in created] == [1, 2, 3]
    assert created == [
        {
            "job_id": i + 1,
            "user": user.address,
            "provider": provider.address,
            "class_id": CPU,
            "spec_hash": SPECS[i],
            "compute_units": UNIT_LIST[i],
            "payment": PRICE * UNIT_LIST[i],
            "usd_value": PRICE * UNIT_LIST[i],
            "collateral": PRICE * UNIT_LIST[i] * P.collateral_bps // MAX_BPS,
            "fee_bps": P.fee_bps,
            "accept_by": accept_by,
            "complete_within": COMPLETE_WITHIN,
        }
        for i in range(3)
    ]
    total = PRICE * sum(UNIT_LIST)
    assert evs(tx, token.Transfer) == [{"sender": user.address, "receiver": market.address, "value": total}]
    assert market.job_count() == 3
    for job_id in (1, 2, 3):
        assert_job(market, jobs, job_id, JobStatus.OPEN)
    ledger.expect(user=-total, market=total)
    assert_books(market, token, jobs)


def test_create_jobs__open__priced_at_max_price(market, token, jobs, user, ledger):
    tx = jobs.track(_create_jobs(market, user, max_price=5 * PRICE))
    assert [e["payment"] for e in evs(tx, market.JobCreated)] == [5 * PRICE * u for u in UNIT_LIST]
    ledger.expect(user=-5 * PRICE * sum(UNIT_LIST), market=5 * PRICE * sum(UNIT_LIST))
    assert_books(market, token, jobs)


def test_create_jobs__max_batch__works__one_more__reverts(market, jobs, user, snap):
    tx = jobs.track(_create_jobs(market, user, specs=[SPECS[0]] * MAX_BATCH, units=[1] * MAX_BATCH))
    assert len(evs(tx, market.JobCreated)) == MAX_BATCH
    assert market.job_count() == MAX_BATCH
    with no_change(snap), ape.reverts():
        _create_jobs(market, user, specs=[SPECS[0]] * (MAX_BATCH + 1), units=[1] * (MAX_BATCH + 1))


def test_create_jobs__empty_batch__reverts(market, user, snap):
    with no_change(snap), ape.reverts("job_market: empty batch"):
        _create_jobs(market, user, specs=[], units=[])


def test_create_jobs__length_mismatch__reverts(market, user, snap):
    with no_change(snap):
        with ape.reverts("job_market: length mismatch"):
            _create_jobs(market, user, specs=SPECS, units=UNIT_LIST[:2])
        with ape.reverts("job_market: length mismatch"):
            _create_jobs(market, user, specs=SPECS[:2], units=UNIT_LIST)


@pytest.mark.parametrize(
    "specs,units,message",
    [
        ([SPECS[0], ZERO32, SPECS[2]], UNIT_LIST, "job_market: spec hash is empty"),
        (SPECS, [UNITS, UNITS, 0], "job_market: compute units is zero"),
    ],
    ids=["empty_spec", "zero_units"],
)
def test_create_jobs__one_bad_job__reverts_whole_batch(market, user, snap, specs, units, message):
    with no_change(snap), ape.reverts(message):
        _create_jobs(market, user, specs=specs, units=units)
    assert market.job_count() == 0


def test_create_jobs__pricing_checks__revert(make_provider, market, provider, provider2, user, snap):
    make_provider(provider)
    with no_change(snap):
        with ape.reverts("job_market: unknown class"):
            _create_jobs(market, user, class_id=99)
        with ape.reverts("job_market: offer above max price"):
            _create_jobs(market, user, provider, max_price=PRICE - 1)
        with ape.reverts("job_market: provider has no offer"):
            _create_jobs(market, user, provider2)
        with ape.reverts("job_market: price is zero"):
            _create_jobs(market, user, max_price=0)
        with ape.reverts("job_market: accept window too short"):
            _create_jobs(market, user, accept_window=P.min_accept_window - 1)
        with ape.reverts("job_market: completion time too long"):
            _create_jobs(market, user, complete_within=P.max_complete_within + 1)
        with ape.reverts("job_market: payment above max tokens"):
            _create_jobs(market, user, max_tokens=PRICE * sum(UNIT_LIST) - 1)


################################################################
#                         accept_jobs                          #
################################################################


def test_accept_jobs__three__locks_sum_of_collateral_once(
    open_batch, make_provider, market, registry, token, jobs, chain, provider, ledger
):
    machine_id = make_provider(provider)
    ledger.mark()
    tx = jobs.track(market.accept_jobs(open_batch, [jobs.t(i) for i in open_batch], machine_id, sender=provider))
    total = sum(jobs[i]["collateral"] for i in open_batch)
    assert total == COLLATERAL * 6
    complete_by = _ts(chain, tx) + COMPLETE_WITHIN
    assert evs(tx, market.JobAccepted) == [
        {
            "job_id": i,
            "provider": provider.address,
            "machine_id": machine_id,
            "complete_by": complete_by,
            "collateral": jobs[i]["collateral"],
            "audit_bps": 0,
        }
        for i in open_batch
    ]
    for job_id in open_batch:
        assert_job(market, jobs, job_id, JobStatus.RUNNING)
    assert tuple(registry.stakes(provider)) == (STAKE, total, 0, 0)
    ledger.expect()
    assert_books(market, token, jobs)


def test_accept_jobs__empty_batch__reverts(make_provider, market, provider, snap):
    machine_id = make_provider(provider)
    with no_change(snap), ape.reverts("job_market: empty batch"):
        market.accept_jobs([], [], machine_id, sender=provider)


def test_accept_jobs__length_mismatch__reverts(open_batch, make_provider, market, jobs, provider, snap):
    machine_id = make_provider(provider)
    with no_change(snap):
        with ape.reverts("job_market: length mismatch"):
            market.accept_jobs(open_batch, [jobs.t(i) for i in open_batch[:2]], machine_id, sender=provider)
        with ape.reverts("job_market: length mismatch"):
            market.accept_jobs(open_batch[:2], [jobs.t(i) for i in open_batch], machine_id, sender=provider)


def test_accept_jobs__class_mismatch_in_batch__reverts(
    open_batch, make_job, make_provider, market, jobs, provider, user, snap
):
    machine_id = make_provider(provider)
    t4_id, _ = make_job(user, target=False, class_id=T4)
    ids = [open_batch[0], t4_id]
    with no_change(snap), ape.reverts("job_market: class mismatch in batch"):
        market.accept_jobs(ids, [jobs.t(i) for i in ids], machine_id, sender=provider)


def test_accept_jobs__machine_of_other_class__reverts(open_batch, make_provider, market, jobs, provider, snap):
    t4_machine = make_provider(provider, class_id=T4, price=0)
    with no_change(snap), ape.reverts("registry: class mismatch"):
        market.accept_jobs(open_batch, [jobs.t(i) for i in open_batch], t4_machine, sender=provider)


def test_accept_jobs__one_bad_job__reverts_whole_batch(
    open_batch, make_provider, make_job, market, jobs, provider, provider2, user, snap
):
    machine_id = make_provider(provider)
    make_provider(provider2)
    a, b, c = open_batch
    taken, _ = make_job(user, target=False)
    jobs.track(market.accept(taken, jobs.t(taken), machine_id, sender=provider))
    for_other, _ = make_job(user, target=provider2)

    def attempt(ids, tuples, message):
        with ape.reverts(message):
            market.accept_jobs(ids, tuples, machine_id, sender=provider)

    with no_change(snap):
        attempt([a, taken, c], [jobs.t(a), jobs.t(taken), jobs.t(c)], "job_market: job not open")
        # A duplicate: the first copy moved the job on, so the second (Open) struct is stale.
        attempt([a, b, a], [jobs.t(a), jobs.t(b), jobs.t(a)], "job_market: job data mismatch")
        attempt([a, b, c], [jobs.t(a), tampered(jobs, b, "payment"), jobs.t(c)], "job_market: job data mismatch")
        attempt([a, b, c], [jobs.t(a), jobs.t(b), jobs.t(b)], "job_market: job data mismatch")  # swapped struct
        attempt([a, for_other], [jobs.t(a), jobs.t(for_other)], "job_market: job is for another provider")
    for job_id in open_batch:
        assert market.job_status(job_id) == JobStatus.OPEN


def test_accept_jobs__one_past_accept_by__reverts_whole_batch(
    make_provider, make_job, market, jobs, chain, provider, user, snap
):
    machine_id = make_provider(provider)
    early, _ = make_job(user, target=False, accept_window=P.min_accept_window)
    late, _ = make_job(user, target=False)
    chain.pending_timestamp = jobs[early]["accept_by"] + 1
    with no_change(snap), ape.reverts("job_market: acceptance window over"):
        market.accept_jobs([late, early], [jobs.t(late), jobs.t(early)], machine_id, sender=provider)


def test_accept_jobs__sum_above_free_stake__reverts_though_each_fits(
    make_provider, make_job, market, registry, jobs, chain, provider, user, snap
):
    # 20 tokens staked; two 10-token jobs need 15 tokens of collateral each.
    machine_id = make_provider(provider, stake=20 * ONE_TOKEN)
    ids = [make_job(user, target=False, units=10 * UNITS)[0] for _ in range(2)]
    for job_id in ids:
        with isolated(chain):
            market.accept_jobs([job_id], [jobs.t(job_id)], machine_id, sender=provider)
            assert registry.locked(provider) == 15 * ONE_TOKEN
    with no_change(snap), ape.reverts("registry: not enough free stake"):
        market.accept_jobs(ids, [jobs.t(i) for i in ids], machine_id, sender=provider)


################################################################
#                        submit_results                        #
################################################################


def test_submit_results__three__submits_each(running_batch, market, token, jobs, chain, provider, ledger):
    ids, _ = running_batch
    hashes = [bytes([i]) * 32 for i in (0x21, 0x22, 0x23)]
    ledger.mark()
    tx = jobs.track(market.submit_results(ids, [jobs.t(i) for i in ids], hashes, ["a", "b", "c"], sender=provider))
    challenge_end = _ts(chain, tx) + P.challenge_window
    assert evs(tx, market.ResultSubmitted) == [
        {
            "job_id": i,
            "provider": provider.address,
            "result_hash": h,
            "result_uri": uri,
            "challenge_end": challenge_end,
            "draw_round": _ts(chain, tx) // ROUND + 1,
        }
        for i, h, uri in zip(ids, hashes, ["a", "b", "c"], strict=True)
    ]
    for job_id in ids:
        assert_job(market, jobs, job_id, JobStatus.SUBMITTED)
    ledger.expect()
    assert_books(market, token, jobs)


def test_submit_results__empty_batch__reverts(market, provider, snap):
    with no_change(snap), ape.reverts("job_market: empty batch"):
        market.submit_results([], [], [], [], sender=provider)


def test_submit_results__length_mismatch__reverts(running_batch, market, jobs, provider, snap):
    ids, _ = running_batch
    tuples = [jobs.t(i) for i in ids]
    with no_change(snap):
        for args in (
            (ids, tuples[:2], [RESULT] * 3, ["u"] * 3),
            (ids, tuples, [RESULT] * 2, ["u"] * 3),
            (ids, tuples, [RESULT] * 3, ["u"] * 4),
        ):
            with ape.reverts("job_market: length mismatch"):
                market.submit_results(*args, sender=provider)


def test_submit_results__one_bad_job__reverts_whole_batch(running_batch, make_job, market, jobs, provider, user, snap):
    ids, machine_id = running_batch
    a, b, c = ids
    jobs.track(market.submit_result(c, jobs.t(c), RESULT, "c", sender=provider))
    with no_change(snap):
        with ape.reverts("job_market: job not running"):
            market.submit_results(ids, [jobs.t(i) for i in ids], [RESULT] * 3, ["u"] * 3, sender=provider)
        with ape.reverts("job_market: result hash is empty"):
            market.submit_results([a, b], [jobs.t(a), jobs.t(b)], [RESULT, ZERO32], ["u"] * 2, sender=provider)
        with ape.reverts("job_market: caller is not the provider"):
            market.submit_results([a, b], [jobs.t(a), jobs.t(b)], [RESULT] * 2, ["u"] * 2, sender=user)
    assert [market.job_status(i) for i in ids] == [JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.SUBMITTED]


################################################################
#                        finalize_many                         #
################################################################


def test_finalize_many__submitted_and_timed_out_audit__credits_each__one_claim_settles(
    submitted_batch, market, registry, token, settlement, jobs, chain, provider, user, keeper, ledger
):
    ids, _ = submitted_batch
    market.dispute(ids[1], jobs.t(ids[1]), sender=user)
    bond = market.disputes(ids[1]).bond
    chain.pending_timestamp = market.disputes(ids[1]).audit_deadline + 1
    ledger.mark()
    tx = market.finalize_many(ids, [jobs.t(i) for i in ids], sender=keeper)
    payments = [jobs[i]["payment"] for i in ids]
    fees = [p * P.fee_bps // MAX_BPS for p in payments]
    assert evs(tx, market.JobFinalized) == [
        {
            "job_id": i,
            "provider": provider.address,
            "usd_value": jobs[i]["usd_value"],
            "burned": p,
            "fee": f,
            "audit_timed_out": i == ids[1],
        }
        for i, p, f in zip(ids, payments, fees, strict=True)
    ]
    for job_id in ids:
        assert_job(market, jobs, job_id, JobStatus.FINALIZED)
    # One run of one provider: one credit; the user's bond comes back with the timed-out audit.
    paid = sum(payments) - sum(fees)
    assert evs(tx, settlement.Settled) == []
    ledger.expect(user=bond, market=-bond)
    assert market.accrued(provider)[::2] == (sum(payments), paid)
    # The claim: one burn of every escrow, one mint of the sum minus the fees.
    claim = market.claim(provider, sender=keeper)
    assert [(e["provider"], e["burned"], e["minted"]) for e in evs(claim, settlement.Settled)] == [
        (provider.address, sum(payments), paid)
    ]
    ledger.expect(provider=paid, market=-sum(payments), supply=-sum(fees), settled=sum(payments))
    assert tuple(registry.stakes(provider)) == (STAKE, 0, 0, 0)
    # All three jobs ($1, $2, $3) count as completed; the timed-out audit is no audit passed.
    assert tuple(registry.reputation(provider)) == (3, 0, 0, 0, 0, 0)
    assert_books(market, token, jobs)


def test_finalize_many__empty_or_length_mismatch__reverts(submitted_batch, market, jobs, chain, keeper, snap):
    ids, _ = submitted_batch
    chain.pending_timestamp = jobs[ids[0]]["challenge_end"] + 1
    with no_change(snap):
        with ape.reverts("job_market: empty batch"):
            market.finalize_many([], [], sender=keeper)
        with ape.reverts("job_market: length mismatch"):
            market.finalize_many(ids, [jobs.t(i) for i in ids[:2]], sender=keeper)


def test_finalize_many__one_not_ready__reverts_whole_batch(
    submitted_batch, make_job, market, jobs, chain, provider, user, keeper, snap
):
    ids, machine_id = submitted_batch
    late, _ = make_job(user)
    chain.pending_timestamp = jobs[ids[0]]["challenge_end"] - 10
    jobs.track(market.accept(late, jobs.t(late), machine_id, sender=provider))
    jobs.track(market.submit_result(late, jobs.t(late), RESULT, "late", sender=provider))
    market.dispute(ids[2], jobs.t(ids[2]), sender=user)
    chain.pending_timestamp = jobs[ids[0]]["challenge_end"] + 1
    a, b, audited = ids
    with no_change(snap):
        with ape.reverts("job_market: challenge window open"):
            market.finalize_many([a, late], [jobs.t(a), jobs.t(late)], sender=keeper)
        with ape.reverts("job_market: audit in progress"):
            market.finalize_many([a, audited], [jobs.t(a), jobs.t(audited)], sender=keeper)
        with ape.reverts("job_market: job not finalizable"):
            market.finalize_many([a, b, a], [jobs.t(a), jobs.t(b), jobs.t(a)], sender=keeper)  # duplicate
        with ape.reverts("job_market: job data mismatch"):
            market.finalize_many([a, b], [jobs.t(a), tampered(jobs, b, "fee_bps")], sender=keeper)
    assert [market.job_status(i) for i in ids] == [JobStatus.SUBMITTED, JobStatus.SUBMITTED, JobStatus.AUDIT]
