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
    # Equivocation costs half the operator's stake (half of that to the reporter): signing two
    # versions of one report is never an accident.
    equivocation_slash_bps: int = 5_000
    # Attestations are valid for a day; the service renews them ahead of expiry (io.net
    # re-checks hourly, Aethir every 15 minutes for liveness, which our uptime probes cover).
    attestation_ttl_seconds: int = 24 * HOUR
