"""Emissions: the epoch schedule (decay, cap, taper), finalization, quorum-signed rewards roots, claims.

Setup (module): five funded accounts sorted by address with the hub's minimum stake bonded;
the first three are OracleHub operators, threshold 2 (as in test_oracle_hub.py). Rewards are
built with offchain/economics/rewards.py (what the oracle service will use) and signed with the
operators' keys; anyone submits and claims. Schedule tests deploy their own Emissions with small
numbers; the rewards tests use the deployment's.

The taper counts settlement burns only (`JobMarket.total_burned`: the escrow of every finalized
job, counted when the job is finalized although the provider's `claim` burns it later, so that
the taper does not depend on when providers claim). Taper tests produce them by finalizing real
jobs (`ready_jobs`, `settle_job`); the property test counts them on a Settlement whose job market
is a test account (`direct_settlement`: any contract with `total_burned()` can be the counter).
"""

from contextlib import contextmanager
from dataclasses import replace

import ape
import pytest
from conftest import PRICE, STAKE, storage_roots
from eth_account.messages import encode_typed_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offchain.chain import reports as R
from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus
from offchain.economics import rewards as E
from offchain.params import EmissionsParams, MarketParams, OracleParams

P = EmissionsParams()
MIN_STAKE = OracleParams().min_operator_stake
DAY = 86400
N_POOL = 5
CHALLENGE_WINDOW = MarketParams().challenge_window
RESULT = b"\x22" * 32
# Gas ceilings, ~10% above what the in-process EVM measured (test_gas__claim_and_finalize):
# finalize_epoch 106k for the first epoch (cold slots), 72k later; submit_rewards 204k with 2
# signatures; claim 130k for the first claim of an epoch, 115k for a later one (9-leaf tree).
GAS_FINALIZE = (117_000, 80_000)
GAS_SUBMIT_M2 = 225_000
GAS_CLAIM = (143_000, 127_000)


def _args(log):
    return log.event_arguments


def _one(tx, event):
    logs = tx.decode_logs(event)
    assert len(logs) == 1, logs
    return _args(logs[0])


################################################################
#                            fixtures                          #
################################################################


@pytest.fixture(scope="module")
def em(deployment):
    return deployment.emissions


@pytest.fixture(scope="module", autouse=True)
def _wider_fixtures_first(
    hub, em, chain, project, token, deployer, keeper, provider, provider2, user, attacker, market, registry, settlement
):
    """Session/module fixtures set up before the first test (ape's snapshots rebase otherwise)."""


@pytest.fixture
def ops(pool):
    return pool[:3]


@pytest.fixture
def goto(chain):
    """Mines a block at `t` (the next transaction's time is then t + 1 at most)."""

    def _goto(t):
        chain.mine(timestamp=t)

    return _goto


@pytest.fixture(scope="module")
def settlement(deployment):
    return deployment.settlement


@pytest.fixture
def make_emissions(project, deployer, token, hub, market):
    """A fresh Emissions with `P` overridden by `fields`, made a minter, tapering on `burns`
    (default: the deployment's JobMarket, as deploy_all wires it)."""

    def _make(burns=None, **fields):
        params = replace(P, **fields)
        burns = market if burns is None else burns
        e = deployer.deploy(project.Emissions, *params.constructor_args(token.address, hub.address, burns.address))
        token.set_minter(e.address, True, sender=deployer)
        return e, params

    return _make


@pytest.fixture
def direct_settlement(project, deployer, token, deployment):
    """A Settlement whose job market is `deployer`: `settle(provider, burned, 0, 0)` counts
    `burned` as a settlement burn (and mints nothing) without running jobs."""
    s = deployer.deploy(project.Settlement, token.address, deployment.price_feed.address, 3600)
    s.set_job_market(deployer, sender=deployer)
    return s


@pytest.fixture
def ready_jobs(make_provider, make_job, market, jobs, provider, user, goto, chain):
    """Jobs of `provider` paid by `user`, one per amount in `payments` (tokens: a job's escrow at
    $1.00 a token), accepted and submitted. With `wait`, their challenge window is then over,
    so they may be finalized. Returns their ids."""

    def _ready(*payments, wait=True):
        machine_id = make_provider(provider, stake=STAKE + 2 * sum(payments))
        ids = []
        for payment in payments:
            job_id, job = make_job(user, units=payment // PRICE)
            assert job["payment"] == payment
            jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
            jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, "http://p/result", sender=provider))
            ids.append(job_id)
        if wait:
            goto(chain.blocks.head.timestamp + CHALLENGE_WINDOW + 1)
        return ids

    return _ready


