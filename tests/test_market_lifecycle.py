"""JobMarket single-job lifecycle: create_job, accept, submit_result, finalize, cancel, expire,
the job views (job_status, job_commitment, quote; `offchain.chain.jobs.check_job` compares a
struct with the commitment), the happy path
Open -> Running -> Submitted -> Finalized and the timeout paths Open -> Cancelled and
Running -> Expired, with both sides of every deadline.

Amounts use the conftest defaults: price $0.001 per unit x 1,000 units = $1 = 1 token of
escrow at conftest's $1.00 per token, collateral 150% = 1.5 tokens, fee 5% = 0.05 token.
Settlement (burn-and-mint, in two steps): finalizing credits the provider (`accrued`: the escrow,
the USD value minus the fee, the escrow minus the fee) and moves no token; the provider's claim
(anyone's `claim(provider)`) burns the whole escrow and Settlement mints the provider the escrow
minus the fee at $1, so the supply falls by the fee. The last section covers the burn-and-mint
rules at the JobMarket level: the slippage bound `max_tokens`, the job's USD value, the quote at
another price, the credit of finalize and finalize_many and the burn and mint of the claims
(tests/test_market_claim.py attacks the claim itself).
"""

import re
from pathlib import Path

import ape
import market_helpers
import pytest
from conftest import (
    ACCEPT_WINDOW,
    COMPLETE_WITHIN,
    CPU,
    PRICE,
    STAKE,
    UNIT_PARAMS,
    UNITS,
    USD_PER_TOKEN,
)
from eth_abi import encode
from eth_utils import keccak
from market_helpers import (
    RESULT,
    SPEC,
    ZERO32,
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

from offchain.chain.jobs import JOB_ABI_TYPES, check_job, commitment
from offchain.chain.price import ONE_USD
from offchain.constants import JOB_FIELDS, MAX_BPS, ONE_TOKEN, JobStatus, MachineStatus
from offchain.params import DAY, BeaconParams

# Fixtures shared by the market tests.
snap = market_helpers.snap
ledger = market_helpers.ledger
settlement = market_helpers.settlement

P = UNIT_PARAMS
# AuditBeacon's round length: a result submitted at T is drawn from round T // ROUND + 1.
ROUND = BeaconParams().round_seconds
T4 = 2
MAX_TOKENS = 2**256 - 1
# The job's USD value (18 decimals); at $1 per token it escrows as many tokens.
USD_VALUE = PRICE * UNITS
PAYMENT = USD_VALUE
COLLATERAL = PAYMENT * P.collateral_bps // MAX_BPS
FEE = PAYMENT * P.fee_bps // MAX_BPS
JOB_ABI = "(" + ",".join(JOB_ABI_TYPES) + ")"


def _ts(chain, tx):
    return chain.blocks[tx.block_number].timestamp


def _create(
    market,
    user,
    provider=ZERO_ADDRESS,
    class_id=CPU,
    spec=SPEC,
    units=UNITS,
    max_price=PRICE,
    accept_window=ACCEPT_WINDOW,
    complete_within=COMPLETE_WITHIN,
    max_tokens=MAX_TOKENS,
):
    return market.create_job(
        provider, class_id, spec, units, max_price, accept_window, complete_within, max_tokens, sender=user
    )


################################################################
#                          create_job                          #
################################################################


def test_create_job__targeted__escrows_payment_at_offer_price(
    make_provider, market, token, jobs, chain, provider, user, ledger
):
    make_provider(provider)
    ledger.mark()
    # Max price is twice the offer: the job is priced at the offer.
    tx = jobs.track(_create(market, user, provider, max_price=2 * PRICE))
    job_id = market.job_count()
    assert job_id == 1
    assert ev(tx, market.JobCreated) == {
        "job_id": job_id,
        "user": user.address,
        "provider": provider.address,
        "class_id": CPU,
        "spec_hash": SPEC,
        "compute_units": UNITS,
        "payment": PAYMENT,
        "usd_value": USD_VALUE,
        "collateral": COLLATERAL,
        "fee_bps": P.fee_bps,
        "accept_by": _ts(chain, tx) + ACCEPT_WINDOW,
        "complete_within": COMPLETE_WITHIN,
    }
    assert ev(tx, token.Transfer) == {"sender": user.address, "receiver": market.address, "value": PAYMENT}
    assert_job(market, jobs, job_id, JobStatus.OPEN)
    ledger.expect(user=-PAYMENT, market=PAYMENT)
    assert_books(market, token, jobs)


def test_create_job__open__escrows_max_price(market, token, jobs, chain, user, ledger):
    tx = jobs.track(_create(market, user, ZERO_ADDRESS, units=7, max_price=3 * PRICE))
    job_id = market.job_count()
    e = ev(tx, market.JobCreated)
    assert e["provider"] == ZERO_ADDRESS
    assert e["usd_value"] == 21 * PRICE and e["payment"] == 21 * PRICE
    assert e["collateral"] == 21 * PRICE * P.collateral_bps // MAX_BPS
    assert jobs[job_id]["machine_id"] == 0 and jobs[job_id]["complete_by"] == 0
    assert_job(market, jobs, job_id, JobStatus.OPEN)
    ledger.expect(user=-21 * PRICE, market=21 * PRICE)
    assert_books(market, token, jobs)


def test_create_job__ids_are_sequential(make_job, market, user, user2):
    first, _ = make_job(user, target=False)
    second, _ = make_job(user2, target=False)
    assert (first, second) == (1, 2)
    assert market.job_count() == 2


@pytest.mark.parametrize("class_id", [0, 99])
def test_create_job__unknown_class__reverts(market, user, snap, class_id):
    with no_change(snap), ape.reverts("job_market: unknown class"):
        _create(market, user, class_id=class_id)


def test_create_job__disabled_class__reverts(market, registry, deployer, user, snap):
    registry.set_gpu_class(T4, "T4", 25 * ONE_TOKEN, False, sender=deployer)
    with no_change(snap), ape.reverts("job_market: unknown class"):
        _create(market, user, class_id=T4)


@pytest.mark.parametrize(
    "accept_window,complete_within,message",
    [
        (P.min_accept_window - 1, COMPLETE_WITHIN, "job_market: accept window too short"),
        (P.max_accept_window + 1, COMPLETE_WITHIN, "job_market: accept window too long"),
        (ACCEPT_WINDOW, P.min_complete_within - 1, "job_market: completion time too short"),
        (ACCEPT_WINDOW, P.max_complete_within + 1, "job_market: completion time too long"),
    ],
    ids=["accept_short", "accept_long", "complete_short", "complete_long"],
)
def test_create_job__window_out_of_bounds__reverts(market, user, snap, accept_window, complete_within, message):
    with no_change(snap), ape.reverts(message):
        _create(market, user, accept_window=accept_window, complete_within=complete_within)


def test_create_job__windows_at_bounds__accepted(market, jobs, chain, user):
    for window, within in ((P.min_accept_window, P.min_complete_within), (P.max_accept_window, P.max_complete_within)):
        tx = jobs.track(_create(market, user, accept_window=window, complete_within=within))
        e = ev(tx, market.JobCreated)
        assert e["accept_by"] == _ts(chain, tx) + window
        assert e["complete_within"] == within
    assert market.job_count() == 2


def test_create_job__open_job_price_zero__reverts(market, user, snap):
    with no_change(snap), ape.reverts("job_market: price is zero"):
        _create(market, user, ZERO_ADDRESS, max_price=0)


def test_create_job__provider_without_offer__reverts(make_provider, registry, market, user, provider, provider2, snap):
    make_provider(provider)  # offers CPU only
    make_provider(provider2, price=0)  # registered, no offer
    with no_change(snap):
        with ape.reverts("job_market: provider has no offer"):
            _create(market, user, provider2)
        with ape.reverts("job_market: provider has no offer"):
            _create(market, user, provider, class_id=T4)
    registry.set_offer(CPU, 0, sender=provider)  # offer withdrawn
    with no_change(snap), ape.reverts("job_market: provider has no offer"):
        _create(market, user, provider)


def test_create_job__offer_above_max_price__reverts(make_provider, market, jobs, provider, user, snap):
    make_provider(provider)
    with no_change(snap), ape.reverts("job_market: offer above max price"):
        _create(market, user, provider, max_price=PRICE - 1)
    # An offer equal to the max price is taken.
    tx = jobs.track(_create(market, user, provider, max_price=PRICE))
    assert ev(tx, market.JobCreated)["payment"] == PAYMENT


def test_create_job__empty_spec_hash__reverts(market, user, snap):
    with no_change(snap), ape.reverts("job_market: spec hash is empty"):
        _create(market, user, spec=ZERO32)


def test_create_job__zero_compute_units__reverts(market, user, snap):
    with no_change(snap), ape.reverts("job_market: compute units is zero"):
        _create(market, user, units=0)


def test_create_job__no_allowance_or_balance__reverts(market, keeper, snap):
    # keeper holds no tokens and has approved nothing.
    with no_change(snap), ape.reverts("erc20: insufficient allowance"):
        _create(market, keeper)


def test_create_job__allowance_without_balance__reverts(market, token, keeper, snap):
    token.approve(market, 2**256 - 1, sender=keeper)
    with no_change(snap), ape.reverts("erc20: transfer amount exceeds balance"):
        _create(market, keeper)


def test_create_job__collateral__rounds_up(market, deployer, user, params):
    def collateral(price, units):
        return ev(_create(market, user, units=units, max_price=price), market.JobCreated)["collateral"]

    # 150%: 1 wei -> 1.5 -> 2; 2 -> 3 exactly; 3 -> 4.5 -> 5.
    assert [collateral(1, 1), collateral(1, 2), collateral(1, 3)] == [2, 3, 5]
    set_params(market, deployer, params, collateral_bps=1)
    # 0.01%: never rounds down to zero, and one wei over a multiple adds one.
    assert [collateral(1, 1), collateral(1, 10_000), collateral(1, 10_001)] == [1, 1, 2]


def test_settlement__params_changed_after_create__job_keeps_fee_and_collateral(
    make_provider, make_job, market, registry, token, jobs, chain, provider, user, keeper, deployer, params, ledger
):
    machine_id = make_provider(provider)
    old_id, _ = make_job(user)
    set_params(market, deployer, params, fee_bps=2_000, collateral_bps=30_000)
    new_id, new_job = make_job(user)
    assert new_job["fee_bps"] == 2_000 and new_job["collateral"] == 3 * PAYMENT
    assert jobs[old_id]["fee_bps"] == P.fee_bps and jobs[old_id]["collateral"] == COLLATERAL

    jobs.track(market.accept(old_id, jobs.t(old_id), machine_id, sender=provider))
    assert registry.locked(provider) == COLLATERAL
    jobs.track(market.accept(new_id, jobs.t(new_id), machine_id, sender=provider))
    assert registry.locked(provider) == COLLATERAL + 3 * PAYMENT
    for job_id in (old_id, new_id):
        jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=provider))
    chain.pending_timestamp = jobs[new_id]["challenge_end"] + 1
    ledger.mark()
    tx = market.finalize(old_id, jobs.t(old_id), sender=keeper)
    assert ev(tx, market.JobFinalized)["fee"] == FEE
    assert market.accrued(provider) == (PAYMENT, USD_NET, PAYMENT - FEE)
    ledger.expect()
    # The fee is burned at the claim: the escrow goes, the provider is minted the escrow minus the fee.
    market.claim(provider, sender=keeper)
    ledger.expect(provider=PAYMENT - FEE, market=-PAYMENT, supply=-FEE, settled=PAYMENT)
    assert registry.locked(provider) == 3 * PAYMENT

    # The job created after the change settles under the new fee.
    new_fee = PAYMENT * 2_000 // MAX_BPS
    tx = market.finalize(new_id, jobs.t(new_id), sender=keeper)
    assert ev(tx, market.JobFinalized)["fee"] == new_fee
    assert market.accrued(provider) == (PAYMENT, USD_VALUE - USD_VALUE * 2_000 // MAX_BPS, PAYMENT - new_fee)
    ledger.expect()
    market.claim(provider, sender=keeper)
    ledger.expect(provider=PAYMENT - new_fee, market=-PAYMENT, supply=-new_fee, settled=PAYMENT)
    assert registry.locked(provider) == 0
    assert_books(market, token, jobs)


################################################################
#                            views                             #
################################################################


def test_views__unknown_job__empty(market, jobs, make_job, user):
    job_id, _ = make_job(user, target=False)
    unknown = job_id + 1
    assert market.job_status(unknown) == JobStatus.NONE
    assert market.job_commitment(unknown) == ZERO32
    assert not check_job(market, unknown, jobs.t(job_id))
    assert not check_job(market, 0, jobs.t(job_id))


def test_job_commitment__is_keccak_of_abi_encoded_struct_with_status_byte_cleared(make_job, market, jobs, user):
    job_id, _ = make_job(user, target=False)
    t = jobs.t(job_id)
    expected = keccak(encode([JOB_ABI], [t]))[:31] + b"\x00"
    assert commitment(jobs[job_id]) == expected
    assert market.job_commitment(job_id) == expected
    assert check_job(market, job_id, t)
    for field in JOB_FIELDS:
        bad = tampered(jobs, job_id, field)
        assert keccak(encode([JOB_ABI], [bad]))[:31] + b"\x00" != expected, field
        assert not check_job(market, job_id, bad), field


def test_check_job__after_transition__only_new_struct_matches(running_job, market, jobs, provider):
    job_id, _ = running_job
    old = jobs.t(job_id)
    jobs.track(market.submit_result(job_id, old, RESULT, "r", sender=provider))
    assert not check_job(market, job_id, old)
    assert check_job(market, job_id, jobs.t(job_id))


def test_status_constants__match_offchain():
    # JobMarket does not export the constants (bytes kept for code); its job store declares them.
    source = (Path(__file__).resolve().parents[1] / "contracts/modules/job_store.vy").read_text()
    declared = dict(re.findall(r"^STATUS_([A-Z]+): public\(constant\(uint8\)\) = (\d+)$", source, re.M))
    assert {name: int(v) for name, v in declared.items()} == {s.name: int(s) for s in JobStatus}


################################################################
#                            accept                            #
################################################################


def test_accept__targeted__locks_collateral_and_sets_deadline(
    make_provider, make_job, market, registry, token, jobs, chain, provider, user, ledger
):
    machine_id = make_provider(provider)
    job_id, _ = make_job(user)
    ledger.mark()
    tx = jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    complete_by = _ts(chain, tx) + COMPLETE_WITHIN
    assert ev(tx, market.JobAccepted) == {
        "job_id": job_id,
        "provider": provider.address,
        "machine_id": machine_id,
        "complete_by": complete_by,
        "collateral": COLLATERAL,
        "audit_bps": 0,
    }
    job = jobs[job_id]
    assert (job["provider"], job["machine_id"], job["complete_by"]) == (provider.address, machine_id, complete_by)
    assert_job(market, jobs, job_id, JobStatus.RUNNING)
    assert tuple(registry.stakes(provider)) == (STAKE, COLLATERAL, 0, 0)
    assert registry.free_stake(provider) == STAKE - COLLATERAL
    ledger.expect()  # accepting moves no tokens
    assert_books(market, token, jobs)


def test_accept__open_job__any_provider_with_active_machine_of_class(
    make_provider, make_job, market, registry, jobs, provider, provider2, user
):
    make_provider(provider)
    machine2 = make_provider(provider2, price=0)  # an open job needs no offer
    job_id, _ = make_job(user, target=False)
    tx = jobs.track(market.accept(job_id, jobs.t(job_id), machine2, sender=provider2))
    assert ev(tx, market.JobAccepted)["provider"] == provider2.address
    assert jobs[job_id]["provider"] == provider2.address
    assert jobs[job_id]["machine_id"] == machine2
    assert_job(market, jobs, job_id, JobStatus.RUNNING)
    assert registry.locked(provider2) == COLLATERAL
    assert registry.locked(provider) == 0


def test_accept__at_accept_by__works__one_second_after__reverts(
    make_provider, make_job, market, jobs, chain, provider, user, snap
):
    machine_id = make_provider(provider)
    job_id, job = make_job(user)
    with isolated(chain):
        chain.pending_timestamp = job["accept_by"]
        market.accept(job_id, jobs.t(job_id), machine_id, sender=provider)
        assert market.job_status(job_id) == JobStatus.RUNNING
    chain.pending_timestamp = job["accept_by"] + 1
    with no_change(snap), ape.reverts("job_market: acceptance window over"):
        market.accept(job_id, jobs.t(job_id), machine_id, sender=provider)


def test_accept__twice__reverts(running_job, market, jobs, provider, snap):
    job_id, machine_id = running_job
    with no_change(snap):
        with ape.reverts("job_market: job not open"):
            market.accept(job_id, jobs.t(job_id), machine_id, sender=provider)
        # The struct as it was when Open no longer matches the commitment.
        stale = dict(jobs[job_id], provider=provider.address, machine_id=0, complete_by=0)
        with ape.reverts("job_market: job data mismatch"):
            market.accept(job_id, tuple(stale[f] for f in JOB_FIELDS), machine_id, sender=provider)


def test_accept__targeted_job_by_other_provider__reverts(
    make_provider, make_job, market, jobs, provider, provider2, user, snap
):
    make_provider(provider)
    machine2 = make_provider(provider2)
    job_id, _ = make_job(user)  # for `provider`
    with no_change(snap), ape.reverts("job_market: job is for another provider"):
        market.accept(job_id, jobs.t(job_id), machine2, sender=provider2)


def test_accept__machine_of_other_class__reverts(make_provider, make_job, market, jobs, provider, user, snap):
    t4_machine = make_provider(provider, class_id=T4, price=0)
    job_id, _ = make_job(user, target=False)  # CPU
    with no_change(snap), ape.reverts("registry: class mismatch"):
        market.accept(job_id, jobs.t(job_id), t4_machine, sender=provider)


def test_accept__machine_not_active__reverts(
    make_provider, make_job, market, registry, jobs, deployer, provider, user, snap
):
    machine_id = make_provider(provider, activate=False)  # Pending
    job_id, _ = make_job(user)

    def attempt():
        with no_change(snap), ape.reverts("registry: machine not active"):
            market.accept(job_id, jobs.t(job_id), machine_id, sender=provider)

    attempt()
    registry.set_machine_status(machine_id, int(MachineStatus.JAILED), sender=deployer)
    attempt()
    registry.exit_machine(machine_id, sender=provider)
    attempt()


def test_accept__someone_elses_machine__reverts(make_provider, make_job, market, jobs, provider, provider2, user, snap):
    make_provider(provider)
    machine2 = make_provider(provider2)
    job_id, _ = make_job(user, target=False)
    with no_change(snap), ape.reverts("registry: not the provider's machine"):
        market.accept(job_id, jobs.t(job_id), machine2, sender=provider)


def test_accept__unknown_machine__reverts(make_provider, make_job, market, jobs, provider, user, snap):
    make_provider(provider)
    job_id, _ = make_job(user, target=False)
    with no_change(snap), ape.reverts("registry: not the provider's machine"):
        market.accept(job_id, jobs.t(job_id), 999, sender=provider)


def test_accept__collateral_equal_to_free_stake__works__one_wei_more__reverts(
    make_provider, make_job, market, registry, jobs, chain, provider, user, snap
):
    # 15 tokens staked (CPU minimum is 10); a 10-token job needs exactly 15 tokens of collateral.
    machine_id = make_provider(provider, stake=15 * ONE_TOKEN)
    job_id, job = make_job(user, target=False, units=10 * UNITS)
    assert job["collateral"] == 15 * ONE_TOKEN
    with isolated(chain):
        market.accept(job_id, jobs.t(job_id), machine_id, sender=provider)
        assert registry.free_stake(provider) == 0
    registry.request_unstake(1, sender=provider)
    with no_change(snap), ape.reverts("registry: not enough free stake"):
        market.accept(job_id, jobs.t(job_id), machine_id, sender=provider)


def test_accept__stake_below_minimum__reverts(make_provider, make_job, market, jobs, provider, user, snap):
    # CPU needs 10 tokens per GPU; 5 staked covers the 1.5-token collateral but not the minimum.
    machine_id = make_provider(provider, stake=5 * ONE_TOKEN)
    job_id, _ = make_job(user)
    with no_change(snap), ape.reverts("registry: stake below minimum"):
        market.accept(job_id, jobs.t(job_id), machine_id, sender=provider)


def test_accept__cancelled_job__reverts(make_provider, make_job, market, jobs, provider, user, snap):
    machine_id = make_provider(provider)
    job_id, _ = make_job(user)
    market.cancel(job_id, jobs.t(job_id), sender=user)
    with no_change(snap), ape.reverts("job_market: job not open"):
        market.accept(job_id, jobs.t(job_id), machine_id, sender=provider)


def test_accept__tampered_job__reverts_for_every_field(make_provider, make_job, market, jobs, provider, user, snap):
    machine_id = make_provider(provider)
    job_id, _ = make_job(user)
    with no_change(snap):
        for field in JOB_FIELDS:
            with ape.reverts("job_market: job data mismatch"):
                market.accept(job_id, tampered(jobs, job_id, field), machine_id, sender=provider)


def test_unknown_job__every_entry_point__reverts(running_job, market, jobs, provider, user, deployer, snap):
    job_id, machine_id = running_job
    t = jobs.t(job_id)
    calls = {
        "accept": lambda j: market.accept(j, t, machine_id, sender=provider),
        "accept_jobs": lambda j: market.accept_jobs([j], [t], machine_id, sender=provider),
        "submit_result": lambda j: market.submit_result(j, t, RESULT, "r", sender=provider),
        "submit_results": lambda j: market.submit_results([j], [t], [RESULT], ["r"], sender=provider),
        "dispute": lambda j: market.dispute(j, t, sender=user),
        "post_verdict": lambda j: market.post_verdict(j, t, False, sender=deployer),
        "finalize": lambda j: market.finalize(j, t, sender=user),
        "finalize_many": lambda j: market.finalize_many([j], [t], sender=user),
        "cancel": lambda j: market.cancel(j, t, sender=user),
        "expire": lambda j: market.expire(j, t, sender=user),
    }
    with no_change(snap):
        for call in calls.values():
            for unknown in (0, job_id + 1):
                with ape.reverts("job_market: unknown job"):
                    call(unknown)


################################################################
#                         submit_result                        #
################################################################


def test_submit_result__running__records_result_and_opens_challenge_window(
    running_job, market, registry, token, jobs, chain, provider, ledger
):
    job_id, _ = running_job
    ledger.mark()
    tx = jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, "http://p/result", sender=provider))
    challenge_end = _ts(chain, tx) + P.challenge_window
    assert ev(tx, market.ResultSubmitted) == {
        "job_id": job_id,
        "provider": provider.address,
        "result_hash": RESULT,
        "result_uri": "http://p/result",
        "challenge_end": challenge_end,
        "draw_round": _ts(chain, tx) // ROUND + 1,
    }
    assert jobs[job_id]["result_hash"] == RESULT and jobs[job_id]["challenge_end"] == challenge_end
    assert_job(market, jobs, job_id, JobStatus.SUBMITTED)
    assert registry.locked(provider) == COLLATERAL  # still locked until settlement
    ledger.expect()
    assert_books(market, token, jobs)


