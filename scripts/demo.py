"""`make demo`: a whole gpunet compute market on a local anvil chain, three providers cheating.

Eight phases, each introduced on the console by one sentence, then a summary (README "The
demo" shows one):

1. chain: anvil starts; the contracts are deployed with demo parameters (120 s challenge
   window, new providers audited on 50% of their jobs, a 900 s Emissions epoch scheduling 100
   GPU). The deployment record goes into the run's own directory (build/demo/<time>/), and the
   child processes get it through GPUNET_DEPLOYMENT: the shared deployments/ is never touched;
2. processes: three oracle operators (`gpunet oracle run`, quorum 2 of 3, each reporting the
   price `fixed:1.25` and revealing its AuditBeacon chain for the audit draw) and four provider
   agents (`gpunet provider serve`; "honest" and "cheater" also run the job worker, "cheater"
   with `--cheat wrong-output`);
3. hardware: every provider stakes and registers one machine; the operators challenge them
   (torch matmul checked with Freivalds, timed by the oracle's clock, memory proof): "liar" (a
   CPU claiming an H100) must be jailed, the three CPU machines made Active;
4. price: the jobs wait for the quorum's first PriceFeed round (offers are USD per unit);
5. jobs: alice and bob submit six jobs of three kinds through the client SDK (permit funding,
   spec uploaded to the provider), three to honest and three to cheater; "flaky" accepts a
   seventh and never delivers;
6. checking: the audit draw (AuditBeacon: a commit-reveal among the three operators, the round
   after each result's) picks about half the jobs for audit; the users download every
   other result, re-execute it and dispute a mismatch; bob also disputes one honest result he
   wrongly suspects (if the draw took all three, he submits one more); the oracles re-execute
   every drawn or disputed job and post JobVerdicts through OracleHub;
7. settlement: anvil's clock passes the challenge windows; honest's worker finalizes its jobs,
   which credits it, and claims (JobMarket burns the credited escrow, Settlement mints the
   provider its USD value net of the 5% fee; each claim's mint checked against
   `min(Σ usd_net / price, Σ (escrow - fee))` over the jobs it paid), anyone expires flaky's job
   (alice refunded plus the no-show penalty);
8. rewards: anvil's clock passes the end of Emissions epoch 0; the oracles post uptime,
   finalize the epoch and post its rewards root; every provider with a leaf is claimed for
   through `gpunet rewards claim`, each claim checked against its proof and the pools;
then the summary: who cheated and how each was caught, who earned what, how the supply changed.

The exit code is 0 only if every expectation (each `checks.expect` / `checks.require`) holds;
otherwise one paragraph says which failed and why, and where the logs are. Nothing but the
demo's own lines reaches the console: ape's logger and every warning go to demo.log. Every
process and anvil are stopped on the way out, whatever happens.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

import click

from offchain.constants import ONE_TOKEN, JobStatus, MachineStatus
from scripts import _demo_report as R
from scripts._demo_economy import rewards_phase
from scripts._demo_jobs import JobPhases
from scripts._demo_params import (
    AGENT_ARGS,
    CHALLENGE_WINDOW,
    CPU_CLASS,
    DEPLOYMENT_ENV,
    EMISSIONS,
    EPOCH_SECONDS,
    ORACLE_ARGS,
    PARAMS,
    PRICE,
    USD,
    USD_PRICE,
)
from scripts._demo_report import busy, gpu, wait

REPO_ROOT = Path(__file__).resolve().parents[1]


def shown(path: Path) -> str:
    """A path as the reader can use it from the checkout."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


