"""Regression tests for the adversarial findings that contracts v2 closes (docs/SECURITY.md,
"Findings and fixes"). Each test is named for the attack and performs it; each failed on the
contracts before the fix (the attack succeeded) and must pass now (the attack is refused or
no longer pays). The oracle findings (price walk, self-reported equivocation) are in
tests/test_price_feed.py and tests/test_oracle_hub.py.
"""

from dataclasses import replace

import ape
import pytest

from offchain.chain import reports as R
from offchain.chain.deploy import role
from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus, MachineStatus
from offchain.params import MarketParams, OracleParams

CPU = 1
PRICE = 10**15  # USD per unit: 1,000 units = $1, the reputation threshold
DAY = 86400
MISREPORT = int(R.Outcome.FAIL_MISREPORT)
N_POOL = 3


@pytest.fixture(scope="module", autouse=True)
def _wider_fixtures_first(hub, chain, registry, token, market, keeper, provider, user, user2, attacker):
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