def test_submit_result__at_complete_by__works__one_second_after__reverts(
    running_job, market, jobs, chain, provider, snap
):
    job_id, _ = running_job
    complete_by = jobs[job_id]["complete_by"]
    with isolated(chain):
        chain.pending_timestamp = complete_by
        market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=provider)
        assert market.job_status(job_id) == JobStatus.SUBMITTED
    chain.pending_timestamp = complete_by + 1
    with no_change(snap), ape.reverts("job_market: completion deadline passed"):
        market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=provider)


def test_submit_result__not_the_provider__reverts(running_job, market, jobs, user, provider2, snap):
    job_id, _ = running_job
    with no_change(snap):
        for caller in (user, provider2):
            with ape.reverts("job_market: caller is not the provider"):
                market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=caller)


def test_submit_result__empty_result_hash__reverts(running_job, market, jobs, provider, snap):
    job_id, _ = running_job
    with no_change(snap), ape.reverts("job_market: result hash is empty"):
        market.submit_result(job_id, jobs.t(job_id), ZERO32, "r", sender=provider)


def test_submit_result__twice__reverts(submitted_job, market, jobs, provider, snap):
    job_id, _ = submitted_job
    with no_change(snap), ape.reverts("job_market: job not running"):
        market.submit_result(job_id, jobs.t(job_id), b"\x33" * 32, "r2", sender=provider)


