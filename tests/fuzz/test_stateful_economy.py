"""Stateful fuzz of the token economy: ComputeToken + Settlement + Emissions + PriceFeed (+
OracleHub's operator set) through titanoboa.

A hypothesis RuleBasedStateMachine drives the real contracts; a Python model predicts each call
(success, or the exact revert reason) and its effects:
- token: mints by a minter, burns by holders (burns outside settlement: not customer revenue);
- Settlement: `settle` by the job market (an account here, as JobMarket's `claim` after it
  burned a provider's credited escrow): mints min(usd_net * 10^8 // answer, cap), the cap when the answer is missing or
  older than Settlement's max_age, and counts the burn; refused for anyone else or a cap above
  the burn; `quote` against the model; `set_price_feed` (max_age within its bounds, by the admin);
- time: jumps of up to three epochs (epochs may be finalized late, in a catch-up);
- Emissions: `finalize_epoch` (in order, once over; Settlement's burns since the last
  finalization spread over the epochs being caught up; budget = schedule x R / (R + burned),
  under the cap),
  `submit_rewards` (random leaves signed by 2 of 3 operators; pools with the wash guard; what
  no leaf can claim released back under the cap), `claim` (valid, repeated and tampered
  proofs);
- PriceFeed: rounds of 2 or 3 signed observations whose median moves the price by a random
  amount (the deviation guard, the unanimity escape and the stale-previous escape), with an
  outlier within or beyond the spread guard, round ids that skip or repeat, and rounds too
  soon after the last one (the interval guard).

After every step (invariants):
- totalSupply == total_minted - total_burned == the model's minted - burned;
- Settlement.total_burned == the settlements' burns (the taper's input), every settlement minted
  at most its cap;
- Emissions' total_emitted <= the cap, allocated == the model's, every epoch's claims <= its
  pools, every finalized budget <= the schedule of its epoch;
- the feed's latest round and answer equal the model's.

Run: FUZZ_EXAMPLES=40 .venv/bin/python -m pytest tests/fuzz -q -p no:cacheprovider -p no:ape_test
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import boa
import pytest
from boa.interpret import set_cache_dir, set_search_paths
from boa_deploy import deploy_quorum
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from offchain.chain import reports as R
from offchain.constants import MAX_BPS, ONE_TOKEN
from offchain.economics import rewards as RW
from offchain.params import EmissionsParams, PriceFeedParams

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = Path(os.environ.get("FUZZ_CONTRACTS", REPO / "contracts")).resolve()
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
STEPS = int(os.environ.get("FUZZ_STEPS", "40"))

EPOCH = 3_600
# Small numbers so the cap binds within a run: 1,000 tokens in epoch 0, -5% per epoch, cap 6,000.
EM = EmissionsParams(
    epoch_seconds=EPOCH,
    initial_epoch_emission=1_000 * ONE_TOKEN,
    decay_bps=500,
    emission_cap=6_000 * ONE_TOKEN,
    taper_reference=500 * ONE_TOKEN,
)
PF = PriceFeedParams()
OP_KEYS = [bytes([0x40 + i]) * 32 for i in range(3)]
START_PRICE = 125_000_000  # 1.25 USD, 8 decimals
# Settlement's max_age at deployment (the `set_max_age` rule changes it within [60 s, 7 days]).
SETTLEMENT_MAX_AGE = 2 * EPOCH
MIN_PRICE_AGE, MAX_PRICE_AGE = 60, 7 * 86400
# Outcome counts per rule (FUZZ_STATS=1 prints them, see conftest.py): does the run reach claims?
STATS: Counter = Counter()


def _step(fn):
    """Counts the rules run (and their time) for the step count conftest.py prints."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        t0 = time.perf_counter()
        fn(self, *args, **kwargs)
        STATS["_seconds"] += time.perf_counter() - t0
        STATS["_rules"] += 1
        STATS[f"~rule {fn.__name__}"] += 1

    return wrapper


