"""Adversarial review of the audit draw (AuditBeacon + JobMarket's audit_draw / market_audits;
docs/SECURITY.md, "The audit draw").

The claimed property: nobody (the provider, one beacon member, the block producer) can know or
bias whether a job is audited before its result is committed; withholding a reveal only degrades
the round, which audits every job drawn from it; the draw stays live with a silent member.

Each `test_attack_*` performs one attack. Where the defence holds the test passes. Where the
attack succeeded when first written, the test asserts the defence and its docstring names the
fix (three flaws found this way are fixed: a copied commitment cancelling a reveal, a re-added
member left uncounted after its slot was reused, a remove-and-re-add shrinking a submitted round).

The module makes two honest members (`duo`) of the session deployment's beacon and turns sampled
audits on at 50%. A result submitted during round c is drawn from round c + 1.
"""

import ape
import pytest
from conftest import ACCEPT_WINDOW, COMPLETE_WITHIN, CPU, PRICE, UNIT_PARAMS, UNITS
from market_helpers import (
    RESULT,
    ZERO32,
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
    drawn_from_seed,
    reveal_share,
    round_seed,
)
from offchain.constants import JobStatus
from offchain.params import BeaconParams, MarketParams

R = BeaconParams().round_seconds
D = BeaconParams().reveal_window
AUDIT_BPS = 5_000
MAX_TOKENS = 2**256 - 1
MISSING_ROLE = "access_control: account is missing role"


@pytest.fixture(scope="module")
def beacon(deployment):
    return deployment.beacon


@pytest.fixture(scope="module", autouse=True)
def duo(beacon, market, registry, accounts, deployer, chain, keeper, provider, user, attacker, params_check):
    """Two honest members with committed chains, active from the current round on; audits on at
    50% for every provider. (Session fixtures are requested here first: ape's snapshots.)"""
    _audits_on(market, deployer)
    return beacon_members(beacon, accounts, deployer, chain, 2)


def _audits_on(market, deployer, **changes):
    set_params(market, deployer, UNIT_PARAMS, new_provider_audit_bps=AUDIT_BPS, base_audit_bps=AUDIT_BPS, **changes)


def _next_round(chain, beacon):
    """Moves time to the start of the next round (so that a few transactions stay in it)."""
    r = chain.pending_timestamp // R + 1
    to_round(chain, beacon, r)
    return r


def _seed(beacon, round_):
    state, seed = beacon.draw_seed(round_)
    return int(state), bytes(seed)


def _funded(accounts, deployer):
    a = accounts.generate_test_account()
    deployer.transfer(a, 10**18)
    return a


def _xor(*values):
    x = 0
    for v in values:
        x ^= int.from_bytes(bytes(v), "big")
    return x.to_bytes(32, "big")


def _submit_jobs(market, jobs, machine_id, provider, user, n):
    """`n` jobs of `provider` created, accepted and submitted (one transaction a step): the ids."""
    tx = jobs.track(market.create_jobs(
        provider, CPU, [bytes([i + 1]) * 32 for i in range(n)], [UNITS] * n, PRICE, ACCEPT_WINDOW, COMPLETE_WITHIN,
        MAX_TOKENS, sender=user,
    ))  # fmt: skip
    ids = [e["job_id"] for e in evs(tx, market.JobCreated)]
    jobs.track(market.accept_jobs(ids, [jobs.t(i) for i in ids], machine_id, sender=provider))
    jobs.track(market.submit_results(ids, [jobs.t(i) for i in ids], [RESULT] * n, ["r"] * n, sender=provider))
    assert all(jobs[i]["audit_bps"] == AUDIT_BPS for i in ids)
    return ids


def _tip_for(beacon, member, round_):
    """The public value `member`'s reveal for `round_` must hash to (if it reveals nothing before)."""
    m = beacon.members(member)
    return m.pending_tip if m.pending_from != 0 and round_ >= m.pending_from else m.tip


def _ready_seeds(chain, beacon, member, round_, prefixes, candidates):
    """Every ready seed `member` can bring round `round_` to: for each prefix (a list of calls it
    makes first) and each candidate value, on a snapshot, try the calls and the reveal."""
    seeds = set()
    for prefix in prefixes:
        for value in candidates:
            with isolated(chain):
                try:
                    for call in prefix:
                        call()
                    beacon.reveal(round_, value, sender=member)
                except ape.exceptions.ContractLogicError:
                    continue
                state, seed = _seed(beacon, round_)
                if state == ROUND_READY:
                    seeds.add(seed)
    return seeds