def test_submit_result__open_job__reverts(make_provider, make_job, market, jobs, provider, user, snap):
    make_provider(provider)
    job_id, _ = make_job(user)
    with no_change(snap), ape.reverts("job_market: job not running"):
        market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=provider)


def test_submit_result__tampered_job__reverts_for_every_field(running_job, market, jobs, provider, snap):
    job_id, _ = running_job
    with no_change(snap):
        for field in JOB_FIELDS:
            with ape.reverts("job_market: job data mismatch"):
                market.submit_result(job_id, tampered(jobs, job_id, field), RESULT, "r", sender=provider)


################################################################
#                 happy path and finalize                      #
################################################################


def test_lifecycle__open_running_submitted_finalized_claimed__pays_provider(
    make_provider, market, registry, token, jobs, chain, provider, user, keeper, ledger
):
    machine_id = make_provider(provider)
    ledger.mark()
    jobs.track(_create(market, user, provider))
    job_id = market.job_count()
    assert_job(market, jobs, job_id, JobStatus.OPEN)
    ledger.expect(user=-PAYMENT, market=PAYMENT)
    assert_books(market, token, jobs)

    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    assert_job(market, jobs, job_id, JobStatus.RUNNING)
    assert registry.locked(provider) == COLLATERAL
    ledger.expect()
    assert_books(market, token, jobs)

    jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=provider))
    assert_job(market, jobs, job_id, JobStatus.SUBMITTED)
    ledger.expect()
    assert_books(market, token, jobs)

    chain.pending_timestamp = jobs[job_id]["challenge_end"] + 1
    tx = market.finalize(job_id, jobs.t(job_id), sender=keeper)
    assert ev(tx, market.JobFinalized) == {
        "job_id": job_id,
        "provider": provider.address,
        "usd_value": USD_VALUE,
        "burned": PAYMENT,
        "fee": FEE,
        "audit_timed_out": False,
    }
    assert_job(market, jobs, job_id, JobStatus.FINALIZED)
    # Finalizing credits the provider and touches nothing else: no token moves, and the
    # collateral stays locked and the job off the provider's record until its claim.
    assert not tx.decode_logs(registry.CollateralUnlocked)
    ledger.expect()
    assert market.accrued(provider) == (PAYMENT, USD_NET, PAYMENT - FEE)
    assert tuple(registry.stakes(provider)) == (STAKE, COLLATERAL, 0, 0)
    assert registry.reputation(provider).completed == 0
    assert_books(market, token, jobs)

    tx = market.claim(provider, sender=keeper)
    ledger.expect(provider=PAYMENT - FEE, market=-PAYMENT, supply=-FEE, settled=PAYMENT)
    assert ev(tx, registry.CollateralUnlocked) == {"provider": provider.address, "amount": COLLATERAL, "locked": 0}
    assert tuple(registry.stakes(provider)) == (STAKE, 0, 0, 0)
    assert registry.reputation(provider).completed == 1
    assert market.accrued(provider) == (0, 0, 0)
    assert_books(market, token, jobs)


