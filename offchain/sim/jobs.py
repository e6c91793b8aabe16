"""The epoch's jobs, all through JobMarket (a mixin of offchain/sim/engine.py's Simulation).

Users' demand per GPU class is split over the working providers of the class, pro rata to
capacity, into jobs at the providers' USD offers; a provider takes a job only while its free
stake covers the job's collateral (JobMarket.required_collateral at its on-chain audit rate).
Users buy what the jobs escrow from the pool and fund them with create_jobs; providers
accept_jobs and submit_results; the operators reveal the beacon round the results are drawn from
(offchain/sim/beacon.py; a silent operator degrades it and every job is audited); drawn jobs go
to the verifier's verdict (a cheater's result is found invalid with the market's
detection rate), the rest are finalized with finalize_many once the challenge window is over.
Finalizing only credits the provider (JobMarket.accrued); at the end of the epoch each provider
whose claim policy says so (scenario `claim`: by default every epoch it has pay accrued, and
everything at the end of a run) calls JobMarket.claim, which burns the credited escrow and has
Settlement mint its pay; the claim's mint is attributed to the jobs it covers (the provider's
jobs finalized since its previous claim) pro rata to their USD value minus fee. Minted, burned,
refunded and slashed amounts are read from the events, never from a formula."""

from __future__ import annotations

import random

import boa
from eth_utils import keccak

from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus
from offchain.sim.model import (
    ACCEPT_WINDOW,
    COMPLETE_WITHIN,
    UNIT_SCALE,
    Job,
    Run,
    chunks,
    usd_wei,
)


