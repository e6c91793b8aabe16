"""`make demo`: a small gpunet network on a real anvil node, hardware checks and real jobs.

- anvil starts; the contracts are deployed with demo parameters (120 s challenge window, new
  providers audited on 50% of their jobs, a 900 s Emissions epoch with 100 GPU scheduled) and
  recorded (deployments/ethereum-local-foundry.json);
- three oracle operators (real `gpunet oracle run` processes, quorum 2 of 3, each reporting the
  price `fixed:1.25` to the PriceFeed, uptime epochs = Emissions' epochs) and three provider
  agents (real `gpunet provider serve` processes, two of them running the job worker) start;
- hardware: the providers stake and register a machine each; the operators challenge every
  machine (torch matmul checked with Freivalds, timed by the oracle's clock, memory proof):
  "honest" and "cheater" (CPU machines claiming the CPU class) become Active, "liar" (a CPU
  claiming an H100) is jailed and slashed. "cheater" runs `--cheat wrong-output`: its hardware is
  real, its job results are not;
- jobs: two users submit six jobs of three kinds (matmul_chain, mlp_train, toploc_generate)
  through the client SDK (permit funding, spec uploaded to the provider), three to each
  provider. The workers accept, execute and submit. The draw at submission selects about half
  the jobs for audit: the oracles open those audits, re-execute, and post JobVerdicts through
  OracleHub. Users download every undrawn result, check its hash and re-execute it locally; a
  mismatch (every cheater job the draw missed) is disputed and audited the same way. Bob also
  disputes one honest job he wrongly suspects (an undrawn one; if the draw took all three, he
  submits one more): the verdict is valid and his bond goes to the provider. Then anvil's
  clock passes the challenge windows and the honest worker finalizes its own jobs;
- tables show each job, each provider's balance, stake and on-chain reputation, and the
  verdicts; the exit code is 0 only if every outcome is the expected one (honest jobs
  Finalized, cheater jobs Failed, flaky's job Expired, the false dispute lost, liar Jailed,
  honest ends richer than cheater);
- prices: offers are USD per compute unit; the jobs wait for the quorum's first PriceFeed round
  and escrow the tokens their USD value buys at it (`Settlement.quote`, the client allowing 1%
  slippage). "flaky" (a fourth agent, honest hardware, no worker) accepts one of alice's jobs
  and never delivers: once its deadline passes anyone expires it, alice gets her escrow back
  plus the no-show penalty from flaky's collateral (EXPIRED);
- settlement: every finalized job's escrow is burned and Settlement mints the provider its USD
  value minus the 5% fee at the PriceFeed price, at most the escrow minus the fee; a table lists
  each `Settled` (burned, USD, cap, price, minted) and checks each mint against that formula;
- economy (issue 5): the PriceFeed's answer; anvil's clock passes the end of Emissions epoch 0
  (every job finalized in it), the oracles post uptime, finalize the epoch and post its rewards
  root; every provider with a leaf is claimed for through `gpunet rewards claim`. Tables: the
  token (minted by settlement, by Emissions, other; burned by settlement, by slashing, other;
  supply), the epoch (budget tapered by settlement burns, work and availability pools,
  released, claimed) and each provider's earnings (job income minted, emissions claimed,
  slashed, net). Also required for exit 0: the PriceFeed answers 1.25 USD, every mint matches
  the formula, Settlement.total_burned equals the escrow of the finalized jobs, the root was
  posted, each claim minted exactly what its proof and the on-chain pools imply, and
  totalSupply == total_minted - total_burned.

Every process and anvil are stopped on the way out, whatever happens.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click
import requests
from rich.console import Console
from rich.table import Table

from offchain.constants import ONE_TOKEN, JobStatus, MachineStatus
from offchain.params import EmissionsParams, MarketParams

console = Console(width=180)
CPU_CLASS = 1
PRICE = 10**17  # $0.10 per compute unit, USD with 18 decimals (1 unit = 1 GFLOP, offchain/workloads)
USD = 10**18
# The flaky provider's job: it must deliver within 60 s of accepting (it never does).
FLAKY_COMPLETE_WITHIN = 60
CHALLENGE_WINDOW = 120
PARAMS = MarketParams(
    challenge_window=CHALLENGE_WINDOW,
    min_accept_window=60,
    min_complete_within=60,
    base_audit_bps=5_000,
    new_provider_audit_bps=5_000,  # every provider here is new: about half the jobs are drawn
)
# Emissions: a 15-minute epoch 0 that the whole job phase falls in (anvil's clock then jumps
# past its end); a demo-sized schedule (100 GPU in epoch 0) so the pools read next to job pay.
EPOCH_SECONDS = 900
EMISSIONS = EmissionsParams(
    epoch_seconds=EPOCH_SECONDS, initial_epoch_emission=100 * ONE_TOKEN, taper_reference=1_000 * ONE_TOKEN
)
USD_PRICE = "1.25"  # every operator's price source: `fixed:1.25`
ORACLE_ARGS = ["--leader-timeout", "15", "--poll", "0.5", "--network-allowance", "0.5", "--memory-fraction", "0.5",
               "--confirm-delay", "1", "--ttl", "3600", "--audit-fetch-timeout", "5", "--audit-device", "cpu",
               "--price-source", f"fixed:{USD_PRICE}", "--emissions-epochs", "--probes-per-epoch", str(EPOCH_SECONDS),
               "--rewards-delay", "3"]  # fmt: skip
AGENT_ARGS = ["--poll", "0.3"]
TERMINAL = {JobStatus.FINALIZED, JobStatus.FAILED, JobStatus.EXPIRED}


def matmul(seed: int) -> dict:
    return {"kind": "matmul_chain", "params": {"n": 256, "k": 3}, "seed": seed}


def mlp(seed: int) -> dict:
    p = {"in_dim": 16, "hidden": [32], "out_dim": 4, "samples": 256, "batch": 32, "steps": 20}
    return {"kind": "mlp_train", "params": p, "seed": seed}


def toploc(seed: int) -> dict:
    p = {"vocab": 64, "d_model": 32, "layers": 2, "heads": 2, "prompt_len": 4, "new_tokens": 8, "topk": 4}
    return {"kind": "toploc_generate", "params": p, "seed": seed}


@dataclass
class Job:
    user: str
    provider: str
    spec: dict
    job_id: int = 0
    payment: int = 0
    units: int = 0
    drawn: bool = False
    audit_bps: int = 0
    disputer: str = ""
    check: str = "-"  # the user's local re-execution
    disputed: str = ""  # "", "mismatch", "false"

    @property
    def expected(self) -> JobStatus:
        return {"cheater": JobStatus.FAILED, "flaky": JobStatus.EXPIRED}.get(self.provider, JobStatus.FINALIZED)


def run_demo() -> int:
    from offchain.devnet import Devnet

    workdir = Path(tempfile.mkdtemp(prefix="gpunet-demo-"))
    devnet = Devnet(workdir)
    t0 = time.monotonic()
    try:
        return _run(workdir, devnet)
    finally:
        devnet.stop_all()  # every process, whatever happened
        console.print(f"processes stopped; their logs are in {workdir}; demo took {time.monotonic() - t0:.0f} s")


def _wait(pred, timeout: float, poll: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(poll)
    return pred()


def _logs(devnet) -> None:
    for n in list(devnet.procs):
        console.print(f"--- {n}\n{devnet.tail(n, 40)}")


def _run(workdir: Path, devnet) -> int:
    from ape import accounts, chain, networks, project

    from offchain.chain.anvil import running_anvil
    from offchain.chain.client import Handles
    from offchain.chain.deploy import deploy_all, deployment_path
    from offchain.chain.jobs import as_tuple, audit_draw, job_from_chain
    from offchain.client import sdk
    from offchain.devnet import free_ports, stake_operators

    with running_anvil(log_path=workdir / "anvil.log") as url:
        console.print(f"[bold]anvil[/] listening on {url}")
        with networks.parse_network_choice("ethereum:local:foundry"):
            acct = accounts.test_accounts
            deployer, honest, cheater, alice, bob, liar = acct[0], acct[1], acct[2], acct[3], acct[4], acct[6]
            keeper = acct[5]
            # "flaky" passes its hardware check, takes a job and never delivers (its agent runs no
            # worker; the demo accepts the job with its key and then does nothing).
            flaky = acct.generate_test_account()
            test_index = {honest.address: 1, cheater.address: 2, liar.address: 6}
            operator_index = (7, 8, 9)
            operators = [acct[i] for i in operator_index]
            names = {
                **{o.address: f"operator-{i}" for i, o in enumerate(operators)},
                honest.address: "honest",
                cheater.address: "cheater",
                liar.address: "liar",
                flaky.address: "flaky",
                alice.address: "alice",
                bob.address: "bob",
            }
            by_name = {v: k for k, v in names.items()}
            d = deploy_all(
                project,
                deployer,
                local=True,
                operators=[o.address for o in operators],
                threshold=2,
                params=PARAMS,
                emissions_params=EMISSIONS,
                record_path=deployment_path("ethereum", "local", "foundry"),
                chain_id=chain.chain_id,
            )
            token, registry, market, hub = d.token, d.registry, d.market, d.hub
            h = Handles(record=d.record, token=token, registry=registry, market=market, hub=hub, chain=chain,
                        price_feed=d.price_feed, emissions=d.emissions, settlement=d.settlement)  # fmt: skip
            console.print(f"deployed: {json.dumps(d.record['contracts'])}")
            console.print(
                f"demo params: challenge window {PARAMS.challenge_window} s, new providers audited on "
                f"{PARAMS.new_provider_audit_bps / 100:.0f}% of their jobs"
            )
            stake_operators(token, hub, deployer, operators, 1_000 * ONE_TOKEN)
            deployer.transfer(flaky, 10**18)  # gas money: generated accounts start empty
            for a in (honest, cheater, liar, flaky):
                token.mint(a, 10_000 * ONE_TOKEN, sender=deployer)
                token.approve(registry, 2**256 - 1, sender=a)
            for u in (alice, bob):
                token.mint(u, 100 * ONE_TOKEN, sender=deployer)  # no approval: jobs are funded by permit

            # Real processes: three provider agents (honest and cheater run the job worker) and
            # three oracle operators.
            ports = free_ports(7)
            claims = {
                honest.address: ("CPU", CPU_CLASS, 256),
                cheater.address: ("CPU", CPU_CLASS, 256),
                liar.address: ("H100 SXM5", 10, 81_920),
                flaky.address: ("CPU", CPU_CLASS, 256),
            }
            endpoints = {}
            agents = (honest, cheater, liar, flaky)
            for p, port in zip(agents, ports[3:], strict=True):
                name = f"agent-{names[p.address]}"
                worker = (
                    {} if p in (liar, flaky) else {"test_account": test_index[p.address], "state_dir": workdir / name}
                )
                cheat = "wrong-output" if p is cheater else None
                endpoints[p.address] = devnet.start_agent(
                    name, p.address, claims[p.address][0], port, cheat, extra=AGENT_ARGS, **worker
                )
            urls = devnet.start_oracles(
                operator_index, [o.address for o in operators], workdir, ORACLE_ARGS, ports=ports[:3]
            )
            for p in agents:
                devnet.wait_http(f"agent-{names[p.address]}", endpoints[p.address])
            for i, o in enumerate(operators):
                devnet.wait_http(f"oracle-{i}", urls[o.address])
            console.print("4 provider agents (2 running job workers) and 3 oracle operators (quorum 2 of 3) are up")

            machines = {}
            for p in agents:
                registry.stake(500 * ONE_TOKEN, sender=p)
                claim, class_id, vram = claims[p.address]
                tx = registry.register(class_id, 1, vram, endpoints[p.address], sender=p)
                machines[p.address] = tx.decode_logs(registry.MachineRegistered)[0].machine_id
                registry.set_offer(class_id, PRICE, sender=p)
            stake_before = {p.address: registry.slashable(p) for p in agents}
            console.print("providers staked 500 GPU each and registered one machine; the operators challenge them...")
            t0 = time.monotonic()
            _wait(lambda: all(registry.machine_status(m) != MachineStatus.PENDING for m in machines.values()), 240, 1)
            attest_s = time.monotonic() - t0
            hw = Table(title=f"hardware verification ({attest_s:.0f} s for all four)")
            for col in ("provider", "machine", "claims", "status", "signers", "measured", "slashed"):
                hw.add_column(col)
            accepted = {log.machine_id: log for log in hub.AttestationAccepted.range(0, chain.blocks.height + 1)}
            expected_hw = {
                honest.address: MachineStatus.ACTIVE,
                cheater.address: MachineStatus.ACTIVE,
                liar.address: MachineStatus.JAILED,
                flaky.address: MachineStatus.ACTIVE,
            }
            ok = True
            for p in agents:
                mid = machines[p.address]
                status = MachineStatus(registry.machine_status(mid))
                good = status == expected_hw[p.address]
                ok &= good
                a = accepted.get(mid)
                measured = "-"
                if a is not None:
                    measured = f"{max(a.fp32_gflops, a.bf16_gflops) / 1000:.3f} TFLOPS"
                slashed = stake_before[p.address] - registry.slashable(p)
                hw.add_row(
                    names[p.address],
                    str(mid),
                    claims[p.address][0],
                    f"[{'green' if good else 'red'}]{status.name}[/]",
                    str(a.signers) if a is not None else "-",
                    measured,
                    f"{slashed / ONE_TOKEN:.1f}",
                )
            console.print(hw)
            if not ok:
                _logs(devnet)
                console.print("[bold red]demo FAILED: hardware verification outcome differs[/]")
                return 1

            # ---- the token/USD price: jobs are priced in USD and funded at the PriceFeed answer
            _wait(lambda: h.price_feed.latest_round() >= 1, 90, 1)
            if h.price_feed.latest_round() < 1:
                _logs(devnet)
                console.print("[bold red]demo FAILED: the operators never posted a price round[/]")
                return 1
            console.print(
                f"PriceFeed GPU/USD: {int(h.price_feed.latest_price()) / 1e8:.2f} (quorum round "
                f"{h.price_feed.latest_round()}); offers are ${PRICE / USD:.2f} per compute unit, so a unit "
                f"escrows {int(d.settlement.quote(PRICE)) / ONE_TOKEN:.3f} GPU"
            )

            # ---- jobs
            before = {p.address: (token.balanceOf(p), registry.slashable(p)) for p in (honest, cheater, flaky)}
            users = {"alice": alice, "bob": bob}
            plans = [
                Job("alice", "honest", matmul(1)),
                Job("alice", "cheater", mlp(2)),
                Job("alice", "honest", toploc(3)),
                Job("bob", "cheater", matmul(4)),
                Job("bob", "honest", mlp(5)),
                Job("bob", "cheater", toploc(6)),
            ]

            def submit(j: Job, **kw) -> None:
                sub = sdk.submit(h, users[j.user], j.spec, class_id=CPU_CLASS, provider=by_name[j.provider], **kw)
                j.job_id, j.payment, j.units = sub.job_id, sub.payment, sub.units

            def wait_submitted(js: list[Job]) -> bool:
                done = {JobStatus.SUBMITTED, JobStatus.AUDIT, *TERMINAL}
                return _wait(lambda: all(JobStatus(market.job_status(j.job_id)) in done for j in js), 90)

            def drawn(j: Job) -> bool:
                # The on-chain draw, computed as the oracles do (offchain.oracle.jobwatch): the
                # `audit_drawn` view runs *in* the head block on anvil and answers False there.
                job = job_from_chain(market, j.job_id)
                j.audit_bps = int(job["audit_bps"])
                return bool(audit_draw(chain, j.job_id, job))

            for j in plans:
                submit(j)
            # Alice also hires flaky, which accepts (locking audit-sized collateral) and vanishes.
            flaky_job = Job("alice", "flaky", matmul(7))
            submit(flaky_job, complete_within=FLAKY_COMPLETE_WITHIN)
            fj = job_from_chain(market, flaky_job.job_id)
            market.accept(flaky_job.job_id, as_tuple(fj), machines[flaky.address], sender=flaky)
            flaky_job.audit_bps = int(job_from_chain(market, flaky_job.job_id)["audit_bps"])
            console.print(
                f"alice and bob submitted jobs {[j.job_id for j in plans]}; the workers run them. flaky accepted "
                f"job {flaky_job.job_id} (deliver within {FLAKY_COMPLETE_WITHIN} s) and went silent"
            )
            if not wait_submitted(plans):
                _logs(devnet)
                console.print("[bold red]demo FAILED: a job was never submitted[/]")
                return 1
            for j in plans:
                j.drawn = drawn(j)
            # Bob's false dispute needs an honest result the draw missed (a drawn one is already
            # being audited); each extra job is one more coin flip.
            seed = 100
            while not any(j.provider == "honest" and not j.drawn for j in plans) and seed < 106:
                extra = Job("bob", "honest", matmul(seed))
                seed += 1
                submit(extra)
                if not wait_submitted([extra]):
                    break
                extra.drawn = drawn(extra)
                plans.append(extra)
            console.print(f"drawn for audit: {[j.job_id for j in plans if j.drawn]}; users check the others locally")

            # Users download every undrawn result (hash checked against the chain), re-execute it
            # and dispute a mismatch.
            for j in plans:
                if j.drawn:
                    continue
                res = sdk.fetch_result(h, j.job_id, workdir / f"result-{j.job_id}")
                match = sdk.verify_locally(h, j.job_id, res)
                j.check = "match" if match else "MISMATCH"
                if not match:
                    sdk.dispute(h, users[j.user], j.job_id)
                    j.disputed, j.disputer = "mismatch", j.user
            false_target = next((j for j in plans if j.provider == "honest" and not j.drawn), None)
            if false_target is not None:
                sdk.dispute(h, bob, false_target.job_id)
                false_target.disputed, false_target.disputer = "false", "bob"
            else:
                ok = False
                console.print("[red]no undrawn honest job for the false dispute[/]")

            # The oracles settle every drawn or disputed job; then the challenge windows pass and
            # the honest worker finalizes the rest itself; anyone expires flaky's overdue job.
            audited = [j for j in plans if j.drawn or j.disputed]
            console.print(f"oracles audit jobs {[j.job_id for j in audited]}...")
            _wait(lambda: all(JobStatus(market.job_status(j.job_id)) in TERMINAL for j in audited), 120)
            chain.provider.make_request("evm_increaseTime", [CHALLENGE_WINDOW + 1])
            chain.mine()
            console.print(
                f"anvil's clock moved {CHALLENGE_WINDOW + 1} s: challenge windows over, flaky's deadline passed"
            )
            sdk.expire(h, keeper, flaky_job.job_id)  # what `gpunet job expire ID` does; anyone may
            plans.append(flaky_job)
            _wait(lambda: all(JobStatus(market.job_status(j.job_id)) in TERMINAL for j in plans), 60)

            height = chain.blocks.height + 1
            fin = {lg.job_id: lg for lg in market.JobFinalized.range(0, height)}
            failed = {lg.job_id: lg for lg in market.JobFailed.range(0, height)}
            expired = {lg.job_id: lg for lg in market.JobExpired.range(0, height)}
            disputes = {lg.job_id: lg for lg in market.JobDisputed.range(0, height)}
            verdicts = {lg.job_id: lg for lg in hub.VerdictAccepted.range(0, height)}
            accepted_jobs = {lg.job_id: lg for lg in market.JobAccepted.range(0, height)}
            settled = [lg.event_arguments for lg in d.settlement.Settled.range(0, height)]

            table = Table(title=f"jobs (offers ${PRICE / USD:.2f}/unit; funded and settled at the PriceFeed answer)")
            for col in ("job", "user", "kind", "provider", "units", "USD", "escrow", "collateral", "audit p",
                        "drawn?", "user check", "disputed?", "outcome", "money"):  # fmt: skip
                table.add_column(col)
            for j in plans:
                status = JobStatus(market.job_status(j.job_id))
                good = status == j.expected
                if j.disputed == "false":
                    good &= j.job_id in verdicts and bool(verdicts[j.job_id].valid)
                ok &= good
                usd = ""
                if j.job_id in fin:
                    f = fin[j.job_id]
                    usd = f"${int(f.usd_value) / USD:.3f}"
                    money = f"escrow burned (fee {f.fee / ONE_TOKEN:.4f}); provider minted"
                    if j.job_id in disputes:
                        money += f" + bond {disputes[j.job_id].bond / ONE_TOKEN:.1f}"
                elif j.job_id in failed:
                    f = failed[j.job_id]
                    money = (
                        f"refund {f.refund / ONE_TOKEN:.3f} + {f.user_compensation / ONE_TOKEN:.3f}; "
                        f"slashed {(f.user_compensation + f.challenger_reward + f.burned) / ONE_TOKEN:.3f}"
                    )
                elif j.job_id in expired:
                    f = expired[j.job_id]
                    money = f"refund {f.refund / ONE_TOKEN:.3f} + no-show penalty {f.penalty / ONE_TOKEN:.3f}"
                else:
                    money = "-"
                coll = accepted_jobs[j.job_id].collateral if j.job_id in accepted_jobs else 0
                table.add_row(
                    str(j.job_id),
                    j.user,
                    j.spec["kind"],
                    j.provider,
                    str(j.units),
                    usd or f"${PRICE * j.units / USD:.3f}",
                    f"{j.payment / ONE_TOKEN:.3f}",
                    f"{coll / ONE_TOKEN:.2f}",
                    f"{j.audit_bps / 100:.0f}%",
                    "yes" if j.drawn else "no",
                    j.check,
                    {"": "no", "mismatch": f"{j.disputer} (mismatch)", "false": f"{j.disputer} (wrongly)"}[j.disputed],
                    f"[{'green' if good else 'red'}]{status.name}[/]",
                    money,
                )
            console.print(table)
            # flaky's job: alice got her escrow back plus the no-show penalty from the collateral.
            fe = expired.get(flaky_job.job_id)
            ok &= fe is not None and int(fe.refund) == flaky_job.payment and int(fe.penalty) > 0

            vt = Table(title="audit verdicts (JobVerdict via OracleHub, quorum 2 of 3)")
            for col in ("job", "provider", "why audited", "verdict", "signers", *(f"operator-{i}" for i in range(3))):
                vt.add_column(col)
            for j in audited:
                v = verdicts.get(j.job_id)
                own = []
                for o in operators:
                    try:
                        r = requests.get(f"{urls[o.address]}/audits/{j.job_id}", timeout=5)
                        rec = r.json() if r.status_code == 200 else {}
                        if "valid" in rec:
                            own.append(f"{'valid' if rec['valid'] else 'invalid'} ({rec.get('reason')})")
                        else:  # quorum reached without it: it never re-executed this job
                            own.append("-")
                    except (requests.RequestException, ValueError):
                        own.append("-")
                vt.add_row(
                    str(j.job_id),
                    j.provider,
                    "drawn" if j.drawn else f"disputed by {j.disputer}",
                    "-" if v is None else ("valid" if v.valid else "[red]invalid[/]"),
                    "-" if v is None else str(v.signers),
                    *own,
                )
            console.print(vt)

            # Burn-and-mint settlement: one Settled per run of a provider's jobs finalized
            # together; each mint must be min(usd_net / price, escrow - fee) to the wei.
            st = Table(title="settlement (Settlement.Settled: escrow burned, provider minted its USD pay)")
            for col in ("provider", "escrow burned", "USD net of fee", "cap (escrow - fee)", "price", "minted",
                        "formula holds"):  # fmt: skip
                st.add_column(col)
            mint_ok = True
            for a in settled:
                price = int(a["price"])
                want = min(int(a["usd_net"]) * 10**8 // price, int(a["cap"])) if price else int(a["cap"])
                good = int(a["minted"]) == want
                mint_ok &= good
                st.add_row(
                    names.get(a["provider"], a["provider"]),
                    f"{int(a['burned']) / ONE_TOKEN:.4f}",
                    f"${int(a['usd_net']) / USD:.4f}",
                    f"{int(a['cap']) / ONE_TOKEN:.4f}",
                    f"${price / 1e8:.2f}" if price else "stale: cap paid",
                    f"{int(a['minted']) / ONE_TOKEN:.4f}",
                    f"[{'green' if good else 'red'}]{'yes' if good else 'NO'}[/]",
                )
            console.print(st)
            # Every finalized job's escrow was burned by settlement, exactly once.
            mint_ok &= sum(int(a["burned"]) for a in settled) == sum(int(f.burned) for f in fin.values())
            ok &= mint_ok

            pt = Table(title="providers (job phase)")
            for col in ("provider", "balance change", "stake change", "net", "completed", "failed", "expired",
                        "audits passed", "disputes won", "disputes lost", "audit rate now"):  # fmt: skip
                pt.add_column(col)
            net = {}
            for p in (honest, cheater, flaky):
                db = token.balanceOf(p) - before[p.address][0]
                ds = registry.slashable(p) - before[p.address][1]
                net[p.address] = db + ds
                rep = tuple(market.reputation(p))
                pt.add_row(
                    names[p.address],
                    f"{db / ONE_TOKEN:+.3f}",
                    f"{ds / ONE_TOKEN:+.3f}",
                    f"{(db + ds) / ONE_TOKEN:+.3f}",
                    *(str(x) for x in rep),
                    f"{market.audit_rate(p) / 100:.0f}%",
                )
            console.print(pt)
            hn, cn, fn = net[honest.address], net[cheater.address], net[flaky.address]
            minted_to = {p.address: 0 for p in (honest, cheater, liar, flaky)}
            for a in settled:
                minted_to[a["provider"]] += int(a["minted"])
            bonds_won = {p.address: 0 for p in (honest, cheater, liar, flaky)}
            for j in plans:
                if j.disputed == "false" and j.job_id in disputes and j.job_id in fin:
                    bonds_won[by_name[j.provider]] += int(disputes[j.job_id].bond)
            # The honest provider's gain is exactly what Settlement minted it plus the bond it won.
            ok &= (
                token.balanceOf(honest) - before[honest.address][0]
                == minted_to[honest.address] + bonds_won[honest.address]
            )
            ok &= hn > 0 > cn and fn < 0
            ok &= registry.locked(honest) == 0 and registry.locked(flaky) == 0
            console.print(
                f"honest ends {hn / ONE_TOKEN:+.3f} GPU, cheater {cn / ONE_TOKEN:+.3f} GPU, "
                f"flaky {fn / ONE_TOKEN:+.3f} GPU: "
                + ("honest ends richer than cheater" if hn > cn else "[red]cheating paid[/]")
            )
            income = {a: minted_to[a] + bonds_won[a] for a in minted_to}
            ok &= _economy(d, chain, names, (honest, cheater, liar, flaky), income, settled, fin, urls, devnet)
            if not ok:
                _logs(devnet)
    console.print("[bold green]demo OK[/]" if ok else "[bold red]demo FAILED: an outcome differs[/]")
    return 0 if ok else 1


def _claim(epoch: int, provider: str, oracles: list[str]) -> dict:
    """`gpunet rewards claim` (a real CLI process): proof from an operator, checked against the root."""
    import subprocess

    from offchain.devnet import GPUNET, REPO_ROOT

    args = [GPUNET, "rewards", "claim", "--epoch", str(epoch), "--provider", provider, "--test-account", "5", "--json"]
    for u in oracles:
        args += ["--oracle", u]
    out = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"gpunet rewards claim failed: {out.stdout[-2000:]}{out.stderr[-2000:]}")
    return json.loads(out.stdout)


def _economy(
    d, chain, names: dict, providers: tuple, income: dict, settled: list, fin: dict, urls: dict, devnet
) -> bool:
    """The economics (issue 5): PriceFeed answer, epoch 0's emissions (finalized, rewards root
    posted by the oracle quorum, claimed through `gpunet rewards claim`), token supply, burns
    and mints, each provider's earnings. True when every check holds."""
    from offchain.economics import rewards as E
    from offchain.oracle.epoch_rewards import rewards_from_json

    token, registry, em, feed = d.token, d.registry, d.emissions, d.price_feed
    ok = True
    zero = "0x" + "00" * 20

    # PriceFeed: the three operators report `fixed:1.25`; a quorum-signed round answers it.
    want_answer = int(float(USD_PRICE) * 10**8)
    _wait(lambda: feed.latest_round() >= 1 and int(feed.latest_price()) == want_answer, 60, 1)
    rounds = int(feed.latest_round())
    price_ok = rounds >= 1 and int(feed.latest_price()) == want_answer
    ok &= price_ok
    if rounds:
        rid, answer, _, updated, _ = feed.latestRoundData()
        age = chain.blocks.head.timestamp - int(updated)
        price_line = f"{int(answer) / 10 ** int(feed.decimals()):.2f} USD (round {rid}, {age} s old)"
    else:
        price_line = "no round yet"
    console.print(
        f"PriceFeed GPU/USD (3 operators report `fixed:{USD_PRICE}`, quorum 2 of 3): "
        f"[{'green' if price_ok else 'red'}]{price_line}[/]"
    )

    # Emissions epoch 0 ends: anvil's clock jumps past it. The oracles post the machines'
    # uptime, one finalizes the epoch, the quorum builds the rewards tree and posts its root.
    # Chain time is now ahead of the wall clock: mine a block per poll, as a live chain would.
    end0 = int(em.GENESIS()) + EPOCH_SECONDS
    jobs_end = chain.blocks.head.timestamp
    chain.provider.make_request("evm_increaseTime", [max(0, end0 + 2 - jobs_end)])
    chain.mine()
    console.print(
        f"emissions epoch 0 ({EPOCH_SECONDS} s, every job finalized in it, {end0 - jobs_end} s before its end): "
        "anvil's clock moved past its end; the oracles post uptime, finalize it and post the rewards root..."
    )
    t0 = time.monotonic()

    def root_posted() -> bool:
        chain.mine()
        return bytes(em.epochs(0).root) != b"\x00" * 32

    posted = _wait(root_posted, 120, 0.5)
    root_s = time.monotonic() - t0
    ok &= posted
    ep = em.epochs(0)
    if not posted:
        _logs(devnet)
        console.print("[red]the epoch 0 rewards root was never posted[/]")
        return False
    height = chain.blocks.height + 1
    (posted_log,) = list(em.RewardsPosted.range(0, height))
    console.print(
        f"rewards root posted {root_s:.0f} s after the epoch ended ({posted_log.signers} signatures): "
        f"0x{bytes(ep.root).hex()}"
    )

    # Every leaf (from an operator's tree, rebuilt here to its root) is claimed through the CLI;
    # the amount must be what the proof and the on-chain pools imply, to the wei.
    oracles = list(urls.values())
    tree = rewards_from_json(requests.get(f"{oracles[0]}/rewards/0", timeout=10).json())
    ok &= tree.root == bytes(ep.root)
    pools = (int(ep.work_pool), int(ep.availability_pool), int(ep.total_work), int(ep.total_availability))
    claimed: dict[str, int] = {}
    leaves: dict[str, tuple[int, int]] = {}
    claims_ok = True
    for p in providers:
        r = requests.get(f"{oracles[0]}/rewards/0/{p.address}", timeout=10)
        if r.status_code != 200:
            claims_ok &= p.address not in tree.leaves
            continue
        leaf = r.json()
        w, av = int(leaf["work_units"]), int(leaf["availability_weight"])
        proof = [bytes.fromhex(x.removeprefix("0x")) for x in leaf["proof"]]
        claims_ok &= E.verify_proof(proof, bytes(ep.root), E.leaf_hash(0, p.address, w, av))
        want = E.claim_amount(*pools, w, av)
        before = token.balanceOf(p)
        out = _claim(0, p.address, oracles)
        minted = token.balanceOf(p) - before
        good = out["amount"] == out["expected"] == want == minted
        claims_ok &= good
        if not good:
            console.print(f"[red]claim for {names[p.address]}: minted {minted}, expected {want}: {out}[/]")
        claimed[p.address], leaves[p.address] = minted, (w, av)
    # Every leaf was claimed, the honest provider (finalized jobs in the epoch) has one, and
    # Emissions minted exactly the claims.
    claims_ok &= set(tree.leaves) == set(leaves) and providers[0].address in leaves
    claims_ok &= int(em.epochs(0).claimed) == sum(claimed.values()) == int(em.total_emitted())
    ok &= claims_ok

    # Token: supply, mints, burns (Slashed to the zero address are the slashing burns).
    height = chain.blocks.height + 1
    slashes = [lg.event_arguments for lg in registry.Slashed.range(0, height)]
    slash_burn = sum(int(a["amount"]) for a in slashes if str(a["beneficiary"]).lower() == zero)
    minted_all, burned_all, supply = int(token.total_minted()), int(token.total_burned()), int(token.totalSupply())
    supply_ok = supply == minted_all - burned_all
    ok &= supply_ok
    settle_minted = sum(int(a["minted"]) for a in settled)
    settle_burned = sum(int(a["burned"]) for a in settled)
    ok &= settle_burned == int(d.settlement.total_burned())

    def g(x: int) -> str:
        return f"{x / ONE_TOKEN:,.3f}"

    et = Table(title="economy: token (GPU)")
    for col in ("total_minted", "by settlement", "by Emissions claims", "other mints (setup)", "total_burned",
                "by settlement", "by slashing", "other burns", "totalSupply", "supply == minted - burned"):  # fmt: skip
        et.add_column(col)
    emitted = int(em.total_emitted())
    et.add_row(
        g(minted_all), g(settle_minted), g(emitted), g(minted_all - emitted - settle_minted), g(burned_all),
        g(settle_burned), g(slash_burn), g(burned_all - slash_burn - settle_burned),
        g(supply), f"[{'green' if supply_ok else 'red'}]{'yes' if supply_ok else 'NO'}[/]",
    )  # fmt: skip
    console.print(et)

    rt = Table(title=f"economy: emissions epoch 0 ({EPOCH_SECONDS} s; schedule {g(EMISSIONS.initial_epoch_emission)} "
                     f"GPU, taper reference {g(EMISSIONS.taper_reference)})")  # fmt: skip
    for col in ("budget", "burned in epoch", "total work (fees)", "work pool", "total availability",
                "availability pool", "released (unclaimable)", "claimed", "root"):  # fmt: skip
        rt.add_column(col)
    rt.add_row(
        g(int(ep.budget)), g(int(ep.burned)), g(int(ep.total_work)), g(int(ep.work_pool)),
        str(int(ep.total_availability)), g(int(ep.availability_pool)), g(int(posted_log.released)),
        g(int(em.epochs(0).claimed)),
        "0x" + bytes(ep.root).hex()[:16] + "...",
    )  # fmt: skip
    console.print(rt)

    slashed_by = {p.address: 0 for p in providers}
    for a in slashes:
        if a["provider"] in slashed_by:
            slashed_by[a["provider"]] += int(a["amount"])
    pt = Table(title="economy: provider earnings (GPU)")
    for col in ("provider", "job income (minted)", "work units", "availability weight", "emissions claimed", "slashed",
                "net"):  # fmt: skip
        pt.add_column(col)
    for p in providers:
        a = p.address
        w, av = leaves.get(a, (0, 0))
        net = income[a] + claimed.get(a, 0) - slashed_by[a]
        pt.add_row(
            names[a], g(income[a]), g(w) if a in leaves else "no leaf", str(av) if a in leaves else "-",
            g(claimed.get(a, 0)), g(slashed_by[a]), f"[{'green' if net > 0 else 'red'}]{net / ONE_TOKEN:+,.3f}[/]",
        )  # fmt: skip
    console.print(pt)
    total = {a: income[a] + claimed.get(a, 0) - slashed_by[a] for a in slashed_by}
    h_net, c_net = total[providers[0].address], total[providers[1].address]
    console.print(
        f"with emissions: honest {h_net / ONE_TOKEN:+,.3f} GPU, cheater {c_net / ONE_TOKEN:+,.3f} GPU "
        f"({'honest ahead' if h_net > c_net else '[red]cheater ahead[/]'}: a provider with a job found invalid in "
        "the epoch gets no availability share, so the cheater's real hardware earns it nothing)"
    )
    ok &= h_net > c_net
    # One print per line: rich wraps at the console width.
    usd_total = sum(int(f.usd_value) for f in fin.values())
    console.print(
        f"burn-and-mint settlement: users' escrow of {g(settle_burned)} GPU for ${usd_total / 10**18:.3f} of finalized "
        f"jobs was burned; providers were minted {g(settle_minted)} GPU (their USD pay minus the 5% fee at the "
        f"PriceFeed price): net {g(settle_minted - settle_burned)} GPU of supply."
    )
    console.print(
        f"economy checks: rewards root posted {'yes' if posted else 'NO'}, claims minted exactly what the proofs "
        f"and the on-chain pools imply {'yes' if claims_ok else 'NO'}, supply == minted - burned "
        f"{'yes' if supply_ok else 'NO'}"
    )
    return ok


@click.command()
def main() -> None:
    """Run the gpunet demo network on a local anvil node."""
    sys.exit(run_demo())


if __name__ == "__main__":
    main()