def test_finalize__at_challenge_end__reverts__one_second_after__works(
    submitted_job, market, token, jobs, chain, keeper, snap
):
    job_id, _ = submitted_job
    challenge_end = jobs[job_id]["challenge_end"]
    chain.pending_timestamp = challenge_end
    with no_change(snap), ape.reverts("job_market: challenge window open"):
        market.finalize(job_id, jobs.t(job_id), sender=keeper)
    chain.pending_timestamp = challenge_end + 1
    market.finalize(job_id, jobs.t(job_id), sender=keeper)
    assert_job(market, jobs, job_id, JobStatus.FINALIZED)
    assert_books(market, token, jobs)


def test_finalize__twice__reverts(submitted_job, market, jobs, chain, keeper, snap):
    job_id, _ = submitted_job
    chain.pending_timestamp = jobs[job_id]["challenge_end"] + 1
    market.finalize(job_id, jobs.t(job_id), sender=keeper)
    with no_change(snap), ape.reverts("job_market: job not finalizable"):
        market.finalize(job_id, jobs.t(job_id), sender=keeper)


def test_finalize__open_running_or_cancelled__reverts(
    make_provider, make_job, market, jobs, chain, provider, user, keeper, snap
):
    machine_id = make_provider(provider)
    open_id, _ = make_job(user)
    running_id, _ = make_job(user)
    jobs.track(market.accept(running_id, jobs.t(running_id), machine_id, sender=provider))
    cancelled_id, _ = make_job(user)
    market.cancel(cancelled_id, jobs.t(cancelled_id), sender=user)
    chain.pending_timestamp = jobs[running_id]["complete_by"] + P.challenge_window + 1
    with no_change(snap):
        for job_id in (open_id, running_id, cancelled_id):
            with ape.reverts("job_market: job not finalizable"):
                market.finalize(job_id, jobs.t(job_id), sender=keeper)


