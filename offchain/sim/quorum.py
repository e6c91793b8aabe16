"""What the oracle quorum signs each epoch (a mixin of offchain/sim/engine.py's Simulation): the
PriceFeed round before the epoch's jobs, and after the epoch the Emissions rewards root built by
offchain/economics/rewards.py, which every leaf then claims with its Merkle proof."""

from __future__ import annotations

import random

import boa

from offchain.chain import reports as R
from offchain.chain.price import post_price
from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus
from offchain.economics import rewards as E
from offchain.oracle.pricing import to_answer
from offchain.sim.model import DAY, N_OPERATORS, RENDER_WORK_SCALE, STATUS_ACTIVE, THRESHOLD, Job


class QuorumSteps:
    def _sign(self, typed: dict, signers) -> list[bytes]:
        return R.sort_signatures([(o.address, R.sign_report(o.private_key, typed)) for o in signers])

    def _price_round(self, epoch: int, rng: random.Random) -> int:
        """Every operator observes the pool's spot price (0.1% noise) and signs; a round of 4 of
        the 5 (all 5 when the move is beyond the 20% deviation guard) goes to PriceFeed. Returns
        the answer Settlement prices the epoch's jobs and settlements at."""
        t = self.genesis + epoch * DAY + 60
        boa.env.timestamp = t
        spot = self.pool.price()
        signers = self.operators
        if int(self.feed.latest_round()) > 0:
            last = int(self.feed.latestRoundData()[1]) / 10**8
            if abs(spot / last - 1) < 0.19:
                signers = sorted(rng.sample(self.operators, N_OPERATORS - 1), key=lambda o: int(o.address, 16))
        observed = [to_answer(f"{spot * (1 + rng.gauss(0, 0.001)):.8f}") for _ in signers]
        post_price(self.feed, self.chain_id, signers, observed, t - 5, self.admin)
        boa.env.timestamp = t + 60
        self._unit_tokens: dict[str, int] = {}
        # What Settlement prices jobs and settlements at (the round just posted).
        return int(self.settlement.price()) if self.variant == "bme" else int(self.feed.latest_price())

    def _rewards(self, epoch: int, jobs: list[Job], rng: random.Random) -> E.EpochRewards | None:
        if self.variant == "bme":
            records = [
                E.JobRecord(
                    provider=j.provider.address, epoch=epoch, status=j.status, compute_units=j.compute_units, fee=j.fee
                )
                for j in jobs
            ]
            now = int(boa.env.timestamp)
            machines = []
            for a in self.agents:
                for m in a.machines + ([a.wash_machine] if a.wash_machine else []):
                    attested = (
                        int(self.registry.machine_status(m.machine_id)) == STATUS_ACTIVE
                        and int(self.registry.attested_until(m.machine_id)) >= now
                    )
                    c = self.sc.classes[m.cls]
                    machines.append(
                        E.MachineRecord(
                            provider=a.address,
                            machine_id=m.machine_id,
                            attested=attested,
                            # The wash trader's machine never answers uptime probes.
                            uptime_bps=0 if m is a.wash_machine else rng.randint(9_700, MAX_BPS),
                            hardware_weight=c.min_stake_tokens * m.gpus,
                            required_stake=c.min_stake_tokens * m.gpus * ONE_TOKEN,
                        )
                    )
            stakes = {a.address: int(self.registry.staked(a.address)) for a in self.agents}
            return E.epoch_rewards(epoch, records, machines, stakes, self.params)
        # Render-style: work = finalized work weighted by its class's list price (Render weighs work
        # by OctaneBench-hours, i.e. by performance), no availability. Scaled by RENDER_WORK_SCALE
        # so the contract's wash guard (work_pool <= total_work * 50%) never binds: Render pays its
        # whole work pool per unit of work.
        work: dict[str, int] = {}
        for j in jobs:
            if j.status == int(JobStatus.FINALIZED):
                w = int(j.value_usd * 10**6) * RENDER_WORK_SCALE
                work[j.provider.address] = work.get(j.provider.address, 0) + w
        return E.build_rewards(epoch, work, {})

    def _emissions(self, epoch: int, jobs: list[Job], rng: random.Random) -> dict:
        em = self.emissions
        boa.env.timestamp = self.genesis + (epoch + 1) * DAY + 10
        scheduled = int(em.scheduled_emission())
        budget = int(em.finalize_epoch(epoch))
        out = {"scheduled": scheduled, "budget": budget, "claimed": 0, "by_kind": {}, "leaf_work": 0}
        rw = self._rewards(epoch, jobs, rng)
        if rw is None:
            return out
        typed = E.rewards_typed_data(em.address, self.chain_id, rw.report())
        signers = sorted(rng.sample(self.operators, THRESHOLD), key=lambda o: int(o.address, 16))
        em.submit_rewards(E.report_tuple(rw.report()), self._sign(typed, signers))
        for p in rw.leaves:
            amount = int(em.claim(*rw.claim_args(p)))
            a = self.by_addr[p]
            a.epoch_emission += amount
            out["claimed"] += amount
            out["by_kind"][a.kind] = out["by_kind"].get(a.kind, 0) + amount
        out["leaf_work"] = rw.total_work
        return out
