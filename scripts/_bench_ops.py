"""`make bench`'s measurements beyond the job lifecycle (scripts/bench.py): every other
state-changing operation once or a few times (stake, register, offers, unstake and withdraw,
disputes, verdicts incl. the slash, expiry, cancel, pause), the audit path with the oracle
quorum's beacon and verdicts, attestations of 2, 3 and 5 signers, the price feed and emissions.
Each records into the Driver's GasLog under its op name."""

from __future__ import annotations

from offchain.chain import reports as R
from offchain.chain.beacon import HashChain
from offchain.constants import ONE_TOKEN, JobStatus
from offchain.devnet import stake_operators
from offchain.params import MarketParams, OracleParams
from scripts._bench_lib import CPU, Driver

STAKE = 1_000 * ONE_TOKEN


def measure_other_ops(drv: Driver, deployer, prov, prov2, user, user2, keeper, machine, ops) -> None:
    """Each remaining operation once or a few times, each from a state where it succeeds."""
    m, r = drv.market, drv.registry

    # A second provider from scratch (its stake slot goes from zero to non-zero).
    machine2 = drv.make_provider(prov2, deployer, STAKE)
    drv.record("stake_topup", r.stake(10 * ONE_TOKEN, sender=prov2))
    drv.record("update_endpoint", r.update_endpoint(machine2, "https://moved.gpunet.example:8443", sender=prov2))
    drv.record("set_offer_change", r.set_offer(1, 2 * 10**15, sender=prov2))
    drv.record("set_offer_change", r.set_offer(1, 10**15, sender=prov2))

    def submitted(n: int, who=prov, mach=machine) -> int:
        job_id = drv.create(user, who, n, name=None)
        drv.accept(job_id, who, mach, name=None)
        drv.submit(job_id, who, name=None)
        return job_id

    # Open jobs (no target provider) taken by whoever accepts first.
    for n in range(2):
        job_id = drv.create(user2, None, 20_000 + n, name="create_job_open")
        drv.accept(job_id, prov, machine, name="accept_open")
        drv.submit(job_id, prov, name=None)
        drv.finalize(job_id, keeper, name=None)

    # Disputes and verdicts.
    for n in range(2):
        job_id = submitted(21_000 + n)
        drv.record("dispute", m.dispute(job_id, drv.t(job_id), sender=user))
        drv.record("post_verdict_valid", m.post_verdict(job_id, drv.t(job_id), True, sender=deployer))
        assert drv.status(job_id) == JobStatus.FINALIZED
    for n in range(2):
        # Invalid result: user refunded, collateral slashed to user, challenger and burn.
        job_id = submitted(22_000 + n, prov2, machine2)
        drv.record(None, m.dispute(job_id, drv.t(job_id), sender=user))
        drv.record("post_verdict_invalid_slash", m.post_verdict(job_id, drv.t(job_id), False, sender=deployer))
        assert drv.status(job_id) == JobStatus.FAILED
    job_id = submitted(23_000)
    drv.record(None, m.dispute(job_id, drv.t(job_id), sender=user))
    d = m.disputes(job_id)
    drv.warp_to(d.audit_deadline + 1)
    drv.record("finalize_audit_timeout", m.finalize(job_id, drv.t(job_id), sender=keeper))
    assert drv.status(job_id) == JobStatus.FINALIZED

    # Cancel and expiry.
    for n in range(2):
        job_id = drv.create(user, prov, 24_000 + n, name=None)
        drv.record("cancel", m.cancel(job_id, drv.t(job_id), sender=user))
        assert drv.status(job_id) == JobStatus.CANCELLED
    for n in range(2):
        job_id = drv.create(user, prov, 25_000 + n, name=None, accept_window=60)
        drv.warp_to(drv.jobs[job_id]["accept_by"] + 1)
        drv.record("expire_open", m.expire(job_id, drv.t(job_id), sender=keeper))
        assert drv.status(job_id) == JobStatus.CANCELLED
    for n in range(2):
        job_id = drv.create(user, prov, 26_000 + n, name=None)
        drv.accept(job_id, prov, machine, name=None)
        drv.warp_to(drv.jobs[job_id]["complete_by"] + 1)
        drv.record("expire_running_slash", m.expire(job_id, drv.t(job_id), sender=keeper))
        assert drv.status(job_id) == JobStatus.EXPIRED

    # Leaving: unstake (first request, then a second that adds to it), withdraw, exit.
    drv.record("request_unstake", r.request_unstake(10 * ONE_TOKEN, sender=prov))
    drv.record("request_unstake_again", r.request_unstake(10 * ONE_TOKEN, sender=prov))
    drv.warp_to(drv.now() + int(r.unbonding_period()) + 1)
    drv.record("withdraw", r.withdraw(sender=prov))
    drv.record("exit_machine", r.exit_machine(machine2, sender=prov2))

    # Guardian.
    drv.record("pause_market", m.pause(sender=deployer))
    drv.record("unpause_market", m.unpause(sender=deployer))

    measure_audit_ops(drv, deployer, prov, user, keeper, machine, ops)


