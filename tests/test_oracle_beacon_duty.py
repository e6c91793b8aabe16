"""The oracle operator's AuditBeacon duty (offchain/oracle/beacon_duty.py) and the service's draw
(offchain/oracle/verdicts.py `_check_draw`) on the in-process chain with the real contracts.

Two members A and B, each with its own `BeaconDuty` (short hash chains so that a refresh is
cheap to reach), jobs drawn at 50%. Time is moved by mining blocks: the duties run as on a dev
chain (`dev_chain`: the next block's time is the head's + 1 here).
- A duty commits at start, follows the jobs' rounds and reveals for a round only once a block
  of that round can include it (never before: checked against every Revealed event's block);
- restarted on the same database it rebuilds its chain and goes on revealing; on a lost
  database it commits a new chain (the rounds before that one applies are missed), and it
  commits a new generation when its chain runs low;
- both reveal: the round is ready, the service's draw agrees with JobMarket's `audit_drawn`;
- B silent: the round degrades (`gpunet job logs` says so), the service audits every job of
  it (no transaction opens an audit);
- the provider's worker finalizes, after the challenge window, only the jobs a ready round did
  not draw.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from offchain.chain.beacon import ROUND_DEGRADED, ROUND_PENDING, ROUND_READY, audit_draw
from offchain.client.timeline import audit_draw_state
from offchain.constants import JobStatus
from offchain.oracle.beacon_duty import BeaconDuty
from offchain.oracle.store import Store

CHAIN_LENGTH = 40
AUDIT_BPS = 5_000


@pytest.fixture(scope="module")
def members(accounts, deployment, deployer, params):
    """Two fresh accounts with gas money, AuditBeacon members from two rounds after now, and
    jobs audited at 50% (new providers)."""
    out = []
    for _ in range(2):
        a = accounts.generate_test_account()
        deployer.transfer(a, 10**18)
        deployment.beacon.add_member(a, sender=deployer)
        out.append(a)
    deployment.market.set_params(
        replace(params, new_provider_audit_bps=AUDIT_BPS, base_audit_bps=AUDIT_BPS).as_tuple(), sender=deployer
    )
    return out


@pytest.fixture(scope="module", autouse=True)
def _module_fixtures_first(members):
    """Module fixtures first (ape's snapshot isolation)."""


def _duty(deployment, chain, tmp_path, member, name: str, **kw) -> BeaconDuty:
    return BeaconDuty(
        beacon=deployment.beacon,
        market=deployment.market,
        chain=chain,
        store=Store(tmp_path / f"{name}.sqlite"),
        key=member.private_key,
        address=member.address,
        sender=member,
        dev_chain=True,
        chain_length=kw.pop("chain_length", CHAIN_LENGTH),
        refresh_below=kw.pop("refresh_below", 5),
        **kw,
    )


def _warp(chain, ts: int) -> None:
    if int(chain.blocks.head.timestamp) < ts:
        chain.mine(timestamp=ts)


def _round_seconds(deployment) -> int:
    return int(deployment.beacon.ROUND_SECONDS())


def _to_round(deployment, chain, r: int, offset: int = 1) -> None:
    """Mines to `offset` seconds into round `r`."""
    _warp(chain, r * _round_seconds(deployment) + offset)


def _submit(market, jobs, make_provider, make_job, provider, user, n: int = 1, machine=None) -> list[int]:
    """`n` jobs created, then accepted and submitted in one transaction each (one draw round)."""
    machine = machine or make_provider(provider)
    ids = [make_job(user)[0] for _ in range(n)]
    jobs.track(market.accept_jobs(ids, [jobs.t(i) for i in ids], machine, sender=provider))
    jobs.track(market.submit_results(ids, [jobs.t(i) for i in ids], [b"\x22" * 32] * n, ["http://p/r"] * n,
                                     sender=provider))  # fmt: skip
    return ids


def _reveal_times(deployment, chain) -> list[tuple[int, int]]:
    """(round, timestamp of the block that included the reveal) of every Revealed event."""
    b = deployment.beacon
    return [(int(lg.round), int(chain.blocks[lg.block_number].timestamp))
            for lg in b.Revealed.range(0, chain.blocks.height + 1)]  # fmt: skip


def _started(deployment, chain, duties) -> int:
    """Starts the duties (each commits its chain) and mines to the round from which both the
    memberships and the commitments apply; returns that round."""
    for d in duties:
        d.tick()
    b = deployment.beacon
    first = max(max(int(b.members(d.address).pending_from), int(b.members(d.address).active_from)) for d in duties)
    _to_round(deployment, chain, first)
    return first


def test_duty__commits_at_start_and_never_reveals_before_the_round_starts(
    deployment, chain, members, tmp_path, market, jobs, make_provider, make_job, provider, user
):
    beacon, R = deployment.beacon, _round_seconds(deployment)
    a = _duty(deployment, chain, tmp_path, members[0], "a")
    a.tick()
    m = beacon.members(a.address)
    assert bytes(m.pending_tip) == a._chain(a._generations()[-1]).commitment and m.last_round == 0
    first = _started(deployment, chain, [a])
    a.tick()  # nothing to reveal: no job drawn from any round yet
    assert _reveal_times(deployment, chain) == []

    (job_id,) = _submit(market, jobs, make_provider, make_job, provider, user)
    r = int(jobs[job_id]["draw_round"])
    assert r > first and int(chain.blocks.head.timestamp) < r * R
    _warp(chain, r * R - 2)  # the next block is at r * R - 1: still before the round
    a.tick()
    assert _reveal_times(deployment, chain) == [] and beacon.members(a.address).last_round == 0
    _warp(chain, r * R - 1)  # the next block is the round's first second
    a.tick()
    assert _reveal_times(deployment, chain) == [(r, r * R)]
    assert beacon.members(a.address).last_round == r
    assert beacon.round_counts(r) == (1, 2)  # B (no duty here) has not revealed: pending
    a.tick()  # once per round
    assert len(_reveal_times(deployment, chain)) == 1


def test_duty__restart_rebuilds_the_chain_lost_state_commits_anew_and_low_chain_refreshes(
    deployment, chain, members, tmp_path, market, jobs, make_provider, make_job, provider, user
):
    beacon, R = deployment.beacon, _round_seconds(deployment)
    a = _duty(deployment, chain, tmp_path, members[0], "a", refresh_below=CHAIN_LENGTH - 1)
    _started(deployment, chain, [a])
    machine = make_provider(provider)

    def job_round() -> int:
        (job_id,) = _submit(market, jobs, make_provider, make_job, provider, user, machine=machine)
        r = int(jobs[job_id]["draw_round"])
        _warp(chain, r * R)
        return r

    r1 = job_round()
    a.tick()
    assert beacon.members(a.address).last_round == r1
    commits = len(list(beacon.Committed.range(0, chain.blocks.height + 1)))

    # Restarted on the same database: the same chain, found from the on-chain tip; no commit.
    a2 = _duty(deployment, chain, tmp_path, members[0], "a", refresh_below=CHAIN_LENGTH - 1)
    r2 = job_round()
    a2.tick()
    assert beacon.members(a.address).last_round == r2
    # Two values used, fewer than `refresh_below` left: a new generation was committed.
    assert len(list(beacon.Committed.range(0, chain.blocks.height + 1))) == commits + 1
    m = beacon.members(a.address)
    assert int(m.pending_from) > r2 and bytes(m.pending_tip) in a2._chains[a2._generations()[-1]]
    # Its reveals go on from the new chain once that applies.
    _to_round(deployment, chain, int(m.pending_from))
    r3 = job_round()
    a2.tick()
    assert (
        beacon.members(a.address).last_round == r3
        and bytes(beacon.members(a.address).tip) in a2._chains[a2._generations()[-1]]
    )

    # A lost database: the on-chain tip is on none of its chains -> it commits a new one and
    # misses the rounds before that applies (they degrade: every job of them is audited).
    lost = _duty(deployment, chain, tmp_path, members[0], "lost")
    r4 = job_round()
    lost.tick()
    m = beacon.members(a.address)
    assert m.last_round == r3 and int(m.pending_from) > r4
    assert bytes(m.pending_tip) == lost._chain(lost._generations()[-1]).commitment
    assert lost._generations()[-1] not in a2._generations()  # never a chain revealed from before
    _to_round(deployment, chain, int(m.pending_from))
    r5 = job_round()
    lost.tick()
    assert beacon.members(a.address).last_round == r5
    assert all(ts >= rnd * R for rnd, ts in _reveal_times(deployment, chain))


def _service(tmp_path, deployment, chain, operator, name="svc"):
    from offchain.oracle.service import OracleConfig, OracleService

    cfg = OracleConfig(network="ethereum:local:test", operator_key=operator.private_key,
                       db_path=str(tmp_path / f"{name}.sqlite"))  # fmt: skip
    svc = OracleService(cfg)
    svc.h = SimpleNamespace(market=deployment.market, beacon=deployment.beacon, hub=deployment.hub, chain=chain,
                            record={})  # fmt: skip
    svc.chain_id, svc.sender, svc.threshold = chain.chain_id, operator, 1
    return svc


def _check_draws(svc, chain) -> None:
    """One pass of the service's job loop over its Submitted jobs (events followed first)."""
    head = chain.blocks.height
    start = int(svc.store.get_meta("test_cursor", "-1")) + 1
    svc._follow_market(start, head)
    svc.store.set_meta("test_cursor", str(head))
    now = int(chain.blocks.head.timestamp)
    for row in svc.store.jobs_with_status(JobStatus.SUBMITTED):
        svc._check_draw(row, now)


def test_draw__both_reveal__ready__service_agrees_with_the_contract(
    deployment, chain, members, tmp_path, market, jobs, make_provider, make_job, provider, user
):
    beacon = deployment.beacon
    a, b = (_duty(deployment, chain, tmp_path, m, n) for m, n in zip(members, "ab", strict=True))
    _started(deployment, chain, [a, b])
    svc = _service(tmp_path, deployment, chain, members[0])
    ids = _submit(market, jobs, make_provider, make_job, provider, user, n=16)
    (r,) = {int(jobs[i]["draw_round"]) for i in ids}
    _check_draws(svc, chain)  # pending: nothing decided, nothing opened
    assert beacon.draw_seed(r)[0] == ROUND_PENDING
    assert all(svc.store.job(i)["drawn"] is None for i in ids)
    assert all(market.job_status(i) == JobStatus.SUBMITTED for i in ids)
    _warp(chain, r * _round_seconds(deployment))
    a.tick()
    b.tick()
    assert beacon.round_counts(r) == (2, 2) and beacon.draw_seed(r)[0] == ROUND_READY
    expected = {i: bool(market.audit_drawn(i, jobs.t(i))) for i in ids}
    assert any(expected.values()) and not all(expected.values())  # 16 draws at 50%: p = 2^-15 of failing
    assert all(audit_draw(beacon, i, jobs[i]) is expected[i] for i in ids)
    _check_draws(svc, chain)
    for i in ids:
        assert svc.store.job(i)["drawn"] == int(expected[i])
        # A drawn job is in audit with no transaction: Submitted on-chain, Audit in the service's
        # store, with the deadline JobMarket derives (challenge_end + audit_timeout).
        assert market.job_status(i) == JobStatus.SUBMITTED
        row = svc.store.job(i)
        assert row["status"] == (JobStatus.AUDIT if expected[i] else JobStatus.SUBMITTED)
        if expected[i]:
            assert row["audit_deadline"] == jobs[i]["challenge_end"] + market.params().audit_timeout


def test_draw__silent_member__round_degraded__every_job_audited(
    deployment, chain, members, tmp_path, market, jobs, make_provider, make_job, provider, user
):
    beacon, R = deployment.beacon, _round_seconds(deployment)
    W = int(beacon.REVEAL_WINDOW())
    a, b = (_duty(deployment, chain, tmp_path, m, n) for m, n in zip(members, "ab", strict=True))
    _started(deployment, chain, [a, b])  # B commits, then goes silent
    svc = _service(tmp_path, deployment, chain, members[0])
    ids = _submit(market, jobs, make_provider, make_job, provider, user, n=4)
    (r,) = {int(jobs[i]["draw_round"]) for i in ids}
    _warp(chain, r * R)
    a.tick()
    assert beacon.round_counts(r) == (1, 2)
    _check_draws(svc, chain)
    assert all(market.job_status(i) == JobStatus.SUBMITTED for i in ids)  # pending until the window closes
    h = SimpleNamespace(beacon=beacon, chain=chain)
    d = audit_draw_state(h, ids[0], jobs[ids[0]], t_now=int(chain.blocks.head.timestamp))
    assert (d["state"], d["drawn"], d["revealed"], d["required"], d["reveal_deadline"]) == (
        "pending", None, 1, 2, r * R + W,
    )  # fmt: skip
    assert d["text"].startswith(f"audit draw pending (audit rate 50%): beacon round {r} has 1 of 2 reveals")
    # The window closed: `gpunet job logs` says so before any block (a dev chain mines on transactions).
    d = audit_draw_state(h, ids[0], jobs[ids[0]], t_now=r * R + W + 1)
    assert (d["state"], d["drawn"]) == ("degraded", True) and "was not fully revealed by" in d["text"]
    _warp(chain, r * R + W + 1)
    assert beacon.draw_seed(r)[0] == ROUND_DEGRADED
    _check_draws(svc, chain)
    assert [svc.store.job(i)["status"] for i in ids] == [JobStatus.AUDIT] * len(ids)
    assert all(svc.store.job(i)["drawn"] == 1 for i in ids)
    b.tick()  # too late for B: the round is dropped, nothing sent
    assert [rr for rr, _ in _reveal_times(deployment, chain)] == [r]  # A's reveal only


def test_worker__finalizes_only_undrawn_jobs_of_a_decided_round(
    deployment, chain, members, tmp_path, market, jobs, make_provider, provider, make_job, user
):
    """The provider's worker (offchain/provider/payout.py `finalize_ready`) after the challenge
    window: a job its ready round did not draw is finalized; a drawn one, and every job of a
    round degraded by a silent member, is left to the oracles' audit (no finalize is tried).
    Its claim then settles exactly the finalized jobs' credit."""
    from offchain.provider.guard import DataGuard
    from offchain.provider.intake import Intake
    from offchain.provider.payout import Payout
    from offchain.provider.store import WorkerStore
    from offchain.provider.worker import JobWorker

    beacon, R = deployment.beacon, _round_seconds(deployment)
    a, b = (_duty(deployment, chain, tmp_path, m, n) for m, n in zip(members, "ab", strict=True))
    _started(deployment, chain, [a, b])
    machine = make_provider(provider)
    ready = _submit(market, jobs, make_provider, make_job, provider, user, n=12, machine=machine)
    r = int(jobs[ready[0]]["draw_round"])
    _warp(chain, r * R)
    a.tick()
    b.tick()
    degraded = _submit(market, jobs, make_provider, make_job, provider, user, n=2, machine=machine)
    r2 = int(jobs[degraded[0]]["draw_round"])
    _warp(chain, r2 * R)
    a.tick()  # B stays silent
    drawn = {i: bool(market.audit_drawn(i, jobs.t(i))) for i in ready}
    undrawn = [i for i in ready if not drawn[i]]
    assert undrawn and len(undrawn) < len(ready)  # 12 draws at 50%: p = 2^-11 of failing

    w = JobWorker.__new__(JobWorker)
    w.cfg = SimpleNamespace(tx_retry_s=5.0)
    w.store = WorkerStore(tmp_path / "worker.sqlite")
    w.h = SimpleNamespace(market=market, beacon=beacon, chain=chain, settlement=deployment.settlement)
    w.account, w.address, w.jobs, w._retry_at = provider, provider.address, {}, {}
    w.onchain, w.specs = {}, {}  # no audit or verdict events seen: every job still Submitted
    w.agent = SimpleNamespace()  # no blob access: nothing to release when a job is done
    w.guard = DataGuard(w)
    w.intake = Intake(w)
    for i in ready + degraded:
        w.store.add_candidate(i)
        w.store.set_state(i, "submitted")
        w.jobs[i] = jobs[i]
    end = max(int(jobs[i]["challenge_end"]) for i in ready + degraded)
    _warp(chain, end + 1)
    assert beacon.draw_seed(r)[0] == ROUND_READY and beacon.draw_seed(r2)[0] == ROUND_DEGRADED
    pay = Payout(w)
    assert pay.finalize_ready(int(chain.blocks.head.timestamp)) == len(undrawn)
    for i in ready + degraded:
        want = JobStatus.FINALIZED if i in undrawn else JobStatus.SUBMITTED
        assert market.job_status(i) == want, (i, drawn.get(i))
    assert w._retry_at == {}  # no finalize was tried and refused
    # Finalizing credited the provider the undrawn jobs' escrow; one claim burns exactly that.
    escrow = sum(int(jobs[i]["payment"]) for i in undrawn)
    assert int(market.accrued(provider)[0]) == escrow and sorted(pay.unclaimed_jobs) == sorted(undrawn)
    assert pay.claim_if_due() is not None and int(market.accrued(provider)[0]) == 0
    assert pay.unclaimed_jobs == [] and pay.claim_if_due() is None  # nothing left: no second claim
