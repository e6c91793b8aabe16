"""AuditBeacon, the audit draw's commit-reveal among the oracle operators (docs/SECURITY.md,
"The audit draw"): membership and commitment windows (a change made during round c applies from
c + 2), reveals (a member's next hash-chain value, from the round's start to REVEAL_WINDOW after
it, in increasing rounds), the round states (pending, ready with keccak(XOR, round), degraded once
the window closes unrevealed), and the attacks the design must defeat (`test_attack_*`).

The module makes three members of the session deployment's beacon (`trio`, on JobMarket's draw)
and turns audits on at 50% so that the attacks run against real jobs. A job submitted during
round c is drawn from round c + 1.
"""

import ape
import pytest
from conftest import ACCEPT_WINDOW, COMPLETE_WITHIN, CPU, PRICE, UNIT_PARAMS, UNITS
from market_helpers import (
    ZERO32,
    ZERO_ADDRESS,
    beacon_members,
    ev,
    evs,
    isolated,
    new_chain,
    next_secret,
    past_reveal_window,
    reveal_round,
    set_params,
    to_round,
)

from offchain.chain.beacon import (
    ROUND_DEGRADED,
    ROUND_PENDING,
    ROUND_READY,
    draw_round,
    drawn_from_seed,
    reveal_share,
    round_seed,
)
from offchain.chain.deploy import DEFAULT_ADMIN_ROLE
from offchain.constants import JobStatus
from offchain.params import BeaconParams

R = BeaconParams().round_seconds
D = BeaconParams().reveal_window
OPEN_ENDED = 2**256 - 1
MISSING_ROLE = "access_control: account is missing role"
AUDIT_BPS = 5_000
MAX_TOKENS = 2**256 - 1


@pytest.fixture(scope="module")
def beacon(deployment):
    return deployment.beacon


@pytest.fixture(scope="module", autouse=True)
def trio(beacon, market, registry, accounts, deployer, chain, keeper, provider, user, attacker):
    """Three members with committed chains, active from the current round on; audits on at 50%
    for every provider. (The session fixtures the tests use are requested here, so that ape
    does not rebase its snapshots when a test first asks for one.)"""
    set_params(market, deployer, UNIT_PARAMS, new_provider_audit_bps=AUDIT_BPS, base_audit_bps=AUDIT_BPS)
    return beacon_members(beacon, accounts, deployer, chain, 3)


def _ts(chain, tx):
    return chain.blocks[tx.block_number].timestamp


def _round_of(chain, tx):
    return _ts(chain, tx) // R


def next_round(chain, beacon):
    """Moves time to the start of the next round (so that a few transactions stay in it)."""
    r = chain.pending_timestamp // R + 1
    to_round(chain, beacon, r)
    return r


def seed_of(beacon, round_):
    state, seed = beacon.draw_seed(round_)
    return int(state), bytes(seed)


def submitted_jobs(market, jobs, make_provider, provider, user, n):
    """`n` jobs of `provider`, created, accepted and submitted in one transaction each step:
    returns (ids, the submission receipt)."""
    machine_id = make_provider(provider)
    tx = jobs.track(market.create_jobs(
        provider, CPU, [bytes([i + 1]) * 32 for i in range(n)], [UNITS] * n, PRICE, ACCEPT_WINDOW, COMPLETE_WITHIN,
        MAX_TOKENS, sender=user,
    ))  # fmt: skip
    ids = [e["job_id"] for e in evs(tx, market.JobCreated)]
    jobs.track(market.accept_jobs(ids, [jobs.t(i) for i in ids], machine_id, sender=provider))
    assert all(jobs[i]["audit_bps"] == AUDIT_BPS for i in ids)
    results, uris = [b"\x22" * 32] * n, ["r"] * n
    tx = jobs.track(market.submit_results(ids, [jobs.t(i) for i in ids], results, uris, sender=provider))
    return ids, tx


################################################################
#                   constructor and constants                  #
################################################################


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, D), "audit_beacon: round length is zero"),
        ((R, 0), "audit_beacon: reveal window is zero"),
        # Overlapping windows would let the last revealer of a round spend its next value on the
        # round before and choose between two seeds (test_attack_burn_a_value_...).
        ((R, R), "audit_beacon: reveal window not shorter than a round"),
        ((R, R + 1), "audit_beacon: reveal window not shorter than a round"),
    ],
)
def test_constructor__zero_argument__reverts(project, deployer, args, message):
    with ape.reverts(message):
        deployer.deploy(project.AuditBeacon, *args)


