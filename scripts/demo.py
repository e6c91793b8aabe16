"""`make demo`: a small gpunet network on a real anvil node, start to finish.

- anvil starts; the contracts are deployed and recorded (deployments/ethereum-local-foundry.json);
- three oracle operators (real `gpunet oracle run` processes, quorum 2 of 3) and three provider
  agents (real `gpunet provider serve` processes) start;
- three providers stake and register a machine each; the operators challenge every machine
  (torch matmul checked with Freivalds, timed by the oracle's clock, memory proof) and sign
  attestations: "honest" and "sloppy" (CPU machines claiming the CPU class) become Active,
  "liar" (a CPU claiming an H100) is jailed and slashed;
  "honest" computes every job; "sloppy" skips one job (it expires: refund + no-show
  penalty) and returns a wrong result for another (disputed by the user, re-executed by
  the verifier, found invalid: refund + compensation, collateral slashed);
- two users submit matrix-product jobs (one in a batch), the keeper finalizes;
- a table shows each job's outcome and the token flows; the exit code is 0 only if every
  outcome is the expected one. anvil is stopped on the way out, whatever happens.

The job verifier is still the deployer standing in for the oracle quorum (the job-verification
issue moves verdicts to the quorum).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from offchain import workloads
from offchain.constants import ONE_TOKEN, JobStatus, MachineStatus

console = Console(width=150)
CPU_CLASS = 1
PRICE = 10**16  # 0.01 token per compute unit (1 unit = 1 GFLOP, offchain/workloads)


def spec_for(n: int, seed: int) -> dict:
    # A chain of three seeded matrix products (offchain/workloads, kind matmul_chain).
    return {"kind": "matmul_chain", "params": {"n": n, "k": 3, "dtype": "float32"}, "seed": seed}


def spec_hash(spec: dict) -> bytes:
    return bytes.fromhex(workloads.spec_hash(spec))


def execute(spec: dict) -> bytes:
    """Runs the job for real (torch, CPU) and returns the content hash of its output."""
    return workloads.result_hash(workloads.execute(spec, "cpu"))


@dataclass
class Plan:
    label: str
    user: str
    provider: str
    spec: dict
    behaviour: str  # "honest" | "no-show" | "wrong" | "dispute-honest"
    expected: JobStatus
    job_id: int = 0
    notes: list[str] = field(default_factory=list)


def run_demo() -> int:
    from offchain.devnet import Devnet

    workdir = Path(tempfile.mkdtemp(prefix="gpunet-demo-"))
    devnet = Devnet(workdir)
    try:
        return _run(workdir, devnet)
    finally:
        devnet.stop_all()  # every process, whatever happened
        console.print(f"processes stopped; their logs are in {workdir}")


def _run(workdir: Path, devnet) -> int:
    from ape import accounts, chain, networks, project

    from offchain.chain import jobs as J
    from offchain.chain.anvil import running_anvil
    from offchain.chain.deploy import deploy_all, deployment_path
    from offchain.devnet import free_ports

    with running_anvil(log_path=workdir / "anvil.log") as url:
        console.print(f"[bold]anvil[/] listening on {url}")
        with networks.parse_network_choice("ethereum:local:foundry"):
            acct = accounts.test_accounts
            deployer, honest, sloppy, alice, bob, keeper = acct[0], acct[1], acct[2], acct[3], acct[4], acct[5]
            liar = acct[6]
            operators = [acct[7], acct[8], acct[9]]
            names = {
                liar.address: "liar",
                **{o.address: f"operator-{i}" for i, o in enumerate(operators)},
                deployer.address: "deployer/verifier",
                honest.address: "honest",
                sloppy.address: "sloppy",
                alice.address: "alice",
                bob.address: "bob",
                keeper.address: "keeper",
            }
            d = deploy_all(
                project,
                deployer,
                local=True,
                operators=[o.address for o in operators],
                threshold=2,
                record_path=deployment_path("ethereum", "local", "foundry"),
                chain_id=chain.chain_id,
            )
            token, registry, market, hub = d.token, d.registry, d.market, d.hub
            console.print(f"deployed: {json.dumps(d.record['contracts'])}")
            for o in operators:
                token.mint(o, 1_000 * ONE_TOKEN, sender=deployer)
                token.approve(hub, 2**256 - 1, sender=o)
                hub.stake(1_000 * ONE_TOKEN, sender=o)

            for a in (honest, sloppy, liar, alice, bob):
                token.mint(a, 10_000 * ONE_TOKEN, sender=deployer)
                token.approve(registry, 2**256 - 1, sender=a)
                token.approve(market, 2**256 - 1, sender=a)
            start = {a.address: token.balanceOf(a) for a in (honest, sloppy, liar, alice, bob)}
            supply0 = token.totalSupply()

            # Real processes: three provider agents and three oracle operators.
            ports = free_ports(6)
            claims = {
                honest.address: ("CPU", CPU_CLASS, 256),
                sloppy.address: ("CPU", CPU_CLASS, 256),
                liar.address: ("H100 SXM5", 10, 81_920),
            }
            endpoints = {}
            for p, port in zip((honest, sloppy, liar), ports[3:], strict=True):
                name = f"agent-{names[p.address]}"
                endpoints[p.address] = devnet.start_agent(name, p.address, claims[p.address][0], port)
            urls = {o.address: f"http://127.0.0.1:{port}" for o, port in zip(operators, ports[:3], strict=True)}
            for i, o in enumerate(operators):
                peers = {a: u for a, u in urls.items() if a != o.address}
                devnet.start_oracle(
                    f"oracle-{i}",
                    7 + i,
                    ports[i],
                    peers,
                    workdir / f"oracle-{i}.sqlite",
                    [
                        "--leader-timeout",
                        "15",
                        "--poll",
                        "0.5",
                        "--network-allowance",
                        "0.5",
                        "--memory-fraction",
                        "0.5",
                        "--gpu-n",
                        "4096",
                        "--ttl",
                        "3600",
                    ],
                )
            for p in (honest, sloppy, liar):
                devnet.wait_http(f"agent-{names[p.address]}", endpoints[p.address])
            for i, o in enumerate(operators):
                devnet.wait_http(f"oracle-{i}", urls[o.address])
            console.print("3 provider agents and 3 oracle operators (quorum 2 of 3) are up")

            machines = {}
            for p in (honest, sloppy, liar):
                registry.stake(500 * ONE_TOKEN, sender=p)
                claim, class_id, vram = claims[p.address]
                tx = registry.register(class_id, 1, vram, endpoints[p.address], sender=p)
                machines[p.address] = tx.decode_logs(registry.MachineRegistered)[0].machine_id
                registry.set_offer(class_id, PRICE, sender=p)
            stake_before = {p.address: registry.slashable(p) for p in (honest, sloppy, liar)}
            console.print("providers staked 500 GPU each and registered one machine; the operators challenge them...")
            t0 = time.monotonic()
            deadline = t0 + 240
            while time.monotonic() < deadline:
                if all(registry.machine_status(m) != MachineStatus.PENDING for m in machines.values()):
                    break
                time.sleep(1)
            attest_s = time.monotonic() - t0
            hw = Table(title=f"hardware verification ({attest_s:.0f} s for all three)")
            for col in ("provider", "machine", "claims", "status", "signers", "measured", "slashed"):
                hw.add_column(col)
            accepted = {log.machine_id: log for log in hub.AttestationAccepted.range(0, chain.blocks.height + 1)}
            expected_hw = {
                honest.address: MachineStatus.ACTIVE,
                sloppy.address: MachineStatus.ACTIVE,
                liar.address: MachineStatus.JAILED,
            }
            ok = True
            for p in (honest, sloppy, liar):
                mid = machines[p.address]
                status = MachineStatus(registry.machine_status(mid))
                good = status == expected_hw[p.address]
                ok &= good
                a = accepted.get(mid)
                measured = "-"
                if a is not None:
                    gflops = max(a.fp32_gflops, a.bf16_gflops)
                    measured = f"{gflops / 1000:.3f} TFLOPS"
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
                for n in list(devnet.procs):
                    console.print(f"--- {n}\n{devnet.tail(n)}")
                console.print("[bold red]demo FAILED: hardware verification outcome differs[/]")
                return 1

            plans = [
                Plan("alice #1", "alice", "honest", spec_for(1024, 1), "honest", JobStatus.FINALIZED),
                Plan("alice #2", "alice", "honest", spec_for(1536, 2), "honest", JobStatus.FINALIZED),
                Plan("bob #1", "bob", "sloppy", spec_for(1024, 3), "no-show", JobStatus.EXPIRED),
                Plan("bob #2", "bob", "sloppy", spec_for(1280, 4), "wrong", JobStatus.FAILED),
                Plan("bob #3", "bob", "honest", spec_for(1024, 5), "dispute-honest", JobStatus.FINALIZED),
            ]
            by_name = {"alice": alice, "bob": bob, "honest": honest, "sloppy": sloppy}
            book: dict[int, dict] = {}

            # Users create jobs: alice in one batch of two, bob one by one.
            alice_plans = [p for p in plans if p.user == "alice"]
            tx = market.create_jobs(
                honest.address,
                CPU_CLASS,
                [spec_hash(p.spec) for p in alice_plans],
                [workloads.compute_units(p.spec) for p in alice_plans],
                PRICE,
                3600,
                1800,
                sender=alice,
            )
            for p, (job_id, job) in zip(alice_plans, J.jobs_from_receipt(market, tx), strict=True):
                p.job_id, book[job_id] = job_id, job
            for p in (p for p in plans if p.user == "bob"):
                tx = market.create_job(
                    by_name[p.provider].address,
                    CPU_CLASS,
                    spec_hash(p.spec),
                    workloads.compute_units(p.spec),
                    PRICE,
                    3600,
                    1800,
                    sender=bob,
                )
                ((job_id, job),) = J.jobs_from_receipt(market, tx)
                p.job_id, book[job_id] = job_id, job

            # Providers accept and work.
            for p in plans:
                prov = by_name[p.provider]
                tx = market.accept(p.job_id, J.as_tuple(book[p.job_id]), machines[prov.address], sender=prov)
                J.update_from_receipt(market, book, tx)
            for p in plans:
                prov = by_name[p.provider]
                if p.behaviour == "no-show":
                    p.notes.append("provider never delivered")
                    continue
                result = execute(p.spec)
                if p.behaviour == "wrong":
                    result = hashlib.sha256(b"made up" + result).digest()
                    p.notes.append("provider returned a made-up result")
                tx = market.submit_result(
                    p.job_id,
                    J.as_tuple(book[p.job_id]),
                    result,
                    f"http://127.0.0.1:0/results/{result.hex()}",
                    sender=prov,
                )
                J.update_from_receipt(market, book, tx)

            # Users check results they can; bob disputes two (one rightly, one wrongly).
            for p in plans:
                if p.behaviour in ("wrong", "dispute-honest"):
                    market.dispute(p.job_id, J.as_tuple(book[p.job_id]), sender=by_name[p.user])
                    p.notes.append("user disputed")

            # The verifier re-executes disputed jobs and compares result hashes.
            for p in plans:
                if market.job_status(p.job_id) == JobStatus.AUDIT:
                    valid = execute(p.spec) == book[p.job_id]["result_hash"]
                    market.post_verdict(p.job_id, J.as_tuple(book[p.job_id]), valid, sender=deployer)
                    p.notes.append(f"re-executed: {'valid' if valid else 'INVALID'}")

            # Time passes; the keeper settles whatever is due.
            last = max(max(j["challenge_end"], j["complete_by"]) for j in book.values())
            chain.mine(timestamp=last + 1)
            due = [p.job_id for p in plans if market.job_status(p.job_id) == JobStatus.SUBMITTED]
            if due:
                market.finalize_many(due, [J.as_tuple(book[i]) for i in due], sender=keeper)
            for p in plans:
                if market.job_status(p.job_id) == JobStatus.RUNNING:
                    market.expire(p.job_id, J.as_tuple(book[p.job_id]), sender=keeper)
            market.sweep_fees(sender=keeper)

            table = Table(title="gpunet demo: jobs")
            for col in ("job", "who", "provider", "units", "payment", "what happened", "outcome", "expected"):
                table.add_column(col)
            for p in plans:
                status = JobStatus(market.job_status(p.job_id))
                good = status == p.expected
                ok &= good
                job = book[p.job_id]
                table.add_row(
                    str(p.job_id),
                    p.label,
                    p.provider,
                    str(job["compute_units"]),
                    f"{job['payment'] / ONE_TOKEN:.3f}",
                    "; ".join(p.notes) or "delivered",
                    f"[{'green' if good else 'red'}]{status.name}[/]",
                    p.expected.name,
                )
            console.print(table)

            flows = Table(title="token flows (GPU)")
            for col in ("account", "start", "end", "change"):
                flows.add_column(col)
            for a in (honest, sloppy, liar, alice, bob):
                end = token.balanceOf(a) + (registry.slashable(a) if a in (honest, sloppy, liar) else 0)
                begin = start[a.address]
                flows.add_row(
                    names[a.address],
                    f"{begin / ONE_TOKEN:.3f}",
                    f"{end / ONE_TOKEN:.3f}",
                    f"{(end - begin) / ONE_TOKEN:+.3f}",
                )
            console.print(flows)
            treasury = token.balanceOf(deployer)
            console.print(
                f"fees to treasury: {treasury / ONE_TOKEN:.4f} GPU; burned by slashing: "
                f"{(supply0 - token.totalSupply()) / ONE_TOKEN:.4f} GPU; market still holds "
                f"{token.balanceOf(market) / ONE_TOKEN:.4f} GPU (should be 0)"
            )
            ok &= token.balanceOf(market) == 0
            honest_gain = token.balanceOf(honest) + registry.slashable(honest) - start[honest.address]
            sloppy_gain = token.balanceOf(sloppy) + registry.slashable(sloppy) - start[sloppy.address]
            liar_gain = token.balanceOf(liar) + registry.slashable(liar) - start[liar.address]
            ok &= honest_gain > 0 > sloppy_gain
            ok &= liar_gain < 0
            console.print(
                f"honest provider {honest_gain / ONE_TOKEN:+.4f} GPU, sloppy provider "
                f"{sloppy_gain / ONE_TOKEN:+.4f} GPU, lying provider {liar_gain / ONE_TOKEN:+.4f} GPU"
            )
    console.print("[bold green]demo OK[/]" if ok else "[bold red]demo FAILED: an outcome differs[/]")
    return 0 if ok else 1


@click.command()
def main() -> None:
    """Run the gpunet demo network on a local anvil node."""
    sys.exit(run_demo())


if __name__ == "__main__":
    main()
