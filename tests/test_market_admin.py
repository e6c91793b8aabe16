"""JobMarket governance and guardian functions: params / set_params (every bound, checked by
the pure JobMarketParams contract with JobMarket's own reasons), the fee (burned at the provider's
claim: there is no treasury and nothing to sweep), pause / unpause (what a pause stops and what it
must never stop: finalizing, verdicts and claims), roles and the constructor checks.
"""

import ape
import market_helpers
import pytest
from conftest import ACCEPT_WINDOW, COMPLETE_WITHIN, CPU, PRICE, UNIT_PARAMS, UNITS
from eth_utils import keccak
from market_helpers import (
    RESULT,
    SPEC,
    ZERO_ADDRESS,
    assert_books,
    assert_job,
    credit,
    ev,
    no_change,
    set_params,
)

from offchain.chain.market_abi import market_at
from offchain.constants import MAX_BATCH, MAX_BPS, PARAM_FIELDS, JobStatus
from offchain.params import DAY, BeaconParams

# Fixtures shared by the market tests.
snap = market_helpers.snap
ledger = market_helpers.ledger
settlement = market_helpers.settlement

P = UNIT_PARAMS
MAX_TOKENS = 2**256 - 1
# At conftest's $1 per token a job escrows its USD value in tokens.
PAYMENT = PRICE * UNITS
FEE = PAYMENT * P.fee_bps // MAX_BPS
MAX_WINDOW = 30 * DAY
PAUSED = "pausable: contract is paused"
MISSING_ROLE = "access_control: account is missing role"
# JobMarketParams: a job counts toward reputation only above this USD value, at most $1,000,000.
MAX_REPUTATION_USD = 10**24


@pytest.fixture(scope="module")
def beacon(deployment):
    return deployment.beacon


def _ts(chain, tx):
    return chain.blocks[tx.block_number].timestamp


def _deploy_market(project, deployer, token, registry, settlement, params_check, beacon, params):
    """JobMarketExt, then JobMarket over it (as deploy_all), as one contract with both ABIs."""
    ext = deployer.deploy(project.JobMarketExt, token, registry, settlement, params_check, beacon)
    m = deployer.deploy(project.JobMarket, token, registry, settlement, params_check, beacon, ext, params)
    return market_at(project, m.address)


def _params(**changes):
    p = P.as_dict()
    p.update(changes)
    return tuple(p.values())


# JobMarket's hot parameter word (contracts/modules/hot_params.vy): (field, bit offset, width).
HOT_FIELDS = (
    ("fee_bps", 0, 16), ("collateral_bps", 16, 24), ("challenge_window", 40, 24), ("min_accept_window", 64, 24),
    ("max_accept_window", 88, 24), ("min_complete_within", 112, 24), ("max_complete_within", 136, 24),
    ("base_audit_bps", 160, 16), ("new_provider_audit_bps", 176, 16), ("trusted_after_jobs", 192, 16),
    ("bad_record_audit_bps", 208, 16), ("detection_bps", 224, 16),
)  # fmt: skip


def _unpacked(word: int) -> dict:
    """The fields of a hot parameter word; nothing else may be set in it (the pause flag is JobMarket's)."""
    fields = {name: (word >> shift) & ((1 << width) - 1) for name, shift, width in HOT_FIELDS}
    assert word == sum(v << shift for (_, shift, _), v in zip(HOT_FIELDS, fields.values(), strict=True))
    return fields


def _hot(params: tuple) -> dict:
    named = dict(zip(P.as_dict(), params, strict=True))
    return {name: named[name] for name, _, _ in HOT_FIELDS}


################################################################
#                      constants and roles                     #
################################################################


