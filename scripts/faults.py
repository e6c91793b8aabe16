"""`make faults`: processes of a running network killed at the worst moments, then restarted.

The network is `make load`'s (scripts/load.py: anvil with 1 s blocks, 3 oracle operators, the
default audit rates), with 2 provider agents and no load clients; each operator reaches each peer
through a link the harness can cut (scripts/_partition.py). Scenarios, each on its own jobs
(tiny matmuls funded by the harness with `submit_batch`, or by a client process):

- worker_killed_after_accept: agent-0 runs with GPUNET_AGENT_CRASH_AT=accepted, so it exits
  at once (`os._exit`: no cleanup, the same as kill -9 at that instruction) right after its
  accept transaction is mined and before it records it; then it restarts on its state dir.
- worker_killed_after_submit: agent-1 is killed with SIGKILL once it has submitted its jobs'
  results (between submit and finalize), and restarted 5 s later on its state dir.
- client_killed_mid_submit: a user client (scripts/_load_client.py, batches of 10) is killed
  with SIGKILL while it submits, 10 s after it starts; whatever it funded must still end.
- leader_killed_mid_quorum: one job goes to Audit (the user disputes it, or the beacon drew
  it); its verdict leader (the first of its audit committee, as the service computes it) is
  killed with SIGKILL as soon as its own audit is done (it proposes the verdict and gathers co-signatures
  next), and restarted 5 s later on its database: it must resume from the cursors it had
  stored, and a replacement leader must post the verdict before the audit deadline.
- operator_partitioned: oracle-2 is cut off from both peers (its links dropped both ways, its
  RPC untouched) for `--partition-s` seconds (default 60) while jobs are in flight, then healed.
- anvil_restarted: anvil is stopped while jobs are in flight (SIGTERM: it writes
  `--dump-state`), down for 5 s, and started again on the same port from that state
  (`--load-state`, 1 s blocks); no process is restarted: each must ride out the outage.

`--scenarios` runs a subset (the suite runs one). After them, every job of every scenario must
reach a final state (Finalized, Failed, Cancelled, Expired) within `--timeout` seconds (the
harness refunds a job left Open past its acceptance window with `expire`, as any user or keeper
would: that is its documented exit), none is finalized twice, every restarted worker resumes
from its state (no second accept), every process that was not killed is still running, and
JobMarket's books balance to the wei. Writes build/faults/summary.json: per scenario
`recovered`, `jobs_lost`, `paid_twice` and what was checked; exits 1 if one did not recover.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from scripts.load import (
    CLIENT_ACCOUNTS,
    FINAL,
    OPERATORS,
    ORACLE_ARGS,
    REPO_ROOT,
    Load,
    pid_of_anvil,
    write_summary,
)

OUT = REPO_ROOT / "build" / "faults" / "summary.json"
SCENARIOS = ("worker_killed_after_accept", "worker_killed_after_submit", "client_killed_mid_submit",
             "leader_killed_mid_quorum", "operator_partitioned", "anvil_restarted")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.faults", description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=5, help="jobs per scenario (default 5)")
    p.add_argument("--timeout", type=float, default=420, help="seconds for every job to end (default 420)")
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of: {', '.join(SCENARIOS)} (default all)",
    )
    p.add_argument("--partition-s", type=float, default=60, help="seconds operator_partitioned lasts (default 60)")
    p.add_argument("--out", type=Path, default=OUT, help="summary JSON (default build/faults/summary.json)")
    p.add_argument("--log-dir", type=Path, default=None, help="process logs (default build/faults/<timestamp>)")
    a = p.parse_args(argv)
    a.scenarios = [x.strip() for x in a.scenarios.split(",") if x.strip()]
    unknown = [x for x in a.scenarios if x not in SCENARIOS]
    if unknown or not a.scenarios:
        p.error(f"--scenarios: unknown {', '.join(unknown) or '(none given)'}; pick from {', '.join(SCENARIOS)}")
    if a.jobs < 1 or a.timeout <= 0 or a.partition_s <= 0:
        p.error("--jobs must be >= 1, --timeout and --partition-s > 0")
    # Two users: the harness funds jobs as the first; the client that is killed signs as the second
    # (a transaction it sent just before dying may still be pending under its nonce).
    a.providers, a.clients, a.agent_arg, a.batch, a.duration, a.drain = 2, 2, [], 10, 0, 0
    a.log_dir = a.log_dir or REPO_ROOT / "build" / "faults" / time.strftime("%Y%m%d-%H%M%S")
    return a


def tiny(seed: int) -> dict:
    return {"kind": "matmul_chain", "params": {"n": 64, "k": 2}, "seed": seed}


def stored_cursors(db: Path) -> dict[str, int]:
    """The block cursor a stopped oracle operator left in its SQLite store (meta events_cursor)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute("SELECT key, value FROM meta WHERE key = 'events_cursor'").fetchall()
    return {k: int(v) for k, v in rows}


