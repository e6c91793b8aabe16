"""Epoch rewards records from the chain (offchain/oracle/epoch_rewards.py), on the in-process chain.

A small epoch 0 with real contracts: two providers with Active machines (a CPU one and a
2-GPU H100 one), a third provider's machine still Pending, an operator's uptime reports, jobs
finalized in epoch 0, one cancelled and one finalized after the epoch ended. The records read
at a snapshot block after the end must count exactly the epoch-0 finalized jobs' fees and the
eligible machines; state changes after the snapshot change nothing; the root they give is
accepted by Emissions and a claim mints what the Python mirror says.
"""

from types import SimpleNamespace

import pytest

from offchain.chain import reports as R
from offchain.constants import MAX_BPS, ONE_TOKEN, MachineStatus
from offchain.economics import rewards as E
from offchain.oracle import epoch_rewards as ER
from offchain.params import EmissionsParams, OracleParams

CPU, H100 = 1, 10
PRICE = 10**15  # USD per compute unit; conftest prices the token at $1.00, so tokens == USD
UNITS = 1_000
WINDOW = 3600


@pytest.fixture
def operator(accounts, deployment, deployer):
    """One OracleHub operator (threshold stays 1) with the minimum stake."""
    hub, token = deployment.hub, deployment.token
    op = accounts.generate_test_account()
    deployer.transfer(op, 10 * 10**18)
    stake = OracleParams().min_operator_stake
    token.mint(op, stake, sender=deployer)
    token.approve(hub, 2**256 - 1, sender=op)
    hub.stake(stake, sender=op)
    hub.add_operator(op, sender=deployer)
    return op


def _finalized_job(market, jobs, user, provider, machine_id, chain, units=UNITS, class_id=CPU):
    """create -> accept -> submit -> (challenge window) -> finalize; returns the JobFinalized fee
    (tokens: the fee's share of the escrow, burned with it at the provider's claim)."""
    payment = units * PRICE  # at $1.00 a token: escrow at most the USD value
    tx = jobs.track(
        market.create_job(provider.address, class_id, b"\x11" * 32, units, PRICE, WINDOW, WINDOW, payment, sender=user)
    )
    job_id = tx.decode_logs(market.JobCreated)[0].job_id
    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    jobs.track(market.submit_result(job_id, jobs.t(job_id), b"\x22" * 32, "http://p/r", sender=provider))
    chain.mine(timestamp=chain.blocks.head.timestamp + market.params().challenge_window + 1)
    tx = jobs.track(market.finalize(job_id, jobs.t(job_id), sender=user))
    (fin,) = tx.decode_logs(market.JobFinalized)
    assert fin.burned == payment and fin.usd_value == payment
    return int(fin.fee)


def _post_uptime(hub, chain, op, epoch, machine_id, probes, successes):
    report = {"epoch": epoch, "machine_id": machine_id, "probes": probes, "successes": successes, "nonce": 0}
    sig = R.sign_report(op.private_key, R.uptime_typed_data(hub.address, chain.chain_id, report))
    hub.submit_uptime(R.report_tuple(R.UPTIME_FIELDS, report), [sig], sender=op)


