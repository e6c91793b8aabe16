"""The provider's job worker: takes jobs it can run from JobMarket, runs them, commits and
serves the results, and collects its pay. Started by `gpunet provider serve` when given a
signer (`--test-account N` / `--account ALIAS`) and a `--state-dir`.

Loop (on each new block, from a `newHeads` subscription when the node has a websocket, else
every `poll_s`; on the agent's main thread; the HTTP server keeps serving blobs and challenges
on its own threads):

1. Follow the chain from the stored cursor (`offchain.chain.follow`: one `eth_getLogs` per
   cycle for every event below, reorgs within `reorg_depth` replayed): JobCreated aimed at
   this provider, or open (provider 0x0), becomes a *candidate*; JobAccepted / ResultSubmitted
   keep the rebuilt job structs current (`offchain.chain.jobs`); JobDisputed / JobFinalized /
   JobFailed tell the payout step what happened to its jobs; MachineRegistered adds this
   provider's machines.
2. Consider candidates (`offchain/provider/intake.py`, against one snapshot of the provider's
   stake, offers and audit rate read per cycle). A job is accepted only when all of these hold:
   - its acceptance window has `accept_margin_s` left (and it is still Open: the chain checks,
     and a batch that reverts is retried job by job after a status read);
   - one of this provider's machines of the job's class is Active (and attested now);
   - this provider offers the class and the job is worth at least that offer per unit, in USD
     (`usd_value >= registry.offers(provider, class_id) * compute_units`; offers are USD per
     compute unit with 18 decimals, the escrow is what that buys in tokens at funding);
   - the spec blob (sha256 == the on-chain spec_hash, canonical JSON) and every input it names
     are in the blob store: the user uploads them before funding the job; until they arrive
     the job stays a candidate (until its window passes);
   - the spec validates (`offchain.workloads.validate`) and `compute_units(spec)` equals the
     job's `compute_units`: the provider is paid per unit, so it refuses a job whose units
     do not match the work (refused permanently, with the reason in the state file);
   - the free stake covers `required_collateral(payment, collateral, audit_rate(self))` of this
     job and of the ones picked before it this cycle, and fewer than `max_pending` accepted jobs
     are waiting to run.
   The jobs picked in a cycle are taken with one `accept_jobs` transaction per machine.
3. Run accepted jobs (`offchain/provider/delivery.py`), one at a time, holding the agent's
   device lock (a hardware challenge then waits, see agent.py): execute with torch on the
   agent's device (CUDA when present), store `output_bytes(out)` in the blob store; then submit
   every result of the cycle with one `submit_results(ids, jobs, sha256s,
   "<url>/blobs/<hex>"...)` (`submit_result` for one; job by job if the batch reverts), where
   <url> is `--public-url` or the machine's registered endpoint.
4. Get paid (`offchain/provider/payout.py`; last in each cycle, so a claim's freed collateral
   serves the next cycle's intake: run first, it made accepts wait for the finalize and claim
   receipts, p50 latency 64.8 s against 63.3 s in one `make load` run each): finalize its own
   jobs once the challenge window is over (not drawn for audit) or an audit's deadline passed
   without a verdict (`finalize_many` for several), which credits the provider; then, whenever `market.accrued`
   shows credit (at most every `--claim-every` seconds), `market.claim(provider)`: the
   credited escrow is burned, Settlement mints the pay (the jobs' USD value minus fees at the
   claim's price, at most their escrow minus fees), and those jobs' collateral is released and
   their `completed` count recorded; the `paid` log line reports the claim's `Settled` event.

Its transactions go through `offchain/chain/sender.py` (a local nonce: one process per account).

Deadlines use max(chain time, wall clock): a dev chain mines only on transactions, so its
head's timestamp lags while it idles; a new block is never older than the wall clock.

Restart safety: every state change is written to SQLite (`offchain/provider/store.py`) before
the next step, and the chain decides ties. A job recorded as `accepting` is looked up on-chain
on restart (accepted by us -> running, still open -> candidate again); the chain's own `Open`
check makes a second acceptance impossible anyway. A computed result is in the blob store under
its hash, so a restart between executing and submitting submits it without recomputing.
Blobs are kept after jobs finish (garbage collection is left for later).

Cheats (`--cheat`, `offchain/provider/cheats.py`): "wrong-output", "skip-work",
"cheaper-model" replace step 3's execution; everything else is as honest.

Metrics: the worker records into its agent's `AgentMetrics` (`offchain/provider/metrics.py`,
served by the agent at GET /metrics): jobs by state from the state file and the time of the
last good cycle (both every cycle), executions, failed transactions, credit and claims.

Test hook: the environment variable GPUNET_AGENT_CRASH_AT=accepted|executed makes the process
exit at once (status 75, no cleanup) right after the accept transaction is mined (before it is
recorded) or after the output is stored (before it is submitted): crash injection for the
restart tests.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offchain.chain.follow import Follower, Source, default_reorg_depth
from offchain.chain.heads import HeadWatcher
from offchain.chain.jobs import ZERO_ADDRESS, apply_event, job_from_chain, job_from_created
from offchain.chain.views import read_many
from offchain.constants import JobStatus, MachineStatus
from offchain.provider.blobs import BlobStore
from offchain.provider.cheats import JOB_CHEATS
from offchain.provider.delivery import Delivery
from offchain.provider.guard import DataGuard
from offchain.provider.intake import Intake, _event, _hex32
from offchain.provider.metrics import metrics_of
from offchain.provider.payout import Payout
from offchain.provider.store import OPEN_STATES, WorkerStore

log = logging.getLogger("gpunet.provider.worker")

CRASH_ENV = "GPUNET_AGENT_CRASH_AT"
CRASH_POINTS = ("accepted", "executed")
CRASH_EXIT_CODE = 75
# JobMarket events the worker follows: jobs offered to it, their moves, and its jobs' outcomes.
OUTCOME_EVENTS = ("JobDisputed", "JobFinalized", "JobFailed")
MARKET_EVENTS = ("JobCreated", "JobAccepted", "ResultSubmitted", *OUTCOME_EVENTS)


@dataclass
class WorkerConfig:
    network: str
    state_dir: str | Path
    sender_index: int | None = None  # ape test account (local chains)
    sender_alias: str | None = None  # ape account alias (other networks)
    public_url: str | None = None  # base URL in result_uri (default: the machine's registered endpoint)
    cheat: str | None = None  # None or one of cheats.JOB_CHEATS
    poll_s: float = 1.0
    # Accepted jobs not yet submitted (also the largest accept batch). They run one after another,
    # so a large value risks completion deadlines (and the no-show penalty) on long jobs.
    max_pending: int = 4
    accept_margin_s: int = 5  # leave a job whose acceptance window closes sooner than this
    tx_retry_s: float = 5.0  # after a failed transaction for a job, wait this long before retrying
    claim_every_s: float = 0.0  # claim credited pay at most this often; 0: every cycle with credit
    crash_at: str | None = field(default_factory=lambda: os.environ.get(CRASH_ENV) or None)

    def __post_init__(self) -> None:
        if self.cheat in ("", "none"):
            self.cheat = None
        if self.cheat is not None and self.cheat not in JOB_CHEATS:
            raise ValueError(f"worker: job cheat must be one of {', '.join(JOB_CHEATS)}, not {self.cheat!r}")
        if self.sender_index is None and not self.sender_alias:
            raise ValueError("worker: a signer is needed: --test-account N (local chains) or --account ALIAS")
        if self.crash_at is not None and self.crash_at not in CRASH_POINTS:
            raise ValueError(f"{CRASH_ENV} must be one of {', '.join(CRASH_POINTS)}, not {self.crash_at!r}")
        if self.poll_s <= 0 or self.max_pending < 1 or self.accept_margin_s < 0 or self.claim_every_s < 0:
            raise ValueError("worker: poll_s > 0, max_pending >= 1, accept_margin_s >= 0, claim_every_s >= 0")


class JobWorker:
    """One provider's job loop. `agent` supplies the blob store, the torch device and the device
    lock (a `ProviderAgent`, or anything with `.blobs`, `.device`, `.device_lock()`)."""

    def __init__(self, config: WorkerConfig, agent: Any, server_url: str):
        self.cfg = config
        self.agent = agent
        self.blobs: BlobStore = agent.blobs
        self.server_url = server_url.rstrip("/")
        Path(config.state_dir).mkdir(parents=True, exist_ok=True)
        self.store = WorkerStore(Path(config.state_dir) / "worker.sqlite")
        self.metrics = metrics_of(agent)  # the agent's: one /metrics for both
        self.jobs: dict[int, dict] = {}  # job id -> current struct, for jobs in OPEN_STATES
        self.machines: dict[int, Any] = {}  # machine id -> registry.machines() of ours, refreshed each cycle
        self._retry_at: dict[int, float] = {}
        self._waiting_logged: set[tuple[int, str]] = set()
        self.intake = Intake(self)  # step 2: take jobs, in batches
        self.delivery = Delivery(self)  # step 3: run accepted jobs, submit their results
        self.payout = Payout(self)  # step 4: finalize and claim
        # Jobs whose on-chain state this process has seen (accepted them, or looked them up once
        # after a restart): their delivery needs no status read.
        self.checked: set[int] = set()
        self.specs: dict[int, dict] = {}  # accepted jobs' checked specs, until they run
        self._head: tuple[int, int] | None = None  # (number, timestamp), read once per cycle
        # Submitted jobs whose on-chain state moved on: (status, audit deadline), from events
        # (`_follow_outcomes`) or a status read after a failed finalize; absent: still Submitted.
        self.onchain: dict[int, tuple[JobStatus, int]] = {}
        self._follow: Follower | None = None
        self.heads: HeadWatcher | None = None  # new blocks over the node's websocket, if it has one
        # Sealed jobs (offchain/sealing.py): this provider's X25519 keys (published in
        # KeyDirectory at start) and each accepted sealed job's data key, by spec hash.
        self.guard = DataGuard(self)  # sealed jobs' keys and signed blob access (provider/guard.py)

    # ------------------------------------------------------------------ chain plumbing
    def _sender(self) -> Any:
        from ape import accounts

        if self.cfg.sender_alias:
            acct = accounts.load(self.cfg.sender_alias)
            acct.set_autosign(True)
            return acct
        return accounts.test_accounts[self.cfg.sender_index]

    def tx(self) -> Any:
        """This worker's hot-path transaction sender (a local nonce, known gas: chain/sender.py)."""
        from offchain.chain.sender import Sender

        return Sender.of(self.account, self.h.chain.provider)

    def _stop_block(self) -> int:
        # An explicit stop: ape's `range(start, None)` means `range(0, start)` (Python's range(stop)).
        # A fresh read, not the cycle's head: a rebuild after a transaction needs its block.
        return int(self.h.chain.blocks.height) + 1

    def _read_head(self) -> None:
        """The chain head once per cycle (its number and time serve the whole cycle): the
        subscription's, while it is live, else one read."""
        head = self.heads.head if self.heads is not None else None
        if head is None:
            block = self.h.chain.blocks.head
            head = (int(block.number), int(block.timestamp))
        self._head = head

    def _head_number(self) -> int:
        if self._head is None:
            self._read_head()
        return self._head[0]

    def _rebuild(self, jid: int) -> dict:
        """The job's current struct from its events (checked against the on-chain commitment)."""
        return job_from_chain(self.h.market, jid, self.start_block, self._stop_block())

    def clock(self) -> int:
        """max(chain time, wall clock): see the module docstring."""
        if self._head is None:
            self._read_head()
        return max(self._head[1], int(time.time()))

    def run(self, stop: threading.Event) -> None:
        """Follows the chain and works until `stop` is set (the agent's SIGTERM handler sets it)."""
        from offchain.chain.client import connect

        with connect(self.cfg.network) as h:
            self.h = h
            self.account = self._sender()
            self.address = self.account.address
            self.start_block = int(h.record.get("block") or 0)
            self.heads = HeadWatcher(str(h.chain.provider.uri)).start()
            deploy_block = h.chain.blocks[self.start_block].hash
            self.store.check_binding(h.chain.chain_id, h.market.address, self.address, _hex32(deploy_block))
            self._load_machines()
            self.guard.setup()
            self._restore()
            _event(event="worker_started", provider=self.address, cheat=self.cfg.cheat, state=self.store.counts())
            self.observe_store()
            backoff = self.cfg.poll_s
            while not stop.is_set():
                try:
                    self.cycle(stop)
                    backoff = self.cfg.poll_s
                except Exception as e:  # noqa: BLE001 - RPC hiccups and the like: log, back off, retry
                    log.warning(json.dumps({"event": "cycle_error", "error": f"{type(e).__name__}: {e}"}))
                    self.metrics.error("cycle")
                    self.observe_store()
                    backoff = min(backoff * 2, 30.0)
                if backoff == self.cfg.poll_s and self.heads.live:  # wake on the next block (poll_s at most)
                    self.heads.wait(stop, backoff, after=self._head[0] if self._head else None)
                else:
                    stop.wait(backoff)
            self.heads.close()
        _event(event="worker_stopped", provider=self.address)

    def _load_machines(self) -> None:
        reg = self.h.registry
        for lg in reg.MachineRegistered.range(
            self.start_block, self._stop_block(), search_topics={"provider": self.address}
        ):
            self.store.add_machine(int(lg.event_arguments["machine_id"]))

    def _restore(self) -> None:
        """After a restart: rebuild the structs of unfinished jobs, and settle `accepting` rows."""
        for row in self.store.jobs_in(*OPEN_STATES):
            jid = row["job_id"]
            try:
                self.jobs[jid] = self._rebuild(jid)
            except (LookupError, RuntimeError) as e:
                self.store.set_state(jid, "done", reason=f"cannot rebuild from the chain: {e}")
                continue
            if row["state"] == "accepting":
                self._resolve_accepting(jid)
            elif row["state"] == "submitted":  # events before the cursor are not read again
                self.payout.refresh(jid)

    def _resolve_accepting(self, jid: int) -> None:
        job = self.jobs[jid]
        if job["provider"].lower() == self.address.lower() and job["machine_id"] != 0:
            self.store.set_state(jid, "running", machine_id=int(job["machine_id"]))
            _event(event="resumed", job_id=jid, state="running")
        elif self.h.market.job_status(jid) == JobStatus.OPEN:
            self.store.set_state(jid, "candidate")
        else:
            self.store.set_state(jid, "done", reason="accepted by another provider")
            self.jobs.pop(jid, None)

    # ------------------------------------------------------------------ one cycle
    def cycle(self, stop: threading.Event | None = None) -> None:
        self._read_head()
        self.follow_chain()
        self.refresh_machines()
        self.intake.cycle(self.clock(), stop)
        self.delivery.cycle(stop)
        self.payout.cycle(self.clock())
        self.guard.tend()
        self.observe_store()
        self.metrics.cycles.inc()
        self.metrics.last_cycle.set_to_current_time()

    def observe_store(self) -> None:
        """Jobs by state, from the state file, into the metrics."""
        try:
            self.metrics.set_job_counts(self.store.counts())
        except Exception as e:  # noqa: BLE001 - metrics only: never stop the worker for them
            log.warning(json.dumps({"event": "metrics_error", "error": f"{type(e).__name__}: {e}"}))

    def _follower(self) -> Follower:
        if self._follow is None:
            self._follow = Follower(
                self.h.chain,
                [Source(self.h.market, MARKET_EVENTS), Source(self.h.registry, ("MachineRegistered",))],
                self.store,
                "cursor",
                start_block=self.start_block,
                reorg_depth=default_reorg_depth(self.h.chain.chain_id),
            )
        return self._follow

    def follow_chain(self) -> None:
        """Every event the worker needs since its cursor, from one `eth_getLogs` per chunk
        (`offchain.chain.follow`), handled in chain order."""
        self._follower().follow(self._head_number(), self._handle_logs)

    def _handle_logs(self, logs: list[Any], start: int, stop: int) -> None:
        me = self.address.lower()
        for lg in logs:
            name, args = lg.event_name, lg.event_arguments
            if name == "MachineRegistered":
                if str(args["provider"]).lower() == me:
                    self.store.add_machine(int(args["machine_id"]))
                continue
            jid = int(args["job_id"])
            if name == "JobCreated":
                if args["provider"].lower() in (me, ZERO_ADDRESS) and self.store.add_candidate(jid):
                    self.jobs[jid] = job_from_created(lg)
                    _event(event="job_seen", job_id=jid, targeted=args["provider"].lower() == me)
                continue
            if jid not in self.jobs:
                continue
            if name in OUTCOME_EVENTS:
                self._outcome(jid, name, args)
                continue
            self.jobs[jid] = apply_event(self.jobs[jid], name, lg)
            if name == "JobAccepted":
                row = self.store.job(jid)
                if args["provider"].lower() == me:
                    if row and row["state"] in ("candidate", "accepting", "refused"):
                        self.store.set_state(jid, "running", machine_id=int(args["machine_id"]))
                        self.guard.link(jid, self.jobs[jid], [_hex32(self.jobs[jid]["spec_hash"])])  # live again
                elif row and row["state"] in ("candidate", "accepting"):
                    self.store.set_state(jid, "done", reason="accepted by another provider")
                    self.guard.job_final(jid)  # its spec, if linked, ages out
                    self.intake.forget(jid)
                    self.jobs.pop(jid, None)

    def _outcome(self, jid: int, name: str, args: Any) -> None:
        """What happened to one of our submitted jobs (disputed, finalized, failed): the payout
        step then needs no status read per job and cycle (a sampled audit has no event: the
        payout step draws it from the beacon)."""
        if name == "JobDisputed":
            self.onchain[jid] = (JobStatus.AUDIT, int(args["audit_deadline"]))
        else:
            self.onchain[jid] = (JobStatus.FINALIZED if name == "JobFinalized" else JobStatus.FAILED, 0)

    def refresh_machines(self) -> None:
        reg, mids = self.h.registry, list(self.store.machines())
        infos = read_many(self.h.chain.provider, [(reg.machines, (mid,)) for mid in mids])
        self.machines = dict(zip(mids, infos, strict=True))

    def _active_machines(self, class_id: int, now: int) -> list[int]:
        return [
            mid
            for mid, info in sorted(self.machines.items())
            if info.status == MachineStatus.ACTIVE
            and int(info.class_id) == int(class_id)
            and now <= info.attested_until
        ]

    def _waiting(self, jid: int, why: str) -> None:
        # Log each distinct reason once per job, not every poll.
        if (jid, why) not in self._waiting_logged:
            self._waiting_logged.add((jid, why))
            _event(event="job_waiting", job_id=jid, reason=why)

    def _done(self, jid: int, reason: str) -> None:
        self.store.set_state(jid, "done", reason=reason)
        self.guard.job_final(jid)  # its blobs go after the retention period
        self.intake.forget(jid)
        self.jobs.pop(jid, None)
        self.specs.pop(jid, None)
        self.onchain.pop(jid, None)
        _event(event="job_done", job_id=jid, reason=reason)

    # ------------------------------------------------------------------ accepting (offchain/provider/intake.py)
    def _resolve_after_failure(self, jid: int) -> None:
        try:
            self.jobs[jid] = self._rebuild(jid)
            self._resolve_accepting(jid)
        except Exception as e:  # noqa: BLE001 - try again next cycle
            log.warning(json.dumps({"event": "resolve_error", "job_id": jid, "error": str(e)}))

    def _tx_failed(self, jid: int, what: str, e: Exception) -> None:
        self._retry_at[jid] = time.monotonic() + self.cfg.tx_retry_s
        log.warning(json.dumps({"event": "tx_failed", "tx": what, "job_id": jid, "error": f"{type(e).__name__}: {e}"}))

    def _crash_point(self, point: str, jid: int) -> None:
        if self.cfg.crash_at == point:
            _event(event="crash_injected", point=point, job_id=jid)
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(CRASH_EXIT_CODE)


def run_worker(config: WorkerConfig, agent: Any, server_url: str, stop: threading.Event) -> None:
    """`agent.run_forever`'s `job_worker` hook."""
    JobWorker(config, agent, server_url).run(stop)


__all__ = ["CRASH_ENV", "CRASH_EXIT_CODE", "JobWorker", "WorkerConfig", "run_worker"]
