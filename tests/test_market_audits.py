"""JobMarket sampled audits, collateral sized from the audit rate, on-chain reputation (kept in
ProviderRegistry, written by the market), verdicts through the OracleHub quorum, and funding
with a permit.

The session deployment runs with audits off (conftest.UNIT_PARAMS); this module turns them on
with `set_params` (module fixture `audit_params`): new providers are audited on 100% of their
jobs unless a test lowers it, so a draw is certain where a test needs one.

The draw comes from AuditBeacon (tests/test_audit_beacon.py): a job submitted during round c is
drawn from round c + 1, which is pending until its members revealed or its reveal window closed.
The session beacon has no members, so a round degrades once its window closes and every job with
a non-zero audit rate is drawn (`past_reveal_window`); the ready-round test adds members.

A finalized job adds to `completed` only when its USD value reaches `min_reputation_usd` ($1
by default; conftest's jobs are exactly $1): dust jobs cannot buy a provider out of probation.
Audits passed, failures and expiries count whatever the job's size.
"""

from dataclasses import replace

import ape
import pytest
from conftest import ACCEPT_WINDOW, COMPLETE_WITHIN, CPU, PRICE, STAKE, UNITS
from market_helpers import beacon_members, ev, evs, oracle_service, past_reveal_window, reveal_round

from offchain.chain import reports as R
from offchain.chain.beacon import ROUND_DEGRADED, ROUND_PENDING, ROUND_READY, drawn_from_seed, round_seed
from offchain.chain.jobs import check_job
from offchain.chain.permit import sign_permit
from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus
from offchain.params import MarketParams, OracleParams

PAYMENT = PRICE * UNITS  # tokens at conftest's $1 per token
MAX_TOKENS = 2**256 - 1
ZERO = "0x" + "00" * 20
RESULT = b"\x22" * 32
AUDITS = MarketParams(
    base_audit_bps=1_000,
    new_provider_audit_bps=MAX_BPS,
    trusted_after_jobs=2,
    bad_record_audit_bps=2_000,
    detection_bps=9_000,
)
# $0.999, one unit short of AUDITS.min_reputation_usd ($1): a job just below the threshold.
DUST_UNITS = UNITS - 1
assert PRICE * DUST_UNITS < AUDITS.min_reputation_usd == PRICE * UNITS