def test_constants__match_offchain_and_deployment(market, token, registry, settlement, params_check, beacon, params):
    assert market.MAX_BPS() == MAX_BPS
    assert market.MAX_BATCH() == MAX_BATCH
    # The parameter bounds moved to JobMarketParams with the checks.
    assert params_check.MAX_BPS() == MAX_BPS
    assert params_check.MAX_FEE_BPS() == 2_000
    assert params_check.MAX_COLLATERAL_BPS() == 1_000_000
    assert (params_check.MIN_WINDOW_SECONDS(), params_check.MAX_WINDOW_SECONDS()) == (60, MAX_WINDOW)
    assert market.PARAMS_CHECK() == params_check.address
    assert market.TOKEN() == token.address
    assert market.REGISTRY() == registry.address
    assert market.SETTLEMENT() == settlement.address
    # The audit draw: AuditBeacon's rounds (a result submitted at T is drawn from T // 20 + 1).
    assert market.BEACON() == beacon.address
    assert market.DRAW_ROUND_SECONDS() == beacon.ROUND_SECONDS() == BeaconParams().round_seconds
    assert settlement.job_market() == market.address and settlement.TOKEN() == token.address
    assert token.is_minter(settlement)  # it mints providers' pay
    assert len(PARAM_FIELDS) == 19 and PARAM_FIELDS[-1] == "min_reputation_usd"
    assert tuple(market.params()) == params.as_tuple()
    assert market.params().min_reputation_usd == params.min_reputation_usd == 10**18
    assert market.job_count() == 0 and not market.paused()
    # The treasury and fee sweep are gone: the fee is burned at settlement. The bounds constants
    # and the reputation record moved out (to JobMarketParams and ProviderRegistry).
    for gone in ("treasury", "fees_accrued", "sweep_fees", "set_treasury", "MAX_FEE_BPS", "MAX_COLLATERAL_BPS"):
        assert not hasattr(market, gone), gone
    assert not hasattr(market, "reputation") and hasattr(registry, "reputation")


def test_roles__local_deployment_wiring(market, registry, deployer, attacker, roles):
    assert market.VERIFIER_ROLE() == roles["VERIFIER_ROLE"] == keccak(text="VERIFIER_ROLE")
    assert market.PAUSER_ROLE() == roles["PAUSER_ROLE"]
    for role_name in ("VERIFIER_ROLE", "PAUSER_ROLE"):
        assert market.hasRole(roles[role_name], deployer)
        assert not market.hasRole(roles[role_name], attacker)
    assert market.hasRole(market.DEFAULT_ADMIN_ROLE(), deployer)
    # The market is the registry's set-once job market, not a holder of revocable roles.
    assert registry.job_market() == market.address
    assert not hasattr(registry, "COLLATERAL_ROLE")
    assert not registry.hasRole(roles["COLLATERAL_ROLE"], market)
    assert not registry.hasRole(roles["SLASHER_ROLE"], market)


@pytest.mark.parametrize(
    "which,message",
    [
        ("token", "job_market: token is the zero address"),
        ("registry", "job_market: registry is the zero address"),
        ("settlement", "job_market: settlement is the zero address"),
        ("params", "job_market: fee too high"),
        ("reputation", "job_market: reputation threshold too high"),
    ],
)
def test_constructor__invalid_argument__reverts(
    project, deployer, token, registry, settlement, params_check, beacon, which, message
):
    args = {
        "token": token.address,
        "registry": registry.address,
        "settlement": settlement.address,
        "params": _params(),
    }
    if which == "params":
        args["params"] = _params(fee_bps=2_001)
    elif which == "reputation":
        args["params"] = _params(min_reputation_usd=MAX_REPUTATION_USD + 1)
    else:
        args[which] = ZERO_ADDRESS
    with ape.reverts(message):
        _deploy_market(
            project,
            deployer,
            args["token"],
            args["registry"],
            args["settlement"],
            params_check.address,
            beacon.address,
            args["params"],
        )


def test_constructor__valid__stores_checker_beacon_and_params(
    project, deployer, token, registry, settlement, params_check, beacon
):
    p = _params(min_reputation_usd=MAX_REPUTATION_USD)
    m = _deploy_market(project, deployer, token, registry, settlement, params_check, beacon, p)
    assert m.PARAMS_CHECK() == params_check.address
    assert (m.BEACON(), m.DRAW_ROUND_SECONDS()) == (beacon.address, beacon.ROUND_SECONDS())
    assert tuple(m.params()) == p
    # Without a beacon there is no draw.
    with ape.reverts("job_market: beacon is the zero address"):
        _deploy_market(project, deployer, token, registry, settlement, params_check, ZERO_ADDRESS, p)