class Demo(JobPhases):
    def __init__(self, log_dir: Path, console) -> None:
        from offchain.devnet import Devnet

        self.log_dir, self.console = log_dir, console
        self.devnet = Devnet(log_dir)
        self.checks = R.Checks()
        self.facts = R.Facts()
        self.phase = "setup"

    # ---- presentation
    def intro(self, n: int, title: str, sentence: str) -> None:
        R.quiet_ape()  # anything imported since may have brought its own console handler
        self.phase = f"phase {n} ({title.lower()})"
        self.console.print()
        R.hang(self.console, f"{n}. ", f"[bold]{title}.[/] {sentence}")

    def note(self, text: str) -> None:
        R.hang(self.console, "   ", text)

    def status(self, mid: int) -> MachineStatus:
        return MachineStatus(self.registry.machine_status(mid))

    def job_status(self, job_id: int) -> JobStatus:
        return JobStatus(self.market.job_status(job_id))

    # ---- the phases
    def run(self) -> None:
        from offchain.chain.anvil import running_anvil

        self.intro(
            1,
            "Chain",
            f"A local anvil node starts and the gpunet contracts are deployed with demo-sized "
            f"parameters ({CHALLENGE_WINDOW} s challenge window, new providers audited on "
            f"{PARAMS.new_provider_audit_bps / 100:.0f}% of their jobs, a {EPOCH_SECONDS} s reward epoch).",
        )
        from ape import networks

        # anvil saves the chain when it stops: `make explorer` serves it again (scripts/explorer_demo.py).
        os.environ["GPUNET_ANVIL_ARGS"] = (
            f"{os.environ.get('GPUNET_ANVIL_ARGS', '')} --dump-state {self.log_dir / 'anvil-state.json'}".strip()
        )
        with running_anvil(log_path=self.log_dir / "anvil.log") as url:
            with networks.parse_network_choice("ethereum:local:foundry"):
                R.quiet_ape()  # connecting may have brought a plugin's logger
                self.chain_phase(url)
                self.processes()
                self.hardware()
                self.price()
                self.jobs()
                self.checking()
                self.settlement()
                rewards_phase(self)
                R.print_summary(self.console, self.facts)

    def chain_phase(self, url: str) -> None:
        from ape import accounts, chain, project

        from offchain.chain.deploy import deploy_all
        from offchain.devnet import stake_operators

        self.chain = chain
        acct = accounts.test_accounts
        self.deployer, self.honest, self.cheater, self.alice, self.bob = acct[0], acct[1], acct[2], acct[3], acct[4]
        self.keeper, self.liar = acct[5], acct[6]
        # "flaky" passes its hardware check, takes a job and never delivers (its agent runs no
        # worker; the demo accepts the job with its key and then does nothing).
        self.flaky = acct.generate_test_account()
        self.operators = [acct[i] for i in (7, 8, 9)]
        self.agents = (self.honest, self.cheater, self.liar, self.flaky)
        self.names = {
            **{o.address: f"operator-{i}" for i, o in enumerate(self.operators)},
            **{a.address: n for a, n in zip(self.agents, ("honest", "cheater", "liar", "flaky"), strict=True)},
            self.alice.address: "alice",
            self.bob.address: "bob",
        }
        self.by_name = {v: k for k, v in self.names.items()}
        record = self.log_dir / "deployment.json"
        with busy(self.console, "deploying the contracts and funding the accounts") as e:
            d = deploy_all(
                project,
                self.deployer,
                local=True,
                operators=[o.address for o in self.operators],
                threshold=2,
                params=PARAMS,
                emissions_params=EMISSIONS,
                record_path=record,
                chain_id=chain.chain_id,
            )
            self.d, self.token, self.registry, self.market, self.hub = d, d.token, d.registry, d.market, d.hub
            self.h = d.handles(chain)
            stake_operators(d.token, d.hub, self.deployer, self.operators, 1_000 * ONE_TOKEN)
            self.deployer.transfer(self.flaky, 10**18)  # gas money: generated accounts start empty
            for a in self.agents:
                d.token.mint(a, 10_000 * ONE_TOKEN, sender=self.deployer)
                d.token.approve(d.registry, 2**256 - 1, sender=a)
            for u in (self.alice, self.bob):
                d.token.mint(u, 100 * ONE_TOKEN, sender=self.deployer)  # no approval: jobs are funded by permit
        os.environ[DEPLOYMENT_ENV] = str(record)  # every `gpunet` process started from here on uses it
        self.facts.supply_setup = int(d.token.totalSupply())
        self.note(
            f"anvil at {url}; {len(d.record['contracts'])} contracts deployed, 3 operators staked, 4 providers "
            f"and 2 users funded ({gpu(self.facts.supply_setup)} GPU in all) in {e.seconds:.0f} s"
        )
        self.note(f"deployment record: {shown(record)}")

    def processes(self) -> None:
        from offchain.devnet import free_ports

        self.intro(
            2,
            "Processes",
            "Three oracle operators (any 2 of 3 signatures make a decision) and four provider "
            "agents start as real `gpunet` processes, each writing its own log.",
        )
        ports = free_ports(7)
        self.claims = {
            self.honest.address: ("CPU", CPU_CLASS, 256),
            self.cheater.address: ("CPU", CPU_CLASS, 256),
            self.liar.address: ("H100 SXM5", 10, 81_920),
            self.flaky.address: ("CPU", CPU_CLASS, 256),
        }
        self.endpoints: dict[str, str] = {}
        for p, port, index in zip(self.agents, ports[3:], (1, 2, None, None), strict=True):
            name = f"agent-{self.names[p.address]}"
            worker = {} if index is None else {"test_account": index, "state_dir": self.log_dir / name}
            cheat = "wrong-output" if p is self.cheater else None
            self.endpoints[p.address] = self.devnet.start_agent(
                name, p.address, self.claims[p.address][0], port, cheat, extra=AGENT_ARGS, **worker
            )
        self.urls = self.devnet.start_oracles(
            (7, 8, 9), [o.address for o in self.operators], self.log_dir, ORACLE_ARGS, ports=ports[:3]
        )
        try:
            with busy(self.console, "waiting for the 7 processes to answer on their ports") as e:
                for p in self.agents:
                    self.devnet.wait_http(f"agent-{self.names[p.address]}", self.endpoints[p.address])
                for i, o in enumerate(self.operators):
                    self.devnet.wait_http(f"oracle-{i}", self.urls[o.address])
        except (RuntimeError, TimeoutError) as err:
            self.checks.require(False, "every process to answer on its HTTP port", str(err).splitlines()[0])
        self.note(
            f"up in {e.seconds:.0f} s: operator-0..2, agents honest and cheater (with a job worker; cheater "
            "returns fake results), liar and flaky"
        )

    def hardware(self) -> None:
        self.intro(
            3,
            "Hardware",
            "Each provider stakes 500 GPU and registers one machine; the oracles time a matmul "
            "challenge on it, so liar, a CPU that claims to be an H100, should be jailed and the three "
            "CPU machines made Active.",
        )
        registry, hub, chain = self.registry, self.hub, self.chain
        self.machines: dict[str, int] = {}
        with busy(self.console, "staking and registering 4 machines"):
            for p in self.agents:
                registry.stake(500 * ONE_TOKEN, sender=p)
                _, class_id, vram = self.claims[p.address]
                tx = registry.register(class_id, 1, vram, self.endpoints[p.address], sender=p)
                self.machines[p.address] = tx.decode_logs(registry.MachineRegistered)[0].machine_id
                registry.set_offer(class_id, PRICE, sender=p)
        stake_before = {p.address: registry.slashable(p) for p in self.agents}
        decided = [0]

        def all_decided() -> bool:
            decided[0] = sum(self.status(m) != MachineStatus.PENDING for m in self.machines.values())
            return decided[0] == len(self.machines)

        _, secs = wait(
            self.console,
            "waiting for the oracles to challenge 4 machines",
            all_decided,
            240,
            1,
            detail=lambda: f" ({decided[0]} decided)",
        )
        expected = {p.address: MachineStatus.ACTIVE for p in self.agents} | {self.liar.address: MachineStatus.JAILED}
        accepted = {lg.machine_id: lg for lg in hub.AttestationAccepted.range(0, chain.blocks.height + 1)}
        t = R.table(
            f"hardware verification (the oracles decided in {secs:.0f} s)",
            "provider",
            "machine",
            "claims",
            "status",
            "signers",
            "measured",
            "slashed (GPU)",
            right=(1, 4, 6),
        )
        rows = []
        for p in self.agents:
            mid, name = self.machines[p.address], self.names[p.address]
            status, a = self.status(mid), accepted.get(mid)
            slashed = stake_before[p.address] - registry.slashable(p)
            good = status == expected[p.address]
            measured = f"{max(a.fp32_gflops, a.bf16_gflops) / 1000:.3f} TFLOPS" if a is not None else "-"
            t.add_row(
                name,
                str(mid),
                self.claims[p.address][0],
                f"[{'green' if good else 'red'}]{status.name}[/]",
                str(a.signers) if a is not None else "-",
                measured,
                gpu(slashed),
            )
            rows.append((name, status, expected[p.address], good))
            if p is self.liar:
                f = self.facts
                f.liar_claim, f.liar_status, f.liar_slashed = self.claims[p.address][0], status.name, slashed
                f.liar_signers = int(a.signers) if a is not None else 0
        self.console.print(t)
        for name, status, want, good in rows:
            why = "the operators did not decide in 240 s (see oracle-*.log)" if status == MachineStatus.PENDING else ""
            self.checks.require(good, f"{name}'s machine to be {want.name}", why or f"it is {status.name}")

    def price(self) -> None:
        self.intro(
            4,
            "Price",
            "Jobs are priced in USD, so they wait for the oracles' first quorum-signed GPU/USD "
            f"price (each operator reports {USD_PRICE}).",
        )
        feed = self.d.price_feed
        _, secs = wait(self.console, "waiting for the first PriceFeed round", lambda: feed.latest_round() >= 1, 90, 1)
        self.checks.require(
            feed.latest_round() >= 1,
            "a quorum-signed PriceFeed round within 90 s",
            "none was posted (see oracle-*.log)",
        )
        self.note(
            f"PriceFeed GPU/USD: {int(feed.latest_price()) / 1e8:.2f} USD (round {feed.latest_round()}, "
            f"{secs:.0f} s); offers are ${PRICE / USD:.2f} per compute unit, so a unit escrows "
            f"{int(self.d.settlement.quote(PRICE)) / ONE_TOKEN:.3f} GPU"
        )


