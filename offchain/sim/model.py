"""The simulation's actors and records (agents, machines, jobs, claims) and its constants.

Everything here is plain Python state: the contracts hold the truth, and the engine keeps these
records in step with them from their events (offchain/sim/jobs.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from offchain.constants import JOB_FIELDS, MAX_BPS, ONE_TOKEN, JobStatus
from offchain.sim.scenario import AgentSpec

DAY = 86400
HOUR = 3600
ZERO = "0x" + "00" * 20
# Day 0 of every run (2026-01-01 00:00 UTC), whatever the wall clock: the audit draw's beacon
# rounds are absolute times, so a fixed genesis keeps a run reproducible from its seed.
GENESIS = 1_767_225_600
N_OPERATORS = 5
THRESHOLD = 3
STATUS_ACTIVE = 2
VARIANTS = ("bme", "render")
# Work units per micro-USD of list price in the Render-style variant (far above any budget: no guard).
RENDER_WORK_SCALE = 10**24
# Settlement.MAX_PRICE_AGE: the longest max_age Settlement accepts (a round is posted every epoch).
SETTLEMENT_MAX_AGE = 7 * DAY
# On-chain compute units per GPU-hour (jobs are fractions of GPU-hours): offers are USD per
# milli-GPU-hour (18 decimals).
UNIT_SCALE = 1000
# Job windows (within JobMarket's bounds): every job is accepted, run and settled within its epoch.
ACCEPT_WINDOW = HOUR
COMPLETE_WITHIN = 12 * HOUR
# Collateral stake over a full epoch of capacity at the base audit rate (room for price moves).
COLLATERAL_HEADROOM = 1.5
# JobMarket.MAX_BATCH.
MAX_BATCH = 100


def tok(wei: int) -> float:
    """Wei to whole tokens (float)."""
    return wei / ONE_TOKEN


def chunks(xs: list, n: int = MAX_BATCH):
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


def usd_wei(usd: float) -> int:
    """USD (float) to 18 decimals, through micro-USD (exact for the scenarios' prices)."""
    return round(usd * 10**6) * 10**12


class Operator(NamedTuple):
    """An oracle operator of the simulated quorum (a throwaway key on the in-process chain)."""

    address: str
    private_key: bytes


@dataclass
class Machine:
    machine_id: int
    cls: str
    gpus: int


@dataclass
class Agent:
    spec: AgentSpec
    address: str
    # The wash trader's second address (its "customer" side); tokens there are its own.
    alt_address: str | None = None
    machines: list[Machine] = field(default_factory=list)
    # The wash trader's machine: takes its own jobs only, never online (no availability, no cost).
    wash_machine: Machine | None = None
    initial_tokens: int = 0
    usd: float = 0.0
    completed: int = 0
    failed: int = 0
    caught: int = 0
    units: float = 0.0
    # Jobs finalized since its last claim (what JobMarket.accrued holds for it), oldest first.
    unclaimed: list[Job] = field(default_factory=list)
    claims: int = 0
    # Wei received this epoch (settlement claims, emissions), reset each epoch.
    epoch_settle: int = 0
    epoch_emission: int = 0
    epoch_units: float = 0.0
    epoch_income_usd: float = 0.0
    # Cumulative.
    settle_total: int = 0
    emission_total: int = 0
    income_usd: float = 0.0
    emission_usd: float = 0.0
    # Wash trader: escrow burned settling the jobs it paid itself (wei, cumulative, Settled events).
    wash_burned: int = 0
    # Income (USD) by the epoch the work was done in: each claim's mint attributed to the jobs it
    # covers (at the claim's price), plus the epoch's emissions (at its price); and the units and
    # class worked per epoch. `series` pairs them.
    income_by_epoch: dict[int, float] = field(default_factory=dict)
    units_by_epoch: dict[int, tuple[float, str]] = field(default_factory=dict)

    @property
    def series(self) -> list[tuple[int, float, float, str]]:
        """(epoch, income USD, units, class) per epoch worked."""
        return [(e, self.income_by_epoch.get(e, 0.0), u, c) for e, (u, c) in sorted(self.units_by_epoch.items())]

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def name(self) -> str:
        return self.spec.name

    def gpus(self, cls: str | None = None) -> int:
        return sum(m.gpus for m in self.machines if cls is None or m.cls == cls)

    def machine_for(self, cls: str) -> Machine:
        return next(m for m in self.machines + [self.wash_machine] if m is not None and m.cls == cls)


@dataclass
class Job:
    provider: Agent
    cls: str
    units: float
    # The job's USD value and escrow as JobMarket recorded them (JobCreated).
    value_usd: float = 0.0
    user: str = ""
    compute_units: int = 0
    job_id: int = 0
    # The on-chain Job struct (JOB_FIELDS), kept up to date from JobMarket's events.
    f: dict = field(default_factory=dict)
    status: int = int(JobStatus.OPEN)
    # Network fee (tokens) from JobFinalized; 0 unless finalized.
    fee: int = 0
    # The epoch it was funded, run and finalized in.
    epoch: int = 0
    # Its share of the claim that settled it (wei, pro rata to USD value minus fee).
    minted: int = 0
    # Selected by JobMarket's audit draw (read once the job's beacon round is final).
    drawn: bool = False

    def tup(self) -> tuple:
        return tuple(self.f[k] for k in JOB_FIELDS)

    @property
    def usd_net(self) -> int:
        """USD value minus the fee (18 decimals): what JobMarket credits toward the claim's mint."""
        return self.f["usd_value"] - self.f["usd_value"] * self.f["fee_bps"] // MAX_BPS


@dataclass
class Run:
    """One claim (JobMarket.claim, its Settled event): the provider's jobs finalized since its
    previous claim, settled at once at the claim's price."""

    epoch: int
    provider: Agent
    jobs: list[Job]
    burned: int
    usd_net: int
    cap: int
    minted: int
    price: int