def test_records__epoch_zero_from_chain(
    deployment, make_provider, jobs, chain, operator, provider, provider2, user, user2, keeper, deployer
):
    d = deployment
    market, registry, hub, em, token = d.market, d.registry, d.hub, d.emissions, d.token
    h = SimpleNamespace(market=market, registry=registry, hub=hub, emissions=em, chain=chain)
    genesis, seconds = int(em.GENESIS()), int(em.EPOCH_SECONDS())
    end0 = genesis + seconds

    m_cpu = make_provider(provider, class_id=CPU)
    m_h100 = make_provider(provider2, class_id=H100, gpus=2)
    m_pending = make_provider(user2, activate=False)  # never attested: no availability
    token.approve(market, 2**256 - 1, sender=user)

    fees = {provider.address: 0, provider2.address: 0}
    fees[provider.address] += _finalized_job(market, jobs, user, provider, m_cpu, chain)
    fees[provider.address] += _finalized_job(market, jobs, user, provider, m_cpu, chain, units=3 * UNITS)
    fees[provider2.address] += _finalized_job(market, jobs, user, provider2, m_h100, chain, 2 * UNITS, H100)
    # A cancelled job pays no fee and counts nothing.
    tx = jobs.track(
        market.create_job(provider.address, CPU, b"\x33" * 32, UNITS, PRICE, WINDOW, WINDOW, UNITS * PRICE, sender=user)
    )
    cancelled = tx.decode_logs(market.JobCreated)[0].job_id
    jobs.track(market.cancel(cancelled, jobs.t(cancelled), sender=user))

    # Uptime for epoch 0: the CPU machine 95%, the H100 one 100%, the pending one too (ignored).
    _post_uptime(hub, chain, operator, 0, m_cpu, 20, 19)
    _post_uptime(hub, chain, operator, 0, m_h100, 20, 20)
    _post_uptime(hub, chain, operator, 0, m_pending, 20, 20)

    # Epoch 0 ends; a job finalized in epoch 1 does not count for epoch 0.
    assert chain.blocks.head.timestamp < end0
    chain.mine(timestamp=end0 + 10)
    late_fee = _finalized_job(market, jobs, user, provider, m_cpu, chain)
    assert late_fee > 0
    em.finalize_epoch(0, sender=keeper)
    snapshot = chain.blocks.height

    window = ER.epoch_window(em, 0)
    assert (window.start, window.end) == (genesis, end0)
    job_recs = ER.job_records(market, chain, window, snapshot)
    fee_bps = market.params().fee_bps
    expected = [(provider.address, u * PRICE * fee_bps // MAX_BPS) for u in (UNITS, 3 * UNITS)]
    expected.append((provider2.address, 2 * UNITS * PRICE * fee_bps // MAX_BPS))
    assert sorted((j.provider, j.fee) for j in job_recs) == sorted(expected)
    assert E.work_units(job_recs, 0) == fees

    machines, stakes = ER.machine_records(registry, hub, window, snapshot)
    by_id = {m.machine_id: m for m in machines}
    assert by_id[m_cpu] == E.MachineRecord(provider.address, m_cpu, True, 9_500, 10, 10 * ONE_TOKEN)
    assert by_id[m_h100] == E.MachineRecord(provider2.address, m_h100, True, 10_000, 600, 600 * ONE_TOKEN)
    assert by_id[m_pending].attested is False and by_id[m_pending].uptime_bps == 0
    assert stakes[provider.address] == registry.staked(provider) and stakes[provider2.address] > 0

    r = ER.build_epoch_rewards(h, 0, snapshot)
    assert r.leaves == {provider.address: (fees[provider.address], 10 * 9_500),
                        provider2.address: (fees[provider2.address], 600 * 10_000)}  # fmt: skip

    # State changes after the snapshot (an exit, a status change, more uptime epochs) change nothing.
    registry.exit_machine(m_cpu, sender=provider)
    registry.set_machine_status(m_h100, int(MachineStatus.JAILED), sender=deployer)
    assert ER.build_epoch_rewards(h, 0, snapshot).root == r.root
    assert ER.build_epoch_rewards(h, 0, chain.blocks.height).root != r.root

    # The stored form rebuilds the same tree (what the service serves proofs from).
    again = ER.rewards_from_json(ER.rewards_to_json(r, snapshot))
    assert again.root == r.root and again.proofs == r.proofs

    # The root is accepted and the claims mint what the mirror says.
    typed = E.rewards_typed_data(em.address, chain.chain_id, r.report())
    em.submit_rewards(E.report_tuple(r.report()), [R.sign_report(operator.private_key, typed)], sender=keeper)
    ep = em.epochs(0)
    work_pool, avail_pool = E.split(int(ep.budget), r.total_work, r.total_availability, EmissionsParams())
    assert (ep.work_pool, ep.availability_pool) == (work_pool, avail_pool)
    for p in (provider, provider2):
        w, a = r.leaves[p.address]
        before = token.balanceOf(p)
        em.claim(*r.claim_args(p.address), sender=keeper)
        minted = token.balanceOf(p) - before
        assert minted == E.claim_amount(work_pool, avail_pool, r.total_work, r.total_availability, w, a) > 0


def test_records__before_epoch_end_refused_by_window(deployment, chain):
    """A snapshot before the epoch's first block finds no jobs (and `first_block_at` bounds)."""
    em = deployment.emissions
    window = ER.epoch_window(em, 5)
    head = chain.blocks.height
    assert ER.first_block_at(chain, window.start, 0, head) == head + 1
    assert ER.job_records(deployment.market, chain, window, head) == []
    assert ER.first_block_at(chain, 0, 0, head) == 0


def test_service__finalizes_cosigns_once_posts_root_and_serves_proofs(
    tmp_path, deployment, make_provider, jobs, chain, operator, provider, user, keeper
):
    """The service's rewards round in-process (one operator, threshold 1, no HTTP): it finalizes
    the ended epoch, refuses a root that is not its own, signs one version, submits it, and
    serves a proof that claims what the mirror says."""
    from eth_account import Account

    from offchain.oracle.service import OracleConfig, OracleService

    d = deployment
    em, token = d.emissions, d.token
    end0 = int(em.GENESIS()) + int(em.EPOCH_SECONDS())
    m = make_provider(provider, class_id=CPU)
    token.approve(d.market, 2**256 - 1, sender=user)
    fee = _finalized_job(d.market, jobs, user, provider, m, chain)

    cfg = OracleConfig(network="ethereum:local:test", operator_key=operator.private_key,
                       db_path=str(tmp_path / "op.sqlite"), rewards_delay_s=5)  # fmt: skip
    svc = OracleService(cfg)
    svc.h = SimpleNamespace(market=d.market, registry=d.registry, hub=d.hub, emissions=em, chain=chain, record={})
    svc.chain_id, svc.sender, svc.threshold = chain.chain_id, keeper, 1

    report = {"epoch": 0, "root": "0x" + "11" * 32, "total_work": fee, "total_availability": 0, "nonce": 0,
              "block": chain.blocks.height}  # fmt: skip
    code, out = svc.handle_sign_rewards(report)
    assert code == 409 and out["refused"] == "epoch 0 is not finalized"
    assert svc.handle_sign_rewards({"epoch": 0})[0] == 400

    chain.mine(timestamp=end0 + 1)
    svc.rewards_round(end0 + 1)  # the only operator leads: finalizes; the delay has not passed
    assert em.next_epoch() == 1 and bytes(em.epochs(0).root) == b"\x00" * 32

    block = chain.blocks.height
    own = svc.own_rewards(0, block)
    assert own.leaves == {provider.address: (fee, 0)}  # no uptime reported: work only
    good = {**own.report(0), "root": "0x" + own.root.hex(), "block": block}
    code, out = svc.handle_sign_rewards({**good, "root": "0x" + "11" * 32})
    assert code == 409 and out["refused"].startswith("my root is 0x")
    code, out = svc.handle_sign_rewards({**good, "total_work": fee + 1})
    assert code == 409 and out["refused"] == "my totals differ"
    code, out = svc.handle_sign_rewards({**good, "block": 1})
    assert code == 409 and "before the end of epoch 0" in out["refused"]
    code, out = svc.handle_sign_rewards(good)
    assert code == 200
    digest = E.rewards_typed_data(em.address, chain.chain_id, good)
    assert Account._recover_hash(R.typed_data_digest(digest), signature=bytes.fromhex(out["signature"][2:])) == (
        operator.address
    )
    assert svc.store.signed_for("rewards:0", 0).report == good

    chain.mine(timestamp=end0 + 10)
    svc.rewards_round(end0 + 10)  # past the delay: submits the version it signed
    assert bytes(em.epochs(0).root) == own.root
    assert svc.handle_sign_rewards(good)[1]["refused"] == "epoch 0 already has its root"
    svc.rewards_round(end0 + 11)
    assert svc.store.get_meta("rewards_cursor") == "1"

    rec = svc.rewards_record(0)
    assert rec["posted"] is True and rec["root"] == "0x" + own.root.hex() and rec["block"] == block
    assert svc.rewards_proof(0, "0x" + "00" * 20) is None
    p = svc.rewards_proof(0, provider.address.lower())
    ep = em.epochs(0)
    want = E.claim_amount(int(ep.work_pool), int(ep.availability_pool), int(ep.total_work),
                          int(ep.total_availability), int(p["work_units"]), int(p["availability_weight"]))  # fmt: skip
    before = token.balanceOf(provider)
    em.claim(0, provider.address, int(p["work_units"]), int(p["availability_weight"]),
             [bytes.fromhex(x[2:]) for x in p["proof"]], sender=keeper)  # fmt: skip
    assert token.balanceOf(provider) - before == want > 0
