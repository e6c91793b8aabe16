"""Regression tests for the adversarial findings that contracts v2 closes (docs/SECURITY.md,
"Findings and fixes"). Each test is named for the attack and performs it; each failed on the
contracts before the fix (the attack succeeded) and must pass now (the attack is refused or
no longer pays). The oracle findings (price walk, self-reported equivocation) are in
tests/test_price_feed.py and tests/test_oracle_hub.py.

The last section attacks the settlement accruals: a finalized job only credits its provider,
and `market.claim(provider)` later burns the credited escrow and mints the pay (the claim's
own paths are in tests/test_market_claim.py). What a provider can claim must be the pay of
its finalized jobs and nothing else, whatever else happens to its jobs and stake.
"""

from dataclasses import replace

import ape
import pytest
from market_helpers import ZERO_ADDRESS, assert_books, credit, ev

from offchain.chain import reports as R
from offchain.chain.deploy import MARKET_DUST, role
from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus, MachineStatus
from offchain.params import MarketParams, OracleParams

CPU = 1
PRICE = 10**15  # USD per unit: 1,000 units = $1, the reputation threshold
DAY = 86400
MISREPORT = int(R.Outcome.FAIL_MISREPORT)
N_POOL = 3


@pytest.fixture(scope="module", autouse=True)
def _wider_fixtures_first(hub, chain, registry, token, market, keeper, provider, user, user2, attacker, roles):
    """Module fixtures first (ape's snapshot isolation)."""


def _finalize_after_window(chain, market, jobs, ids, keeper):
    chain.pending_timestamp += MarketParams().challenge_window + 1
    return jobs.track(market.finalize_many(ids, [jobs.t(i) for i in ids], sender=keeper))


def _run_jobs(chain, market, jobs, provider, user, keeper, machine_id, units, n):
    """`n` self-dealt jobs of `units` compute units each, from creation to settlement (one batch)."""
    tx = jobs.track(
        market.create_jobs(
            provider,
            CPU,
            [bytes([i + 1]) * 32 for i in range(n)],
            [units] * n,
            PRICE,
            3600,
            3600,
            2**256 - 1,
            sender=user,
        )  # fmt: skip
    )
    ids = [lg.job_id for lg in tx.decode_logs(market.JobCreated)]
    jobs.track(market.accept_jobs(ids, [jobs.t(i) for i in ids], machine_id, sender=provider))
    jobs.track(
        market.submit_results(ids, [jobs.t(i) for i in ids], [b"\x22" * 32] * n, ["http://p/r"] * n, sender=provider)
    )
    _finalize_after_window(chain, market, jobs, ids, keeper)
    market.claim(provider, sender=keeper)  # the completed count goes on record with the claim
    return ids


################################################################
#  Finding 2: exit_machine before the FAIL attestation lands   #
################################################################


def test_attack_exit_machine_dodges_hardware_slash(hub, pool, chain, registry, token, make_provider, provider, keeper):
    """The provider sees its machine fail the challenge and exits it before the quorum's FAIL
    attestation lands. The attestation (and its hardware slash) must still apply."""
    machine = make_provider(provider, activate=False, price=0)
    staked = registry.slashable(provider)
    registry.exit_machine(machine, sender=provider)
    now = chain.blocks.head.timestamp
    report = {
        "machine_id": machine, "provider": provider.address, "class_id": CPU, "outcome": MISREPORT,
        "fp32_gflops": 1, "bf16_gflops": 0, "bandwidth_gbs": 1, "transcript_hash": b"\x7e" * 32,
        "measured_at": now, "valid_until": 0, "nonce": hub.attestation_nonce(machine),
    }  # fmt: skip
    td = R.attestation_typed_data(hub.address, chain.chain_id, report)
    sigs = R.sort_signatures([(a.address, R.sign_report(a.private_key, td)) for a in pool[:2]])
    tx = hub.submit_attestation(tuple(report.values()), sigs, sender=keeper)
    expected = staked * OracleParams().hardware_slash_bps // MAX_BPS
    assert expected > 0
    assert registry.slashable(provider) == staked - expected
    assert registry.machine_status(machine) == int(MachineStatus.EXITED)
    logs = tx.decode_logs(registry.AttestationRecorded)
    assert [(lg.machine_id, lg.status) for lg in logs] == [(machine, int(MachineStatus.EXITED))]
    # A PASS for an exited machine is still refused: exiting is final.
    report = dict(report, outcome=0, valid_until=now + DAY, nonce=hub.attestation_nonce(machine))
    td = R.attestation_typed_data(hub.address, chain.chain_id, report)
    sigs = R.sort_signatures([(a.address, R.sign_report(a.private_key, td)) for a in pool[:2]])
    with ape.reverts("registry: machine exited"):
        hub.submit_attestation(tuple(report.values()), sigs, sender=keeper)