def required(payment, floor, p, d=AUDITS.detection_bps):
    """JobMarket._required_collateral, independently: S >= R * (1/(p*d) - 1), rounded up."""
    if p == 0:
        return floor
    pd = p * d
    return max(floor, -(-payment * MAX_BPS * MAX_BPS // pd) - payment)


@pytest.fixture(scope="module")
def pool(accounts, deployment, deployer):
    """Three hub operators (threshold 2), sorted by address, each with the minimum stake bonded."""
    hub, token = deployment.hub, deployment.token
    stake = OracleParams().min_operator_stake
    ops = []
    for _ in range(3):
        a = accounts.generate_test_account()
        deployer.transfer(a, 10 * 10**18)
        token.mint(a, stake, sender=deployer)
        token.approve(hub, 2**256 - 1, sender=a)
        hub.stake(stake, sender=a)
        hub.add_operator(a, sender=deployer)
        ops.append(a)
    hub.set_threshold(2, sender=deployer)
    return sorted(ops, key=lambda a: int(a.address, 16))


@pytest.fixture(scope="module")
def hub(deployment):
    return deployment.hub


@pytest.fixture(scope="module")
def beacon(deployment):
    return deployment.beacon


@pytest.fixture(scope="module", autouse=True)
def audit_params(hub, deployment, deployer, pool, chain, project, registry, token, market, keeper, provider, user):
    market.set_params(AUDITS.as_tuple(), sender=deployer)
    return AUDITS


@pytest.fixture
def set_rates(market, deployer):
    def _set(**changes):
        market.set_params(replace(AUDITS, **changes).as_tuple(), sender=deployer)

    return _set


def rep(registry, who):
    return dict(zip(("completed", "failed", "expired", "audits_passed", "disputes_won", "disputes_lost"),
                    registry.reputation(who), strict=True))  # fmt: skip


def record(completed=0, failed=0, expired=0, audits_passed=0, disputes_won=0, disputes_lost=0):
    return dict(completed=completed, failed=failed, expired=expired, audits_passed=audits_passed,
                disputes_won=disputes_won, disputes_lost=disputes_lost)  # fmt: skip


def verdict(hub, chain, ops, job_id, job, valid, signers=2, **fields):
    report = {
        "job_id": job_id,
        "result_hash": job["result_hash"],
        "valid": valid,
        "evidence_hash": b"\x5e" * 32,
        "nonce": hub.verdict_nonce(job_id),
    }
    report.update(fields)
    typed = R.verdict_typed_data(hub.address, chain.chain_id, report)
    sigs = [(op.address, R.sign_report(op.private_key, typed)) for op in ops[:signers]]
    return R.report_tuple(R.VERDICT_FIELDS, report), R.sort_signatures(sigs)


def run_to_submitted(market, jobs, make_job, machine_id, provider, user, result=RESULT, units=UNITS):
    job_id, _ = make_job(user, units=units)
    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    jobs.track(market.submit_result(job_id, jobs.t(job_id), result, "http://p/blobs/r", sender=provider))
    return job_id


def decide_draw(chain, beacon, jobs, job_id):
    """Mines past the reveal window of the job's round: unrevealed (no members here), it is
    degraded, and the job is drawn if its audit rate is not zero."""
    past_reveal_window(chain, beacon, jobs[job_id]["draw_round"])


################################################################
#                  audit rate and collateral                   #
################################################################


def test_audit_rate__new_then_trusted_then_bad_record(market, set_rates, provider):
    set_rates(new_provider_audit_bps=3_000)
    assert market.audit_rate(provider) == 3_000  # no completed jobs yet
    set_rates(new_provider_audit_bps=3_000, trusted_after_jobs=0)
    assert market.audit_rate(provider) == AUDITS.base_audit_bps
    set_rates(new_provider_audit_bps=500, trusted_after_jobs=10)
    assert market.audit_rate(provider) == AUDITS.base_audit_bps  # never below the base rate


@pytest.mark.parametrize("p", [1, 500, 1_000, 3_333, 9_999, MAX_BPS])
@pytest.mark.parametrize("payment", [1, 10**18 + 7, 123_456_789 * 10**9])
def test_required_collateral__matches_formula_and_deters_cheating(market, p, payment):
    floor = payment * 15_000 // MAX_BPS
    got = market.required_collateral(payment, floor, p)
    assert got == required(payment, floor, p)
    # p*d*(R + S) >= R: the expected loss of a cheater covers at least its gain.
    assert p * AUDITS.detection_bps * (payment + got) >= payment * MAX_BPS * MAX_BPS


def test_required_collateral__no_audits__floor(market):
    assert market.required_collateral(10**18, 5, 0) == 5


def test_accept__new_provider__locks_collateral_for_its_audit_rate(
    make_provider, make_job, market, registry, jobs, set_rates, provider, user
):
    set_rates(new_provider_audit_bps=3_000)
    machine_id = make_provider(provider)
    job_id, job = make_job(user)
    floor = job["collateral"]
    tx = jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    want = required(PAYMENT, floor, 3_000)
    assert want > floor
    e = ev(tx, market.JobAccepted)
    assert (e["collateral"], e["audit_bps"]) == (want, 3_000)
    assert registry.locked(provider) == want
    assert jobs[job_id]["collateral"] == want and check_job(market, job_id, jobs[job_id])


def test_accept__collateral_above_free_stake__reverts(make_provider, make_job, market, jobs, set_rates, provider, user):
    # p = 0.01%: collateral ~ 11,110x the payment, far above the provider's 1,000-token stake.
    set_rates(new_provider_audit_bps=1, base_audit_bps=1)
    machine_id = make_provider(provider)
    job_id, _ = make_job(user, units=UNITS * 100)
    with ape.reverts():
        market.accept(job_id, jobs.t(job_id), machine_id, sender=provider)
    assert market.job_status(job_id) == JobStatus.OPEN


################################################################
#                        the audit draw                        #
################################################################


def test_draw__certain__pending_then_degraded_and_finalize_refused_until_audited(
    make_provider, make_job, market, beacon, jobs, chain, keeper, provider, user
):
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    assert jobs[job_id]["audit_bps"] == MAX_BPS
    r = jobs[job_id]["draw_round"]
    # Its round has not started: nobody knows the draw yet, no audit can open.
    assert tuple(beacon.draw_seed(r))[0] == ROUND_PENDING
    assert not market.audit_drawn(job_id, jobs.t(job_id))
    # Nobody revealed by the deadline: degraded, every audited job of the round is drawn.
    decide_draw(chain, beacon, jobs, job_id)
    assert tuple(beacon.draw_seed(r))[0] == ROUND_DEGRADED
    assert market.audit_drawn(job_id, jobs.t(job_id))
    chain.pending_timestamp = jobs[job_id]["challenge_end"] + 1
    with ape.reverts("job_market: job drawn for audit"):
        market.finalize(job_id, jobs.t(job_id), sender=keeper)


def test_draw__zero_rate__never_drawn_and_finalizes(
    make_provider, make_job, market, beacon, jobs, chain, set_rates, keeper, provider, user
):
    set_rates(new_provider_audit_bps=0, base_audit_bps=0)
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    decide_draw(chain, beacon, jobs, job_id)  # degraded, yet p = 0 draws nothing
    assert tuple(beacon.draw_seed(jobs[job_id]["draw_round"]))[0] == ROUND_DEGRADED
    assert not market.audit_drawn(job_id, jobs.t(job_id))
    chain.pending_timestamp = jobs[job_id]["challenge_end"] + 1
    market.finalize(job_id, jobs.t(job_id), sender=keeper)
    assert market.job_status(job_id) == JobStatus.FINALIZED


def test_draw__ready_round__drawn_iff_the_seed_says_so(
    make_provider, market, beacon, jobs, chain, accounts, deployer, set_rates, keeper, provider, user
):
    set_rates(new_provider_audit_bps=5_000, base_audit_bps=5_000)
    members = beacon_members(beacon, accounts, deployer, chain, 2)
    machine_id = make_provider(provider, stake=100_000 * ONE_TOKEN // 2)
    n = 40
    tx = jobs.track(market.create_jobs(
        provider, CPU, [bytes([i + 1]) * 32 for i in range(n)], [UNITS] * n, PRICE, ACCEPT_WINDOW, COMPLETE_WITHIN,
        MAX_TOKENS, sender=user,
    ))  # fmt: skip
    ids = [e["job_id"] for e in evs(tx, market.JobCreated)]
    jobs.track(market.accept_jobs(ids, [jobs.t(i) for i in ids], machine_id, sender=provider))
    jobs.track(market.submit_results(ids, [jobs.t(i) for i in ids], [RESULT] * n, ["r"] * n, sender=provider))
    r = jobs[ids[0]]["draw_round"]
    assert {jobs[i]["draw_round"] for i in ids} == {r}
    assert not any(market.audit_drawn(i, jobs.t(i)) for i in ids)  # pending
    xor = reveal_round(chain, beacon, members, r)
    seed = round_seed(xor, r)
    assert tuple(beacon.draw_seed(r)) == (ROUND_READY, seed)
    # One seed for the round, a draw per job: keccak(seed, job_id) % 10^4 < audit_bps.
    want = [drawn_from_seed(seed, i, 5_000) for i in ids]
    assert [market.audit_drawn(i, jobs.t(i)) for i in ids] == want
    # Binomial(40, 0.5): P(outside 8..32) < 1e-4.
    assert 8 <= sum(want) <= 32, sum(want)
    drawn = [i for i, w in zip(ids, want, strict=True) if w]
    spared = [i for i, w in zip(ids, want, strict=True) if not w]
    chain.pending_timestamp = jobs[ids[0]]["challenge_end"] + 1
    with ape.reverts("job_market: job drawn for audit"):
        market.finalize(drawn[1], jobs.t(drawn[1]), sender=keeper)
    market.finalize_many(spared, [jobs.t(i) for i in spared], sender=keeper)
    # A drawn job stays Submitted (in audit with no transaction) until a verdict or its timeout.
    assert [market.job_status(i) for i in ids] == [JobStatus.SUBMITTED if w else JobStatus.FINALIZED for w in want]


def test_draw__degraded_round__stays_drawn_and_times_out_into_finalize(
    make_provider, make_job, market, beacon, jobs, chain, token, keeper, provider, user
):
    # A drawn job always has an exit with no transaction to open its audit: the draw does not
    # lapse (finalize refuses it, the user cannot dispute it), and without a verdict by
    # challenge_end + audit_timeout anyone finalizes it as a timed-out audit (provider paid).
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    decide_draw(chain, beacon, jobs, job_id)
    deadline = jobs[job_id]["challenge_end"] + AUDITS.audit_timeout
    chain.mine(256)
    chain.mine(timestamp=deadline - 3)
    assert market.audit_drawn(job_id, jobs.t(job_id))
    assert market.job_status(job_id) == JobStatus.SUBMITTED
    assert tuple(market.disputes(job_id)) == (ZERO, 0, 0)  # nothing stored for a sampled audit
    with ape.reverts("job_market: job drawn for audit"):
        market.finalize(job_id, jobs.t(job_id), sender=keeper)
    with ape.reverts("job_market: challenge window over"):
        market.dispute(job_id, jobs.t(job_id), sender=user)
    assert chain.blocks.head.timestamp <= deadline  # both refused before the deadline
    before = token.balanceOf(keeper)
    chain.pending_timestamp = max(chain.pending_timestamp, deadline + 1)
    tx = market.finalize(job_id, jobs.t(job_id), sender=keeper)
    assert ev(tx, market.JobFinalized)["audit_timed_out"]
    assert market.job_status(job_id) == JobStatus.FINALIZED
    assert token.balanceOf(keeper) == before


def test_sampled_audit__verdict_until_challenge_end_plus_timeout__then_refused(
    make_provider, make_job, market, hub, beacon, jobs, chain, pool, keeper, provider, user
):
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    decide_draw(chain, beacon, jobs, job_id)
    report, sigs = verdict(hub, chain, pool, job_id, jobs[job_id], True)
    chain.pending_timestamp = jobs[job_id]["challenge_end"] + AUDITS.audit_timeout + 1
    with ape.reverts("job_market: audit deadline passed"):
        hub.submit_verdict(report, jobs.t(job_id), sigs, sender=keeper)
    assert market.job_status(job_id) == JobStatus.SUBMITTED


def test_sampled_audit__verdict_on_a_job_not_drawn__refused(
    make_provider, make_job, market, hub, beacon, jobs, chain, pool, set_rates, keeper, provider, user
):
    set_rates(new_provider_audit_bps=0, base_audit_bps=0)
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    decide_draw(chain, beacon, jobs, job_id)
    report, sigs = verdict(hub, chain, pool, job_id, jobs[job_id], False)
    with ape.reverts("job_market: job not in audit"):
        hub.submit_verdict(report, jobs.t(job_id), sigs, sender=keeper)
    assert market.job_status(job_id) == JobStatus.SUBMITTED


################################################################
#                  verdicts through the quorum                 #
################################################################


def test_verdict_valid__sampled__provider_paid_reputation_counts(
    make_provider, make_job, market, hub, beacon, registry, jobs, chain, token, pool, keeper, provider, user
):
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    decide_draw(chain, beacon, jobs, job_id)
    before, supply, held = token.balanceOf(provider), token.totalSupply(), token.balanceOf(market)
    report, sigs = verdict(hub, chain, pool, job_id, jobs[job_id], True)
    tx = hub.submit_verdict(report, jobs.t(job_id), sigs, sender=keeper)
    assert ev(tx, hub.VerdictAccepted)["signers"] == 2
    assert ev(tx, market.VerdictPosted)["verifier"] == hub.address
    assert market.job_status(job_id) == JobStatus.FINALIZED
    fee = PAYMENT * AUDITS.fee_bps // MAX_BPS
    e = ev(tx, market.JobFinalized)
    assert (e["burned"], e["fee"]) == (PAYMENT, fee)
    # The audit is on record at once; the completed count and the collateral wait for the claim.
    assert rep(registry, provider) == record(audits_passed=1)
    assert registry.stakes(provider).locked == jobs[job_id]["collateral"]
    # The verdict credits the provider (no bond: a sampled audit has no challenger); no token moves.
    usd = jobs[job_id]["usd_value"]
    usd_net = usd - usd * AUDITS.fee_bps // MAX_BPS
    assert tuple(market.accrued(provider)) == (PAYMENT, usd_net, PAYMENT - fee)
    assert (token.balanceOf(provider), token.totalSupply(), token.balanceOf(market)) == (before, supply, held)
    # The claim burns the escrow and mints the provider its pay.
    market.claim(provider, sender=keeper)
    assert token.balanceOf(provider) - before == PAYMENT - fee
    assert supply - token.totalSupply() == fee
    assert held - token.balanceOf(market) == PAYMENT
    assert tuple(market.accrued(provider)) == (0, 0, 0)
    assert rep(registry, provider) == record(completed=1, audits_passed=1)
    assert registry.stakes(provider).locked == 0


def test_verdict_invalid__sampled__user_refunded_collateral_slashed_rate_rises(
    make_provider, make_job, market, hub, beacon, registry, jobs, chain, token, pool, keeper, provider, user
):
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    decide_draw(chain, beacon, jobs, job_id)
    collateral = jobs[job_id]["collateral"]
    user_before = token.balanceOf(user)
    report, sigs = verdict(hub, chain, pool, job_id, jobs[job_id], False)
    tx = hub.submit_verdict(report, jobs.t(job_id), sigs, sender=keeper)
    e = ev(tx, market.JobFailed)
    assert e["challenger_reward"] == 0  # a sampled audit has no challenger
    assert e["user_compensation"] == collateral * AUDITS.user_compensation_bps // MAX_BPS
    assert e["burned"] == collateral - e["user_compensation"]
    assert token.balanceOf(user) - user_before == PAYMENT + e["user_compensation"]
    assert market.job_status(job_id) == JobStatus.FAILED
    assert rep(registry, provider) == record(failed=1)
    # New provider (100%) plus one failure: capped at 100%; as an established provider it
    # would be base + bad_record.
    assert market.audit_rate(provider) == MAX_BPS


def test_verdict__dispute__reputation_records_dispute_outcome(
    make_provider, make_job, market, hub, registry, jobs, chain, pool, set_rates, keeper, provider, user
):
    set_rates(new_provider_audit_bps=0, base_audit_bps=0)
    machine_id = make_provider(provider)
    a = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    b = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    market.dispute(a, jobs.t(a), sender=user)
    market.dispute(b, jobs.t(b), sender=user)
    report, sigs = verdict(hub, chain, pool, a, jobs[a], True)
    hub.submit_verdict(report, jobs.t(a), sigs, sender=keeper)
    report, sigs = verdict(hub, chain, pool, b, jobs[b], False)
    hub.submit_verdict(report, jobs.t(b), sigs, sender=keeper)
    assert rep(registry, provider) == record(failed=1, audits_passed=1, disputes_won=1, disputes_lost=1)
    market.claim(provider, sender=keeper)  # the valid job's completed count comes with the claim
    assert rep(registry, provider) == record(completed=1, failed=1, audits_passed=1, disputes_won=1, disputes_lost=1)


@pytest.mark.parametrize(
    "case, message",
    [
        ("one_signer", "oracle_hub: not enough signatures"),
        ("other_result", "oracle_hub: verdict is for another result"),
        ("wrong_nonce", "oracle_hub: wrong nonce"),
        ("not_in_audit", "job_market: job not in audit"),
    ],
)
def test_submit_verdict__bad_report__reverts_nothing_changes(
    make_provider, make_job, market, hub, beacon, jobs, chain, pool, keeper, provider, user, case, message
):
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    if case != "not_in_audit":  # a job not drawn (its round still pending) is not in audit
        decide_draw(chain, beacon, jobs, job_id)
    fields = {"other_result": {"result_hash": b"\x33" * 32}, "wrong_nonce": {"nonce": 1}}.get(case, {})
    report, sigs = verdict(hub, chain, pool, job_id, jobs[job_id], True, signers=1 if case == "one_signer" else 2,
                           **fields)  # fmt: skip
    status = market.job_status(job_id)
    with ape.reverts(message):
        hub.submit_verdict(report, jobs.t(job_id), sigs, sender=keeper)
    assert market.job_status(job_id) == status
    assert hub.verdict_nonce(job_id) == 0


def test_submit_verdict__replayed__reverts(
    make_provider, make_job, market, hub, beacon, jobs, chain, pool, keeper, provider, user
):
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    decide_draw(chain, beacon, jobs, job_id)
    report, sigs = verdict(hub, chain, pool, job_id, jobs[job_id], True)
    hub.submit_verdict(report, jobs.t(job_id), sigs, sender=keeper)
    with ape.reverts("oracle_hub: wrong nonce"):
        hub.submit_verdict(report, jobs.t(job_id), sigs, sender=keeper)


def _batch_verdicts(make_provider, make_job, market, hub, beacon, jobs, chain, pool, keeper, provider, user, valid):
    """One provider's jobs, one per entry of `valid`, drawn for audit and judged by one
    `submit_verdicts`; (job ids, its transaction)."""
    machine_id = make_provider(provider)
    ids = [run_to_submitted(market, jobs, make_job, machine_id, provider, user) for _ in valid]
    for i in ids:
        decide_draw(chain, beacon, jobs, i)
    reports, sigs = zip(*(verdict(hub, chain, pool, i, jobs[i], v) for i, v in zip(ids, valid, strict=True)),
                        strict=True)  # fmt: skip
    return ids, hub.submit_verdicts(list(reports), [jobs.t(i) for i in ids], list(sigs), sender=keeper)


def test_submit_verdicts__batch__each_job_settled_like_alone(
    make_provider, make_job, market, hub, beacon, registry, jobs, chain, pool, keeper, provider, user
):
    ids, tx = _batch_verdicts(make_provider, make_job, market, hub, beacon, jobs, chain, pool, keeper, provider, user,
                              [True, False, True])  # fmt: skip
    assert [e["job_id"] for e in evs(tx, hub.VerdictAccepted)] == ids
    assert [market.job_status(i) for i in ids] == [JobStatus.FINALIZED, JobStatus.FAILED, JobStatus.FINALIZED]
    assert [hub.verdict_nonce(i) for i in ids] == [1, 1, 1]
    market.claim(provider, sender=keeper)
    assert rep(registry, provider) == record(completed=2, failed=1, audits_passed=2)


def test_explorer__batched_verdicts__each_failed_job_one_slash__each_signer_found(
    make_provider, make_job, market, hub, beacon, jobs, chain, pool, keeper, provider, user, deployment, tmp_path
):
    """The explorer's index (offchain/explorer/) over one `submit_verdicts` failing two of a
    provider's jobs: two slashes, not one; three drawn audits, two failed; each job's findings
    are its signers' (recovered from the batch's calldata), the third operator's "no signature"."""

    from offchain.explorer.server import Explorer

    valid = [False, True, False]
    ids, _ = _batch_verdicts(make_provider, make_job, market, hub, beacon, jobs, chain, pool, keeper, provider, user,
                             valid)  # fmt: skip
    d = deployment
    h = d.handles(chain)
    ex = Explorer(h, index_path=tmp_path / "index.sqlite")
    ex.sync_once()
    v = ex.views.verification()
    assert v["slashes_by_reason"]["invalid result"]["count"] == 2
    assert (v["audits"]["drawn"], v["audits"]["audited"], v["audits"]["failed"]) == (3, 3, 2)
    slashes = ex.views.provider(provider.address)["slashes"]
    assert sorted(s["job_id"] for s in slashes) == [ids[0], ids[2]]
    signers = sorted(op.address.lower() for op in pool[:2])
    for i, ok in zip(ids, valid, strict=True):
        findings = {f["operator"]: f["finding"] for f in ex.views.job(i)["findings"]}
        assert sorted(op for op, f in findings.items() if f != "no signature") == signers
        assert set(findings.values()) == {"valid" if ok else "invalid", "no signature"}
    signed = {o["address"]: o["signed"].get("verdict", 0) for o in ex.views.oracles()["operators"]}
    assert {a: n for a, n in signed.items() if n} == dict.fromkeys(signers, 3)


@pytest.mark.parametrize("case, message", [
    ("one_replayed", "oracle_hub: wrong nonce"),
    ("one_not_drawn", "job_market: job not in audit"),
    ("length_mismatch", "oracle_hub: length mismatch"),
    ("empty", "oracle_hub: empty batch"),
])  # fmt: skip
def test_submit_verdicts__one_bad_report__whole_batch_reverts(
    make_provider, make_job, market, hub, beacon, jobs, chain, pool, set_rates, keeper, provider, user, case, message
):
    machine_id = make_provider(provider)
    ids = [run_to_submitted(market, jobs, make_job, machine_id, provider, user) for _ in range(2)]
    for i in ids:
        decide_draw(chain, beacon, jobs, i)
    if case == "one_not_drawn":  # a third job at audit rate 0: never drawn, not in audit
        set_rates(new_provider_audit_bps=0, base_audit_bps=0)
        ids.append(run_to_submitted(market, jobs, make_job, machine_id, provider, user))
        decide_draw(chain, beacon, jobs, ids[-1])
    pairs = [verdict(hub, chain, pool, i, jobs[i], True) for i in ids]
    if case == "one_replayed":
        hub.submit_verdict(pairs[1][0], jobs.t(ids[1]), pairs[1][1], sender=keeper)
    reports, sigs, tups = [p[0] for p in pairs], [p[1] for p in pairs], [jobs.t(i) for i in ids]
    if case == "length_mismatch":
        tups = tups[:1]
    if case == "empty":
        reports, sigs, tups = [], [], []
    before = [market.job_status(i) for i in ids]
    with ape.reverts(message):
        hub.submit_verdicts(reports, tups, sigs, sender=keeper)
    assert [market.job_status(i) for i in ids] == before
    assert hub.verdict_nonce(ids[0]) == 0


def test_post_verdict__only_verifier_role(
    make_provider, make_job, market, beacon, jobs, chain, keeper, attacker, provider, user
):
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    decide_draw(chain, beacon, jobs, job_id)
    with ape.reverts():
        market.post_verdict(job_id, jobs.t(job_id), False, sender=attacker)


def test_set_job_market__once_and_admin_only(hub, market, deployer, attacker):
    assert hub.job_market() == market.address
    with ape.reverts("oracle_hub: job market already set"):
        hub.set_job_market(attacker, sender=deployer)
    with ape.reverts():
        hub.set_job_market(attacker, sender=attacker)


def test_reputation__expired_job_counts(make_provider, make_job, market, registry, jobs, chain, keeper, provider, user):
    machine_id = make_provider(provider)
    job_id, _ = make_job(user)
    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    chain.pending_timestamp += COMPLETE_WITHIN + 1
    market.expire(job_id, jobs.t(job_id), sender=keeper)
    assert rep(registry, provider) == record(expired=1)


def test_reputation__kept_by_the_registry_not_the_market(market, registry, provider):
    # The market writes each outcome there (through unlock_collateral) and reads it back for
    # the audit rate; it keeps no copy of its own.
    assert registry.job_market() == market.address
    assert registry.reputation(provider) == (0, 0, 0, 0, 0, 0)
    assert registry.reputation_word(provider) == 0
    assert not hasattr(market, "reputation")


################################################################
#             reputation: jobs below min_reputation_usd        #
################################################################


def _finalize_after_window(market, jobs, chain, keeper, ids):
    chain.pending_timestamp = max(jobs[i]["challenge_end"] for i in ids) + 1
    for job_id in ids:
        market.finalize(job_id, jobs.t(job_id), sender=keeper)
        assert market.job_status(job_id) == JobStatus.FINALIZED


def test_reputation__dust_jobs_finalized_one_by_one__not_completed_rate_stays(
    make_provider, make_job, market, registry, token, jobs, chain, set_rates, keeper, provider, user
):
    # Audits off while the jobs run (nothing drawn, every job finalizes); the rates that matter
    # are set back before reading the audit rate: new 30%, base 10%, trusted after 2 jobs.
    set_rates(new_provider_audit_bps=0, base_audit_bps=0)
    machine_id = make_provider(provider)
    dust = [run_to_submitted(market, jobs, make_job, machine_id, provider, user, units=DUST_UNITS) for _ in range(3)]
    assert all(jobs[i]["usd_value"] == AUDITS.min_reputation_usd - PRICE for i in dust)
    before = token.balanceOf(provider)
    _finalize_after_window(market, jobs, chain, keeper, dust)
    # Paid as usual, only not counted: credited, then the claim mints the pay.
    assert market.accrued(provider)[0] == sum(jobs[i]["payment"] for i in dust)
    market.claim(provider, sender=keeper)
    assert token.balanceOf(provider) > before
    # Three dust jobs (more than trusted_after_jobs): still nothing on record, still on probation.
    assert rep(registry, provider) == record()
    set_rates(new_provider_audit_bps=3_000)
    assert market.audit_rate(provider) == 3_000

    # At the threshold ($1 exactly) and above ($2) a job counts.
    set_rates(new_provider_audit_bps=0, base_audit_bps=0)
    at = run_to_submitted(market, jobs, make_job, machine_id, provider, user, units=UNITS)
    above = run_to_submitted(market, jobs, make_job, machine_id, provider, user, units=2 * UNITS)
    assert jobs[at]["usd_value"] == AUDITS.min_reputation_usd
    _finalize_after_window(market, jobs, chain, keeper, [at])
    assert rep(registry, provider) == record()  # counted at finalize, on record with the claim
    market.claim(provider, sender=keeper)
    assert rep(registry, provider) == record(completed=1)
    set_rates(new_provider_audit_bps=3_000)
    assert market.audit_rate(provider) == 3_000  # one of two: still new
    _finalize_after_window(market, jobs, chain, keeper, [above])
    market.claim(provider, sender=keeper)
    assert rep(registry, provider) == record(completed=2)
    assert market.audit_rate(provider) == AUDITS.base_audit_bps  # trusted after 2 counted jobs


def test_reputation__dust_jobs_in_finalize_many__not_completed_rate_stays(
    make_provider, market, registry, jobs, chain, set_rates, keeper, provider, user
):
    set_rates(new_provider_audit_bps=0, base_audit_bps=0)
    machine_id = make_provider(provider)
    units = [DUST_UNITS, DUST_UNITS, DUST_UNITS, DUST_UNITS, UNITS, DUST_UNITS, 3 * UNITS]
    n = len(units)
    tx = jobs.track(market.create_jobs(
        provider, CPU, [bytes([i + 1]) * 32 for i in range(n)], units, PRICE, ACCEPT_WINDOW, COMPLETE_WITHIN,
        MAX_TOKENS, sender=user,
    ))  # fmt: skip
    ids = [e["job_id"] for e in evs(tx, market.JobCreated)]
    jobs.track(market.accept_jobs(ids, [jobs.t(i) for i in ids], machine_id, sender=provider))
    jobs.track(market.submit_results(ids, [jobs.t(i) for i in ids], [RESULT] * n, ["r"] * n, sender=provider))
    chain.pending_timestamp = max(jobs[i]["challenge_end"] for i in ids) + 1
    set_rates(new_provider_audit_bps=3_000)

    # A batch of dust only (more jobs than trusted_after_jobs): nothing counts.
    dust_only = ids[:3]
    tx = market.finalize_many(dust_only, [jobs.t(i) for i in dust_only], sender=keeper)
    assert [e["job_id"] for e in evs(tx, market.JobFinalized)] == dust_only
    market.claim(provider, sender=keeper)
    assert rep(registry, provider) == record()
    assert market.audit_rate(provider) == 3_000

    # A mixed batch: only the $1 and $3 jobs count.
    mixed = ids[3:]
    market.finalize_many(mixed, [jobs.t(i) for i in mixed], sender=keeper)
    assert [market.job_status(i) for i in ids] == [JobStatus.FINALIZED] * n
    market.claim(provider, sender=keeper)
    assert rep(registry, provider) == record(completed=2)
    assert market.audit_rate(provider) == AUDITS.base_audit_bps


@pytest.mark.parametrize(
    "threshold, units, counts",
    [
        (0, 1, True),  # no threshold: even a one-unit job counts
        (2 * 10**18, UNITS, False),  # $1 below a $2 threshold
        (2 * 10**18, 2 * UNITS, True),  # exactly at it
    ],
)
def test_reputation__threshold_is_the_param_at_finalize(
    make_provider, make_job, market, registry, jobs, chain, set_rates, keeper, provider, user, threshold, units, counts
):
    set_rates(new_provider_audit_bps=0, base_audit_bps=0)
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user, units=units)
    # Set after the job was created and accepted: the value at finalize decides.
    set_rates(new_provider_audit_bps=0, base_audit_bps=0, min_reputation_usd=threshold)
    assert market.params().min_reputation_usd == threshold
    _finalize_after_window(market, jobs, chain, keeper, [job_id])
    set_rates(new_provider_audit_bps=0, base_audit_bps=0)  # the claim does not read it again
    market.claim(provider, sender=keeper)
    assert rep(registry, provider) == record(completed=int(counts))


def test_reputation__dust_jobs__audits_failures_disputes_and_expiries_still_count(
    make_provider, make_job, market, hub, beacon, registry, token, jobs, chain, pool, set_rates, keeper, provider, user
):
    # New providers are audited on 100% here: every dust job is drawn (its round degrades).
    machine_id = make_provider(provider)

    # A sampled audit that passes: paid and an audit passed, but not a completed job.
    passed = run_to_submitted(market, jobs, make_job, machine_id, provider, user, units=DUST_UNITS)
    decide_draw(chain, beacon, jobs, passed)
    report, sigs = verdict(hub, chain, pool, passed, jobs[passed], True)
    tx = hub.submit_verdict(report, jobs.t(passed), sigs, sender=keeper)
    assert ev(tx, market.JobFinalized)["usd_value"] == PRICE * DUST_UNITS
    assert rep(registry, provider) == record(audits_passed=1)

    # A sampled audit that fails: a failure, whatever the size.
    failed = run_to_submitted(market, jobs, make_job, machine_id, provider, user, units=DUST_UNITS)
    decide_draw(chain, beacon, jobs, failed)
    report, sigs = verdict(hub, chain, pool, failed, jobs[failed], False)
    hub.submit_verdict(report, jobs.t(failed), sigs, sender=keeper)
    assert market.job_status(failed) == JobStatus.FAILED
    assert rep(registry, provider) == record(failed=1, audits_passed=1)

    # The user's disputes of dust jobs (audits off, the bad-record surcharge too, so that they
    # are not drawn): won and lost.
    set_rates(new_provider_audit_bps=0, base_audit_bps=0, bad_record_audit_bps=0)
    won = run_to_submitted(market, jobs, make_job, machine_id, provider, user, units=DUST_UNITS)
    lost = run_to_submitted(market, jobs, make_job, machine_id, provider, user, units=DUST_UNITS)
    timed_out = run_to_submitted(market, jobs, make_job, machine_id, provider, user, units=DUST_UNITS)
    for job_id in (won, lost, timed_out):
        market.dispute(job_id, jobs.t(job_id), sender=user)
    report, sigs = verdict(hub, chain, pool, won, jobs[won], True)
    hub.submit_verdict(report, jobs.t(won), sigs, sender=keeper)
    report, sigs = verdict(hub, chain, pool, lost, jobs[lost], False)
    hub.submit_verdict(report, jobs.t(lost), sigs, sender=keeper)
    want = record(failed=2, audits_passed=2, disputes_won=1, disputes_lost=1)
    assert rep(registry, provider) == want
    # No verdict in time: paid, the bond back to the user, but neither counted nor an audit passed.
    chain.pending_timestamp = market.disputes(timed_out).audit_deadline + 1
    market.finalize(timed_out, jobs.t(timed_out), sender=keeper)
    assert market.job_status(timed_out) == JobStatus.FINALIZED
    assert rep(registry, provider) == want

    # Accepted and never delivered: an expiry.
    expired, _ = make_job(user, units=DUST_UNITS)
    jobs.track(market.accept(expired, jobs.t(expired), machine_id, sender=provider))
    chain.pending_timestamp = jobs[expired]["complete_by"] + 1
    market.expire(expired, jobs.t(expired), sender=keeper)
    assert rep(registry, provider) == record(failed=2, expired=1, audits_passed=2, disputes_won=1, disputes_lost=1)
    assert rep(registry, provider)["completed"] == 0
    # Two failures and an expiry on record, nothing completed: the audit rate rises, never falls.
    set_rates(new_provider_audit_bps=3_000)
    assert market.audit_rate(provider) == min(MAX_BPS, 3_000 + 3 * AUDITS.bad_record_audit_bps)


################################################################
#                           permits                            #
################################################################


def _permit(token, owner_key, owner, spender, amount, deadline, chain):
    return sign_permit(owner_key, token, chain.chain_id, owner, spender, amount, deadline)


def _permit_args(provider, max_tokens, permit_amount, deadline, v, r, s):
    """create_job_with_permit's arguments for a conftest-default job (1 token at $1)."""
    spec = b"\x11" * 32
    return (
        provider,
        CPU,
        spec,
        UNITS,
        PRICE,
        ACCEPT_WINDOW,
        COMPLETE_WITHIN,
        max_tokens,
        permit_amount,
        deadline,
        v,
        r,
        s,
    )


@pytest.fixture
def payer(accounts, token, deployer):
    """A fresh account holding gas money and exactly PAYMENT tokens, with no allowance set."""
    a = accounts.generate_test_account()
    deployer.transfer(a, 10**18)
    token.mint(a, PAYMENT, sender=deployer)
    return a


def test_create_job_with_permit__no_allowance__one_transaction(
    make_provider, market, token, jobs, chain, payer, provider
):
    make_provider(provider)
    assert token.allowance(payer, market) == 0
    deadline = chain.pending_timestamp + 600
    v, r, s = _permit(token, payer.private_key, payer.address, market.address, PAYMENT, deadline, chain)
    args = _permit_args(provider, PAYMENT, PAYMENT, deadline, v, r, s)
    tx = jobs.track(market.create_job_with_permit(*args, sender=payer))
    job_id = ev(tx, market.JobCreated)["job_id"]
    assert market.job_status(job_id) == JobStatus.OPEN
    assert token.balanceOf(payer) == 0 and token.allowance(payer, market) == 0


def test_create_job_with_permit__payment_above_max_tokens__reverts_permit_unused(
    make_provider, market, token, chain, payer, provider
):
    make_provider(provider)
    deadline = chain.pending_timestamp + 600
    v, r, s = _permit(token, payer.private_key, payer.address, market.address, PAYMENT, deadline, chain)
    max_tokens = PAYMENT - 1  # the price moved against the payer between its quote and its transaction
    args = _permit_args(provider, max_tokens, PAYMENT, deadline, v, r, s)
    with ape.reverts("job_market: payment above max tokens"):
        market.create_job_with_permit(*args, sender=payer)
    assert token.balanceOf(payer) == PAYMENT and market.job_count() == 0
    assert token.allowance(payer, market) == 0 and token.nonces(payer) == 0  # the permit rolled back too


def test_create_job_with_permit__front_run_permit__still_succeeds(
    make_provider, market, token, jobs, chain, payer, attacker, provider
):
    make_provider(provider)
    deadline = chain.pending_timestamp + 600
    v, r, s = _permit(token, payer.private_key, payer.address, market.address, PAYMENT, deadline, chain)
    token.permit(payer, market, PAYMENT, deadline, v, r, s, sender=attacker)  # copied from the mempool
    args = _permit_args(provider, PAYMENT, PAYMENT, deadline, v, r, s)
    jobs.track(market.create_job_with_permit(*args, sender=payer))
    assert token.balanceOf(payer) == 0


def test_create_job_with_permit__bad_signature__transfer_fails(make_provider, market, token, chain, payer, provider):
    make_provider(provider)
    deadline = chain.pending_timestamp + 600
    v, r, s = _permit(token, payer.private_key, payer.address, market.address, PAYMENT - 1, deadline, chain)
    args = _permit_args(provider, PAYMENT, PAYMENT, deadline, v, r, s)
    with ape.reverts():
        market.create_job_with_permit(*args, sender=payer)
    assert token.balanceOf(payer) == PAYMENT and market.job_count() == 0


def test_stake_required_for_default_rates_is_documented():
    """The default rates lock 2.7x the payment for a new provider and 10.1x for an established one."""
    d = MarketParams()
    assert required(10**18, 15 * 10**17, d.new_provider_audit_bps, d.detection_bps) == 2_703_703_703_703_703_704
    assert required(10**18, 15 * 10**17, d.base_audit_bps, d.detection_bps) == 10_111_111_111_111_111_112
    assert STAKE >= 10 * PAYMENT  # conftest's stake covers an established provider's job


def test_dispute__drawn_job__refused_so_a_provider_cannot_self_dispute(
    make_provider, make_job, market, beacon, token, jobs, chain, attacker, keeper, provider, user
):
    # The fuzz found it: a provider seeing its job drawn could dispute it from a second address
    # and collect the challenger's share of its own slash. Only the user may dispute now, and
    # not a drawn job either: a drawn job is audited anyway (no bond, no challenger).
    machine_id = make_provider(provider)
    job_id = run_to_submitted(market, jobs, make_job, machine_id, provider, user)
    decide_draw(chain, beacon, jobs, job_id)
    assert market.audit_drawn(job_id, jobs.t(job_id))
    before = token.balanceOf(user)
    with ape.reverts("job_market: job drawn for audit"):
        market.dispute(job_id, jobs.t(job_id), sender=user)
    for caller in (attacker, provider):
        with ape.reverts("job_market: caller is not the user"):
            market.dispute(job_id, jobs.t(job_id), sender=caller)
    assert market.job_status(job_id) == JobStatus.SUBMITTED and token.balanceOf(user) == before
    assert tuple(market.disputes(job_id))[:2] == (ZERO, 0)


def test_oracle_submit_verdicts__batch_then_the_rest_as_one_after_a_peer_was_first(
    tmp_path, deployment, make_provider, make_job, market, hub, beacon, jobs, chain, pool, keeper, provider, user
):
    """The oracle service's `_submit_verdicts` (offchain/oracle/verdicts.py): the cycle's
    verdicts go in one `submit_verdicts`; when another operator already posted one of them, the
    batch reverts, that one is recorded as posted by a peer, and the rest go again in one
    transaction (not one by one); a batch where every verdict is settled sends nothing more."""
    svc = oracle_service(tmp_path, deployment, chain, pool[0])
    machine_id = make_provider(provider)
    ids = [run_to_submitted(market, jobs, make_job, machine_id, provider, user) for _ in range(5)]
    for i in ids:
        decide_draw(chain, beacon, jobs, i)

    def item(i):
        report = {"job_id": i, "result_hash": jobs[i]["result_hash"], "valid": True, "evidence_hash": b"\x5e" * 32,
                  "nonce": hub.verdict_nonce(i)}  # fmt: skip
        typed = R.verdict_typed_data(hub.address, chain.chain_id, report)
        sigs = R.sort_signatures([(op.address, R.sign_report(op.private_key, typed)) for op in pool[:2]])
        return f"verdict:{i}", report, [(a, "0x" + bytes(s).hex()) for a, s in zip(sorted(
            (op.address for op in pool[:2]), key=lambda a: int(a, 16)), sigs, strict=True)], jobs[i]  # fmt: skip

    svc._submit_verdicts([item(i) for i in ids[:2]])
    assert [market.job_status(i) for i in ids[:2]] == [JobStatus.FINALIZED] * 2
    assert all(svc.store.submitted(f"verdict:{i}", 0) for i in ids[:2])
    batch = [item(i) for i in ids[2:]]
    r, s = verdict(hub, chain, pool, ids[3], jobs[ids[3]], True)
    hub.submit_verdict(r, jobs.t(ids[3]), s, sender=keeper)  # another operator was first
    height = chain.blocks.height
    svc._submit_verdicts(batch)
    assert [market.job_status(i) for i in ids] == [JobStatus.FINALIZED] * 5
    assert svc.store.submitted(f"verdict:{ids[3]}", 0) == "by-peer"
    tx2, tx4 = (svc.store.submitted(f"verdict:{i}", 0) for i in (ids[2], ids[4]))
    assert tx2 == tx4 and tx2.startswith("0x")  # one transaction for both
    assert chain.blocks.height == height + 1  # the reverted batch was never mined, the retry was
    # Every verdict of a batch settled meanwhile (e.g. a leader restarted on an old database):
    # one read finds it, no transaction is sent.
    for i in ids:
        svc.store.write("DELETE FROM submitted WHERE subject = ?", (f"verdict:{i}",))
    height = chain.blocks.height
    svc._submit_verdicts(batch)
    assert chain.blocks.height == height
    assert [svc.store.submitted(f"verdict:{i}", 0) for i in ids[2:]] == ["by-peer"] * 3


def test_oracle_cosigns_verdicts_from_its_index__nothing_before_it_caught_up(
    tmp_path, deployment, make_provider, make_job, market, hub, beacon, jobs, chain, pool, keeper, provider, user
):
    """A peer asked to co-sign a verdict (`handle_sign_verdict`) checks the job against its own
    index of JobMarket's events, with no chain read per request; before that index has followed
    the chain once since start-up it signs nothing (a database restored from an older copy
    still shows settled jobs in audit). Then: nonce 0 only, the job's current result, in audit
    (drawn by its own reading of the beacon); a settled job is refused."""
    svc = oracle_service(tmp_path, deployment, chain, pool[1])
    machine_id = make_provider(provider)
    ids = [run_to_submitted(market, jobs, make_job, machine_id, provider, user) for _ in range(2)]
    for i in ids:
        decide_draw(chain, beacon, jobs, i)

    def report(i, **kw):
        return {"job_id": i, "result_hash": "0x" + bytes(jobs[i]["result_hash"]).hex(), "valid": True,
                "evidence_hash": "0x" + "5e" * 32, "nonce": 0, **kw}  # fmt: skip

    code, body = svc.handle_sign_verdict(report(ids[0]))
    assert (code, body) == (409, {"refused": "catching up with the chain since start-up", "retry": True})
    svc.follow_chain()
    r, s = verdict(hub, chain, pool, ids[1], jobs[ids[1]], True)
    hub.submit_verdict(r, jobs.t(ids[1]), s, sender=keeper)  # the second job is settled
    svc.follow_chain()
    assert svc.handle_sign_verdict(report(ids[0], nonce=1)) == (
        409,
        {"refused": "nonce 1 is not 0 (a job has one verdict)"},
    )
    code, body = svc.handle_sign_verdict(report(ids[0], result_hash="0x" + "ab" * 32))
    assert (code, body) == (409, {"refused": "result hash is not the job's"})
    code, body = svc.handle_sign_verdict(report(ids[1]))
    assert code == 409 and body["refused"].startswith(f"job {ids[1]} is not in audit (status FINALIZED")
    # In audit by its own draw and valid so far: what is left is its own audit (queued now).
    code, body = svc.handle_sign_verdict(report(ids[0]))
    assert (code, body) == (409, {"refused": "my own audit of this job is still running", "retry": True})