@pytest.fixture
def finalize_job(market, jobs, keeper):
    return lambda job_id: jobs.track(market.finalize(job_id, jobs.t(job_id), sender=keeper))


@pytest.fixture
def settle_job(market, jobs, keeper, provider, settlement, finalize_job):
    """Finalizes the job, which credits its provider and counts its escrow in the market's
    `total_burned` (the taper's input) at once, then claims for the provider: the claim burns the
    escrow through Settlement and counts nothing more for the taper."""

    def _settle(job_id):
        counted, settled = market.total_burned(), settlement.total_burned()
        payment = jobs[job_id]["payment"]
        finalize_job(job_id)
        assert (market.total_burned(), settlement.total_burned()) == (counted + payment, settled)
        assert market.accrued(provider)[0] == payment
        market.claim(provider, sender=keeper)
        assert (market.total_burned(), settlement.total_burned()) == (counted + payment, settled + payment)

    return _settle


@pytest.fixture
def sign(chain):
    def _sign(em_, report, signers, chain_id=None, address=None):
        typed = E.rewards_typed_data(address or em_.address, chain.chain_id if chain_id is None else chain_id, report)
        return R.sort_signatures([(s.address, R.sign_report(s.private_key, typed)) for s in signers])

    return _sign


@pytest.fixture
def finalize_through(goto):
    """Finalizes every epoch of `em_` up to and including `last`; returns their budgets."""

    def _fin(em_, last, sender):
        out = []
        goto(max(em_.epoch_start(last + 1), ape.chain.blocks.head.timestamp + 1))
        for e in range(em_.next_epoch(), last + 1):
            tx = em_.finalize_epoch(e, sender=sender)
            out.append(_one(tx, em_.EpochFinalized)["budget"])
        return out

    return _fin


@pytest.fixture
def reverts(chain, em, token):
    @contextmanager
    def _reverts(message, contracts=None):
        watched = contracts or (em, token)
        before = storage_roots(chain, watched)
        with ape.reverts(message):
            yield
        assert storage_roots(chain, watched) == before

    return _reverts


def _records(provider, provider2, attacker):
    """Jobs and machines of one epoch (0): provider works and runs 2 machines, provider2 only
    has availability (its job was cancelled by its user: no work, no fault of its own),
    attacker's job failed (invalid: no availability share) and its machine has no attestation."""
    jobs = [
        E.JobRecord(provider.address, 0, JobStatus.FINALIZED, 1_000, 3 * ONE_TOKEN),
        E.JobRecord(provider.address, 0, JobStatus.FINALIZED, 500, 1 * ONE_TOKEN),
        E.JobRecord(provider2.address, 0, JobStatus.CANCELLED, 1_000, 4 * ONE_TOKEN),
        E.JobRecord(attacker.address, 0, JobStatus.FAILED, 9_000, 9 * ONE_TOKEN),
        E.JobRecord(provider.address, 1, JobStatus.FINALIZED, 9_000, 9 * ONE_TOKEN),
    ]
    machines = [
        E.MachineRecord(provider.address, 1, True, 10_000, 300, 300 * ONE_TOKEN),
        E.MachineRecord(provider.address, 2, True, 9_500, 10, 10 * ONE_TOKEN),
        E.MachineRecord(provider2.address, 3, True, 9_000, 100, 100 * ONE_TOKEN),
        E.MachineRecord(attacker.address, 4, False, 10_000, 300, 300 * ONE_TOKEN),
    ]
    stakes = {provider.address: 1_000 * ONE_TOKEN, provider2.address: 100 * ONE_TOKEN, attacker.address: 10**30}
    return jobs, machines, stakes


@pytest.fixture
def rewards0(provider, provider2, attacker):
    jobs, machines, stakes = _records(provider, provider2, attacker)
    return E.epoch_rewards(0, jobs, machines, stakes, P)