def test_constants__match_offchain_and_the_market(beacon, market, deployer, trio):
    assert (beacon.ROUND_SECONDS(), beacon.REVEAL_WINDOW()) == (R, D) == BeaconParams().as_tuple()
    assert (beacon.MAX_MEMBERS(), beacon.ACTIVATION_DELAY_ROUNDS()) == (16, 2)
    assert (beacon.ROUND_PENDING(), beacon.ROUND_READY(), beacon.ROUND_DEGRADED()) == (
        ROUND_PENDING,
        ROUND_READY,
        ROUND_DEGRADED,
    )
    assert beacon.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert (market.BEACON(), market.DRAW_ROUND_SECONDS()) == (beacon.address, R)
    assert beacon.member_count() == 3
    assert [beacon.member_list(i) for i in range(3)] == [a.address for a, _ in trio]


################################################################
#                          membership                          #
################################################################


def test_add_member__applies_two_rounds_later(beacon, chain, deployer, accounts):
    a = accounts.generate_test_account()
    tx = beacon.add_member(a, sender=deployer)
    c = _round_of(chain, tx)
    assert ev(tx, beacon.MemberAdded) == {"member": a.address, "active_from": c + 2}
    m = beacon.members(a)
    assert (m.active_from, m.active_until, m.tip, m.last_round) == (c + 2, OPEN_ENDED, ZERO32, 0)
    assert beacon.member_count() == 4 and beacon.member_list(3) == a.address
    # Jobs submitted now are drawn from c + 1: its member set is already fixed.
    assert [beacon.required_members(r) for r in (c, c + 1, c + 2)] == [3, 3, 4]
    with ape.reverts("audit_beacon: already a member"):
        beacon.add_member(a, sender=deployer)


def test_add_member__not_admin_or_zero_address__reverts(beacon, deployer, attacker, trio):
    for caller in (attacker, trio[0][0]):
        with ape.reverts(MISSING_ROLE):
            beacon.add_member(attacker, sender=caller)
    with ape.reverts("audit_beacon: member is the zero address"):
        beacon.add_member(ZERO_ADDRESS, sender=deployer)
    assert beacon.member_count() == 3


def test_add_member__at_most_max_members__a_closed_slot_is_reused(project, deployer, chain):
    fresh = deployer.deploy(project.AuditBeacon, R, D)
    addresses = [f"0x{i:040x}" for i in range(1, 17)]
    for a in addresses:
        fresh.add_member(a, sender=deployer)
    with ape.reverts("audit_beacon: too many members"):
        fresh.add_member(f"0x{17:040x}", sender=deployer)
    chain.pending_timestamp += 3 * R  # their windows are open
    # A removed member keeps its slot while its window may still matter (its last round c + 1
    # can still take reveals), and cannot be re-added before the removal took effect (that would
    # move its `active_from` and drop it from rounds whose jobs may already be submitted).
    fresh.remove_member(addresses[0], sender=deployer)
    with ape.reverts("audit_beacon: too many members"):
        fresh.add_member(f"0x{17:040x}", sender=deployer)
    with ape.reverts("audit_beacon: already a member"):
        fresh.add_member(addresses[0], sender=deployer)
    assert fresh.member_count() == 16
    # Once its window has closed, a newcomer takes its slot: the list never fills up for good.
    tx = fresh.remove_member(addresses[1], sender=deployer)
    until = fresh.members(addresses[1]).active_until
    chain.pending_timestamp = until * R
    fresh.add_member(f"0x{17:040x}", sender=deployer)
    assert fresh.member_count() == 16
    assert fresh.member_list(0) == f"0x{17:040x}"  # addresses[0]'s window closed first
    assert fresh.members(f"0x{17:040x}").active_from > _round_of(chain, tx)
    # The evicted member is forgotten; added again, it is listed again (and counted).
    assert fresh.members(addresses[0]).active_until == 0
    fresh.add_member(addresses[0], sender=deployer)
    assert fresh.member_list(1) == addresses[0]  # addresses[1]'s closed slot
    assert fresh.required_members(fresh.members(addresses[0]).active_from) == 16