################################################################
#  Finding 4: the provider front-runs the user's dispute       #
################################################################


def test_attack_provider_front_runs_users_dispute(submitted_job, market, jobs, registry, token, attacker, user,
                                                   deployer, provider):  # fmt: skip
    """The provider sees the user's dispute in the mempool and disputes first from a second
    address (`attacker`), to collect the challenger's share of its own slash."""
    job_id, _ = submitted_job
    token.approve(market, 2**256 - 1, sender=attacker)
    with ape.reverts("job_market: caller is not the user"):
        market.dispute(job_id, jobs.t(job_id), sender=attacker)
    with ape.reverts("job_market: caller is not the user"):
        market.dispute(job_id, jobs.t(job_id), sender=provider)
    jobs.track(market.dispute(job_id, jobs.t(job_id), sender=user))
    assert market.disputes(job_id).challenger == user.address
    # The invalid verdict pays the challenger's share to the user, none to the provider's side.
    before = token.balanceOf(attacker)
    user_before = token.balanceOf(user)
    tx = jobs.track(market.post_verdict(job_id, jobs.t(job_id), False, sender=deployer))
    failed = tx.decode_logs(market.JobFailed)[0]
    job = jobs[job_id]
    p = market.params()
    assert failed.challenger_reward == job["collateral"] * p.challenger_reward_bps // MAX_BPS > 0
    assert token.balanceOf(attacker) == before
    bond = market.dispute_bond(job["payment"])
    assert (
        token.balanceOf(user)
        == user_before + job["payment"] + failed.user_compensation + failed.challenger_reward + bond
    )


################################################################
#  Finding 5: dust jobs end probation                          #
################################################################


@pytest.mark.parametrize(("units", "counted"), [(1, False), (1_000, True)])
def test_attack_dust_jobs_end_probation(chain, market, registry, jobs, make_provider, provider, user, keeper,
                                        deployer, units, counted):  # fmt: skip
    """Twenty self-paid one-unit jobs ($0.001 each, fee ~0) used to take a new provider out of
    probation (30% audits -> 10%). Jobs below `min_reputation_usd` ($1) no longer count; $1 jobs
    (the control) still do."""
    p = MarketParams()
    # Jobs run with audits off so none is drawn; then the real audit rates apply.
    market.set_params(replace(p, base_audit_bps=0, new_provider_audit_bps=0, bad_record_audit_bps=0).as_tuple(),
                      sender=deployer)  # fmt: skip
    machine = make_provider(provider)
    _run_jobs(chain, market, jobs, provider, provider, keeper, machine, units, p.trusted_after_jobs)
    market.set_params(p.as_tuple(), sender=deployer)
    rep = registry.reputation(provider)
    if counted:
        assert rep.completed == p.trusted_after_jobs
        assert market.audit_rate(provider) == p.base_audit_bps
    else:
        assert rep.completed == 0
        assert market.audit_rate(provider) == p.new_provider_audit_bps


################################################################
#  Finding 6: governance strands escrow / becomes a minter      #
################################################################