################################################################
#                          set_params                          #
################################################################


def test_set_params__admin__stores_and_logs(market, deployer):
    values = (
        1_999,
        20_001,
        601,
        602,
        61,
        603,
        62,
        604,
        1_001,
        10**17,
        2_001,
        4_000,
        3_000,
        999,
        2_999,
        65_535,
        1_501,
        9_999,
        7 * 10**17,
    )
    new = dict(zip(PARAM_FIELDS, values, strict=True))
    tx = market.set_params(tuple(new.values()), sender=deployer)
    assert ev(tx, market.ParamsSet) == new
    assert tuple(market.params()) == tuple(new.values())


def test_set_params__not_admin__reverts(market, attacker, keeper, snap):
    with no_change(snap):
        for caller in (attacker, keeper):
            with ape.reverts(MISSING_ROLE):
                market.set_params(_params(fee_bps=0), sender=caller)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"fee_bps": 2_001}, "job_market: fee too high"),
        ({"collateral_bps": 0}, "job_market: collateral is zero"),
        ({"collateral_bps": 1_000_001}, "job_market: collateral too high"),
        ({"challenge_window": 59}, "job_market: challenge window too short"),
        ({"challenge_window": MAX_WINDOW + 1}, "job_market: challenge window too long"),
        ({"audit_timeout": 59}, "job_market: audit timeout too short"),
        ({"audit_timeout": MAX_WINDOW + 1}, "job_market: audit timeout too long"),
        ({"min_accept_window": 59}, "job_market: accept window bounds invalid"),
        ({"min_accept_window": 7_200, "max_accept_window": 7_199}, "job_market: accept window bounds invalid"),
        ({"max_accept_window": MAX_WINDOW + 1}, "job_market: accept window bounds invalid"),
        ({"min_complete_within": 59}, "job_market: completion bounds invalid"),
        ({"min_complete_within": 7_200, "max_complete_within": 7_199}, "job_market: completion bounds invalid"),
        ({"max_complete_within": MAX_WINDOW + 1}, "job_market: completion bounds invalid"),
        ({"dispute_bond_bps": MAX_BPS + 1}, "job_market: dispute bond too high"),
        ({"noshow_penalty_bps": MAX_BPS + 1}, "job_market: no-show penalty too high"),
        ({"user_compensation_bps": 5_001, "challenger_reward_bps": 5_000}, "job_market: slash shares above 100%"),
        ({"user_compensation_bps": MAX_BPS + 1, "challenger_reward_bps": 0}, "job_market: slash shares above 100%"),
        ({"base_audit_bps": MAX_BPS + 1}, "job_market: audit rate above 100%"),
        ({"new_provider_audit_bps": MAX_BPS + 1}, "job_market: audit rate above 100%"),
        ({"bad_record_audit_bps": MAX_BPS + 1}, "job_market: audit rate above 100%"),
        ({"trusted_after_jobs": 65_536}, "job_market: trusted_after_jobs too high"),
        ({"detection_bps": 4_999}, "job_market: detection rate below 50%"),
        ({"detection_bps": MAX_BPS + 1}, "job_market: detection rate above 100%"),
        ({"min_reputation_usd": MAX_REPUTATION_USD + 1}, "job_market: reputation threshold too high"),
    ],
    ids=[
        "fee_high",
        "collateral_zero",
        "collateral_high",
        "challenge_short",
        "challenge_long",
        "audit_short",
        "audit_long",
        "min_accept_short",
        "accept_min_above_max",
        "max_accept_long",
        "min_complete_short",
        "complete_min_above_max",
        "max_complete_long",
        "bond_bps_high",
        "noshow_high",
        "slash_shares_high",
        "compensation_alone_high",
        "base_audit_high",
        "new_audit_high",
        "bad_record_high",
        "trusted_after_high",
        "detection_low",
        "detection_high",
        "reputation_usd_high",
    ],
)
def test_set_params__out_of_bounds__reverts(market, params_check, deployer, snap, changes, message):
    # JobMarketParams.pack reverts with the reason, and set_params passes it through unchanged.
    with ape.reverts(message):
        params_check.pack(_params(**changes))
    with no_change(snap), ape.reverts(message):
        market.set_params(_params(**changes), sender=deployer)