@functools.cache
def world() -> SimpleNamespace:
    """Deploys and wires the contracts once; every example runs in a snapshot of it."""
    set_cache_dir(str(REPO / ".cache" / "titanoboa"))
    set_search_paths([str(CONTRACTS), str(REPO)] + [p for p in sys.path if p and os.path.isdir(p)])
    admin = str(boa.env.eoa)
    q = deploy_quorum(CONTRACTS, OP_KEYS, PF)
    tok, hub, ops, feed = q.tok, q.hub, q.ops, q.feed
    # Settlement's job market is an account here: it burns escrow it holds and calls `settle`.
    settlement = boa.load(str(CONTRACTS / "Settlement.vy"), tok.address, feed.address, SETTLEMENT_MAX_AGE)
    feed.set_listener(settlement.address)  # as deploy_all: each round pushed to Settlement's quote
    market = str(boa.env.generate_address("market"))
    settlement.set_job_market(market)
    tok.set_minter(settlement.address, True)
    em = boa.load(str(CONTRACTS / "Emissions.vy"), *EM.constructor_args(tok.address, hub.address, settlement.address))
    tok.set_minter(em.address, True)
    # The minter set is final from here, as deploy_all leaves it: Settlement, Emissions and (a
    # local deployment's faucet) the deployer, which the `mint` rule uses.
    tok.seal_minters()
    holders = [str(boa.env.generate_address(f"holder{i}")) for i in range(3)]
    providers = [str(boa.env.generate_address(f"provider{i}")) for i in range(4)]
    outsider = str(boa.env.generate_address("outsider"))
    return SimpleNamespace(
        admin=admin,
        tok=tok,
        hub=hub,
        feed=feed,
        em=em,
        settlement=settlement,
        market=market,
        outsider=outsider,
        ops=ops,
        holders=holders,
        providers=providers,
    )


@pytest.fixture(scope="module", autouse=True)
def deployed():
    # Deploy outside the examples: titanoboa's pytest plugin reverts each hypothesis example,
    # so a deployment made inside the first example would vanish after it.
    yield world()
    world.cache_clear()


@dataclass
class MEpoch:
    budget: int
    scheduled: int
    rewards: RW.EpochRewards | None = None
    work_pool: int = 0
    availability_pool: int = 0
    claimed: int = 0
    claimed_by: set = field(default_factory=set)