def test_attack_governance_revokes_market_rights_strands_escrow(submitted_job, chain, market, jobs, registry, token,
                                                                 deployer, keeper, roles):  # fmt: skip
    """Revoking the market's collateral or slasher role (or Settlement's minter flag) used to make
    finalize revert, stranding escrow and collateral. The market's rights in the registry are a
    set-once address now (no role to revoke), and the sealed token's minters cannot change."""
    job_id, _ = submitted_job
    token.seal_minters(sender=deployer)
    # The old levers: revoking is either impossible or does not touch the market.
    registry.revokeRole(role("SLASHER_ROLE"), market.address, sender=deployer)
    registry.revokeRole(role("COLLATERAL_ROLE"), market.address, sender=deployer)
    with ape.reverts("compute_token: minters sealed"):
        token.set_minter(market.SETTLEMENT(), False, sender=deployer)
    with ape.reverts("registry: job market already set"):
        registry.set_job_market(keeper, sender=deployer)
    chain.pending_timestamp += MarketParams().challenge_window + 1
    jobs.track(market.finalize(job_id, jobs.t(job_id), sender=keeper))
    assert market.job_status(job_id) == int(JobStatus.FINALIZED)
    market.claim(jobs[job_id]["provider"], sender=keeper)  # releases the collateral
    assert registry.locked(jobs[job_id]["provider"]) == 0


def test_attack_timelock_owner_becomes_minter(token, deployer, keeper, user):
    """Handing the token's ownership to the Timelock used to make it a minter (snekmate's
    `transfer_ownership`). Now ownership carries no minting right, and after sealing no owner
    can grant one."""
    token.seal_minters(sender=deployer)
    token.transfer_ownership(keeper, sender=deployer)  # keeper stands in for the Timelock
    assert token.owner() == keeper.address
    assert not token.is_minter(keeper)
    assert not token.is_minter(deployer)
    with ape.reverts("erc20: access is denied"):
        token.mint(keeper, ONE_TOKEN, sender=keeper)
    with ape.reverts("compute_token: minters sealed"):
        token.set_minter(user, True, sender=keeper)


################################################################
#  Settlement accruals: only finalized jobs' pay is claimable  #
################################################################


def _job(market, jobs, make_job, machine, provider, payer, submit=True):
    """A job of `provider` paid by `payer`, accepted on `machine` and (with `submit`) submitted."""
    job_id, _ = make_job(payer, target=provider)
    jobs.track(market.accept(job_id, jobs.t(job_id), machine, sender=provider))
    if submit:
        jobs.track(market.submit_result(job_id, jobs.t(job_id), b"\x22" * 32, "http://p/r", sender=provider))
    return job_id


def _done_bad_gone(make_provider, make_job, chain, market, jobs, keeper, provider, user):
    """Three jobs of `provider`: `done` finalized (credited), `bad` disputed by its user, `gone`
    accepted but never submitted. Returns (done, bad, gone)."""
    machine = make_provider(provider)
    done = _job(market, jobs, make_job, machine, provider, user)
    bad = _job(market, jobs, make_job, machine, provider, user)
    gone = _job(market, jobs, make_job, machine, provider, user, submit=False)
    jobs.track(market.dispute(bad, jobs.t(bad), sender=user))
    chain.pending_timestamp = jobs[done]["challenge_end"] + 1
    jobs.track(market.finalize(done, jobs.t(done), sender=keeper))
    return done, bad, gone


def test_attack_claim_while_a_job_is_in_audit__pays_only_the_finalized_job__failed_escrow_still_refunded(
    make_provider, make_job, chain, market, jobs, token, deployment, deployer, keeper, provider, user, attacker
):
    """The provider claims while one of its jobs is disputed and another is overdue, hoping the
    claim sweeps their escrow too (or leaves the market short of the refunds). It is paid for
    the finalized job only; the disputed job fails and the overdue one expires afterwards, both
    refunded in full from escrow the claim did not touch; then there is nothing left to claim."""
    done, bad, gone = _done_bad_gone(make_provider, make_job, chain, market, jobs, keeper, provider, user)
    with ape.reverts("job_market: audit in progress"):
        market.finalize(bad, jobs.t(bad), sender=keeper)
    burned, usd_net, cap = credit(jobs, [done])
    assert tuple(market.accrued(provider)) == (burned, usd_net, cap)

    tx = market.claim(provider, sender=provider)
    e = ev(tx, deployment.settlement.Settled)
    assert (e["provider"], e["burned"], e["minted"]) == (provider.address, burned, cap)  # $1 a token
    assert tuple(market.accrued(provider)) == (0, 0, 0)
    assert_books(market, token, jobs)

    before = token.balanceOf(user)
    bond = market.disputes(bad).bond
    failed = ev(jobs.track(market.post_verdict(bad, jobs.t(bad), False, sender=deployer)), market.JobFailed)
    assert token.balanceOf(user) - before == (
        jobs[bad]["payment"] + failed["user_compensation"] + failed["challenger_reward"] + bond
    )
    chain.pending_timestamp = jobs[gone]["complete_by"] + 1
    before = token.balanceOf(user)
    expired = ev(jobs.track(market.expire(gone, jobs.t(gone), sender=keeper)), market.JobExpired)
    assert expired["penalty"] > 0
    assert token.balanceOf(user) - before == jobs[gone]["payment"] + expired["penalty"]
    # Neither the failed nor the expired job credited anything.
    assert tuple(market.accrued(provider)) == (0, 0, 0)
    for who in (provider, attacker):
        with ape.reverts("job_market: nothing to claim"):
            market.claim(provider, sender=who)
    assert_books(market, token, jobs)
    assert token.balanceOf(market) == MARKET_DUST