def test_finalize__tampered_job__reverts(submitted_job, market, jobs, chain, keeper, snap):
    job_id, _ = submitted_job
    chain.pending_timestamp = jobs[job_id]["challenge_end"] + 1
    with no_change(snap):
        for field in ("payment", "fee_bps", "provider", "challenge_end", "result_hash"):
            with ape.reverts("job_market: job data mismatch"):
                market.finalize(job_id, tampered(jobs, job_id, field), sender=keeper)


################################################################
#                            cancel                            #
################################################################


def test_cancel__open_job__refunds_user(make_provider, make_job, market, token, jobs, provider, user, ledger):
    make_provider(provider)
    job_id, _ = make_job(user)
    ledger.mark()
    tx = market.cancel(job_id, jobs.t(job_id), sender=user)
    assert ev(tx, market.JobCancelled) == {"job_id": job_id, "user": user.address, "refund": PAYMENT}
    assert_job(market, jobs, job_id, JobStatus.CANCELLED)
    ledger.expect(user=PAYMENT, market=-PAYMENT)
    assert_books(market, token, jobs)


def test_cancel__not_the_user__reverts(make_provider, make_job, market, jobs, provider, user2, attacker, snap):
    make_provider(provider)
    job_id, _ = make_job(user2)
    with no_change(snap):
        for caller in (provider, attacker):
            with ape.reverts("job_market: caller is not the user"):
                market.cancel(job_id, jobs.t(job_id), sender=caller)