def run_demo(log_dir: Path | None = None) -> int:
    log_dir = log_dir or REPO_ROOT / "build" / "demo" / time.strftime("%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    R.quiet_logging(log_dir / "demo.log")  # before ape is imported: its warnings go to the file too
    console = R.make_console()
    console.print(
        f"[bold]gpunet demo[/]: a GPU compute market on a local chain, with three dishonest providers. "
        f"Every process logs to {shown(log_dir)}/."
    )
    t0 = time.monotonic()
    old = os.environ.get(DEPLOYMENT_ENV)
    demo = Demo(log_dir, console)
    try:
        demo.run()
    except R.DemoFailed:
        pass
    except KeyboardInterrupt:
        demo.checks.failed.append(("", "interrupted (Ctrl-C)"))
    except Exception as e:  # noqa: BLE001 - said in one paragraph, the traceback goes to demo.log
        import logging

        logging.getLogger("demo").error("unexpected error in %s:\n%s", demo.phase, traceback.format_exc())
        first = (str(e).strip().splitlines() or [""])[0][:300]
        demo.checks.failed.append(("", f"{type(e).__name__}: {first} (the traceback is in demo.log)"))
    finally:
        with busy(console, "stopping every process"):
            demo.devnet.stop_all()  # every process, whatever happened
        if old is None:
            os.environ.pop(DEPLOYMENT_ENV, None)
        else:
            os.environ[DEPLOYMENT_ENV] = old
    if demo.checks.failed:
        logs = sorted(p.name for p in log_dir.glob("*.log") if p.name != "demo.log")
        R.print_failure(console, demo.checks, log_dir, logs, demo.phase)
        return 1
    console.print(f"All {demo.checks.passed} expectations held: [bold green]demo OK[/]")
    console.print(f"The demo took {time.monotonic() - t0:.0f} s; every process's log is in {shown(log_dir)}/.")
    console.print("Browse what happened in the web explorer: make explorer (its chain is saved with the logs).")
    return 0


@click.command()
@click.option("--log-dir", type=click.Path(path_type=Path), help="Where the logs go (default build/demo/<time>/).")
def main(log_dir: Path | None) -> None:
    """Run the gpunet demo network on a local anvil node."""
    raise SystemExit(run_demo(log_dir))


if __name__ == "__main__":
    main()
