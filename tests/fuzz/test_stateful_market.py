"""Stateful fuzz of ComputeToken + ProviderRegistry + JobMarket + Settlement (+ PriceFeed, AuditBeacon) in titanoboa.

A hypothesis RuleBasedStateMachine drives the real contracts, wired as deploy_all wires them
(JobMarketParams checks JobMarket's parameters, Settlement mints and the token's minter set is
sealed, JobMarket is the registry's set-once `job_market` (locks, unlocks and slashes
collateral and writes the providers' reputation there), JobMarket holds MARKET_DUST, JobMarket
draws its audits from AuditBeacon, whose members are the price operators). Actors: three
providers (five machines of two GPU classes), three users, an outsider (no role: challenges, keeps, tries what
it should not), an external slasher (SLASHER_ROLE on the registry, as OracleHub), the admin
(pauser, attester, verifier; it never approved the market, so its bonds fail on allowance) and
a permit signer (a user with a private key that never approved the market: it pays through
`create_job_with_permit`).

A Python model predicts every call: each rule asserts that the call succeeds when the model says
it should, and otherwise reverts with exactly the reason (and in the order of checks) the model
expects, then applies the model's effects. Rules: stake, request_unstake (relative to free
stake), withdraw, offers, machine status, attestations (with expiry) and exit, create_job(s)
(targeted / open, sized relative to the creator's balance, overflowing sizes too, and "dust" jobs
one unit below min_reputation_usd or exactly at it), accept(_jobs), accept_and_submit,
create_job_with_permit (valid, replayed, expired, wrong-amount signatures), submit_result,
dispute (by the job's user; anyone else is refused), post_verdict (valid / invalid, on
disputes and on drawn Submitted jobs: a sampled audit needs no opening transaction, the draw
puts the job in audit), finalize(_many), claim (by anyone, for anyone), expire,
cancel, external slashes, `registry_guards` (nobody but the market locks / unlocks collateral
or writes reputation, the market cannot be set again), pause / unpause, parameter presets
(min_reputation_usd 0, $1, $5 and its $1,000,000 bound; one above it is refused; a challenge window that ends before the
audit draw is final is refused),
`advance` (a job's natural next steps), `batch_lifecycle` (one provider's batch from create_jobs
to finalize_many and a claim: runs of one provider's jobs are credited at once, and the claim
releases their collateral and counts them),
`price_round` (a PriceFeed round of 2 or 3 of the 3 operators' signed observations moving the
price within the feed's 20% deviation guard, sometimes beyond it: refused unless all three sign) and
`price_goes_stale` (time moves onto Settlement's max_age after the last round, or one second
past it: jobs cannot be created on a stale price and claims settle at their cap), time jumps onto,
one second before and one after every live deadline (accept_by, complete_by, challenge_end,
a dispute's audit_deadline, a drawn job's challenge_end + audit_timeout, unbonding release,
attestation expiry), and the beacon: `reveal_round` (the
members' services reveal for a round jobs are drawn from, at its start, at the last second of
its window or one second late, sometimes with one member silent), `reveal` (one reveal: the
next chain value, the last one again, one too far or junk, for a jobs' round, the current,
next, last revealed or an old round, early, on time or late), `beacon_commit` (a new chain, or
an empty commitment, also by non-members), `beacon_membership` (add / remove by governance,
leave by the member, refused for an outsider) and `warp_to_round` (onto a round's start, the
last second of its reveal window and one second past it). Arguments also come malformed:
unknown job ids, structs with one field changed, wrong callers, machines, classes and windows,
`max_tokens` one below the escrow.

Jobs are priced in USD: offers and open prices are USD per compute unit (18 decimals); the
model mirrors Settlement.quote (tokens per unit = ceil(price * 10^8 / answer), times the units)
and its refusals (no round, stale answer). Finalization moves no token: it credits the provider
(escrow, USD value - fee, escrow - fee); `claim` (anyone, for any provider, also while paused:
"nothing to claim" when nothing is credited) burns the credited escrow and Settlement mints the
provider min(usd_net * 10^8 // answer, cap) at the answer then (the cap when stale or missing).

Sampled audits: the model mirrors `audit_rate` (from its own reputation counters) and
`required_collateral` in integer math, and draws audits itself from its own AuditBeacon: the
members (each with its own state: tip, pending chain, window, last round), the member list, and
per revealed round the XOR of the reveals and the members required. Every member keeps a
hash chain per commitment (offchain/chain/beacon.py HashChain); a result submitted at T is
drawn from round T // ROUND_SECONDS + 1; a round is ready once every member required revealed
(seed keccak256(abi_encode(XOR, round)), a job drawn when keccak256(abi_encode(seed, id)) %
10000 < audit_bps), degraded when its reveal window closed first (every job with a non-zero
audit rate drawn), pending before. The `audit_drawn` and `draw_seed` views are only compared
with the model's draw, never used to decide it. Each run starts up to 11.6 days later than the
last (`seed_jobs`' offset), so its rounds, and their seeds, differ.

After every step (invariants):
- every token balance, totalSupply, stakes, machine states, live job commitments, disputes and
  beacon members equal the model's (read from storage, see RawState; a round's reveals after
  each reveal; the views are compared at teardown);
- JobMarket's token balance == payments of live jobs + bonds of open disputes + the credited
  escrow not yet claimed + MARKET_DUST; every provider's `accrued` equals the model's credit;
- ComputeToken: totalSupply == total_minted - total_burned == the model's, and every mint after
  deployment is a claim's settlement (the model's runs): nothing is minted for a Failed, Cancelled
  or Expired job;
- every Finalized job is in exactly one provider's credit or one claim (one Settled event per
  claim, compared with the model's after each call; finalization logs none), never a Failed
  one; each claim burned its jobs' escrow and minted <= cap == escrow - fees;
- Settlement.total_burned == the escrow of every claimed job;
- ProviderRegistry's token balance == sum of staked + unbonding; locked == the collateral of the
  provider's live jobs (as raised at acceptance for its audit rate) and of its Finalized jobs not
  claimed yet (the claim releases it), even after a slash left
  `staked` below it (the registry then frees nothing until the provider restakes above it);
- totalSupply == minted - burned (slashes to nobody burn);
- every provider's reputation counters in ProviderRegistry (completed, failed, expired,
  audits_passed, disputes_won, disputes_lost) equal the model's (its audit rate and so every
  job's audit_bps and collateral follow from them); `completed` == the provider's claimed Finalized
  jobs that were worth at least min_reputation_usd when settled (dust does not end probation);
- invalid work is never paid: no Failed job is credited or claimed, an invalid verdict credits
  nothing, and the user gets back its payment, its bond (it is the only possible challenger)
  and what the slash pays it (compensation, challenger's reward);
- no slash exceeds the stake: after every verdict, expiry and external slash, the Slashed events
  take from each provider at most its staked + unbonding before the call;
- every live job has an exit: a deadline at most the longest window away, after which anyone
  can expire or finalize it; a Submitted job's draw round closes its reveal window before its
  challenge window ends, so from then on a drawn job is in audit (status still Submitted, no
  dispute entry: verdicts until challenge_end + audit_timeout, at most one more window away,
  finalize after that as a timed-out audit), an undrawn job finalized;
- every JobFinalized event is the model's (job, provider, USD value, escrow, fee, and
  `audit_timed_out`: true exactly for a drawn job or a dispute finalized with no verdict);
- the draw cannot be escaped by withholding: a Finalized job with a non-zero audit rate whose
  round AuditBeacon holds degraded (or ready with a seed that selects it) went through its
  audit (a verdict, or a timed-out sampled audit or dispute).
`probe_deadline` checks the exits at the exact boundaries on throwaway branches: at a deadline
the action it closes (accept / submit / dispute / verdict / withdraw at release) still works
and the exit reverts; one second later the reverse (a drawn job: at challenge_end + 1 finalize
still reverts, until challenge_end + audit_timeout + 1, when it finalizes as a timed-out audit),
and the exit ends the job even while paused;
and a draw round's edges (reveals refused one second before its start and one second after its
window: pending, then degraded; accepted at its start and at the window's last second).
`drain` (a rule, and again at teardown) jumps past every deadline, ends every job, unstakes and
withdraws all stake, and claims every credit: the registry must then hold exactly zero tokens
and JobMarket its dust.

Run: FUZZ_EXAMPLES=40 .venv/bin/python -m pytest tests/fuzz -q -p no:cacheprovider -p no:ape_test
FUZZ_STEPS: steps per example (50); FUZZ_STATS=1: outcome counts and rules/s; FUZZ_SHRINK=0: no
shrinking; FUZZ_CONTRACTS=dir: fuzz another copy of contracts/ (a mutant: it must fail).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import boa
import eth_abi
import pytest
from boa.contracts.base_evm_contract import BoaError
from boa.interpret import set_cache_dir, set_search_paths
from boa_deploy import deploy_beacon, deploy_quorum
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from offchain.chain import reports as R
from offchain.chain.beacon import (
    ROUND_DEGRADED,
    ROUND_PENDING,
    ROUND_READY,
    HashChain,
    drawn_from_seed,
    reveal_share,
    round_seed,
)
from offchain.chain.deploy import MARKET_DUST
from offchain.chain.jobs import check_job
from offchain.chain.orders import (
    order_batch_id,
    order_batch_tuple,
    order_id,
    order_tuple,
    sign_order,
    sign_order_batch,
)
from offchain.constants import JOB_FIELDS, MAX_BPS, ONE_TOKEN, REPUTATION_FIELDS, JobStatus, MachineStatus
from offchain.params import GPU_CLASSES, UNBONDING_PERIOD_SECONDS, MarketParams, PriceFeedParams
from offchain.sim.market_boa import deploy_market

REPO = Path(__file__).resolve().parents[2]
# FUZZ_CONTRACTS points the fuzzer at another copy of contracts/ (e.g. a mutant, to check that it is caught).
CONTRACTS = Path(os.environ.get("FUZZ_CONTRACTS", REPO / "contracts")).resolve()
ZERO = "0x" + "00" * 20
ZERO32 = b"\x00" * 32
MAX_UINT = 2**256 - 1
MAX_WINDOW = 30 * 86400  # JobMarket.MAX_WINDOW_SECONDS
NO_EXPIRY = 2**32 - 1  # ProviderRegistry.NO_EXPIRY: attestation of a machine set Active by hand
MAX_TRUSTED_AFTER_JOBS = 65_535  # JobMarketParams.MAX_TRUSTED_AFTER_JOBS
MAX_REPUTATION_USD = 10**24  # JobMarketParams.MAX_REPUTATION_USD
REP = {name: i for i, name in enumerate(REPUTATION_FIELDS)}
# The permit signer's key (a throwaway key: it signs EIP-2612 permits on the test chain only).
SIGNER_KEY = keccak(b"gpunet stateful fuzz permit signer")
# The order user's key: it signs job orders (EIP-712, JobMarket's domain) and approved JobMarket.
ORDER_KEY = keccak(b"gpunet stateful fuzz order user")
PERMIT_TYPEHASH = keccak(b"Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")

CPU = 1
H100 = 10
UNKNOWN_CLASS = 3  # never added to the registry's class table here
# A struct for an unknown id when no job exists yet (JOB_FIELDS order).
UNKNOWN_JOB = (ZERO, ZERO, 0, CPU, ZERO32, 1, 1, 1, 1, 0, 0, 60, 0, ZERO32, 0, 0, 0)
CLASS_MIN_STAKE = {c.class_id: c.min_stake_tokens * ONE_TOKEN for c in GPU_CLASSES if c.class_id in (CPU, H100)}

# The price: PriceFeed answers (USD per token, 8 decimals) from 3 operators, threshold 2;
# Settlement refuses an answer older than a day (its max_age here).
PF = PriceFeedParams()
PRICE_DECIMALS = 8
SETTLEMENT_MAX_AGE = 86400
OP_KEYS = [keccak(f"gpunet market fuzz operator {i}".encode()) for i in range(3)]
START_PRICE = 125_000_000  # 1.25 USD
# Rounds keep the answer within these bounds (jobs stay sized in a sane range of tokens).
MIN_ANSWER, MAX_ANSWER = 10**6, 10**11

# The audit draw: AuditBeacon rounds of 40 s, reveals accepted for 20 s from a round's start (so
# a draw is final 60 s after a submission at the latest: JobMarket refuses a challenge window of
# 60 s, its minimum, and takes 61). The three price operators are its members, each with a hash
# chain per commitment; a fourth candidate (`spare`) joins and leaves through the membership rules.
ROUND_SECONDS, REVEAL_WINDOW = 40, 20
MAX_MEMBERS = 16  # AuditBeacon.MAX_MEMBERS
CHAIN_LENGTH = 256  # reveals per commitment (an example makes far fewer)
OPEN_ENDED = MAX_UINT  # AuditBeacon._OPEN_ENDED: a member's window with no end
SPARE_KEY = keccak(b"gpunet market fuzz spare beacon member")
ROUND_NAMES = {ROUND_PENDING: "pending", ROUND_READY: "ready", ROUND_DEGRADED: "degraded"}

# (provider index, class, gpu count): P0 and P1 run both classes, P2 only CPU.
MACHINES = ((0, CPU, 1), (0, H100, 1), (1, CPU, 2), (1, H100, 1), (2, CPU, 1))
# USD per compute unit (18 decimals).
OFFERS = {(0, CPU): 10**15, (0, H100): 5 * 10**15, (1, CPU): 2 * 10**15, (1, H100): 4 * 10**15, (2, CPU): 10**15}
PROVIDER_MINT = 2_000 * ONE_TOKEN
PROVIDER_STAKE = 500 * ONE_TOKEN
USER_MINT = 1_000 * ONE_TOKEN

LIVE = (JobStatus.OPEN, JobStatus.RUNNING, JobStatus.SUBMITTED, JobStatus.AUDIT)
TERMINAL = (JobStatus.FINALIZED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED)

# Parameter sets `set_params` switches between (0-2 and 8 valid, 3-7 and 9 invalid). All keep audits on for
# some providers, so draws happen: the default (new providers 30%, established 10%, +20% per bad
# job, 90% detection: collateral 2.7x / 10.1x the payment), and the two below.
PARAM_PRESETS = (
    MarketParams(),
    # Highest fee, tiny collateral, shortest windows, no bond, whole collateral to the challenger.
    # A new provider is audited on 20% (collateral 4x the payment at 100% detection) until its
    # first completed job, then never (audit_bps 0: the creation-time floor is the collateral);
    # each failed or expired job adds 50% (collateral 1x).
    MarketParams(
        fee_bps=2_000,
        collateral_bps=1,
        challenge_window=ROUND_SECONDS + REVEAL_WINDOW + 1,  # the shortest that outlasts the draw
        audit_timeout=60,
        min_accept_window=60,
        max_accept_window=MAX_WINDOW,
        min_complete_within=60,
        max_complete_within=MAX_WINDOW,
        dispute_bond_bps=0,
        min_dispute_bond=0,
        noshow_penalty_bps=MAX_BPS,
        user_compensation_bps=0,
        challenger_reward_bps=MAX_BPS,
        base_audit_bps=0,
        new_provider_audit_bps=2_000,
        trusted_after_jobs=1,
        bad_record_audit_bps=5_000,
        detection_bps=MAX_BPS,
        min_reputation_usd=0,  # every finalized job counts, dust included
    ),
    # No fee, 3x collateral, long windows, all of a slash burned. No new-provider phase
    # (trusted_after_jobs 0): 25% at the lowest detection (50%), collateral 7x the payment; one
    # bad job and every job is audited (collateral: the 3x floor).
    MarketParams(
        fee_bps=0,
        collateral_bps=30_000,
        challenge_window=MAX_WINDOW,
        audit_timeout=MAX_WINDOW,
        min_accept_window=3600,
        max_accept_window=86400,
        min_complete_within=120,
        max_complete_within=2 * 86400,
        dispute_bond_bps=MAX_BPS,
        min_dispute_bond=10 * ONE_TOKEN,
        noshow_penalty_bps=0,
        user_compensation_bps=0,
        challenger_reward_bps=0,
        base_audit_bps=2_500,
        new_provider_audit_bps=MAX_BPS,
        trusted_after_jobs=0,
        bad_record_audit_bps=MAX_BPS,
        detection_bps=MAX_BPS // 2,
        min_reputation_usd=5 * 10**18,  # only jobs worth $5 or more count
    ),
    MarketParams(fee_bps=2_001),  # "job_market: fee too high"
    MarketParams(new_provider_audit_bps=MAX_BPS + 1),  # "job_market: audit rate above 100%"
    MarketParams(trusted_after_jobs=MAX_TRUSTED_AFTER_JOBS + 1),  # "job_market: trusted_after_jobs too high"
    MarketParams(detection_bps=MAX_BPS // 2 - 1),  # "job_market: detection rate below 50%"
    MarketParams(min_reputation_usd=MAX_REPUTATION_USD + 1),  # "job_market: reputation threshold too high"
    # Valid: the threshold at its bound ($1,000,000 a job: no job here counts; probation never ends).
    MarketParams(min_reputation_usd=MAX_REPUTATION_USD),
    # JobMarketParams takes it, JobMarket does not: "job_market: challenge window ends before the audit draw".
    MarketParams(challenge_window=ROUND_SECONDS + REVEAL_WINDOW),
)

STEPS = int(os.environ.get("FUZZ_STEPS", "50"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))

# Outcome counts per action (printed with FUZZ_STATS=1, see conftest.py).
STATS: Counter = Counter()


################################################################
#                     DEPLOYMENT (once)                         #
################################################################


class RawState:
    """Reads what the invariants compare straight from contract storage: a titanoboa call costs
    ~0.3 ms of Python, a storage read ~15 us, and the invariants run after every step. Slots come
    from the compiler's storage layout; packed words are decoded as the contracts document them
    (registry `_bond` = staked << 128 | locked; machine word: status at bit 176, attested_until at
    bit 224; job slot = commitment with the status in the low byte). The teardown compares the same values through the
    contracts' own view functions (`_check_views`), so a layout change fails loudly."""

    def __init__(self, tok, reg, mk, settlement, beacon):
        self.tok, self.reg, self.mk, self.st, self.bc = (
            bytes.fromhex(str(c.address)[2:]) for c in (tok, reg, mk, settlement, beacon)
        )

        def slots(c):
            out = {}

            def walk(d):
                for k, v in d.items():
                    if isinstance(v, dict) and "slot" in v:
                        out[k] = v["slot"]
                    elif isinstance(v, dict):
                        walk(v)

            walk(c.compiler_data.storage_layout["storage_layout"])
            return out

        self.s_tok, self.s_reg, self.s_mk, self.s_st = slots(tok), slots(reg), slots(mk), slots(settlement)
        self.s_bc = slots(beacon)

    @staticmethod
    def _key(slot: int, key) -> int:
        k = int(key, 16) if isinstance(key, str) else key
        return int.from_bytes(keccak(slot.to_bytes(32, "big") + k.to_bytes(32, "big")), "big")

    def _get(self, contract: bytes, slot: int) -> int:
        return boa.env.evm.vm.state.get_storage(contract, slot)

    def balance(self, a) -> int:
        return self._get(self.tok, self._key(self.s_tok["balanceOf"], a))

    def total_supply(self) -> int:
        return self._get(self.tok, self.s_tok["totalSupply"])

    def token_totals(self) -> tuple[int, int]:
        """ComputeToken (total_minted, total_burned): one word, minted in the high 128 bits."""
        w = self._get(self.tok, self.s_tok["_totals"])
        return w >> 128, w & (2**128 - 1)

    def settlement_burned(self) -> int:
        return self._get(self.st, self.s_st["total_burned"])

    def market(self, name: str) -> int:
        return self._get(self.mk, self.s_mk[name])

    def accrued(self, p) -> tuple[int, int, int]:
        """JobMarket.accrued(p) from storage: the escrow to burn (`_pending`'s low 104 bits), and
        the cumulative credit (`_credited` = usd_net << 128 | cap) less the same word at the last
        claim (`_claimed`)."""
        cred, done, m = self._word(p, "_credited"), self._word(p, "_claimed"), 2**128 - 1
        return (
            self._word(p, "_pending") & (2**104 - 1),
            (cred >> 128) - (done >> 128),
            (cred & m) - (done & m),
        )

    def pending(self, p) -> tuple[int, int]:
        """JobMarket `_pending[p]` from storage: (collateral to release, jobs to count as completed)
        at p's next claim (bits 104-207 and 208-254)."""
        w = self._word(p, "_pending")
        return (w >> 104) & (2**104 - 1), (w >> 208) & (2**47 - 1)

    def _word(self, p, name: str) -> int:
        return self._get(self.mk, self._key(self.s_mk[name], p))

    def job(self, job_id: int) -> tuple[int, bytes]:
        word = self._get(self.mk, self._key(self.s_mk["_jobs"], job_id))
        return word & 255, ((word >> 8) << 8).to_bytes(32, "big")

    def dispute(self, job_id: int) -> tuple:
        base = self._key(self.s_mk["disputes"], job_id)
        who = self._get(self.mk, base)
        return (
            to_checksum_address(who.to_bytes(20, "big")),
            self._get(self.mk, base + 1),
            self._get(self.mk, base + 2),
        )

    def stakes(self, p) -> tuple:
        bond = self._get(self.reg, self._key(self.s_reg["_bond"], p))
        return (
            bond >> 128,
            bond & (2**128 - 1),
            self._get(self.reg, self._key(self.s_reg["unbonding"], p)),
            self._get(self.reg, self._key(self.s_reg["unbonding_release"], p)),
        )

    def required_stake(self, p) -> int:
        return self._get(self.reg, self._key(self.s_reg["required_stake"], p))

    def reputation(self, p) -> tuple:
        """ProviderRegistry.reputation: six 40-bit counters packed low to high in REPUTATION_FIELDS order."""
        w = self._get(self.reg, self._key(self.s_reg["_reputation"], p))
        return tuple((w >> (40 * i)) & (2**40 - 1) for i in range(len(REPUTATION_FIELDS)))

    def allowance(self, owner, spender) -> int:
        return self._get(self.tok, self._key(self._key(self.s_tok["allowance"], owner), spender))

    def nonce(self, owner) -> int:
        return self._get(self.tok, self._key(self.s_tok["nonces"], owner))

    def member(self, a) -> tuple:
        """AuditBeacon.members(a): (tip, pending_tip, pending_from, active_from, active_until, last_round)."""
        base = self._key(self.s_bc["members"], a)
        words = [self._get(self.bc, base + i) for i in range(6)]
        return (words[0].to_bytes(32, "big"), words[1].to_bytes(32, "big"), *words[2:])

    def beacon_round(self, r: int) -> tuple[bytes, int, int]:
        """AuditBeacon's (round_xor, reveals, required) of round r (required is 0 before its first reveal)."""
        counts = self._get(self.bc, self._key(self.s_bc["_round_counts"], r))
        xor = self._get(self.bc, self._key(self.s_bc["round_xor"], r)).to_bytes(32, "big")
        return xor, counts % 2**128, counts >> 128

    def machine(self, mid: int) -> tuple[int, int]:
        """(status, attested_until) from the packed machine word."""
        core = self._get(self.reg, self._key(self.s_reg["_machine_core"], mid))
        return (core >> 176) & 255, core >> 224