def test_cancel__running_or_already_cancelled__reverts(running_job, make_job, market, jobs, user, snap):
    running_id, _ = running_job
    cancelled_id, _ = make_job(user)
    market.cancel(cancelled_id, jobs.t(cancelled_id), sender=user)
    with no_change(snap):
        for job_id in (running_id, cancelled_id):
            with ape.reverts("job_market: job not open"):
                market.cancel(job_id, jobs.t(job_id), sender=user)


def test_cancel__tampered_job__reverts(make_provider, make_job, market, jobs, provider, user, snap):
    make_provider(provider)
    job_id, _ = make_job(user)
    with no_change(snap):
        for field in ("user", "payment", "accept_by"):
            with ape.reverts("job_market: job data mismatch"):
                market.cancel(job_id, tampered(jobs, job_id, field), sender=user)


################################################################
#                            expire                            #
################################################################


def test_expire__open_job__at_accept_by_reverts__after_cancels_and_refunds(
    make_provider, make_job, market, token, jobs, chain, provider, user, keeper, ledger, snap
):
    make_provider(provider)
    job_id, job = make_job(user)
    chain.pending_timestamp = job["accept_by"]
    with no_change(snap), ape.reverts("job_market: acceptance window open"):
        market.expire(job_id, jobs.t(job_id), sender=keeper)
    chain.pending_timestamp = job["accept_by"] + 1
    ledger.mark()
    tx = market.expire(job_id, jobs.t(job_id), sender=keeper)
    assert ev(tx, market.JobCancelled) == {"job_id": job_id, "user": user.address, "refund": PAYMENT}
    assert_job(market, jobs, job_id, JobStatus.CANCELLED)
    ledger.expect(user=PAYMENT, market=-PAYMENT)
    assert_books(market, token, jobs)


def test_expire__running_job__at_complete_by_reverts__after_refunds_and_slashes_no_show(
    running_job, market, registry, token, jobs, chain, provider, user, keeper, ledger, snap
):
    job_id, _ = running_job
    complete_by = jobs[job_id]["complete_by"]
    chain.pending_timestamp = complete_by
    with no_change(snap), ape.reverts("job_market: job not overdue"):
        market.expire(job_id, jobs.t(job_id), sender=keeper)
    chain.pending_timestamp = complete_by + 1
    ledger.mark()
    tx = market.expire(job_id, jobs.t(job_id), sender=keeper)
    penalty = COLLATERAL * P.noshow_penalty_bps // MAX_BPS
    assert penalty == 3 * ONE_TOKEN // 10
    assert ev(tx, market.JobExpired) == {
        "job_id": job_id,
        "provider": provider.address,
        "refund": PAYMENT,
        "penalty": penalty,
    }
    assert ev(tx, registry.Slashed) == {
        "provider": provider.address,
        "amount": penalty,
        "reason": keccak(text="NO_SHOW"),
        "beneficiary": user.address,
        "slasher": market.address,
    }
    assert_job(market, jobs, job_id, JobStatus.EXPIRED)
    ledger.expect(user=PAYMENT + penalty, market=-PAYMENT, registry=-penalty)
    # The rest of the collateral is free again.
    assert tuple(registry.stakes(provider)) == (STAKE - penalty, 0, 0, 0)
    assert_books(market, token, jobs)


def test_expire__no_show_penalty_zero__refund_only(
    running_job, market, registry, jobs, chain, provider, keeper, deployer, params, ledger
):
    set_params(market, deployer, params, noshow_penalty_bps=0)
    job_id, _ = running_job
    chain.pending_timestamp = jobs[job_id]["complete_by"] + 1
    ledger.mark()
    tx = market.expire(job_id, jobs.t(job_id), sender=keeper)
    assert ev(tx, market.JobExpired)["penalty"] == 0
    assert evs(tx, registry.Slashed) == []
    ledger.expect(user=PAYMENT, market=-PAYMENT)
    assert tuple(registry.stakes(provider)) == (STAKE, 0, 0, 0)


def test_expire__not_expirable_states__revert(submitted_job, make_job, market, jobs, chain, user, keeper, snap):
    submitted_id, _ = submitted_job
    cancelled_id, _ = make_job(user)
    market.cancel(cancelled_id, jobs.t(cancelled_id), sender=user)
    expired_id, _ = make_job(user, target=False)
    chain.pending_timestamp = jobs[expired_id]["accept_by"] + 1
    market.expire(expired_id, jobs.t(expired_id), sender=keeper)
    # Far past every deadline: still nothing to expire.
    chain.pending_timestamp = jobs[submitted_id]["complete_by"] + 10 * DAY
    with no_change(snap):
        for job_id in (submitted_id, cancelled_id, expired_id):
            with ape.reverts("job_market: job cannot expire"):
                market.expire(job_id, jobs.t(job_id), sender=keeper)


def test_expire__expired_or_finalized__reverts(
    submitted_job, make_provider, make_job, market, jobs, chain, provider, user, keeper, snap
):
    finalized_id, machine_id = submitted_job
    late_id, _ = make_job(user)
    jobs.track(market.accept(late_id, jobs.t(late_id), machine_id, sender=provider))
    chain.pending_timestamp = max(jobs[late_id]["complete_by"], jobs[finalized_id]["challenge_end"]) + 1
    market.finalize(finalized_id, jobs.t(finalized_id), sender=keeper)
    market.expire(late_id, jobs.t(late_id), sender=keeper)
    with no_change(snap):
        for job_id in (finalized_id, late_id):
            with ape.reverts("job_market: job cannot expire"):
                market.expire(job_id, jobs.t(job_id), sender=keeper)