def test_remove_member__self_or_admin__applies_two_rounds_later(beacon, chain, deployer, attacker, trio):
    (a, hc), (b, _), _ = trio
    for caller in (attacker, b):
        with ape.reverts(MISSING_ROLE):
            beacon.remove_member(a, sender=caller)
    tx = beacon.remove_member(a, sender=a)
    c = _round_of(chain, tx)
    assert ev(tx, beacon.MemberRemoved) == {"member": a.address, "active_until": c + 2}
    assert beacon.members(a).active_until == c + 2
    # It still reveals for the round jobs submitted now are drawn from.
    assert [beacon.required_members(r) for r in (c + 1, c + 2)] == [3, 2]
    for caller in (a, deployer):
        with ape.reverts("audit_beacon: not a member"):
            beacon.remove_member(a, sender=caller)
    tx = beacon.remove_member(b, sender=deployer)
    assert beacon.members(b).active_until == _round_of(chain, tx) + 2
    # Round c + 1 is still its; from c + 2 on it can neither reveal nor commit.
    reveal_round(chain, beacon, [(a, hc)], c + 1)
    to_round(chain, beacon, c + 2)
    secret = next_secret(beacon, a, hc, c + 2)
    with ape.reverts("audit_beacon: not a member for this round"):
        beacon.reveal(c + 2, secret, sender=a)
    with ape.reverts("audit_beacon: not a member"):
        beacon.commit(new_chain(a, b"1").commitment, sender=a)


def test_remove_member__never_added__reverts(beacon, deployer, attacker):
    for caller in (attacker, deployer):
        with ape.reverts("audit_beacon: not a member"):
            beacon.remove_member(attacker, sender=caller)


def test_remove_member__before_its_window_opens__window_empty_then_re_added(beacon, chain, deployer, accounts):
    a = accounts.generate_test_account()
    c = next_round(chain, beacon)
    beacon.add_member(a, sender=deployer)
    beacon.remove_member(a, sender=deployer)
    m = beacon.members(a)
    assert (m.active_from, m.active_until) == (c + 2, c + 2)
    assert beacon.required_members(c + 2) == 3
    # Its window has closed (it never opened): governance may add it again, from two rounds on.
    tx = beacon.add_member(a, sender=deployer)
    assert beacon.members(a).active_from == _round_of(chain, tx) + 2
    assert beacon.member_count() == 4


################################################################
#                            commit                            #
################################################################


def test_commit__applies_two_rounds_later_replaced_within_the_round(beacon, chain, trio):
    a, hc = trio[0]
    c = next_round(chain, beacon)
    c2, c3 = new_chain(a, b"2"), new_chain(a, b"3")
    tx = beacon.commit(c2.commitment, sender=a)
    assert ev(tx, beacon.Committed) == {"member": a.address, "commitment": c2.commitment, "applies_from": c + 2}
    # Replaced in the same round: no job can be drawn from c + 2 yet, the chain is not promoted.
    beacon.commit(c3.commitment, sender=a)
    m = beacon.members(a)
    assert (m.tip, m.pending_tip, m.pending_from) == (hc.commitment, c3.commitment, c + 2)
    # Round c + 1 from the current chain, c + 2 from the new one.
    assert reveal_round(chain, beacon, [(a, hc)], c + 1) == reveal_share(a.address, hc.values[1])
    reveal_round(chain, beacon, [(a, c3)], c + 2)
    m = beacon.members(a)
    assert (m.tip, m.pending_tip, m.pending_from, m.last_round) == (c3.values[1], ZERO32, 0, c + 2)


def test_commit__not_a_member_or_empty__reverts(beacon, attacker, trio):
    with ape.reverts("audit_beacon: not a member"):
        beacon.commit(b"\x01" * 32, sender=attacker)
    with ape.reverts("audit_beacon: commitment is empty"):
        beacon.commit(ZERO32, sender=trio[0][0])


################################################################
#                        reveal and seeds                      #
################################################################