################################################################
#   flaws found by review, fixed in AuditBeacon (regressions)  #
################################################################


def test_attack_copy_an_honest_members_commitment_cancels_its_reveal(
    beacon, market, jobs, chain, deployer, accounts, make_provider, duo, provider, user
):
    # Governance admits two operators that collude with the provider (2 honest of 4 members, so
    # "at least one member of each round is honest" holds). Each commits the current tip of one
    # honest member: public, in `members(h)` (its tip, or its pending commitment once it applies).
    c = _next_round(chain, beacon)
    copiers = []
    for h, _ in duo:
        a = _funded(accounts, deployer)
        beacon.add_member(a, sender=deployer)
        beacon.commit(_tip_for(beacon, h, c + 2), sender=a)
        copiers.append((a, h))
    r = c + 2
    assert {beacon.members(a).pending_from for a, _ in copiers} == {r}
    # During round r - 1 the provider submits; it predicts the seed of round r before any reveal.
    machine_id = make_provider(provider)
    to_round(chain, beacon, r - 1)
    ids = _submit_jobs(market, jobs, machine_id, provider, user, 6)
    assert {jobs[i]["draw_round"] for i in ids} == {r}
    assert _seed(beacon, r) == (ROUND_PENDING, ZERO32) and tuple(beacon.round_counts(r)) == (0, 0)
    predicted = round_seed(ZERO32, r)
    known = [drawn_from_seed(predicted, i, AUDIT_BPS) for i in ids]
    # The honest members reveal at the round's start; each copier replays its target's value.
    reveal_round(chain, beacon, duo, r)
    for a, h in copiers:
        beacon.reveal(r, beacon.members(h).tip, sender=a)
    past_reveal_window(chain, beacon, r)
    state, seed = _seed(beacon, r)
    actual = [market.audit_drawn(i, jobs.t(i)) for i in ids]
    assert (state, seed) != (ROUND_READY, predicted), (
        f"the seed was known when the results were committed: predicted draws {known}, on-chain {actual}"
    )


def test_attack_re_add_a_member_after_its_slot_was_reused__uncounted_revealer(beacon, chain, deployer, accounts, duo):
    x, y = _funded(accounts, deployer), _funded(accounts, deployer)
    c = _next_round(chain, beacon)
    # Fill the list (16): x, then placeholders; remove them all at once (empty windows).
    beacon.add_member(x, sender=deployer)
    fillers = [f"0x{0xDEAD0000 + i:040x}" for i in range(beacon.MAX_MEMBERS() - beacon.member_count())]
    for f in fillers:
        beacon.add_member(f, sender=deployer)
    assert beacon.member_count() == beacon.MAX_MEMBERS()
    for a in [x.address, *fillers]:
        beacon.remove_member(a, sender=deployer)
    # Two rounds on their windows have closed: y takes x's slot, then governance re-adds x.
    to_round(chain, beacon, c + 2)
    beacon.add_member(y, sender=deployer)
    assert beacon.member_list(len(duo)) == y.address
    beacon.add_member(x, sender=deployer)
    listed = x.address in [beacon.member_list(i) for i in range(beacon.member_count())]
    xc, yc = new_chain(x), new_chain(y)
    beacon.commit(xc.commitment, sender=x)
    beacon.commit(yc.commitment, sender=y)
    r = c + 4
    assert beacon.members(x).active_from == beacon.members(y).active_from == r
    # x and y collude. The honest members reveal; then either colluder alone completes the round.
    reveal_round(chain, beacon, duo, r)
    seeds = _ready_seeds(chain, beacon, x, r, [[]], [xc.values[1]])
    seeds |= _ready_seeds(chain, beacon, y, r, [[]], [yc.values[1]])
    assert beacon.required_members(r) == len(duo) + 2 and len(seeds) <= 1, (
        f"x listed: {listed}; required {beacon.required_members(r)} of 4 active members; "
        f"{len(seeds)} ready seeds to choose from"
    )