def test_expire__tampered_job__reverts(running_job, market, jobs, chain, keeper, snap):
    job_id, _ = running_job
    chain.pending_timestamp = jobs[job_id]["complete_by"] + 1
    with no_change(snap):
        for field in ("complete_by", "collateral", "payment", "user"):
            with ape.reverts("job_market: job data mismatch"):
                market.expire(job_id, tampered(jobs, job_id, field), sender=keeper)


################################################################
#         burn-and-mint settlement (JobMarket side)            #
################################################################

ZERO = ZERO_ADDRESS
USD_NET = USD_VALUE - USD_VALUE * P.fee_bps // MAX_BPS


def _ceil_div(a, b):
    return -(-a // b)


def _submitted(market, jobs, make_job, machine_id, prov, user, units=UNITS, spec=SPEC):
    job_id, _ = make_job(user, target=prov, units=units, spec_hash=spec)
    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=prov))
    jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=prov))
    return job_id


def test_create_job__max_tokens_below_quote__reverts__at_quote__works(
    make_provider, market, registry, settlement, jobs, provider, user, snap, ledger
):
    make_provider(provider)
    quote = settlement.quote(registry.offers(provider, CPU) * UNITS)
    assert quote == PAYMENT
    with no_change(snap):
        for target in (provider.address, ZERO):  # targeted (offer) and open (max price) jobs
            with ape.reverts("job_market: payment above max tokens"):
                _create(market, user, target, max_tokens=quote - 1)
    assert market.job_count() == 0
    ledger.mark()
    tx = jobs.track(_create(market, user, provider, max_tokens=quote))
    assert ev(tx, market.JobCreated)["payment"] == quote
    ledger.expect(user=-quote, market=quote)


def test_create_jobs__total_above_max_tokens__reverts__at_total__works(market, jobs, user, snap, ledger):
    specs = [bytes([i]) * 32 for i in (0x11, 0x12, 0x13)]
    units = [UNITS, 2 * UNITS, 3 * UNITS]
    total = 6 * PAYMENT

    def create(max_tokens):
        return market.create_jobs(
            ZERO, CPU, specs, units, PRICE, ACCEPT_WINDOW, COMPLETE_WITHIN, max_tokens, sender=user
        )

    with no_change(snap):
        with ape.reverts("job_market: payment above max tokens"):
            create(total - 1)
        # Every job fits the bound on its own: it bounds the batch's total.
        with ape.reverts("job_market: payment above max tokens"):
            create(3 * PAYMENT)
    assert market.job_count() == 0
    ledger.mark()
    tx = jobs.track(create(total))
    assert [e["payment"] for e in evs(tx, market.JobCreated)] == [PAYMENT, 2 * PAYMENT, 3 * PAYMENT]
    ledger.expect(user=-total, market=total)


def test_create_job__usd_value_is_offer_times_units__payment_is_per_unit_quote_times_units(
    make_provider, set_price, market, registry, settlement, jobs, provider, user, ledger
):
    # docs/ECONOMICS.md, "Funding": payment = Settlement.quote(offer) x units. At $3 per token
    # the quote does not divide evenly: each unit's tokens are rounded up, so the escrow is at
    # least the quote of the job's whole USD value and at most one wei per unit above it.
    make_provider(provider)
    set_price(3 * ONE_USD)
    units = UNITS + 1
    usd = PRICE * units
    unit_tokens = _ceil_div(PRICE * ONE_USD, 3 * ONE_USD)
    assert unit_tokens * 3 > PRICE  # rounded up
    want = unit_tokens * units
    ledger.mark()
    tx = jobs.track(_create(market, user, provider, units=units, max_price=2 * PRICE))
    e = ev(tx, market.JobCreated)
    job = jobs[e["job_id"]]
    assert e["usd_value"] == job["usd_value"] == usd == registry.offers(provider, CPU) * units
    assert e["payment"] == job["payment"] == settlement.quote(PRICE) * units == want
    whole = settlement.quote(usd)
    assert whole == _ceil_div(usd * ONE_USD, 3 * ONE_USD)
    assert whole <= job["payment"] < whole + units
    assert job["collateral"] == _ceil_div(want * P.collateral_bps, MAX_BPS)
    assert_job(market, jobs, e["job_id"], JobStatus.OPEN)
    ledger.expect(user=-want, market=want)


def test_create_job__at_one_dollar__payment_is_settlement_quote_of_usd_value(make_job, market, settlement, jobs, user):
    job_id, job = make_job(user, target=False, units=3 * UNITS + 7)
    assert job["usd_value"] == PRICE * (3 * UNITS + 7)
    assert job["payment"] == settlement.quote(job["usd_value"]) == job["usd_value"]
    assert_job(market, jobs, job_id, JobStatus.OPEN)


def test_finalize_then_claim__burns_escrow__mints_provider__supply_falls_by_fee(
    submitted_job, market, token, settlement, jobs, chain, keeper, provider, ledger
):
    job_id, _ = submitted_job
    chain.pending_timestamp = jobs[job_id]["challenge_end"] + 1
    minted, burned, counted = token.total_minted(), token.total_burned(), market.total_burned()
    ledger.mark()
    tx = market.finalize(job_id, jobs.t(job_id), sender=keeper)
    assert ev(tx, market.JobFinalized) == {
        "job_id": job_id,
        "provider": provider.address,
        "usd_value": USD_VALUE,
        "burned": PAYMENT,
        "fee": FEE,
        "audit_timed_out": False,
    }
    # Finalizing moves no token and settles nothing yet; it counts the escrow for the taper.
    assert evs(tx, settlement.Settled) == [] and evs(tx, token.Transfer) == []
    ledger.expect()
    assert market.total_burned() == counted + PAYMENT
    tx = market.claim(provider, sender=keeper)
    assert ev(tx, settlement.Settled) == {
        "provider": provider.address,
        "burned": PAYMENT,
        "usd_net": USD_NET,
        "cap": PAYMENT - FEE,
        "minted": PAYMENT - FEE,
        "price": USD_PER_TOKEN,
    }
    # One burn of the whole escrow, one mint of the provider's pay; no transfer to anyone else.
    assert evs(tx, token.Transfer) == [
        {"sender": market.address, "receiver": ZERO, "value": PAYMENT},
        {"sender": ZERO, "receiver": provider.address, "value": PAYMENT - FEE},
    ]
    ledger.expect(provider=PAYMENT - FEE, market=-PAYMENT, supply=-FEE, settled=PAYMENT)
    assert token.total_burned() == burned + PAYMENT
    assert token.total_minted() == minted + PAYMENT - FEE
    assert token.totalSupply() == token.total_minted() - token.total_burned()
    assert market.total_burned() == counted + PAYMENT  # counted once, at finalization


