"""Default protocol parameters and the initial GPU class table, with the reasons for each.

docs/PROTOCOL.md explains every value; change them here and there together.
"""

from dataclasses import asdict, dataclass

from offchain.constants import ONE_TOKEN

HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True)
class MarketParams:
    # 5%: Render's network fee on job payments (REFERENCES.md); hard-capped at 20% on-chain.
    fee_bps: int = 500
    # Floor on the collateral: 1.5x the payment. At acceptance it is raised so that cheating
    # never pays at the provider's audit rate p (see detection_bps below and ECONOMICS.md).
    collateral_bps: int = 15_000
    # One hour to dispute a result: enough for a user to fetch and spot-check it.
    challenge_window: int = HOUR
    # Six hours for the oracle quorum to re-execute a disputed job and post a verdict.
    audit_timeout: int = 6 * HOUR
    min_accept_window: int = 60
    max_accept_window: int = 7 * DAY
    min_complete_within: int = 60
    max_complete_within: int = 7 * DAY
    # Bond = max(1 token, 10% of the payment): cheap for a wronged user, costly to spam.
    dispute_bond_bps: int = 1_000
    min_dispute_bond: int = ONE_TOKEN
    # A provider that accepts and never delivers loses 20% of the collateral to the user.
    noshow_penalty_bps: int = 2_000
    # Invalid result: 50% of the collateral to the user, 25% to the challenger, 25% burned.
    user_compensation_bps: int = 5_000
    challenger_reward_bps: int = 2_500
    # Sampled audits (docs/PROTOCOL.md, "Audits"). An established provider with a clean record
    # is audited on 10% of its jobs: verification overhead ~10% x quorum size, and a repeat
    # cheater is caught with 99% probability within ln(0.01)/ln(0.9) = 44 jobs.
    base_audit_bps: int = 1_000
    # New providers (fewer than 20 completed jobs) are audited on 30%: 99% catch within 13 jobs,
    # while the stake at risk per job is still small (Pocket Network started at p = 25%).
    new_provider_audit_bps: int = 3_000
    trusted_after_jobs: int = 20
    # Each failed or expired job on record adds 20 points: two failures and a provider is
    # audited on half its jobs.
    bad_record_audit_bps: int = 2_000
    # Assumed probability that an audit detects a wrong result. Measured detection is 100%
    # for every cheat mode (docs/ECONOMICS.md); 90% leaves margin for cheats that agree with
    # an honest run on part of the output. Collateral >= payment * (1/(p*d) - 1):
    # 10.1x the payment at p = 10%, 2.7x at p = 30%.
    detection_bps: int = 9_000
    # A finalized job counts toward `completed` (and so toward leaving probation) only when it
    # is worth at least $1: twenty dust jobs cannot buy a lower audit rate (SECURITY.md, finding 5).
    min_reputation_usd: int = 10**18

    def as_tuple(self) -> tuple[int, ...]:
        return tuple(asdict(self).values())

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# 7 days, as Livepeer's 7-round unbonding; shorter than The Graph's 28 days because job
# collateral is locked separately and cannot be unstaked while a job is open.
UNBONDING_PERIOD_SECONDS = 7 * DAY


@dataclass(frozen=True)
class GpuClassSpec:
    class_id: int
    name: str
    # Stake per GPU, in tokens: 100 tokens per "unit" of dense bf16 capacity relative to an A100,
    # after io.net's 200 IO x device multiplier; the CPU class exists so the flow runs without GPUs.
    min_stake_tokens: int


GPU_CLASSES: tuple[GpuClassSpec, ...] = (
    GpuClassSpec(1, "CPU", 10),
    GpuClassSpec(2, "T4", 25),
    GpuClassSpec(3, "L4", 40),
    GpuClassSpec(4, "A10", 40),
    GpuClassSpec(5, "RTX 3090", 30),
    GpuClassSpec(6, "RTX 4090", 60),
    GpuClassSpec(7, "A100 PCIe 80GB", 100),
    GpuClassSpec(8, "A100 SXM4 80GB", 100),
    GpuClassSpec(9, "H100 PCIe", 250),
    GpuClassSpec(10, "H100 SXM5", 300),
    GpuClassSpec(11, "H200 SXM", 320),
)

CLASS_BY_NAME = {c.name: c for c in GPU_CLASSES}


@dataclass(frozen=True)
class OracleParams:
    # An operator's signature counts only with this much bonded in OracleHub (10x a CPU
    # machine's stake: signing wrongly must cost more than any single report can gain).
    min_operator_stake: int = 1_000 * ONE_TOKEN
    # A hardware misreport (wrong results, too slow, claim above what was measured) burns 10%
    # of the provider's slashable stake: io.net/Aethir slash the whole stake for dishonesty;
    # 10% per failed attestation keeps an honest misconfiguration survivable while making a
    # repeated lie ruinous (and the machine is jailed at once).
    hardware_slash_bps: int = 1_000
    # Equivocation costs half the operator's stake, all of it burned (no bounty: the equivocator
    # could submit its own proof and recover part of it): signing two versions of one report
    # (any kind: attestation, uptime, verdict, epoch rewards, price observation) is never an
    # accident.
    equivocation_slash_bps: int = 5_000
    # Attestations are valid for a day; the service renews them ahead of expiry (io.net
    # re-checks hourly, Aethir every 15 minutes for liveness, which our uptime probes cover).
    attestation_ttl_seconds: int = 24 * HOUR