class _NoStorageDump:
    def dump(self):
        return {}


@functools.cache
def world() -> SimpleNamespace:
    """Deploys and wires the contracts and the actors once; every example runs in a snapshot of it."""
    set_cache_dir(str(REPO / ".cache" / "titanoboa"))
    set_search_paths([str(CONTRACTS), str(REPO)] + [p for p in sys.path if p and os.path.isdir(p)])
    admin = str(boa.env.eoa)
    q = deploy_quorum(CONTRACTS, OP_KEYS, PF)
    tok, reg, hub, ops, feed = q.tok, q.reg, q.hub, q.ops, q.feed
    # As deploy_all: Settlement mints, JobMarket settles through it and holds MARKET_DUST.
    settlement = boa.load(str(CONTRACTS / "Settlement.vy"), tok.address, feed.address, SETTLEMENT_MAX_AGE)
    feed.set_listener(settlement.address)  # as deploy_all: each round pushed to Settlement's quote
    # Parameter bounds live in a pure checker contract (JobMarketParams), passed to JobMarket.
    params_check = boa.load(str(CONTRACTS / "JobMarketParams.vy"))
    # The audit draw (as deploy_all: the operators are its members, each commits its first chain).
    commitments = {op.address: member_chain(op.key, 0).commitment for op in ops}
    beacon = deploy_beacon(CONTRACTS, ROUND_SECONDS, REVEAL_WINDOW, commitments)
    spare = Account.from_key(SPARE_KEY).address
    member_keys = {op.address: op.key for op in ops} | {spare: SPARE_KEY}
    mk = deploy_market(
        CONTRACTS,
        tok.address,
        reg.address,
        settlement.address,
        params_check.address,
        beacon.address,
        MarketParams().as_tuple(),
    )
    settlement.set_job_market(mk.address)
    tok.set_minter(settlement.address, True)
    # The minter set is final, as deploy_all leaves it (the deployer stays a minter: a local faucet).
    tok.seal_minters()
    tok.mint(mk.address, MARKET_DUST)
    # A bystander: receives external slashes, holds nothing else.
    bystander = str(boa.env.generate_address("bystander"))

    providers = [str(boa.env.generate_address(f"provider{i}")) for i in range(3)]
    users = [str(boa.env.generate_address(f"user{i}")) for i in range(3)]
    outsider = str(boa.env.generate_address("outsider"))
    slasher = str(boa.env.generate_address("slasher"))
    second = str(boa.env.generate_address("provider0 second"))  # provider 0's other address: no role, no tokens
    signer = Account.from_key(SIGNER_KEY).address

    # Set once, not a role: the market alone locks / unlocks collateral and records reputation,
    # and slashes without SLASHER_ROLE (which OracleHub, here `slasher`, still needs).
    reg.set_job_market(mk.address)
    assert reg.job_market() == mk.address and not reg.hasRole(reg.SLASHER_ROLE(), mk.address)
    assert not hasattr(reg, "COLLATERAL_ROLE")
    reg.grantRole(reg.SLASHER_ROLE(), slasher)
    reg.grantRole(reg.ATTESTER_ROLE(), admin)
    mk.grantRole(mk.PAUSER_ROLE(), admin)
    mk.grantRole(mk.VERIFIER_ROLE(), admin)
    for c in GPU_CLASSES:
        if c.class_id in CLASS_MIN_STAKE:
            reg.set_gpu_class(c.class_id, c.name, CLASS_MIN_STAKE[c.class_id], True)

    for a in providers + users + [outsider]:
        tok.mint(a, PROVIDER_MINT if a in providers else USER_MINT)
        with boa.env.prank(a):
            tok.approve(reg.address, MAX_UINT)
            tok.approve(mk.address, MAX_UINT)
    tok.mint(signer, USER_MINT)  # no approval: it pays with permits
    orderer = Account.from_key(ORDER_KEY).address
    tok.mint(orderer, USER_MINT)
    with boa.env.prank(orderer):
        tok.approve(mk.address, MAX_UINT)
    machines = {}
    for pi, cls, gpus in MACHINES:
        p = providers[pi]
        with boa.env.prank(p):
            mid = reg.register(cls, gpus, 16_384, f"http://127.0.0.1:9000/{pi}/{cls}")
        reg.set_machine_status(mid, int(MachineStatus.ACTIVE))
        machines[mid] = (p, cls, gpus)
    for (pi, cls), price in OFFERS.items():
        with boa.env.prank(providers[pi]):
            reg.set_offer(cls, price)
    for p in providers:
        with boa.env.prank(p):
            reg.stake(PROVIDER_STAKE)
    for c in (tok, reg, mk, settlement, feed, hub, params_check, beacon):
        # titanoboa puts repr(contract), with a dump of all its storage, in every revert, at a few
        # ms each; half of the calls here revert on purpose. Failure messages lose the dump only.
        c._storage = _NoStorageDump()
    # Examples start at the first round the members' commitments apply to (jobs submitted from
    # here on are drawn from rounds they all must reveal in).
    boa.env.timestamp = max(boa.env.timestamp, (beacon.current_round() + 2) * ROUND_SECONDS)
    return SimpleNamespace(
        tok=tok,
        reg=reg,
        mk=mk,
        settlement=settlement,
        params_check=params_check,
        beacon=beacon,
        candidates=[op.address for op in ops] + [spare],
        member_keys=member_keys,
        feed=feed,
        hub=hub,
        ops=ops,
        chain_id=int(feed.eip712Domain()[3]),
        raw=RawState(tok, reg, mk, settlement, beacon),
        admin=admin,
        bystander=bystander,
        providers=providers,
        users=users,
        outsider=outsider,
        slasher=slasher,
        second=second,
        signer=signer,
        orderer=orderer,
        permit_domain=bytes(tok.DOMAIN_SEPARATOR()),
        machines=machines,
    )


@pytest.fixture(scope="module", autouse=True)
def deployed():
    # Deploy outside the examples: titanoboa's pytest plugin reverts each hypothesis example
    # (and keeps fixture state for the fixture's lifetime), so a deployment made inside the
    # first example would vanish after it.
    yield world()
    world.cache_clear()  # the plugin reverts the deployment with this fixture


################################################################
#                           MODEL                              #
################################################################


@dataclass
class MJob:
    id: int
    f: dict
    status: JobStatus
    # (challenger, bond, audit_deadline) while disputed (Audit). A sampled audit has none: a drawn
    # Submitted job is in audit until challenge_end + audit_timeout (MarketMachine._audit_deadline).
    dispute: tuple | None = None
    # Finalized and worth at least min_reputation_usd then, and claimed: counted in the provider's
    # `completed`.
    counted: bool = False
    # Went through its audit: disputed, or drawn and then a verdict or the sampled audit's timeout.
    audited: bool = False

    def tup(self) -> tuple:
        return tuple(self.f[k] for k in JOB_FIELDS)

    def deadline(self) -> int:
        """Last second of the current waiting state (a Submitted job's challenge window, drawn or
        not); the exit opens one second later, for a drawn job at MarketMachine._exit_deadline."""
        return {
            JobStatus.OPEN: self.f["accept_by"],
            JobStatus.RUNNING: self.f["complete_by"],
            JobStatus.SUBMITTED: self.f["challenge_end"],
            JobStatus.AUDIT: self.dispute[2] if self.dispute else 0,
        }[self.status]


@dataclass
class MMachine:
    provider: str
    cls: int
    gpus: int
    status: MachineStatus
    # Last second the attestation lets it take jobs (set_machine_status(Active): NO_EXPIRY).
    attested_until: int


@dataclass
class MMember:
    """AuditBeacon.Member."""

    tip: bytes = ZERO32
    pending_tip: bytes = ZERO32
    pending_from: int = 0
    active_from: int = 0
    active_until: int = 0
    last_round: int = 0

    def tup(self) -> tuple:
        return (self.tip, self.pending_tip, self.pending_from, self.active_from, self.active_until, self.last_round)


@dataclass
class MStake:
    staked: int = 0
    locked: int = 0
    unbonding: int = 0
    release: int = 0


@dataclass
class Model:
    bal: dict
    minted: int
    burned: int = 0
    stakes: dict = field(default_factory=dict)
    # machine id -> MMachine
    machines: dict = field(default_factory=dict)
    required: dict = field(default_factory=dict)
    offers: dict = field(default_factory=dict)
    params: MarketParams = field(default_factory=MarketParams)
    paused: bool = False
    jobs: list = field(default_factory=list)
    # On-chain job id -> index in `jobs` (create_job ids count 1, 2, ...; a signed order's job
    # takes the order's digest), and how many jobs create_job(s) made (JobMarket.job_count).
    ids: dict = field(default_factory=dict)
    created: int = 0
    # JobMarket.deposits (prepaid tokens for signed orders), by user; order ids cancelled unfilled.
    deposits: dict = field(default_factory=dict)
    cancelled: set = field(default_factory=set)
    # PriceFeed: the last round id, its answer (USD per token, 8 decimals) and its block time.
    round: int = 0
    answer: int = 0
    updated: int = 0
    # Settlement.total_burned, what Settlement minted, and the claims it settled (one per Settled).
    settle_burned: int = 0
    settle_minted: int = 0
    runs: list = field(default_factory=list)
    # provider -> MRun of its jobs finalized since its last claim (minted, price 0): JobMarket.accrued.
    accrued: dict = field(default_factory=dict)
    # provider -> (collateral to release, ids of the jobs to count as completed) of its jobs
    # finalized since its last claim: JobMarket's `_pending`, applied to the registry by the claim.
    pending: dict = field(default_factory=dict)
    # address -> JobMarket.reputation counters (list in REPUTATION_FIELDS order).
    rep: dict = field(default_factory=dict)
    # The permit signer's allowance for JobMarket and its EIP-2612 nonce.
    signer_allowance: int = 0
    signer_nonce: int = 0
    # AuditBeacon: members by address, the member list (everyone ever added, in order), and per
    # revealed round [XOR of the reveals, reveals, members required]; per candidate, how many
    # chains it committed (its chain g is member_chain(key, g)).
    members: dict = field(default_factory=dict)
    member_list: list = field(default_factory=list)
    rounds: dict = field(default_factory=dict)
    commits: dict = field(default_factory=dict)


class Reverted:
    pass


REVERTED = Reverted()
# Vyper's checked arithmetic reverts without a reason string.
OVERFLOW = "<no reason: 0x>"


JOB_ABI = (
    "(address,address,uint256,uint16,bytes32,uint256,uint256,uint256,uint256,uint256,uint256,uint256,uint256,bytes32,"
    "uint256,uint256,uint256)"
)


@dataclass(frozen=True)
class MRun:
    """One claim's Settled event as the model predicts it (the provider's Finalized jobs since its
    last claim), or, with minted and price 0, a provider's credit not yet claimed."""

    provider: str
    job_ids: tuple
    burned: int
    usd_net: int
    cap: int
    minted: int
    # The answer used; 0 when it was missing or stale (the cap was paid).
    price: int


@functools.lru_cache(maxsize=4096)
def job_commitment(tup: tuple) -> bytes:
    """JobMarket.job_commitment for a struct: keccak256(abi_encode(job)) with the low byte cleared."""
    h = int.from_bytes(keccak(eth_abi.encode([JOB_ABI], [tup])), "big")
    return ((h >> 8) << 8).to_bytes(32, "big")


@functools.lru_cache(maxsize=64)
def member_chain(key: bytes, generation: int) -> HashChain:
    """A beacon member's hash chain number `generation` (its first commitment is chain 0)."""
    return HashChain.derive(bytes(key), f"generation {generation}".encode(), CHAIN_LENGTH)


@functools.lru_cache(maxsize=4096)
def draw_hits(seed: bytes, job_id: int, audit_bps: int) -> bool:
    """JobMarket._drawn for a ready round: keccak256(abi_encode(seed, job_id)) % 10000 < audit_bps."""
    return drawn_from_seed(seed, job_id, audit_bps)


@functools.lru_cache(maxsize=4096)
def seed_of(xor: bytes, r: int) -> bytes:
    return round_seed(xor, r)


@functools.lru_cache(maxsize=4096)
def _sign_price(key: bytes, feed: str, chain_id: int, round_id: int, price: int, observed_at: int) -> bytes:
    """An operator's EIP-712 PriceObservation signature for PriceFeed."""
    o = {"round_id": round_id, "price": price, "observed_at": observed_at}
    return R.sign_report(key, R.price_typed_data(feed, chain_id, o))


def revert_reason(err: BoaError) -> str:
    out = bytes(err.call_trace.computation.output or b"")
    if out[:4] == bytes.fromhex("08c379a0"):
        return eth_abi.decode(["string"], out[4:])[0]
    return f"<no reason: 0x{out.hex()}>"


