"""`make load`: the whole network under a steady stream of jobs, measured.

Starts anvil with 1 s blocks, deploys with a 60 s challenge window and the default audit rates,
starts 3 oracle operators (quorum 2), `--providers` provider agents with their job workers (one
CPU machine each, attested by the oracles) and `--clients` user clients
(scripts/_load_client.py: the real SDK, tiny one-unit matmul jobs, `--batch` of them per
`create_jobs` transaction, each client on one provider's offer; the workers run with
`--max-pending 100`, so each takes and delivers up to 100 jobs per cycle). Together the
clients offer `--rate` jobs per minute (default 1,500: a batch every few seconds each, at
fixed times), or with `--rate 0` one batch after another as fast as they can, which floods the
network past what it carries and measures its capacity, with latencies that are mostly queue.
The clients submit for `--duration` seconds; the harness then waits up to `--drain` seconds
for every job to end, and writes `--out` (build/load/summary.json):

- jobs_per_min: jobs submitted during the run and finalized by the end of the drain, per minute
  from the first finalization to the last: the rate the network delivers once its pipeline is
  full. It equals the offered rate when the network keeps up (then the latencies stay near
  the challenge window), and is the network's capacity under `--rate 0`;
  offered_jobs_per_min / submitted_jobs_per_min: the rate asked for, and the one the clients
  reached; end_to_end_jobs_per_min: the same jobs per minute from the first submit to the last
  finalization (the pipeline's fixed latency, about 70 s, included: with a 180 s feed it is
  at most 72% of the delivered rate); peak_jobs_per_min: the most finalized in any 60 s;
- p50_latency_s / p95_latency_s: from the client starting its submit to the block that
  finalized the job (wall clock; 1 s blocks; includes the 60 s challenge window);
- rpc_per_job: JSON-RPC calls (a batch counts each call) by every oracle, agent and client
  process from the start of the run to the end of the drain, per finalized job (a counting
  proxy per role sits in front of anvil: scripts/_rpc_counter.py), with the split by role
  and the busiest methods;
- cpu_s_per_job: CPU seconds (user + system) of those processes over the same span, per
  finalized job (anvil's own CPU reported apart);
- jobs_lost: submitted jobs not in a final state (Finalized, Failed, Cancelled, Expired) at
  the end of the drain, by state; paid_twice: jobs finalized more than once;
  escrow_mismatch_wei: JobMarket's token balance minus what its books say it must hold
  (unfinished escrow + open dispute bonds + finalized escrow not claimed yet + 1 wei).

The logs of every process and the clients' submissions are kept under --log-dir
(default build/load/<timestamp>/). Prints the summary; exits 1 if a job was lost or paid
twice or the books do not balance.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT = REPO_ROOT / "build" / "load" / "summary.json"
ROLES = ("oracles", "agents", "clients")
OPERATORS = (7, 8, 9)
PROVIDER_ACCOUNTS = (1, 2, 3, 4, 5, 6)
CLIENT_ACCOUNTS = tuple(range(10, 20))
PRICE = 10**17  # $0.10 per compute unit
CHALLENGE_WINDOW = 60  # the smallest window the 50 s audit draw latency allows (BeaconParams)
ORACLE_ARGS = ["--leader-timeout", "15", "--network-allowance", "0.5", "--memory-fraction", "0.5",
               "--confirm-delay", "1", "--ttl", "3600", "--audit-fetch-timeout", "5", "--audit-device", "cpu",
               "--price-source", "fixed:1.25"]  # fmt: skip
FINAL = ("FINALIZED", "FAILED", "CANCELLED", "EXPIRED")
_CLK = os.sysconf("SC_CLK_TCK")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.load", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=180, help="seconds the clients submit (default 180)")
    p.add_argument("--providers", type=int, default=4, help=f"provider agents, 1-{len(PROVIDER_ACCOUNTS)} (default 4)")
    p.add_argument("--clients", type=int, default=8, help=f"user clients, 1-{len(CLIENT_ACCOUNTS)} (default 8)")
    p.add_argument("--drain", type=float, default=300, help="seconds to wait for the jobs to end (default 300)")
    p.add_argument(
        "--rate",
        type=float,
        default=1500,
        help="jobs per minute the clients offer together (default 1500; 0: as fast as they can, a flood)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=20,
        help="jobs per client transaction (default 20, submit_batch; 1: sdk.submit, a permit per job)",
    )
    p.add_argument(
        "--agent-arg",
        action="append",
        default=None,
        help="a `gpunet provider serve` argument, e.g. --agent-arg=--max-pending=16 (default 100)",
    )
    p.add_argument("--out", type=Path, default=OUT, help="summary JSON (default build/load/summary.json)")
    p.add_argument("--log-dir", type=Path, default=None, help="process logs (default build/load/<timestamp>)")
    a = p.parse_args(argv)
    if not 1 <= a.providers <= len(PROVIDER_ACCOUNTS):
        p.error(f"--providers must be 1-{len(PROVIDER_ACCOUNTS)}")
    if not 1 <= a.clients <= len(CLIENT_ACCOUNTS):
        p.error(f"--clients must be 1-{len(CLIENT_ACCOUNTS)}")
    if a.agent_arg is None:
        a.agent_arg = ["--max-pending=100"]  # a worker takes and delivers up to 100 jobs per cycle
    if not 1 <= a.batch <= 100:
        p.error("--batch must be 1-100 (JobMarket.MAX_BATCH)")
    if a.duration <= 0 or a.drain < 0:
        p.error("--duration must be > 0 and --drain >= 0")
    if a.rate < 0:
        p.error("--rate must be >= 0 (0: as fast as the clients can)")
    return a


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process and its waited-for children (/proc/PID/stat)."""
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(x) for x in rest[11:15]) / _CLK