@dataclass(frozen=True)
class BeaconParams:
    """AuditBeacon's rounds (docs/SECURITY.md, "The audit draw"): a result submitted at T is drawn
    from round T // round_seconds + 1; its seed is final once every member revealed, at most
    round_seconds + reveal_window after T, which JobMarket requires the challenge window to
    exceed (so both fit inside the 60 s minimum challenge window)."""

    # Operators reveal once per round that has jobs: two transactions a minute each at most.
    round_seconds: int = 30
    # 20 s to get a reveal included (10 blocks at 2 s). Shorter than a round, so the windows of
    # two rounds never overlap (a member could otherwise pick between two values for a round). A
    # round revealed late is degraded and all its jobs are audited: a short window costs
    # audits, never safety. On a chain with slower blocks, deploy with longer rounds.
    reveal_window: int = 20

    def as_tuple(self) -> tuple[int, int]:
        return (self.round_seconds, self.reveal_window)


@dataclass(frozen=True)
class PriceFeedParams:
    """PriceFeed's guards (docs/PROTOCOL.md, "PriceFeed"); bounds are enforced on-chain."""

    # An answer older than an hour is stale and `latest_price()` refuses it. The oracle service
    # reports every minute, so an hour is ~60 missed rounds: a real outage, not a hiccup (Chainlink
    # runs USD feeds of minor tokens on a 1-24 h heartbeat).
    max_age: int = HOUR
    # A round may move the answer at most 20% from the previous fresh one unless every operator
    # signs: one bad round (a broken source shared by a quorum) cannot move the price far, while
    # honest operators follow any real move (a 20% move within a minute is rare even for small
    # tokens, and a larger one only needs the whole set, or waits until the old answer is stale).
    # It does not stop a colluding quorum (docs/SECURITY.md); `min_round_interval` paces it.
    max_deviation_bps: int = 2_000
    # Observations older than 10 minutes are refused: long enough for the leader to gather
    # signatures and get a transaction mined on a congested chain, short enough that a
    # submitter cannot hold observations back and publish an old price later.
    max_observation_age: int = 10 * 60
    # A round's observations may spread at most 5% (highest vs lowest): honest sources of one
    # token agree far closer, and since every round holds at least one honest observation (fewer
    # than `threshold` operators cannot fill one), operators below the threshold can never move
    # the answer more than 5% from an honest price, in one round or over many (docs/SECURITY.md,
    # "Oracle findings (contracts v2)").
    max_spread_bps: int = 500
    # At most one round per 30 s (the service reports every minute, earlier only on a >1% move):
    # rounds can never be chained within a block.
    min_round_interval: int = 30

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        """PriceFeed.__init__ / set_params arguments after the hub, in order."""
        return (
            self.max_age,
            self.max_deviation_bps,
            self.max_observation_age,
            self.max_spread_bps,
            self.min_round_interval,
        )


@dataclass(frozen=True)
class EmissionsParams:
    """Epoch emissions (contracts/Emissions.vy; formulas and reasons in docs/ECONOMICS.md, "Emissions").

    Immutable on-chain: a new schedule is a new Emissions contract made minter by governance."""

    # One epoch a day: uptime probes and rewards roots are daily, and a claim per provider per
    # day costs ~0.1% of a day's income at L2 gas prices.
    epoch_seconds: int = DAY
    # 50,000 tokens in epoch 0, declining 0.2% per epoch (half-life ln 2 / 0.002 = 347 epochs,
    # about a year): the whole untapered schedule sums to 50,000 / 0.002 = 25M tokens.
    initial_epoch_emission: int = 50_000 * ONE_TOKEN
    decay_bps: int = 20
    # Hard cap on everything Emissions ever mints: 20M, below the 25M the schedule sums to, so
    # the cap binds in the tail (after ~800 untapered epochs) and the last epochs get what remains.
    emission_cap: int = 20_000_000 * ONE_TOKEN
    # An epoch whose customers burn 10,000 tokens gets half its scheduled emission; 10x that, 1/11:
    # the subsidy fades as real revenue grows (budget = scheduled * R / (R + burned)).
    taper_reference: int = 10_000 * ONE_TOKEN
    # 70% of an epoch's budget pays verified work (finalized jobs), 30% availability (attested,
    # up, staked machines waiting for jobs): work is what users pay for; availability keeps
    # capacity on standby for bursts.
    work_share_bps: int = 7_000
    # Emission per unit of work (= network fee paid, token wei) is at most 50% of the fee: a
    # provider paying itself loses at least half of every fee it pays (on-chain bound: < 100%).
    wash_guard_bps: int = 5_000
    # Off-chain availability rule (offchain/economics/rewards.py): uptime of at least 90% in the
    # epoch, a PASS attestation valid in it, and the class's stake per GPU; an operator's first 3
    # machines count fully, each further one half the previous (RNP-015-style per-operator decay).
    min_uptime_bps: int = 9_000
    free_machines: int = 3
    extra_machine_decay_bps: int = 5_000

    def constructor_args(self, token: str, hub: str, burns: str, genesis: int = 0) -> tuple:
        """Emissions.__init__ arguments, in order (burns: JobMarket, whose `total_burned` (escrow of
        finalized jobs, burned at claims) tapers the schedule; genesis 0: the deployment block's time)."""
        return (
            token,
            hub,
            burns,
            genesis,
            self.epoch_seconds,
            self.initial_epoch_emission,
            self.decay_bps,
            self.emission_cap,
            self.taper_reference,
            self.work_share_bps,
            self.wash_guard_bps,
        )