@pytest.mark.parametrize(
    "changes",
    [
        dict(
            fee_bps=2_000,
            collateral_bps=1_000_000,
            challenge_window=MAX_WINDOW,
            audit_timeout=60,
            min_accept_window=60,
            max_accept_window=60,
            min_complete_within=MAX_WINDOW,
            max_complete_within=MAX_WINDOW,
            dispute_bond_bps=MAX_BPS,
            noshow_penalty_bps=MAX_BPS,
            user_compensation_bps=MAX_BPS,
            challenger_reward_bps=0,
            base_audit_bps=MAX_BPS,
            new_provider_audit_bps=MAX_BPS,
            trusted_after_jobs=65_535,
            bad_record_audit_bps=MAX_BPS,
            detection_bps=MAX_BPS,
            min_reputation_usd=MAX_REPUTATION_USD,
        ),
        dict(
            fee_bps=0,
            collateral_bps=1,
            challenge_window=60,
            audit_timeout=MAX_WINDOW,
            min_accept_window=MAX_WINDOW,
            max_accept_window=MAX_WINDOW,
            min_complete_within=60,
            max_complete_within=60,
            dispute_bond_bps=0,
            min_dispute_bond=0,
            noshow_penalty_bps=0,
            user_compensation_bps=0,
            challenger_reward_bps=MAX_BPS,
            base_audit_bps=0,
            new_provider_audit_bps=0,
            trusted_after_jobs=0,
            bad_record_audit_bps=0,
            detection_bps=5_000,
            min_reputation_usd=0,
        ),
    ],
    ids=["upper_bounds", "lower_bounds"],
)
def test_set_params__at_bounds__accepted(market, params_check, deployer, changes):
    # Each field at its bound fits its width in the packed word, next to the others unchanged.
    assert _unpacked(params_check.pack(_params(**changes))) == _hot(_params(**changes))
    market.set_params(_params(**changes), sender=deployer)
    assert tuple(market.params()) == _params(**changes)


def test_set_params__challenge_window_must_outlast_the_audit_draw(
    project, deployer, token, registry, settlement, params_check
):
    # A job's draw is decided at most ROUND_SECONDS + REVEAL_WINDOW after its submission; the
    # challenge window must end later. The deployed beacon's 50 s is below the 60 s minimum
    # window, so a beacon with 40 s rounds (70 s) shows the market's own bound.
    slow = deployer.deploy(project.AuditBeacon, 40, 30)
    latency = 70
    reason = "job_market: challenge window ends before the audit draw"
    params_check.pack(_params(challenge_window=latency))  # the checker's bounds pass

    def deploy(window):
        return _deploy_market(
            project, deployer, token, registry, settlement, params_check, slow, _params(challenge_window=window)
        )

    with ape.reverts(reason):
        deploy(latency)
    m = deploy(latency + 1)
    for window in (60, latency):
        with ape.reverts(reason):
            m.set_params(_params(challenge_window=window), sender=deployer)
    assert m.params().challenge_window == latency + 1
    m.set_params(_params(challenge_window=latency + 2), sender=deployer)
    assert m.params().challenge_window == latency + 2


def test_set_params__new_windows_apply_to_later_calls(
    running_job, market, jobs, chain, deployer, provider, user, params
):
    set_params(
        market,
        deployer,
        params,
        challenge_window=600,
        audit_timeout=120,
        min_accept_window=120,
        max_complete_within=120,
    )
    job_id, _ = running_job
    tx = jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=provider))
    assert jobs[job_id]["challenge_end"] == _ts(chain, tx) + 600
    tx = market.dispute(job_id, jobs.t(job_id), sender=user)
    assert market.disputes(job_id).audit_deadline == _ts(chain, tx) + 120
    with ape.reverts("job_market: accept window too short"):
        market.create_job(ZERO_ADDRESS, CPU, SPEC, UNITS, PRICE, 119, 60, MAX_TOKENS, sender=user)
    with ape.reverts("job_market: completion time too long"):
        market.create_job(ZERO_ADDRESS, CPU, SPEC, UNITS, PRICE, 120, 121, MAX_TOKENS, sender=user)
    market.create_job(ZERO_ADDRESS, CPU, SPEC, UNITS, PRICE, 120, 120, MAX_TOKENS, sender=user)