def test_reveal__every_member__ready_seed_matches_offchain(beacon, chain, trio):
    r = chain.pending_timestamp // R + 1
    to_round(chain, beacon, r)
    xor = 0
    for i, (a, hc) in enumerate(trio):
        assert seed_of(beacon, r) == (ROUND_PENDING, ZERO32)
        secret = next_secret(beacon, a, hc, r)
        assert secret == hc.values[1]  # the first value after the commitment
        tx = beacon.reveal(r, secret, sender=a)
        assert ev(tx, beacon.Revealed) == {"round": r, "member": a.address, "secret": secret}
        assert tuple(beacon.round_counts(r)) == (i + 1, 3)
        m = beacon.members(a)
        assert (m.tip, m.last_round) == (secret, r)
        xor ^= int.from_bytes(reveal_share(a.address, secret), "big")
    xor = xor.to_bytes(32, "big")
    assert bytes(beacon.round_xor(r)) == xor
    assert seed_of(beacon, r) == (ROUND_READY, round_seed(xor, r))
    # The next round continues each chain; the seed is fresh and stays ready after the window.
    xor2 = reveal_round(chain, beacon, trio, r + 1)
    assert [beacon.members(a).tip for a, _ in trio] == [hc.values[2] for _, hc in trio]
    past_reveal_window(chain, beacon, r + 1)
    assert seed_of(beacon, r + 1) == (ROUND_READY, round_seed(xor2, r + 1)) != seed_of(beacon, r)


def test_draw_seed__one_reveal_missing__pending_until_the_window_closes_then_degraded(beacon, chain, trio):
    r = chain.pending_timestamp // R + 1
    reveal_round(chain, beacon, trio[:2], r)
    assert tuple(beacon.round_counts(r)) == (2, 3)
    chain.mine(timestamp=r * R + D)
    assert seed_of(beacon, r) == (ROUND_PENDING, ZERO32)
    chain.mine()
    assert seed_of(beacon, r) == (ROUND_DEGRADED, ZERO32)
    a, hc = trio[2]
    with ape.reverts("audit_beacon: reveal window over"):
        beacon.reveal(r, next_secret(beacon, a, hc, r), sender=a)
    # A round nobody revealed in degrades the same way.
    assert seed_of(beacon, r - 1) == (ROUND_DEGRADED, ZERO32)
    assert tuple(beacon.round_counts(r - 1)) == (0, 0)


def test_reveal__accepted_from_round_start_to_reveal_window(beacon, chain, trio):
    a, hc = trio[0]
    r = chain.pending_timestamp // R + 2
    secret = next_secret(beacon, a, hc, r)
    to_round(chain, beacon, r, -1)
    with ape.reverts("audit_beacon: round not started"):
        beacon.reveal(r, secret, sender=a)
    for offset in (0, D):
        with isolated(chain):
            to_round(chain, beacon, r, offset)
            tx = beacon.reveal(r, secret, sender=a)
            assert _ts(chain, tx) == r * R + offset
    to_round(chain, beacon, r, D + 1)
    with ape.reverts("audit_beacon: reveal window over"):
        beacon.reveal(r, secret, sender=a)


def test_reveal__same_or_earlier_round_again__reverts(beacon, chain, trio):
    a, hc = trio[0]
    r = chain.pending_timestamp // R + 1
    reveal_round(chain, beacon, [(a, hc)], r)
    # Round r - 1's window is still open while windows overlap (REVEAL_WINDOW > ROUND_SECONDS).
    for round_ in (r, r - 1) if D > R else (r,):
        with ape.reverts("audit_beacon: round already revealed"):
            beacon.reveal(round_, hc.values[2], sender=a)


def test_reveal__not_the_next_chain_value__reverts(beacon, chain, trio):
    a, hc = trio[0]
    r = chain.pending_timestamp // R + 1
    to_round(chain, beacon, r)
    # A random value, the commitment itself (the current tip), a value further down the chain.
    for wrong in (b"\x42" * 32, hc.values[0], hc.values[2]):
        with ape.reverts("audit_beacon: reveal does not match the commitment"):
            beacon.reveal(r, wrong, sender=a)
    beacon.reveal(r, hc.values[1], sender=a)


