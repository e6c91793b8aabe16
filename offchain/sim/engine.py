"""Agent-based simulation of gpunet's token economy on the real contracts (titanoboa, in-process).

Each run deploys ComputeToken, ProviderRegistry, OracleHub (5 operators, threshold 3),
PriceFeed, Settlement, AuditBeacon (the 5 operators are its members), JobMarket and Emissions
from contracts/ into a fresh titanoboa EVM, wired as offchain/chain/deploy.py `deploy_all`
wires a local deployment (offchain/sim/contracts.py), and plays `epochs` daily epochs. Per epoch:

1. price: every operator observes the pool's spot price (with 0.1% noise), signs a
   PriceObservation (offchain/chain/reports.py), and a round goes to PriceFeed.submit_round
   (4 of 5 signers; all 5 when the move is beyond the 20% deviation guard). Settlement reads
   this round (its `max_age` is the 7-day maximum; a round is posted before every epoch's jobs);
2. market: a speculator's random net flow; users' demand per GPU class (scenario profile x
   spikes x lognormal noise) is split over the working providers of the class, pro rata to
   capacity, into jobs at the providers' USD offers (ProviderRegistry.set_offer, USD per
   compute unit). A provider takes a job only while its free stake covers the job's
   collateral (JobMarket.required_collateral at its on-chain audit rate). Users buy the
   tokens the jobs escrow (Settlement.quote of the offer, tokens per compute unit at the
   feed's answer, times the units) from the pool and fund them with JobMarket.create_jobs
   (`max_tokens` = that total);
3. jobs, all through JobMarket (offchain/sim/jobs.py): accept_jobs (collateral locked in
   ProviderRegistry), submit_results, then JobMarket's own audit draw: the operators reveal
   their hash chains' next values for the AuditBeacon round the results are drawn from
   (offchain/sim/beacon.py; a scenario's silent operators withhold theirs, the round degrades
   and every job is drawn). Drawn jobs are audited with no opening transaction: the verifier posts the verdict (a
   cheater's result is found invalid with the market's 90% detection rate: escrow refunded,
   collateral slashed by JobMarket; every other result is valid), the rest are finalized with
   finalize_many once the challenge window is over. Finalization credits the job to its
   provider (JobMarket.accrued; no token moves). At the end of the epoch each provider whose
   claim policy says so (scenario `claim`: by default every epoch it has pay accrued; everything
   outstanding at the end of the run, so the books close) calls JobMarket.claim: the credited
   escrow is burned whole and Settlement mints the provider min(Σ USD value minus fee at the
   claim's price, Σ escrow minus fee). The engine reads what was credited, minted and burned from
   JobMarket.accrued and the JobFinalized and Settled events, never from a formula, and
   attributes each claim's mint to the jobs it covers;
4. emissions (offchain/sim/quorum.py): after the epoch, anyone finalizes it
   (Emissions.finalize_epoch), the quorum signs the rewards root built by
   offchain/economics/rewards.py from the finalized jobs (their fees from JobFinalized) and the
   machines (attested in ProviderRegistry, uptime, stake), submits it, and every leaf claims
   with its Merkle proof;
5. providers sell `sell_share` of the tokens they received and pay their costs in USD.
The epoch's row of epochs.csv (offchain/sim/metrics.py) is read from the chain.

Stake: each agent stakes its machines' minimum plus `extra_stake`; honest providers and the
wash trader also stake the collateral a full epoch of their capacity needs at the base audit
rate (x COLLATERAL_HEADROOM, for price moves), since JobMarket locks it while their jobs run.
The wash trader registers one machine of its job's class to accept its own jobs; the machine
is never online for uptime probes (no availability share, no running cost).

The Render-style variant (`variant="render"`) plays the same demand, seed and agents through
the same JobMarket with a settlement that mints nothing (offchain/sim/RenderSettlement.vy:
users' escrow is burned whole, providers are paid only from emissions): the same schedule
without the taper, 100% to work, is split by finalized work weighted by its class's list price
(Render pays per OctaneBench-hour from a fixed pool), and the wash guard does not bind.
"""

from __future__ import annotations

import math
import random

import boa