################################################################
#                 the fee: burned, not swept                   #
################################################################


def test_fee__burned_at_the_claim__market_keeps_nothing(
    make_provider, make_job, market, token, settlement, jobs, chain, provider, user, attacker, ledger
):
    # Replaces the treasury sweep: the fees of finalized jobs are burned with their escrow at the
    # provider's claim, so the market then holds nothing for anyone and the supply falls by
    # exactly the fees.
    machine_id = make_provider(provider)
    ids = [make_job(user)[0] for _ in range(2)]
    for job_id in ids:
        jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
        jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=provider))
    chain.pending_timestamp = jobs[ids[-1]]["challenge_end"] + 1
    ledger.mark()
    market.finalize_many(ids, [jobs.t(i) for i in ids], sender=attacker)
    # Finalizing credits the provider (fees included in the escrow to burn) and moves nothing.
    assert tuple(market.accrued(provider)) == credit(jobs, ids)
    ledger.expect()
    tx = market.claim(provider, sender=attacker)
    e = ev(tx, settlement.Settled)
    assert (e["burned"], e["cap"], e["minted"]) == (2 * PAYMENT, 2 * (PAYMENT - FEE), 2 * (PAYMENT - FEE))
    ledger.expect(provider=2 * (PAYMENT - FEE), market=-2 * PAYMENT, supply=-2 * FEE, settled=2 * PAYMENT)
    assert_books(market, token, jobs)  # escrow gone, no fee left behind


def test_fee__zero_fee_job__provider_minted_whole_escrow_supply_unchanged(
    make_provider, make_job, market, token, settlement, jobs, chain, deployer, provider, user, keeper, params, ledger
):
    set_params(market, deployer, params, fee_bps=0)
    machine_id = make_provider(provider)
    job_id, job = make_job(user)
    assert job["fee_bps"] == 0
    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=provider))
    chain.pending_timestamp = jobs[job_id]["challenge_end"] + 1
    ledger.mark()
    tx = market.finalize(job_id, jobs.t(job_id), sender=keeper)
    e = ev(tx, market.JobFinalized)
    assert (e["fee"], e["burned"]) == (0, PAYMENT)
    assert tuple(market.accrued(provider)) == (PAYMENT, job["usd_value"], PAYMENT)
    ledger.expect()
    assert ev(market.claim(provider, sender=keeper), settlement.Settled)["minted"] == PAYMENT
    # Burned and minted again in full: the supply does not move, the settlement burn counts.
    ledger.expect(provider=PAYMENT, market=-PAYMENT, settled=PAYMENT)
    assert_books(market, token, jobs)


def test_fee__max_fee__provider_minted_escrow_minus_fifth(
    make_provider,
    make_job,
    market,
    token,
    settlement,
    params_check,
    jobs,
    chain,
    deployer,
    provider,
    user,
    keeper,
    params,
    ledger,
):
    set_params(market, deployer, params, fee_bps=params_check.MAX_FEE_BPS())
    machine_id = make_provider(provider)
    job_id, job = make_job(user)
    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    jobs.track(market.submit_result(job_id, jobs.t(job_id), RESULT, "r", sender=provider))
    chain.pending_timestamp = jobs[job_id]["challenge_end"] + 1
    ledger.mark()
    tx = market.finalize(job_id, jobs.t(job_id), sender=keeper)
    fee = PAYMENT // 5
    assert ev(tx, market.JobFinalized)["fee"] == fee
    assert tuple(market.accrued(provider)) == credit(jobs, [job_id])
    assert market.accrued(provider)[2] == PAYMENT - fee
    ledger.expect()
    assert ev(market.claim(provider, sender=keeper), settlement.Settled)["minted"] == PAYMENT - fee
    ledger.expect(provider=PAYMENT - fee, market=-PAYMENT, supply=-fee, settled=PAYMENT)


################################################################
#                        pause / unpause                       #
################################################################