def test_attack_slashed_provider__keeps_only_the_pay_of_its_finalized_jobs(
    make_provider, make_job, chain, market, jobs, registry, token, deployer, keeper, provider, user, roles
):
    """Slashes (an invalid result, a no-show, then the rest of the stake) take the stake, not
    the pay already credited for finalized work; and a slashed or exited provider gains no
    credit from its failed and expired jobs. The claim after all that pays exactly the
    finalized job."""
    done, bad, gone = _done_bad_gone(make_provider, make_job, chain, market, jobs, keeper, provider, user)
    credited = credit(jobs, [done])
    assert tuple(market.accrued(provider)) == credited

    jobs.track(market.post_verdict(bad, jobs.t(bad), False, sender=deployer))
    chain.pending_timestamp = jobs[gone]["complete_by"] + 1
    jobs.track(market.expire(gone, jobs.t(gone), sender=keeper))
    registry.grantRole(roles["SLASHER_ROLE"], deployer, sender=deployer)
    registry.slash(provider, registry.slashable(provider), b"\x01" * 32, ZERO_ADDRESS, sender=deployer)
    registry.exit_machine(jobs[done]["machine_id"], sender=provider)
    assert registry.slashable(provider) == 0
    assert tuple(market.accrued(provider)) == credited

    before = token.balanceOf(provider)
    market.claim(provider, sender=keeper)
    assert token.balanceOf(provider) - before == credited[2]  # minted at $1 a token: the cap
    assert_books(market, token, jobs)
    assert token.balanceOf(market) == MARKET_DUST


@pytest.mark.parametrize("valid", [False, True])
def test_attack_provider_self_disputes_from_a_second_address__loses_the_burn_share_or_the_fee(
    make_provider, make_job, market, jobs, registry, token, deployer, provider, attacker, valid
):
    """The provider pays for a job on its own machine from a second address (`attacker`, the
    job's user, so allowed to dispute) and disputes it, hoping to collect the user compensation
    and the challenger reward of its own slash, or the bond, or pay credited twice. Counting both
    addresses' tokens, the stake and the credited pay: an invalid verdict costs the burned share
    of the collateral (25%), a valid one the fee (after the claim), and no verdict credits more
    than the job's own pay."""

    def wealth():
        return (token.balanceOf(provider) + token.balanceOf(attacker) + registry.slashable(provider)
                + market.accrued(provider)[2])  # fmt: skip

    machine = make_provider(provider)
    w0 = wealth()
    job_id = _job(market, jobs, make_job, machine, provider, attacker)
    jobs.track(market.dispute(job_id, jobs.t(job_id), sender=attacker))
    tx = jobs.track(market.post_verdict(job_id, jobs.t(job_id), valid, sender=deployer))
    job, p = jobs[job_id], market.params()
    if valid:
        assert tuple(market.accrued(provider)) == credit(jobs, [job_id])
        market.claim(provider, sender=attacker)
        assert w0 - wealth() == job["payment"] * p.fee_bps // MAX_BPS > 0
    else:
        assert tuple(market.accrued(provider)) == (0, 0, 0)
        with ape.reverts("job_market: nothing to claim"):
            market.claim(provider, sender=attacker)
        burned = ev(tx, market.JobFailed)["burned"]
        assert w0 - wealth() == burned >= job["collateral"] * 2_500 // MAX_BPS > 0
    assert_books(market, token, jobs)