def test_attack_remove_and_re_add_in_one_round_drops_members_from_a_submitted_round(
    beacon, market, jobs, chain, deployer, accounts, make_provider, duo, provider, user
):
    m = _funded(accounts, deployer)  # an operator colluding with the provider
    c0 = _next_round(chain, beacon)
    beacon.add_member(m, sender=deployer)
    mc = new_chain(m)
    beacon.commit(mc.commitment, sender=m)
    machine_id = make_provider(provider)
    c = c0 + 2
    to_round(chain, beacon, c)
    ids = _submit_jobs(market, jobs, machine_id, provider, user, 4)
    r = c + 1
    assert {jobs[i]["draw_round"] for i in ids} == {r}
    assert beacon.required_members(r) == 3
    # After the submissions, still in round c: every honest member is removed and re-added. The
    # re-add is refused while the removal has not taken effect (it would move `active_from`).
    for h, _ in duo:
        beacon.remove_member(h, sender=deployer)
        with ape.reverts("audit_beacon: already a member"):
            beacon.add_member(h, sender=deployer)
    required = beacon.required_members(r)
    # m alone reveals for r: the seed is a hash of its own value, known to it at submission.
    to_round(chain, beacon, r)
    beacon.reveal(r, mc.values[1], sender=m)
    state_seed = _seed(beacon, r)
    assert required == 3 and state_seed != (ROUND_READY, round_seed(mc.values[1], r)), (
        f"round {r} needs {required} member(s) after the submission; m made it {state_seed[0]}"
    )


################################################################
#               attacks the defence holds against              #
################################################################


def test_attack_commit_promote_or_self_remove_mid_window_to_pick_a_value__one_seed(beacon, chain, duo):
    # Member `a` has seen the other member's reveal for r and would like a second value for r.
    (a, hc), (b, hb) = duo
    p, q, q2 = new_chain(a, b"p"), new_chain(a, b"q"), new_chain(a, b"q2")

    def candidates():
        return [hc.next_after(beacon.members(a).tip), p.values[1], q.values[1], q2.values[1]]

    prefixes = [
        [],
        [lambda: beacon.commit(q.commitment, sender=a)],
        [lambda: beacon.commit(q.commitment, sender=a), lambda: beacon.commit(q2.commitment, sender=a)],
        [lambda: beacon.remove_member(a, sender=a)],
        [lambda: beacon.remove_member(a, sender=a), lambda: beacon.commit(q.commitment, sender=a)],
    ]
    # Its pending chain applies from r (committed during r - 2), or from r + 1 (during r - 1).
    for lead in (2, 1):
        with isolated(chain):
            c = _next_round(chain, beacon)
            beacon.commit(p.commitment, sender=a)
            r = c + lead
            to_round(chain, beacon, r)
            beacon.reveal(r, next_secret(beacon, b, hb, r), sender=b)
            seeds = _ready_seeds(chain, beacon, a, r, prefixes, candidates())
            assert len(seeds) == 1, f"pending from r + {2 - lead}: {len(seeds)} ready seeds"


def test_attack_spend_a_value_on_an_idle_earlier_round_before_the_target__no_information(beacon, chain, duo):
    # `a` skips round r - 1 (no jobs) and may spend its next value on it during r - 1's window,
    # then a second one on r: but r's window opens only after r - 1's closed, so it commits to
    # one of the two values before any other value for r exists; each choice leaves one seed.
    (a, hc), (b, hb) = duo
    r = chain.pending_timestamp // R + 2
    first = next_secret(beacon, a, hc, r)
    to_round(chain, beacon, r)
    beacon.reveal(r, next_secret(beacon, b, hb, r), sender=b)
    with ape.reverts("audit_beacon: reveal window over"):
        beacon.reveal(r - 1, first, sender=a)
    assert _ready_seeds(chain, beacon, a, r, [[]], [first, hc.next_after(first)]) == {
        round_seed(_xor(reveal_share(a.address, first), reveal_share(b.address, beacon.members(b).tip)), r)
    }


def test_attack_re_add_after_the_window_closed_without_slot_reuse__counted_again(beacon, chain, deployer, duo):
    # The control of the slot-reuse flaw: while the list has room a re-added member keeps its slot.
    (a, hc), (b, hb) = duo
    c = _next_round(chain, beacon)
    beacon.remove_member(b, sender=deployer)
    to_round(chain, beacon, c + 2)
    assert beacon.required_members(c + 2) == 1
    with ape.reverts("audit_beacon: already a member"):
        beacon.add_member(a, sender=deployer)
    beacon.add_member(b, sender=deployer)
    assert beacon.member_count() == 2
    assert beacon.required_members(c + 4) == 2
    reveal_round(chain, beacon, [(a, hc)], c + 4)
    assert _seed(beacon, c + 4)[0] == ROUND_PENDING
    past_reveal_window(chain, beacon, c + 4)
    assert _seed(beacon, c + 4)[0] == ROUND_DEGRADED  # b's silence degrades it