@pytest.fixture
def posted(em, ops, sign, keeper, rewards0, finalize_through):
    """Epoch 0 of the deployment's Emissions finalized (no burns) and its rewards posted."""
    (budget,) = finalize_through(em, 0, keeper)
    report = rewards0.report()
    tx = em.submit_rewards(E.report_tuple(report), sign(em, report, ops[:2]), sender=keeper)
    return budget, tx


################################################################
#                      deployment and token                    #
################################################################


def test_deploy__wires_params_and_minter(em, deployment, token, hub, market):
    assert em.TOKEN() == token.address
    assert em.HUB() == hub.address
    assert em.BURNS() == market.address
    assert em.EPOCH_SECONDS() == P.epoch_seconds
    assert em.INITIAL_EPOCH_EMISSION() == P.initial_epoch_emission
    assert em.DECAY_BPS() == P.decay_bps
    assert em.EMISSION_CAP() == P.emission_cap
    assert em.TAPER_REFERENCE() == P.taper_reference
    assert em.WORK_SHARE_BPS() == P.work_share_bps
    assert em.WASH_GUARD_BPS() == P.wash_guard_bps
    assert token.is_minter(em)
    assert em.next_epoch() == 0
    assert em.scheduled_emission() == P.initial_epoch_emission
    assert em.allocated() == em.total_emitted() == 0
    assert deployment.record["contracts"]["Emissions"] == em.address
    assert deployment.record["constructor_args"]["Emissions"][2] == market.address
    assert deployment.record["constructor_args"]["Emissions"][3] == em.GENESIS()
    assert bytes(em.REWARDS_TYPEHASH()) == E.REWARDS_TYPEHASH


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"epoch_seconds": 0}, "emissions: epoch length is zero"),
        ({"decay_bps": MAX_BPS}, "emissions: decay too high"),
        ({"emission_cap": P.initial_epoch_emission - 1}, "emissions: initial emission above the cap"),
        ({"taper_reference": 0}, "emissions: taper reference is zero"),
        ({"work_share_bps": MAX_BPS + 1}, "emissions: work share too high"),
        ({"wash_guard_bps": MAX_BPS}, "emissions: wash guard too high"),
    ],
)
def test_constructor__bad_params__reverts(project, deployer, token, hub, settlement, fields, message):
    params = replace(P, **fields)
    with ape.reverts(message):
        deployer.deploy(project.Emissions, *params.constructor_args(token.address, hub.address, settlement.address))


def test_constructor__zero_addresses__revert(project, deployer, token, hub, settlement):
    zero = "0x" + "00" * 20
    with ape.reverts("emissions: token is the zero address"):
        deployer.deploy(project.Emissions, *P.constructor_args(zero, hub.address, settlement.address))
    with ape.reverts("emissions: hub is the zero address"):
        deployer.deploy(project.Emissions, *P.constructor_args(token.address, zero, settlement.address))
    with ape.reverts("emissions: burn counter is the zero address"):
        deployer.deploy(project.Emissions, *P.constructor_args(token.address, hub.address, zero))


################################################################
#                          finalization                        #
################################################################


def test_finalize__before_epoch_end__reverts(em, goto, reverts, attacker):
    goto(em.epoch_start(1) - 2)
    with reverts("emissions: epoch not over"):
        em.finalize_epoch(0, sender=attacker)


def test_finalize__anyone_once_in_order(em, goto, reverts, attacker, keeper):
    goto(em.epoch_start(2))
    with reverts("emissions: finalize epochs in order"):
        em.finalize_epoch(1, sender=attacker)
    tx = em.finalize_epoch(0, sender=attacker)
    assert _one(tx, em.EpochFinalized) == {
        "epoch": 0,
        "scheduled": P.initial_epoch_emission,
        "burned": 0,
        "budget": P.initial_epoch_emission,
        "finalizer": attacker.address,
    }
    assert em.epochs(0).budget == P.initial_epoch_emission
    assert em.allocated() == P.initial_epoch_emission
    assert em.next_epoch() == 1
    with reverts("emissions: epoch already finalized"):
        em.finalize_epoch(0, sender=keeper)
    # Epoch 2 is running: 1 can be finalized, 2 cannot.
    em.finalize_epoch(1, sender=keeper)
    with reverts("emissions: epoch not over"):
        em.finalize_epoch(2, sender=keeper)
    assert em.epochs(1).budget == P.initial_epoch_emission * (MAX_BPS - P.decay_bps) // MAX_BPS


