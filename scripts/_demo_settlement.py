"""Phase 7 of `make demo` (scripts/demo.py), a mixin of its `Demo` through `JobPhases`: the
jobs' settlement (finalized, failed or expired), each provider's claim of its finalized jobs'
pay (burn-and-mint checked to the wei) and JobMarket's books."""

from __future__ import annotations

from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus
from scripts import _demo_report as R
from scripts._demo_params import CHALLENGE_WINDOW, TERMINAL, USD
from scripts._demo_report import busy, wait


class SettlementPhases:
    def settlement(self) -> None:
        from offchain.client import sdk

        self.intro(
            7,
            "Settlement",
            f"anvil's clock jumps past the {CHALLENGE_WINDOW} s challenge window: the "
            "unchallenged jobs finalize (the provider credited), each provider's agent claims (escrow "
            "burned, its USD pay minted) and anyone may expire flaky's overdue job.",
        )
        chain, market, plans = self.chain, self.market, self.plans
        chain.provider.make_request("evm_increaseTime", [CHALLENGE_WINDOW + 1])
        chain.mine()
        with busy(self.console, f"the keeper expires job {self.flaky_job.job_id}"):
            sdk.expire(self.h, self.keeper, self.flaky_job.job_id)  # what `gpunet job expire ID` does; anyone may
        plans.append(self.flaky_job)
        wait(
            self.console,
            "waiting for honest's worker to finalize its jobs",
            lambda: all(self.job_status(j.job_id) in TERMINAL for j in plans),
            60,
        )
        self.wait_claims()

        height = chain.blocks.height + 1
        fin = {lg.job_id: lg for lg in market.JobFinalized.range(0, height)}
        failed = {lg.job_id: lg for lg in market.JobFailed.range(0, height)}
        expired = {lg.job_id: lg for lg in market.JobExpired.range(0, height)}
        disputes = {lg.job_id: lg for lg in market.JobDisputed.range(0, height)}
        settled = list(self.d.settlement.Settled.range(0, height))
        self.settled = [lg.event_arguments for lg in settled]
        self.fin = fin
        self.claims = self.claims_of(fin, settled)
        minted_by_job = self.job_mints(self.claims)
        for j in plans:
            j.status = self.job_status(j.job_id)
            if j.job_id in fin:
                j.bond = int(disputes[j.job_id].bond) if j.disputed == "false" and j.job_id in disputes else 0
                j.provider_gets = minted_by_job.get(j.job_id, 0) + j.bond
            elif j.job_id in failed:
                f = failed[j.job_id]
                j.provider_gets = -int(f.user_compensation + f.challenger_reward + f.burned)
                j.user_back = int(f.refund + f.user_compensation)
            elif j.job_id in expired:
                j.provider_gets, j.user_back = -int(expired[j.job_id].penalty), int(expired[j.job_id].refund)
            why = f"it is {j.status.name}"
            if j.disputed == "false":
                valid = j.job_id in self.verdicts and bool(self.verdicts[j.job_id].valid)
                self.checks.expect(
                    valid,
                    f"bob's false dispute of job {j.job_id} to end in a valid verdict",
                    "the oracles found the honest result invalid",
                )
            self.checks.expect(j.status == j.expected, f"job {j.job_id} ({j.provider}) to end {j.expected.name}", why)
        self.console.print(R.jobs_table(plans))
        fe = expired.get(self.flaky_job.job_id)
        self.checks.expect(
            fe is not None and int(fe.refund) == self.flaky_job.payment and int(fe.penalty) > 0,
            "alice to get flaky's job's escrow back plus a no-show penalty",
            f"the expiry refunded {fe.refund if fe else 0} wei of {self.flaky_job.payment}",
        )
        self.settlement_table(fin)
        self.reputation()

    def wait_claims(self) -> None:
        """Finalizing only credits a provider (JobMarket.accrued); its agent's worker claims the
        credit at its next cycle (a verdict credits it too). Left over after 60 s, the keeper
        claims it (anyone may; the tokens go to the provider) so the books below still close."""
        market = self.market
        ok, _ = wait(
            self.console,
            "waiting for the providers' workers to claim their pay",
            lambda: all(int(market.accrued(p)[0]) == 0 for p in self.agents),
            60,
        )
        left = [p for p in self.agents if int(market.accrued(p)[0])]
        self.checks.expect(
            ok and not left,
            "every provider's worker to claim its credited pay within 60 s",
            lambda: "still credited: " + ", ".join(self.names[p.address] for p in left),
        )
        for p in left:
            market.claim(p, sender=self.keeper)

    def claims_of(self, fin: dict, settled: list) -> list[tuple[dict, list]]:
        """(Settled arguments, the JobFinalized logs it paid) per claim, oldest first: a claim
        settles its provider's jobs finalized since that provider's previous claim."""
        order = sorted(settled, key=lambda lg: (lg.block_number, lg.log_index))
        claims: list[tuple[dict, list]] = [(lg.event_arguments, []) for lg in order]
        unpaid = []
        for f in sorted(fin.values(), key=lambda lg: (lg.block_number, lg.log_index)):
            at = (f.block_number, f.log_index)
            i = next((i for i, lg in enumerate(order) if lg.provider == f.provider
                      and (lg.block_number, lg.log_index) > at), None)  # fmt: skip
            if i is None:
                unpaid.append(f.job_id)
            else:
                claims[i][1].append(f)
        self.checks.expect(not unpaid, "every finalized job to be paid by a claim", f"jobs {unpaid} never were")
        return claims

    @staticmethod
    def job_mints(claims: list[tuple[dict, list]]) -> dict[int, int]:
        """Each finalized job's share of the mint of the claim that paid it: the claim's mint
        split by escrow, the remainder to the last job."""
        out: dict[int, int] = {}
        for a, js in claims:
            burned, left = sum(int(f.burned) for f in js) or 1, int(a["minted"])
            for i, f in enumerate(js):
                out[f.job_id] = left if i == len(js) - 1 else int(a["minted"]) * int(f.burned) // burned
                left -= out[f.job_id]
        return out

    def settlement_table(self, fin: dict) -> None:
        # Burn-and-mint at each claim: its mint must be min(Σ usd_net / price, Σ (escrow - fee))
        # over the jobs it paid, to the wei; each finalized job's escrow burned by exactly one.
        from offchain.chain.jobs import job_from_chain

        dec = int(self.d.settlement.feed_decimals())
        t = R.table(
            "settlement (each Settlement.Settled: escrow burned, provider minted its USD pay)",
            "claim by",
            "its jobs",
            "burned",
            "USD net of fee",
            "cap",
            "price",
            "minted",
            "formula",
            right=(2, 3, 4, 5, 6),
        )
        for a, js in self.claims:
            fee_bps = {f.job_id: int(job_from_chain(self.market, f.job_id)["fee_bps"]) for f in js}
            usd_net = sum(int(f.usd_value) - int(f.usd_value) * fee_bps[f.job_id] // MAX_BPS for f in js)
            cap = sum(int(f.burned) - int(f.fee) for f in js)
            escrow = sum(int(f.burned) for f in js)
            price = int(a["price"])
            want = min(usd_net * 10**dec // price, cap) if price else cap
            good = self.checks.expect(
                js and int(a["minted"]) == want and int(a["burned"]) == escrow,
                "each claim to burn its jobs' escrow and mint min(Σ usd_net / price, Σ cap) over them",
                f"{a['minted']} wei minted for {a['burned']} burned; its jobs give {want} for {escrow}",
            )
            t.add_row(
                self.names.get(a["provider"], R.short(a["provider"])),
                R.ids([f.job_id for f in js]) if js else "-",
                f"{int(a['burned']) / ONE_TOKEN:.4f}",
                f"${int(a['usd_net']) / USD:.4f}",
                f"{int(a['cap']) / ONE_TOKEN:.4f}",
                f"${price / 10**dec:.2f}" if price else "stale: cap",
                f"{int(a['minted']) / ONE_TOKEN:.4f}",
                f"[{'green' if good else 'red'}]{'yes' if good else 'NO'}[/]",
            )
        self.console.print(t)
        burned, escrow = sum(int(a["burned"]) for a in self.settled), sum(int(f.burned) for f in fin.values())
        paid = [f.job_id for _, js in self.claims for f in js]
        self.checks.expect(
            burned == escrow and sorted(paid) == sorted(fin),
            "settlement to burn every finalized job's escrow exactly once",
            f"the claims burned {burned} wei for jobs {sorted(paid)}; jobs {sorted(fin)} escrowed {escrow}",
        )
        counted = int(self.market.total_burned())
        self.checks.expect(
            counted == escrow,
            "JobMarket.total_burned to be the escrow of every finalized job",
            f"it is {counted} wei, the finalized jobs escrowed {escrow}",
        )
        self.market_books()

    def market_books(self) -> None:
        """JobMarket's token balance == the escrow of its unfinished jobs + held dispute bonds +
        the finalized escrow not claimed yet (Σ accrued) + the permanent wei (MARKET_DUST)."""
        from offchain.chain.deploy import MARKET_DUST
        from offchain.chain.jobs import job_from_chain

        market = self.market
        held = sum(int(market.accrued(p)[0]) for p in self.agents)
        for jid in range(1, int(market.job_count()) + 1):
            status = JobStatus(market.job_status(jid))
            if status in {JobStatus.OPEN, JobStatus.RUNNING, JobStatus.SUBMITTED, JobStatus.AUDIT}:
                held += int(job_from_chain(market, jid)["payment"])
            if status == JobStatus.AUDIT:
                held += int(market.disputes(jid).bond)
        balance = int(self.token.balanceOf(market))
        self.checks.expect(
            balance == held + MARKET_DUST,
            "JobMarket to hold exactly unfinished escrow + open bonds + unclaimed credit + 1 wei",
            f"it holds {balance} wei, the books say {held + MARKET_DUST}",
        )