def test_attack_add_or_self_remove_after_the_first_reveal__required_count_frozen(
    beacon, chain, deployer, accounts, duo
):
    (a, hc), (b, hb) = duo
    r = chain.pending_timestamp // R + 1
    to_round(chain, beacon, r)
    beacon.reveal(r, next_secret(beacon, a, hc, r), sender=a)
    assert tuple(beacon.round_counts(r)) == (1, 2)
    # b, having seen a's value, leaves (effective r + 2) and governance adds a newcomer.
    beacon.remove_member(b, sender=b)
    beacon.add_member(_funded(accounts, deployer), sender=deployer)
    assert tuple(beacon.round_counts(r)) == (1, 2) and beacon.required_members(r + 1) == 2
    past_reveal_window(chain, beacon, r)
    assert _seed(beacon, r) == (ROUND_DEGRADED, ZERO32)


def test_attack_provider_picks_its_round_by_timing_accept_and_submit_or_a_batch__seed_unknown(
    beacon, market, jobs, chain, make_provider, duo, provider, user
):
    # A colluding member knows its own next value; the provider submits at the last second of a
    # round (accept_and_submit, then a batch in the next block of the same round): nothing about
    # the other member's value for its round exists yet, and no reveal for it can land.
    machine_id = make_provider(provider)
    tx = jobs.track(market.create_jobs(
        provider, CPU, [bytes([i + 1]) * 32 for i in range(4)], [UNITS] * 4, PRICE, ACCEPT_WINDOW, COMPLETE_WITHIN,
        MAX_TOKENS, sender=user,
    ))  # fmt: skip
    ids = [e["job_id"] for e in evs(tx, market.JobCreated)]
    jobs.track(market.accept_jobs(ids[1:], [jobs.t(i) for i in ids[1:]], machine_id, sender=provider))
    r = chain.pending_timestamp // R + 2
    to_round(chain, beacon, r, -3)
    tx = jobs.track(market.accept_and_submit(ids[0], jobs.t(ids[0]), machine_id, RESULT, "r", sender=provider))
    assert ev(tx, market.ResultSubmitted)["draw_round"] == r
    tx = jobs.track(market.submit_results(ids[1:], [jobs.t(i) for i in ids[1:]], [RESULT] * 3, ["r"] * 3,
                                          sender=provider))  # fmt: skip
    assert {e["draw_round"] for e in evs(tx, market.ResultSubmitted)} == {r}
    assert chain.blocks.head.timestamp < r * R
    (a, hc), (b, hb) = duo
    with ape.reverts("audit_beacon: round not started"):
        beacon.reveal(r, next_secret(beacon, b, hb, r), sender=b)
    assert _seed(beacon, r) == (ROUND_PENDING, ZERO32) and tuple(beacon.round_counts(r)) == (0, 0)
    assert not any(market.audit_drawn(i, jobs.t(i)) for i in ids)
    xor = reveal_round(chain, beacon, duo, r)
    seed = round_seed(xor, r)
    assert [market.audit_drawn(i, jobs.t(i)) for i in ids] == [drawn_from_seed(seed, i, AUDIT_BPS) for i in ids]