def test_claim__price_moved_since_funding__provider_minted_usd_net_at_claim_price_capped_by_escrow(
    make_provider, make_job, set_price, market, token, settlement, jobs, chain, keeper, provider, user, ledger
):
    machine_id = make_provider(provider)
    up = _submitted(market, jobs, make_job, machine_id, provider, user, spec=b"\x31" * 32)
    down = _submitted(market, jobs, make_job, machine_id, provider, user, spec=b"\x32" * 32)
    assert jobs[up]["payment"] == jobs[down]["payment"] == PAYMENT  # both funded at $1
    chain.pending_timestamp = jobs[down]["challenge_end"] + 1

    # The token doubled: the provider's pay is fixed in USD, so it is minted half the tokens.
    set_price(2 * ONE_USD)
    ledger.mark()
    market.finalize(up, jobs.t(up), sender=keeper)
    tx = market.claim(provider, sender=keeper)
    paid = USD_NET * ONE_USD // (2 * ONE_USD)
    assert paid < PAYMENT - FEE
    e = ev(tx, settlement.Settled)
    assert (e["usd_net"], e["cap"], e["minted"], e["price"]) == (USD_NET, PAYMENT - FEE, paid, 2 * ONE_USD)
    ledger.expect(provider=paid, market=-PAYMENT, supply=paid - PAYMENT, settled=PAYMENT)

    # The token halved: the USD value would mint 1.9 tokens; the cap (escrow minus fee) applies.
    set_price(ONE_USD // 2)
    ledger.mark()  # posting the price minted the operator's stake
    market.finalize(down, jobs.t(down), sender=keeper)
    tx = market.claim(provider, sender=keeper)
    assert USD_NET * ONE_USD // (ONE_USD // 2) > PAYMENT - FEE
    e = ev(tx, settlement.Settled)
    assert (e["minted"], e["price"]) == (PAYMENT - FEE, ONE_USD // 2)
    ledger.expect(provider=PAYMENT - FEE, market=-PAYMENT, supply=-FEE, settled=PAYMENT)
    assert_books(market, token, jobs)


def test_claim__stale_price__still_settles_at_cap__new_jobs_refused(
    submitted_job, market, token, settlement, jobs, chain, keeper, provider, user, ledger, snap
):
    job_id, _ = submitted_job
    # The price was posted before this block: one second past max_age from now it is stale.
    chain.pending_timestamp = max(chain.blocks.head.timestamp + settlement.max_age(), jobs[job_id]["challenge_end"]) + 1
    with no_change(snap), ape.reverts("settlement: stale price"):
        _create(market, user, provider)
    ledger.mark()
    market.finalize(job_id, jobs.t(job_id), sender=keeper)
    tx = market.claim(provider, sender=keeper)
    e = ev(tx, settlement.Settled)
    assert (e["minted"], e["price"]) == (PAYMENT - FEE, 0)
    assert_job(market, jobs, job_id, JobStatus.FINALIZED)
    ledger.expect(provider=PAYMENT - FEE, market=-PAYMENT, supply=-FEE, settled=PAYMENT)
    assert_books(market, token, jobs)


def test_finalize_many__two_providers__each_credited_its_own_runs_sum__claims_mint_them(
    make_provider, make_job, market, registry, token, settlement, jobs, chain, keeper, provider, provider2, user,
    ledger,
):  # fmt: skip
    m1 = make_provider(provider)
    m2 = make_provider(provider2)
    plan = [(provider, m1, UNITS), (provider, m1, 2 * UNITS), (provider2, m2, 3 * UNITS), (provider2, m2, 5 * UNITS)]
    ids = [
        _submitted(market, jobs, make_job, m, prov, user, units=u, spec=bytes([n + 1]) * 32)
        for n, (prov, m, u) in enumerate(plan)
    ]
    chain.pending_timestamp = max(jobs[i]["challenge_end"] for i in ids) + 1
    payments = [jobs[i]["payment"] for i in ids]
    fees = [p * P.fee_bps // MAX_BPS for p in payments]
    assert payments == [PRICE * u for _, _, u in plan]
    ledger.mark()
    tx = market.finalize_many(ids, [jobs.t(i) for i in ids], sender=keeper)
    assert [(e["job_id"], e["usd_value"], e["burned"], e["fee"]) for e in evs(tx, market.JobFinalized)] == [
        (i, jobs[i]["usd_value"], p, f) for i, p, f in zip(ids, payments, fees, strict=True)
    ]
    run1 = sum(payments[:2]) - sum(fees[:2])
    run2 = sum(payments[2:]) - sum(fees[2:])
    assert evs(tx, settlement.Settled) == [] and evs(tx, token.Transfer) == []
    ledger.expect()
    assert market.accrued(provider)[::2] == (sum(payments[:2]), run1)
    assert market.accrued(provider2)[::2] == (sum(payments[2:]), run2)
    settled = [ev(market.claim(p, sender=keeper), settlement.Settled) for p in (provider, provider2)]
    assert [(e["provider"], e["burned"], e["cap"], e["minted"]) for e in settled] == [
        (provider.address, sum(payments[:2]), run1, run1),
        (provider2.address, sum(payments[2:]), run2, run2),
    ]
    ledger.expect(provider=run1, provider2=run2, market=-sum(payments), supply=-sum(fees), settled=sum(payments))
    assert registry.locked(provider) == 0 and registry.locked(provider2) == 0
    assert_books(market, token, jobs)
