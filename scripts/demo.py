"""`make demo`: a small gpunet network on a real anvil node, hardware checks and real jobs.

- anvil starts; the contracts are deployed with demo parameters (120 s challenge window, new
  providers audited on 50% of their jobs) and recorded (deployments/ethereum-local-foundry.json);
- three oracle operators (real `gpunet oracle run` processes, quorum 2 of 3) and three provider
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
  Finalized, cheater jobs Failed, the false dispute lost, liar Jailed, honest ends richer than
  cheater). Every process and anvil are stopped on the way out, whatever happens.
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
from offchain.params import MarketParams

console = Console(width=180)
CPU_CLASS = 1
PRICE = ONE_TOKEN // 10  # 0.1 token per compute unit (1 unit = 1 GFLOP, offchain/workloads)
CHALLENGE_WINDOW = 120
PARAMS = MarketParams(
    challenge_window=CHALLENGE_WINDOW,
    min_accept_window=60,
    min_complete_within=60,
    base_audit_bps=5_000,
    new_provider_audit_bps=5_000,  # every provider here is new: about half the jobs are drawn
)
ORACLE_ARGS = ["--leader-timeout", "15", "--poll", "0.5", "--network-allowance", "0.5", "--memory-fraction", "0.5",
               "--gpu-n", "4096", "--ttl", "3600", "--epoch-seconds", "100000", "--audit-fetch-timeout", "5",
               "--audit-device", "cpu"]  # fmt: skip
AGENT_ARGS = ["--poll", "0.3"]
TERMINAL = {JobStatus.FINALIZED, JobStatus.FAILED}


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
        return JobStatus.FAILED if self.provider == "cheater" else JobStatus.FINALIZED


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
    from offchain.chain.jobs import drawn_for_audit, job_from_chain
    from offchain.client import sdk
    from offchain.devnet import free_ports

    with running_anvil(log_path=workdir / "anvil.log") as url:
        console.print(f"[bold]anvil[/] listening on {url}")
        with networks.parse_network_choice("ethereum:local:foundry"):
            acct = accounts.test_accounts
            deployer, honest, cheater, alice, bob, liar = acct[0], acct[1], acct[2], acct[3], acct[4], acct[6]
            test_index = {honest.address: 1, cheater.address: 2, liar.address: 6}
            operators = [acct[7], acct[8], acct[9]]
            names = {
                **{o.address: f"operator-{i}" for i, o in enumerate(operators)},
                honest.address: "honest",
                cheater.address: "cheater",
                liar.address: "liar",
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
                record_path=deployment_path("ethereum", "local", "foundry"),
                chain_id=chain.chain_id,
            )
            token, registry, market, hub = d.token, d.registry, d.market, d.hub
            h = Handles(record=d.record, token=token, registry=registry, market=market, hub=hub, chain=chain)
            console.print(f"deployed: {json.dumps(d.record['contracts'])}")
            console.print(
                f"demo params: challenge window {PARAMS.challenge_window} s, new providers audited on "
                f"{PARAMS.new_provider_audit_bps / 100:.0f}% of their jobs"
            )
            for o in operators:
                token.mint(o, 1_000 * ONE_TOKEN, sender=deployer)
                token.approve(hub, 2**256 - 1, sender=o)
                hub.stake(1_000 * ONE_TOKEN, sender=o)
            for a in (honest, cheater, liar):
                token.mint(a, 10_000 * ONE_TOKEN, sender=deployer)
                token.approve(registry, 2**256 - 1, sender=a)
            for u in (alice, bob):
                token.mint(u, 100 * ONE_TOKEN, sender=deployer)  # no approval: jobs are funded by permit

            # Real processes: three provider agents (honest and cheater run the job worker) and
            # three oracle operators.
            ports = free_ports(6)
            claims = {
                honest.address: ("CPU", CPU_CLASS, 256),
                cheater.address: ("CPU", CPU_CLASS, 256),
                liar.address: ("H100 SXM5", 10, 81_920),
            }
            endpoints = {}
            for p, port in zip((honest, cheater, liar), ports[3:], strict=True):
                name = f"agent-{names[p.address]}"
                worker = {} if p is liar else {"test_account": test_index[p.address], "state_dir": workdir / name}
                cheat = "wrong-output" if p is cheater else None
                endpoints[p.address] = devnet.start_agent(
                    name, p.address, claims[p.address][0], port, cheat, extra=AGENT_ARGS, **worker
                )
            urls = {o.address: f"http://127.0.0.1:{port}" for o, port in zip(operators, ports[:3], strict=True)}
            for i, o in enumerate(operators):
                peers = {a: u for a, u in urls.items() if a != o.address}
                devnet.start_oracle(f"oracle-{i}", 7 + i, ports[i], peers, workdir / f"oracle-{i}.sqlite", ORACLE_ARGS)
            for p in (honest, cheater, liar):
                devnet.wait_http(f"agent-{names[p.address]}", endpoints[p.address])
            for i, o in enumerate(operators):
                devnet.wait_http(f"oracle-{i}", urls[o.address])
            console.print("3 provider agents (2 running job workers) and 3 oracle operators (quorum 2 of 3) are up")

            machines = {}
            for p in (honest, cheater, liar):
                registry.stake(500 * ONE_TOKEN, sender=p)
                claim, class_id, vram = claims[p.address]
                tx = registry.register(class_id, 1, vram, endpoints[p.address], sender=p)
                machines[p.address] = tx.decode_logs(registry.MachineRegistered)[0].machine_id
                registry.set_offer(class_id, PRICE, sender=p)
            stake_before = {p.address: registry.slashable(p) for p in (honest, cheater, liar)}
            console.print("providers staked 500 GPU each and registered one machine; the operators challenge them...")
            t0 = time.monotonic()
            _wait(lambda: all(registry.machine_status(m) != MachineStatus.PENDING for m in machines.values()), 240, 1)
            attest_s = time.monotonic() - t0
            hw = Table(title=f"hardware verification ({attest_s:.0f} s for all three)")
            for col in ("provider", "machine", "claims", "status", "signers", "measured", "slashed"):
                hw.add_column(col)
            accepted = {log.machine_id: log for log in hub.AttestationAccepted.range(0, chain.blocks.height + 1)}
            expected_hw = {
                honest.address: MachineStatus.ACTIVE,
                cheater.address: MachineStatus.ACTIVE,
                liar.address: MachineStatus.JAILED,
            }
            ok = True
            for p in (honest, cheater, liar):
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

            # ---- jobs
            providers = (honest, cheater)
            before = {p.address: (token.balanceOf(p), registry.slashable(p)) for p in providers}
            users = {"alice": alice, "bob": bob}
            plans = [
                Job("alice", "honest", matmul(1)),
                Job("alice", "cheater", mlp(2)),
                Job("alice", "honest", toploc(3)),
                Job("bob", "cheater", matmul(4)),
                Job("bob", "honest", mlp(5)),
                Job("bob", "cheater", toploc(6)),
            ]

            def submit(j: Job) -> None:
                sub = sdk.submit(h, users[j.user], j.spec, class_id=CPU_CLASS, provider=by_name[j.provider])
                j.job_id, j.payment, j.units = sub.job_id, sub.payment, sub.units

            def wait_submitted(js: list[Job]) -> bool:
                done = {JobStatus.SUBMITTED, JobStatus.AUDIT, *TERMINAL}
                return _wait(lambda: all(JobStatus(market.job_status(j.job_id)) in done for j in js), 90)

            def drawn(j: Job) -> bool:
                # The on-chain draw, computed as the oracles do (offchain.oracle.jobwatch): the
                # `audit_drawn` view runs *in* the head block on anvil and answers False there.
                job = job_from_chain(market, j.job_id)
                j.audit_bps = int(job["audit_bps"])
                block_hash = bytes(chain.blocks[int(job["draw_block"])].hash)
                return drawn_for_audit(j.job_id, j.audit_bps, block_hash)

            for j in plans:
                submit(j)
            console.print(f"alice and bob submitted jobs {[j.job_id for j in plans]}; the workers run them...")
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
            # the honest worker finalizes the rest itself.
            audited = [j for j in plans if j.drawn or j.disputed]
            console.print(f"oracles audit jobs {[j.job_id for j in audited]}...")
            _wait(lambda: all(JobStatus(market.job_status(j.job_id)) in TERMINAL for j in audited), 120)
            chain.provider.make_request("evm_increaseTime", [CHALLENGE_WINDOW + 1])
            chain.mine()
            console.print(f"anvil's clock moved {CHALLENGE_WINDOW + 1} s: challenge windows over")
            _wait(lambda: all(JobStatus(market.job_status(j.job_id)) in TERMINAL for j in plans), 60)

            height = chain.blocks.height + 1
            fin = {lg.job_id: lg for lg in market.JobFinalized.range(0, height)}
            failed = {lg.job_id: lg for lg in market.JobFailed.range(0, height)}
            disputes = {lg.job_id: lg for lg in market.JobDisputed.range(0, height)}
            verdicts = {lg.job_id: lg for lg in hub.VerdictAccepted.range(0, height)}
            accepted_jobs = {lg.job_id: lg for lg in market.JobAccepted.range(0, height)}

            table = Table(title="jobs")
            for col in ("job", "user", "kind", "provider", "units", "payment", "collateral", "audit p", "drawn?",
                        "user check", "disputed?", "outcome", "money"):  # fmt: skip
                table.add_column(col)
            for j in plans:
                status = JobStatus(market.job_status(j.job_id))
                good = status == j.expected
                if j.disputed == "false":
                    good &= j.job_id in verdicts and bool(verdicts[j.job_id].valid)
                ok &= good
                if j.job_id in fin:
                    f = fin[j.job_id]
                    money = f"paid {f.provider_amount / ONE_TOKEN:.3f}"
                    if j.job_id in disputes:
                        money += f" + bond {disputes[j.job_id].bond / ONE_TOKEN:.1f}"
                elif j.job_id in failed:
                    f = failed[j.job_id]
                    money = (
                        f"refund {f.refund / ONE_TOKEN:.3f} + {f.user_compensation / ONE_TOKEN:.3f}; "
                        f"slashed {(f.user_compensation + f.challenger_reward + f.burned) / ONE_TOKEN:.3f}"
                    )
                else:
                    money = "-"
                coll = accepted_jobs[j.job_id].collateral if j.job_id in accepted_jobs else 0
                table.add_row(
                    str(j.job_id),
                    j.user,
                    j.spec["kind"],
                    j.provider,
                    str(j.units),
                    f"{j.payment / ONE_TOKEN:.2f}",
                    f"{coll / ONE_TOKEN:.2f}",
                    f"{j.audit_bps / 100:.0f}%",
                    "yes" if j.drawn else "no",
                    j.check,
                    {"": "no", "mismatch": f"{j.disputer} (mismatch)", "false": f"{j.disputer} (wrongly)"}[j.disputed],
                    f"[{'green' if good else 'red'}]{status.name}[/]",
                    money,
                )
            console.print(table)

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

            pt = Table(title="providers (job phase)")
            for col in ("provider", "balance change", "stake change", "net", "completed", "failed", "expired",
                        "audits passed", "disputes won", "disputes lost", "audit rate now"):  # fmt: skip
                pt.add_column(col)
            net = {}
            for p in providers:
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
            hn, cn = net[honest.address], net[cheater.address]
            # The honest provider's gain is exactly its pay plus the bond of the dispute it won.
            earned = sum(fin[j.job_id].provider_amount for j in plans if j.provider == "honest" and j.job_id in fin)
            earned += sum(disputes[j.job_id].bond for j in plans if j.disputed == "false" and j.job_id in disputes)
            ok &= token.balanceOf(honest) - before[honest.address][0] == earned
            ok &= hn > 0 > cn
            ok &= registry.locked(honest) == 0
            console.print(
                f"honest ends {hn / ONE_TOKEN:+.3f} GPU, cheater {cn / ONE_TOKEN:+.3f} GPU: "
                f"{'honest ends richer than cheater' if hn > cn else '[red]cheating paid[/]'}"
            )
            if not ok:
                _logs(devnet)
    console.print("[bold green]demo OK[/]" if ok else "[bold red]demo FAILED: an outcome differs[/]")
    return 0 if ok else 1


@click.command()
def main() -> None:
    """Run the gpunet demo network on a local anvil node."""
    sys.exit(run_demo())


if __name__ == "__main__":
    main()