def pid_of_anvil(port: str) -> int | None:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"anvil") and port.encode() in argv:
                return int(d.name)
    return None


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 2)


class Load:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.log_dir = args.log_dir or REPO_ROOT / "build" / "load" / time.strftime("%Y%m%d-%H%M%S")
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def run(self) -> dict:
        from offchain.chain.anvil import running_anvil
        from scripts._rpc_counter import RpcCounter

        with running_anvil(log_path=self.log_dir / "anvil.log") as anvil_url:
            self.anvil_url = anvil_url
            self.anvil_pid = pid_of_anvil(anvil_url.rsplit(":", 1)[1])
            self.counter = RpcCounter(anvil_url, list(ROLES))
            self.proxy = self.counter.start()
            from ape import networks

            from offchain.devnet import Devnet

            self.devnet = Devnet(self.log_dir)
            try:
                with networks.parse_network_choice("ethereum:local:foundry"):
                    self.setup()
                    # Deployed block by block on demand (fast); from here on a block a second.
                    self.chain.provider.make_request("evm_setIntervalMining", [1])
                    self.start_processes()
                    self.wait_ready()
                    return self.measure()
            finally:
                self.devnet.stop_all()
                self.counter.stop()

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        from ape import accounts, chain, project

        from offchain.chain.deploy import deploy_all
        from offchain.constants import ONE_TOKEN
        from offchain.devnet import stake_operators
        from offchain.params import MarketParams

        a = accounts.test_accounts
        self.chain = chain
        self.operators = [a[i] for i in OPERATORS]
        self.providers = [a[i] for i in PROVIDER_ACCOUNTS[: self.args.providers]]
        self.users = [a[i] for i in CLIENT_ACCOUNTS[: self.args.clients]]
        deployer = a[0]
        self.record = self.log_dir / "deployment.json"
        t0 = time.monotonic()
        d = deploy_all(
            project,
            deployer,
            local=True,
            operators=[o.address for o in self.operators],
            threshold=2,
            params=MarketParams(challenge_window=CHALLENGE_WINDOW),
            record_path=self.record,
            chain_id=chain.chain_id,
        )
        self.d, self.token, self.registry, self.market = d, d.token, d.registry, d.market
        stake_operators(d.token, d.hub, deployer, self.operators, 1_000 * ONE_TOKEN)
        for p in self.providers:
            d.token.mint(p, 10_000 * ONE_TOKEN, sender=deployer)
            d.token.approve(d.registry, 2**256 - 1, sender=p)
            d.registry.stake(5_000 * ONE_TOKEN, sender=p)
        for u in self.users:
            d.token.mint(u, 1_000 * ONE_TOKEN, sender=deployer)  # jobs are funded by permit
        os.environ["GPUNET_DEPLOYMENT"] = str(self.record)
        self.say(f"deployed and funded in {time.monotonic() - t0:.0f} s (anvil {self.anvil_url})")

    def start_processes(self) -> None:
        from offchain.devnet import free_ports

        ports = free_ports(len(OPERATORS) + len(self.providers))
        os.environ["APE_FOUNDRY_HOST"] = self.proxy["oracles"]
        self.oracle_urls = self.devnet.start_oracles(
            OPERATORS, [o.address for o in self.operators], self.log_dir, ORACLE_ARGS, ports=ports[: len(OPERATORS)]
        )
        self.start_agents_and_wait(ports[len(OPERATORS) :])

    def start_agents_and_wait(self, ports: list[int]) -> None:
        """The provider agents (with their workers) on `ports`, then every process answering."""
        os.environ["APE_FOUNDRY_HOST"] = self.proxy["agents"]
        self.endpoints = {}
        for i, p in enumerate(self.providers):
            name = f"agent-{i}"
            self.endpoints[name] = self.devnet.start_agent(
                name, p.address, "CPU", ports[i], test_account=PROVIDER_ACCOUNTS[i],
                state_dir=self.log_dir / name, extra=self.args.agent_arg,
            )  # fmt: skip
        os.environ["APE_FOUNDRY_HOST"] = self.anvil_url
        for i, url in enumerate(self.oracle_urls.values()):
            self.devnet.wait_http(f"oracle-{i}", url, timeout=180)
        for name, url in self.endpoints.items():
            self.devnet.wait_http(name, url, timeout=180)

    def wait_ready(self) -> None:
        from offchain.constants import MachineStatus

        reg = self.registry
        self.machines = []
        for i, p in enumerate(self.providers):
            tx = reg.register(1, 1, 256, self.endpoints[f"agent-{i}"], sender=p)
            self.machines.append(tx.decode_logs(reg.MachineRegistered)[0].machine_id)
            reg.set_offer(1, PRICE, sender=p)
        t0 = time.monotonic()
        deadline = t0 + 300
        while time.monotonic() < deadline:
            states = [MachineStatus(reg.machine_status(m)) for m in self.machines]
            if all(s == MachineStatus.ACTIVE for s in states) and self.d.price_feed.latest_round() >= 1:
                break
            if any(s == MachineStatus.JAILED for s in states):
                raise RuntimeError(f"a provider's machine was jailed: {states} (see oracle-*.log)")
            time.sleep(1)
        else:
            raise TimeoutError("machines not Active or no price round within 300 s (see oracle-*.log)")
        self.say(f"{len(self.machines)} machines Active and a price posted in {time.monotonic() - t0:.0f} s")

    # ------------------------------------------------------------------ the run
    def _live_pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.devnet.procs.items() if p.poll() is None}

    def measure(self) -> dict:
        args = self.args
        self.counter.reset()
        cpu0 = {n: cpu_s(pid) for n, pid in self._live_pids().items()}
        anvil0 = cpu_s(self.anvil_pid) if self.anvil_pid else 0.0
        block0 = int(self.chain.blocks.height)
        t_start = time.time()
        until = t_start + args.duration
        env = {**os.environ, "APE_FOUNDRY_HOST": self.proxy["clients"]}
        clients = []
        for i in range(len(self.users)):
            out = self.log_dir / f"client-{i}.jsonl"
            target = self.providers[i % len(self.providers)].address
            cmd = [sys.executable, "-m", "scripts._load_client", "--test-account", str(CLIENT_ACCOUNTS[i]),
                   "--provider", target, "--until", str(until), "--out", str(out), "--seed-base", str(i * 10**6),
                   "--batch", str(args.batch), "--rate", str(args.rate / len(self.users))]  # fmt: skip
            with open(self.log_dir / f"client-{i}.log", "w") as log:
                proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
            clients.append((out, proc))
        self.say(f"{len(clients)} clients submitting for {args.duration:.0f} s")
        client_cpu = 0.0
        for _, proc in clients:
            _, _, usage = os.wait4(proc.pid, 0)
            client_cpu += usage.ru_utime + usage.ru_stime
        t_submit_end = time.time()
        rows = [json.loads(ln) for out, _ in clients if out.exists() for ln in out.read_text().splitlines() if ln]
        submitted = {r["job_id"]: r for r in rows if r["job_id"] is not None}
        errors = [r["error"] for r in rows if r["error"]]
        self.say(f"{len(submitted)} jobs submitted ({len(errors)} failed submits); draining up to {args.drain:.0f} s")
        status = self.drain(submitted, time.monotonic() + args.drain)
        t_end = time.time()
        cpu1 = {n: cpu_s(pid) for n, pid in self._live_pids().items()}
        rpc = self.counter.counts()
        anvil1 = cpu_s(self.anvil_pid) if self.anvil_pid else 0.0
        # The books are read once nothing moves them: a finalize or a claim between two reads
        # would show as a mismatch.
        self.devnet.stop_all()
        return self.summary(submitted, errors, status, block0, t_start, t_submit_end, t_end,
                            cpu0, cpu1, client_cpu, anvil1 - anvil0, rpc)  # fmt: skip

    def drain(self, submitted: dict, deadline: float) -> dict[int, str]:
        from offchain.constants import JobStatus

        status = {j: "?" for j in submitted}
        while True:
            # Only the jobs not final yet, every 10 s: the harness's own reads stay small next
            # to the network's (they go to anvil directly and are not counted).
            for j, s in status.items():
                if s not in FINAL:
                    status[j] = JobStatus(self.market.job_status(j)).name
            if all(s in FINAL for s in status.values()) or time.monotonic() > deadline:
                return status
            time.sleep(10)

    def audit_counts(self) -> dict:
        """What the operators' logs say about audits: jobs drawn (each operator marks the same
        jobs), re-executions per operator, verdicts posted and in how many transactions, and the
        beacon rounds an operator missed (every job of a missed round is drawn)."""
        out: dict = {"drawn": 0, "executions": {}, "verdict_txs": 0, "verdicts_posted": 0, "rounds_missed": 0}
        for i in range(len(OPERATORS)):
            path = self.log_dir / f"oracle-{i}.log"
            if not path.exists():
                continue
            drawn = execs = 0
            for line in path.read_text(errors="replace").splitlines():
                k = line.find("{")
                if k < 0:
                    continue
                try:
                    e = json.loads(line[k:])
                except ValueError:
                    continue
                ev = e.get("event")
                if ev == "audit_drawn":
                    drawn += 1
                elif ev == "audit":
                    execs += 1
                elif ev == "submitted" and e.get("kind") == "verdict":
                    out["verdict_txs"] += 1
                    out["verdicts_posted"] += int(e.get("batch", 1))
                elif ev == "beacon_round_missed":
                    out["rounds_missed"] += 1
            out["drawn"] = max(out["drawn"], drawn)
            out["executions"][f"oracle-{i}"] = execs
        return out

    def books(self) -> int:
        """JobMarket's token balance minus what its books say it must hold: the escrow of every
        unfinished job (fixed at creation), open dispute bonds, finalized escrow not claimed yet
        and the permanent wei (as scripts/_demo_jobs.py `market_books`, over every job)."""
        from offchain.chain.deploy import MARKET_DUST

        m = self.market
        head = int(self.chain.blocks.height)
        payment = {int(lg.job_id): int(lg.payment) for lg in m.JobCreated.range(0, head + 1)}
        held = sum(int(m.accrued(p)[0]) for p in self.providers)
        for jid in range(1, int(m.job_count()) + 1):
            s = int(m.job_status(jid))
            if s in (1, 2, 3, 4):  # Open, Running, Submitted, Audit
                held += payment[jid]
            if s == 4:
                held += int(m.disputes(jid).bond)
        return int(self.token.balanceOf(m)) - held - MARKET_DUST

    def summary(self, submitted, errors, status, block0, t_start, t_submit_end, t_end,
                cpu0, cpu1, client_cpu, anvil_cpu, rpc) -> dict:  # fmt: skip
        market, chain = self.market, self.chain
        head = int(chain.blocks.height)
        finalized_at: dict[int, list[int]] = {}
        stamps: dict[int, int] = {}
        for lg in market.JobFinalized.range(block0, head + 1):
            if lg.block_number not in stamps:
                stamps[lg.block_number] = int(chain.blocks[lg.block_number].timestamp)
            finalized_at.setdefault(int(lg.job_id), []).append(stamps[lg.block_number])
        done = [j for j in submitted if status.get(j) == "FINALIZED"]
        latencies = [finalized_at[j][0] - submitted[j]["t0"] for j in done if j in finalized_at]
        ends = sorted(finalized_at[j][0] for j in done if j in finalized_at)
        # From the first finalization to the last: the rate delivered once the pipeline is full.
        minutes = max(1.0, (ends[-1] - ends[0]) if len(ends) > 1 else (t_submit_end - t_start)) / 60
        # From the first submit to the last finalization: the end-to-end rate, fixed latency included.
        e2e_minutes = max(1.0, (ends[-1] - t_start) if ends else (t_submit_end - t_start)) / 60
        # The most jobs finalized in any 60 s: what the network sustains once its pipeline is full.
        peak = max((sum(1 for t in ends[i:] if t < ends[i] + 60) for i in range(len(ends))), default=0)
        lost = {j: s for j, s in status.items() if s not in FINAL}
        by_state: dict[str, int] = {}
        for s in status.values():
            by_state[s] = by_state.get(s, 0) + 1
        mismatch = self.books()
        cpu = {
            role: round(sum(cpu1.get(n, 0.0) - cpu0.get(n, 0.0) for n in cpu1 if n.startswith(prefix)), 2)
            for role, prefix in (("oracles", "oracle-"), ("agents", "agent-"))
        }
        cpu["clients"] = round(client_cpu, 2)
        calls = {role: sum(c.values()) for role, c in rpc.items()}
        methods: dict[str, int] = {}
        for c in rpc.values():
            for m, n in c.items():
                methods[m] = methods.get(m, 0) + n
        n_done = max(1, len(done))
        # The clients' own span, first submit to last: their start-up (imports, connecting) is not offered load.
        rows = submitted.values()
        span = (max(r["t1"] for r in rows) - min(r["t0"] for r in rows)) if rows else 0.0
        return {
            "jobs_per_min": round(len(done) / minutes, 1),
            "offered_jobs_per_min": self.args.rate or None,
            "submitted_jobs_per_min": round(len(submitted) / max(1.0, span) * 60, 1),
            "end_to_end_jobs_per_min": round(len(done) / e2e_minutes, 1),
            "peak_jobs_per_min": peak,
            "p50_latency_s": pct(latencies, 0.50),
            "p95_latency_s": pct(latencies, 0.95),
            "rpc_per_job": round(sum(calls.values()) / n_done, 1),
            "cpu_s_per_job": round(sum(cpu.values()) / n_done, 3),
            "jobs_lost": len(lost),
            "paid_twice": sum(1 for v in finalized_at.values() if len(v) > 1),
            "escrow_mismatch_wei": mismatch,
            "jobs_submitted": len(submitted),
            "jobs_finalized": len(done),
            "jobs_by_state": by_state,
            "submit_errors": len(errors),
            "submit_error_examples": sorted(set(errors))[:5],
            "mean_submit_s": round(statistics.mean([r["t1"] - r["t0"] for r in submitted.values()]), 3)
            if submitted
            else None,
            "rpc_by_role": calls,
            "rpc_top_methods": dict(sorted(methods.items(), key=lambda kv: -kv[1])[:10]),
            "rpc_top_methods_by_role": {
                role: dict(sorted(c.items(), key=lambda kv: -kv[1])[:6]) for role, c in rpc.items()
            },
            "audits": self.audit_counts(),
            "cpu_s_by_role": cpu,
            "anvil_cpu_s": round(anvil_cpu, 2) if self.anvil_pid else None,
            "run_s": round(t_submit_end - t_start, 1),
            "drain_s": round(t_end - t_submit_end, 1),
            "config": {
                "providers": len(self.providers),
                "clients": len(self.users),
                "operators": len(self.operators),
                "block_time_s": 1,
                "challenge_window_s": CHALLENGE_WINDOW,
                "audits": "default rates (new providers 30%)",
                "client_batch": self.args.batch,
                "agent_args": self.args.agent_arg,
                "cpus": os.cpu_count(),
            },
            "log_dir": str(self.log_dir),
        }


def write_summary(out: Path, summary: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = Load(args).run()
    except (RuntimeError, TimeoutError) as e:
        print(f"load: {e}", file=sys.stderr)
        return 1
    write_summary(args.out, summary)
    bad = summary["jobs_lost"] or summary["paid_twice"] or summary["escrow_mismatch_wei"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