def test_reveal__outside_the_membership_window_or_without_commitment__reverts(
    beacon, chain, accounts, deployer, attacker
):
    with ape.reverts("audit_beacon: not a member for this round"):
        beacon.reveal(chain.pending_timestamp // R, b"\x01" * 32, sender=attacker)
    x = accounts.generate_test_account()
    deployer.transfer(x, 10**18)
    tx = beacon.add_member(x, sender=deployer)
    c = _round_of(chain, tx)
    to_round(chain, beacon, c + 1)
    with ape.reverts("audit_beacon: not a member for this round"):
        beacon.reveal(c + 1, b"\x01" * 32, sender=x)
    # Active from c + 2, but it never committed: nothing can match (its round degrades).
    to_round(chain, beacon, c + 2)
    with ape.reverts("audit_beacon: reveal does not match the commitment"):
        beacon.reveal(c + 2, b"\x01" * 32, sender=x)


################################################################
#                            attacks                           #
################################################################


def test_attack_recommit_to_pick_the_value_of_a_round_with_submitted_jobs__fails(beacon, chain, trio):
    # Member `a` would like another value for round c + 1, whose jobs are being submitted
    # during round c, and then for c + 2.
    a, hc = trio[0]
    c = next_round(chain, beacon)
    chain2, chain3 = new_chain(a, b"2"), new_chain(a, b"3")
    beacon.commit(chain2.commitment, sender=a)  # applies from c + 2 only
    to_round(chain, beacon, c + 1)
    with ape.reverts("audit_beacon: reveal does not match the commitment"):
        beacon.reveal(c + 1, chain2.values[1], sender=a)
    # During c + 1 (jobs drawn from c + 2 are being submitted) it commits again: chain2 already
    # applies, so it is promoted, and c + 1 can no longer be revealed at all (it degrades).
    tx = beacon.commit(chain3.commitment, sender=a)
    assert ev(tx, beacon.Committed)["applies_from"] == c + 3
    m = beacon.members(a)
    assert (m.tip, m.last_round, m.pending_tip, m.pending_from) == (chain2.commitment, c + 1, chain3.commitment, c + 3)
    with ape.reverts("audit_beacon: round already revealed"):
        beacon.reveal(c + 1, hc.values[1], sender=a)
    # Round c + 2 takes chain2's value and no other.
    to_round(chain, beacon, c + 2)
    for wrong in (chain3.values[1], hc.values[1]):
        with ape.reverts("audit_beacon: reveal does not match the commitment"):
            beacon.reveal(c + 2, wrong, sender=a)
    beacon.reveal(c + 2, chain2.values[1], sender=a)
    assert beacon.members(a).tip == chain2.values[1]


def test_attack_reveal_before_the_round_starts__refused(beacon, chain, trio):
    # The last second of round r - 1: a result submitted now is drawn from r, and no member can
    # publish its value for r yet.
    r = chain.pending_timestamp // R + 2
    to_round(chain, beacon, r, -len(trio))  # a reverted transaction still takes a block (1 s)
    for a, hc in trio:
        assert draw_round(chain.pending_timestamp, R) == r
        with ape.reverts("audit_beacon: round not started"):
            beacon.reveal(r, next_secret(beacon, a, hc, r), sender=a)
    assert chain.blocks.head.timestamp == r * R - 1
    assert tuple(beacon.round_counts(r)) == (0, 0) and bytes(beacon.round_xor(r)) == ZERO32


def test_attack_provider_computes_its_draw_at_submission__seed_unknown(
    beacon, market, jobs, chain, make_provider, trio, provider, user
):
    # Every earlier value of every member is public; the provider submits at the last second
    # of round r - 1 (as late as it can before its round starts).
    r0 = chain.pending_timestamp // R + 1
    reveal_round(chain, beacon, trio, r0)
    r = r0 + 2
    machine_id = make_provider(provider)
    tx = jobs.track(market.create_job(provider, CPU, b"\x11" * 32, UNITS, PRICE, ACCEPT_WINDOW, COMPLETE_WITHIN,
                                      MAX_TOKENS, sender=user))  # fmt: skip
    job_id = ev(tx, market.JobCreated)["job_id"]
    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    to_round(chain, beacon, r, -1)
    tx = jobs.track(market.submit_result(job_id, jobs.t(job_id), b"\x22" * 32, "r", sender=provider))
    assert _ts(chain, tx) == r * R - 1
    assert ev(tx, market.ResultSubmitted)["draw_round"] == jobs[job_id]["draw_round"] == r
    # In the submission's block: not one value for round r exists, the seed is unknown.
    assert seed_of(beacon, r) == (ROUND_PENDING, ZERO32)
    assert tuple(beacon.round_counts(r)) == (0, 0)
    assert not market.audit_drawn(job_id, jobs.t(job_id))
    # The seed exists once the members reveal, all after the submission.
    xor = reveal_round(chain, beacon, trio, r)
    seed = round_seed(xor, r)
    assert seed_of(beacon, r) == (ROUND_READY, seed)
    assert market.audit_drawn(job_id, jobs.t(job_id)) == drawn_from_seed(seed, job_id, AUDIT_BPS)


def test_attack_withhold_reveal_to_escape_an_audit__round_degrades_and_every_job_drawn(
    beacon, market, jobs, chain, make_provider, trio, keeper, provider, user
):
    # Member `a` colludes with the provider. It reveals last: seeing the others' values it knows
    # the seed its reveal would make, and which of the provider's jobs that seed draws.
    ids, tx = submitted_jobs(market, jobs, make_provider, provider, user, 6)
    r = jobs[ids[0]]["draw_round"]
    assert {e["draw_round"] for e in evs(tx, market.ResultSubmitted)} == {r}
    (a, hc), *honest = trio
    others = reveal_round(chain, beacon, honest, r)
    mine = next_secret(beacon, a, hc, r)
    xor = (int.from_bytes(others, "big") ^ int.from_bytes(reveal_share(a.address, mine), "big")).to_bytes(32, "big")
    seed = round_seed(xor, r)
    would_draw = [drawn_from_seed(seed, i, AUDIT_BPS) for i in ids]
    with isolated(chain):  # revealing: exactly the jobs the seed draws
        beacon.reveal(r, mine, sender=a)
        assert seed_of(beacon, r) == (ROUND_READY, seed)
        assert [market.audit_drawn(i, jobs.t(i)) for i in ids] == would_draw
    # Withholding: the round degrades and every job is drawn, the ones the seed spared too.
    past_reveal_window(chain, beacon, r)
    assert seed_of(beacon, r)[0] == ROUND_DEGRADED
    assert all(market.audit_drawn(i, jobs.t(i)) for i in ids)
    chain.pending_timestamp = jobs[ids[0]]["challenge_end"] + 1
    for i in ids:
        with ape.reverts("job_market: job drawn for audit"):
            market.finalize(i, jobs.t(i), sender=keeper)
        assert market.job_status(i) == JobStatus.SUBMITTED  # in audit: awaits a verdict


def test_attack_add_or_remove_member_mid_round__required_count_unchanged(beacon, chain, deployer, accounts, trio):
    x, y = accounts.generate_test_account(), accounts.generate_test_account()
    for acct in (x, y):
        deployer.transfer(acct, 10**18)
    c = next_round(chain, beacon)
    r = c + 1  # jobs submitted now are drawn from r
    beacon.add_member(x, sender=deployer)
    beacon.remove_member(trio[0][0], sender=deployer)
    assert beacon.required_members(r) == 3
    to_round(chain, beacon, r)
    beacon.reveal(r, next_secret(beacon, trio[1][0], trio[1][1], r), sender=trio[1][0])
    beacon.add_member(y, sender=deployer)  # after the first reveal, during round r
    assert beacon.required_members(r) == 3 and tuple(beacon.round_counts(r)) == (1, 3)
    # The newcomers cannot take part in r; the removed member still must.
    for newcomer in (x, y):
        beacon.commit(new_chain(newcomer).commitment, sender=newcomer)
        with ape.reverts("audit_beacon: not a member for this round"):
            beacon.reveal(r, b"\x01" * 32, sender=newcomer)
    assert seed_of(beacon, r)[0] == ROUND_PENDING
    xor = reveal_round(chain, beacon, [trio[0], trio[2]], r)
    share = reveal_share(trio[1][0].address, beacon.members(trio[1][0]).tip)
    xor = (int.from_bytes(xor, "big") ^ int.from_bytes(share, "big")).to_bytes(32, "big")
    assert tuple(beacon.round_counts(r)) == (3, 3)
    assert seed_of(beacon, r) == (ROUND_READY, round_seed(xor, r))


def test_attack_burn_a_value_in_the_previous_rounds_window_to_choose_the_seed__fails(beacon, chain, trio):
    # Round r - 1 had no jobs, so `a` did not reveal in it. The honest members reveal for r at
    # its start; `a` sees their values and may (1) reveal its next value for r, or (2) first
    # reveal that value for r - 1 (whose window is still open) and then the following one for r.
    (a, hc), *honest = trio
    r = chain.pending_timestamp // R + 2
    reveal_round(chain, beacon, honest, r)
    first = next_secret(beacon, a, hc, r)
    second = hc.next_after(first)
    seeds = set()
    with isolated(chain):
        beacon.reveal(r, first, sender=a)
        seeds.add(seed_of(beacon, r))
    with isolated(chain):
        try:
            beacon.reveal(r - 1, first, sender=a)
            beacon.reveal(r, second, sender=a)
            seeds.add(seed_of(beacon, r))
        except ape.exceptions.ContractLogicError:
            pass
    assert len(seeds) == 1, "the last revealer chose between two ready seeds"