def test_pause__pauser__pauses_and_unpauses(market, deployer):
    tx = market.pause(sender=deployer)
    assert ev(tx, market.Paused) == {"account": deployer.address}
    assert market.paused()
    tx = market.unpause(sender=deployer)
    assert ev(tx, market.Unpaused) == {"account": deployer.address}
    assert not market.paused()


def test_pause__not_pauser__reverts(market, deployer, attacker, snap):
    with no_change(snap), ape.reverts(MISSING_ROLE):
        market.pause(sender=attacker)
    market.pause(sender=deployer)
    with no_change(snap), ape.reverts(MISSING_ROLE):
        market.unpause(sender=attacker)


def test_pause__twice_or_unpause_when_running__reverts(market, deployer, snap):
    with no_change(snap), ape.reverts("pausable: contract is not paused"):
        market.unpause(sender=deployer)
    market.pause(sender=deployer)
    with no_change(snap), ape.reverts(PAUSED):
        market.pause(sender=deployer)


def test_pause__shares_the_parameter_word__set_params_keeps_it_and_unpause_keeps_the_params(
    make_provider, market, deployer, provider, user
):
    """The pause flag is the top bit of the word that holds the hot parameters: new parameters set
    while paused leave the market paused, and unpausing leaves the new parameters in force."""
    make_provider(provider)
    market.pause(sender=deployer)
    new = _params(fee_bps=300, challenge_window=2 * P.challenge_window)
    market.set_params(new, sender=deployer)
    assert market.paused() and tuple(market.params()) == new
    with ape.reverts(PAUSED):
        market.create_job(provider, CPU, SPEC, UNITS, PRICE, ACCEPT_WINDOW, COMPLETE_WITHIN, MAX_TOKENS, sender=user)
    market.unpause(sender=deployer)
    assert not market.paused()
    tx = market.create_job(provider, CPU, SPEC, UNITS, PRICE, ACCEPT_WINDOW, COMPLETE_WITHIN, MAX_TOKENS, sender=user)
    assert ev(tx, market.JobCreated)["fee_bps"] == 300  # read from the hot word, pause bit cleared


def test_paused__create_and_accept__revert_until_unpaused(
    make_provider, make_job, market, jobs, deployer, provider, user, snap
):
    machine_id = make_provider(provider)
    job_id, _ = make_job(user)
    market.pause(sender=deployer)
    with no_change(snap):
        with ape.reverts(PAUSED):
            market.create_job(
                provider, CPU, SPEC, UNITS, PRICE, ACCEPT_WINDOW, COMPLETE_WITHIN, MAX_TOKENS, sender=user
            )
        with ape.reverts(PAUSED):
            market.create_jobs(
                provider, CPU, [SPEC], [UNITS], PRICE, ACCEPT_WINDOW, COMPLETE_WITHIN, MAX_TOKENS, sender=user
            )
        with ape.reverts(PAUSED):
            market.accept(job_id, jobs.t(job_id), machine_id, sender=provider)
        with ape.reverts(PAUSED):
            market.accept_jobs([job_id], [jobs.t(job_id)], machine_id, sender=provider)
    market.unpause(sender=deployer)
    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    assert market.job_status(job_id) == JobStatus.RUNNING
    make_job(user)


def test_paused__submit_and_submit_results__still_work(make_provider, make_job, market, jobs, deployer, provider, user):
    machine_id = make_provider(provider)
    ids = [make_job(user)[0] for _ in range(3)]
    jobs.track(market.accept_jobs(ids, [jobs.t(i) for i in ids], machine_id, sender=provider))
    market.pause(sender=deployer)
    jobs.track(market.submit_result(ids[0], jobs.t(ids[0]), RESULT, "r", sender=provider))
    jobs.track(market.submit_results(ids[1:], [jobs.t(i) for i in ids[1:]], [RESULT] * 2, ["r"] * 2, sender=provider))
    for job_id in ids:
        assert_job(market, jobs, job_id, JobStatus.SUBMITTED)