class JobFlow:
    """Job creation, funding, execution, the audit draw, finalization and claims for one epoch."""

    def _wash_class(self):
        return max(self.sc.classes.values(), key=lambda c: c.price_usd)

    def _offer(self, cls: str) -> int:
        """The provider's offer: the class's list price, USD per on-chain compute unit (18 decimals)."""
        return usd_wei(self.sc.classes[cls].price_usd) // UNIT_SCALE

    def _coverable(self, a, jobs: list[Job]) -> list[Job]:
        """The prefix of `jobs` whose collateral (JobMarket.required_collateral at `a`'s audit rate
        now, the rate accept_jobs fixes) its free stake covers; none while its stake is below its
        machines' minimum (ProviderRegistry.lock_collateral would refuse them)."""
        reg, mk = self.registry, self.market
        staked, locked = int(reg.staked(a.address)), int(reg.locked(a.address))
        if staked < int(reg.required_stake(a.address)):
            return []
        audit_bps = int(mk.audit_rate(a.address))
        free = staked - locked
        out = []
        cache: dict[int, int] = {}
        for j in jobs:
            payment = self._payment(j)
            if payment not in cache:
                floor = -(-payment * self.collateral_bps // MAX_BPS)
                cache[payment] = int(mk.required_collateral(payment, floor, audit_bps))
            if cache[payment] > free:
                break
            free -= cache[payment]
            out.append(j)
        return out

    def _payment(self, j: Job) -> int:
        """The tokens JobMarket will escrow for `j` now: Settlement.quote(offer), the tokens per
        compute unit rounded up, times the units (the rule create_job(s) applies)."""
        cls = j.cls
        if cls not in self._unit_tokens:
            self._unit_tokens[cls] = int(self.settlement.quote(self._offer(cls)))
        return self._unit_tokens[cls] * j.compute_units

    def _jobs_for(self, epoch: int, demand: dict[str, float]) -> tuple[list[Job], float]:
        """Splits demand over the working providers of each class, pro rata to capacity; each takes
        the jobs its free stake covers the collateral of (the rest of its share goes unserved)."""
        sc = self.sc
        job_units = float(sc.demand.get("job_units", 8))
        jobs: list[Job] = []
        served = 0.0
        for cls, units in demand.items():
            c = sc.classes[cls]
            workers = [a for a in self.agents if a.kind in ("honest", "cheater") and a.gpus(cls) > 0]
            cap = sum(a.gpus(cls) * c.units_per_gpu for a in workers)
            take = min(units, cap)
            for a in workers:
                u = take * a.gpus(cls) * c.units_per_gpu / cap
                mine = []
                while u > 1e-9:
                    ju = min(job_units, u)
                    u -= ju
                    cu = round(ju * UNIT_SCALE)
                    if cu > 0:
                        mine.append(Job(provider=a, cls=cls, units=cu / UNIT_SCALE, user=self.users, compute_units=cu))
                mine = self._coverable(a, mine)
                served += sum(j.units for j in mine)
                jobs.extend(mine)
        return jobs, served

    def _wash_jobs(self) -> list[Job]:
        """The wash trader pays itself one job of `wash_usd` a day (same market, same settlement)."""
        cls = self._wash_class()
        out = []
        for a in self.agents:
            if a.kind != "wash" or a.spec.wash_usd <= 0:
                continue
            cu = round(a.spec.wash_usd / cls.price_usd * UNIT_SCALE)
            j = Job(provider=a, cls=cls.name, units=cu / UNIT_SCALE, user=a.alt_address, compute_units=cu)
            out.extend(self._coverable(a, [j]))
        return out

    def _fund(self, jobs: list[Job]) -> None:
        """Each paying account buys on the spot market what its jobs escrow (Settlement.quote),
        using the tokens it holds first (users' refunds; the wash trader's customer side is its own)."""
        tok = self.token
        need: dict[str, int] = {}
        for j in jobs:
            need[j.user] = need.get(j.user, 0) + self._payment(j)
        for user, amount in need.items():
            short = amount - int(tok.balanceOf(user))
            if short > 0:
                usd = self.pool.buy_exact(user, short)
                if user == self.users:
                    self.users_usd -= usd
                else:
                    next(a for a in self.agents if a.alt_address == user).usd -= usd

    @staticmethod
    def _events(contract) -> list:
        """The events of `contract`'s last call, its callees' included, in order."""
        return list(contract.get_logs())

    @staticmethod
    def _new_stats() -> dict:
        return {
            "burned_escrow": 0,
            "minted_settlement": 0,
            "refunded": 0,
            "failed": 0,
            "slashed": 0,
            "minted_over_cap": 0,
            # Claims whose Settled (or whose accrual before it) disagrees with the jobs it covers,
            # and finalizations that settled anything themselves.
            "cap_mismatch": 0,
            # One Run per claim this epoch.
            "runs": [],
            # The audit draw: beacon rounds by final state, jobs drawn, jobs audited.
            "rounds": {},
            "drawn": 0,
            "audited": set(),
        }

    def _create(self, epoch: int, jobs: list[Job], by_id: dict[int, Job]) -> None:
        """Users fund the jobs: one create_jobs per (payer, provider, class), max_tokens = the quote."""
        mk, env = self.market, boa.env
        groups: dict[tuple, list[Job]] = {}
        for j in jobs:
            groups.setdefault((j.user, j.provider.address, j.cls), []).append(j)
        n = 0
        for (user, provider, cls), js in groups.items():
            for chunk in chunks(js):
                specs = [keccak(f"sim {self.variant} {epoch} {n + i}".encode()) for i in range(len(chunk))]
                n += len(chunk)
                quoted = sum(self._payment(j) for j in chunk)
                with env.prank(user):
                    ids = mk.create_jobs(
                        provider,
                        self.sc.classes[cls].class_id,
                        specs,
                        [j.compute_units for j in chunk],
                        self._offer(cls),
                        ACCEPT_WINDOW,
                        COMPLETE_WITHIN,
                        quoted,
                    )
                created = [e for e in self._events(mk) if type(e).__name__ == "JobCreated"]
                assert [int(e.job_id) for e in created] == list(ids)
                for j, e in zip(chunk, created, strict=True):
                    j.job_id = int(e.job_id)
                    j.epoch = epoch
                    j.f = {
                        "user": str(e.user),
                        "provider": str(e.provider),
                        "machine_id": 0,
                        "class_id": int(e.class_id),
                        "spec_hash": bytes(e.spec_hash),
                        "compute_units": int(e.compute_units),
                        "payment": int(e.payment),
                        "usd_value": int(e.usd_value),
                        "collateral": int(e.collateral),
                        "fee_bps": int(e.fee_bps),
                        "accept_by": int(e.accept_by),
                        "complete_within": int(e.complete_within),
                        "complete_by": 0,
                        "result_hash": b"\x00" * 32,
                        "challenge_end": 0,
                        "audit_bps": 0,
                        "draw_round": 0,
                    }
                    j.value_usd = j.f["usd_value"] / ONE_TOKEN
                    by_id[j.job_id] = j

    def _execute(self, jobs: list[Job], by_id: dict[int, Job]) -> None:
        """Providers accept (collateral locked) and, a minute later, submit their results."""
        mk, env = self.market, boa.env
        per_machine: dict[tuple, list[Job]] = {}
        for j in jobs:
            per_machine.setdefault((j.provider.address, j.cls), []).append(j)
        for (provider, cls), js in per_machine.items():
            mid = self.by_addr[provider].machine_for(cls).machine_id
            for chunk in chunks(js):
                with env.prank(provider):
                    mk.accept_jobs([j.job_id for j in chunk], [j.tup() for j in chunk], mid)
                for e in self._events(mk):
                    if type(e).__name__ == "JobAccepted":
                        j = by_id[int(e.job_id)]
                        j.f.update(
                            provider=str(e.provider),
                            machine_id=int(e.machine_id),
                            complete_by=int(e.complete_by),
                            collateral=int(e.collateral),
                            audit_bps=int(e.audit_bps),
                        )
                        j.status = int(JobStatus.RUNNING)
        env.timestamp = int(env.timestamp) + 60
        for (provider, _cls), js in per_machine.items():
            for chunk in chunks(js):
                results = [keccak(j.f["spec_hash"] + b"result") for j in chunk]
                with env.prank(provider):
                    mk.submit_results(
                        [j.job_id for j in chunk], [j.tup() for j in chunk], results, ["sim://r"] * len(chunk)
                    )
                for e in self._events(mk):
                    if type(e).__name__ == "ResultSubmitted":
                        j = by_id[int(e.job_id)]
                        j.f.update(
                            result_hash=bytes(e.result_hash),
                            challenge_end=int(e.challenge_end),
                            draw_round=int(e.draw_round),
                        )
                        j.status = int(JobStatus.SUBMITTED)

    def _draw(self, epoch: int, jobs: list[Job], st: dict) -> None:
        """The operators reveal every round the results are drawn from (in increasing order; the
        scenario's silent operators withhold theirs), time moves past the last reveal window, and
        each job's draw is read from JobMarket (and checked against the off-chain mirror)."""
        rounds = sorted({j.f["draw_round"] for j in jobs})
        silent = self.silent_operators(epoch)
        for r in rounds:
            self.beacon_members.reveal(r, silent)
        self.beacon_members.close(rounds[-1])
        for r in rounds:
            st["rounds"][r] = self.beacon_members.state(r)
        for j in jobs:
            j.drawn = self.beacon_members.drawn(j.job_id, j.f, j.tup())
            st["drawn"] += j.drawn

    def _run_jobs(self, epoch: int, jobs: list[Job], rng: random.Random) -> dict:
        """Every job of the epoch through JobMarket, from create_jobs to its verdict or finalize_many."""
        mk, env = self.market, boa.env
        st = self._new_stats()
        if not jobs:
            return st
        by_id: dict[int, Job] = {}
        self._fund(jobs)
        self._create(epoch, jobs, by_id)
        self._execute(jobs, by_id)
        # The beacon round decides the draw: drawn jobs are audited (no transaction opens it; the
        # verifier posts the verdict), the rest finalize.
        self._draw(epoch, jobs, st)
        for j in (j for j in jobs if j.drawn):
            st["audited"].add(j.job_id)
            valid = not (j.provider.kind == "cheater" and rng.random() * MAX_BPS < self.detection_bps)
            mk.post_verdict(j.job_id, j.tup(), valid)
            self._settled(self._events(mk), by_id, st)
        env.timestamp = max(j.f["challenge_end"] for j in jobs) + 1
        rest = sorted((j for j in jobs if j.status == int(JobStatus.SUBMITTED)), key=lambda j: j.provider.address)
        for chunk in chunks(rest):
            mk.finalize_many([j.job_id for j in chunk], [j.tup() for j in chunk])
            self._settled(self._events(mk), by_id, st)
        for j in jobs:
            assert j.status in (int(JobStatus.FINALIZED), int(JobStatus.FAILED)), (j.job_id, j.status)
            if j.status == int(JobStatus.FINALIZED):
                j.provider.completed += 1
                if j.provider.kind not in ("cheater", "wash"):
                    j.provider.epoch_units += j.units
        return st

    def _settled(self, events: list, by_id: dict[int, Job], st: dict) -> None:
        """Applies a finalization call's events: JobFinalized (the job is credited to its provider's
        next claim: no token moves, no Settled) or JobFailed (refund and slash)."""
        for e in events:
            name = type(e).__name__
            if name == "JobFinalized":
                j = by_id[int(e.job_id)]
                j.status = int(JobStatus.FINALIZED)
                j.fee = int(e.fee)
                assert int(e.burned) == j.f["payment"] and int(e.usd_value) == j.f["usd_value"]
                j.provider.unclaimed.append(j)
                self.finalized_escrow += j.f["payment"]
            elif name == "Settled":
                # Finalizing settles nothing: only a claim burns and mints.
                st["cap_mismatch"] += 1
            elif name == "JobFailed":
                j = by_id[int(e.job_id)]
                j.status = int(JobStatus.FAILED)
                j.provider.failed += 1
                j.provider.caught += 1
                st["failed"] += 1
                st["refunded"] += int(e.refund)
                st["slashed"] += int(e.user_compensation) + int(e.challenger_reward) + int(e.burned)

    def _wants_claim(self, a, epoch: int, usd_net: int, final: bool) -> bool:
        """The scenario's claim policy (offchain/sim/scenario.py, `claim`)."""
        if final:
            return True
        policy = self.sc.claim
        if epoch - a.unclaimed[0].epoch + 1 >= policy["every_epochs"]:
            return True
        return policy["min_usd"] > 0 and usd_net >= usd_wei(policy["min_usd"])

    def _claims(self, epoch: int, price: float, st: dict, final: bool = False) -> None:
        """End of the epoch: every provider whose policy says so claims (JobMarket.claim, from its
        own address) what JobMarket credited it. Before each claim the on-chain accrual is checked
        against the jobs the provider finalized since its last claim; the Settled event gives what
        was burned and minted, and the mint is attributed to those jobs."""
        mk, env = self.market, boa.env
        for a in self.agents:
            burned0, usd0, cap0 = (int(x) for x in mk.accrued(a.address))
            escrow = sum(j.f["payment"] for j in a.unclaimed)
            fees = sum(j.fee for j in a.unclaimed)
            usd_net = sum(j.usd_net for j in a.unclaimed)
            if (burned0, usd0, cap0) != (escrow, usd_net, escrow - fees):
                st["cap_mismatch"] += 1
            if not a.unclaimed or not self._wants_claim(a, epoch, usd0, final):
                continue
            with env.prank(a.address):
                minted = int(mk.claim(a.address))
            settled = [e for e in self._events(mk) if type(e).__name__ == "Settled"]
            assert len(settled) == 1 and str(settled[0].provider) == a.address, settled
            e = settled[0]
            run = Run(epoch, a, a.unclaimed, int(e.burned), int(e.usd_net), int(e.cap), int(e.minted), int(e.price))
            a.unclaimed = []
            a.claims += 1
            # The claim is the provider's jobs since its last one: escrow burned whole, the USD and
            # the cap summed, mint <= escrow - fees; the accrual is gone.
            if (run.burned, run.usd_net, run.cap) != (escrow, usd_net, escrow - fees) or run.minted != minted:
                st["cap_mismatch"] += 1
            if tuple(int(x) for x in mk.accrued(a.address)) != (0, 0, 0):
                st["cap_mismatch"] += 1
            st["minted_over_cap"] += max(0, run.minted - (escrow - fees))
            st["burned_escrow"] += run.burned
            st["minted_settlement"] += run.minted
            st["runs"].append(run)
            self.claim_log.append(run)
            a.epoch_settle += run.minted
            if a.kind == "wash":
                a.wash_burned += run.burned
            self._attribute(run, price)

    @staticmethod
    def _attribute(run: Run, price: float) -> None:
        """Splits the claim's mint over its jobs pro rata to their USD value minus fee (the last
        takes the rounding), and adds each share, at the claim's price, to its provider's income
        for the epoch the job was done in."""
        left = run.minted
        a = run.provider
        for i, j in enumerate(run.jobs):
            share = left if i == len(run.jobs) - 1 else run.minted * j.usd_net // run.usd_net if run.usd_net else 0
            left -= share
            j.minted = share
            a.income_by_epoch[j.epoch] = a.income_by_epoch.get(j.epoch, 0.0) + share / ONE_TOKEN * price