class Faults(Load):
    """Load's network (setup, processes, machines Active, a price), then the scenarios."""

    def run(self) -> dict:
        # anvil writes its state when it stops; anvil_restarted starts it again from that file.
        self.state_file = self.log_dir / "anvil-state.json"
        os.environ["GPUNET_ANVIL_ARGS"] = f"{os.environ.get('GPUNET_ANVIL_ARGS', '')} --dump-state {self.state_file}"
        self.anvil_again: subprocess.Popen | None = None
        try:
            return super().run()
        finally:
            if self.anvil_again is not None:
                self.anvil_again.terminate()
                self.anvil_again.wait(timeout=20)
            if getattr(self, "links", None) is not None:
                self.links.stop()

    def start_processes(self) -> None:
        """Load's processes, but each operator reaches its peers through a link that can be cut."""
        from offchain.devnet import free_ports
        from scripts._partition import PeerLinks

        ports = free_ports(len(OPERATORS) + len(self.providers))
        names = [f"oracle-{i}" for i in range(len(OPERATORS))]
        self.links = PeerLinks(dict(zip(names, ports, strict=False)))
        self.links.start()
        os.environ["APE_FOUNDRY_HOST"] = self.proxy["oracles"]
        self.oracle_urls = {}
        for i, (index, op) in enumerate(zip(OPERATORS, self.operators, strict=True)):
            peers = {o.address: self.links.url(names[i], names[j]) for j, o in enumerate(self.operators) if j != i}
            self.oracle_urls[op.address] = self.devnet.start_oracle(
                names[i], index, ports[i], peers, self.log_dir / f"{names[i]}.sqlite", ORACLE_ARGS
            )
        self.start_agents_and_wait(ports[len(OPERATORS) :])

    def measure(self) -> dict:  # called by Load.run once the network is ready
        d = self.d
        self.h = SimpleNamespace(token=d.token, registry=d.registry, market=d.market, settlement=d.settlement,
                                 chain=self.chain, record=d.record, hub=d.hub, beacon=d.beacon)  # fmt: skip
        self.block0 = int(self.chain.blocks.height)
        self.killed: set[str] = set()  # processes a scenario killed (the others must stay up)
        jobs: dict[str, list[int]] = {}
        extra: dict[str, dict] = {}
        for name in self.args.scenarios:
            jobs[name], extra[name] = getattr(self, name)()
        every = [j for js in jobs.values() for j in js]
        self.say(f"waiting up to {self.args.timeout:.0f} s for the {len(every)} jobs to end")
        t_wait = time.monotonic()
        self.wait_for(lambda: all(self.end_or_expire(j) in FINAL for j in every), self.args.timeout, every=5)
        ended_s = round(time.monotonic() - t_wait)
        died = sorted(n for n, p in self.devnet.procs.items() if p.poll() is not None and n not in self.killed)
        self.devnet.stop_all()
        return {"scenarios": self.judge(jobs, extra), "escrow_mismatch_wei": self.books(),
                "processes_died": died, "seconds_until_all_ended": ended_s, "log_dir": str(self.log_dir)}  # fmt: skip

    def judge(self, jobs: dict[str, list[int]], extra: dict[str, dict]) -> dict:
        d, head = self.d, int(self.chain.blocks.height)
        finals: dict[int, int] = {}
        for lg in d.market.JobFinalized.range(self.block0, head + 1):
            finals[int(lg.job_id)] = finals.get(int(lg.job_id), 0) + 1
        accepts: dict[int, int] = {}
        for lg in d.market.JobAccepted.range(self.block0, head + 1):
            accepts[int(lg.job_id)] = accepts.get(int(lg.job_id), 0) + 1
        verdicts = {int(lg.job_id) for lg in d.market.VerdictPosted.range(self.block0, head + 1)}
        results = {}
        for name, js in jobs.items():
            states = {j: self.status(j) for j in js}
            lost = [j for j, s in states.items() if s not in FINAL]
            twice = [j for j in js if finals.get(j, 0) > 1]
            checks = {k: v for k, v in extra[name].items() if k.startswith("ok_")}
            if name == "leader_killed_mid_quorum":
                checks["ok_verdict_posted"] = extra[name]["audited_job"] in verdicts
            results[name] = {
                "recovered": not lost and not twice and all(checks.values()),
                "jobs": len(js),
                "jobs_lost": len(lost),
                "paid_twice": len(twice),
                "accepted_twice": sum(1 for j in js if accepts.get(j, 0) > 1),
                "audited": sum(1 for j in js if j in verdicts),  # drawn, disputed or degraded: a verdict
                "states": {s: sum(1 for v in states.values() if v == s) for s in set(states.values())},
                **extra[name],
                **checks,
            }
        return results

    # ------------------------------------------------------------------ scenarios
    def worker_killed_after_accept(self) -> tuple[list[int], dict]:
        from offchain.provider.worker import CRASH_ENV, CRASH_EXIT_CODE

        self.devnet.stop("agent-0")
        os.environ[CRASH_ENV] = "accepted"
        self.restart_agent(0)
        os.environ.pop(CRASH_ENV)
        js = self.submit(0, 0)
        code = self.devnet.procs["agent-0"].wait(timeout=120)
        self.say(f"worker_killed_after_accept: agent-0 exited with {code} after accepting; restarting")
        self.restart_agent(0)
        return js, {"ok_crash_injected": code == CRASH_EXIT_CODE}

    def worker_killed_after_submit(self) -> tuple[list[int], dict]:
        js = self.submit(1, 100)
        submitted = self.wait_for(lambda: all(self.status(j) in ("SUBMITTED", "AUDIT") for j in js), 120)
        self.kill("agent-1")
        self.say(f"worker_killed_after_submit: agent-1 killed (results submitted: {submitted}); restart in 5 s")
        time.sleep(5)
        self.restart_agent(1)
        return js, {"results_submitted_before_kill": submitted}

    def client_killed_mid_submit(self) -> tuple[list[int], dict]:
        block0 = int(self.chain.blocks.height)
        client = self.start_client(1)
        time.sleep(10)
        os.kill(client.pid, signal.SIGKILL)
        client.wait()
        js = [int(lg.job_id) for lg in self.market.JobCreated.range(block0, self.chain.blocks.height + 1)
              if lg.user == self.users[1].address]  # fmt: skip
        self.say(f"client_killed_mid_submit: the client funded {len(js)} jobs before it was killed")
        return js, {}

    def leader_killed_mid_quorum(self) -> tuple[list[int], dict]:
        from offchain.client.money import ClientError
        from offchain.client.sdk import dispute
        from offchain.oracle.service import CRASH_ENV, CRASH_EXIT_CODE

        js = self.submit(0, 200)
        self.wait_for(lambda: self.status(js[0]) in ("SUBMITTED", "AUDIT"), 120)
        job = js[0]
        # Its verdict leader (its committee's first member, as the service computes it) is restarted
        # with the crash hook: it dies once it holds a quorum of signatures, before submitting.
        ops = sorted((o.address for o in self.operators), key=lambda a: int(a, 16))
        leader = ops[(job + int(self.d.hub.verdict_nonce(job))) % len(ops)]
        name = f"oracle-{[o.address for o in self.operators].index(leader)}"
        self.devnet.stop(name)
        os.environ[CRASH_ENV] = "quorum:verdict"
        self.restart_oracle(name)
        os.environ.pop(CRASH_ENV)
        try:
            dispute(self.h, self.users[0], job)
            how = "disputed by its user"
        except ClientError:  # drawn for audit: the oracles open the audit themselves
            how = "drawn for audit"
        try:
            code = self.devnet.procs[name].wait(timeout=180)
        except subprocess.TimeoutExpired:
            code = None
        self.killed.add(name)
        crashed = [ln for ln in self.devnet.log_path(name).read_text().splitlines() if "crash_injected" in ln]
        cursors = stored_cursors(self.log_dir / f"{name}.sqlite")
        at = crashed[-1][crashed[-1].index("{") :] if crashed else "no crash"
        self.say(f"leader_killed_mid_quorum: job {job} {how}; leader {name} exited with {code} ({at}); restart in 5 s")
        time.sleep(5)
        self.restart_oracle(name)
        self.wait_for(lambda: bool(self.started_line(name)), 30, 0.2)
        resumed = self.started_line(name)
        back = {k: resumed.get(k) for k in cursors}
        return js, {"audited_job": job, "how": how, "leader": name, "stored_cursors": cursors, "resumed_from": back,
                    "ok_crashed_holding_quorum": code == CRASH_EXIT_CODE and bool(crashed),
                    "ok_resumed_from_cursor": bool(cursors) and back == cursors}  # fmt: skip

    def operator_partitioned(self) -> tuple[list[int], dict]:
        name = f"oracle-{len(OPERATORS) - 1}"
        self.links.cut(name)
        self.say(f"operator_partitioned: {name} cut off its peers for {self.args.partition_s:.0f} s")
        js = self.submit(1, 300)
        time.sleep(self.args.partition_s)
        self.links.heal(name)
        self.say(f"operator_partitioned: {name} reconnected")
        return js, {"partitioned": name, "seconds": self.args.partition_s}

    def anvil_restarted(self) -> tuple[list[int], dict]:
        from offchain.chain.anvil import _rpc_ready

        js = self.submit(1, 400)
        self.wait_for(lambda: any(self.status(j) != "OPEN" for j in js), 120)
        pid = self.anvil_pid
        argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        height = int(self.chain.blocks.height)
        os.kill(pid, signal.SIGTERM)
        self.wait_for(lambda: not Path(f"/proc/{pid}").exists(), 30, 0.1)
        dumped = self.state_file.exists()
        time.sleep(5)
        argv = [*argv, "--load-state", str(self.state_file), "--block-time", "1"]
        log = open(self.log_dir / "anvil-restarted.log", "w")  # noqa: SIM115 - the child keeps it
        self.anvil_again = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        up = self.wait_for(lambda: _rpc_ready(self.anvil_url), 30, 0.2)
        self.anvil_pid = pid_of_anvil(self.anvil_url.rsplit(":", 1)[1])
        after = int(self.chain.blocks.height) if up else -1
        self.say(f"anvil_restarted: stopped at block {height} (state written: {dumped}), up again at block {after}")
        return js, {"ok_state_written": dumped, "ok_restarted_at_or_past_height": after >= height}

    # ------------------------------------------------------------------ helpers
    def submit(self, provider: int, seed: int) -> list[int]:
        from offchain.client.batch import submit_batch

        specs = [tiny(seed + i) for i in range(self.args.jobs)]
        sub = submit_batch(self.h, self.users[0], specs, provider=self.providers[provider].address, allowance=10**30)
        return [s.job_id for s in sub]

    def kill(self, name: str) -> None:
        p = self.devnet.procs[name]
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        self.killed.add(name)

    def started_line(self, name: str) -> dict:
        for ln in self.devnet.log_path(name).read_text().splitlines():
            if '"event": "started"' in ln:
                return json.loads(ln[ln.index("{") :])
        return {}

    def status(self, job_id: int) -> str:
        from offchain.constants import JobStatus

        return JobStatus(self.market.job_status(job_id)).name

    def end_or_expire(self, job_id: int) -> str:
        """The job's state; an Open job past its acceptance window is expired (refunded) first."""
        s = self.status(job_id)
        if s == "OPEN":
            from offchain.chain.jobs import as_tuple, job_from_chain

            job = job_from_chain(self.market, job_id)
            if self.chain.blocks.head.timestamp > job["accept_by"]:
                self.market.expire(job_id, as_tuple(job), sender=self.users[0])
                s = self.status(job_id)
        return s

    def wait_for(self, cond, timeout: float, every: float = 1.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(every)
        return bool(cond())

    def restart_oracle(self, name: str) -> None:
        self.devnet.restart(name)
        self.killed.discard(name)
        self.devnet.wait_http(name, self.oracle_urls[self.operators[int(name.split("-")[1])].address], timeout=180)

    def restart_agent(self, i: int) -> None:
        name = f"agent-{i}"
        self.devnet.restart(name)
        self.killed.discard(name)
        self.devnet.wait_http(name, self.endpoints[name], timeout=180)

    def start_client(self, i: int) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "scripts._load_client", "--test-account", str(CLIENT_ACCOUNTS[i]),
               "--provider", self.providers[1].address, "--until", str(time.time() + 600),
               "--out", str(self.log_dir / f"client-{i}.jsonl"), "--seed-base", "5000", "--batch", "10"]  # fmt: skip
        env = {**os.environ, "APE_FOUNDRY_HOST": self.anvil_url}
        with open(self.log_dir / f"client-{i}.log", "w") as log:
            return subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    try:
        summary = Faults(args).run()
    except (RuntimeError, TimeoutError) as e:
        print(f"faults: {e}", file=sys.stderr)
        return 1
    write_summary(args.out, summary)
    ok = (all(r["recovered"] for r in summary["scenarios"].values()) and summary["escrow_mismatch_wei"] == 0
          and not summary["processes_died"])  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
