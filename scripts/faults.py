"""`make faults`: processes of a running network killed at the worst moments, then restarted.

The network is `make load`'s (scripts/load.py: anvil with 1 s blocks, 3 oracle operators, the
default audit rates), with 2 provider agents and no load clients. Scenarios, each on its own
jobs (tiny matmuls funded by the harness with `submit_batch`, or by a client process):

- worker_killed_after_accept: agent-0 runs with GPUNET_AGENT_CRASH_AT=accepted, so it exits
  at once (`os._exit`: no cleanup, the same as kill -9 at that instruction) right after its
  accept transaction is mined and before it records it; then it restarts on its state dir.
- worker_killed_after_submit: agent-1 is killed with SIGKILL once it has submitted its jobs'
  results (between submit and finalize), and restarted 5 s later on its state dir.
- client_killed_mid_submit: a user client (scripts/_load_client.py, batches of 10) is killed
  with SIGKILL while it submits, 10 s after it starts; whatever it funded must still end.
- operator_killed: oracle-0 is killed with SIGKILL while jobs wait for their audit draw and
  verdicts, and stays down; the other two (quorum 2 of 3) must carry every job to its end.

After all of them, every job of every scenario must reach a final state (Finalized, Failed,
Cancelled, Expired) within `--timeout` seconds (the harness refunds a job left Open past its
acceptance window with `expire`, as any user or keeper would: that is its documented exit),
none is finalized twice, every restarted worker resumes from its state (no second accept),
and JobMarket's books balance to the wei. Writes build/faults/summary.json: per scenario
`recovered`, `jobs_lost`, `paid_twice` and what was checked; exits 1 if one did not recover.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from scripts.load import CLIENT_ACCOUNTS, FINAL, PROVIDER_ACCOUNTS, REPO_ROOT, Load, write_summary

OUT = REPO_ROOT / "build" / "faults" / "summary.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.faults", description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=5, help="jobs per scenario (default 5)")
    p.add_argument("--timeout", type=float, default=420, help="seconds for every job to end (default 420)")
    p.add_argument("--out", type=Path, default=OUT, help="summary JSON (default build/faults/summary.json)")
    p.add_argument("--log-dir", type=Path, default=None, help="process logs (default build/faults/<timestamp>)")
    a = p.parse_args(argv)
    # Two users: the harness funds jobs as the first; the client that is killed signs as the second
    # (a transaction it sent just before dying may still be pending under its nonce).
    a.providers, a.clients, a.agent_arg, a.batch, a.duration, a.drain = 2, 2, [], 10, 0, 0
    a.log_dir = a.log_dir or REPO_ROOT / "build" / "faults" / time.strftime("%Y%m%d-%H%M%S")
    return a


def tiny(seed: int) -> dict:
    return {"kind": "matmul_chain", "params": {"n": 64, "k": 2}, "seed": seed}


class Faults(Load):
    """Load's network (setup, processes, machines Active, a price), then the scenarios."""

    def measure(self) -> dict:  # called by Load.run once the network is ready
        from offchain.client.batch import submit_batch
        from offchain.provider.worker import CRASH_ENV, CRASH_EXIT_CODE

        d = self.d
        self.h = SimpleNamespace(token=d.token, registry=d.registry, market=d.market, settlement=d.settlement,
                                 chain=self.chain, record=d.record, hub=d.hub)  # fmt: skip
        user = self.users[0]
        n = self.args.jobs
        block0 = int(self.chain.blocks.height)
        results: dict[str, dict] = {}

        # 1. agent-0 crashes right after its accept is mined, then restarts.
        self.devnet.stop("agent-0")
        os.environ[CRASH_ENV] = "accepted"
        self.restart_agent(0)
        os.environ.pop(CRASH_ENV)
        a_jobs = [s.job_id for s in submit_batch(self.h, user, [tiny(i) for i in range(n)],
                                                 provider=self.providers[0].address, allowance=10**30)]  # fmt: skip
        code = self.devnet.procs["agent-0"].wait(timeout=120)
        crashed = code == CRASH_EXIT_CODE
        self.say(f"worker_killed_after_accept: agent-0 exited with {code} after accepting; restarting")
        self.restart_agent(0)

        # 2. agent-1 is killed with SIGKILL between submit and finalize, then restarts.
        b_jobs = [s.job_id for s in submit_batch(self.h, user, [tiny(100 + i) for i in range(n)],
                                                 provider=self.providers[1].address)]  # fmt: skip
        submitted = self.wait_for(lambda: all(self.status(j) in ("SUBMITTED", "AUDIT") for j in b_jobs), 120)
        os.kill(self.devnet.procs["agent-1"].pid, signal.SIGKILL)
        self.devnet.procs["agent-1"].wait()
        self.say(f"worker_killed_after_submit: agent-1 killed (results submitted: {submitted}); restart in 5 s")
        time.sleep(5)
        self.restart_agent(1)

        # 3. a client is killed while it submits.
        client = self.start_client(1)
        time.sleep(10)
        os.kill(client.pid, signal.SIGKILL)
        client.wait()
        c_jobs = [int(lg.job_id) for lg in d.market.JobCreated.range(block0, self.chain.blocks.height + 1)
                  if lg.user == self.users[1].address]  # fmt: skip
        self.say(f"client_killed_mid_submit: the client funded {len(c_jobs)} jobs before it was killed")

        # 4. oracle-0 is killed while jobs wait for their draw and verdicts; it stays down.
        d_jobs = [s.job_id for s in submit_batch(self.h, user, [tiny(200 + i) for i in range(n)],
                                                 provider=self.providers[1].address)]  # fmt: skip
        self.wait_for(lambda: all(self.status(j) in ("SUBMITTED", "AUDIT") for j in d_jobs), 120)
        os.kill(self.devnet.procs["oracle-0"].pid, signal.SIGKILL)
        self.devnet.procs["oracle-0"].wait()
        self.say("operator_killed: oracle-0 killed with SIGKILL; the other two carry on")

        jobs = {"worker_killed_after_accept": a_jobs, "worker_killed_after_submit": b_jobs,
                "client_killed_mid_submit": c_jobs, "operator_killed": d_jobs}  # fmt: skip
        every = [j for js in jobs.values() for j in js]
        self.say(f"waiting up to {self.args.timeout:.0f} s for the {len(every)} jobs to end")
        t_wait = time.monotonic()
        self.wait_for(lambda: all(self.end_or_expire(j) in FINAL for j in every), self.args.timeout, every=5)
        ended_s = round(time.monotonic() - t_wait)
        self.devnet.stop_all()
        head = int(self.chain.blocks.height)
        finals: dict[int, int] = {}
        for lg in d.market.JobFinalized.range(block0, head + 1):
            finals[int(lg.job_id)] = finals.get(int(lg.job_id), 0) + 1
        accepts: dict[int, int] = {}
        for lg in d.market.JobAccepted.range(block0, head + 1):
            accepts[int(lg.job_id)] = accepts.get(int(lg.job_id), 0) + 1
        audited = {int(lg.job_id) for lg in d.market.VerdictPosted.range(block0, head + 1)}
        for name, js in jobs.items():
            states = {j: self.status(j) for j in js}
            lost = [j for j, s in states.items() if s not in FINAL]
            twice = [j for j in js if finals.get(j, 0) > 1]
            results[name] = {
                "recovered": not lost and not twice and (name != "worker_killed_after_accept" or crashed),
                "jobs": len(js),
                "jobs_lost": len(lost),
                "paid_twice": len(twice),
                "accepted_twice": sum(1 for j in js if accepts.get(j, 0) > 1),
                "audited": sum(1 for j in js if j in audited),  # drawn (or degraded round): a verdict
                "states": {s: sum(1 for v in states.values() if v == s) for s in set(states.values())},
            }
        results["worker_killed_after_accept"]["crash_injected"] = crashed
        results["worker_killed_after_submit"]["results_submitted_before_kill"] = submitted
        books = self.books()
        return {"scenarios": results, "escrow_mismatch_wei": books, "seconds_until_all_ended": ended_s,
                "log_dir": str(self.log_dir)}  # fmt: skip

    # ------------------------------------------------------------------ helpers
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

    def restart_agent(self, i: int) -> None:
        name = f"agent-{i}"
        self.devnet.procs.pop(name, None)
        url = self.devnet.start_agent(
            name, self.providers[i].address, "CPU", int(self.endpoints[name].rsplit(":", 1)[1]),
            test_account=PROVIDER_ACCOUNTS[i], state_dir=self.log_dir / name,
        )  # fmt: skip
        self.devnet.wait_http(name, url, timeout=180)

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
    ok = all(r["recovered"] for r in summary["scenarios"].values()) and summary["escrow_mismatch_wei"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
