"""Phases 5 to 7 of `make demo` (scripts/demo.py), as a mixin of its `Demo`: the jobs, how
each is checked (the on-chain audit draw, the users' own re-runs, disputes, the oracles'
verdicts) and their settlement (finalized, failed or expired; each provider's claim of its
finalized jobs' pay, burn-and-mint checked to the wei: scripts/_demo_settlement.py)."""

from __future__ import annotations

import requests

from offchain.constants import JobStatus
from scripts import _demo_report as R
from scripts._demo_params import (
    CPU_CLASS,
    FLAKY_COMPLETE_WITHIN,
    TERMINAL,
    matmul,
    mlp,
    toploc,
)
from scripts._demo_report import Job, busy, gpu, wait
from scripts._demo_settlement import SettlementPhases


class JobPhases(SettlementPhases):
    def submit(self, j: Job, **kw) -> Job:
        from offchain.client import sdk

        user = {"alice": self.alice, "bob": self.bob}[j.user]
        # Sealed end to end (offchain/sealing.py): only the provider, the oracle operators and
        # the user can read the spec, the inputs and the output.
        sub = sdk.submit(self.h, user, j.spec, class_id=CPU_CLASS, provider=self.by_name[j.provider],
                         keyring=self.keyring(j.user), **kw)  # fmt: skip
        j.job_id, j.payment, j.units = sub.job_id, sub.payment, sub.units
        return j

    def keyring(self, name: str):
        from offchain.client.sealed import user_keyring

        user = {"alice": self.alice, "bob": self.bob}[name]
        return user_keyring(user.address, self.log_dir / f"{name}.keys.json")

    def wait_submitted(self, js: list[Job], what: str) -> bool:
        done_states = {JobStatus.SUBMITTED, JobStatus.AUDIT, *TERMINAL}
        n = [0]

        def done() -> bool:
            n[0] = sum(self.job_status(j.job_id) in done_states for j in js)
            return n[0] == len(js)

        ok, _ = wait(self.console, what, done, 90, detail=lambda: f" ({n[0]} of {len(js)} in)")
        return ok

    def jobs(self) -> None:
        from offchain.chain.jobs import as_tuple, job_from_chain

        self.intro(
            5,
            "Jobs",
            "alice and bob send six small jobs to honest and to cheater (real hardware, fake "
            "results), each paying the job's USD price into escrow in GPU; alice also hires flaky, which "
            "accepts and then goes silent.",
        )
        market = self.market
        self.before = {p.address: (self.token.balanceOf(p), self.registry.slashable(p)) for p in self.agents}
        self.plans = [
            Job("alice", "honest", matmul(1)),
            Job("alice", "cheater", mlp(2)),
            Job("alice", "honest", toploc(3)),
            Job("bob", "cheater", matmul(4)),
            Job("bob", "honest", mlp(5)),
            Job("bob", "cheater", toploc(6)),
        ]
        with busy(self.console, "submitting 7 jobs (quote, upload, permit)"):
            for j in self.plans:
                self.submit(j)
            # Alice also hires flaky, which accepts (locking audit-sized collateral) and vanishes.
            # Its agent runs no job worker, so the demo publishes its encryption key for it.
            from offchain.chain import keys
            from offchain.sealing import Keyring

            keys.publish(self.h, self.flaky, Keyring.create(self.flaky.address, self.log_dir / "flaky.keys.json"))
            self.flaky_job = self.submit(Job("alice", "flaky", matmul(7)), complete_within=FLAKY_COMPLETE_WITHIN)
            fj = job_from_chain(market, self.flaky_job.job_id)
            market.accept(self.flaky_job.job_id, as_tuple(fj), self.machines[self.flaky.address], sender=self.flaky)
            self.flaky_job.audit_bps = int(job_from_chain(market, self.flaky_job.job_id)["audit_bps"])
        self.note(
            f"jobs {R.ids(self.plans)} submitted; flaky accepted job {self.flaky_job.job_id} (deliver within "
            f"{FLAKY_COMPLETE_WITHIN} s) and went silent"
        )
        ok = self.wait_submitted(self.plans, "waiting for the workers to run the jobs and submit the results")
        self.checks.require(
            ok,
            "the workers to submit all six results within 90 s",
            lambda: (
                "still waiting for "
                + ", ".join(
                    f"job {j.job_id} ({self.job_status(j.job_id).name})"
                    for j in self.plans
                    if self.job_status(j.job_id) not in {JobStatus.SUBMITTED, JobStatus.AUDIT, *TERMINAL}
                )
            ),
        )
        self.note("every result is in: its hash is on-chain, the output is served by the provider")
        self.data_protection(self.plans[0])

    def data_protection(self, j: Job) -> None:
        """What an outsider gets for a job's blobs: the hashes are on-chain, the bytes are not
        served to it, and what the provider stores is sealed (offchain/sealing.py)."""
        from offchain.chain.jobs import job_from_chain
        from offchain.client.sdk import request_signer
        from offchain.sealing import is_sealed

        job = job_from_chain(self.market, j.job_id)
        provider = str(job["provider"])
        url = f"{self.endpoints[provider]}/blobs/{bytes(job['result_hash']).hex()}"
        spec_hex = bytes(job["spec_hash"]).hex()
        unsigned = requests.get(url, timeout=10).status_code
        stranger = self.bob if j.user == "alice" else self.alice
        signed = requests.get(url, timeout=10, headers=request_signer(self.h, stranger).headers(
            provider, "GET", bytes(job["result_hash"]).hex())).status_code  # fmt: skip
        stored = (self.log_dir / f"agent-{j.provider}" / "blobs" / spec_hex[:2] / spec_hex).read_bytes()
        self.checks.expect(
            unsigned == 401 and signed == 403 and is_sealed(stored),
            f"job {j.job_id}'s blobs to be sealed and served only to its readers",
            f"unsigned GET {unsigned}, {stranger.address} GET {signed}, stored sealed: {is_sealed(stored)}",
        )
        self.note(
            f"data protection: job {j.job_id}'s spec, inputs and output are sealed to {j.provider}, the 3 oracle "
            f"operators and {j.user} (ChaCha20-Poly1305 under a per-job key); its result hash is public, but the "
            f"agent answers {unsigned} to an unsigned GET and {signed} to the other user's signed GET, and stores "
            f"only ciphertext"
        )
        specs = {p.job_id: self._stored_spec(p) for p in self.plans}
        self.checks.expect(
            all(b is not None and is_sealed(b) for b in specs.values()),
            f"every job's spec ({len(specs)}) stored sealed at its provider",
            f"not sealed: {[i for i, b in specs.items() if b is None or not is_sealed(b)]}",
        )
        self.note(
            f"all {len(specs)} jobs are sealed the same way: the audits and disputes below open them with the "
            "operators' keys and re-execute"
        )

    def _stored_spec(self, j: Job) -> bytes | None:
        from offchain.chain.jobs import job_from_chain

        spec_hex = bytes(job_from_chain(self.market, j.job_id)["spec_hash"]).hex()
        path = self.log_dir / f"agent-{j.provider}" / "blobs" / spec_hex[:2] / spec_hex
        return path.read_bytes() if path.exists() else None

    def draw_of(self, j: Job) -> bool | None:
        """The job's audit draw, as the oracles and JobMarket read it: AuditBeacon's seed for the
        job's round (`offchain.chain.beacon.audit_draw`); None while that round is pending."""
        from offchain.chain.beacon import audit_draw
        from offchain.chain.jobs import job_from_chain

        job = job_from_chain(self.market, j.job_id)
        j.audit_bps = int(job["audit_bps"])
        self.draw_rounds[j.job_id] = int(job["draw_round"])
        # The next block's time: anvil's head is as old as the last transaction.
        t = max(int(self.chain.blocks.head.timestamp), int(self.chain.pending_timestamp))
        return audit_draw(self.d.beacon, j.job_id, job, t)

    def wait_drawn(self, js: list[Job]) -> None:
        """Waits for the beacon rounds of `js` (the operators reveal once each round starts, at
        most ROUND_SECONDS after the submission) and sets each job's `drawn`."""
        draws: dict[int, bool | None] = {}
        self.draw_rounds = getattr(self, "draw_rounds", {})

        def known() -> bool:
            for j in js:
                if draws.get(j.job_id) is None:
                    draws[j.job_id] = self.draw_of(j)
            return all(draws[j.job_id] is not None for j in js)

        ok, _ = wait(self.console, "waiting for the operators to reveal the audit draw (AuditBeacon)", known, 90,
                     detail=lambda: f" ({sum(v is not None for v in draws.values())} of {len(js)} known)")  # fmt: skip
        self.checks.require(ok, "the audit draw of every job within 90 s", "some beacon rounds stayed pending")
        for j in js:
            j.drawn = bool(draws[j.job_id])
        states = []
        for r in sorted({self.draw_rounds[j.job_id] for j in js}):
            revealed, required = (int(x) for x in self.d.beacon.round_counts(r))
            state = "ready" if required and revealed == required else "degraded: all its jobs audited"
            required = required or int(self.d.beacon.required_members(r))
            states.append(f"round {r} {state} ({revealed} of {required} reveals)")
        self.note("audit beacon: " + "; ".join(states))

    def checking(self) -> None:
        from offchain.client import sdk

        self.intro(
            6,
            "Checking",
            "The oracle operators' commit-reveal beacon draws about half the jobs for an oracle audit "
            "(a round after each result, so nobody knew the draw when committing); the users re-run the "
            "others themselves and dispute a mismatch, and bob disputes one honest job by mistake.",
        )
        plans = self.plans
        self.wait_drawn(plans)
        drawn = [j for j in plans if j.drawn]
        self.note(f"drawn for audit: {'jobs ' + R.ids(drawn) if drawn else 'none'}")
        for j in plans:
            if j.drawn:
                continue
            user = {"alice": self.alice, "bob": self.bob}[j.user]
            with busy(self.console, f"{j.user} downloads job {j.job_id}'s result and re-runs it"):
                ring = self.keyring(j.user)
                res = sdk.fetch_result(self.h, j.job_id, self.log_dir / f"result-{j.job_id}", ring, account=user)
                match = sdk.verify_locally(self.h, j.job_id, res, keyring=ring, account=user)
                j.check = "match" if match else "mismatch"
                if not match:
                    sdk.dispute(self.h, user, j.job_id)
                    j.disputed, j.disputer = "mismatch", j.user
            self.note(
                f"{j.user} re-ran job {j.job_id} ({j.provider}): "
                + ("same output" if match else "[red]different output[/]: disputed (bond posted)")
            )
        # Bob's false dispute needs an honest result the draw missed (a drawn one is already
        # being audited); each extra job is one more coin flip. After the re-runs above: their
        # jobs' challenge windows run meanwhile, and one run of drawn extras outlasted a window.
        seed = 100
        while not any(j.provider == "honest" and not j.drawn and j.user == "bob" for j in plans) and seed < 106:
            self.note("the draw took every honest job of bob's: bob submits one more")
            with busy(self.console, "submitting one more job to honest"):
                extra = self.submit(Job("bob", "honest", matmul(seed)))
            seed += 1
            if not self.wait_submitted([extra], f"waiting for honest to run job {extra.job_id}"):
                break
            self.wait_drawn([extra])
            plans.append(extra)
            if extra.drawn:
                self.note(f"job {extra.job_id} drawn for audit too")
        # Only a job's user may dispute it (docs/SECURITY.md, finding 4): one of bob's own jobs.
        target = next((j for j in plans if j.provider == "honest" and not j.drawn and j.user == "bob"), None)
        if self.checks.expect(
            target is not None,
            "an undrawn honest job for bob's false dispute",
            "the draw took every honest job of bob's, six times",
        ):
            sdk.dispute(self.h, self.bob, target.job_id)
            target.disputed, target.disputer = "false", "bob"
            self.note(f"bob disputes job {target.job_id} (honest) anyway: he is wrong")
        self.audited = [j for j in plans if j.drawn or j.disputed]
        n = [0]

        def decided() -> bool:
            n[0] = sum(self.job_status(j.job_id) in TERMINAL for j in self.audited)
            return n[0] == len(self.audited)

        ok, secs = wait(
            self.console,
            f"waiting for the oracles to re-run and sign verdicts on jobs {R.ids(self.audited)}",
            decided,
            120,
            detail=lambda: f" ({n[0]} decided)",
        )
        self.checks.expect(
            ok,
            "a verdict on every drawn or disputed job within 120 s",
            lambda: f"{n[0]} of {len(self.audited)} were decided (see oracle-*.log)",
        )
        self.verdicts = {lg.job_id: lg for lg in self.hub.VerdictAccepted.range(0, self.chain.blocks.height + 1)}
        self.console.print(self.verdict_table(secs))

    def verdict_table(self, secs: float):
        t = R.table(
            f"audit verdicts (JobVerdict via OracleHub, quorum 2 of 3; {secs:.0f} s)",
            "job",
            "provider",
            "why audited",
            "verdict",
            "signers",
            "operator-0",
            "operator-1",
            "operator-2",
            right=(0, 4),
        )
        for j in self.audited:
            v = self.verdicts.get(j.job_id)
            own = []
            for o in self.operators:  # each operator's own finding (quorum reached without it: "-")
                try:
                    r = requests.get(f"{self.urls[o.address]}/audits/{j.job_id}", timeout=5)
                    rec = r.json() if r.status_code == 200 else {}
                except (requests.RequestException, ValueError):
                    rec = {}
                own.append(f"[{'green' if rec['valid'] else 'red'}]{rec.get('reason')}[/]" if "valid" in rec else "-")
            verdict = "-" if v is None else ("valid" if v.valid else "[red]invalid[/]")
            t.add_row(
                str(j.job_id),
                j.provider,
                "drawn" if j.drawn else f"disputed by {j.disputer}",
                verdict,
                "-" if v is None else str(v.signers),
                *own,
            )
        return t

    def reputation(self) -> None:
        token, registry, market = self.token, self.registry, self.market
        t = R.table(
            "reputation after the jobs (JobMarket.reputation) and the audit rate it implies",
            "provider",
            "completed",
            "failed",
            "expired",
            "audits ok",
            "disputes won",
            "lost",
            "audit rate",
            right=(1, 2, 3, 4, 5, 6, 7),
        )
        net = {}
        for p in (self.honest, self.cheater, self.flaky):
            b0, s0 = self.before[p.address]
            net[p.address] = token.balanceOf(p) - b0 + registry.slashable(p) - s0
            t.add_row(
                self.names[p.address],
                *(str(x) for x in tuple(registry.reputation(p))),
                f"{market.audit_rate(p) / 100:.0f}%",
            )
        self.console.print(t)
        hn, cn, fn = net[self.honest.address], net[self.cheater.address], net[self.flaky.address]
        gain = token.balanceOf(self.honest) - self.before[self.honest.address][0]
        minted = sum(int(a["minted"]) for a, _ in self.claims if a["provider"] == self.honest.address)
        bonds = sum(j.bond for j in self.plans if j.provider == "honest")
        self.checks.expect(
            gain == minted + bonds == sum(j.provider_gets for j in self.plans if j.provider == "honest"),
            "honest's balance to grow by exactly what its claims minted plus bonds won",
            f"it grew by {gain} wei, expected {minted} minted + {bonds} in bonds",
        )
        self.checks.expect(
            hn > 0 > cn and fn < 0,
            "honest to gain and cheater and flaky to lose in the job phase",
            f"honest {gpu(hn, True)}, cheater {gpu(cn, True)}, flaky {gpu(fn, True)} GPU",
        )
        self.checks.expect(
            registry.locked(self.honest) == 0 and registry.locked(self.flaky) == 0,
            "no collateral left locked after every job ended",
            "some is still locked",
        )
        self.note(
            f"job phase: honest {gpu(hn, True)} GPU, cheater {gpu(cn, True)}, flaky {gpu(fn, True)}: "
            + ("honest ends richer than cheater" if hn > cn else "[red]cheating paid[/]")
        )