def test_attack_finalize_before_the_round_is_decided_with_the_shortest_window__refused_and_no_stuck_job(
    beacon, market, jobs, chain, deployer, make_provider, keeper, provider, user, params_check
):
    # Governance sets the shortest challenge window allowed (MIN_WINDOW_SECONDS); a window no
    # longer than a round plus the reveal window is refused (it is below the minimum here).
    _audits_on(market, deployer, challenge_window=params_check.MIN_WINDOW_SECONDS())
    assert params_check.MIN_WINDOW_SECONDS() > R + D
    machine_id = make_provider(provider)
    c = _next_round(chain, beacon)
    ids = _submit_jobs(market, jobs, machine_id, provider, user, 2)
    r = c + 1
    assert all(jobs[i]["challenge_end"] > r * R + D for i in ids)
    # The members stay silent (bribed): the round degrades inside the challenge window (a drawn
    # job can no longer be disputed by a colluding user), and at the first second finalize is
    # allowed every job is drawn.
    past_reveal_window(chain, beacon, r)
    assert _seed(beacon, r) == (ROUND_DEGRADED, ZERO32)
    with ape.reverts("job_market: job drawn for audit"):
        market.dispute(ids[1], jobs.t(ids[1]), sender=user)
    chain.mine(timestamp=jobs[ids[0]]["challenge_end"] + 1)
    with ape.reverts("job_market: job drawn for audit"):
        market.finalize_many(ids, [jobs.t(i) for i in ids], sender=keeper)
    with ape.reverts("job_market: job drawn for audit"):
        market.finalize(ids[1], jobs.t(ids[1]), sender=keeper)
    # The drawn jobs have an exit with no transaction: the audit times out into finalize.
    chain.pending_timestamp += MarketParams().audit_timeout + 1
    jobs.track(market.finalize_many(ids, [jobs.t(i) for i in ids], sender=keeper))
    assert all(market.job_status(i) == JobStatus.FINALIZED for i in ids)


def test_attack_set_params_shortens_the_challenge_window_after_submission__job_keeps_its_own(
    beacon, market, jobs, chain, deployer, make_provider, keeper, provider, user, params_check
):
    machine_id = make_provider(provider)
    c = _next_round(chain, beacon)
    (i,) = _submit_jobs(market, jobs, machine_id, provider, user, 1)
    _audits_on(market, deployer, challenge_window=params_check.MIN_WINDOW_SECONDS())
    # The job's challenge_end is in its struct (fixed at submission): the new minimum is no way out.
    chain.mine(timestamp=(c + 1) * R + params_check.MIN_WINDOW_SECONDS() + 1)
    with ape.reverts("job_market: challenge window open"):
        market.finalize(i, jobs.t(i), sender=keeper)


def test_attack_non_member_griefs_or_copies_a_reveal__refused_round_unaffected(beacon, chain, deployer, attacker, duo):
    (a, hc), (b, hb) = duo
    r = chain.pending_timestamp // R + 1
    to_round(chain, beacon, r)
    secret = next_secret(beacon, a, hc, r)
    beacon.reveal(r, secret, sender=a)
    # The attacker replays a's public value, or tries to join, evict or block a member.
    with ape.reverts("audit_beacon: not a member for this round"):
        beacon.reveal(r, secret, sender=attacker)
    with ape.reverts("audit_beacon: not a member"):
        beacon.commit(beacon.members(a).tip, sender=attacker)
    with ape.reverts(MISSING_ROLE):
        beacon.remove_member(b, sender=attacker)
    with ape.reverts(MISSING_ROLE):
        beacon.add_member(attacker, sender=attacker)
    with ape.reverts(MISSING_ROLE):
        beacon.grantRole(beacon.DEFAULT_ADMIN_ROLE(), attacker, sender=attacker)
    assert tuple(beacon.round_counts(r)) == (1, 2)
    beacon.reveal(r, next_secret(beacon, b, hb, r), sender=b)
    assert _seed(beacon, r)[0] == ROUND_READY


def test_attack_round_zero_huge_rounds_and_counts_packing__refused(beacon, chain, duo):
    (a, hc), _ = duo
    secret = next_secret(beacon, a, hc, chain.pending_timestamp // R + 1)
    # Round 0 precedes every window (active_from >= 2); the last rounds are never reachable:
    # max_value is outside the open-ended window and the one before overflows round * ROUND_SECONDS.
    for round_ in (0, 2**256 - 1):
        with ape.reverts("audit_beacon: not a member for this round"):
            beacon.reveal(round_, secret, sender=a)
    with pytest.raises(ape.exceptions.ContractLogicError):
        beacon.reveal(2**256 - 2, secret, sender=a)
    assert _seed(beacon, 0) == (ROUND_DEGRADED, ZERO32)
    assert tuple(beacon.round_counts(2**256 - 1)) == (0, 0)
    # A round's reveals (low 128 bits) never reach its required count from the high bits by
    # themselves: a round whose first reveal froze 2 stays pending with one reveal.
    r = chain.pending_timestamp // R + 1
    reveal_round(chain, beacon, [duo[0]], r)
    assert tuple(beacon.round_counts(r)) == (1, 2) and _seed(beacon, r) == (ROUND_PENDING, ZERO32)