def test_schedule__decays_geometrically__matches_mirror(make_emissions, finalize_through, keeper):
    em_, params = make_emissions(epoch_seconds=100, initial_epoch_emission=10**21, decay_bps=1_500)
    budgets = finalize_through(em_, 11, keeper)
    assert budgets == E.epoch_budgets(params, [0] * 12)
    assert budgets[1] == 10**21 * 8_500 // MAX_BPS
    assert all(b2 < b1 for b1, b2 in zip(budgets, budgets[1:], strict=False))
    assert em_.allocated() == sum(budgets)


def test_schedule__cap__last_epochs_get_what_remains(make_emissions, finalize_through, keeper):
    initial = 1_000 * ONE_TOKEN
    em_, params = make_emissions(
        epoch_seconds=100, initial_epoch_emission=initial, decay_bps=0, emission_cap=2_500 * ONE_TOKEN
    )
    budgets = finalize_through(em_, 4, keeper)
    assert budgets == [initial, initial, initial // 2, 0, 0]
    assert em_.allocated() == params.emission_cap


def test_taper__burns_in_epoch__shrink_its_budget(
    make_emissions, finalize_through, keeper, market, ready_jobs, settle_job
):
    # Jobs are made finalizable first (the challenge window is longer than an epoch here).
    small, big = ready_jobs(100 * ONE_TOKEN, 900 * ONE_TOKEN)
    em_, params = make_emissions(epoch_seconds=1_000, taper_reference=100 * ONE_TOKEN)
    settle_job(small)  # epoch 0 burns exactly the reference: half
    (b0,) = finalize_through(em_, 0, keeper)
    assert b0 == params.initial_epoch_emission // 2
    assert em_.epochs(0).burned == 100 * ONE_TOKEN
    settle_job(big)  # epoch 1 burns 9x the reference: 1/10
    (b1,) = finalize_through(em_, 1, keeper)
    scheduled1 = params.initial_epoch_emission * (MAX_BPS - params.decay_bps) // MAX_BPS
    assert b1 == scheduled1 * 100 // 1_000
    assert em_.burn_checkpoint() == market.total_burned()


def test_attack_claims_delayed_to_a_later_epoch__taper_counts_the_burn_at_finalization(
    make_emissions, finalize_through, keeper, market, provider, settlement, ready_jobs, finalize_job
):
    # The taper is convex in the burns: providers that held their claims back to bunch the burns
    # into fewer epochs would raise the total emitted. The burn counts when the job is finalized:
    # finalized in epoch 0, claimed in epoch 1, it tapers epoch 0 and leaves epoch 1 whole.
    (job_id,) = ready_jobs(100 * ONE_TOKEN)
    em_, params = make_emissions(epoch_seconds=1_000, taper_reference=100 * ONE_TOKEN)
    finalize_job(job_id)
    (b0,) = finalize_through(em_, 0, keeper)
    assert (b0, em_.epochs(0).burned) == (params.initial_epoch_emission // 2, 100 * ONE_TOKEN)
    settled = settlement.total_burned()
    market.claim(provider, sender=keeper)
    assert settlement.total_burned() == settled + 100 * ONE_TOKEN
    (b1,) = finalize_through(em_, 1, keeper)
    scheduled1 = params.initial_epoch_emission * (MAX_BPS - params.decay_bps) // MAX_BPS
    assert (b1, em_.epochs(1).burned) == (scheduled1, 0)
    assert em_.burn_checkpoint() == market.total_burned()


def test_taper__late_catch_up__spreads_burns_evenly(make_emissions, keeper, market, goto, ready_jobs, settle_job):
    (job_id,) = ready_jobs(300 * ONE_TOKEN)
    em_, params = make_emissions(epoch_seconds=1_000, taper_reference=100 * ONE_TOKEN)
    settle_job(job_id)
    goto(em_.epoch_start(3))  # epochs 0, 1 and 2 are over, none finalized
    burned = [_one(em_.finalize_epoch(e, sender=keeper), em_.EpochFinalized)["burned"] for e in range(3)]
    assert burned == [100 * ONE_TOKEN] * 3
    assert em_.burn_checkpoint() == market.total_burned()


def test_taper__slashing_and_plain_burns__do_not_count__settlement_burns_do(
    make_emissions,
    finalize_through,
    goto,
    chain,
    keeper,
    deployer,
    user,
    token,
    market,
    jobs,
    settlement,
    ready_jobs,
    settle_job,
):
    """Only escrow burned by job settlement is customer revenue: a burn of one's own tokens and
    the burned share of a slash (an invalid verdict) leave the schedule whole."""
    good, bad = ready_jobs(100 * ONE_TOKEN, 100 * ONE_TOKEN, wait=False)
    jobs.track(market.dispute(bad, jobs.t(bad), sender=user))
    goto(chain.blocks.head.timestamp + CHALLENGE_WINDOW + 1)  # `good` may be finalized
    em_, params = make_emissions(epoch_seconds=1_000, taper_reference=100 * ONE_TOKEN)
    token_burned, counted = token.total_burned(), market.total_burned()

    # Epoch 0: a plain burn (5x the taper reference) and the burned share of a slash.
    token.burn(500 * ONE_TOKEN, sender=user)
    tx = market.post_verdict(bad, jobs.t(bad), False, sender=deployer)
    slash_burn = _one(tx, market.JobFailed)["burned"]
    assert slash_burn > 0
    assert token.total_burned() == token_burned + 500 * ONE_TOKEN + slash_burn
    assert market.total_burned() == counted
    (b0,) = finalize_through(em_, 0, keeper)
    assert b0 == params.initial_epoch_emission
    assert em_.epochs(0).burned == 0

    # Epoch 1: a finalized job's escrow (the reference; burned at its claim) counts: half.
    settle_job(good)
    assert market.total_burned() == counted + 100 * ONE_TOKEN
    (b1,) = finalize_through(em_, 1, keeper)
    scheduled1 = params.initial_epoch_emission * (MAX_BPS - params.decay_bps) // MAX_BPS
    assert em_.epochs(1).burned == 100 * ONE_TOKEN
    assert b1 == scheduled1 // 2
    assert em_.burn_checkpoint() == market.total_burned()


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    initial=st.integers(1, 10**24),
    decay=st.integers(0, 9_999),
    cap_mult=st.integers(1, 40),
    burns=st.lists(st.integers(0, 10**22), min_size=25, max_size=25),
)
def test_schedule__property__never_above_schedule_or_cap(
    make_emissions, direct_settlement, keeper, provider, deployer, initial, decay, cap_mult, burns
):
    """On-chain, 25 epochs with random settlement burns: each budget <= its tapered schedule, the
    sum <= the cap, and the contract equals the Python mirror."""
    cap = initial * cap_mult // 10 + initial
    em_, params = make_emissions(
        burns=direct_settlement,
        epoch_seconds=50,
        initial_epoch_emission=initial,
        decay_bps=decay,
        emission_cap=cap,
        taper_reference=10**21,
    )
    budgets = []
    for e, b in enumerate(burns):
        if b:
            direct_settlement.settle(provider, b, 0, 0, sender=deployer)
        ape.chain.mine(timestamp=max(em_.epoch_start(e + 1), ape.chain.blocks.head.timestamp + 1))
        budgets.append(_one(em_.finalize_epoch(e, sender=keeper), em_.EpochFinalized)["budget"])
    assert budgets == E.epoch_budgets(params, burns)
    assert sum(budgets) == em_.allocated() <= cap
    scheduled = initial
    for b, burned in zip(budgets, burns, strict=True):
        assert b <= E.tapered(scheduled, burned, params.taper_reference) <= scheduled
        scheduled = scheduled * (MAX_BPS - decay) // MAX_BPS


@settings(max_examples=300, deadline=None)
@given(
    initial=st.integers(0, 10**30),
    decay=st.integers(0, 9_999),
    cap=st.integers(0, 10**31),
    burns=st.lists(st.integers(0, 10**30), min_size=1, max_size=400),
)
def test_mirror__property__cap_and_schedule_over_many_epochs(initial, decay, cap, burns):
    params = replace(P, initial_epoch_emission=initial, decay_bps=decay, emission_cap=max(cap, initial))
    budgets = E.epoch_budgets(params, burns)
    assert sum(budgets) <= params.emission_cap
    scheduled = initial
    for b in budgets:
        assert 0 <= b <= scheduled
        scheduled = scheduled * (MAX_BPS - decay) // MAX_BPS


################################################################
#                          rewards root                        #
################################################################


def test_rewards_digest__matches_python_typed_data(em, chain, rewards0):
    report = rewards0.report()
    typed = E.rewards_typed_data(em.address, chain.chain_id, report)
    assert bytes(em.rewards_digest(E.report_tuple(report))) == R.typed_data_digest(typed)
    m = encode_typed_data(full_message=typed)
    assert bytes(em.DOMAIN_SEPARATOR()) == m.header


def test_submit_rewards__quorum__sets_pools(em, posted, rewards0, token):
    budget, tx = posted
    work_pool, avail_pool = E.split(budget, rewards0.total_work, rewards0.total_availability, P)
    ev = _one(tx, em.RewardsPosted)
    assert ev["root"] == rewards0.root
    assert (ev["work_pool"], ev["availability_pool"], ev["signers"]) == (work_pool, avail_pool, 2)
    assert ev["released"] == budget - work_pool - avail_pool
    e = em.epochs(0)
    assert (bytes(e.root), e.total_work, e.total_availability) == (
        rewards0.root,
        rewards0.total_work,
        rewards0.total_availability,
    )
    assert em.rewards_nonce(0) == 1
    assert em.allocated() == work_pool + avail_pool


def test_submit_rewards__wash_guard__caps_work_pool_and_releases(em, posted, rewards0):
    """4 tokens of fees: the work pool is 2 tokens (50%), far below 70% of the budget; the rest
    goes back under the cap."""
    budget, tx = posted
    ev = _one(tx, em.RewardsPosted)
    assert rewards0.total_work == 4 * ONE_TOKEN
    assert ev["work_pool"] == 2 * ONE_TOKEN
    assert ev["availability_pool"] == budget - budget * P.work_share_bps // MAX_BPS
    assert ev["released"] == budget * P.work_share_bps // MAX_BPS - 2 * ONE_TOKEN


def test_submit_rewards__no_availability__pool_zero(em, ops, sign, keeper, finalize_through, provider):
    (budget,) = finalize_through(em, 0, keeper)
    r = E.build_rewards(0, {provider.address: 10**30}, {})
    tx = em.submit_rewards(E.report_tuple(r.report()), sign(em, r.report(), ops[:2]), sender=keeper)
    ev = _one(tx, em.RewardsPosted)
    assert ev["work_pool"] == budget * P.work_share_bps // MAX_BPS
    assert ev["availability_pool"] == 0
    assert em.allocated() == ev["work_pool"]


def test_submit_rewards__not_finalized__reverts(em, ops, sign, keeper, rewards0, reverts):
    report = rewards0.report()
    with reverts("emissions: epoch not finalized"):
        em.submit_rewards(E.report_tuple(report), sign(em, report, ops[:2]), sender=keeper)


def test_submit_rewards__nonce_not_zero__reverts(em, ops, sign, keeper, rewards0, finalize_through, reverts):
    finalize_through(em, 0, keeper)
    report = rewards0.report(nonce=1)
    with reverts("emissions: wrong nonce"):
        em.submit_rewards(E.report_tuple(report), sign(em, report, ops[:2]), sender=keeper)


def test_submit_rewards__twice__reverts(em, posted, ops, sign, keeper, rewards0, reverts):
    again = dict(rewards0.report(), root=b"\x01" * 32)
    with reverts("emissions: rewards already posted"):
        em.submit_rewards(E.report_tuple(again), sign(em, again, ops[:2]), sender=keeper)
    again["nonce"] = 1  # a signed "correction" at the next nonce is refused too: one root per epoch
    with reverts("emissions: rewards already posted"):
        em.submit_rewards(E.report_tuple(again), sign(em, again, ops[:2]), sender=keeper)


@pytest.mark.parametrize(
    "case,message",
    [
        ("one_signature", "emissions: not enough signatures"),
        ("outsider", "emissions: signer is not an operator"),
        ("unsorted", "emissions: signers not strictly increasing"),
        ("duplicate", "emissions: signers not strictly increasing"),
        ("other_chain", "emissions: signer is not an operator"),
        ("other_contract", "emissions: signer is not an operator"),
        ("short_signature", "emissions: signature must be 65 bytes"),
        ("empty_root", "emissions: empty root"),
    ],
)
def test_submit_rewards__bad_signatures__revert(
    em, ops, pool, sign, keeper, rewards0, finalize_through, reverts, chain, case, message
):
    finalize_through(em, 0, keeper)
    report = rewards0.report()
    sigs = sign(em, report, ops[:2])
    if case == "one_signature":
        sigs = sigs[:1]
    elif case == "outsider":
        sigs = sign(em, report, [ops[0], pool[4]])
    elif case == "unsorted":
        sigs = list(reversed(sigs))
    elif case == "duplicate":
        sigs = [sigs[0], sigs[0]]
    elif case == "other_chain":
        sigs = sign(em, report, ops[:2], chain_id=chain.chain_id + 1)
    elif case == "other_contract":
        sigs = sign(em, report, ops[:2], address=keeper.address)
    elif case == "short_signature":
        sigs = [sigs[0][:64], sigs[1]]
    elif case == "empty_root":
        report = dict(report, root=b"\x00" * 32)
        sigs = sign(em, report, ops[:2])
    with reverts(message):
        em.submit_rewards(E.report_tuple(report), sigs, sender=keeper)


def test_submit_rewards__signer_stake_too_low__reverts(em, hub, ops, sign, keeper, rewards0, finalize_through, reverts):
    finalize_through(em, 0, keeper)
    hub.request_unstake(1, sender=ops[0])
    report = rewards0.report()
    with reverts("emissions: signer stake too low"):
        em.submit_rewards(E.report_tuple(report), sign(em, report, ops[:2]), sender=keeper)


def test_submit_rewards__quorum_misconfigured__reverts(
    em, hub, pool, ops, sign, keeper, deployer, rewards0, finalize_through, reverts
):
    finalize_through(em, 0, keeper)
    hub.add_operator(pool[3], sender=deployer)  # 4 operators, threshold 2: two disjoint quorums
    report = rewards0.report()
    with reverts("emissions: quorum misconfigured"):
        em.submit_rewards(E.report_tuple(report), sign(em, report, ops[:2]), sender=keeper)


################################################################
#                             claims                           #
################################################################


def test_claim__valid_proofs__mint_exact_shares(em, posted, rewards0, token, attacker, provider, provider2):
    e = em.epochs(0)
    supply, minted = token.totalSupply(), token.total_minted()
    total = 0
    for p in (provider, provider2):
        w, a = rewards0.leaves[p.address]
        expected = E.claim_amount(e.work_pool, e.availability_pool, e.total_work, e.total_availability, w, a)
        before = token.balanceOf(p)
        tx = em.claim(*rewards0.claim_args(p.address), sender=attacker)  # anyone claims; p receives
        assert _one(tx, em.Claimed) == {
            "epoch": 0,
            "provider": p.address,
            "work_units": w,
            "availability_weight": a,
            "amount": expected,
        }
        assert token.balanceOf(p) == before + expected
        assert em.claimed(0, p)
        total += expected
    # provider2 had no finalized job: availability only.
    assert rewards0.leaves[provider2.address][0] == 0
    # attacker (failed jobs, unattested machine) has no leaf.
    assert attacker.address not in rewards0.leaves
    assert em.epochs(0).claimed == em.total_emitted() == total
    assert total <= e.work_pool + e.availability_pool
    # Both leaves claimed: everything but rounding dust is out.
    assert e.work_pool + e.availability_pool - total <= 2
    assert token.totalSupply() == supply + total
    assert token.total_minted() == minted + total
    assert token.totalSupply() == token.total_minted() - token.total_burned()


def test_claim__twice__reverts(em, posted, rewards0, provider, keeper, reverts):
    em.claim(*rewards0.claim_args(provider.address), sender=keeper)
    with reverts("emissions: already claimed"):
        em.claim(*rewards0.claim_args(provider.address), sender=keeper)


def test_claim__before_root__reverts(em, rewards0, provider, keeper, finalize_through, reverts):
    with reverts("emissions: no rewards for epoch"):
        em.claim(*rewards0.claim_args(provider.address), sender=keeper)
    finalize_through(em, 0, keeper)
    with reverts("emissions: no rewards for epoch"):
        em.claim(*rewards0.claim_args(provider.address), sender=keeper)


@pytest.mark.parametrize("tamper", ["work", "availability", "provider", "epoch", "proof"])
def test_claim__tampered_leaf_or_proof__reverts(em, posted, rewards0, provider, provider2, attacker, reverts, tamper):
    epoch, p, w, a, proof = rewards0.claim_args(provider.address)
    if tamper == "work":
        w += 1
    elif tamper == "availability":
        a *= 2
    elif tamper == "provider":
        p = attacker.address
    elif tamper == "epoch":
        epoch = 1
    else:
        proof = rewards0.proofs[provider2.address]
    message = "emissions: no rewards for epoch" if tamper == "epoch" else "emissions: invalid proof"
    with reverts(message):
        em.claim(epoch, p, w, a, proof, sender=attacker)


def test_claim__root_overstating_leaves__capped_at_pools(em, ops, sign, keeper, finalize_through, provider, provider2):
    """A root whose leaves sum above its totals (a faulty quorum) still mints at most the pools."""
    (budget,) = finalize_through(em, 0, keeper)
    r = E.build_rewards(0, {provider.address: 10**30, provider2.address: 10**30}, {})
    report = dict(r.report(), total_work=10**30)  # each leaf claims the whole work pool
    em.submit_rewards(E.report_tuple(report), sign(em, report, ops[:2]), sender=keeper)
    pool = em.epochs(0).work_pool
    em.claim(*r.claim_args(provider.address), sender=keeper)
    with ape.reverts("emissions: epoch budget exhausted"):
        em.claim(*r.claim_args(provider2.address), sender=keeper)
    assert em.total_emitted() == pool <= budget


def test_epoch_of__matches_current_epoch(em, goto, chain):
    for t in (em.epoch_start(3) - 1, em.epoch_start(3), em.epoch_start(7) + 5):
        goto(t)
        head = chain.blocks.head.timestamp
        assert em.current_epoch() == E.epoch_of(head, em.GENESIS(), em.EPOCH_SECONDS())


def test_leaf__contract_matches_python(em, provider):
    for w, a in ((0, 0), (1, 2), (10**30, 3 * 10**25)):
        assert bytes(em.leaf(5, provider.address, w, a)) == E.leaf_hash(5, provider.address, w, a)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_claim__trees_of_any_size__every_leaf_claims(em, ops, sign, keeper, finalize_through, accounts, token, n):
    finalize_through(em, 0, keeper)
    work = {accounts[i].address: (i + 1) * ONE_TOKEN for i in range(n)}
    avail = {accounts[i].address: 1_000 * (i % 3) for i in range(n)}
    r = E.build_rewards(0, work, avail)
    em.submit_rewards(E.report_tuple(r.report()), sign(em, r.report(), ops[:2]), sender=keeper)
    for p in r.leaves:
        em.claim(*r.claim_args(p), sender=keeper)
    e = em.epochs(0)
    assert e.claimed <= e.work_pool + e.availability_pool
    assert token.totalSupply() == token.total_minted() - token.total_burned()


def test_gas__claim_and_finalize(em, ops, sign, keeper, goto, accounts, capsys):
    goto(em.epoch_start(2))
    g_fin0 = em.finalize_epoch(0, sender=keeper).gas_used
    g_fin1 = em.finalize_epoch(1, sender=keeper).gas_used
    work = {a.address: ONE_TOKEN for a in accounts[:9]}
    r = E.build_rewards(0, work, {a.address: 5 for a in accounts[:9]})
    g_sub = em.submit_rewards(E.report_tuple(r.report()), sign(em, r.report(), ops[:2]), sender=keeper).gas_used
    # accounts[1] already holds tokens (conftest), accounts[8] holds none: a fresh balance slot.
    g_claim = em.claim(*r.claim_args(accounts[1].address), sender=keeper).gas_used
    g_claim_fresh = em.claim(*r.claim_args(accounts[8].address), sender=keeper).gas_used
    with capsys.disabled():
        print(
            f"\nEmissions gas: finalize_epoch first {g_fin0}, later {g_fin1}; submit_rewards (M=2) {g_sub}; "
            f"claim (9 leaves) {g_claim}, to an empty balance {g_claim_fresh}"
        )
    assert g_fin0 <= GAS_FINALIZE[0]
    assert g_fin1 <= GAS_FINALIZE[1]
    assert g_sub <= GAS_SUBMIT_M2
    assert g_claim <= GAS_CLAIM[0]
    assert g_claim_fresh <= GAS_CLAIM[1]