from offchain.constants import MAX_BPS, ONE_TOKEN
from offchain.params import BeaconParams, EmissionsParams, MarketParams
from offchain.sim.beacon import BeaconMembers
from offchain.sim.contracts import deploy_contracts, setup_boa
from offchain.sim.jobs import JobFlow
from offchain.sim.market import ConstantProductPool
from offchain.sim.metrics import epoch_row
from offchain.sim.model import (
    COLLATERAL_HEADROOM,
    DAY,
    GENESIS,
    N_OPERATORS,
    VARIANTS,
    Agent,
    Machine,
    Run,
    tok,
)
from offchain.sim.quorum import QuorumSteps
from offchain.sim.scenario import Scenario


class Simulation(JobFlow, QuorumSteps):
    def __init__(self, scenario: Scenario, variant: str = "bme", epochs: int | None = None, seed: int | None = None):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}")
        self.sc = scenario
        self.variant = variant
        self.epochs = int(epochs if epochs is not None else scenario.epochs)
        self.seed = int(seed if seed is not None else scenario.seed)
        em = scenario.emissions
        base = EmissionsParams()
        common = dict(
            initial_epoch_emission=em.get("initial_epoch_emission", 50_000) * ONE_TOKEN,
            decay_bps=em.get("decay_bps", base.decay_bps),
            emission_cap=em.get("emission_cap", 20_000_000) * ONE_TOKEN,
        )
        if variant == "bme":
            self.params = EmissionsParams(
                **common,
                taper_reference=em.get("taper_reference", 10_000) * ONE_TOKEN,
                work_share_bps=em.get("work_share_bps", base.work_share_bps),
                wash_guard_bps=em.get("wash_guard_bps", base.wash_guard_bps),
            )
        else:
            # Render-style: the same schedule, no taper, everything to work (per compute unit).
            self.params = EmissionsParams(**common, taper_reference=2**128, work_share_bps=MAX_BPS)
        self.market_params = MarketParams(fee_bps=scenario.fee_bps)
        self.beacon_params = BeaconParams()
        self.rows: list[dict] = []
        self.violations: list[str] = []
        # Escrow of every job finalized so far (JobFinalized), claimed or not.
        self.finalized_escrow = 0
        # Every claim of the run (offchain/sim/model.py Run), in order.
        self.claim_log: list[Run] = []

    # ------------------------------------------------------------------ setup

    def _deploy(self) -> None:
        env = boa.env
        self.admin = str(env.eoa)
        self.genesis = GENESIS
        env.timestamp = self.genesis - 3600
        c = deploy_contracts(
            self.variant, self.sc.classes, self.params, self.market_params, self.beacon_params, self.genesis
        )
        self.token, self.registry, self.hub, self.feed = c.token, c.registry, c.hub, c.feed
        self.settlement, self.beacon, self.market, self.emissions = c.settlement, c.beacon, c.market, c.emissions
        self.operators, self.chain_id = c.operators, c.chain_id
        self.settle_burned_genesis = int(self.settlement.total_burned())
        # The operators commit their hash chains (one value per epoch's draw round); the first
        # round they apply to is long before the first job's.
        self.beacon_members = BeaconMembers(self.beacon, self.market, self.operators, self.seed, self.epochs)
        assert self.beacon_members.commit() * self.beacon_params.round_seconds < self.genesis
        mp = self.market.params()
        self.collateral_bps = int(mp.collateral_bps)
        self.detection_bps = int(mp.detection_bps)
        self.challenge_window = int(mp.challenge_window)
        self._setup_market()
        self._setup_agents(int(mp.base_audit_bps))

    def _setup_market(self) -> None:
        """The pool, the speculator and the users' account."""
        env, tk, sc = boa.env, self.token, self.sc
        p0 = sc.market["initial_price_usd"]
        pool_tokens = int(sc.market["pool_tokens"]) * ONE_TOKEN
        pool_addr = str(env.generate_address("pool"))
        tk.mint(pool_addr, pool_tokens)
        self.pool = ConstantProductPool(tk, pool_addr, p0 * pool_tokens / ONE_TOKEN)
        self.speculator = str(env.generate_address("speculator"))
        tk.mint(self.speculator, pool_tokens // 10)
        self.users = str(env.generate_address("users"))
        with env.prank(self.users):
            tk.approve(self.market.address, 2**256 - 1)
        self.users_usd = 0.0

    def _setup_agents(self, base_audit_bps: int) -> None:
        """Each agent stakes, registers its machines (attested by the quorum's stand-in: the
        sybil farm's never pass) and sets its offers."""
        env, tk, reg, mk, sc = boa.env, self.token, self.registry, self.market, self.sc
        p0 = sc.market["initial_price_usd"]
        # Collateral per token of payment at the base audit rate (10.1x by default).
        probe = 1000 * ONE_TOKEN
        floor = -(-probe * self.collateral_bps // MAX_BPS)
        per_token = int(mk.required_collateral(probe, floor, base_audit_bps)) / probe
        valid_until = self.genesis + (self.epochs + 2) * DAY
        wash_cls = self._wash_class()
        self.agents: list[Agent] = []
        for spec in sc.agents:
            a = Agent(spec=spec, address=str(env.generate_address(spec.name)))
            machines = list(spec.machines)
            capacity_usd = 0.0
            if spec.kind == "wash":
                a.alt_address = str(env.generate_address(spec.name + "-customer"))
                with env.prank(a.alt_address):
                    tk.approve(mk.address, 2**256 - 1)
                if spec.wash_usd > 0:
                    machines.append((wash_cls.name, 1))
                    capacity_usd = spec.wash_usd
            elif spec.kind == "honest":
                capacity_usd = sum(sc.classes[c].units_per_gpu * sc.classes[c].price_usd * g for c, g in machines)
            required = sum(sc.classes[c].min_stake_tokens * g for c, g in machines) * ONE_TOKEN
            headroom = int(capacity_usd / p0 * per_token * COLLATERAL_HEADROOM) * ONE_TOKEN
            stake = required + spec.extra_stake * ONE_TOKEN + headroom
            if stake:
                tk.mint(a.address, stake)
                with env.prank(a.address):
                    tk.approve(reg.address, stake)
                    reg.stake(stake)
            for i, (cls, gpus) in enumerate(machines):
                c = sc.classes[cls]
                with env.prank(a.address):
                    mid = reg.register(c.class_id, gpus, 80_000, f"sim://{spec.name}/{i}")
                # The quorum's benchmark: honest hardware passes, the sybil farm's never does.
                reg.record_attestation(mid, c.class_id, spec.kind != "sybil", valid_until)
                m = Machine(mid, cls, gpus)
                if i < len(spec.machines):
                    a.machines.append(m)
                else:
                    a.wash_machine = m
            if spec.kind in ("honest", "cheater", "wash"):
                with env.prank(a.address):
                    for cls in {m.cls for m in a.machines + [a.wash_machine] if m is not None}:
                        reg.set_offer(sc.classes[cls].class_id, self._offer(cls))
            a.initial_tokens = self._holdings(a)
            self.agents.append(a)
        self.by_name = {a.name: a for a in self.agents}
        self.by_addr = {a.address: a for a in self.agents}

    # ------------------------------------------------------------------ helpers

    def silent_operators(self, epoch: int) -> int:
        """How many operators withhold their beacon reveal this epoch (scenario `beacon.silent`)."""
        return min(int(self.sc.beacon.get("silent", {}).get(str(epoch), 0)), N_OPERATORS)

    def _holdings(self, a: Agent) -> int:
        """Tokens the agent owns: wallet(s) plus bonded and unbonding stake."""
        n = int(self.token.balanceOf(a.address)) + int(self.registry.staked(a.address))
        n += int(self.registry.unbonding(a.address))
        if a.alt_address:
            n += int(self.token.balanceOf(a.alt_address))
        return n

    def profit_usd(self, a: Agent, price: float) -> float:
        """USD cash flow plus the change in token holdings marked at `price`."""
        return a.usd + tok(self._holdings(a) - a.initial_tokens) * price

    def profit_tokens(self, a: Agent) -> float:
        return tok(self._holdings(a) - a.initial_tokens)

    def _demand(self, epoch: int, rng: random.Random) -> dict[str, float]:
        mult = self.sc.demand_multiplier(epoch)
        sigma = float(self.sc.demand.get("noise", 0.0))
        out = {}
        for cls, base in self.sc.demand["units"].items():
            noise = math.exp(rng.gauss(-sigma * sigma / 2, sigma)) if sigma else 1.0
            out[cls] = float(base) * mult * noise
        return out

    # ------------------------------------------------------------------ the run

    def run(self, progress=None) -> list[dict]:
        setup_boa()
        with boa.swap_env(boa.Env()):
            self._deploy()
            rng = random.Random(f"{self.seed}")
            # Demand and the speculator use their own streams so both variants see the same ones.
            demand_rng = random.Random(f"{self.seed}-demand")
            spec_rng = random.Random(f"{self.seed}-spec")
            for epoch in range(self.epochs):
                self._epoch(epoch, rng, demand_rng, spec_rng)
                if progress:
                    progress(epoch)
        return self.rows

    def _epoch(self, epoch: int, rng: random.Random, demand_rng: random.Random, spec_rng: random.Random) -> None:
        sc, tk = self.sc, self.token
        minted0, burned0 = int(tk.total_minted()), int(tk.total_burned())
        settle_burned0 = int(self.settlement.total_burned())
        # Jobs finalized in earlier epochs and not claimed yet.
        self.pending0 = {j.job_id for a in self.agents for j in a.unclaimed}
        for a in self.agents:
            a.epoch_settle = a.epoch_emission = 0
            a.epoch_units = 0.0
        answer = self._price_round(epoch, rng)
        price = answer / 10**8

        # Speculators: zero-mean random net flow.
        flow = spec_rng.gauss(0, sc.market.get("speculative_noise_usd", 0.0))
        if flow > 0:
            self.pool.buy_with_usd(self.speculator, flow)
        elif flow < 0:
            self.pool.sell(self.speculator, min(int(tk.balanceOf(self.speculator)), int(-flow / price * ONE_TOKEN)))

        demand = self._demand(epoch, demand_rng)
        jobs, served = self._jobs_for(epoch, demand)
        wash_jobs = self._wash_jobs()
        all_jobs = jobs + wash_jobs
        st = self._run_jobs(epoch, all_jobs, rng)
        # Providers claim what their policy says (at this epoch's price), before the epoch is over.
        self._claims(epoch, price, st, final=epoch == self.epochs - 1)
        em = self._emissions(epoch, all_jobs, rng)

        # Providers sell part of their income and pay their costs.
        for a in self.agents:
            got = a.epoch_settle + a.epoch_emission
            income = tok(got) * price
            a.income_usd += income
            a.emission_usd += tok(a.epoch_emission) * price
            a.income_by_epoch[epoch] = a.income_by_epoch.get(epoch, 0.0) + tok(a.epoch_emission) * price
            a.settle_total += a.epoch_settle
            a.emission_total += a.epoch_emission
            share = 1.0 if a.kind in ("wash", "sybil") else sc.sell_share
            if a.kind == "wash":
                # Everything it holds goes back to the market (it has no other use for tokens).
                sell = int(tk.balanceOf(a.address))
            else:
                sell = int(got * share)
            if sell:
                a.usd += self.pool.sell(a.address, sell)
            cost = 0.0
            for m in a.machines:
                c = sc.classes[m.cls]
                fixed = a.spec.fixed_cost_usd if a.spec.fixed_cost_usd is not None else c.fixed_cost_usd
                cost += fixed * m.gpus
            if a.kind == "honest":
                cost += sum(j.units * sc.classes[j.cls].cost_usd for j in jobs if j.provider is a)
            a.usd -= cost
            if a.epoch_units > 0:
                a.units += a.epoch_units
                cls = next(j.cls for j in jobs if j.provider is a)
                a.units_by_epoch[epoch] = (a.epoch_units, cls)

        self.rows.append(
            epoch_row(self, epoch, price, demand, served, jobs, wash_jobs, st, em, minted0, burned0, settle_burned0)
        )


def run_both(scenario: Scenario, epochs: int | None = None, seed: int | None = None, progress=None) -> dict:
    """Runs the BME design and the Render-style variant on the same scenario and seed."""
    out = {}
    for v in VARIANTS:
        sim = Simulation(scenario, v, epochs=epochs, seed=seed)
        sim.run(progress=(lambda e, v=v: progress(v, e)) if progress else None)
        out[v] = sim
    return out


__all__ = ["VARIANTS", "Simulation", "run_both"]