def setup_operators(drv: Driver, deployer) -> list:
    """Three staked OracleHub operators (test accounts 6-8, sorted by address), threshold 2."""
    from ape import accounts

    hub = drv.d.hub
    ops = sorted(accounts.test_accounts[6:9], key=lambda a: int(a.address, 16))
    stake_operators(drv.d.token, hub, deployer, ops, OracleParams().min_operator_stake)
    for op in ops:
        hub.add_operator(op, sender=deployer)
    hub.set_threshold(2, sender=deployer)
    # The same three are AuditBeacon members, each with its hash chain committed (the audit draw).
    beacon = drv.d.beacon
    for op in ops:
        beacon.add_member(op, sender=deployer)
        drv.chains[op.address] = HashChain.derive(bytes.fromhex(op.private_key.removeprefix("0x")), b"bench", 64)
        drv.record(None, beacon.commit(drv.chains[op.address].commitment, sender=op))
    return ops


def reveal_round(drv: Driver, ops, round_: int, first_name: str | None, name: str | None) -> None:
    """Every member reveals its next chain value for `round_` (the first reveal of a round writes
    its counters: recorded as `first_name`)."""
    beacon = drv.d.beacon
    drv.warp_to(round_ * int(beacon.ROUND_SECONDS()))
    for i, op in enumerate(ops):
        value = drv.chains[op.address].next_after(bytes(beacon.members(op.address).tip))
        if value is None:  # the commitment still pending: reveal its first value
            value = drv.chains[op.address].values[1]
        drv.record(first_name if i == 0 else name, beacon.reveal(round_, value, sender=op))


def post_round(drv: Driver, ops, keeper, name: str | None, price: int = 125_000_000) -> None:
    """One PriceFeed round ($1.25 by default) signed by two operators, recorded as `name`; first
    waits out the feed's `min_round_interval` since its last round."""
    from ape import chain

    from offchain.chain.price import post_price

    feed = drv.d.price_feed
    if feed.latest_round():
        due = int(feed.latestRoundData()[3]) + int(feed.min_round_interval())
        if drv.now() < due:
            drv.warp_to(due)
    drv.record(name, post_price(drv.d.price_feed, chain.chain_id, ops[:2], price, drv.now(), keeper))