class Economy(RuleBasedStateMachine):
    """One example = one run from the deployed state (a titanoboa snapshot, reverted at teardown)."""

    def __init__(self):
        super().__init__()
        self.w = world()
        self._snap = boa.env.anchor()
        self._snap.__enter__()
        w = self.w
        self.minted = int(w.tok.total_minted())
        self.burned = int(w.tok.total_burned())
        self.next_epoch = 0
        self.scheduled = EM.initial_epoch_emission
        # Settlement's burns (the taper reads them, not ComputeToken's) and its max_age.
        self.settle_burned = int(w.settlement.total_burned())
        self.max_age = SETTLEMENT_MAX_AGE
        self.checkpoint = self.settle_burned
        self.allocated = 0
        self.emitted = 0
        self.epochs: dict[int, MEpoch] = {}
        self.round = 0
        self.price = 0
        self.price_updated = 0
        self.genesis = int(w.em.GENESIS())
        self._rule = "?"
        STATS["_examples"] += 1

    def teardown(self):
        snap = getattr(self, "_snap", None)
        if snap is not None:
            snap.__exit__(None, None, None)

    # ------------------------------------------------------------------ helpers
    @property
    def now(self) -> int:
        return int(boa.env.timestamp)

    def expect(self, reason: str | None, fn, *args, sender: str | None = None):
        STATS[f"{self._rule}: {reason or 'ok'}"] += 1
        if reason is None:
            if sender is None:
                return fn(*args)
            with boa.env.prank(sender):
                return fn(*args)
        with boa.reverts(reason):
            if sender is None:
                fn(*args)
            else:
                with boa.env.prank(sender):
                    fn(*args)
        return None

    # ------------------------------------------------------------------ token
    @rule(who=st.integers(0, 2), amount=st.integers(1, 3_000 * ONE_TOKEN))
    @_step
    def mint(self, who, amount):
        self.w.tok.mint(self.w.holders[who], amount)
        self.minted += amount

    @rule(who=st.integers(0, 2), frac=st.integers(1, 100))
    @_step
    def burn(self, who, frac):
        holder = self.w.holders[who]
        amount = int(self.w.tok.balanceOf(holder)) * frac // 100
        if amount == 0:
            return
        with boa.env.prank(holder):
            self.w.tok.burn(amount)
        self.burned += amount

    # ------------------------------------------------------------------ time
    @rule(
        seconds=st.sampled_from([1, 60, EPOCH // 2, EPOCH - 1, EPOCH, EPOCH + 1, 2 * EPOCH, 3 * EPOCH]),
        value=st.sampled_from([10**15, 10**18, 1, 0]),
    )
    @_step
    def advance(self, seconds, value):
        boa.env.timestamp = self.now + seconds
        self._check_quote(value)

    # ------------------------------------------------------------------ emissions
    @rule(offset=st.sampled_from([0, 0, 0, -1, 1]), jump=st.booleans())
    @_step
    def finalize_epoch(self, offset, jump):
        self._rule = "finalize_epoch"
        e = self.next_epoch + offset
        if e < 0:
            return
        if jump:  # bias toward progress: move to just after the next epoch's end
            boa.env.timestamp = max(self.now, self.genesis + (self.next_epoch + 1) * EPOCH + 1)
        now_epoch = (self.now - self.genesis) // EPOCH
        if e < self.next_epoch:
            reason = "emissions: epoch already finalized"
        elif e != self.next_epoch:
            reason = "emissions: finalize epochs in order"
        elif now_epoch <= e:
            reason = "emissions: epoch not over"
        else:
            reason = None
        got = self.expect(reason, self.w.em.finalize_epoch, e)
        if reason is not None:
            return
        burned = (self.settle_burned - self.checkpoint) // (now_epoch - e)
        self.checkpoint += burned
        budget = min(RW.tapered(self.scheduled, burned, EM.taper_reference), EM.emission_cap - self.allocated)
        assert got == budget
        assert budget <= self.scheduled
        self.allocated += budget
        self.epochs[e] = MEpoch(budget=budget, scheduled=self.scheduled)
        self.scheduled = self.scheduled * (MAX_BPS - EM.decay_bps) // MAX_BPS
        self.next_epoch += 1

    @rule(
        pick=st.integers(0, 4),
        work=st.lists(st.integers(0, 10**21), min_size=4, max_size=4),
        avail=st.lists(st.integers(0, 500), min_size=4, max_size=4),
        signers=st.sampled_from([1, 2, 2, 3]),
    )
    @_step
    def submit_rewards(self, pick, work, avail, signers):
        self._rule = "submit_rewards"
        # Mostly a finalized epoch without a root; else an unfinalized or an already posted one.
        open_ = [e for e, m in sorted(self.epochs.items()) if m.rewards is None]
        posted = [e for e, m in sorted(self.epochs.items()) if m.rewards is not None]
        if pick < 3 and open_:
            e = open_[pick % len(open_)]
        elif pick == 3 and posted:
            e = posted[-1]
        else:
            e = self.next_epoch
        rewards = RW.build_rewards(
            e,
            {p: work[i] for i, p in enumerate(self.w.providers)},
            {p: avail[i] for i, p in enumerate(self.w.providers)},
        )
        if rewards is None:
            return
        report = rewards.report(nonce=int(self.w.em.rewards_nonce(e)))
        typed = RW.rewards_typed_data(self.w.em.address, boa.env.evm.patch.chain_id, report)
        sigs = R.sort_signatures([(op.address, R.sign_report(op.key, typed)) for op in self.w.ops[:signers]])
        m = self.epochs.get(e)
        if m is None:
            reason = "emissions: epoch not finalized"
        elif m.rewards is not None:
            reason = "emissions: rewards already posted"
        elif signers < 2:
            reason = "emissions: not enough signatures"
        else:
            reason = None
        self.expect(reason, self.w.em.submit_rewards, RW.report_tuple(report), sigs)
        if reason is not None:
            return
        work_pool, availability_pool = RW.split(m.budget, rewards.total_work, rewards.total_availability, EM)
        self.allocated -= m.budget - work_pool - availability_pool
        m.rewards, m.work_pool, m.availability_pool = rewards, work_pool, availability_pool

    @rule(pick=st.integers(0, 7), who=st.integers(0, 3), tamper=st.sampled_from([False, False, False, True]))
    @_step
    def claim(self, pick, who, tamper):
        self._rule = "claim"
        posted = [e for e, m in sorted(self.epochs.items()) if m.rewards is not None]
        if pick == 7 or not posted:
            e = self.next_epoch + 1
            self.expect("emissions: no rewards for epoch", self.w.em.claim, e, self.w.providers[who], 0, 0, [])
            return
        e = posted[pick % len(posted)]
        m = self.epochs[e]
        provider = self.w.providers[who]
        key = next((p for p in m.rewards.leaves if p.lower() == provider.lower()), None)
        if key is None:
            self.expect("emissions: invalid proof", self.w.em.claim, e, provider, 1, 1, [])
            return
        epoch, p, work, availability, proof = m.rewards.claim_args(key)
        if key in m.claimed_by:
            self.expect("emissions: already claimed", self.w.em.claim, epoch, p, work, availability, proof)
            return
        if tamper:
            self.expect("emissions: invalid proof", self.w.em.claim, epoch, p, work + 1, availability, proof)
            return
        want = RW.claim_amount(
            m.work_pool, m.availability_pool, m.rewards.total_work, m.rewards.total_availability, work, availability
        )
        before = int(self.w.tok.balanceOf(p))
        STATS["claim: ok"] += 1
        got = self.w.em.claim(epoch, p, work, availability, proof)
        assert got == want
        assert int(self.w.tok.balanceOf(p)) - before == want
        m.claimed += want
        m.claimed_by.add(key)
        self.minted += want
        self.emitted += want

    # ------------------------------------------------------------------ settlement
    def _fresh(self) -> bool:
        return self.round > 0 and self.now - self.price_updated <= self.max_age

    @rule(
        who=st.integers(0, 2),
        frac=st.integers(1, 100),
        provider=st.integers(0, 3),
        fee_bps=st.sampled_from([500, 0, 2_000]),
        funded_at=st.sampled_from([None, 80, 100, 120, 200]),
        caller=st.sampled_from(["market"] * 6 + ["outsider"]),
        bad_cap=st.sampled_from([False] * 9 + [True]),
    )
    @_step
    def settle(self, who, frac, provider, fee_bps, funded_at, caller, bad_cap):
        """A provider's claim of its finalized jobs: the holder (a user) paid `escrow` into the
        market at a price of `funded_at`% of today's answer (None: at the start price), the
        market burns it whole and asks Settlement to mint the provider the jobs' USD value less
        the fee at today's answer, capped at the escrow less the fee."""
        self._rule = "settle"
        w = self.w
        holder, p = w.holders[who], w.providers[provider]
        escrow = int(w.tok.balanceOf(holder)) * frac // 100
        if escrow == 0:
            return
        funding_price = START_PRICE if funded_at is None or not self.price else self.price * funded_at // 100
        usd = escrow * funding_price // 10**8  # the jobs' USD value (18 decimals) at funding
        fee = escrow * fee_bps // MAX_BPS
        usd_net, cap = usd - usd * fee_bps // MAX_BPS, escrow - fee
        if bad_cap:
            cap = escrow + 1
        with boa.env.prank(holder):
            w.tok.transfer(w.market, escrow)
        with boa.env.prank(w.market):
            w.tok.burn(escrow)
        self.burned += escrow
        sender = w.market if caller == "market" else w.outsider
        if sender != w.market:
            reason = "settlement: caller is not the job market"
        elif cap > escrow:
            reason = "settlement: cap above burned"
        else:
            reason = None
        price, minted = 0, cap
        if reason is None and self._fresh():
            price, minted = self.price, min(usd_net * 10**8 // self.price, cap)
        before = int(w.tok.balanceOf(p))
        got = self.expect(reason, w.settlement.settle, p, escrow, usd_net, cap, sender=sender)
        if reason is not None:
            return
        STATS[f"settle: {'cap (no fresh price)' if not price else 'below cap' if minted < cap else 'at cap'}"] += 1
        assert got == minted <= cap <= escrow
        assert int(w.tok.balanceOf(p)) - before == minted
        (ev,) = [e for e in w.settlement.get_logs() if type(e).__name__ == "Settled"]
        assert (str(ev.provider), ev.burned, ev.usd_net, ev.cap, ev.minted, ev.price) == (
            p,
            escrow,
            usd_net,
            cap,
            minted,
            price,
        )
        self.minted += minted
        self.settle_burned += escrow

    def _check_quote(self, value: int):
        """Settlement.quote: ceil(usd * 10^8 / answer) on a fresh answer, else its reason (checked
        after every price round and time jump)."""
        self._rule = "quote"
        if value == 0:
            reason = "settlement: usd value is zero"
        elif self.round == 0:
            reason = "price_feed: no price"
        elif not self._fresh():
            reason = "settlement: stale price"
        else:
            reason = None
        got = self.expect(reason, self.w.settlement.quote, value)
        if reason is None:
            assert got == (value * 10**8 + self.price - 1) // self.price

    @rule(
        max_age=st.sampled_from([MIN_PRICE_AGE, EPOCH, 2 * EPOCH, MAX_PRICE_AGE, MIN_PRICE_AGE - 1, MAX_PRICE_AGE + 1]),
        admin=st.sampled_from([True, True, True, False]),
    )
    @_step
    def set_max_age(self, max_age, admin):
        """Governance re-points Settlement at the same feed with another max_age (within its bounds)."""
        self._rule = "set_price_feed"
        if not admin:
            reason = "access_control: account is missing role"
        elif max_age < MIN_PRICE_AGE:
            reason = "settlement: max_age too short"
        elif max_age > MAX_PRICE_AGE:
            reason = "settlement: max_age too long"
        else:
            reason = None
        sender = self.w.admin if admin else self.w.outsider
        self.expect(reason, self.w.settlement.set_price_feed, self.w.feed.address, max_age, sender=sender)
        if reason is None:
            self.max_age = max_age

    # ------------------------------------------------------------------ price
    @rule(
        move_bps=st.sampled_from([0, 100, -100, 1_999, 2_000, 2_001, -2_000, -2_001, 5_000, -5_000]),
        signers=st.sampled_from([1, 2, 2, 3]),
        spread=st.sampled_from([0, 0, 300, 5_000]),
        step=st.sampled_from([1, 1, 1, 2, 0]),
        value=st.sampled_from([10**15, 10**18, 1, 0]),
    )
    @_step
    def price_round(self, move_bps, signers, spread, step, value):
        self._rule = "price_round"
        base = self.price or START_PRICE
        target = max(1, base * (MAX_BPS + move_bps) // MAX_BPS)
        r = self.round + step  # 2: an abandoned id skipped; 0: a replayed id
        now = self.now
        prices = [target] * signers
        if spread and signers >= 2:
            # An outlier below the others: within the spread guard (3%) or far beyond it (50%).
            prices[0] = max(1, target * (MAX_BPS - spread) // MAX_BPS)
        obs, sigs = [], []
        for op, price in zip(self.w.ops[:signers], prices, strict=True):
            o = {"round_id": r, "price": price, "observed_at": now}
            typed = R.price_typed_data(self.w.feed.address, boa.env.evm.patch.chain_id, o)
            obs.append(R.report_tuple(R.PRICE_FIELDS, o))
            sigs.append(R.sign_report(op.key, typed))
        answer = sorted(prices)[(signers - 1) // 2]
        reason = None
        lo, hi = min(prices), max(prices)
        if r <= self.round:
            reason = "price_feed: wrong round"
        elif self.round > 0 and now < self.price_updated + PF.min_round_interval:
            reason = "price_feed: too soon after the last round"
        elif signers < 2:
            reason = "price_feed: not enough observations"
        elif (hi - lo) * MAX_BPS > lo * PF.max_spread_bps:
            reason = "price_feed: observations disagree"
        elif self.round > 0 and signers < 3 and now <= self.price_updated + PF.max_age:
            diff = abs(answer - self.price)
            if diff * MAX_BPS > self.price * PF.max_deviation_bps:
                reason = "price_feed: deviation too large"
        self.expect(reason, self.w.feed.submit_round, r, obs, sigs)
        if reason is None:
            self.round, self.price, self.price_updated = r, answer, now
        self._check_quote(value)

    # ------------------------------------------------------------------ minters
    @rule(
        call=st.sampled_from(["set_minter", "unset_minter", "seal", "transfer_ownership"]),
        owner=st.sampled_from([True, True, False]),
        who=st.integers(0, 2),
    )
    @_step
    def minters(self, call, owner, who):
        """The minter set is sealed: the owner can neither add nor remove a minter nor seal again;
        anyone else is refused as not the owner. Handing ownership over (on a throwaway branch)
        makes the new owner no minter and drops the old owner's flag."""
        self._rule = "minters"
        tok, holder = self.w.tok, self.w.holders[who]
        sender = self.w.admin if owner else self.w.outsider
        reason = "compute_token: minters sealed" if owner else "ownable: caller is not the owner"
        if call == "set_minter":
            self.expect(reason, tok.set_minter, holder, True, sender=sender)
        elif call == "unset_minter":
            self.expect(reason, tok.set_minter, self.w.settlement.address, False, sender=sender)
        elif call == "seal":
            self.expect(reason, tok.seal_minters, sender=sender)
        elif owner:
            with boa.env.anchor():
                self.expect(None, tok.transfer_ownership, holder, sender=sender)
                assert tok.owner() == holder and not tok.is_minter(holder) and not tok.is_minter(self.w.admin)
                assert tok.minters_sealed()
                with boa.env.prank(holder), boa.reverts("compute_token: minters sealed"):
                    tok.set_minter(holder, True)
        else:
            self.expect("ownable: caller is not the owner", tok.transfer_ownership, holder, sender=sender)
        assert tok.minters_sealed() and tok.owner() == self.w.admin
        for m in (self.w.settlement.address, self.w.em.address, self.w.admin):
            assert tok.is_minter(m), f"minter {m} lost its role"
        assert not tok.is_minter(holder)

    # ------------------------------------------------------------------ invariants
    @invariant()
    def supply(self):
        tok = self.w.tok
        assert int(tok.total_minted()) == self.minted
        assert int(tok.total_burned()) == self.burned
        assert int(tok.totalSupply()) == self.minted - self.burned

    @invariant()
    def settlement(self):
        st_ = self.w.settlement
        assert int(st_.total_burned()) == self.settle_burned <= self.burned
        assert int(st_.max_age()) == self.max_age

    @invariant()
    def emissions(self):
        em = self.w.em
        assert int(em.total_emitted()) == self.emitted <= EM.emission_cap
        assert int(em.allocated()) == self.allocated <= EM.emission_cap
        assert int(em.next_epoch()) == self.next_epoch
        for m in self.epochs.values():
            assert m.budget <= m.scheduled
            assert m.claimed <= m.work_pool + m.availability_pool <= m.budget

    @invariant()
    def price(self):
        assert int(self.w.feed.latest_round()) == self.round
        if self.round:
            assert int(self.w.feed.latestRoundData()[1]) == self.price


Economy.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    # FUZZ_SHRINK=0 reports the first failing run as found (shrinking can take minutes).
    phases=[p for p in Phase if p != Phase.shrink or os.environ.get("FUZZ_SHRINK", "1") != "0"],
    suppress_health_check=list(HealthCheck),
)

TestEconomyStateful = Economy.TestCase