def test_paused__dispute_post_verdict_and_claim__still_work(
    make_provider, make_job, market, token, jobs, deployer, provider, user
):
    machine_id = make_provider(provider)
    ids = [make_job(user)[0] for _ in range(2)]
    jobs.track(market.accept_jobs(ids, [jobs.t(i) for i in ids], machine_id, sender=provider))
    jobs.track(market.submit_results(ids, [jobs.t(i) for i in ids], [RESULT] * 2, ["r"] * 2, sender=provider))
    market.pause(sender=deployer)
    for job_id in ids:
        market.dispute(job_id, jobs.t(job_id), sender=user)
        assert market.job_status(job_id) == JobStatus.AUDIT
    market.post_verdict(ids[0], jobs.t(ids[0]), True, sender=deployer)
    market.post_verdict(ids[1], jobs.t(ids[1]), False, sender=deployer)
    assert_job(market, jobs, ids[0], JobStatus.FINALIZED)
    assert_job(market, jobs, ids[1], JobStatus.FAILED)
    # The valid verdict credited the provider for the valid job only; its claim works paused.
    assert tuple(market.accrued(provider)) == credit(jobs, ids[:1])
    assert_books(market, token, jobs)
    market.claim(provider, sender=user)
    assert tuple(market.accrued(provider)) == (0, 0, 0)
    assert_books(market, token, jobs)


def test_paused__finalize_finalize_many_and_audit_timeout__still_credit__claim_settles(
    make_provider, make_job, market, token, jobs, chain, deployer, provider, user, keeper, ledger
):
    machine_id = make_provider(provider)
    ids = [make_job(user)[0] for _ in range(4)]
    jobs.track(market.accept_jobs(ids, [jobs.t(i) for i in ids], machine_id, sender=provider))
    jobs.track(market.submit_results(ids, [jobs.t(i) for i in ids], [RESULT] * 4, ["r"] * 4, sender=provider))
    market.dispute(ids[3], jobs.t(ids[3]), sender=user)
    market.pause(sender=deployer)
    chain.pending_timestamp = market.disputes(ids[3]).audit_deadline + 1
    ledger.mark()
    market.finalize(ids[0], jobs.t(ids[0]), sender=keeper)
    market.finalize_many(ids[1:3], [jobs.t(i) for i in ids[1:3]], sender=keeper)
    tx = market.finalize(ids[3], jobs.t(ids[3]), sender=keeper)
    assert ev(tx, market.JobFinalized)["audit_timed_out"]
    for job_id in ids:
        assert_job(market, jobs, job_id, JobStatus.FINALIZED)
    # All four credited; only the timed-out audit's bond moved (back to the user).
    assert tuple(market.accrued(provider)) == credit(jobs, ids)
    bond = market.dispute_bond(PAYMENT)
    ledger.expect(user=bond, market=-bond)
    # The claim (burn and mint) is not paused either: every escrow burned, the provider minted.
    market.claim(provider, sender=keeper)
    ledger.expect(provider=4 * (PAYMENT - FEE), market=-4 * PAYMENT, supply=-4 * FEE, settled=4 * PAYMENT)
    assert_books(market, token, jobs)


def test_paused__cancel_and_expire__still_work(
    make_provider, make_job, market, token, jobs, chain, deployer, provider, user, keeper, ledger
):
    machine_id = make_provider(provider)
    cancel_id, _ = make_job(user)
    stale_id, _ = make_job(user)
    running_id, _ = make_job(user)
    jobs.track(market.accept(running_id, jobs.t(running_id), machine_id, sender=provider))
    market.pause(sender=deployer)
    ledger.mark()
    market.cancel(cancel_id, jobs.t(cancel_id), sender=user)
    chain.pending_timestamp = max(jobs[stale_id]["accept_by"], jobs[running_id]["complete_by"]) + 1
    market.expire(stale_id, jobs.t(stale_id), sender=keeper)
    tx = market.expire(running_id, jobs.t(running_id), sender=keeper)
    penalty = ev(tx, market.JobExpired)["penalty"]
    assert penalty > 0
    assert [market.job_status(i) for i in (cancel_id, stale_id, running_id)] == [
        JobStatus.CANCELLED,
        JobStatus.CANCELLED,
        JobStatus.EXPIRED,
    ]
    ledger.expect(user=3 * PAYMENT + penalty, market=-3 * PAYMENT, registry=-penalty)
    assert_books(market, token, jobs)