def measure_audit_ops(drv: Driver, deployer, prov, user, keeper, machine, ops) -> None:
    """Sampled audits (a drawn job needs no opening transaction): the quorum's verdict through
    OracleHub (2 of 3 operators)."""
    from ape import chain

    m, hub = drv.market, drv.d.hub
    post_round(drv, ops, keeper, None)  # fresh again after the unbonding period's time jump
    m.set_params(MarketParams(base_audit_bps=10_000, new_provider_audit_bps=10_000).as_tuple(), sender=deployer)

    def verdict(job_id: int, valid: bool):
        report = {
            "job_id": job_id,
            "result_hash": drv.jobs[job_id]["result_hash"],
            "valid": valid,
            "evidence_hash": b"\x5e" * 32,
            "nonce": hub.verdict_nonce(job_id),
        }
        typed = R.verdict_typed_data(hub.address, chain.chain_id, report)
        sigs = R.sort_signatures([(op.address, R.sign_report(op.private_key, typed)) for op in ops[:2]])
        return R.report_tuple(R.VERDICT_FIELDS, report), sigs

    for n, valid in enumerate((True, True, False, False)):
        job_id = drv.create(user, prov, 27_000 + n, name=None)
        drv.accept(job_id, prov, machine, name="accept_audited")
        drv.submit(job_id, prov, name=None)
        # The job's beacon round: every member reveals (audit rate 100%: the job is drawn).
        reveal_round(drv, ops, int(drv.jobs[job_id]["draw_round"]), "beacon_reveal_first", "beacon_reveal")
        report, sigs = verdict(job_id, valid)
        name = "submit_verdict_valid_m2" if valid else "submit_verdict_invalid_slash_m2"
        drv.record(name, hub.submit_verdict(report, drv.t(job_id), sigs, sender=keeper))
        assert drv.status(job_id) == (JobStatus.FINALIZED if valid else JobStatus.FAILED)

    # The oracle posts a cycle's verdicts in one `submit_verdicts` (OracleHub.MAX_VERDICT_BATCH).
    batch = []
    for n in range(10):
        job_id = drv.create(user, prov, 27_100 + n, name=None)
        drv.accept(job_id, prov, machine, name=None)
        drv.submit(job_id, prov, name=None)
        batch.append(job_id)
    for r in sorted({int(drv.jobs[j]["draw_round"]) for j in batch}):
        reveal_round(drv, ops, r, None, None)
    assert all(m.audit_drawn(j, drv.t(j)) for j in batch)
    pairs = [verdict(j, True) for j in batch]
    tx = drv.record("submit_verdicts_batch_10_m2", hub.submit_verdicts(
        [p[0] for p in pairs], [drv.t(j) for j in batch], [p[1] for p in pairs], sender=keeper))  # fmt: skip
    drv.gas.ops["submit_verdicts_batch_10_m2_per_verdict"].append(int(tx.gas_used) // len(batch))
    assert all(drv.status(j) == JobStatus.FINALIZED for j in batch)

    measure_economy_ops(drv, ops, prov, keeper)
    measure_report_ops(drv, deployer, prov, keeper, ops)


def measure_report_ops(drv: Driver, deployer, prov, keeper, ops) -> None:
    """OracleHub reports with M = 2, 3 and 5 signatures (threshold M of 2M - 1 operators): a
    BenchmarkAttestation's first submission for a machine and its renewal, and an UptimeReport."""
    from ape import accounts, chain

    hub, registry = drv.d.hub, drv.registry
    extra = [accounts.test_accounts.generate_test_account() for _ in range(6)]
    for a in extra:
        deployer.transfer(a, 10**18)
    stake_operators(drv.d.token, hub, deployer, extra, OracleParams().min_operator_stake)
    pool = list(ops) + extra  # ops are operators already
    registry.stake(100 * ONE_TOKEN, sender=prov)
    for m in (2, 3, 5):
        for a in pool[: 2 * m - 1]:
            if not hub.is_operator(a):
                hub.add_operator(a, sender=deployer)
        hub.set_threshold(m, sender=deployer)
        signers = sorted(pool[: 2 * m - 1], key=lambda a: int(a.address, 16))[:m]
        tx = registry.register(CPU, 1, 16_384, f"https://m{m}.gpunet.example", sender=prov)
        machine_id = tx.decode_logs(registry.MachineRegistered)[0].machine_id
        for name in (f"submit_attestation_m{m}_first", f"submit_attestation_m{m}_renewal"):
            now = drv.now()
            report = {
                "machine_id": machine_id, "provider": prov.address, "class_id": CPU, "outcome": int(R.Outcome.PASS),
                "fp32_gflops": 1_200, "bf16_gflops": 0, "bandwidth_gbs": 45, "transcript_hash": b"\x7e" * 32,
                "measured_at": now, "valid_until": now + 86_400, "nonce": hub.attestation_nonce(machine_id),
            }  # fmt: skip
            typed = R.attestation_typed_data(hub.address, chain.chain_id, report)
            sigs = R.sort_signatures([(a.address, R.sign_report(a.private_key, typed)) for a in signers])
            drv.record(name, hub.submit_attestation(R.report_tuple(R.ATTESTATION_FIELDS, report), sigs, sender=keeper))


def measure_economy_ops(drv: Driver, ops, prov, keeper) -> None:
    """PriceFeed rounds (2 observations) and an Emissions epoch: finalize, post the root, claim."""
    from ape import chain

    from offchain.economics.rewards import build_rewards, report_tuple, rewards_typed_data

    em = drv.d.emissions
    for _ in range(2):
        post_round(drv, ops, keeper, "price_submit_round_m2")

    drv.warp_to(int(em.GENESIS()) + int(em.EPOCH_SECONDS()) + 1)
    drv.record("emissions_finalize_epoch_first", em.finalize_epoch(0, sender=keeper))
    rewards = build_rewards(0, {prov.address: 10**18}, {prov.address: 300, keeper.address: 100})
    report = rewards.report(nonce=int(em.rewards_nonce(0)))
    typed = rewards_typed_data(em.address, chain.chain_id, report)
    sigs = R.sort_signatures([(op.address, R.sign_report(op.private_key, typed)) for op in ops[:2]])
    drv.record("emissions_submit_rewards_m2", em.submit_rewards(report_tuple(report), sigs, sender=keeper))
    drv.record("emissions_claim_first", em.claim(*rewards.claim_args(prov.address), sender=keeper))
    drv.record("emissions_claim", em.claim(*rewards.claim_args(keeper.address), sender=keeper))