def _step(fn):
    """Marks the machine busy while a rule or invariant runs (teardown drains only a healthy
    run) and counts rules and their time (rules + invariants) for FUZZ_STATS."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        self._busy = True
        t0 = time.perf_counter()
        fn(self, *args, **kwargs)
        STATS["_seconds"] += time.perf_counter() - t0
        if not fn.__name__.startswith("inv_"):
            self._rules_run += 1
            STATS["_rules"] += 1
            STATS[f"~rule {fn.__name__}"] += 1
        self._busy = False

    return wrapper


# Strategies.
JOB_REF = st.tuples(
    st.sampled_from(["fit"] * 5 + ["live", "live", "any", "unknown", "tampered"]), st.integers(0, 2**16)
)
ACTOR = st.integers(0, 7)  # users 0-2, providers 3-5, outsider 6, admin 7
PROVIDER = st.integers(0, 2)
USER = st.integers(0, 2)
CREATOR = st.integers(0, 4)  # users 0-2, providers 0-1 (a provider may buy compute, even from itself)
# Job size in basis points of the creator's balance; "overflow": price * units > 2**256 - 1,
# "huge": the payment fits but the collateral computation overflows (or the balance is short);
# "dust": one unit below min_reputation_usd (finalized, it does not count as completed),
# "threshold": the fewest units worth min_reputation_usd (it counts).
SIZE_BPS = st.sampled_from(
    [100, 500, 1_000, 2_000, 50, 10, 1, 3_000, 5_000, 10_000, 0, 10_100]
    + ["overflow", "huge", "dust", "dust", "threshold"]
)
CLASS = st.sampled_from([CPU, H100, CPU, H100, CPU, H100, UNKNOWN_CLASS])
WINDOW = st.sampled_from(["hour", "hour", "day", "min", "day", "min+1", "max", "hour", "min-1", "max+1"])
HASH = st.sampled_from([1, 2, 3, 0])  # 0: empty hash
# max_tokens: the escrow exactly, anything, twice it, or one wei below it ("job_market: payment above max tokens").
SLIP = st.sampled_from(["exact", "any", "any", "more", "less"])
# Whether the creator first has a round posted when the answer is stale (most do).
FRESH = st.sampled_from([True, True, True, False])


class MarketMachine(RuleBasedStateMachine):
    """One example = one run from the deployed state (a titanoboa snapshot, reverted at teardown)."""

    def __init__(self):
        super().__init__()
        w = self.w = world()
        self.tok, self.reg, self.mk = w.tok, w.reg, w.mk
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        STATS["_examples"] += 1
        self._busy = False
        self._rules_run = 0
        self._drained = False
        self.actors = w.users + w.providers + [w.outsider, w.admin]
        self.tracked = self.actors + [w.signer, w.orderer, w.bystander, w.slasher, w.second, str(self.mk.address)]
        self.tracked.append(str(self.reg.address))
        self.tracked.append(str(w.hub.address))  # the operators' stake: constant here
        m = self.m = Model(bal={a: self.tok.balanceOf(a) for a in self.tracked}, minted=self.tok.totalSupply())
        # Token counters at the start: every later mint is a settlement.
        self.totals0 = w.raw.token_totals()
        assert self.totals0[0] - self.totals0[1] == m.minted and self.totals0[1] == 0
        assert w.feed.latest_round() == 0 and w.settlement.total_burned() == 0
        self.bc = w.beacon
        for a in w.candidates:
            m.members[a] = MMember(*w.raw.member(a))
            m.commits[a] = 1 if m.members[a].active_until else 0
        m.member_list = [str(self.bc.member_list(i)) for i in range(self.bc.member_count())]
        assert m.member_list == w.candidates[:3] and not m.members[w.candidates[3]].active_until
        # Finalized jobs whose draw the invariant already confirmed was not escaped.
        self._draw_checked: set = set()
        self._rep_seen: dict = {}
        self._user_gain: int | None = None
        # The JobFinalized events the model expects from the call being made (see _check_finalized).
        self._want_finalized: list = []
        # Orders the order user signed this example, (order, is a batch): for replays and cancels.
        self._orders: list = []
        self._order_salt = 0
        for a in self.actors:
            m.rep[a] = list(self.reg.reputation(a))
            assert m.rep[a] == [0] * len(REPUTATION_FIELDS)
        assert self.tok.allowance(w.signer, self.mk.address) == 0 == self.tok.nonces(w.signer)
        for p in w.providers:
            s = self.reg.stakes(p)
            m.stakes[p] = MStake(s.staked, s.locked, s.unbonding, s.unbonding_release)
            m.required[p] = self.reg.required_stake(p)
        for mid, (p, cls, gpus) in w.machines.items():
            m.machines[mid] = MMachine(p, cls, gpus, MachineStatus.ACTIVE, NO_EXPIRY)
        for (pi, cls), price in OFFERS.items():
            m.offers[(w.providers[pi], cls)] = price
        assert m.required[w.providers[0]] == CLASS_MIN_STAKE[CPU] + CLASS_MIN_STAKE[H100]

    def teardown(self):
        try:
            if not self._busy:
                self._check_views()
                self._drain()
                self._check_all(all_jobs=True)
                self._check_views()
        finally:
            self._anchor.__exit__(None, None, None)

    # ------------------------------------------------------------------ helpers

    @property
    def now(self) -> int:
        return boa.env.timestamp

    def _warp(self, t: int):
        """Time moves on to `t` (never back)."""
        boa.env.timestamp = max(self.now, t)

    # ------------------------------------------------------------------ the audit draw (AuditBeacon)

    def _round_now(self) -> int:
        return self.now // ROUND_SECONDS

    def _round_state(self, r: int) -> tuple[int, bytes]:
        """AuditBeacon.draw_seed(r): ready (and the seed) once every member required revealed,
        degraded once its reveal window closed first, pending before."""
        x = self.m.rounds.get(r)
        if x is not None and x[1] == x[2]:
            return ROUND_READY, seed_of(x[0], r)
        if self.now > r * ROUND_SECONDS + REVEAL_WINDOW:
            return ROUND_DEGRADED, ZERO32
        return ROUND_PENDING, ZERO32

    def _drawn(self, j: MJob) -> bool:
        """JobMarket._drawn from the model's beacon: never at audit rate 0, every job of a degraded
        round, none of a pending one, and in a ready round keccak(seed, id) % 10000 < audit_bps."""
        if j.f["audit_bps"] == 0:
            return False
        state, seed = self._round_state(j.f["draw_round"])
        if state == ROUND_READY:
            return draw_hits(seed, j.id, j.f["audit_bps"])
        return state == ROUND_DEGRADED

    def _audit_deadline(self, j: MJob) -> int:
        """market_audits._sampled_deadline: a drawn Submitted job is in audit (no transaction, no
        dispute entry) until challenge_end + audit_timeout, the timeout as set now (not stored)."""
        return j.f["challenge_end"] + self.m.params.audit_timeout

    def _in_sampled_audit(self, j: MJob) -> bool:
        """A Submitted job the draw selected: post_verdict takes it, dispute and finalize refuse it."""
        return j.status == JobStatus.SUBMITTED and self._drawn(j)

    def _exit_deadline(self, j: MJob) -> int:
        """Last second before anyone may end the job: its deadline, or a drawn job's audit deadline."""
        return self._audit_deadline(j) if self._in_sampled_audit(j) else j.deadline()

    def _required(self, r: int) -> int:
        """AuditBeacon._required: the listed members whose window holds round r."""
        return sum(1 for a in self.m.member_list if self.m.members[a].active_from <= r < self.m.members[a].active_until)

    def _secret(self, a: str, r: int) -> bytes | None:
        """The chain value member `a` reveals next for round r (from its pending chain once r
        reaches it), or None when it has none (never committed, or its chain is used up)."""
        mm = self.m.members.get(a, MMember())
        tip = mm.pending_tip if mm.pending_from and r >= mm.pending_from else mm.tip
        key = self.w.member_keys.get(a)
        if key is None or tip == ZERO32:
            return None
        for g in range(self.m.commits.get(a, 0)):
            nxt = member_chain(key, g).next_after(tip)
            if nxt is not None:
                return nxt
        return None

    def _rep(self, a: str) -> list:
        return self.m.rep.setdefault(a, [0] * len(REPUTATION_FIELDS))

    def _bump(self, a: str, name: str, n: int = 1):
        self._rep(a)[REP[name]] += n

    def _audit_rate(self, q: str) -> int:
        """JobMarket._audit_rate: base rate; at least the new-provider rate below
        trusted_after_jobs completions; plus bad_record_audit_bps per failed or expired job; <= 100%."""
        p, r = self.m.params, self._rep(q)
        rate = p.base_audit_bps
        if r[REP["completed"]] < p.trusted_after_jobs:
            rate = max(rate, p.new_provider_audit_bps)
        bad = r[REP["failed"]] + r[REP["expired"]]
        return min(MAX_BPS, rate + bad * p.bad_record_audit_bps)

    def _required_collateral(self, payment: int, minimum: int, audit_bps: int) -> int | None:
        """JobMarket._required_collateral: max(minimum, ceil(payment * 10^8 / (p * d)) - payment),
        `minimum` when p = 0; None where the contract's checked arithmetic overflows."""
        if audit_bps == 0:
            return minimum
        pd = audit_bps * self.m.params.detection_bps
        if payment * MAX_BPS * MAX_BPS + pd - 1 > MAX_UINT:
            return None
        return max(minimum, (payment * MAX_BPS * MAX_BPS + pd - 1) // pd - payment)

    @property
    def market(self) -> str:
        return str(self.mk.address)

    @property
    def registry(self) -> str:
        return str(self.reg.address)

    def _exec(self, action: str, sender: str, reason: str | None, fn, *args):
        """Calls `fn` as `sender`; it must succeed if `reason` is None, else revert with exactly `reason`."""
        STATS["_calls"] += 1
        STATS[f"{action}: {reason or 'ok'}"] += 1
        with boa.env.prank(sender):
            try:
                out = fn(*args)
            except BoaError as e:
                got = revert_reason(e)
                assert reason is not None, f"{action}: model expected success, call reverted with {got!r}"
                assert got == reason, f"{action}: expected revert {reason!r}, got {got!r}"
                return REVERTED
        assert reason is None, f"{action}: expected revert {reason!r}, call succeeded"
        return out

    def _atomic(self, sim):
        """Runs a model simulation; a revert (returned reason) undoes its partial effects by
        putting back a copy of the model (so hold job ids, not model objects, across actions)."""
        saved = copy.deepcopy(self.m)
        reason = sim()
        if reason is not None:
            self.m = saved
        return reason

    def _xfer(self, src: str, dst: str, amount: int):
        assert self.m.bal[src] >= amount
        self.m.bal[src] -= amount
        self.m.bal.setdefault(dst, 0)
        self.m.bal[dst] += amount

    def _actor(self, i: int) -> str:
        return self.actors[i % len(self.actors)]

    def _live(self) -> list[MJob]:
        return [j for j in self.m.jobs if j.status in LIVE]

    def _pick(self, ref, fit: tuple = LIVE) -> tuple[int, MJob | None, tuple]:
        """(job id, model job or None, struct to pass) for a JOB_REF: a job in a status the action
        works on (`fit`), a live job, any job, an id that does not exist, or a real job with one
        field of its struct changed. Falls back to any job when the wanted kind does not exist."""
        mode, idx = ref
        jobs = self.m.jobs
        if mode == "unknown" or not jobs:
            jid = (0, self.m.created + 1, self.m.created + 2, MAX_UINT)[idx % 4]
            tup = jobs[idx % len(jobs)].tup() if jobs else UNKNOWN_JOB
            return jid, None, tup
        if mode == "tampered":
            j = jobs[idx % len(jobs)]
            t = list(j.tup())
            k = (idx // len(jobs)) % len(t)
            v = t[k]
            if isinstance(v, bytes):
                t[k] = bytes([v[0] ^ 1]) + v[1:]
            elif isinstance(v, str):
                t[k] = self.w.outsider if v != self.w.outsider else ZERO
            else:
                t[k] = v + 1
            return j.id, None, tuple(t)
        pool = [j for j in jobs if j.status in {"fit": fit, "live": LIVE, "any": TERMINAL + LIVE}[mode]] or jobs
        j = pool[idx % len(pool)]
        return j.id, j, j.tup()

    def _job(self, jid: int) -> MJob | None:
        i = self.m.ids.get(jid)
        return None if i is None else self.m.jobs[i]

    def _add_job(self, jid: int, f: dict, status: JobStatus) -> MJob:
        self.m.ids[jid] = len(self.m.jobs)
        self.m.jobs.append(MJob(jid, f, status))
        return self.m.jobs[-1]

    def _load(self, jid: int, tup: tuple) -> tuple[str | None, MJob | None]:
        j = self._job(jid)
        if j is None:
            return "job_market: unknown job", None
        if tuple(tup) != j.tup():
            return "job_market: job data mismatch", None
        return None, j

    def _window(self, sel: str, lo: int, hi: int) -> int:
        return {
            "min": lo,
            "min+1": lo + 1,
            "min-1": lo - 1,
            "max": hi,
            "max+1": hi + 1,
            "hour": min(max(3600, lo), hi),
            "day": min(max(86400, lo), hi),
        }[sel]

    # ------------------------------------------------------------------ model pieces

    def _unlock(self, p: str, amount: int):
        s = self.m.stakes.setdefault(p, MStake())
        s.locked -= min(amount, s.locked)

    def _slash(self, p: str, amount: int, beneficiary: str) -> int:
        s = self.m.stakes.setdefault(p, MStake())
        from_staked = min(amount, s.staked)
        from_unbonding = min(amount - from_staked, s.unbonding)
        s.staked -= from_staked  # `locked` stays: it may now exceed `staked`
        if from_unbonding and from_unbonding == s.unbonding:
            s.release = 0  # an emptied unbonding entry is cleared, as `withdraw` clears it
        s.unbonding -= from_unbonding
        slashed = from_staked + from_unbonding
        if slashed:
            if beneficiary == ZERO:
                self.m.bal[self.registry] -= slashed
                self.m.burned += slashed
            else:
                self._xfer(self.registry, beneficiary, slashed)
        return slashed

    def _slashable(self) -> dict:
        """Each provider's stake a slash can reach (staked + unbonding), read from the chain."""
        return {p: self.w.raw.stakes(p)[0] + self.w.raw.stakes(p)[2] for p in self.w.providers}

    def _check_slashes(self, contract, before: dict):
        """No slash exceeds the stake: the Slashed events of the last call to `contract` take from
        each provider, in all, at most what it had staked and unbonding before the call."""
        taken: Counter = Counter()
        for e in contract.get_logs():
            if type(e).__name__ == "Slashed":
                taken[str(e.provider)] += int(e.amount)
        for p, amount in taken.items():
            assert amount <= before.get(p, 0), f"slashed {amount} from {p}, which had {before.get(p, 0)} at stake"
            how = "nothing (no stake)" if not amount else "the whole stake" if amount == before[p] else "part"
            STATS[f"~slash took {how}"] += 1

    # ------------------------------------------------------------------ price and settlement

    def _fresh(self) -> bool:
        """Settlement's check on the answer: a round exists and is at most SETTLEMENT_MAX_AGE old."""
        return self.m.round > 0 and self.now - self.m.updated <= SETTLEMENT_MAX_AGE

    def _unit_tokens(self, price: int) -> tuple[str | None, int]:
        """Settlement.quote(price): the tokens a compute unit at `price` (USD, 18 decimals) escrows
        now, ceil(price * 10^8 / answer), or the reason it reverts."""
        if price == 0:
            return "settlement: usd value is zero", 0
        if self.m.round == 0:
            return "price_feed: no price", 0  # latestRoundData's revert, passed through
        if not self._fresh():
            return "settlement: stale price", 0
        a = self.m.answer
        if price * 10**PRICE_DECIMALS + a - 1 > MAX_UINT:
            return OVERFLOW, 0
        return None, (price * 10**PRICE_DECIMALS + a - 1) // a

    def _est_unit_tokens(self, price: int) -> int:
        """Tokens per unit to size a job with: at the last answer, fresh or not (the start price before any)."""
        a = self.m.answer or START_PRICE
        return max((price * 10**PRICE_DECIMALS + a - 1) // a, 1)

    def _expected_payment(self, price: int, units: list) -> int:
        """What create_job(s) will escrow for `units` at `price` if it succeeds (for `max_tokens`)."""
        reason, ut = self._unit_tokens(price)
        return min(sum(ut * u for u in units), MAX_UINT) if reason is None else MAX_UINT

    @staticmethod
    def _terms(j: MJob) -> tuple[int, int, int]:
        """JobMarket._settle: a finalized job's (fee in tokens, USD value less the fee, escrow less the fee)."""
        f = j.f
        fee = f["payment"] * f["fee_bps"] // MAX_BPS
        return fee, f["usd_value"] - f["usd_value"] * f["fee_bps"] // MAX_BPS, f["payment"] - fee

    def _pay_out(self, q: str, jobs: list) -> str | None:
        """JobMarket._pay_out for a run of q's jobs just marked Finalized: the run's escrow, USD
        value less fees and escrow less fees (the cap) added to q's credit (usd_net and cap packed
        in 128 bits each, the escrow since the last claim in 104: past that it reverts), and its
        collateral (104 bits since the last claim) and the jobs worth at least min_reputation_usd
        kept for q's next claim, which releases the one and counts the others as completed in
        the registry's record. No token moves: `_claim` burns and mints."""
        if not jobs:
            return None
        a = self.m.accrued.get(q) or MRun(q, (), 0, 0, 0, 0, 0)
        a = MRun(
            q,
            a.job_ids + tuple(j.id for j in jobs),
            a.burned + sum(j.f["payment"] for j in jobs),
            a.usd_net + sum(self._terms(j)[1] for j in jobs),
            a.cap + sum(self._terms(j)[2] for j in jobs),
            0,
            0,
        )
        release, counted = self.m.pending.get(q, (0, ()))
        release += sum(j.f["collateral"] for j in jobs)
        if max(a.usd_net, a.cap) >= 2**128 or max(a.burned, release) >= 2**104:
            return OVERFLOW
        STATS[f"~credited {len(jobs)} job(s){' on top of a credit' if q in self.m.accrued else ''}"] += 1
        self.m.accrued[q] = a
        # Only jobs worth at least min_reputation_usd (at finalize) count as completed (dust
        # cannot end probation).
        new = [j.id for j in jobs if j.f["usd_value"] >= self.m.params.min_reputation_usd]
        self.m.pending[q] = (release, counted + tuple(new))
        STATS[f"~finalized: {len(new)} counted, {len(jobs) - len(new)} below min_reputation_usd"] += 1
        return None

    def _claim(self, p: str) -> tuple[str | None, int]:
        """JobMarket.claim(p) (anyone, never paused): p's credit zeroed, its escrow burned, and
        Settlement mints p min(usd_net * 10^8 // answer, cap) at the answer now (the cap when it
        is stale or missing; usd_net < 2**128 cannot overflow) and counts the burn."""
        a = self.m.accrued.pop(p, None)
        if a is None:
            return "job_market: nothing to claim", 0
        # The collateral of those jobs is released and the counted ones recorded as completed.
        release, counted = self.m.pending.pop(p)
        for jid in counted:
            self._job(jid).counted = True
        self._bump(p, "completed", len(counted))
        self._unlock(p, release)
        price = self.m.answer if self._fresh() else 0
        minted = min(a.usd_net * 10**PRICE_DECIMALS // price, a.cap) if price else a.cap
        self.m.bal[self.market] -= a.burned
        self.m.burned += a.burned
        self.m.settle_burned += a.burned
        self.m.settle_minted += minted
        self.m.minted += minted
        self.m.bal[p] = self.m.bal.get(p, 0) + minted
        self.m.runs.append(MRun(p, a.job_ids, a.burned, a.usd_net, a.cap, minted, price))
        how = "no fresh price: the cap" if not price else "below the cap" if minted < a.cap else "at the cap"
        STATS[f"~claimed {min(len(a.job_ids), 4)}{'+' * (len(a.job_ids) > 3)} job(s): {how}"] += 1
        return None, minted

    def act_claim(self, sender: str, p: str) -> str | None:
        """claim(p) by `sender`: the mint goes to p whoever calls (the balances say so), and the
        Settled event is the model's."""
        n0, minted = len(self.m.runs), 0

        def sim():
            nonlocal minted
            reason, minted = self._claim(p)
            return reason

        reason = self._atomic(sim)
        how = f"claim ({'own' if sender == p else 'other'}{', paused' if self.m.paused else ''})"
        out = self._exec(how, sender, reason, self.mk.claim, p)
        if reason is None:
            assert out == minted, f"claim({p}) returned {out}, model {minted}"
            self._check_settled(n0)
        return reason

    def _new_job(self, user, provider, cls, spec, units, price, unit_tokens, aw, cw) -> str | None:
        if spec == ZERO32:
            return "job_market: spec hash is empty"
        if units == 0:
            return "job_market: compute units is zero"
        p = self.m.params
        usd_value = price * units
        payment = unit_tokens * units
        # Checked arithmetic: the USD value, the escrow, the collateral.
        if usd_value > MAX_UINT or payment > MAX_UINT or payment * p.collateral_bps + MAX_BPS - 1 > MAX_UINT:
            return OVERFLOW
        f = dict(
            user=user,
            provider=provider,
            machine_id=0,
            class_id=cls,
            spec_hash=spec,
            compute_units=units,
            payment=payment,
            usd_value=usd_value,
            collateral=(payment * p.collateral_bps + MAX_BPS - 1) // MAX_BPS,
            fee_bps=p.fee_bps,
            accept_by=self.now + aw,
            complete_within=cw,
            complete_by=0,
            result_hash=ZERO32,
            challenge_end=0,
            audit_bps=0,
            draw_round=0,
        )
        self.m.created += 1
        self._add_job(self.m.created, f, JobStatus.OPEN)
        return None

    def _price(self, provider, cls, max_price, aw, cw) -> tuple[str | None, int]:
        p = self.m.params
        if cls not in CLASS_MIN_STAKE:
            return "job_market: unknown class", 0
        if aw < p.min_accept_window:
            return "job_market: accept window too short", 0
        if aw > p.max_accept_window:
            return "job_market: accept window too long", 0
        if cw < p.min_complete_within:
            return "job_market: completion time too short", 0
        if cw > p.max_complete_within:
            return "job_market: completion time too long", 0
        if provider == ZERO:
            return ("job_market: price is zero", 0) if max_price == 0 else (None, max_price)
        offer = self.m.offers.get((provider, cls), 0)
        if offer == 0:
            return "job_market: provider has no offer", 0
        if offer > max_price:
            return "job_market: offer above max price", 0
        return None, offer

    def _pull(self, owner: str, amount: int) -> str | None:
        # Everyone but the admin and the permit signer approved JobMarket for max (never
        # decremented); the admin approved nothing; the signer has what its permits set.
        if owner == self.w.admin and amount > 0:
            return "erc20: insufficient allowance"
        if owner == self.w.signer:
            if self.m.signer_allowance < amount:
                return "erc20: insufficient allowance"
            if self.m.signer_allowance != MAX_UINT:
                self.m.signer_allowance -= amount
        if self.m.bal.get(owner, 0) < amount:
            return "erc20: transfer amount exceeds balance"
        self._xfer(owner, self.market, amount)
        return None

    def _accept_core(self, q: str, jid: int, tup: tuple, mid: int) -> str | None:
        reason, j = self._load(jid, tup)
        if reason:
            return reason
        if j.status != JobStatus.OPEN:
            return "job_market: job not open"
        if self.now > j.f["accept_by"]:
            return "job_market: acceptance window over"
        if j.f["provider"] != ZERO and q != j.f["provider"]:
            return "job_market: job is for another provider"
        # The audit rate from q's record now; the collateral raised to what that rate requires.
        audit_bps = self._audit_rate(q)
        collateral = self._required_collateral(j.f["payment"], j.f["collateral"], audit_bps)
        if collateral is None:
            return OVERFLOW
        STATS[f"~accept at audit_bps {audit_bps}{' (raised)' if collateral > j.f['collateral'] else ''}"] += 1
        j.f.update(
            provider=q,
            machine_id=mid,
            complete_by=self.now + j.f["complete_within"],
            audit_bps=audit_bps,
            collateral=collateral,
        )
        j.status = JobStatus.RUNNING
        return None

    def _lock(self, q: str, mid: int, cls: int, amount: int) -> str | None:
        m = self.m.machines.get(mid)
        if (m.provider if m else ZERO) != q:
            return "registry: not the provider's machine"
        if m.status != MachineStatus.ACTIVE:
            return "registry: machine not active"
        if m.cls != cls:
            return "registry: class mismatch"
        if self.now > m.attested_until:
            return "registry: attestation expired"
        s = self.m.stakes.setdefault(q, MStake())
        if s.staked < self.m.required.get(q, 0):
            return "registry: stake below minimum"
        if amount > s.staked - s.locked:
            return "registry: not enough free stake"
        s.locked += amount
        return None

    def _submit_core(self, q: str, jid: int, tup: tuple, result: bytes) -> str | None:
        reason, j = self._load(jid, tup)
        if reason:
            return reason
        if j.status != JobStatus.RUNNING:
            return "job_market: job not running"
        if q != j.f["provider"]:
            return "job_market: caller is not the provider"
        if self.now > j.f["complete_by"]:
            return "job_market: completion deadline passed"
        return self._submitted(j, result)

    def _submitted(self, j: MJob, result: bytes) -> str | None:
        """JobMarket._submitted's last check and effects: the result committed, the challenge
        window opened, the draw round fixed (the one after the current round: nobody knows its
        seed yet)."""
        if result == ZERO32:
            return "job_market: result hash is empty"
        j.f.update(
            result_hash=result,
            challenge_end=self.now + self.m.params.challenge_window,
            draw_round=self._round_now() + 1,
        )
        j.status = JobStatus.SUBMITTED
        return None

    def _close_finalized(self, jid: int, tup: tuple) -> tuple[str | None, MJob | None]:
        """JobMarket._close_finalized: checks, marks Finalized, returns a timed-out dispute's bond;
        a drawn job (in its sampled audit) only after challenge_end + audit_timeout. Both log
        JobFinalized with audit_timed_out (see _finalized_event)."""
        reason, j = self._load(jid, tup)
        if reason:
            return reason, None
        timed_out = False
        if j.status == JobStatus.SUBMITTED:
            if self.now <= j.f["challenge_end"]:
                return "job_market: challenge window open", None
            if self._drawn(j):
                if self.now <= self._audit_deadline(j):
                    return "job_market: job drawn for audit", None
                # No verdict came: the sampled audit timed out, the result stands.
                timed_out = j.audited = True
                STATS["~audit (sampled) timed out: finalized"] += 1
        elif j.status == JobStatus.AUDIT:
            challenger, bond, deadline = j.dispute
            if self.now <= deadline:
                return "job_market: audit in progress", None
            j.dispute = None
            self._xfer(self.market, challenger, bond)
            timed_out = True
        else:
            return "job_market: job not finalizable", None
        j.status = JobStatus.FINALIZED
        self._finalized_event(j, timed_out)
        return None, j

    def _finalized_event(self, j: MJob, timed_out: bool):
        """market_funds._settle's JobFinalized, as the model predicts it (checked by _check_finalized)."""
        f = j.f
        self._want_finalized.append((j.id, f["provider"], f["usd_value"], f["payment"], self._terms(j)[0], timed_out))

    def _check_finalized(self):
        """The JobFinalized events of the last JobMarket call are the model's, in order (and are
        cleared for the next call)."""
        want, self._want_finalized = self._want_finalized, []
        got = [
            (int(e.job_id), str(e.provider), int(e.usd_value), int(e.burned), int(e.fee), bool(e.audit_timed_out))
            for e in self.mk.get_logs()
            if type(e).__name__ == "JobFinalized"
        ]
        assert got == want, f"JobFinalized events {got}, model {want}"

    def _finalize_core(self, jid: int, tup: tuple) -> str | None:
        reason, j = self._close_finalized(jid, tup)
        return reason or self._pay_out(j.f["provider"], [j])

    def _check_settled(self, n0: int):
        """The Settled events of the last JobMarket call are the model's claims since `n0`, in
        order (none after a finalization: it only credits)."""
        want = [(r.provider, r.burned, r.usd_net, r.cap, r.minted, r.price) for r in self.m.runs[n0:]]
        got = [
            (str(e.provider), int(e.burned), int(e.usd_net), int(e.cap), int(e.minted), int(e.price))
            for e in self.mk.get_logs()
            if type(e).__name__ == "Settled"
        ]
        assert got == want, f"Settled events {got}, model {want}"

    # ------------------------------------------------------------------ actions (model + call)

    def _create_core(self, u, provider, cls, spec, units, max_price, aw, cw, max_tokens) -> str | None:
        """JobMarket._create: price, Settlement.quote, the job, the slippage bound, the transfer."""
        reason, price = self._price(provider, cls, max_price, aw, cw)
        if reason:
            return reason
        reason, unit_tokens = self._unit_tokens(price)
        if reason:
            return reason
        reason = self._new_job(u, provider, cls, spec, units, price, unit_tokens, aw, cw)
        if reason:
            return reason
        payment = self.m.jobs[-1].f["payment"]
        if payment > max_tokens:
            return "job_market: payment above max tokens"
        return self._pull(u, payment)

    def act_create(self, u, provider, cls, spec, units, max_price, aw, cw, max_tokens=MAX_UINT):
        def sim():
            if self.m.paused:
                return "pausable: contract is paused"
            return self._create_core(u, provider, cls, spec, units, max_price, aw, cw, max_tokens)

        n = self.m.created
        reason = self._atomic(sim)
        args = (provider, cls, spec, units, max_price, aw, cw, max_tokens)
        out = self._exec("create_job", u, reason, self.mk.create_job, *args)
        if reason is None:
            assert out == n + 1 == self.m.created
        return reason

    def act_create_with_permit(self, u, args: tuple, permit: tuple, signed: tuple):
        """create_job_with_permit(*args, *permit): `permit` = (amount, deadline, v, r, s) as passed,
        `signed` = (owner, amount, nonce, deadline) the signature was made over. The permit takes
        effect only for the right owner, amount, nonce and an unexpired deadline; otherwise it is
        ignored and the allowance decides. A revert of the creation undoes the permit too."""
        amount, deadline = permit[:2]

        def sim():
            if signed == (u, amount, self.m.signer_nonce, deadline) and self.now <= deadline:
                STATS["~permit applied"] += 1
                self.m.signer_allowance = amount
                self.m.signer_nonce += 1
            else:
                STATS["~permit ignored"] += 1
            if self.m.paused:
                return "pausable: contract is paused"
            return self._create_core(u, *args)

        n = self.m.created
        reason = self._atomic(sim)
        out = self._exec("create_job_with_permit", u, reason, self.mk.create_job_with_permit, *args, *permit)
        if reason is None:
            assert out == n + 1 == self.m.created
        return reason

    def act_create_many(self, u, provider, cls, specs, units, max_price, aw, cw, max_tokens=MAX_UINT):
        def sim():
            if self.m.paused:
                return "pausable: contract is paused"
            if not specs:
                return "job_market: empty batch"
            reason, price = self._price(provider, cls, max_price, aw, cw)
            if reason:
                return reason
            reason, unit_tokens = self._unit_tokens(price)  # read once for the batch
            if reason:
                return reason
            total = 0
            for spec, n in zip(specs, units, strict=True):
                reason = self._new_job(u, provider, cls, spec, n, price, unit_tokens, aw, cw)
                if reason:
                    return reason
                total += self.m.jobs[-1].f["payment"]
                if total > MAX_UINT:
                    return OVERFLOW
            if total > max_tokens:
                return "job_market: payment above max tokens"
            return self._pull(u, total)

        n = self.m.created
        reason = self._atomic(sim)
        args = (provider, cls, specs, units, max_price, aw, cw, max_tokens)
        out = self._exec("create_jobs", u, reason, self.mk.create_jobs, *args)
        if reason is None:
            assert list(out) == list(range(n + 1, n + 1 + len(specs)))
        return reason

    def act_accept(self, q, jid, tup, mid):
        def sim():
            if self.m.paused:
                return "pausable: contract is paused"
            reason = self._accept_core(q, jid, tup, mid)
            if reason:
                return reason
            j = self._job(jid)
            return self._lock(q, mid, j.f["class_id"], j.f["collateral"])

        reason = self._atomic(sim)
        self._exec("accept", q, reason, self.mk.accept, jid, tup, mid)
        return reason

    def act_accept_many(self, q, refs, mid):
        def sim():
            if self.m.paused:
                return "pausable: contract is paused"
            if not refs:
                return "job_market: empty batch"
            cls = refs[0][1][3]
            total = 0
            for jid, tup in refs:
                if tup[3] != cls:
                    return "job_market: class mismatch in batch"
                reason = self._accept_core(q, jid, tup, mid)
                if reason:
                    return reason
                total += self._job(jid).f["collateral"]  # as raised for q's audit rate
                if total > MAX_UINT:
                    return OVERFLOW
            return self._lock(q, mid, cls, total)

        reason = self._atomic(sim)
        self._exec("accept_jobs", q, reason, self.mk.accept_jobs, [r[0] for r in refs], [r[1] for r in refs], mid)
        return reason

    def act_accept_and_submit(self, q, jid, tup, mid, result):
        """JobMarket.accept_and_submit: accept's checks and effects, then submit's (the caller is the
        provider now, and complete_by is in the future), then the collateral lock."""

        def sim():
            if self.m.paused:
                return "pausable: contract is paused"
            reason = self._accept_core(q, jid, tup, mid)
            if reason:
                return reason
            j = self._job(jid)
            return self._submitted(j, result) or self._lock(q, mid, j.f["class_id"], j.f["collateral"])

        reason = self._atomic(sim)
        self._exec("accept_and_submit", q, reason, self.mk.accept_and_submit, jid, tup, mid, result, "ipfs://r")
        return reason

    def act_submit(self, q, jid, tup, result):
        reason = self._atomic(lambda: self._submit_core(q, jid, tup, result))
        self._exec("submit_result", q, reason, self.mk.submit_result, jid, tup, result, "ipfs://result")
        return reason

    def act_submit_many(self, q, refs, results):
        def sim():
            if not refs:
                return "job_market: empty batch"
            if len(results) != len(refs):
                return "job_market: length mismatch"
            for (jid, tup), result in zip(refs, results, strict=True):
                reason = self._submit_core(q, jid, tup, result)
                if reason:
                    return reason
            return None

        reason = self._atomic(sim)
        uris = ["ipfs://result"] * len(results)
        ids, tups = [r[0] for r in refs], [r[1] for r in refs]
        self._exec("submit_results", q, reason, self.mk.submit_results, ids, tups, results, uris)
        return reason

    def act_dispute(self, c, jid, tup):
        def sim():
            reason, j = self._load(jid, tup)
            if reason:
                return reason
            if j.status != JobStatus.SUBMITTED:
                return "job_market: job not submitted"
            if self.now > j.f["challenge_end"]:
                return "job_market: challenge window over"
            if c != j.f["user"]:
                return "job_market: caller is not the user"
            if self._drawn(j):
                return "job_market: job drawn for audit"
            p = self.m.params
            bond = max(p.min_dispute_bond, j.f["payment"] * p.dispute_bond_bps // MAX_BPS)
            j.dispute = (c, bond, self.now + p.audit_timeout)
            j.status, j.audited = JobStatus.AUDIT, True
            return self._pull(c, bond)

        reason = self._atomic(sim)
        self._exec("dispute", c, reason, self.mk.dispute, jid, tup)
        return reason

    def check_drawn_view(self, jid, tup):
        """The `audit_drawn` view against the model's own draw (True only for a Submitted job), and
        AuditBeacon.draw_seed of the job's round against the model's round."""
        reason, j = self._load(jid, tup)
        out = self._exec("audit_drawn(view)", self.w.outsider, reason, self.mk.audit_drawn, jid, tup)
        if reason is None:
            want = j.status == JobStatus.SUBMITTED and self._drawn(j)
            r = j.f["draw_round"]
            state = self._round_state(r)
            got = self.bc.draw_seed(r)
            assert (int(got[0]), bytes(got[1])) == state, f"round {r}: draw_seed {got}, model {state} (t {self.now})"
            assert out == want, f"job {jid}: audit_drawn {out}, model {want} (round {r} {ROUND_NAMES[state[0]]})"
            if j.status == JobStatus.SUBMITTED:
                STATS[f"~draw view: round {ROUND_NAMES[state[0]]}, {'drawn' if want else 'not drawn'}"] += 1

    def act_verdict(self, sender, jid, tup, valid):
        """post_verdict: on a disputed job (Audit) until its stored audit_deadline, or on a drawn
        Submitted job (a sampled audit: no challenger, no bond, no dispute entry) until
        challenge_end + audit_timeout."""

        def sim():
            if sender != self.w.admin:
                return "access_control: account is missing role"
            reason, j = self._load(jid, tup)
            if reason:
                return reason
            if j.status == JobStatus.AUDIT:
                challenger, bond, deadline = j.dispute
                if self.now > deadline:
                    return "job_market: audit deadline passed"
                j.dispute = None
                kind = "a dispute"
            else:
                # In audit from the draw on: no opening transaction.
                if not self._in_sampled_audit(j):
                    return "job_market: job not in audit"
                if self.now > self._audit_deadline(j):
                    return "job_market: audit deadline passed"
                challenger, bond = ZERO, 0
                j.audited = True
                when = "in" if self.now <= j.f["challenge_end"] else "after"
                kind = f"an audit (sampled), {when} the challenge window"
            prov, coll = j.f["provider"], j.f["collateral"]
            STATS[f"~verdict {valid} on {kind}"] += 1
            self._user_gain = None
            if valid:
                j.status = JobStatus.FINALIZED
                self._finalized_event(j, False)
                self._bump(prov, "audits_passed")
                if challenger != ZERO:
                    self._bump(prov, "disputes_won")
                    self._xfer(self.market, prov, bond)  # the wrongly accused provider gets the bond
                return self._pay_out(prov, [j])
            j.status = JobStatus.FAILED
            self._bump(prov, "failed")
            if challenger != ZERO:
                self._bump(prov, "disputes_lost")
            self._xfer(self.market, j.f["user"], j.f["payment"])
            if bond:
                self._xfer(self.market, challenger, bond)
            self._unlock(prov, coll)
            p = self.m.params
            compensation = coll * p.user_compensation_bps // MAX_BPS
            # A sampled audit has no challenger to reward: its share is burned.
            reward = coll * p.challenger_reward_bps // MAX_BPS if challenger != ZERO else 0
            burn = coll - compensation - reward
            # The user's refund, its bond back when it disputed, and what the slash pays it.
            gain = j.f["payment"] + (bond if challenger == j.f["user"] else 0)
            for amount, beneficiary in ((compensation, j.f["user"]), (reward, challenger), (burn, ZERO)):
                if amount:
                    got = self._slash(prov, amount, beneficiary)
                    if beneficiary == j.f["user"]:
                        gain += got
            self._user_gain = gain
            return None

        n0 = len(self.m.runs)
        user = tup[0]
        before, user_before = self._slashable(), self.w.raw.balance(user)
        self._want_finalized = []
        reason = self._atomic(sim)
        self._exec(f"post_verdict({valid})", sender, reason, self.mk.post_verdict, jid, tup, valid)
        if reason is None:
            self._check_settled(n0)  # a verdict settles nothing (a valid one credits)
            self._check_finalized()  # a valid verdict finalizes (not timed out), an invalid one not
            self._check_slashes(self.mk, before)
            if not valid:
                # The user's refund, and as the challenger its bond back and the challenger's
                # reward, on top of its compensation (each as far as the provider's stake went).
                assert self.w.raw.balance(user) - user_before == self._user_gain, "user's gain on an invalid verdict"
        return reason

    def act_finalize(self, k, jid, tup):
        n0 = len(self.m.runs)
        self._want_finalized = []
        reason = self._atomic(lambda: self._finalize_core(jid, tup))
        self._exec("finalize", k, reason, self.mk.finalize, jid, tup)
        if reason is None:
            self._check_settled(n0)
            self._check_finalized()
        return reason

    def act_finalize_many(self, k, refs):
        def sim():
            # JobMarket.finalize_many: each run of consecutive jobs of one provider (by the
            # struct passed) is credited when the next run starts, and the last one at the end.
            if not refs:
                return "job_market: empty batch"
            payee, run = ZERO, []
            for jid, tup in refs:
                if tup[1] != payee:
                    reason = self._pay_out(payee, run) if payee != ZERO else None
                    if reason:
                        return reason
                    payee, run = tup[1], []
                reason, j = self._close_finalized(jid, tup)
                if reason:
                    return reason
                run.append(j)
            return self._pay_out(payee, run) if payee != ZERO else None

        n0 = len(self.m.runs)
        self._want_finalized = []
        reason = self._atomic(sim)
        self._exec("finalize_many", k, reason, self.mk.finalize_many, [r[0] for r in refs], [r[1] for r in refs])
        if reason is None:
            self._check_settled(n0)
            self._check_finalized()
            # The longest run of one provider's jobs (credited and counted at once).
            providers = [tup[1] for _, tup in refs]
            run = max(len(list(g)) for _, g in itertools.groupby(providers))
            STATS[f"~finalize_many: {len(refs)} jobs, longest run of one provider {run}"] += 1
        return reason

    def act_expire(self, k, jid, tup):
        def sim():
            reason, j = self._load(jid, tup)
            if reason:
                return reason
            if j.status == JobStatus.OPEN:
                if self.now <= j.f["accept_by"]:
                    return "job_market: acceptance window open"
                j.status = JobStatus.CANCELLED
                self._xfer(self.market, j.f["user"], j.f["payment"])
            elif j.status == JobStatus.RUNNING:
                if self.now <= j.f["complete_by"]:
                    return "job_market: job not overdue"
                j.status = JobStatus.EXPIRED
                self._xfer(self.market, j.f["user"], j.f["payment"])
                self._unlock(j.f["provider"], j.f["collateral"])
                self._bump(j.f["provider"], "expired")
                penalty = j.f["collateral"] * self.m.params.noshow_penalty_bps // MAX_BPS
                if penalty:
                    self._slash(j.f["provider"], penalty, j.f["user"])
            else:
                return "job_market: job cannot expire"
            return None

        before = self._slashable()
        reason = self._atomic(sim)
        self._exec("expire", k, reason, self.mk.expire, jid, tup)
        if reason is None:
            self._check_slashes(self.mk, before)
        return reason

    def act_cancel(self, sender, jid, tup):
        def sim():
            reason, j = self._load(jid, tup)
            if reason:
                return reason
            if j.status != JobStatus.OPEN:
                return "job_market: job not open"
            if sender != j.f["user"]:
                return "job_market: caller is not the user"
            j.status = JobStatus.CANCELLED
            self._xfer(self.market, j.f["user"], j.f["payment"])
            return None

        reason = self._atomic(sim)
        self._exec("cancel", sender, reason, self.mk.cancel, jid, tup)
        return reason

    # ------------------------------------------------------------------ signed orders (model)

    def _take(self, owner: str, amount: int) -> str | None:
        """market_funds._take: the owner's deposit when it covers `amount`, else its allowance."""
        d = self.m.deposits.get(owner, 0)
        if d >= amount:
            self.m.deposits[owner] = d - amount
            STATS["~order paid from the deposit"] += 1
            return None
        return self._pull(owner, amount)

    def _order_job(
        self,
        q: str,
        mid: int,
        order: dict,
        jid: int,
        units: int,
        spec: bytes,
        unit_tokens: int,
        audit_bps: int,
        result: bytes,
        submitted: bool,
        challenge_end: int,
        draw_round: int,
    ):
        """One job of a fill: (reason, job fields) with job_orders' checks after the price."""
        p = self.m.params
        payment = unit_tokens * units
        if payment > MAX_UINT:
            return OVERFLOW, None
        return None, dict(
            user=order["user"], provider=q, machine_id=mid, class_id=order["class_id"], spec_hash=spec,
            compute_units=units, payment=payment, usd_value=order["price_per_unit"] * units, collateral=0,
            fee_bps=p.fee_bps, accept_by=order["accept_by"], complete_within=order["complete_within"],
            complete_by=self.now + order["complete_within"], result_hash=result if submitted else ZERO32,
            challenge_end=challenge_end, audit_bps=audit_bps, draw_round=draw_round,
        )  # fmt: skip

    def _collateral_of(self, f: dict) -> str | None:
        """Sets the job's collateral (the floor raised for its audit rate): OVERFLOW if it overflows."""
        if f["usd_value"] > MAX_UINT:
            return OVERFLOW
        if f["payment"] * self.m.params.collateral_bps + MAX_BPS - 1 > MAX_UINT:
            return OVERFLOW
        floor = (f["payment"] * self.m.params.collateral_bps + MAX_BPS - 1) // MAX_BPS
        c = self._required_collateral(f["payment"], floor, f["audit_bps"])
        if c is None:
            return OVERFLOW
        f["collateral"] = c
        return None

    def _order_head(self, q: str, order: dict, sig_ok: bool) -> str | None:
        if self.m.paused:
            return "pausable: contract is paused"
        if self.now > order["accept_by"]:
            return "job_market: order expired"
        if order["provider"] != ZERO and q != order["provider"]:
            return "job_market: order is for another provider"
        return None

    def _order_terms(self, order: dict) -> tuple[str | None, int]:
        """The price checks of a fill after its signature and slot: (reason, tokens per unit)."""
        if order["price_per_unit"] == 0:
            return "job_market: price is zero", 0
        p = self.m.params
        if order["complete_within"] < p.min_complete_within:
            return "job_market: completion time too short", 0
        if order["complete_within"] > p.max_complete_within:
            return "job_market: completion time too long", 0
        return self._unit_tokens(order["price_per_unit"])

    def act_fill(self, q: str, order: dict, sig: bytes, sig_ok: bool, mid: int, result: bytes) -> str | None:
        """JobMarket.fill_order (modules/job_orders.vy `_fill`, then the collateral lock)."""
        oid = order_id(self.market, self.w.chain_id, order)

        def sim():
            reason = self._order_head(q, order, sig_ok)
            if reason:
                return reason
            if not sig_ok:
                return "job_market: bad order signature"
            if oid in self.m.ids or oid in self.m.cancelled:
                return "job_market: order filled or cancelled"
            if order["spec_hash"] == ZERO32:
                return "job_market: spec hash is empty"
            if order["compute_units"] == 0:
                return "job_market: compute units is zero"
            reason, unit_tokens = self._order_terms(order)
            if reason:
                return reason
            if unit_tokens * order["compute_units"] > MAX_UINT:
                return OVERFLOW
            if unit_tokens * order["compute_units"] > order["max_tokens"]:
                return "job_market: payment above max tokens"
            submitted = result != ZERO32
            challenge_end = self.now + self.m.params.challenge_window if submitted else 0
            draw_round = self._round_now() + 1 if submitted else 0
            _, f = self._order_job(q, mid, order, oid, order["compute_units"], order["spec_hash"], unit_tokens,
                                   self._audit_rate(q), result, submitted, challenge_end, draw_round)  # fmt: skip
            reason = self._collateral_of(f)
            if reason:
                return reason
            self._add_job(oid, f, JobStatus.SUBMITTED if submitted else JobStatus.RUNNING)
            return self._take(order["user"], f["payment"]) or self._lock(q, mid, order["class_id"], f["collateral"])

        reason = self._atomic(sim)
        out = self._exec("fill_order", q, reason, self.mk.fill_order, order_tuple(order), sig, mid, result, "ipfs://o")
        if reason is None:
            assert out == oid
        return reason

    def act_fill_batch(self, q: str, order: dict, sig: bytes, sig_ok: bool, mid: int, results: list) -> str | None:
        """JobMarketExt.fill_order_batch (job_orders `_fill_batch`, then one collateral lock)."""
        oid = order_batch_id(self.market, self.w.chain_id, order)

        def sim():
            reason = self._order_head(q, order, sig_ok)
            if reason:
                return reason
            specs, units = order["spec_hashes"], order["compute_units"]
            if not specs:
                return "job_market: empty batch"
            if len(specs) != len(units):
                return "job_market: length mismatch"
            submitted = bool(results)
            if submitted and len(results) != len(specs):
                return "job_market: length mismatch"
            challenge_end = self.now + self.m.params.challenge_window if submitted else 0
            draw_round = self._round_now() + 1 if submitted else 0
            if not sig_ok:
                return "job_market: bad order signature"
            reason, unit_tokens = self._order_terms(order)
            if reason:
                return reason
            audit_bps = self._audit_rate(q)
            total = collateral = 0
            for i, (spec, n) in enumerate(zip(specs, units, strict=True)):
                jid = oid + i
                if jid > MAX_UINT:
                    return OVERFLOW
                if jid in self.m.ids or jid in self.m.cancelled:
                    return "job_market: order filled or cancelled"
                if spec == ZERO32:
                    return "job_market: spec hash is empty"
                if n == 0:
                    return "job_market: compute units is zero"
                result = results[i] if submitted else ZERO32
                reason, f = self._order_job(q, mid, order, jid, n, spec, unit_tokens, audit_bps, result, submitted,
                                            challenge_end, draw_round)  # fmt: skip
                reason = reason or self._collateral_of(f)
                if reason:
                    return reason
                if submitted and result == ZERO32:
                    return "job_market: result hash is empty"
                self._add_job(jid, f, JobStatus.SUBMITTED if submitted else JobStatus.RUNNING)
                total += f["payment"]
                collateral += f["collateral"]
                if total > MAX_UINT or collateral > MAX_UINT:
                    return OVERFLOW
            if total > order["max_tokens"]:
                return "job_market: payment above max tokens"
            return self._take(order["user"], total) or self._lock(q, mid, order["class_id"], collateral)

        reason = self._atomic(sim)
        args = (order_batch_tuple(order), sig, mid, results, "ipfs://batch")
        out = self._exec("fill_order_batch", q, reason, self.mk.fill_order_batch, *args)
        if reason is None:
            assert out == oid
        return reason

    def act_cancel_order(self, sender: str, order: dict, batch: bool) -> str | None:
        oid = (order_batch_id if batch else order_id)(self.market, self.w.chain_id, order)

        def sim():
            if sender != order["user"]:
                return "job_market: caller is not the user"
            if oid in self.m.ids or oid in self.m.cancelled:
                return "job_market: order filled or cancelled"
            self.m.cancelled.add(oid)
            return None

        reason = self._atomic(sim)
        if batch:
            self._exec("cancel_order_batch", sender, reason, self.mk.cancel_order_batch, order_batch_tuple(order))
        else:
            self._exec("cancel_order", sender, reason, self.mk.cancel_order, order_tuple(order))
        return reason

    def act_deposit(self, a: str, amount: int) -> str | None:
        def sim():
            if amount == 0:
                return "job_market: amount is zero"
            reason = self._pull(a, amount)
            if reason is None:
                self.m.deposits[a] = self.m.deposits.get(a, 0) + amount
            return reason

        reason = self._atomic(sim)
        self._exec("deposit", a, reason, self.mk.deposit, amount)
        return reason

    def act_withdraw_deposit(self, a: str, amount: int) -> str | None:
        def sim():
            d = self.m.deposits.get(a, 0)
            if amount == 0:
                return "job_market: amount is zero"
            if amount > d:
                return "job_market: amount above deposit"
            self.m.deposits[a] = d - amount
            self._xfer(self.market, a, amount)
            return None

        reason = self._atomic(sim)
        self._exec("withdraw_deposit", a, reason, self.mk.withdraw_deposit, amount)
        return reason

    def act_stake(self, p, amount):
        def sim():
            if amount == 0:
                return "registry: amount is zero"
            if self.m.bal.get(p, 0) < amount:
                return "erc20: transfer amount exceeds balance"
            self.m.stakes.setdefault(p, MStake()).staked += amount
            self._xfer(p, self.registry, amount)
            return None

        reason = self._atomic(sim)
        self._exec("stake", p, reason, self.reg.stake, amount)
        return reason

    def act_unstake(self, p, amount):
        def sim():
            s = self.m.stakes.setdefault(p, MStake())
            if amount == 0:
                return "registry: amount is zero"
            if amount > s.staked - s.locked:
                return "registry: not enough free stake"
            s.staked -= amount
            s.unbonding += amount
            s.release = self.now + UNBONDING_PERIOD_SECONDS
            return None

        reason = self._atomic(sim)
        self._exec("request_unstake", p, reason, self.reg.request_unstake, amount)
        return reason

    def act_withdraw(self, p):
        s = self.m.stakes.setdefault(p, MStake())
        amount = s.unbonding
        if amount == 0:
            reason = "registry: nothing unbonding"
        elif self.now < s.release:
            reason = "registry: still unbonding"
        else:
            reason = None
            s.unbonding = s.release = 0
            self._xfer(self.registry, p, amount)
        out = self._exec("withdraw", p, reason, self.reg.withdraw)
        if reason is None:
            assert out == amount
        return reason

    # ------------------------------------------------------------------ beacon actions (model + call)

    def _check_member(self, a: str, r: int | None = None):
        """A member's stored state (and a round's XOR and counts) equal the model's."""
        assert self.w.raw.member(a) == self.m.members.get(a, MMember()).tup(), f"beacon member {a}"
        if r is not None:
            xor, n, req = self.m.rounds.get(r, (ZERO32, 0, 0))
            assert self.w.raw.beacon_round(r) == (xor, n, req), f"beacon round {r}"

    def act_reveal(self, a: str, r: int, secret: bytes | None = None, why: str = "") -> str | None:
        """AuditBeacon.reveal(r, secret) by `a`: its next chain value unless `secret` is given."""
        secret = self._secret(a, r) if secret is None else secret
        secret = secret or keccak(b"no chain value")

        def sim():
            mm = self.m.members.setdefault(a, MMember())
            if not mm.active_from <= r < mm.active_until:
                return "audit_beacon: not a member for this round"
            start = r * ROUND_SECONDS
            if self.now < start:
                return "audit_beacon: round not started"
            if self.now > start + REVEAL_WINDOW:
                return "audit_beacon: reveal window over"
            if r <= mm.last_round:
                return "audit_beacon: round already revealed"
            if mm.pending_from and r >= mm.pending_from:
                mm.tip, mm.pending_tip, mm.pending_from = mm.pending_tip, ZERO32, 0
            if mm.tip == ZERO32 or keccak(secret) != mm.tip:
                return "audit_beacon: reveal does not match the commitment"
            mm.tip, mm.last_round = secret, r
            x = self.m.rounds.setdefault(r, [ZERO32, 0, self._required(r)])
            # Bound to its member: keccak256(abi_encode(member, secret)).
            x[0] = bytes(p ^ q for p, q in zip(x[0], reveal_share(a, secret), strict=True))
            x[1] += 1
            return None

        reason = self._atomic(sim)
        self._exec(f"reveal{why}", a, reason, self.bc.reveal, r, secret)
        if reason is None:
            self._check_member(a, r)
            STATS[f"~reveal {self.m.rounds[r][1]} of {self.m.rounds[r][2]}"] += 1
        return reason

    def act_commit(self, a: str, fresh: bool = True) -> str | None:
        """AuditBeacon.commit by `a`: the commitment of its next chain (or an empty one)."""
        key = self.w.member_keys.get(a, SPARE_KEY)
        commitment = member_chain(key, self.m.commits.get(a, 0)).commitment if fresh else ZERO32

        def sim():
            mm = self.m.members.setdefault(a, MMember())
            now = self._round_now()
            if not mm.active_until > now:
                return "audit_beacon: not a member"
            if commitment == ZERO32:
                return "audit_beacon: commitment is empty"
            if mm.pending_from and mm.pending_from <= now + 1:
                # The pending chain already applies to rounds whose jobs may be submitted.
                mm.tip, mm.last_round = mm.pending_tip, max(mm.last_round, mm.pending_from - 1)
                STATS["~commit over a pending chain that applies already"] += 1
            mm.pending_tip, mm.pending_from = commitment, now + 2
            self.m.commits[a] = self.m.commits.get(a, 0) + 1
            return None

        reason = self._atomic(sim)
        self._exec("commit", a, reason, self.bc.commit, commitment)
        if reason is None:
            self._check_member(a)
        return reason

    def act_membership(self, sender: str, a: str, add: bool) -> str | None:
        """AuditBeacon.add_member (admin) or remove_member (admin or the member itself)."""

        def sim():
            if (add or sender != a) and sender != self.w.admin:
                return "access_control: account is missing role"
            mm = self.m.members.setdefault(a, MMember())
            now = self._round_now()
            edge = now + 2
            if add:
                if a == ZERO:
                    return "audit_beacon: member is the zero address"
                if mm.active_until == 0:
                    # AuditBeacon._list_member: appended, or when the list is full in the slot of a
                    # member whose window closed, which is forgotten (never here: 4 candidates).
                    lst = self.m.member_list
                    if len(lst) < MAX_MEMBERS:
                        lst.append(a)
                    else:
                        i = next((i for i, b in enumerate(lst) if self.m.members[b].active_until <= now), None)
                        if i is None:
                            return "audit_beacon: too many members"
                        self.m.members[lst[i]] = MMember()
                        lst[i] = a
                elif not (mm.active_until <= now or mm.active_from == mm.active_until):
                    # Re-added only once its last window closed (or if it never opened).
                    return "audit_beacon: already a member"
                mm.active_from, mm.active_until = edge, OPEN_ENDED
                return None
            if not mm.active_until > edge:
                return "audit_beacon: not a member"
            mm.active_until = max(edge, mm.active_from)
            return None

        reason = self._atomic(sim)
        call = self.bc.add_member if add else self.bc.remove_member
        self._exec("add_member" if add else "remove_member", sender, reason, call, a)
        if reason is None:
            self._check_member(a)
        return reason

    def _oracle_reveal(self, r: int, silent: int | None = None, when: str = "start"):
        """What the operators' services do for a round that jobs are drawn from: each member of the
        round reveals its next value, at the round's start (`when` = "start"), at the last second
        of its window ("end"), one second late ("late": refused) or now ("now"); member number
        `silent` (mod their count) stays silent."""
        start = r * ROUND_SECONDS
        edges = {"now": self.now, "start": start, "end": start + REVEAL_WINDOW, "late": start + REVEAL_WINDOW + 1}
        self._warp(edges[when])
        members = [a for a in self.m.member_list if self.m.members[a].active_from <= r < self.m.members[a].active_until]
        silent = members[silent % len(members)] if members and silent is not None else None
        for a in members:
            if a != silent:
                self.act_reveal(a, r, why=f" ({when})")
        STATS[
            f"~oracle reveal ({when}{', one silent' if silent else ''}): round {ROUND_NAMES[self._round_state(r)[0]]}"
        ] += 1

    # ------------------------------------------------------------------ setup

    @initialize(
        n=st.integers(1, 4),
        u=USER,
        to=st.integers(0, 3),
        cls=st.sampled_from([CPU, H100]),
        size=st.sampled_from([50, 100, 200, 500, "dust"]),
        stage=st.integers(0, 4),
        choice=st.integers(0, 63),
        offset=st.integers(0, 10**6),
        preset=st.sampled_from([0, 0, 1, 2]),
        start_price=st.sampled_from([START_PRICE, START_PRICE, 10**8, 3 * 10**7, 4 * 10**8, 0]),
    )
    @_step
    def seed_jobs(self, n, u, to, cls, size, stage, choice, offset, preset, start_price):
        """A few well-formed jobs, of both classes in turn (targeted at a provider with a machine of
        the class, or open), moved on by 0-4 natural steps each, so every run starts with jobs at
        different stages (Open, Running, Submitted, Audit, settled). Sizes stay within what a new
        provider's stake covers at its audit rate (collateral 2.7x the payment by default).
        `offset` moves the run's start up to 11.6 days on (the beacon rounds, so every seed and
        draw differ: a round's seed hashes its number); half the runs start
        with another valid parameter preset (so with other audit rates). The first price round
        sets the token's price (USD per token); a few runs start with none (no job can be funded
        until a round is posted)."""
        self._warp(self.now + offset)
        if preset:
            self._exec("set_params", self.w.admin, None, self.mk.set_params, PARAM_PRESETS[preset].as_tuple())
            self.m.params = PARAM_PRESETS[preset]
        if start_price:
            assert self._price_round(start_price, 2) is None
        first = cls
        for i in range(n):
            cls = (first, CPU if first == H100 else H100)[i % 2]
            provider = ZERO if to == 3 else self.w.providers[to if cls == CPU else to % 2]
            price = self.m.offers.get((provider, cls), 2 * 10**15)
            user = self.w.users[(u + i) % 3]
            if size == "dust" and i % 2 == 0:  # below min_reputation_usd: it will not count as completed
                units = self._reputation_units(price, True)
            else:
                units = self.m.bal[user] * (size if size != "dust" else 100) // MAX_BPS // self._est_unit_tokens(price)
            self.act_create(user, provider, cls, bytes([i + 1]) * 32, units, price, 3600 * (i + 1), 3600)
        for i, jid in enumerate([j.id for j in self._live()]):
            for k in range((stage + i) % 5):
                if self._job(jid).status in LIVE:
                    self._advance(jid, choice + i + k)

    # ------------------------------------------------------------------ staking rules

    @rule(pi=PROVIDER, size=st.sampled_from([100, 1_000, 5_000, 10_000, 1, 0, 10_100]))
    @_step
    def stake(self, pi, size):
        p = self.w.providers[pi]
        self.act_stake(p, self.m.bal[p] * size // MAX_BPS)

    @rule(pi=st.integers(0, 3), size=st.sampled_from(["free", "half", "tenth", "1", "0", "free+1", "staked"]))
    @_step
    def request_unstake(self, pi, size):
        """Amounts relative to the free stake (staked - locked); "staked" includes the locked part."""
        p = (self.w.providers + [self.w.outsider])[pi]
        s = self.m.stakes.get(p, MStake())
        free = max(s.staked - s.locked, 0)  # a slash may leave staked below locked
        amount = {
            "free": free,
            "half": free // 2,
            "tenth": free // 10,
            "1": 1,
            "0": 0,
            "free+1": free + 1,
            "staked": s.staked,
        }[size]
        self.act_unstake(p, amount)

    @rule(pi=st.integers(0, 3))
    @_step
    def withdraw(self, pi):
        self.act_withdraw((self.w.providers + [self.w.outsider])[pi])

    @rule(pi=st.integers(0, 3), cls=CLASS, price=st.sampled_from([10**15, 3 * 10**15, 0, 10**16]))
    @_step
    def set_offer(self, pi, cls, price):
        p = (self.w.providers + [self.w.outsider])[pi]
        reason = "registry: unknown or disabled class" if price and cls not in CLASS_MIN_STAKE else None
        self._exec("set_offer", p, reason, self.reg.set_offer, cls, price)
        if reason is None:
            self.m.offers[(p, cls)] = price

    @rule(
        mid=st.integers(0, len(MACHINES) + 1),
        status=st.sampled_from(
            [MachineStatus.ACTIVE, MachineStatus.JAILED, MachineStatus.PENDING, MachineStatus.EXITED]
        ),
        attester=st.sampled_from([True, True, True, False]),
    )
    @_step
    def set_machine_status(self, mid, status, attester):
        sender = self.w.admin if attester else self.w.outsider
        m = self.m.machines.get(mid)
        if not attester:
            reason = "access_control: account is missing role"
        elif status not in (MachineStatus.PENDING, MachineStatus.ACTIVE, MachineStatus.JAILED):
            reason = "registry: invalid status"
        else:
            reason = self._attest(m, status, NO_EXPIRY if status == MachineStatus.ACTIVE else 0)
        self._exec("set_machine_status", sender, reason, self.reg.set_machine_status, mid, int(status))

    def _attest(self, m: MMachine | None, status: MachineStatus, until: int) -> str | None:
        if m is None:
            return "registry: unknown machine"
        if m.status == MachineStatus.EXITED:
            return "registry: machine exited"
        m.status, m.attested_until = status, until
        return None

    @rule(
        mid=st.integers(0, len(MACHINES) + 1),
        right_class=st.sampled_from([True, True, True, False]),
        passed=st.sampled_from([True, True, False]),
        until=st.sampled_from(["hour", "now+1", "day", "now", "max-1", "max"]),
        attester=st.sampled_from([True, True, True, False]),
        exited=st.sampled_from([False, False, False, True]),
    )
    @_step
    def record_attestation(self, mid, right_class, passed, until, attester, exited):
        """The oracle quorum's benchmark attestation: Active until a deadline, or Jailed; on an
        exited machine (picked when `exited` and there is one) a failure is recorded and changes
        nothing, a pass reverts; a jailed machine takes neither."""
        gone = sorted(i for i, mm in self.m.machines.items() if mm.status == MachineStatus.EXITED)
        if exited and gone:
            mid = gone[mid % len(gone)]
        sender = self.w.admin if attester else self.w.outsider
        m = self.m.machines.get(mid)
        cls = (m.cls if m else CPU) if right_class else UNKNOWN_CLASS
        valid_until = {
            "hour": self.now + 3600,
            "now+1": self.now + 1,
            "day": self.now + 86400,
            "now": self.now,
            "max-1": NO_EXPIRY - 1,
            "max": NO_EXPIRY,
        }[until]
        if not attester:
            reason = "access_control: account is missing role"
        elif m is None:
            reason = "registry: unknown machine"
        elif m.status == MachineStatus.JAILED:
            # Jail is left only through request_attestation (one failure, one slash); checked
            # before the class, as the contract does.
            reason = "registry: machine jailed (its provider must request_attestation)"
            STATS["~attestation of a jailed machine refused"] += 1
        elif m.cls != cls:
            reason = "registry: class mismatch"
        elif not passed and m.status == MachineStatus.EXITED:
            # A failed attestation of an exited machine is recorded (AttestationRecorded) and
            # leaves it Exited; a pass still reverts "registry: machine exited" (in _attest).
            reason = None
            STATS["~failed attestation of an exited machine"] += 1
        elif passed and valid_until <= self.now:
            reason = "registry: attestation already expired"
        elif passed and valid_until >= NO_EXPIRY:
            reason = "registry: attestation too long"
        else:
            reason = self._attest(
                m, MachineStatus.ACTIVE if passed else MachineStatus.JAILED, valid_until if passed else 0
            )
        self._exec("record_attestation", sender, reason, self.reg.record_attestation, mid, cls, passed, valid_until)
        if reason is None:
            logs = [e for e in self.reg.get_logs() if type(e).__name__ == "AttestationRecorded"]
            # On an exited machine the event reports attested_until 0 (the stored value stays).
            want = (mid, int(m.status), 0 if m.status == MachineStatus.EXITED else m.attested_until)
            assert [(int(e.machine_id), int(e.status), int(e.attested_until)) for e in logs] == [want], logs
            self._probe_attestation(mid, mid)

    @rule(mid=st.integers(0, len(MACHINES) + 1), own=st.sampled_from([False, True, True, True]))
    @_step
    def request_attestation(self, mid, own):
        """The provider sends its Active or Jailed machine back to Pending (the way out of jail)."""
        m = self.m.machines.get(mid)
        sender = m.provider if (m and own) else self.w.providers[mid % 3]
        if m is None:
            reason = "registry: unknown machine"
        elif m.provider != sender:
            reason = "registry: not the machine's provider"
        elif m.status not in (MachineStatus.ACTIVE, MachineStatus.JAILED):
            reason = "registry: machine not active or jailed"
        else:
            reason = None
            STATS[f"~request_attestation from {m.status.name}"] += 1
            m.status, m.attested_until = MachineStatus.PENDING, 0
        self._exec("request_attestation", sender, reason, self.reg.request_attestation, mid)

    # Exits are for good: mostly try someone else's machine, so machines do not all vanish.
    @rule(mid=st.integers(0, len(MACHINES) + 1), own=st.sampled_from([False, False, False, True]))
    @_step
    def exit_machine(self, mid, own):
        m = self.m.machines.get(mid)
        sender = m.provider if (m and own) else self.w.providers[mid % 3]
        if m is None:
            reason = "registry: unknown machine"
        elif m.provider != sender:
            reason = "registry: not the machine's provider"
        elif m.status == MachineStatus.EXITED:
            reason = "registry: machine exited"
        else:
            reason = None
            m.status = MachineStatus.EXITED
            self.m.required[sender] -= CLASS_MIN_STAKE[m.cls] * m.gpus  # what registering added
        self._exec("exit_machine", sender, reason, self.reg.exit_machine, mid)
        if reason is None:
            # The oracle's report on the machine comes in after the exit: a failure is recorded
            # and leaves it Exited (it must not revert: the hardware slash rides on it), a pass
            # reverts "registry: machine exited".
            for passed in (False, True):
                self.record_attestation.__wrapped__(self, mid, True, passed, "hour", True, True)

    @rule(
        pi=PROVIDER,
        size=st.sampled_from(["all", "half", "staked", "staked+1", "all-1", "1", "0", "double"]),
        ben=st.integers(0, 3),
        authorized=st.sampled_from([True, True, True, False]),
        unbonding_first=st.booleans(),
    )
    @_step
    def external_slash(self, pi, size, ben, authorized, unbonding_first):
        """A slash by another slasher (OracleHub): bonded stake first, then the unbonding entry."""
        p = self.w.providers[pi]
        if unbonding_first:  # prefer a provider with an unbonding entry: the slash reaches into it
            p = next((q for q in self.w.providers[pi:] + self.w.providers[:pi] if self.m.stakes[q].unbonding), p)
        s = self.m.stakes[p]
        amount = {
            "all": s.staked + s.unbonding,
            "half": (s.staked + s.unbonding) // 2,
            "staked": s.staked,
            "staked+1": s.staked + 1,
            "all-1": s.staked + s.unbonding - 1,
            "1": 1,
            "0": 0,
            "double": 2 * (s.staked + s.unbonding) + 1,
        }[size]
        amount = max(amount, 0)
        beneficiary = (ZERO, self.w.users[0], self.w.outsider, self.w.bystander)[ben]
        sender = self.w.slasher if authorized else self.w.outsider
        saved = copy.deepcopy(self.m)
        before = self._slashable()
        if not authorized:
            reason = "access_control: account is missing role"
        elif amount == 0:
            reason = "registry: amount is zero"
        else:
            reason = None
            slashed = self._slash(p, amount, beneficiary)
        out = self._exec("slash(external)", sender, reason, self.reg.slash, p, amount, b"\x01" * 32, beneficiary)
        if reason is None:
            assert out == slashed
            self._check_slashes(self.reg, before)
        else:
            self.m = saved

    @rule(
        call=st.sampled_from(["lock", "unlock", "unlock_record", "set_job_market", "set_job_market_zero"]),
        actor=ACTOR,
        pi=PROVIDER,
    )
    @_step
    def registry_guards(self, call, actor, pi):
        """Only the job market (set once) locks and unlocks collateral and writes reputation; the
        admin cannot set another market: every attempt reverts and changes nothing."""
        sender, p = self._actor(actor), self.w.providers[pi]
        mid = self._machine_for(p, CPU)
        if call in ("lock", "unlock", "unlock_record"):
            reason = "registry: caller is not the job market"
            if call == "lock":
                self._exec("lock_collateral", sender, reason, self.reg.lock_collateral, p, mid, CPU, 1)
            else:
                record = (1 << 0) | (1 << 120) if call == "unlock_record" else 0
                self._exec("unlock_collateral", sender, reason, self.reg.unlock_collateral, p, 1, record)
            return
        target = ZERO if call == "set_job_market_zero" else self.w.outsider
        if sender != self.w.admin:
            reason = "access_control: account is missing role"
        else:
            reason = "registry: job market already set"
        self._exec("set_job_market", sender, reason, self.reg.set_job_market, target)

    # ------------------------------------------------------------------ job rules

    def _create_args(self, u, target, cls, size, psel, user=None):
        user = user or (self.w.users + self.w.providers)[u]
        provider = (self.w.providers + [self.w.outsider, ZERO, ZERO])[target]
        if provider == ZERO:
            max_price = (10**15, 3 * 10**15, 10**16, 0)[psel]
            price = max_price
        else:
            offer = self.m.offers.get((provider, cls), 0)
            max_price = (offer, 2 * offer + 1, max(offer - 1, 0), 0)[psel] if offer else (10**15, 10**15, 1, 0)[psel]
            price = offer or max_price
        if size == "overflow":
            units = min(MAX_UINT // max(price, 1) + 1, MAX_UINT)
        elif size == "huge":
            units = MAX_UINT // max(price, 1)
        elif size in ("dust", "threshold"):
            units = self._reputation_units(price, size == "dust")
        else:
            units = self.m.bal[user] * size // MAX_BPS // self._est_unit_tokens(price) if price else 1000
        return user, provider, max_price, units, price

    def _reputation_units(self, price: int, dust: bool) -> int:
        """Compute units at `price` around min_reputation_usd: the fewest worth it, or one fewer
        (`dust`: worth less; 1 unit when even that is worth it, e.g. a threshold of 0)."""
        if not price:
            return 1000
        at = -(-self.m.params.min_reputation_usd // price)
        return max(at - 1 if dust else at, 1)

    def _max_tokens(self, slip: str, price: int, units: list) -> int:
        """The slippage bound a creator passes: what the job(s) escrow now, one wei less, more, or anything."""
        want = self._expected_payment(price, units)
        return {"exact": want, "less": max(want - 1, 0), "more": min(want * 2, MAX_UINT), "any": MAX_UINT}[slip]

    def _ensure_price(self):
        """What a client does before funding a job when Settlement has no fresh answer: has a round
        posted (by all three operators, so the deviation guard never refuses it)."""
        if not self._fresh():
            assert self._price_round(self.m.answer or START_PRICE, 3) is None

    @rule(
        u=CREATOR,
        to=st.integers(0, 5),
        cls=CLASS,
        size=SIZE_BPS,
        psel=st.sampled_from([0, 0, 1, 2, 3]),
        aw=WINDOW,
        cw=WINDOW,
        spec=HASH,
        slip=SLIP,
        fresh=FRESH,
    )
    @_step
    def create_job(self, u, to, cls, size, psel, aw, cw, spec, slip, fresh):
        if fresh:
            self._ensure_price()
        user, provider, max_price, units, price = self._create_args(u, to, cls, size, psel)
        p = self.m.params
        self.act_create(
            user,
            provider,
            cls,
            spec.to_bytes(32, "big"),
            units,
            max_price,
            self._window(aw, p.min_accept_window, p.max_accept_window),
            self._window(cw, p.min_complete_within, p.max_complete_within),
            self._max_tokens(slip, price, [units]),
        )

    @rule(
        u=CREATOR,
        to=st.integers(0, 5),
        cls=CLASS,
        size=SIZE_BPS,
        n=st.sampled_from([2, 3, 1, 0]),
        empty_at=st.integers(0, 5),
        aw=WINDOW,
        cw=WINDOW,
        slip=SLIP,
        fresh=FRESH,
    )
    @_step
    def create_jobs(self, u, to, cls, size, n, empty_at, aw, cw, slip, fresh):
        if fresh:
            self._ensure_price()
        user, provider, max_price, units, price = self._create_args(u, to, cls, size, 0)
        p = self.m.params
        specs = [ZERO32 if i == empty_at else (i + 7).to_bytes(32, "big") for i in range(n)]
        each = [max(units // max(n, 1) - i, 0) for i in range(n)]
        self.act_create_many(
            user,
            provider,
            cls,
            specs,
            each,
            max_price,
            self._window(aw, p.min_accept_window, p.max_accept_window),
            self._window(cw, p.min_complete_within, p.max_complete_within),
            self._max_tokens(slip, price, each),
        )

    def _permit_signature(self, owner_key: bytes, amount: int, nonce: int, deadline: int) -> tuple:
        """An EIP-2612 permit of `owner_key`'s account for JobMarket: (v, r, s)."""
        owner = Account.from_key(owner_key).address
        struct_hash = keccak(
            eth_abi.encode(
                ["bytes32", "address", "address", "uint256", "uint256", "uint256"],
                [PERMIT_TYPEHASH, owner, self.market, amount, nonce, deadline],
            )
        )
        sig = Account.unsafe_sign_hash(keccak(b"\x19\x01" + self.w.permit_domain + struct_hash), owner_key)
        return sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")

    @rule(
        u=st.integers(0, 3),
        to=st.integers(0, 5),
        cls=CLASS,
        size=st.sampled_from([10, 100, 500, 1_000, 10_100]),
        psel=st.sampled_from([0, 0, 1, 2, 3]),
        amount=st.sampled_from(["exact", "exact", "more", "max", "less", "zero"]),
        sig=st.sampled_from(["valid", "valid", "valid", "replay", "expired", "at_deadline", "wrong_amount"]),
        slip=SLIP,
        fresh=FRESH,
    )
    @_step
    def create_job_with_permit(self, u, to, cls, size, psel, amount, sig, slip, fresh):
        """The permit signer (u = 3) pays with a permit: valid, exactly at its deadline, expired,
        replayed (an old nonce) or signed for another amount; a user with an allowance (u < 3)
        passes the signer's signature (not its own: the permit fails and is ignored)."""
        if fresh:
            self._ensure_price()
        user = self.w.signer if u == 3 else self.w.users[u]
        _, provider, max_price, units, price = self._create_args(0, to, cls, size, psel, user=user)
        payment = self._expected_payment(price, [units])
        value = {"exact": payment, "more": payment + 1, "max": MAX_UINT, "less": max(payment - 1, 0), "zero": 0}[amount]
        value = min(value, MAX_UINT)
        nonce = self.m.signer_nonce
        deadline = self.now - 1 if sig == "expired" else self.now if sig == "at_deadline" else self.now + 3600
        signed = (self.w.signer, value, (nonce - 1 if nonce else 1) if sig == "replay" else nonce, deadline)
        if sig == "wrong_amount":
            signed = (self.w.signer, value ^ 1, nonce, deadline)
        v, r, s_ = self._permit_signature(SIGNER_KEY, *signed[1:])
        p = self.m.params
        args = (
            provider,
            cls,
            b"\x0b" * 32,
            units,
            max_price,
            self._window("hour", p.min_accept_window, p.max_accept_window),
            self._window("hour", p.min_complete_within, p.max_complete_within),
            self._max_tokens(slip, price, [units]),
        )
        self.act_create_with_permit(user, args, (value, deadline, v, r, s_), signed)

    # ------------------------------------------------------------------ signed-order rules

    def _order(self, to, cls, size, psel, cw, expiry, slip, spec=b"\x0c" * 32) -> dict:
        """A job order from the order user (its key signs), for provider `to` (or an open order)."""
        _, provider, max_price, units, _ = self._create_args(0, to, cls, size, psel, user=self.w.orderer)
        p = self.m.params
        self._order_salt += 1
        return {
            "user": self.w.orderer,
            "provider": provider,
            "class_id": cls,
            "spec_hash": spec,
            "compute_units": units,
            "price_per_unit": max_price,
            "max_tokens": self._max_tokens(slip, max_price, [units]),
            "accept_by": {"ok": self.now + 3600, "at": self.now, "past": self.now - 1}[expiry],
            "complete_within": self._window(cw, p.min_complete_within, p.max_complete_within),
            "salt": self._order_salt,
        }

    def _good_order(self, qi: int, to: int) -> tuple:
        """Arguments of `_order` for an order provider `qi % 3` (named, or open when `to` > 2) can
        fill on one of its machines: (to, cls, size, psel, how, expiry, cw, slip, fresh, again,
        well_formed)."""
        pi = qi % 3
        cls = next(c for (p, c, _) in MACHINES if p == pi)
        return (pi if to <= 2 else 4), cls, 100, 0, "valid", "ok", "hour", "any", True, False, True

    def _filler(self, order: dict, qi: int, cls: int, well_formed: bool, mid: int) -> tuple[str, int]:
        """Who fills: well formed, the provider named (for an open order, one with a machine of the
        class), on its machine of the class; else any provider or the outsider, on machine `mid`."""
        if not well_formed:
            return (self.w.providers + [self.w.outsider])[qi % 4], mid
        if order["provider"] != ZERO:
            q = order["provider"]
        else:
            able = [
                p for p in self.w.providers if any(m.provider == p and m.cls == cls for m in self.m.machines.values())
            ]
            q = (able or self.w.providers)[qi % len(able or self.w.providers)]
        return q, self._machine_for(q, cls)

    def _signed(self, order: dict, how: str, batch: bool) -> tuple[dict, bytes, bool]:
        """(order as passed, signature, whether the signature is the order user's over it)."""
        sign = sign_order_batch if batch else sign_order
        if how == "other":  # another key signs the same order
            return order, sign(Account.from_key(SIGNER_KEY), self.market, self.w.chain_id, order), False
        sig = sign(Account.from_key(ORDER_KEY), self.market, self.w.chain_id, order)
        if how == "tampered":  # the provider changes the price after the user signed
            return {**order, "price_per_unit": order["price_per_unit"] + 1}, sig, False
        return order, sig, True

    @rule(
        qi=st.integers(0, 3),
        to=st.integers(0, 5),
        cls=CLASS,
        size=SIZE_BPS,
        psel=st.integers(0, 3),
        result=HASH,
        how=st.sampled_from(["valid"] * 6 + ["other", "tampered"]),
        expiry=st.sampled_from(["ok", "ok", "ok", "ok", "at", "past"]),
        cw=WINDOW,
        slip=SLIP,
        fresh=FRESH,
        again=st.sampled_from([False] * 5 + [True]),
        well_formed=st.sampled_from([True, True, True, False]),
        mid=st.integers(0, len(MACHINES) + 1),
        good=st.sampled_from([True, True, False]),
    )
    @_step
    def fill_order(self, qi, to, cls, size, psel, result, how, expiry, cw, slip, fresh, again, well_formed, mid, good):
        """The order user signs an order; a provider (the one named, another, an outsider) fills it,
        with a result or without (Running); replays a filled or cancelled one; a signature by another
        key or over other terms. `good`: an order a provider can fill (its machine's class, its offer,
        a fresh price, moderate size), the network's common case."""
        if good:
            to, cls, size, psel, how, expiry, cw, slip, fresh, again, well_formed = self._good_order(qi, to)
        if fresh:
            self._ensure_price()
        singles = [o for o, b in self._orders if not b]
        if again and singles:
            order = singles[qi % len(singles)]
        else:
            order = self._order(to, cls, size, psel, cw, expiry, slip)
            self._orders.append((order, False))
        passed, sig, sig_ok = self._signed(order, how, False)
        q, m_id = self._filler(order, qi, cls, well_formed, mid)
        self.act_fill(q, passed, sig, sig_ok, m_id, result.to_bytes(32, "big"))

    @rule(
        qi=st.integers(0, 3),
        to=st.integers(0, 5),
        cls=CLASS,
        size=SIZE_BPS,
        n=st.sampled_from([1, 2, 3, 5, 0]),
        shape=st.sampled_from(["ok"] * 6 + ["short_units", "short_results", "zero_spec", "zero_result", "running"]),
        how=st.sampled_from(["valid"] * 6 + ["other", "tampered"]),
        expiry=st.sampled_from(["ok", "ok", "ok", "past"]),
        slip=SLIP,
        fresh=FRESH,
        again=st.sampled_from([False] * 5 + [True]),
        well_formed=st.sampled_from([True, True, True, False]),
        good=st.sampled_from([True, True, False]),
    )
    @_step
    def fill_order_batch(self, qi, to, cls, size, n, shape, how, expiry, slip, fresh, again, well_formed, good):
        """A batch order of n jobs (one signature), filled at once; bad shapes, replays, forgeries."""
        if good:
            to, cls, size, _, how, expiry, _, slip, fresh, again, well_formed = self._good_order(qi, to)
            shape, n = ("ok", "running")[qi % 2] if qi < 2 else "ok", max(n, 2)
        if fresh:
            self._ensure_price()
        batches = [o for o, b in self._orders if b]
        if again and batches:
            order = batches[qi % len(batches)]
        else:
            one = self._order(to, cls, size, 0, "hour", expiry, slip)
            units = [max(one["compute_units"] // max(n, 1), 1) if one["compute_units"] else 0] * n
            order = {k: v for k, v in one.items() if k not in ("spec_hash", "compute_units")}
            order["spec_hashes"] = [bytes([0x40 + i]) * 32 for i in range(n)]
            order["compute_units"] = units[:-1] if shape == "short_units" and units else units
            if shape == "zero_spec" and n:
                order["spec_hashes"][-1] = ZERO32
            order["max_tokens"] = self._max_tokens(slip, order["price_per_unit"], order["compute_units"])
            order = {
                k: order[k]
                for k in (
                    "user",
                    "provider",
                    "class_id",
                    "spec_hashes",
                    "compute_units",
                    "price_per_unit",
                    "max_tokens",
                    "accept_by",
                    "complete_within",
                    "salt",
                )
            }
            self._orders.append((order, True))
        k = len(order["spec_hashes"])
        results = [] if shape == "running" else [bytes([0x60 + i]) * 32 for i in range(k)]
        if shape == "short_results" and results:
            results = results[:-1]
        if shape == "zero_result" and results:
            results[0] = ZERO32
        passed, sig, sig_ok = self._signed(order, how, True)
        q, m_id = self._filler(order, qi, cls, well_formed, 0)
        self.act_fill_batch(q, passed, sig, sig_ok, m_id, results)

    @rule(pick=st.integers(0, 2**16), own=st.sampled_from([True, True, True, False]), fresh_order=st.booleans())
    @_step
    def cancel_order(self, pick, own, fresh_order):
        """The order user (or someone else) cancels an order: unfilled, filled, or cancelled before."""
        if fresh_order or not self._orders:
            order = self._order(0, CPU, 100, 0, "hour", "ok", "any")
            self._orders.append((order, False))
            batch = False
        else:
            order, batch = self._orders[pick % len(self._orders)]
        sender = self.w.orderer if own else self.w.users[pick % 3]
        self.act_cancel_order(sender, order, batch)

    @rule(who=st.integers(0, 2), frac=st.sampled_from([0, 1, 10, 100, 1_000, 5_000, 10_000, 10_001]))
    @_step
    def deposit(self, who, frac):
        """Prepay tokens for orders (the order user, a user with an allowance, the admin with none)."""
        a = (self.w.orderer, self.w.users[0], self.w.admin)[who]
        self.act_deposit(a, self.m.bal.get(a, 0) * frac // MAX_BPS if frac <= MAX_BPS else self.m.bal.get(a, 0) + 1)

    @rule(who=st.integers(0, 2), frac=st.sampled_from([0, 1, 5_000, 10_000, 10_001]))
    @_step
    def withdraw_deposit(self, who, frac):
        a = (self.w.orderer, self.w.users[0], self.w.outsider)[who]
        d = self.m.deposits.get(a, 0)
        self.act_withdraw_deposit(a, d * frac // MAX_BPS if frac <= MAX_BPS else d + 1)

    def _machine_for(self, q: str, cls: int) -> int:
        own = [mid for mid, m in self.m.machines.items() if m.provider == q]
        match = [mid for mid in own if self.m.machines[mid].cls == cls]
        return (match or own or [0])[0]

    @rule(ref=JOB_REF, qi=st.integers(0, 3), well_formed=st.booleans(), mid=st.integers(0, len(MACHINES) + 1))
    @_step
    def accept(self, ref, qi, well_formed, mid):
        jid, j, tup = self._pick(ref, (JobStatus.OPEN,))
        q = (self.w.providers + [self.w.users[0]])[qi]
        if well_formed:
            if j is not None and j.f["provider"] in self.w.providers:
                q = j.f["provider"]
            mid = self._machine_for(q, tup[3])
        self.act_accept(q, jid, tup, mid)

    @rule(
        ref=JOB_REF,
        qi=st.integers(0, 3),
        well_formed=st.booleans(),
        mid=st.integers(0, len(MACHINES) + 1),
        result=HASH,
    )
    @_step
    def accept_and_submit(self, ref, qi, well_formed, mid, result):
        """A provider takes an Open job and delivers its result in one transaction (or tries to:
        someone else's job, the wrong machine, an empty result hash, a closed job)."""
        jid, j, tup = self._pick(ref, (JobStatus.OPEN,))
        q = (self.w.providers + [self.w.users[0]])[qi]
        if well_formed:
            if j is not None and j.f["provider"] in self.w.providers:
                q = j.f["provider"]
            mid = self._machine_for(q, tup[3])
        self.act_accept_and_submit(q, jid, tup, mid, result.to_bytes(32, "big"))

    @rule(
        qi=PROVIDER,
        cls=st.sampled_from([CPU, H100]),
        n=st.sampled_from([2, 3, 1, 0]),
        start=st.integers(0, 2**16),
        extra=st.sampled_from([False, False, True]),
        ref=JOB_REF,
    )
    @_step
    def accept_jobs(self, qi, cls, n, start, extra, ref):
        """A batch of Open jobs of one class that `q` may take (of `cls` if it has some), maybe with
        one job picked at random inserted."""
        q = self.w.providers[qi]
        ok = [j for j in self.m.jobs if j.status == JobStatus.OPEN and self.now <= j.f["accept_by"]]
        if ok and not any(j.f["provider"] in (ZERO, q) for j in ok) and ok[0].f["provider"] in self.w.providers:
            q = ok[0].f["provider"]
        ok = [j for j in ok if j.f["provider"] in (ZERO, q)]
        if ok and not any(j.f["class_id"] == cls for j in ok):
            cls = ok[0].f["class_id"]
        ok = [j for j in ok if j.f["class_id"] == cls]
        batch = [(j.id, j.tup()) for j in (ok[start % len(ok) :] + ok[: start % len(ok)])[:n]] if ok else []
        others = [j for j in self.m.jobs if j.status == JobStatus.OPEN and (j.id, j.tup()) not in batch]
        if extra and ref[0] == "fit" and others:  # another Open job, of the other class if there is one
            others = [j for j in others if j.f["class_id"] != cls] or others
            j = others[ref[1] % len(others)]
            batch.insert(start % (len(batch) + 1), (j.id, j.tup()))
        elif extra:  # a duplicate, closed, unknown or tampered job
            jid, _, tup = self._pick(ref, (JobStatus.OPEN,))
            batch.insert(start % (len(batch) + 1), (jid, tup))
        self.act_accept_many(q, batch, self._machine_for(q, cls))

    @rule(ref=JOB_REF, actor=ACTOR, by_provider=st.booleans(), result=HASH)
    @_step
    def submit_result(self, ref, actor, by_provider, result):
        jid, j, tup = self._pick(ref, (JobStatus.RUNNING,))
        q = tup[1] if by_provider and tup[1] != ZERO else self._actor(actor)
        self.act_submit(q, jid, tup, result.to_bytes(32, "big"))

    @rule(
        pi=PROVIDER,
        n=st.sampled_from([2, 3, 1, 0]),
        start=st.integers(0, 2**16),
        extra=st.sampled_from([False, False, True]),
        ref=JOB_REF,
        empty_at=st.integers(0, 5),
        short=st.sampled_from([False, False, False, True]),
    )
    @_step
    def submit_results(self, pi, n, start, extra, ref, empty_at, short):
        """A batch of a provider's Running jobs (maybe with one picked at random, an empty result
        hash, or one result hash too few)."""
        q = self.w.providers[pi]
        ok = [j for j in self.m.jobs if j.status == JobStatus.RUNNING and j.f["provider"] == q]
        batch = [(j.id, j.tup()) for j in (ok[start % len(ok) :] + ok[: start % len(ok)])[:n]] if ok else []
        if extra:
            jid, _, tup = self._pick(ref, (JobStatus.RUNNING,))
            batch.insert(start % (len(batch) + 1), (jid, tup))
        results = [ZERO32 if i == empty_at else bytes([i + 1]) * 32 for i in range(len(batch) - (1 if short else 0))]
        self.act_submit_many(q, batch, results)

    @rule(ref=JOB_REF, actor=ACTOR, by_user=st.sampled_from([True, True, True, False]))
    @_step
    def dispute(self, ref, actor, by_user):
        """The job's user disputes (mostly); anyone else is refused after the status and window checks."""
        jid, _, tup = self._pick(ref, (JobStatus.SUBMITTED,))
        self.act_dispute(tup[0] if by_user else self._actor(actor), jid, tup)

    @rule(ref=JOB_REF, valid=st.booleans(), actor=ACTOR, verifier=st.sampled_from([True, True, True, False]))
    @_step
    def sampled_verdict(self, ref, valid, actor, verifier):
        """The verifier (or anyone else: refused) posts a verdict on a Submitted job, a drawn one
        when there is one (in audit from the draw on, no opening transaction: until
        challenge_end + audit_timeout); an undrawn one (pending round, not selected) is not in
        audit. The `audit_drawn` view is compared with the model's draw first."""
        jid, _, tup = self._pick(ref, (JobStatus.SUBMITTED,))
        drawn = [j for j in self.m.jobs if self._in_sampled_audit(j)]
        if ref[0] == "fit" and drawn:
            j = drawn[ref[1] % len(drawn)]
            jid, tup = j.id, j.tup()
        self.check_drawn_view(jid, tup)
        self.act_verdict(self.w.admin if verifier else self._actor(actor), jid, tup, valid)

    # ------------------------------------------------------------------ beacon rules

    def _draw_rounds(self) -> list[int]:
        """The rounds Submitted jobs are drawn from, pending ones first."""
        rounds = {j.f["draw_round"] for j in self.m.jobs if j.status == JobStatus.SUBMITTED}
        return sorted(rounds, key=lambda r: (self._round_state(r)[0] != ROUND_PENDING, r))

    @rule(
        pick=st.integers(0, 2**16),
        when=st.sampled_from(["start", "start", "start", "end", "late"]),
        choice=st.integers(0, 63),
    )
    @_step
    def reveal_round(self, pick, when, choice):
        """The members' services reveal for a round that Submitted jobs are drawn from (a pending
        one when there is one): at its start, at the last second of its window or one second late
        (refused: the round degrades), sometimes with one member silent (it degrades too)."""
        rounds = self._draw_rounds()
        r = rounds[pick % len(rounds)] if rounds and pick % 5 else self._round_now() + 1
        self._oracle_reveal(r, choice if choice % 4 == 3 else None, when)
        for j in self.m.jobs:
            if j.status == JobStatus.SUBMITTED and j.f["draw_round"] == r:
                self.check_drawn_view(j.id, j.tup())
                break

    @rule(
        mi=st.integers(0, 4),
        which=st.sampled_from(["job", "job", "current", "next", "last", "old"]),
        secret=st.sampled_from(["next", "next", "next", "tip", "skip", "junk"]),
        when=st.sampled_from(["now", "start", "start", "end", "late", "early"]),
        pick=st.integers(0, 2**16),
    )
    @_step
    def reveal(self, mi, which, secret, when, pick):
        """One reveal, well-formed or not: a candidate (or the outsider, mi = 4) reveals for a jobs'
        round, the current or next round, its last revealed round or an old one, with its next
        chain value, its last one again, one value too far or junk, now, at the round's start, at
        the last second of its window, one second late or one second early (on a branch)."""
        a = (self.w.candidates + [self.w.outsider])[mi]
        mm = self.m.members.get(a, MMember())
        rounds = self._draw_rounds()
        r = {
            "job": rounds[pick % len(rounds)] if rounds else self._round_now(),
            "current": self._round_now(),
            "next": self._round_now() + 1,
            "last": mm.last_round,
            "old": max(self._round_now() - 3, 0),
        }[which]
        nxt = self._secret(a, r)
        value = {
            "next": nxt,
            "tip": mm.tip if mm.tip != ZERO32 else None,
            "skip": self._secret_after(a, nxt) if nxt else None,
            "junk": keccak(pick.to_bytes(32, "big")),
        }[secret]
        if value is None and secret != "next":
            value = keccak(b"no such chain value")
        start = r * ROUND_SECONDS
        if when == "early":
            if start - 1 >= self.now:
                with self._what_if():
                    self._warp(start - 1)
                    assert self.act_reveal(a, r, value, " (early)") is not None
            return
        if when != "now":
            self._warp({"start": start, "end": start + REVEAL_WINDOW, "late": start + REVEAL_WINDOW + 1}[when])
        self.act_reveal(a, r, value, f" ({when})")

    def _secret_after(self, a: str, value: bytes) -> bytes | None:
        """The chain value after `value` on `a`'s chains (a reveal one step too far)."""
        key = self.w.member_keys.get(a)
        for g in range(self.m.commits.get(a, 0) if key else 0):
            nxt = member_chain(key, g).next_after(value)
            if nxt is not None:
                return nxt
        return None

    @rule(mi=st.integers(0, 4), fresh=st.sampled_from([True, True, True, False]))
    @_step
    def beacon_commit(self, mi, fresh):
        """A candidate (or the outsider) commits its next chain (or an empty commitment): it applies
        two rounds on; a commit while a pending chain already applies makes that one current."""
        self.act_commit((self.w.candidates + [self.w.outsider])[mi], fresh)

    @rule(
        mi=st.integers(0, 4),
        add=st.booleans(),
        by=st.sampled_from(["admin", "admin", "self", "outsider"]),
        commit=st.sampled_from([True, True, False]),
    )
    @_step
    def beacon_membership(self, mi, add, by, commit):
        """Governance adds or removes a member (or the member leaves by itself, or an outsider
        tries): effective two rounds on. An added member mostly commits its chain at once (else its
        rounds degrade until it does). mi = 4: the zero address."""
        a = (self.w.candidates + [ZERO])[mi]
        sender = {"admin": self.w.admin, "self": a, "outsider": self.w.outsider}[by]
        if a == ZERO and by == "self":
            return
        if self.act_membership(sender, a, add) is None and add and commit:
            self.act_commit(a)

    @rule(pick=st.integers(0, 2**16), edge=st.sampled_from([0, 1, REVEAL_WINDOW, REVEAL_WINDOW + 1, -1]))
    @_step
    def warp_to_round(self, pick, edge):
        """Jumps onto a jobs' round edge: one second before it starts (-1), its start (0), a second
        later (1), the last second of its reveal window (REVEAL_WINDOW) or one after (a round not
        fully revealed by then is degraded)."""
        rounds = self._draw_rounds()
        if rounds:
            r = rounds[pick % len(rounds)]
            self._warp(r * ROUND_SECONDS + edge)
            for j in self.m.jobs:
                if j.status == JobStatus.SUBMITTED and j.f["draw_round"] == r:
                    self.check_drawn_view(j.id, j.tup())
                    break

    @rule(ref=JOB_REF, valid=st.booleans(), verifier=st.sampled_from([True, True, True, False]))
    @_step
    def post_verdict(self, ref, valid, verifier):
        jid, _, tup = self._pick(ref, (JobStatus.AUDIT,))
        self.act_verdict(self.w.admin if verifier else self.w.outsider, jid, tup, valid)

    @rule(ref=JOB_REF, actor=ACTOR)
    @_step
    def finalize(self, ref, actor):
        jid, _, tup = self._pick(
            ref,
            (
                JobStatus.SUBMITTED,
                JobStatus.AUDIT,
            ),
        )
        self.act_finalize(self._actor(actor), jid, tup)

    @rule(
        n=st.sampled_from([2, 3, 4, 1, 0]),
        start=st.integers(0, 2**16),
        wait=st.booleans(),
        extra=st.sampled_from([False, False, True]),
        ref=JOB_REF,
        actor=ACTOR,
        by_provider=st.booleans(),
    )
    @_step
    def finalize_many(self, n, start, wait, extra, ref, actor, by_provider):
        """A batch of Submitted / Audit jobs (after waiting out their windows if `wait`: then the
        draws are final, and time moves past the audit deadlines of the drawn ones too), maybe
        grouped by provider (the contract pays each run of one provider's jobs at once, and counts
        them in its reputation at once), maybe with one job picked at random inserted."""
        ok = [j for j in self.m.jobs if j.status in (JobStatus.SUBMITTED, JobStatus.AUDIT)]
        chosen = (ok[start % len(ok) :] + ok[: start % len(ok)])[:n] if ok else []
        if by_provider:
            chosen.sort(key=lambda j: j.f["provider"])
        if wait and chosen:
            self._warp(max(j.deadline() for j in chosen) + 1)
            # Past their challenge windows the draws are final; no verdict comes for the drawn
            # jobs: their sampled audits time out (they finalize with audit_timed_out).
            drawn = [j for j in chosen if self._in_sampled_audit(j)]
            if drawn:
                self._warp(max(self._audit_deadline(j) for j in drawn) + 1)
        batch = [(j.id, j.tup()) for j in chosen]
        if extra:
            jid, _, tup = self._pick(ref, (JobStatus.SUBMITTED, JobStatus.AUDIT))
            batch.insert(start % (len(batch) + 1), (jid, tup))
        self.act_finalize_many(self._actor(actor), batch)

    @rule(by=st.integers(0, 10), to=st.integers(0, 8))
    @_step
    def claim(self, by, to):
        """Anyone claims for anyone: a provider for itself or another, provider 0's second address,
        a user, the outsider, the admin, the permit signer, the bystander; for a provider (credited
        or not), provider 0's second address, a user or the zero address (nothing to claim)."""
        sender = (self.actors + [self.w.second, self.w.signer, self.w.bystander])[by]
        self.act_claim(sender, (self.w.providers * 2 + [self.w.second, self.w.users[0], ZERO])[to])

    @rule(
        pi=st.integers(0, 1),
        cls=st.sampled_from([CPU, H100]),
        k=st.sampled_from([2, 3]),
        u=USER,
        choice=st.integers(0, 63),
        move_bps=st.sampled_from([0, 1_000, -1_000, 1_900, -1_900, 500, -500, None]),
        dust=st.sampled_from([False, False, True]),
    )
    @_step
    def batch_lifecycle(self, pi, cls, k, u, choice, move_bps, dust):
        """One provider's batch end to end (few runs otherwise hold several of one provider's jobs
        in Submitted at once): create_jobs targeted at it, accept_jobs, submit_results, the
        members reveal the round they are drawn from (one of them silent now and then: all are
        drawn), then finalize_many once the window is over, of the jobs not drawn (the drawn ones
        are in audit and the verifier passes them first), or of all of them (it reverts when one
        is drawn: its audit is still in progress), maybe
        with another provider's job in the middle (two runs). Each run of one provider's jobs is
        credited and counted in its reputation at once. Before that the price moves by `move_bps`
        (a fresh round) or nobody posts one (None: the answer may be stale by then); with an
        odd `choice` the provider, or anyone, then claims in the same block (one burn, one mint
        of the USD value at that price, at most the escrow less the fee; the cap when stale).
        With `dust`, every job is worth one unit less than min_reputation_usd: the run is paid
        and its collateral released, but the provider's `completed` does not move."""
        q, user, p = self.w.providers[pi], self.w.users[u], self.m.params
        offer = self.m.offers.get((q, cls), 0)
        if not offer:
            return
        self._ensure_price()
        units = max(self.m.bal[user] // 200 // self._est_unit_tokens(offer), 1)  # 0.5% of the user's balance each
        if dust:
            units = self._reputation_units(offer, True)
        n0 = self.m.created
        specs = [bytes([0x20 + i]) * 32 for i in range(k)]
        aw = self._window("hour", p.min_accept_window, p.max_accept_window)
        cw = self._window("hour", p.min_complete_within, p.max_complete_within)
        if self.act_create_many(user, q, cls, specs, [units] * k, offer, aw, cw) is not None:
            return
        ids = list(range(n0 + 1, n0 + k + 1))
        # Undo what other rules did to q's machine and stake (jail, expiry, slashes, unstaking).
        mid = self._machine_for(q, cls)
        if self.m.machines[mid].status != MachineStatus.EXITED and (
            self.m.machines[mid].status != MachineStatus.ACTIVE or self.now > self.m.machines[mid].attested_until
        ):
            reason = self._attest(self.m.machines[mid], MachineStatus.ACTIVE, NO_EXPIRY)
            active = int(MachineStatus.ACTIVE)
            self._exec("set_machine_status", self.w.admin, reason, self.reg.set_machine_status, mid, active)
        s = self.m.stakes[q]
        need = self.m.required[q] + s.locked + sum(self._job(i).f["payment"] for i in ids) * 11 - s.staked
        if need > 0 and self.m.bal[q] >= need:
            self.act_stake(q, need)
        if self.act_accept_many(q, [(i, self._job(i).tup()) for i in ids], mid):
            return
        results = [bytes([i % 250 + 1]) * 32 for i in ids]
        if self.act_submit_many(q, [(i, self._job(i).tup()) for i in ids], results):
            return
        self._oracle_reveal(self._job(ids[0]).f["draw_round"], choice if choice % 8 == 7 else None)
        self._warp(max(self._job(i).f["challenge_end"] for i in ids) + 1)
        if choice % 4:
            for i in ids:  # the drawn jobs are in audit (no transaction): the verifier passes them
                if self._in_sampled_audit(self._job(i)):
                    assert self.act_verdict(self.w.admin, i, self._job(i).tup(), True) is None
            ids = [i for i in ids if self._job(i).status == JobStatus.SUBMITTED] or ids
        jobs = [self._job(i) for i in ids]
        if move_bps is not None:
            target = min(max(self.m.answer * (MAX_BPS + move_bps) // MAX_BPS, MIN_ANSWER), MAX_ANSWER)
            self._price_round(target, 2)  # within the deviation guard
        refs = [(j.id, j.tup()) for j in jobs]
        other = [j for j in self.m.jobs if j.status in (JobStatus.SUBMITTED, JobStatus.AUDIT) and j.f["provider"] != q]
        if other and choice % 3 == 0:
            refs.insert(1, (other[0].id, other[0].tup()))
        self.act_finalize_many(self._actor(choice), refs)
        if choice % 2:  # the provider, or anyone, claims in the same block
            self.act_claim(q if choice % 4 == 1 else self._actor(choice // 4), q)

    @rule(ref=JOB_REF, actor=ACTOR)
    @_step
    def expire(self, ref, actor):
        jid, _, tup = self._pick(
            ref,
            (
                JobStatus.OPEN,
                JobStatus.RUNNING,
            ),
        )
        self.act_expire(self._actor(actor), jid, tup)

    @rule(ref=JOB_REF, by_user=st.booleans(), actor=ACTOR)
    @_step
    def cancel(self, ref, by_user, actor):
        jid, _, tup = self._pick(ref, (JobStatus.OPEN,))
        self.act_cancel(tup[0] if by_user else self._actor(actor), jid, tup)

    def _advance(self, jid: int, choice: int):
        """The natural next step of a live job (may still revert, as the model predicts)."""
        # By id: a reverted action replaces the model (see _atomic), so model objects go stale.
        j = self._job(jid)
        tup, f = j.tup(), j.f
        keeper = self._actor(choice)
        STATS[f"~advance {j.status.name}"] += 1
        if j.status == JobStatus.OPEN:
            if self.now > f["accept_by"]:
                return self.act_expire(keeper, jid, tup)
            if choice % 7 == 6:
                return self.act_cancel(f["user"], jid, tup)
            if f["provider"] != ZERO:
                q = f["provider"]
            else:
                able = [
                    m.provider
                    for m in self.m.machines.values()
                    if m.cls == f["class_id"] and m.status == MachineStatus.ACTIVE
                ] or self.w.providers
                q = able[choice % len(able)]
            if choice % 5 == 4:  # the batch form, for one job
                return self.act_accept_many(q, [(jid, tup)], self._machine_for(q, f["class_id"]))
            if choice % 5 == 3:  # a short job, run before taking it: accepted and delivered at once
                result = bytes([choice % 250 + 1]) * 32
                return self.act_accept_and_submit(q, jid, tup, self._machine_for(q, f["class_id"]), result)
            return self.act_accept(q, jid, tup, self._machine_for(q, f["class_id"]))
        if j.status == JobStatus.RUNNING:
            if self.now > f["complete_by"]:
                return self.act_expire(keeper, jid, tup)
            result = bytes([choice % 250 + 1]) * 32
            if choice % 3 == 2:  # the submission's time decides the draw round
                self._warp(self.now + ROUND_SECONDS)
            if choice % 5 == 4:
                return self.act_submit_many(f["provider"], [(jid, tup)], [result])
            return self.act_submit(f["provider"], jid, tup, result)
        if j.status == JobStatus.SUBMITTED:
            if self._round_state(f["draw_round"])[0] == ROUND_PENDING and choice % 4 != 3:
                # The members reveal the job's round (one of them silent now and then: degraded).
                self._oracle_reveal(f["draw_round"], choice // 7 if choice % 7 == 6 else None)
                j = self._job(jid)
            in_window = self.now <= f["challenge_end"]
            valid = (choice // 2) % 2 == 0
            if in_window and self._drawn(j) and choice % 8 < 5:
                # In audit from the draw on: the oracle service audits it, the verifier posts its verdict.
                return self.act_verdict(self.w.admin, jid, tup, valid)
            if in_window and choice % 2 == 0:  # the user disputes (someone else now and then: refused)
                return self.act_dispute(f["user"] if choice % 6 else self._actor(choice // 3), jid, tup)
            if in_window:
                boa.env.timestamp = f["challenge_end"] + 1
            # The draw is final now. A drawn job: its verdict (after the window, before the audit
            # deadline), or no verdict comes and its audit times out (finalize then pays it), or
            # finalize too early (refused: its audit is in progress).
            if self._drawn(j) and choice % 3 == 0:
                return self.act_verdict(self.w.admin, jid, tup, valid)
            if self._drawn(j) and choice % 3 == 1:
                self._warp(self._audit_deadline(j) + 1)
            if choice % 5 == 4:
                return self.act_finalize_many(keeper, [(jid, tup)])
            return self.act_finalize(keeper, jid, tup)
        if j.status == JobStatus.AUDIT:
            if self.now <= j.dispute[2]:
                return self.act_verdict(self.w.admin, jid, tup, (choice // 2) % 2 == 0)
            return self.act_finalize(keeper, jid, tup)

    @rule(ref=JOB_REF, choice=st.integers(0, 63), depth=st.integers(1, 4))
    @_step
    def advance(self, ref, choice, depth):
        """Moves a live job on, `depth` steps in a row (so a whole lifecycle can happen between
        two other rules). Picks a status first, so the few jobs that got far (Submitted, Audit)
        are moved as often as the many Open ones."""
        statuses = sorted({j.status for j in self._live()})
        if not statuses:
            return
        jid = self._pick(("fit", ref[1]), (statuses[(ref[1] // 7) % len(statuses)],))[0]
        for i in range(depth):
            if self._job(jid).status not in LIVE:
                return
            self._advance(jid, choice + i)
        if self._job(jid).status in LIVE and choice % 4 == 3:  # probe its next deadline
            self._probe_job(jid, choice)

    # Four more copies of `advance` raise its weight, so jobs get through their lifecycles.
    @rule(ref=JOB_REF, choice=st.integers(0, 63), depth=st.integers(1, 4))
    @_step
    def advance_2(self, ref, choice, depth):
        self.advance.__wrapped__(self, ref, choice, depth)

    @rule(ref=JOB_REF, choice=st.integers(0, 63), depth=st.integers(1, 4))
    @_step
    def advance_3(self, ref, choice, depth):
        self.advance.__wrapped__(self, ref, choice, depth)

    @rule(ref=JOB_REF, choice=st.integers(0, 63), depth=st.integers(1, 4))
    @_step
    def advance_4(self, ref, choice, depth):
        self.advance.__wrapped__(self, ref, choice, depth)

    @rule(ref=JOB_REF, choice=st.integers(0, 63), depth=st.integers(1, 4))
    @_step
    def advance_5(self, ref, choice, depth):
        self.advance.__wrapped__(self, ref, choice, depth)

    # ------------------------------------------------------------------ governance, keeper rules

    @rule(pause=st.booleans(), pauser=st.sampled_from([True, True, True, False]))
    @_step
    def pause(self, pause, pauser):
        sender = self.w.admin if pauser else self.w.outsider
        if not pauser:
            reason = "access_control: account is missing role"
        elif pause and self.m.paused:
            reason = "pausable: contract is paused"
        elif not pause and not self.m.paused:
            reason = "pausable: contract is not paused"
        else:
            reason = None
            self.m.paused = pause
        self._exec("pause" if pause else "unpause", sender, reason, self.mk.pause if pause else self.mk.unpause)

    @staticmethod
    def _params_reason(p: MarketParams) -> str | None:
        """JobMarketParams.check (called by JobMarket's set_params), in its order."""
        checks = (
            (p.fee_bps <= 2_000, "job_market: fee too high"),
            (p.collateral_bps > 0, "job_market: collateral is zero"),
            (p.collateral_bps <= 1_000_000, "job_market: collateral too high"),
            (p.challenge_window >= 60, "job_market: challenge window too short"),
            (p.challenge_window <= MAX_WINDOW, "job_market: challenge window too long"),
            (p.audit_timeout >= 60, "job_market: audit timeout too short"),
            (p.audit_timeout <= MAX_WINDOW, "job_market: audit timeout too long"),
            (p.min_accept_window >= 60, "job_market: accept window bounds invalid"),
            (p.min_accept_window <= p.max_accept_window, "job_market: accept window bounds invalid"),
            (p.max_accept_window <= MAX_WINDOW, "job_market: accept window bounds invalid"),
            (p.min_complete_within >= 60, "job_market: completion bounds invalid"),
            (p.min_complete_within <= p.max_complete_within, "job_market: completion bounds invalid"),
            (p.max_complete_within <= MAX_WINDOW, "job_market: completion bounds invalid"),
            (p.dispute_bond_bps <= MAX_BPS, "job_market: dispute bond too high"),
            (p.noshow_penalty_bps <= MAX_BPS, "job_market: no-show penalty too high"),
            (p.user_compensation_bps + p.challenger_reward_bps <= MAX_BPS, "job_market: slash shares above 100%"),
            (p.base_audit_bps <= MAX_BPS, "job_market: audit rate above 100%"),
            (p.new_provider_audit_bps <= MAX_BPS, "job_market: audit rate above 100%"),
            (p.bad_record_audit_bps <= MAX_BPS, "job_market: audit rate above 100%"),
            (p.trusted_after_jobs <= MAX_TRUSTED_AFTER_JOBS, "job_market: trusted_after_jobs too high"),
            (p.detection_bps >= MAX_BPS // 2, "job_market: detection rate below 50%"),
            (p.detection_bps <= MAX_BPS, "job_market: detection rate above 100%"),
            (p.min_reputation_usd <= MAX_REPUTATION_USD, "job_market: reputation threshold too high"),
            # JobMarket._set_params, after the checker: the draw is final before the window ends.
            (
                p.challenge_window > ROUND_SECONDS + REVEAL_WINDOW,
                "job_market: challenge window ends before the audit draw",
            ),
        )
        return next((reason for ok, reason in checks if not ok), None)

    # The three main valid presets twice as often as each invalid one (and the threshold at its bound).
    @rule(
        preset=st.sampled_from([0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9]),
        admin=st.sampled_from([True, True, True, False]),
    )
    @_step
    def set_params(self, preset, admin):
        new = PARAM_PRESETS[preset]
        if not admin:
            reason = "access_control: account is missing role"
        else:
            reason = self._params_reason(new)
            if reason is None:
                # A sampled audit's deadline is derived from the audit_timeout now (not stored):
                # the change moves it for drawn jobs in flight (a dispute keeps its own).
                if new.audit_timeout != self.m.params.audit_timeout:
                    for j in filter(self._in_sampled_audit, self._live()):
                        was = "open" if self._audit_deadline(j) >= self.now else "past"
                        will = "open" if j.f["challenge_end"] + new.audit_timeout >= self.now else "past"
                        STATS[f"~set_params moved a drawn job's audit deadline ({was} -> {will})"] += 1
                self.m.params = new
        self._exec("set_params", self.w.admin if admin else self.w.outsider, reason, self.mk.set_params, new.as_tuple())

    # ------------------------------------------------------------------ price

    def _price_round(self, target: int, signers: int, spread: bool = False, wrong_round: bool = False) -> str | None:
        """PriceFeed.submit_round by an outsider: `signers` of the 3 operators observe `target` now
        (with `spread`, the first observes half of it: beyond the spread guard). Refused for a
        replayed round id, a round within `min_round_interval` of the last, fewer than 2 signers,
        observations that disagree, or a move above the deviation guard from a fresh previous
        answer unless all three signed."""
        w, m = self.w, self.m
        r = m.round + (0 if wrong_round else 1)
        prices = [target] * signers
        if spread and signers >= 2:
            prices[0] = max(1, target // 2)
        obs, sigs = [], []
        for op, price in zip(w.ops[:signers], prices, strict=True):
            o = {"round_id": r, "price": price, "observed_at": self.now}
            obs.append(R.report_tuple(R.PRICE_FIELDS, o))
            sigs.append(_sign_price(op.key, str(w.feed.address), w.chain_id, r, price, self.now))
        answer = sorted(prices)[(signers - 1) // 2]
        lo, hi = min(prices), max(prices)
        if r <= m.round:
            reason = "price_feed: wrong round"
        elif m.round > 0 and self.now < m.updated + PF.min_round_interval:
            reason = "price_feed: too soon after the last round"
        elif signers < 2:
            reason = "price_feed: not enough observations"
        elif (hi - lo) * MAX_BPS > lo * PF.max_spread_bps:
            reason = "price_feed: observations disagree"
        elif (
            m.round > 0
            and signers < len(w.ops)
            and self.now <= m.updated + PF.max_age
            and abs(answer - m.answer) * MAX_BPS > m.answer * PF.max_deviation_bps
        ):
            reason = "price_feed: deviation too large"
        else:
            reason = None
        self._exec("submit_round", w.outsider, reason, w.feed.submit_round, r, obs, sigs)
        if reason is None:
            STATS[f"~price round {'(fresh before)' if self._fresh() else '(stale or first)'}"] += 1
            m.round, m.answer, m.updated = r, answer, self.now
        return reason

    def _check_quote(self):
        """Settlement.quote and price views against the model (reverts included)."""
        reason, unit_tokens = self._unit_tokens(10**15)
        out = self._exec("quote(view)", self.w.outsider, reason, self.w.settlement.quote, 10**15)
        if reason is None:
            assert out == unit_tokens
            assert self.w.settlement.price() == self.m.answer

    @rule(
        move_bps=st.sampled_from([0, 100, -100, 500, -500, 1_500, -1_500, 2_000, -2_000, 2_001, -2_001, 5_000, -5_000]),
        signers=st.sampled_from([2, 2, 2, 3, 1]),
        spread=st.sampled_from([False, False, False, True]),
        wrong_round=st.sampled_from([False] * 7 + [True]),
        refresh=st.sampled_from([True, True, False]),
    )
    @_step
    def price_round(self, move_bps, signers, spread, wrong_round, refresh):
        """The token price moves: a round within the feed's deviation guard (20%) mostly, beyond it
        sometimes (refused unless every operator signed or the previous answer is stale). With
        `refresh`, a round at the current answer first (so the guard applies to the move)."""
        if refresh and self.m.round and self.now > self.m.updated + PF.max_age:
            assert self._price_round(self.m.answer, 3) is None
        base = self.m.answer or START_PRICE
        target = min(max(base * (MAX_BPS + move_bps) // MAX_BPS, MIN_ANSWER), MAX_ANSWER)
        self._price_round(target, signers, spread, wrong_round)
        self._check_quote()

    @rule(edge=st.sampled_from([0, 1, 1]))
    @_step
    def price_goes_stale(self, edge):
        """No round for a while: time moves onto the last second Settlement takes the latest
        answer (edge 0: still quotes) or one past it (edge 1: quote reverts, settlements pay the cap)."""
        if self.m.round:
            t = self.m.updated + SETTLEMENT_MAX_AGE + edge
            if t > self.now:
                boa.env.timestamp = t
        self._check_quote()

    # ------------------------------------------------------------------ time

    def _deadlines(self, attestations: bool = False) -> list[int]:
        """Live jobs' deadlines (a drawn job's audit deadline too) and unbonding releases (and, if
        asked, attestation expiries less than a month away)."""
        out = [j.deadline() for j in self._live()]
        out += [self._audit_deadline(j) for j in self._live() if self._in_sampled_audit(j)]
        out += [s.release for s in self.m.stakes.values() if s.unbonding]
        if attestations:
            out += [
                m.attested_until
                for m in self.m.machines.values()
                if self.now <= m.attested_until <= self.now + MAX_WINDOW
            ]
        return sorted(out)

    @rule(pick=st.integers(0, 2**16), delta=st.sampled_from([0, 1, -1]))
    @_step
    def warp_to_deadline(self, pick, delta):
        """Jumps to a live deadline (last allowed second), one before it or one after it."""
        deadlines = self._deadlines(attestations=True)
        if deadlines:
            target = deadlines[pick % len(deadlines)] + delta
            if target > self.now:
                boa.env.timestamp = target

    @rule(
        seconds=st.sampled_from([1, 59, 60, 61, 600, 3600, 3600, 6 * 3600, 86400, UNBONDING_PERIOD_SECONDS, MAX_WINDOW])
    )
    @_step
    def warp(self, seconds):
        boa.env.timestamp = self.now + seconds

    # ------------------------------------------------------------------ liveness

    @contextlib.contextmanager
    def _what_if(self):
        """A throwaway branch: the chain (snapshot) and the model come back as they were."""
        saved = copy.deepcopy(self.m)
        try:
            with boa.env.anchor():
                yield
        finally:
            self.m = saved

    def _in_window(self, jid: int, choice: int):
        """The well-formed action that a job's current deadline closes: accept, submit, dispute, verdict."""
        j = self._job(jid)
        tup, f = j.tup(), j.f
        if j.status == JobStatus.OPEN:
            able = [m.provider for m in self.m.machines.values() if m.cls == f["class_id"]] or self.w.providers
            q = f["provider"] if f["provider"] != ZERO else able[choice % len(able)]
            return self.act_accept(q, jid, tup, self._machine_for(q, f["class_id"]))
        if j.status == JobStatus.RUNNING:
            return self.act_submit(f["provider"], jid, tup, b"\x05" * 32)
        if j.status == JobStatus.SUBMITTED:
            # A drawn job is in audit: the verdict (its user's dispute is refused now and then).
            if self._drawn(j) and (choice % 4 or self.now > f["challenge_end"]):
                return self.act_verdict(self.w.admin, jid, tup, choice % 2 == 0)
            return self.act_dispute(f["user"], jid, tup)
        return self.act_verdict(self.w.admin, jid, tup, choice % 2 == 0)

    def _probe_job(self, jid: int, choice: int):
        """The edges of a live job's exit deadline D (see probe_deadline); for a drawn Submitted job
        D is its audit deadline (challenge_end + audit_timeout), and its challenge window's end is
        probed too (finalize still refused one second after it: the audit is in progress)."""
        j = self._job(jid)
        d, tup, status = self._exit_deadline(j), j.tup(), j.status
        exit_fn = self.act_expire if status in (JobStatus.OPEN, JobStatus.RUNNING) else self.act_finalize
        edges = [(d, "deadline"), (d + 1, "deadline+1")]
        label = status.name
        if self._in_sampled_audit(j):
            label = "SUBMITTED (drawn)"
            ce = j.f["challenge_end"]
            edges = [(ce, "challenge_end"), (ce + 1, "challenge_end+1")] + edges
        for t, edge in edges:
            if t < self.now:
                continue
            STATS[f"~probe {label} at {edge}"] += 1
            with self._what_if():
                boa.env.timestamp = t
                self._in_window(jid, choice)
            with self._what_if():
                boa.env.timestamp = t
                reason = exit_fn(self._actor(choice), jid, tup)
                j = self._job(jid)
                if t > d and self._in_sampled_audit(j) and t <= self._audit_deadline(j):
                    # Drawn only now (its round was pending when probed): in audit from the draw on,
                    # finalize refuses it until its audit deadline; with no verdict it times out.
                    assert reason == "job_market: job drawn for audit", f"job {jid}: drawn, finalize: {reason}"
                    boa.env.timestamp = self._audit_deadline(j) + 1
                    reason = exit_fn(self._actor(choice), jid, tup)
                assert (reason is None) == (t > d), f"job {jid}: exit at {edge}: {reason}"
                if reason is None:
                    assert self._job(jid).status in TERMINAL
                    self._check_all()

    def _probe_draw(self, jid: int, choice: int):
        """A Submitted job's draw round at its edges, on throwaway branches: one second before it
        starts (reveals refused: pending), at its start and at the last second of its reveal
        window (the members reveal, one of them silent with an odd `choice`: ready, or still
        pending), and one second after (reveals refused: a round not fully revealed is degraded
        and the job drawn). The views and post_verdict (refused until the job is drawn: it is in
        audit from then on) agree with the model at each."""
        j = self._job(jid)
        r, tup = j.f["draw_round"], j.tup()
        start = r * ROUND_SECONDS
        for t in (start - 1, start, start + REVEAL_WINDOW, start + REVEAL_WINDOW + 1):
            if t < self.now:
                continue
            with self._what_if():
                boa.env.timestamp = t
                self.check_drawn_view(jid, tup)
                self._oracle_reveal(r, choice if choice % 2 else None, "now")
                state = ROUND_NAMES[self._round_state(r)[0]]
                drawn = "drawn" if self._drawn(self._job(jid)) else "not drawn"
                STATS[f"~probe draw at start{t - start:+d}: {state}, {drawn}"] += 1
                self.check_drawn_view(jid, tup)
                self.act_verdict(self.w.admin, jid, tup, choice % 4 < 2)

    @rule(ref=JOB_REF, choice=st.integers(0, 7))
    @_step
    def probe_deadline(self, ref, choice):
        """Exact boundaries, on throwaway branches, around the deadline D of one live job in each
        live status: at D the action D closes (accept / submit / dispute / verdict) is still open
        (the model judges the call) and the permissionless exit (expire / finalize) reverts; at
        D + 1 it is the other way round, and the exit ends the job whatever else holds (paused,
        jailed, slashed). A drawn Submitted job's D is its audit deadline (the verdict's last
        second), and at its challenge window's end and one second later finalize still reverts.
        Same for a provider's unbonding release and `withdraw`, and for a machine's attestation
        expiry."""
        for status in LIVE:
            _, j, _ = self._pick(("fit", ref[1]), (status,))
            if j is not None and j.status == status:  # None: no job yet
                self._probe_job(j.id, choice)
        # A drawn Submitted job (in its sampled audit) when there is one: its two deadlines.
        drawn = [j for j in self._live() if self._in_sampled_audit(j)]
        if drawn:
            self._probe_job(drawn[ref[1] % len(drawn)].id, choice)
        # A draw round's edges, on a job whose round is still pending when there is one.
        submitted = [j for j in self.m.jobs if j.status == JobStatus.SUBMITTED]
        pool = [j for j in submitted if self._round_state(j.f["draw_round"])[0] == ROUND_PENDING] or submitted
        if pool:
            self._probe_draw(pool[ref[1] % len(pool)].id, choice)
        p = self.w.providers[choice % 3]
        release, unbonding = self.m.stakes[p].release, self.m.stakes[p].unbonding
        for t in (release - 1, release):
            if unbonding and t >= self.now:
                with self._what_if():
                    boa.env.timestamp = t
                    assert (self.act_withdraw(p) is None) == (t >= release)
        expiring = [
            mid
            for mid, m in self.m.machines.items()
            if m.status == MachineStatus.ACTIVE and self.now <= m.attested_until < NO_EXPIRY
        ]
        if expiring:
            self._probe_attestation(expiring[choice % len(expiring)], choice)

    def _probe_attestation(self, mid: int, choice: int):
        """An attestation's expiry, on throwaway branches: the machine still takes a (fresh, open)
        job at `attested_until`, and no longer a second later."""
        m = self.m.machines[mid]
        if m.status == MachineStatus.ACTIVE and self.now <= m.attested_until < NO_EXPIRY:
            for t in (m.attested_until, m.attested_until + 1):
                with self._what_if():
                    if self.m.paused:
                        self._exec("unpause", self.w.admin, None, self.mk.unpause)
                        self.m.paused = False
                    p = self.m.params
                    boa.env.timestamp = max(self.now, t - 1)  # the job is created just before
                    self._ensure_price()
                    if (
                        self.act_create(
                            self.w.users[choice % 3],
                            ZERO,
                            m.cls,
                            b"\x09" * 32,
                            1_000,
                            10**15,
                            p.min_accept_window,
                            p.min_complete_within,
                        )
                        is None
                    ):
                        boa.env.timestamp = t
                        self.act_accept(m.provider, self.m.jobs[-1].id, self.m.jobs[-1].tup(), mid)

    def _drain(self):
        """Ends every live job after its deadline and takes out every stake: the registry must then
        hold nothing and JobMarket only its dust. Exits and claims work while paused, so the pause
        stays. Past their challenge windows every draw is final: the drawn jobs' audits (no
        verdict comes) time out at their audit deadlines; every credit is then claimed (by the
        outsider)."""
        boa.env.timestamp = max([self.now] + self._deadlines()) + 1
        drawn = [j for j in self._live() if self._in_sampled_audit(j)]
        if drawn:
            self._warp(max(self._audit_deadline(j) for j in drawn) + 1)
        for j in self._live():
            if j.status in (JobStatus.OPEN, JobStatus.RUNNING):
                assert self.act_expire(self.w.outsider, j.id, j.tup()) is None
            else:
                assert self.act_finalize(self.w.outsider, j.id, j.tup()) is None
        assert not self._live()
        for p in list(self.m.accrued):  # credits never expire: anyone claims them, also while paused
            assert self.act_claim(self.w.outsider, p) is None
        for p, s in self.m.stakes.items():
            assert self.reg.locked(p) == 0 == s.locked, f"collateral still locked for {p} with no live job"
            if s.staked:
                assert self.act_unstake(p, s.staked) is None
        if any(s.unbonding for s in self.m.stakes.values()):
            boa.env.timestamp = self.now + UNBONDING_PERIOD_SECONDS
        for p, s in list(self.m.stakes.items()):
            if s.unbonding:
                assert self.act_withdraw(p) is None
        for a, d in list(self.m.deposits.items()):  # deposits leave at any time, also while paused
            if d:
                assert self.act_withdraw_deposit(a, d) is None
        assert self.tok.balanceOf(self.mk.address) == MARKET_DUST, "tokens stuck in JobMarket"
        assert self.tok.balanceOf(self.reg.address) == 0, "tokens stuck in ProviderRegistry"

    # Draining ends every job: at most once a run and only in its second half, so runs get deep
    # first (hypothesis draws rules without arguments often). Teardown drains again anyway.
    @precondition(lambda self: self._rules_run >= STEPS // 2 and not self._drained)
    @rule()
    @_step
    def drain(self):
        self._drained = True
        self._drain()

    # ------------------------------------------------------------------ invariants

    def _check_all(self, all_jobs: bool = False):
        """Chain == model (read from storage, see RawState); every job when `all_jobs`, else the live ones."""
        m, raw = self.m, self.w.raw
        for a in self.tracked:
            assert raw.balance(a) == m.bal[a], f"token balance of {a}: chain {raw.balance(a)}, model {m.bal[a]}"
        assert raw.total_supply() == m.minted - m.burned, "totalSupply != minted - burned"
        assert raw.allowance(self.w.signer, self.market) == m.signer_allowance, "permit signer's allowance"
        assert raw.nonce(self.w.signer) == m.signer_nonce, "permit signer's nonce"
        for a, r in m.rep.items():
            assert raw.reputation(a) == tuple(r), f"reputation of {a}: chain {raw.reputation(a)}, model {r}"
        assert sum(m.bal.values()) == m.minted - m.burned
        # The pause flag is the top bit of the hot parameter word (contracts/modules/hot_params.vy).
        assert raw.market("_hot_params") >> 255 == m.paused
        assert raw.market("job_count") == m.created

        # Supply: every mint since deployment is a claim's settlement; every burn a claim or a slash.
        minted, burned = raw.token_totals()
        assert raw.total_supply() == minted - burned, "totalSupply != total_minted - total_burned"
        assert minted == self.totals0[0] + m.settle_minted, "a mint that is not a settlement's"
        assert burned == m.burned, "total_burned"
        # Every Finalized job is in exactly one credit or one claim (one per Settled event), and no
        # other job is: the whole escrow burned and at most escrow - fees minted; total_burned == the
        # escrow of the claimed jobs. Each provider's credit is JobMarket.accrued's (from storage).
        finalized = {j.id for j in m.jobs if j.status == JobStatus.FINALIZED}
        settled = [jid for r in m.runs for jid in r.job_ids]
        paid = settled + [jid for a in m.accrued.values() for jid in a.job_ids]
        assert len(paid) == len(set(paid)) and set(paid) == finalized, "claimed + credited jobs != Finalized jobs"
        failed = {j.id for j in m.jobs if j.status == JobStatus.FAILED}
        assert not failed & set(paid), "invalid work paid: a Failed job credited or claimed"
        for a in self.tracked + [ZERO]:
            c = m.accrued.get(a) or MRun(a, (), 0, 0, 0, 0, 0)
            assert raw.accrued(a) == (c.burned, c.usd_net, c.cap), f"accrued({a}): chain {raw.accrued(a)}, model {c}"
            release, ids = m.pending.get(a, (0, ()))
            assert raw.pending(a) == (release, len(ids)), f"pending({a}): {raw.pending(a)}, model {release}, {ids}"
        # `completed` counts exactly the Finalized jobs that reached min_reputation_usd when settled.
        for a, r in m.rep.items():
            counted = [j for j in m.jobs if j.counted and j.f["provider"] == a]
            assert all(j.status == JobStatus.FINALIZED for j in counted)
            assert r[REP["completed"]] == len(counted), f"completed of {a} != its counted Finalized jobs"
        for r in m.runs + list(m.accrued.values()):
            jobs = [self._job(jid) for jid in r.job_ids]
            assert all(j.f["provider"] == r.provider for j in jobs) and jobs
            assert r.burned == sum(j.f["payment"] for j in jobs)
            assert r.usd_net == sum(self._terms(j)[1] for j in jobs)
            assert r.cap == sum(self._terms(j)[2] for j in jobs) and r.minted <= r.cap, "minted above escrow - fee"
        assert raw.settlement_burned() == m.settle_burned == sum(self._job(jid).f["payment"] for jid in settled)
        assert m.settle_minted == sum(r.minted for r in m.runs)

        escrow = MARKET_DUST + sum(a.burned for a in m.accrued.values()) + sum(m.deposits.values())
        for a in (self.w.orderer, self.w.users[0]):
            assert self.mk.deposits(a) == m.deposits.get(a, 0), f"deposit of {a}"
        for oid in m.cancelled:
            assert raw.job(oid)[0] == JobStatus.CANCELLED, f"cancelled order {oid}"
        for j in m.jobs if all_jobs else self._live():
            status, commitment = raw.job(j.id)
            assert status == j.status, f"job {j.id}: chain status {status}, model {j.status!r}"
            assert commitment == job_commitment(j.tup()), f"job {j.id}: stored struct differs from the model's"
            if j.status in LIVE:
                escrow += j.f["payment"]
            if j.status == JobStatus.AUDIT:
                assert raw.dispute(j.id) == j.dispute, f"job {j.id}: dispute"
                escrow += j.dispute[1]
            elif all_jobs or j.status == JobStatus.SUBMITTED:  # a sampled audit stores no entry
                assert raw.dispute(j.id) == (ZERO, 0, 0), f"job {j.id}: dispute left behind"
        assert m.bal[self.market] == escrow, (
            "JobMarket balance != live payments + open bonds + credits + deposits + MARKET_DUST"
        )

        bonded = 0
        for p, s in m.stakes.items():
            assert raw.stakes(p) == (s.staked, s.locked, s.unbonding, s.release), f"stakes of {p}"
            assert raw.required_stake(p) == m.required.get(p, 0), f"required stake of {p}"
            bonded += s.staked + s.unbonding
            live_collateral = sum(j.f["collateral"] for j in m.jobs if j.f["provider"] == p and j.status in LIVE[1:])
            # Finalized jobs' collateral stays locked until the provider's claim releases it.
            unclaimed = m.pending.get(p, (0, ()))[0]
            assert s.locked == live_collateral + unclaimed, f"locked collateral of {p} != live + unclaimed jobs'"
        assert m.bal[self.registry] == bonded, "ProviderRegistry balance != staked + unbonding"
        for mid, mm in m.machines.items():
            assert raw.machine(mid) == (mm.status, mm.attested_until), f"machine {mid} status, attestation"
        # AuditBeacon: every candidate's member state (a round's reveals are compared after each
        # reveal, and all of them here at teardown).
        for a in self.w.candidates:
            assert raw.member(a) == m.members[a].tup(), f"beacon member {a}"
        if all_jobs:
            for r, x in m.rounds.items():
                assert raw.beacon_round(r) == tuple(x), f"beacon round {r}"

    def _check_views(self):
        """The same comparison through the contracts' view functions (validates RawState too)."""
        m, tok, reg, mk = self.m, self.tok, self.reg, self.mk
        for a in self.tracked:
            assert tok.balanceOf(a) == m.bal[a]
        assert tok.totalSupply() == m.minted - m.burned
        # The token's own counters agree (ComputeToken.total_minted / total_burned).
        assert tok.totalSupply() == tok.total_minted() - tok.total_burned()
        assert (tok.total_minted(), tok.total_burned()) == (self.totals0[0] + m.settle_minted, m.burned)
        assert self.w.settlement.total_burned() == m.settle_burned
        assert self.w.feed.latest_round() == m.round
        assert (mk.paused(), mk.job_count()) == (m.paused, m.created)
        for a in self.tracked + [ZERO]:
            c = m.accrued.get(a) or MRun(a, (), 0, 0, 0, 0, 0)
            assert tuple(mk.accrued(a)) == (c.burned, c.usd_net, c.cap), f"accrued({a})"
        for j in m.jobs:
            assert mk.job_status(j.id) == j.status
            assert check_job(mk, j.id, j.tup())
            assert mk.job_commitment(j.id) == job_commitment(j.tup())
            d = mk.disputes(j.id)
            assert (str(d[0]), d[1], d[2]) == (j.dispute or (ZERO, 0, 0))
        for p, s in m.stakes.items():
            assert tuple(reg.stakes(p)) == (s.staked, s.locked, s.unbonding, s.release)
            assert reg.required_stake(p) == m.required.get(p, 0)
        for a in self.actors:
            assert list(reg.reputation(a)) == self._rep(a), f"reputation({a})"
            assert mk.audit_rate(a) == self._audit_rate(a), f"audit_rate({a})"
        for j in m.jobs:
            self.check_drawn_view(j.id, j.tup())
            for floor in (0, j.f["collateral"]):
                want = self._required_collateral(j.f["payment"], floor, j.f["audit_bps"])
                assert mk.required_collateral(j.f["payment"], floor, j.f["audit_bps"]) == want
        assert tok.allowance(self.w.signer, self.market) == m.signer_allowance
        assert tok.nonces(self.w.signer) == m.signer_nonce
        for mid, mm in m.machines.items():
            assert (reg.machine_status(mid), reg.attested_until(mid)) == (mm.status, mm.attested_until)
        bc = self.bc
        assert bc.member_count() == len(m.member_list) and bc.current_round() == self._round_now()
        for i, a in enumerate(m.member_list):
            assert str(bc.member_list(i)) == a
        for a in self.w.candidates:
            got = bc.members(a)
            assert (bytes(got[0]), bytes(got[1]), *got[2:]) == m.members[a].tup(), f"members({a})"
        for r, (xor, n, req) in m.rounds.items():
            assert (tuple(bc.round_counts(r)), bytes(bc.round_xor(r))) == ((n, req), xor), f"round {r}"
            # The count frozen at the round's first reveal (every round here has one).
            assert bc.required_members(r) == req, f"required_members({r})"
            if self.now <= r * ROUND_SECONDS + REVEAL_WINDOW:
                # A round's member set never changes while it takes reveals.
                assert req == self._required(r), f"round {r}: members required changed in its window"
            elif req != self._required(r):
                # Membership changed after its window closed (a member removed, or re-added and
                # counted from its new start only): the round's count, which the draw uses, stays.
                STATS["~closed round's member set moved (count frozen)"] += 1
            got = bc.draw_seed(r)
            assert (int(got[0]), bytes(got[1])) == self._round_state(r), f"draw_seed({r})"

    @invariant()
    @_step
    def inv_chain_matches_model(self):
        self._check_all()

    @invariant()
    @_step
    def inv_reputation_matches_model(self):
        # _check_all compares every actor's counters each step from storage; here the view itself,
        # for each provider whose counters moved since the view last confirmed them (a view call
        # costs 20 storage reads of Python time).
        for p in self.w.providers:
            r = tuple(self._rep(p))
            if self._rep_seen.get(p) != r:
                assert tuple(self.reg.reputation(p)) == r, f"reputation({p}) differs from the model's"
                self._rep_seen[p] = r

    @invariant()
    @_step
    def inv_draw_never_escaped(self):
        # No job escapes its draw by a withheld reveal: a Finalized job with a non-zero audit rate
        # whose round AuditBeacon holds degraded (not fully revealed in its window: a member
        # silent, late or never committed), or ready with a seed that selects it, went through
        # its audit: a dispute, or the sampled audit's verdict or timeout (a JobFinalized with
        # audit_timed_out, checked against the model). The round's state and seed are read from
        # the chain.
        for j in self.m.jobs:
            if j.status != JobStatus.FINALIZED or j.id in self._draw_checked or j.f["audit_bps"] == 0:
                continue
            state, seed = self.bc.draw_seed(j.f["draw_round"])
            if state == ROUND_PENDING:
                continue  # passed a dispute's audit before its round was final: checked later
            selected = state == ROUND_DEGRADED or drawn_from_seed(bytes(seed), j.id, j.f["audit_bps"])
            assert j.audited or not selected, f"job {j.id}: finalized without its audit (round {ROUND_NAMES[state]})"
            kind = "audited" if j.audited else "not audited"
            STATS[f"~finalized from a {ROUND_NAMES[state]} round, {'drawn' if selected else 'not drawn'}, {kind}"] += 1
            self._draw_checked.add(j.id)

    @invariant()
    @_step
    def inv_live_jobs_have_an_exit(self):
        # Each waiting state ends at a deadline set from a bounded window, after which
        # expire (Open, Running) or finalize (Submitted, Audit) is open to anyone.
        for j in self._live():
            d = j.deadline()
            assert 0 < d <= self.now + MAX_WINDOW, f"job {j.id} has no bounded deadline"
            if j.status == JobStatus.SUBMITTED:
                # Its draw round is past (or in) its reveal window before the challenge window
                # ends: from then on either finalize (not drawn) is open, or (drawn) the job is
                # in audit, with no transaction, until at most one more window after it (finalize
                # then, as a timed-out audit). A sampled audit stores no dispute entry.
                r = j.f["draw_round"]
                assert 0 < r <= self._round_now() + 1, f"job {j.id}: draw round {r} not the next one"
                assert r * ROUND_SECONDS + REVEAL_WINDOW < j.f["challenge_end"], f"job {j.id}: draw after its window"
                assert j.dispute is None
                if self._drawn(j):
                    assert d < self._audit_deadline(j) <= d + MAX_WINDOW, f"job {j.id}: unbounded audit"
        for s in self.m.stakes.values():
            assert s.unbonding == 0 or s.release <= self.now + UNBONDING_PERIOD_SECONDS


MarketMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    # FUZZ_SHRINK=0 reports the first failing run as found (shrinking can take minutes).
    phases=[p for p in Phase if p != Phase.shrink or os.environ.get("FUZZ_SHRINK", "1") != "0"],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
TestMarketStateful = MarketMachine.TestCase
