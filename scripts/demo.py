"""`make demo`: a small gpunet network on a real anvil node, start to finish.

First form (issue 2): the on-chain core with real torch work behind every result.
- anvil starts; the contracts are deployed and recorded (deployments/ethereum-local-foundry.json);
- two providers stake, register a CPU machine each, are activated and post offers;
  "honest" computes every job; "sloppy" skips one job (it expires: refund + no-show
  penalty) and returns a wrong result for another (disputed by the user, re-executed by
  the verifier, found invalid: refund + compensation, collateral slashed);
- two users submit matrix-product jobs (one in a batch), the keeper finalizes;
- a table shows each job's outcome and the token flows; the exit code is 0 only if every
  outcome is the expected one. anvil is stopped on the way out, whatever happens.

The verifier here is the deployer standing in for the oracle quorum (issue 3 replaces it).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field

import click
from rich.console import Console
from rich.table import Table

from offchain.constants import ONE_TOKEN, JobStatus, MachineStatus

console = Console(width=150)
CPU_CLASS = 1
PRICE = 10**15  # 0.001 token per compute unit (1 unit = 1 MFLOP of matmul here)


def spec_for(n: int, seed: int) -> dict:
    return {"kind": "matmul", "n": n, "seed": seed, "dtype": "float32"}


def spec_hash(spec: dict) -> bytes:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).digest()


def compute_units(spec: dict) -> int:
    # 2 n^3 FLOPs, in MFLOP, at least 1: recomputable by anyone from the spec.
    return max(1, 2 * spec["n"] ** 3 // 1_000_000)


def execute(spec: dict) -> bytes:
    """Runs the job for real (torch, CPU) and returns the content hash of the output."""
    import torch

    g = torch.Generator().manual_seed(spec["seed"])
    a = torch.randn(spec["n"], spec["n"], generator=g)
    b = torch.randn(spec["n"], spec["n"], generator=g)
    c = a @ b
    return hashlib.sha256(c.numpy().tobytes()).digest()


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
    from ape import accounts, chain, networks, project

    from offchain.chain import jobs as J
    from offchain.chain.anvil import running_anvil
    from offchain.chain.deploy import deploy_all, deployment_path

    with running_anvil() as url:
        console.print(f"[bold]anvil[/] listening on {url}")
        with networks.parse_network_choice("ethereum:local:foundry"):
            acct = accounts.test_accounts
            deployer, honest, sloppy, alice, bob, keeper = acct[0], acct[1], acct[2], acct[3], acct[4], acct[5]
            names = {
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
                record_path=deployment_path("ethereum", "local", "foundry"),
                chain_id=chain.chain_id,
            )
            token, registry, market = d.token, d.registry, d.market
            console.print(f"deployed: {json.dumps(d.record['contracts'])}")

            for a in (honest, sloppy, alice, bob):
                token.mint(a, 10_000 * ONE_TOKEN, sender=deployer)
                token.approve(registry, 2**256 - 1, sender=a)
                token.approve(market, 2**256 - 1, sender=a)
            start = {a.address: token.balanceOf(a) for a in (honest, sloppy, alice, bob)}
            supply0 = token.totalSupply()

            machines = {}
            for p in (honest, sloppy):
                registry.stake(500 * ONE_TOKEN, sender=p)
                tx = registry.register(CPU_CLASS, 1, 16_384, f"http://127.0.0.1:0/{names[p.address]}", sender=p)
                machine_id = tx.decode_logs(registry.MachineRegistered)[0].machine_id
                registry.set_machine_status(machine_id, int(MachineStatus.ACTIVE), sender=deployer)
                registry.set_offer(CPU_CLASS, PRICE, sender=p)
                machines[p.address] = machine_id
            console.print("providers staked 500 GPU each, registered and activated one CPU machine")

            plans = [
                Plan("alice #1", "alice", "honest", spec_for(256, 1), "honest", JobStatus.FINALIZED),
                Plan("alice #2", "alice", "honest", spec_for(384, 2), "honest", JobStatus.FINALIZED),
                Plan("bob #1", "bob", "sloppy", spec_for(256, 3), "no-show", JobStatus.EXPIRED),
                Plan("bob #2", "bob", "sloppy", spec_for(320, 4), "wrong", JobStatus.FAILED),
                Plan("bob #3", "bob", "honest", spec_for(256, 5), "dispute-honest", JobStatus.FINALIZED),
            ]
            by_name = {"alice": alice, "bob": bob, "honest": honest, "sloppy": sloppy}
            book: dict[int, dict] = {}

            # Users create jobs: alice in one batch of two, bob one by one.
            alice_plans = [p for p in plans if p.user == "alice"]
            tx = market.create_jobs(
                honest.address,
                CPU_CLASS,
                [spec_hash(p.spec) for p in alice_plans],
                [compute_units(p.spec) for p in alice_plans],
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
                    compute_units(p.spec),
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
            ok = True
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
            for a in (honest, sloppy, alice, bob):
                end = token.balanceOf(a) + (registry.slashable(a) if a in (honest, sloppy) else 0)
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
            ok &= honest_gain > 0 > sloppy_gain
            console.print(
                f"honest provider {honest_gain / ONE_TOKEN:+.4f} GPU, sloppy provider "
                f"{sloppy_gain / ONE_TOKEN:+.4f} GPU"
            )
    console.print("[bold green]demo OK[/]" if ok else "[bold red]demo FAILED: an outcome differs[/]")
    return 0 if ok else 1


@click.command()
def main() -> None:
    """Run the gpunet demo network on a local anvil node."""
    sys.exit(run_demo())


if __name__ == "__main__":
    main()
