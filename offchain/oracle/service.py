"""`gpunet oracle run`: one oracle operator, day and night.

Loop (every `poll_s`):
1. Follow the chain: new registry events since the stored cursor (MachineRegistered,
   MachineStatusChanged, AttestationRecorded, EndpointUpdated) update the local machine table
   (SQLite). Handlers are idempotent; the cursor is saved after each batch, so a restart
   re-reads at most one batch and converges to the same table.
2. Attestation work: a machine that is Pending, or Active with an attestation that expires
   within min(`renew_margin_s`, TTL/4) (6 h of a 24 h TTL), needs a BenchmarkAttestation. Its
   **leader** for the current nonce is `operators[(machine_id + nonce + k) % N]` (operators
   sorted by address), where k grows by one every `leader_timeout_s` the task stays open, so a
   dead leader is replaced. The leader runs the hardware challenge against the machine's
   registered endpoint (the rule: `offchain/benchmark/decision.py`). INCONCLUSIVE (load, or the
   agent busy with a job): no report, and this operator backs off (`hwschedule`, 30 s doubling
   to 10 min). FAIL: it waits `confirm_delay_s` and challenges again; only a second FAIL in a
   row is proposed (`fail_confirmations`). Then it builds the report (its own measured figures,
   transcript hash, chain time, validity), asks every peer to co-sign over HTTP (POST
   /sign/attestation), signs it itself last, and submits the report with at least `threshold`
   signatures sorted by signer.
3. Uptime: Active machines are probed (GET /health) at random moments of each epoch; when an
   epoch ends, the machine's leader proposes its counts as an UptimeReport and peers co-sign
   if their own ratio is within `uptime_tolerance_bps` of it.

4. Jobs (JobMarket events, followed in the same loop with a cursor of their own, one
   `eth_getLogs` per batch, job structs cached in SQLite, see `jobwatch`): a Submitted job
   that the draw selected (`offchain.chain.jobs.drawn_for_audit`, the contract's rule computed from the
   draw block's hash) is moved into Audit by its leader
   (`open_audit`; a revert because another operator was first is harmless). The job's
   **audit committee** -- `threshold` operators in rotation order from the job's first leader --
   audits it at once on a background thread with `auditor.audit_job` (fetch spec/inputs/output
   from the provider, re-execute, compare, escalate to a third execution before "invalid") and
   keeps the outcome per (job, result hash). The leader asks only the committee to co-sign for
   `audit_committee_timeout_s`; after that it asks every peer, and a peer asked to co-sign runs
   its own audit first. So a job is re-executed `threshold` times, not once per operator,
   unless a committee member is down or disagrees. The job's leader proposes a JobVerdict
   {job_id, result_hash, valid, evidence_hash of its own evidence, nonce =
   hub.verdict_nonce(job_id)}, gathers co-signatures (POST /sign/verdict) and calls
   `hub.submit_verdict` before the job's `audit_deadline`.
   A peer signs a verdict when **its own audit reaches the same `valid`**; the evidence hash
   is the leader's transcript (timings and URLs differ per operator, so the peers could never
   agree on one byte for byte), and each operator serves its own evidence at GET
   /audits/<job_id>.

Co-signing (peers): a peer signs a proposed attestation only if the report matches the chain
(current nonce, provider, class), the validity is within the TTL, and **its own independent
challenge** of the same machine reaches the same decisive outcome (an inconclusive one of its
own refuses, for the leader to retry). It signs at most one report per
(subject, nonce) (`Store.sign_once`): asked to sign a different one, it answers with the report
it already signed, which the leader adopts if it agrees with it. That keeps every operator from
ever equivocating while letting a replacement leader finish a round a dead leader started.

Why signatures are gathered over HTTP rather than each operator posting its own vote: one
transaction per report (~84k gas with 2 signatures, ~10k per extra signature) instead of M transactions
(M x (21k + storage)), and no on-chain vote state to time out. `make bench` reports the gas.

5. Price (PriceFeed, when the deployment has one and `--price-source` is given): every
   `price_interval_s` after the last answer (or earlier, when this operator's own source moved
   more than `price_deviation_bps` from it) the leader of round r = latest_round + 1
   (`leader_for(r, 0, seconds since the round fell due)`) signs its own PriceObservation
   {r, price, observed_at}, asks every peer for theirs (POST /sign/price {"round_id": r} ->
   {observation, signature}), checks each signature and freshness, and submits every valid
   observation with `submit_round` (the contract takes the lower median). A peer signs its own
   observation for the round only when r is the next round on-chain, and at most one that can
   still be accepted: it signs again for the same round only after its earlier observation is
   older than the feed's `max_observation_age` (it can no longer be submitted), so a stalled
   round never locks the feed and no submitter ever has two usable observations of one operator
   to choose from.

6. Epoch rewards (Emissions, when the deployment has one): the leader of an ended epoch calls
   `finalize_epoch` (a revert because someone else did is fine). `rewards_delay_s` after the
   first block past a finalized epoch's end (up to 3x longer while uptime reports of machines
   this operator probed are missing), the epoch's leader builds the epoch's records from the
   chain at the head block (`epoch_rewards`: JobFinalized fees, registry state, OracleHub
   uptime, stakes, all at that snapshot block), proposes the EpochRewards report with the
   snapshot block (POST /sign/rewards), and submits `submit_rewards` with the quorum's
   signatures. A peer rebuilds at the same block and signs only an identical root (one version
   per epoch, `Store.sign_once`). Every operator serves its trees: GET /rewards/<epoch> and
   GET /rewards/<epoch>/<provider> (leaf fields and Merkle proof). Uptime epochs must be
   Emissions' epochs for the availability part: `emissions_epochs` (`--emissions-epochs`).

Metrics (Prometheus text format) at GET /metrics; GET /health answers {"ok": ...}. A circuit
breaker stops the service when an invariant it relies on breaks (the chain id or the hub
address changes under the same database, or the operator is no longer registered).
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from eth_account import Account
from eth_utils import to_checksum_address
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from offchain.chain.jobs import DRAW_HORIZON_BLOCKS, as_tuple, drawn_for_audit
from offchain.chain.reports import (
    ATTESTATION_FIELDS,
    PRICE_FIELDS,
    UPTIME_FIELDS,
    VERDICT_FIELDS,
    attestation_typed_data,
    price_typed_data,
    report_tuple,
    typed_data_digest,
    uptime_typed_data,
    verdict_typed_data,
)
from offchain.constants import JobStatus, MachineStatus
from offchain.economics import rewards as RW
from offchain.oracle import epoch_rewards, jobwatch
from offchain.oracle.challenger import INCONCLUSIVE, run_hardware_challenge
from offchain.oracle.hwschedule import HardwareSchedule
from offchain.oracle.pricing import PriceSourceError, parse_price_source, within_deviation
from offchain.oracle.store import Store

log = logging.getLogger("gpunet.oracle")

OUTCOME_CODES = {"pass": 0, "fail_misreport": 1, "fail_unreachable": 2}
NO_EXPIRY = 2**32 - 1
CPU_CLASS_ID = 1
# Observations are stamped max(head block time, wall clock - this): never after the block that
# includes them when clocks agree within it, and fresh even when a dev chain idles.
PRICE_CLOCK_SLACK_S = 30
# A gathered observation is submitted only if it stays acceptable this long (time to be mined).
PRICE_SUBMIT_MARGIN_S = 15
# How often a non-due round re-reads the source to look for a large move.
PRICE_CHECK_S = 10.0


def _hex32(value: bytes | str) -> str:
    """A bytes32 (bytes or 0x-hex) as 64 lowercase hex digits; ValueError if it is not 32 bytes."""
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw.hex()


class CircuitBreaker(RuntimeError):
    """An invariant the service relies on broke: stop rather than sign anything."""


@dataclass
class OracleConfig:
    network: str
    operator_key: str
    sender_index: int | None = None  # ape test account that pays for submissions (local chains)
    sender_alias: str | None = None  # ape account alias (other networks)
    host: str = "127.0.0.1"
    port: int = 9700
    peers: dict[str, str] = field(default_factory=dict)  # operator address -> base URL
    db_path: str = "oracle.sqlite"
    poll_s: float = 1.0
    attestation_ttl_s: int = 24 * 3600
    # Renewal starts min(renew_margin_s, TTL/4) before expiry: room for many back-offs while the
    # machine is busy with jobs (running jobs are never interrupted by a challenge).
    renew_margin_s: int = 6 * 3600
    leader_timeout_s: float = 30.0
    peer_timeout_s: float = 120.0
    epoch_seconds: int = 3600
    probes_per_epoch: int = 6
    uptime_tolerance_bps: int = 2_500
    challenge_kwargs: dict[str, Any] = field(default_factory=dict)
    # A FAIL is proposed only after this many FAIL challenges in a row by the leader, each
    # `confirm_delay_s` after the last (co-signers then need a FAIL of their own too).
    fail_confirmations: int = 2
    confirm_delay_s: float = 10.0
    # Back-off after an inconclusive challenge: `hw_retry_s`, doubling up to `hw_max_backoff_s`.
    hw_retry_s: float = 30.0
    hw_max_backoff_s: float = 600.0
    # Matrix size for GPU-class challenges (None: from the time budget, `challenger.default_challenge`).
    gpu_challenge_n: int | None = None
    max_cycles: int | None = None  # for tests: stop after this many loop cycles
    # Job audits (see `offchain.oracle.auditor`): the re-execution device (None: CUDA when
    # present), how long a provider has to serve a blob (attempts spread over this many
    # seconds) and how many attempts; a failed audit (the oracle's own trouble) is retried
    # after `audit_retry_s`.
    audit_device: str | None = None
    audit_fetch_timeout_s: float = 60.0
    audit_retries: int = 4
    audit_retry_s: float = 30.0
    # How long a verdict's leader asks only the job's audit committee before asking everyone.
    audit_committee_timeout_s: float = 120.0
    # Price feed (None: this operator takes no part in price rounds): "fixed:1.25",
    # "file:PATH" or "url:http://..." (see `offchain.oracle.pricing`).
    price_source: str | None = None
    # A round every `price_interval_s` after the last answer, or earlier when the own source
    # moved more than `price_deviation_bps` (1%) from it.
    price_interval_s: float = 60.0
    price_deviation_bps: int = 100
    # Uptime epochs are (t - epoch_genesis) // epoch_seconds. `emissions_epochs`: take both from
    # the deployment's Emissions contract (GENESIS, EPOCH_SECONDS) at start, so UptimeReports
    # name Emissions' epochs and the rewards roots can use them.
    epoch_genesis: int = 0
    emissions_epochs: bool = False
    # Epoch rewards (Emissions): the leader proposes an epoch's root this long after the epoch
    # ended (time for the last uptime reports and finalizations to land), or up to 3x longer
    # while uptime reports of machines it probed are still missing on-chain.
    rewards_delay_s: float = 600.0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.cycles = Counter("gpunet_oracle_cycles", "Loop cycles", registry=self.registry)
        self.rpc_errors = Counter("gpunet_oracle_rpc_errors", "RPC errors (retried)", registry=self.registry)
        self.challenges = Counter(
            "gpunet_oracle_challenges", "Hardware challenges run", ["outcome", "role"], registry=self.registry
        )
        self.reports_submitted = Counter(
            "gpunet_oracle_reports_submitted", "Reports submitted on-chain", ["kind"], registry=self.registry
        )
        self.signatures_given = Counter(
            "gpunet_oracle_signatures_given", "Reports co-signed for peers", ["kind"], registry=self.registry
        )
        self.signatures_refused = Counter(
            "gpunet_oracle_signatures_refused", "Co-sign requests refused", ["kind", "reason"], registry=self.registry
        )
        self.last_block = Gauge("gpunet_oracle_last_block", "Last processed block", registry=self.registry)
        self.machines = Gauge("gpunet_oracle_machines", "Machines known", ["status"], registry=self.registry)
        self.audits_opened = Counter(
            "gpunet_oracle_audits_opened", "Drawn jobs this operator moved into Audit", registry=self.registry
        )
        self.audits = Counter(
            "gpunet_oracle_audits", "Own job audits completed", ["valid", "reason"], registry=self.registry
        )
        self.audit_failures = Counter(
            "gpunet_oracle_audit_failures", "Audits the oracle could not finish (retried)", registry=self.registry
        )
        self.audit_seconds = Histogram(
            "gpunet_oracle_audit_seconds",
            "Wall time of own audits (fetch + re-execution)",
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 1800, float("inf")),
            registry=self.registry,
        )
        self.challenge_seconds = Histogram(
            "gpunet_oracle_challenge_seconds",
            "Wall time of own hardware challenges, leader and peer, whole (matmul round, memory proof, transfers)",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, float("inf")),
            registry=self.registry,
        )
        self.audit_executed_units = Counter(
            "gpunet_oracle_audit_executed_units",
            "Compute units re-executed by own audits (verification overhead numerator)",
            registry=self.registry,
        )
        self.audited_job_units = Counter(
            "gpunet_oracle_audited_job_units", "Compute units of the jobs this operator audited", registry=self.registry
        )
        self.submitted_job_units = Counter(
            "gpunet_oracle_submitted_job_units",
            "Compute units of all jobs whose results were submitted (overhead denominator)",
            registry=self.registry,
        )
        self.verdicts = Counter(
            "gpunet_oracle_verdicts", "Verdicts posted on-chain (by any operator)", ["valid"], registry=self.registry
        )
        self.price_last = Gauge(
            "gpunet_oracle_price_usd", "Latest PriceFeed answer (USD per token)", registry=self.registry
        )
        self.price_round = Gauge("gpunet_oracle_price_round", "Latest PriceFeed round", registry=self.registry)
        self.price_rounds_submitted = Counter(
            "gpunet_oracle_price_rounds_submitted", "PriceFeed rounds this operator submitted", registry=self.registry
        )
        self.price_observations = Counter(
            "gpunet_oracle_price_observations_signed", "Own price observations signed", registry=self.registry
        )
        self.price_source_errors = Counter(
            "gpunet_oracle_price_source_errors", "Price source reads that failed", registry=self.registry
        )
        self.emission_epochs_finalized = Counter(
            "gpunet_oracle_emission_epochs_finalized",
            "Emissions epochs this operator finalized",
            registry=self.registry,
        )
        self.rewards_epoch = Gauge(
            "gpunet_oracle_rewards_epoch", "Latest Emissions epoch whose rewards root is posted", registry=self.registry
        )
        self.rewards_built = Counter(
            "gpunet_oracle_rewards_built", "Epoch rewards trees built from the chain", registry=self.registry
        )


class OracleService:
    def __init__(self, config: OracleConfig):
        self.cfg = config
        self.account = Account.from_key(config.operator_key)
        self.address = self.account.address
        self.store = Store(config.db_path)
        self.metrics = Metrics()
        self._chain_lock = threading.RLock()
        self.hw = HardwareSchedule(retry_s=config.hw_retry_s, max_backoff_s=config.hw_max_backoff_s)
        if config.fail_confirmations < 1 or config.confirm_delay_s < 0:
            raise ValueError("oracle: fail_confirmations >= 1 and confirm_delay_s >= 0")
        # (subject, nonce) this operator is proposing right now: while in flight it co-signs no
        # other version, so two concurrent leaders cannot each sign the other's report and
        # leave every version one signature short (see `_gather`).
        self._proposing: set[tuple[str, int]] = set()
        self._proposing_lock = threading.Lock()
        # Own audits run one at a time on a daemon worker thread, off the main loop (attestations
        # and uptime go on meanwhile; a stop does not wait for a long re-execution), keyed by
        # (job_id, result hash hex).
        self._audit_queue: queue.Queue[tuple[tuple[int, str], dict, list[str]]] = queue.Queue()
        self._audits_pending: set[tuple[int, str]] = set()
        self._audit_retry_at: dict[tuple[int, str], float] = {}
        self._audit_lock = threading.Lock()  # the main loop and HTTP handlers both start audits
        self._price_source = parse_price_source(config.price_source) if config.price_source else None
        self._price_lock = threading.Lock()  # own observations: the loop and HTTP handlers sign them
        self._price_checked_at = 0.0
        # (epoch, snapshot block) -> own rewards built there (None: no leaves).
        self._rewards_cache: dict[tuple[int, int], RW.EpochRewards | None] = {}
        self._rewards_tried: dict[int, float] = {}  # epoch -> monotonic time of the last proposal
        self._stop = threading.Event()
        self.healthy = True
        self.last_error: str | None = None
        self.server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ chain helpers
    def _connect(self):
        from offchain.chain.client import connect

        return connect(self.cfg.network)

    def _sender(self):
        from ape import accounts

        if self.cfg.sender_alias:
            acct = accounts.load(self.cfg.sender_alias)
            acct.set_autosign(True)
            return acct
        return accounts.test_accounts[self.cfg.sender_index or 0]

    def operators(self) -> list[str]:
        ops = sorted({self.address, *self.cfg.peers}, key=lambda a: int(a, 16))
        return ops

    def leader_for(self, machine_id: int, nonce: int, waited_s: float) -> str:
        ops = self.operators()
        k = int(waited_s // self.cfg.leader_timeout_s) if self.cfg.leader_timeout_s > 0 else 0
        return ops[(machine_id + nonce + k) % len(ops)]

    def sign_digest(self, digest: bytes) -> str:
        signed = Account.unsafe_sign_hash(digest, self.cfg.operator_key)
        return "0x" + signed.signature.hex().removeprefix("0x")

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        with self._connect() as h:
            self.h = h
            self.chain_id = h.chain.chain_id
            deploy_block = h.chain.blocks[int(h.record.get("block") or 0)].hash
            deploy_hash = deploy_block.hex() if isinstance(deploy_block, bytes) else str(deploy_block)
            self.store.check_binding(self.chain_id, h.hub.address, self.address, deploy_hash)
            if not h.hub.is_operator(self.address):
                raise CircuitBreaker(f"{self.address} is not a registered operator of OracleHub {h.hub.address}")
            self.threshold = h.hub.threshold()
            if self.cfg.emissions_epochs:
                if getattr(h, "emissions", None) is None:
                    raise CircuitBreaker("--emissions-epochs: this deployment has no Emissions contract")
                self.cfg.epoch_genesis = int(h.emissions.GENESIS())
                self.cfg.epoch_seconds = int(h.emissions.EPOCH_SECONDS())
            self.sender = self._sender()
            threading.Thread(target=self._audit_worker, name="audit", daemon=True).start()
            self._start_http()
            log.info(
                json.dumps(
                    {"event": "started", "operator": self.address, "port": self.port, "threshold": self.threshold}
                )
            )
            cycles = 0
            backoff = self.cfg.poll_s
            while not self._stop.is_set():
                try:
                    self.cycle()
                    backoff = self.cfg.poll_s
                except CircuitBreaker:
                    self.healthy = False
                    raise
                except Exception as e:  # noqa: BLE001 - RPC hiccups and the like: log, back off, retry
                    self.metrics.rpc_errors.inc()
                    self.last_error = f"{type(e).__name__}: {e}"
                    log.warning(json.dumps({"event": "cycle_error", "error": self.last_error}))
                    backoff = min(backoff * 2, 30.0)
                cycles += 1
                self.metrics.cycles.inc()
                if self.cfg.max_cycles is not None and cycles >= self.cfg.max_cycles:
                    break
                self._stop.wait(backoff)
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def cycle(self) -> None:
        with self._chain_lock:
            self.follow_chain()
            if not self.h.hub.is_operator(self.address):
                raise CircuitBreaker(f"{self.address} was removed from the operator set")
            now = self.h.chain.blocks.head.timestamp
        # Chain time when the chain moves, wall time when it idles (a dev chain mines only on
        # transactions): leader rotation and uptime epochs must advance either way.
        clock = max(now, int(time.time()))
        self.jobs_round(now, clock)
        for m in self.store.machines():
            if self._needs_attestation(m, now):
                self.attest(m, now, clock)
        self.uptime_round(clock)
        self.price_round(clock)
        self.rewards_round(clock)

    def follow_chain(self) -> None:
        reg = self.h.registry
        head = self.h.chain.blocks.height
        # JobMarket has its own cursor: a database from before the service followed jobs starts
        # them at block 0 while the registry resumes where it was.
        market_start = int(self.store.get_meta("market_cursor", "-1")) + 1
        if market_start <= head:
            self._follow_market(market_start, head)
            self.store.set_meta("market_cursor", str(head))
        start = int(self.store.get_meta("cursor", "-1")) + 1
        if start > head:
            # Nothing new (e.g. restarted on a database that is already up to date): the gauge
            # still reports the block processed so far.
            self.metrics.last_block.set(start - 1)
            return
        # machine id -> block of its latest event in this batch: every operator derives the same
        # "first seen" chain time from it, so they agree on who leads (see `leader_for`).
        touched: dict[int, int] = {}
        for ev in ("MachineRegistered", "MachineStatusChanged", "AttestationRecorded", "EndpointUpdated"):
            for lg in getattr(reg, ev).range(start, head + 1):
                mid = int(lg.event_arguments["machine_id"])
                touched[mid] = max(touched.get(mid, 0), int(lg.block_number))
        for mid, block in sorted(touched.items()):
            info = reg.machines(mid)
            seen = self.h.chain.blocks[block].timestamp
            self.store.upsert_machine(
                mid, info.provider, info.class_id, info.vram_mb, info.endpoint, info.status, info.attested_until, seen
            )
        self.store.set_meta("cursor", str(head))
        self.metrics.last_block.set(head)

    def _needs_attestation(self, m: dict, now: int) -> bool:
        if m["status"] == MachineStatus.PENDING:
            return True
        # Renew ahead of expiry: the margin, but never more than a quarter of the validity.
        margin = min(self.cfg.renew_margin_s, self.cfg.attestation_ttl_s // 4)
        return (
            m["status"] == MachineStatus.ACTIVE
            and m["attested_until"] != NO_EXPIRY
            and m["attested_until"] - now < margin
        )

    # ------------------------------------------------------------------ attestations
    def _subject(self, machine_id: int) -> str:
        return f"attestation:{machine_id}"

    def _own_challenge(self, m: dict, nonce: int, role: str) -> Any:
        kwargs = dict(self.cfg.challenge_kwargs)
        # The memory proof is sized to the VRAM the provider registered for this machine.
        kwargs.setdefault("memory_claim_bytes", int(m["vram_mb"]) * 2**20)
        if self.cfg.gpu_challenge_n and int(m["class_id"]) != CPU_CLASS_ID:
            kwargs.setdefault("n", self.cfg.gpu_challenge_n)
        # `total_s`: the whole challenge as this operator waits for it (seconds per challenge);
        # `elapsed_s`: the provider's timed matmul round only, what the class allowance checks.
        t0 = time.monotonic()
        outcome = run_hardware_challenge(m["endpoint"], m["class_id"], **kwargs)
        total_s = time.monotonic() - t0
        backoff = self.hw.record(m["machine_id"], nonce, outcome.outcome)
        self.metrics.challenges.labels(outcome=outcome.outcome, role=role).inc()
        self.metrics.challenge_seconds.observe(total_s)
        log.info(
            json.dumps(
                {
                    "event": "challenge",
                    "role": role,
                    "machine_id": m["machine_id"],
                    "outcome": outcome.outcome,
                    "elapsed_s": outcome.elapsed_s,
                    "total_s": round(total_s, 3),
                    "allowance_s": outcome.allowance_s,
                    "round_seconds": outcome.round_seconds,
                    "reasons": outcome.reasons,
                    **({"retry_in_s": backoff} if backoff else {}),
                }
            )
        )
        return outcome

    def attest(self, m: dict, now: int, clock: int) -> None:
        mid = m["machine_id"]
        with self._chain_lock:
            nonce = self.h.hub.attestation_nonce(mid)
        subject = self._subject(mid)
        if self.store.submitted(subject, nonce):
            return
        waited = clock - m["first_seen"]  # from the block of the machine's last event: the same for all
        if self.leader_for(mid, nonce, waited) != self.address:
            return
        on_record = self.store.signed_for(subject, nonce)
        if on_record is not None:
            report = on_record.report  # never sign a second version: finish the one we signed
        else:
            if not self.hw.due(mid):  # backing off after an inconclusive challenge
                return
            self.hw.forget_before(mid, nonce)
            outcome = self._own_challenge(m, nonce, "leader")
            confirmations = 1
            while outcome.outcome not in ("pass", INCONCLUSIVE) and confirmations < self.cfg.fail_confirmations:
                # One FAIL is not enough to jail: look again after a pause (load passes).
                if self._stop.wait(self.cfg.confirm_delay_s):
                    return
                outcome = self._own_challenge(m, nonce, "leader-confirm")
                confirmations += 1
            if outcome.outcome == INCONCLUSIVE:
                return
            tflops = outcome.effective_tflops or 0.0
            report = {
                "machine_id": mid,
                "provider": m["provider"],
                "class_id": m["class_id"],
                "outcome": OUTCOME_CODES[outcome.outcome],
                "fp32_gflops": int(tflops * 1000) if outcome.dtype == "fp32" else 0,
                "bf16_gflops": int(tflops * 1000) if outcome.dtype != "fp32" else 0,
                "bandwidth_gbs": 0,
                "transcript_hash": "0x" + outcome.transcript_hash.removeprefix("0x"),
                "measured_at": now,
                "valid_until": now + self.cfg.attestation_ttl_s if outcome.outcome == "pass" else 0,
                "nonce": nonce,
            }
        with self._proposing_lock:
            self._proposing.add((subject, nonce))
        try:
            signatures = self._gather("attestation", report)
        finally:
            with self._proposing_lock:
                self._proposing.discard((subject, nonce))
        if signatures is None:
            return
        report, sigs = signatures
        self._submit("attestation", subject, report, sigs)

    def _ask_peers(self, path: str, body: dict, peers: dict[str, str] | None = None) -> list[tuple[str, dict | None]]:
        """POSTs `body` to `<peer url>/<path>` of every peer (or of `peers`) at once; returns
        (peer, JSON answer or None when unreachable or not JSON) in peer order."""

        def ask(peer: str, url: str) -> tuple[str, dict | None]:
            try:
                r = requests.post(f"{url}/{path}", json=body, timeout=self.cfg.peer_timeout_s)
                return peer, r.json() if r.headers.get("content-type", "").startswith("application/json") else None
            except (requests.RequestException, ValueError) as e:
                log.info(json.dumps({"event": "peer_unreachable", "peer": peer, "error": str(e)}))
                return peer, None

        asked = self.cfg.peers if peers is None else peers
        with ThreadPoolExecutor(max_workers=max(1, len(asked))) as pool:
            return list(pool.map(lambda kv: ask(*kv), asked.items()))

    def _gather(
        self, kind: str, report: dict, peers: dict[str, str] | None = None
    ) -> tuple[dict, list[tuple[str, str]]] | None:
        """Collects signatures per report version; returns a version that reaches the threshold.

        Peers that already signed another version of this subject and nonce return it with
        their signature: every version seen is tallied (signatures checked), our own signature
        goes to our proposal unless we signed something else before, and whichever version
        reaches `threshold` is submitted. So concurrent leaders converge instead of deadlocking.
        """
        versions: dict[str, tuple[dict, dict[str, str]]] = {}

        def add(rep: dict, signer: str, sig: str) -> None:
            digest = self._digest(kind, rep)
            recovered = Account._recover_hash(digest, signature=bytes.fromhex(sig.removeprefix("0x")))
            if recovered.lower() != signer.lower():
                log.warning(json.dumps({"event": "bad_peer_signature", "peer": signer}))
                return
            versions.setdefault("0x" + digest.hex(), (rep, {}))[1][signer] = sig

        answers = self._ask_peers(f"sign/{kind}", {"report": report}, peers)
        for peer, ans in answers:
            if ans and ans.get("signature") and not ans.get("conflict"):
                add(report, peer, ans["signature"])
            elif ans and ans.get("conflict") and ans.get("report") and ans.get("signature"):
                add(ans["report"], peer, ans["signature"])
            else:
                log.info(json.dumps({"event": "peer_refused", "peer": peer, "answer": ans}))
        # Our own signature: the version we signed before, else our proposal if enough agree,
        # else the best-supported version we agree with.
        mine = self.store.signed_for(
            self._subject_of(kind, report),
            report["nonce"],
        )
        if mine is not None:
            versions.setdefault(mine.digest, (mine.report, {}))[1][self.address] = mine.signature
        else:
            ranked = sorted(versions.items(), key=lambda kv: len(kv[1][1]), reverse=True)
            candidates = [v for v in ranked if v[1][0] == report or self._agrees_with(kind, v[1][0])]
            target = candidates[0][1][0] if candidates else report
            if len(versions.get(self._digest_hex(kind, target), (None, {}))[1]) + 1 >= self.threshold:
                own = self._sign_report(kind, target)
                if own is not None:
                    versions.setdefault(self._digest_hex(kind, target), (target, {}))[1][self.address] = own
        for rep, sigs in versions.values():
            if len(sigs) >= self.threshold:
                ordered = sorted(sigs.items(), key=lambda kv: int(kv[0], 16))
                return rep, ordered
        log.info(
            json.dumps(
                {"event": "no_quorum_yet", "kind": kind, "versions": {d: len(v[1]) for d, v in versions.items()}}
            )
        )
        return None

    def _agrees_with(self, kind: str, report: dict) -> bool:
        if kind == "attestation":
            mine = self.hw.own(int(report["machine_id"]), int(report["nonce"]))
            return mine in OUTCOME_CODES and OUTCOME_CODES[mine] == report["outcome"]
        if kind == "verdict":
            own = self.store.audit_for(int(report["job_id"]), _hex32(report["result_hash"]))
            return own is not None and own["valid"] == bool(report["valid"])
        if kind == "rewards":
            try:
                return self._rewards_match(report) is None
            except Exception:  # noqa: BLE001 - unreadable snapshot: no agreement
                return False
        return False

    def _digest(self, kind: str, report: dict) -> bytes:
        # Computed locally from the report: never trust an RPC to tell us what we sign.
        if kind == "attestation":
            return typed_data_digest(attestation_typed_data(self.h.hub.address, self.chain_id, report))
        if kind == "verdict":
            return typed_data_digest(verdict_typed_data(self.h.hub.address, self.chain_id, report))
        if kind == "rewards":  # Emissions' own domain
            return typed_data_digest(RW.rewards_typed_data(self.h.emissions.address, self.chain_id, report))
        return typed_data_digest(uptime_typed_data(self.h.hub.address, self.chain_id, report))

    def _digest_hex(self, kind: str, report: dict) -> str:
        return "0x" + self._digest(kind, report).hex()

    def _sign_report(self, kind: str, report: dict) -> str | None:
        subject = self._subject_of(kind, report)
        digest = self._digest_hex(kind, report)
        rec = self.store.sign_once(
            subject, report["nonce"], digest, report, lambda d: self.sign_digest(bytes.fromhex(d[2:]))
        )
        if rec.digest != digest:
            log.warning(json.dumps({"event": "refused_second_version", "subject": subject}))
            return None
        return rec.signature

    def _submit(
        self, kind: str, subject: str, report: dict, sigs: list[tuple[str, str]], job: dict | None = None
    ) -> None:
        sig_bytes = [bytes.fromhex(s.removeprefix("0x")) for _, s in sigs]
        with self._chain_lock:
            try:
                if kind == "attestation":
                    tx = self.h.hub.submit_attestation(
                        report_tuple(ATTESTATION_FIELDS, report), sig_bytes, sender=self.sender
                    )
                elif kind == "verdict":
                    tx = self.h.hub.submit_verdict(
                        report_tuple(VERDICT_FIELDS, report), as_tuple(job), sig_bytes, sender=self.sender
                    )
                elif kind == "rewards":
                    tx = self.h.emissions.submit_rewards(RW.report_tuple(report), sig_bytes, sender=self.sender)
                else:
                    tx = self.h.hub.submit_uptime(report_tuple(UPTIME_FIELDS, report), sig_bytes, sender=self.sender)
            except Exception as e:  # noqa: BLE001
                if "wrong nonce" in str(e) or "rewards already posted" in str(e):  # another leader was first
                    self.store.mark_submitted(subject, report["nonce"], "by-peer")
                    return
                if kind == "verdict" and ("not in audit" in str(e) or "deadline passed" in str(e)):
                    # Settled meanwhile (another verdict, or finalized after the deadline).
                    log.info(json.dumps({"event": "verdict_too_late", "subject": subject, "error": str(e)[:200]}))
                    self.store.mark_submitted(subject, report["nonce"], "gone")
                    return
                raise
        self.store.mark_submitted(subject, report["nonce"], str(tx.txn_hash))
        self.metrics.reports_submitted.labels(kind=kind).inc()
        log.info(
            json.dumps(
                {"event": "submitted", "kind": kind, "subject": subject, "gas": tx.gas_used, "signers": len(sigs)}
            )
        )

    # ------------------------------------------------------------------ co-signing (HTTP)
    def handle_sign_attestation(self, report: dict) -> tuple[int, dict]:
        try:
            mid = int(report["machine_id"])
            nonce = int(report["nonce"])
            outcome_code = int(report["outcome"])
        except (KeyError, TypeError, ValueError) as e:
            return 400, {"error": f"malformed report: {e}"}
        with self._chain_lock:
            onchain_nonce = self.h.hub.attestation_nonce(mid)
            info = self.h.registry.machines(mid)
            now = self.h.chain.blocks.head.timestamp
        reason = None
        if nonce != onchain_nonce:
            reason = f"nonce {nonce} is not the current {onchain_nonce}"
        elif info.provider.lower() != str(report["provider"]).lower() or info.class_id != report["class_id"]:
            reason = "provider or class does not match the registry"
        elif info.status == MachineStatus.EXITED:
            reason = "machine exited"
        elif outcome_code == 0 and not (now < report["valid_until"] <= now + self.cfg.attestation_ttl_s + 600):
            reason = "validity outside the attestation TTL"
        elif report["measured_at"] > now + 600:
            reason = "measured in the future"
        subject = self._subject(mid)
        if reason:
            self.metrics.signatures_refused.labels(kind="attestation", reason="invalid").inc()
            return 409, {"refused": reason}
        existing = self.store.signed_for(subject, nonce)
        digest = self._digest_hex("attestation", report)
        if existing is not None and existing.digest != digest:
            return 200, {"conflict": True, "report": existing.report, "signature": existing.signature}
        with self._proposing_lock:
            busy = (subject, nonce) in self._proposing
        if existing is None and busy:
            self.metrics.signatures_refused.labels(kind="attestation", reason="proposing").inc()
            return 409, {"refused": "I am proposing my own version of this report right now"}
        mine = self.hw.own(mid, nonce)
        if mine is None:
            m = {"machine_id": mid, "endpoint": info.endpoint, "class_id": info.class_id, "vram_mb": info.vram_mb}
            mine = self._own_challenge(m, nonce, "peer").outcome
        if mine == INCONCLUSIVE:
            self.metrics.signatures_refused.labels(kind="attestation", reason="inconclusive").inc()
            return 409, {"refused": "my own challenge is inconclusive (load or busy): ask again later", "retry": True}
        if OUTCOME_CODES[mine] != outcome_code:
            self.metrics.signatures_refused.labels(kind="attestation", reason="disagree").inc()
            return 409, {"refused": f"my own challenge says {mine}"}
        sig = self._sign_report("attestation", report)
        if sig is None:
            return 409, {"refused": "already signed another version"}
        self.metrics.signatures_given.labels(kind="attestation").inc()
        return 200, {"signature": sig, "digest": digest, "operator": self.address}

    # ------------------------------------------------------------------ uptime
    def epoch_of(self, now: int) -> int:
        return (now - self.cfg.epoch_genesis) // self.cfg.epoch_seconds

    def _subject_of(self, kind: str, report: dict) -> str:
        if kind == "attestation":
            return self._subject(report["machine_id"])
        if kind == "verdict":
            return self._verdict_subject(int(report["job_id"]))
        if kind == "rewards":
            return self._rewards_subject(int(report["epoch"]))
        return self._uptime_subject(report)

    def _uptime_subject(self, report: dict) -> str:
        return f"uptime:{report['epoch']}:{report['machine_id']}"

    def uptime_round(self, now: int) -> None:
        from offchain.oracle.agent_http import probe_uptime

        epoch = self.epoch_of(now)
        for m in self.store.machines():
            if m["status"] != MachineStatus.ACTIVE:
                continue
            # Probe at random moments: on average `probes_per_epoch` times per epoch.
            p = self.cfg.poll_s * self.cfg.probes_per_epoch / self.cfg.epoch_seconds
            if random.random() < p:
                self.store.record_probe(epoch, m["machine_id"], probe_uptime(m["endpoint"], timeout=5.0))
            self._report_uptime(epoch - 1, m)

    def _report_uptime(self, epoch: int, m: dict) -> None:
        probes, successes = self.store.probe_counts(epoch, m["machine_id"])
        if probes == 0:
            return
        report = {"epoch": epoch, "machine_id": m["machine_id"], "probes": probes, "successes": successes, "nonce": 0}
        subject = self._uptime_subject(report)
        if self.store.submitted(subject, 0):
            return
        with self._chain_lock:
            if self.h.hub.uptime_nonce(epoch, m["machine_id"]) != 0:
                self.store.mark_submitted(subject, 0, "by-peer")
                return
        if self.leader_for(m["machine_id"], epoch, 0) != self.address:
            return
        gathered = self._gather("uptime", report)
        if gathered is not None:
            self._submit("uptime", subject, *gathered)

    def handle_sign_uptime(self, report: dict) -> tuple[int, dict]:
        try:
            epoch, mid = int(report["epoch"]), int(report["machine_id"])
            probes, successes = int(report["probes"]), int(report["successes"])
        except (KeyError, TypeError, ValueError) as e:
            return 400, {"error": f"malformed report: {e}"}
        if report.get("nonce") != 0 or probes <= 0 or successes > probes:
            return 409, {"refused": "invalid counts or nonce"}
        mine_p, mine_s = self.store.probe_counts(epoch, mid)
        if mine_p == 0:
            return 409, {"refused": "I have no probes of this machine in that epoch"}
        diff = abs(successes * 10_000 // probes - mine_s * 10_000 // mine_p)
        if diff > self.cfg.uptime_tolerance_bps:
            return 409, {"refused": f"my uptime differs by {diff} bps"}
        existing = self.store.signed_for(self._uptime_subject(report), 0)
        digest = self._digest_hex("uptime", report)
        if existing is not None and existing.digest != digest:
            return 200, {"conflict": True, "report": existing.report, "signature": existing.signature}
        sig = self._sign_report("uptime", report)
        if sig is None:
            return 409, {"refused": "already signed another version"}
        self.metrics.signatures_given.labels(kind="uptime").inc()
        return 200, {"signature": sig, "digest": digest, "operator": self.address}

    # ------------------------------------------------------------------ jobs: audits and verdicts
    def _verdict_subject(self, job_id: int) -> str:
        return f"verdict:{job_id}"

    def _follow_market(self, start: int, head: int) -> None:
        """Applies JobMarket's events in [start, head] to the cached jobs (one log query)."""
        block_ts: dict[int, int] = {}
        for lg in jobwatch.market_logs(self.h.market, self.h.chain.provider, start, head):
            b = int(lg.block_number)
            if b not in block_ts:
                block_ts[b] = int(self.h.chain.blocks[b].timestamp)
            jobwatch.apply_market_log(self.store, lg, block_ts[b])
            if lg.event_name == "ResultSubmitted":
                row = self.store.job(int(lg.event_arguments["job_id"]))
                if row is not None:
                    self.metrics.submitted_job_units.inc(int(row["job"]["compute_units"]))
            elif lg.event_name == "VerdictPosted":
                valid = bool(lg.event_arguments["valid"])
                self.metrics.verdicts.labels(valid=str(valid).lower()).inc()
                log.info(json.dumps({"event": "verdict_posted", "job_id": int(lg.event_arguments["job_id"]),
                                     "valid": valid}))  # fmt: skip

    def jobs_round(self, now: int, clock: int) -> None:
        """Draws, audit openings, own audits and verdicts for the jobs this operator follows."""
        with self._chain_lock:
            head = self.h.chain.blocks.height
        for row in self.store.jobs_with_status(JobStatus.SUBMITTED):
            self._check_draw(row, head, now, clock)
        for row in self.store.jobs_with_status(JobStatus.AUDIT):
            if now > row["audit_deadline"]:
                continue  # too late for a verdict: anyone may finalize it now (provider paid)
            if self.address in self._audit_committee(int(row["job_id"])):
                own = self._own_audit(row)
            else:  # audit only when asked to co-sign (or when leading after a timeout)
                own = self.store.audit_for(int(row["job_id"]), _hex32(row["job"]["result_hash"]))
            self._verdict_round(row, own, now, clock)

    def _audit_committee(self, job_id: int) -> list[str]:
        """The `threshold` operators that audit a job without being asked: its first leader
        (`leader_for(job_id, 0, 0)`) and the next ones in rotation order."""
        ops = self.operators()
        m = max(1, min(len(ops), int(getattr(self, "threshold", 1) or 1)))
        return [ops[(job_id + i) % len(ops)] for i in range(m)]

    def _check_draw(self, row: dict, head: int, now: int, clock: int) -> None:
        job_id, job = row["job_id"], row["job"]
        draw_block = int(job["draw_block"])
        if row["drawn"] is None:
            if head > draw_block + DRAW_HORIZON_BLOCKS or head < draw_block:
                self.store.set_job_fields(job_id, drawn=0)  # the selection lapsed (or a reorg)
                return
            with self._chain_lock:
                block_hash = bytes(self.h.chain.blocks[draw_block].hash)
            drawn = drawn_for_audit(job_id, int(job["audit_bps"]), block_hash)
            self.store.set_job_fields(job_id, drawn=int(drawn))
            row = dict(row, drawn=int(drawn))
        if not row["drawn"] or now > int(job["challenge_end"]) or head >= draw_block + DRAW_HORIZON_BLOCKS:
            return
        if self.leader_for(job_id, 0, clock - row["submitted_at"]) != self.address:
            return
        with self._chain_lock:
            try:
                tx = self.h.market.open_audit(job_id, as_tuple(jobwatch.job_from_store(job)), sender=self.sender)
            except Exception as e:  # noqa: BLE001 - most often: another operator opened it first
                log.info(json.dumps({"event": "open_audit_reverted", "job_id": job_id, "error": str(e)[:200]}))
                return
        self.metrics.audits_opened.inc()
        log.info(json.dumps({"event": "audit_opened", "job_id": job_id, "gas": tx.gas_used}))

    def _own_audit(self, row: dict) -> dict | None:
        """This operator's audit outcome for the job's current result, or None while it runs
        (started here on the audit worker if it is not running yet)."""
        job_id = int(row["job_id"])
        key = (job_id, _hex32(row["job"]["result_hash"]))
        with self._audit_lock:
            done = self.store.audit_for(*key)
            if done is not None:
                return done
            if key in self._audits_pending or time.monotonic() < self._audit_retry_at.get(key, 0.0):
                return None
            machine_id = int(row["job"]["machine_id"])
            endpoint = next((m["endpoint"] for m in self.store.machines() if m["machine_id"] == machine_id), None)
            urls = jobwatch.provider_urls(row["result_uri"], endpoint)
            self._audits_pending.add(key)
            self._audit_queue.put((key, row["job"], urls))
            return None

    def _audit_worker(self) -> None:
        while not self._stop.is_set():
            try:
                key, job_data, urls = self._audit_queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._run_audit(key, job_data, urls)
            finally:
                with self._audit_lock:
                    self._audits_pending.discard(key)

    def _run_audit(self, key: tuple[int, str], job_data: dict, urls: list[str]) -> None:
        from offchain.oracle.auditor import audit_job

        job_id, result_hex = key
        try:
            out = audit_job(
                jobwatch.job_from_store(job_data),
                urls,
                job_id=job_id,
                device=self.cfg.audit_device,
                fetch_timeout_s=self.cfg.audit_fetch_timeout_s,
                retries=self.cfg.audit_retries,
            )
        except Exception as e:  # noqa: BLE001 - AuditUnavailable or a bug: sign nothing, retry later
            self.metrics.audit_failures.inc()
            self._audit_retry_at[key] = time.monotonic() + self.cfg.audit_retry_s
            log.warning(json.dumps({"event": "audit_failed", "job_id": job_id, "error": f"{type(e).__name__}: {e}"}))
            return
        self.store.record_audit(
            job_id, result_hex, out.valid, out.reason, "0x" + out.evidence_hash.hex(), out.evidence,
            out.executed_units, out.seconds,
        )  # fmt: skip
        self.metrics.audits.labels(valid=str(out.valid).lower(), reason=out.reason).inc()
        self.metrics.audit_seconds.observe(out.seconds)
        self.metrics.audit_executed_units.inc(out.executed_units)
        self.metrics.audited_job_units.inc(int(job_data["compute_units"]))
        log.info(
            json.dumps(
                {
                    "event": "audit",
                    "job_id": job_id,
                    "valid": out.valid,
                    "reason": out.reason,
                    "detail": out.detail[:300],
                    "executions": len(out.executions),
                    "executed_units": out.executed_units,
                    "job_units": int(job_data["compute_units"]),
                    "seconds": round(out.seconds, 3),
                }
            )
        )

    def _verdict_round(self, row: dict, own: dict | None, now: int, clock: int) -> None:
        job_id = int(row["job_id"])
        with self._chain_lock:
            nonce = self.h.hub.verdict_nonce(job_id)
        subject = self._verdict_subject(job_id)
        if self.store.submitted(subject, nonce):
            return
        if self.leader_for(job_id, nonce, clock - row["audit_opened_at"]) != self.address:
            return
        on_record = self.store.signed_for(subject, nonce)
        if on_record is not None:
            report = on_record.report  # never sign a second version: finish the one we signed
        elif own is None and self._own_audit(row) is None:
            return  # our own audit is still running (started now if it was not)
        else:
            own = own or self._own_audit(row)
            report = {
                "job_id": job_id,
                "result_hash": "0x" + _hex32(row["job"]["result_hash"]),
                "valid": own["valid"],
                "evidence_hash": own["evidence_hash"],
                "nonce": nonce,
            }
        with self._proposing_lock:
            self._proposing.add((subject, nonce))
        committee = set(self._audit_committee(job_id))
        waited = clock - row["audit_opened_at"]
        peers = None if waited >= self.cfg.audit_committee_timeout_s else {
            a: u for a, u in self.cfg.peers.items() if a in committee
        }  # fmt: skip
        try:
            gathered = self._gather("verdict", report, peers)
        finally:
            with self._proposing_lock:
                self._proposing.discard((subject, nonce))
        if gathered is None:
            return
        with self._chain_lock:
            late = self.h.chain.blocks.head.timestamp > row["audit_deadline"]
        if late:
            log.info(json.dumps({"event": "verdict_too_late", "job_id": job_id}))
            return
        self._submit("verdict", subject, *gathered, job=jobwatch.job_from_store(row["job"]))

    def handle_sign_verdict(self, report: dict) -> tuple[int, dict]:
        """A peer's proposed JobVerdict: signed when the job is in Audit on-chain for this result
        and nonce, before its deadline, and this operator's own audit reached the same `valid`."""
        try:
            job_id, nonce = int(report["job_id"]), int(report["nonce"])
            result_hex = _hex32(report["result_hash"])
            _hex32(report["evidence_hash"])
            if not isinstance(report["valid"], bool):
                raise ValueError("valid must be true or false")
        except (KeyError, TypeError, ValueError) as e:
            return 400, {"error": f"malformed report: {e}"}
        row = self.store.job(job_id)
        if row is None:
            return 409, {"refused": f"job {job_id} not followed yet", "retry": True}
        with self._chain_lock:
            onchain_nonce = self.h.hub.verdict_nonce(job_id)
            status = self.h.market.job_status(job_id)
            deadline = self.h.market.disputes(job_id).audit_deadline
            now = self.h.chain.blocks.head.timestamp
        reason = None
        if nonce != onchain_nonce:
            reason = f"nonce {nonce} is not the current {onchain_nonce}"
        elif status != JobStatus.AUDIT:
            reason = f"job {job_id} is not in Audit (status {JobStatus(status).name})"
        elif result_hex != _hex32(row["job"]["result_hash"]):
            reason = "result hash is not the job's"
        elif now > deadline:
            reason = "audit deadline passed"
        if reason:
            self.metrics.signatures_refused.labels(kind="verdict", reason="invalid").inc()
            return 409, {"refused": reason}
        subject = self._verdict_subject(job_id)
        existing = self.store.signed_for(subject, nonce)
        digest = self._digest_hex("verdict", report)
        if existing is not None and existing.digest != digest:
            return 200, {"conflict": True, "report": existing.report, "signature": existing.signature}
        with self._proposing_lock:
            busy = (subject, nonce) in self._proposing
        if existing is None and busy:
            self.metrics.signatures_refused.labels(kind="verdict", reason="proposing").inc()
            return 409, {"refused": "I am proposing my own version of this verdict right now"}
        own = self._own_audit(row)
        if own is None:
            self.metrics.signatures_refused.labels(kind="verdict", reason="auditing").inc()
            return 409, {"refused": "my own audit of this job is still running", "retry": True}
        if own["valid"] != report["valid"]:
            self.metrics.signatures_refused.labels(kind="verdict", reason="disagree").inc()
            return 409, {"refused": f"my own audit says valid={own['valid']} ({own['reason']})"}
        sig = self._sign_report("verdict", report)
        if sig is None:
            return 409, {"refused": "already signed another version"}
        self.metrics.signatures_given.labels(kind="verdict").inc()
        return 200, {"signature": sig, "digest": digest, "operator": self.address}

    def audit_record(self, job_id: int) -> dict | None:
        """This operator's audit of the job's current result (GET /audits/<job_id>)."""
        row = self.store.job(job_id)
        if row is None:
            return None
        return self.store.audit_for(job_id, _hex32(row["job"]["result_hash"]))

    # ------------------------------------------------------------------ price feed
    def _price_subject(self, round_id: int) -> str:
        return f"price:{round_id}"

    def _price_digest(self, observation: dict) -> bytes:
        # Computed locally under PriceFeed's domain: never trust an RPC to say what is signed.
        return typed_data_digest(price_typed_data(self.h.price_feed.address, self.chain_id, observation))

    def _read_price(self) -> int | None:
        try:
            return self._price_source()
        except PriceSourceError as e:
            self.metrics.price_source_errors.inc()
            log.warning(json.dumps({"event": "price_source_error", "error": str(e)[:300]}))
            return None

    def own_observation(self, round_id: int, max_observation_age: int, head: int):
        """This operator's signed observation for `round_id` (a `SignedReport`), or None when its
        source fails. At most one usable observation per round: an earlier one is returned while
        it can still be submitted; a new one is signed (attempt k + 1 in the `signed` table) only
        once the earlier one is older than `max_observation_age` on every later block."""
        subject = self._price_subject(round_id)
        wall = int(time.time())
        with self._price_lock:
            attempt, latest = 0, None
            while (rec := self.store.signed_for(subject, attempt)) is not None:
                latest, attempt = rec, attempt + 1
            if latest is not None:
                if int(latest.report["observed_at"]) + max_observation_age >= max(head, wall - PRICE_CLOCK_SLACK_S):
                    return latest
            price = self._read_price()
            if price is None:
                return None
            observation = {"round_id": round_id, "price": price, "observed_at": max(head, wall - PRICE_CLOCK_SLACK_S)}
            digest = "0x" + self._price_digest(observation).hex()
            rec = self.store.sign_once(
                subject, attempt, digest, observation, lambda d: self.sign_digest(bytes.fromhex(d[2:]))
            )
            self.metrics.price_observations.inc()
            return rec

    def _price_state(self) -> dict:
        feed = self.h.price_feed
        with self._chain_lock:
            latest = int(feed.latest_round())
            st = {
                "latest": latest,
                "head": int(self.h.chain.blocks.head.timestamp),
                "max_observation_age": int(feed.max_observation_age()),
                "max_age": int(feed.max_age()),
                "max_deviation_bps": int(feed.max_deviation_bps()),
                "answer": 0,
                "updated_at": 0,
            }
            if latest:
                data = feed.latestRoundData()
                st["answer"], st["updated_at"] = int(data[1]), int(data[3])
        return st

    def price_round(self, clock: int) -> None:
        """Leads the next PriceFeed round when it is due and this operator is its leader."""
        if self._price_source is None or getattr(self.h, "price_feed", None) is None:
            return
        st = self._price_state()
        round_id = st["latest"] + 1
        if st["latest"]:
            self.metrics.price_last.set(st["answer"] / 10**8)
            self.metrics.price_round.set(st["latest"])
        subject = self._price_subject(round_id)
        if self.store.submitted(subject, 0):
            return  # submitted: waiting for the chain to show it
        due_at = st["updated_at"] + self.cfg.price_interval_s if st["latest"] else 0
        if clock >= due_at:
            waited = clock - due_at if st["latest"] else clock
        else:
            # Early round when the own source moved more than price_deviation_bps (checked every
            # PRICE_CHECK_S): only the round's first leader acts on it.
            if time.monotonic() - self._price_checked_at < PRICE_CHECK_S:
                return
            self._price_checked_at = time.monotonic()
            price = self._read_price()
            if price is None or within_deviation(price, st["answer"], self.cfg.price_deviation_bps):
                return
            waited = 0
        if self.leader_for(round_id, 0, waited) != self.address:
            return
        self._lead_price_round(round_id, st, clock)

    def _lead_price_round(self, round_id: int, st: dict, clock: int) -> None:
        max_age = st["max_observation_age"]
        # An observation goes in only if it stays acceptable until the transaction is mined.
        oldest = max(st["head"], clock) + PRICE_SUBMIT_MARGIN_S - max_age
        newest = max(st["head"], int(time.time()))
        collected: dict[str, tuple[dict, str]] = {}

        def accept(signer: str, obs: dict, sig: str) -> None:
            try:
                o = {"round_id": int(obs["round_id"]), "price": int(obs["price"]),
                     "observed_at": int(obs["observed_at"])}  # fmt: skip
                recovered = Account._recover_hash(
                    self._price_digest(o), signature=bytes.fromhex(sig.removeprefix("0x"))
                )
            except (KeyError, TypeError, ValueError) as e:
                log.info(json.dumps({"event": "bad_price_observation", "peer": signer, "error": str(e)[:200]}))
                return
            if recovered.lower() != signer.lower():
                log.warning(json.dumps({"event": "bad_peer_signature", "peer": signer, "kind": "price"}))
            elif o["round_id"] != round_id or o["price"] <= 0 or not oldest <= o["observed_at"] <= newest:
                log.info(json.dumps({"event": "unusable_price_observation", "peer": signer, "observation": o}))
            else:
                collected[recovered] = (o, sig)

        mine = self.own_observation(round_id, max_age, st["head"])
        if mine is not None:
            accept(self.address, mine.report, mine.signature)

        answers = self._ask_peers("sign/price", {"round_id": round_id})
        for peer, ans in answers:
            if ans and isinstance(ans.get("observation"), dict) and ans.get("signature"):
                accept(peer, ans["observation"], ans["signature"])
            else:
                log.info(json.dumps({"event": "peer_refused", "peer": peer, "kind": "price", "answer": ans}))
        with self._chain_lock:
            threshold = int(self.h.hub.threshold())
            operators = int(self.h.hub.operator_count())
        if len(collected) < threshold:
            log.info(json.dumps({"event": "no_quorum_yet", "kind": "price", "round_id": round_id,
                                 "observations": len(collected), "threshold": threshold}))  # fmt: skip
            return
        ordered = sorted(collected.items(), key=lambda kv: int(kv[0], 16))
        prices = sorted(o["price"] for _, (o, _) in ordered)
        median = prices[(len(prices) - 1) // 2]
        fresh = st["latest"] and max(st["head"], clock) <= st["updated_at"] + st["max_age"]
        if fresh and len(ordered) < operators and not within_deviation(median, st["answer"], st["max_deviation_bps"]):
            # The contract would refuse it: a move this large needs every operator (or a stale feed).
            event = {"event": "price_deviation_needs_all_operators", "round_id": round_id, "median": median}
            log.warning(json.dumps({**event, "previous": st["answer"], "observations": len(ordered)}))
            return
        subject = self._price_subject(round_id)
        obs_tuples = [report_tuple(PRICE_FIELDS, o) for _, (o, _) in ordered]
        sigs = [bytes.fromhex(s.removeprefix("0x")) for _, (_, s) in ordered]
        with self._chain_lock:
            try:
                tx = self.h.price_feed.submit_round(round_id, obs_tuples, sigs, sender=self.sender)
            except Exception as e:  # noqa: BLE001
                if "wrong round" in str(e):  # another leader got there first
                    self.store.mark_submitted(subject, 0, "by-peer")
                    return
                raise
        self.store.mark_submitted(subject, 0, str(tx.txn_hash))
        self.metrics.price_rounds_submitted.inc()
        self.metrics.reports_submitted.labels(kind="price").inc()
        self.metrics.price_last.set(median / 10**8)
        self.metrics.price_round.set(round_id)
        log.info(json.dumps({"event": "submitted", "kind": "price", "round_id": round_id, "answer": median,
                             "observations": len(ordered), "gas": tx.gas_used}))  # fmt: skip

    def handle_sign_price(self, body: dict) -> tuple[int, dict]:
        """A leader asks for this operator's own observation of round `round_id`: given only for
        the next round on-chain (never ahead of time)."""
        try:
            round_id = int(body["round_id"])
        except (KeyError, TypeError, ValueError) as e:
            return 400, {"error": f"malformed request: {e}"}
        if self._price_source is None or getattr(self.h, "price_feed", None) is None:
            return 409, {"refused": "this operator has no price source or the deployment has no PriceFeed"}
        st = self._price_state()
        if round_id != st["latest"] + 1:
            self.metrics.signatures_refused.labels(kind="price", reason="invalid").inc()
            return 409, {"refused": f"round {round_id} is not the next round {st['latest'] + 1}"}
        rec = self.own_observation(round_id, st["max_observation_age"], st["head"])
        if rec is None:
            return 503, {"refused": "my price source is unavailable", "retry": True}
        self.metrics.signatures_given.labels(kind="price").inc()
        return 200, {"observation": rec.report, "signature": rec.signature, "operator": self.address}

    # ------------------------------------------------------------------ epoch rewards (Emissions)
    def _rewards_subject(self, epoch: int) -> str:
        return f"rewards:{epoch}"

    def _epoch_end(self, epoch: int) -> int:
        em = self.h.emissions
        if not hasattr(self, "_em_timing"):
            with self._chain_lock:
                self._em_timing = (int(em.GENESIS()), int(em.EPOCH_SECONDS()))
        genesis, seconds = self._em_timing
        return genesis + (epoch + 1) * seconds

    def own_rewards(self, epoch: int, block: int) -> RW.EpochRewards | None:
        """This operator's own rewards tree for `epoch` from the chain at snapshot `block`
        (memoized, and stored so that its proofs are served); None when nothing is due."""
        key = (epoch, block)
        if key in self._rewards_cache:
            return self._rewards_cache[key]
        with self._chain_lock:
            if block > self.h.chain.blocks.height:
                raise ValueError(f"snapshot block {block} is ahead of the head")
            if int(self.h.chain.blocks[block].timestamp) < self._epoch_end(epoch):
                raise ValueError(f"snapshot block {block} is before the end of epoch {epoch}")
            t0 = time.monotonic()
            r = epoch_rewards.build_epoch_rewards(self.h, epoch, block, from_block=int(self.h.record.get("block") or 0))
        self.metrics.rewards_built.inc()
        log.info(json.dumps({"event": "rewards_built", "epoch": epoch, "block": block,
                             "root": "0x" + r.root.hex() if r else None, "leaves": len(r.leaves) if r else 0,
                             "seconds": round(time.monotonic() - t0, 3)}))  # fmt: skip
        if r is not None:
            self.store.record_rewards(epoch, block, "0x" + r.root.hex(), epoch_rewards.rewards_to_json(r, block))
        self._rewards_cache[key] = r
        return r

    def _rewards_match(self, report: dict) -> str | None:
        """None when this operator's own tree at the report's snapshot block has the same root
        and totals; else why not."""
        own = self.own_rewards(int(report["epoch"]), int(report["block"]))
        if own is None:
            return "I find no work and no availability in that epoch"
        if "0x" + own.root.hex() != "0x" + _hex32(report["root"]):
            return f"my root is 0x{own.root.hex()}"
        if own.total_work != int(report["total_work"]) or own.total_availability != int(report["total_availability"]):
            return "my totals differ"
        return None

    def _uptime_settled(self, epoch: int, block: int | None = None) -> bool:
        """Every machine this operator probed in `epoch` has its uptime on-chain (at `block`)."""
        at = {} if block is None else {"block_id": block}
        for m in self.store.machines():
            if self.store.probe_counts(epoch, m["machine_id"])[0] == 0:
                continue
            with self._chain_lock:
                if int(self.h.hub.uptime_nonce(epoch, m["machine_id"], **at)) == 0:
                    return False
        return True

    def _epoch_seen_at(self, epoch: int) -> int | None:
        """Time of the first block at or after the epoch's end (the same for every operator,
        unlike the wall clock when a chain idles): the rewards delays count from it."""
        cache = self.__dict__.setdefault("_epoch_seen", {})
        if epoch not in cache:
            with self._chain_lock:
                head = int(self.h.chain.blocks.height)
                lo = int(self.h.record.get("block") or 0)
                b = epoch_rewards.first_block_at(self.h.chain, self._epoch_end(epoch), lo, head)
                if b > head:
                    return None
                cache[epoch] = int(self.h.chain.blocks[b].timestamp)
        return cache[epoch]

    def rewards_round(self, clock: int) -> None:
        """Finalizes ended Emissions epochs (the epoch's leader) and gets each finalized epoch's
        rewards root posted (leader proposes, peers rebuild and co-sign, leader submits)."""
        em = getattr(self.h, "emissions", None)
        if em is None:
            return
        with self._chain_lock:
            nxt = int(em.next_epoch())
            cur = int(em.current_epoch())
        if cur > nxt and self.leader_for(nxt, 0, clock - self._epoch_end(nxt)) == self.address:
            with self._chain_lock:
                try:
                    tx = em.finalize_epoch(nxt, sender=self.sender)
                except Exception as e:  # noqa: BLE001 - most often: someone else finalized it first
                    log.info(json.dumps({"event": "finalize_epoch_reverted", "epoch": nxt, "error": str(e)[:200]}))
                else:
                    nxt += 1
                    self.metrics.emission_epochs_finalized.inc()
                    log.info(json.dumps({"event": "epoch_finalized", "epoch": nxt - 1, "gas": tx.gas_used}))
        epoch = int(self.store.get_meta("rewards_cursor", "0"))
        while epoch < nxt and self._rewards_epoch(epoch, clock):
            epoch += 1
            self.store.set_meta("rewards_cursor", str(epoch))
            # Done epochs are served from the store: drop their in-memory trees.
            self._rewards_cache = {k: v for k, v in self._rewards_cache.items() if k[0] >= epoch}

    def _rewards_epoch(self, epoch: int, clock: int) -> bool:
        """One step for a finalized epoch's rewards; True once there is nothing left to do."""
        em = self.h.emissions
        subject = self._rewards_subject(epoch)
        with self._chain_lock:
            posted = bytes(em.epochs(epoch).root)
        if posted != b"\x00" * 32:
            self.metrics.rewards_epoch.set(epoch)
            self._adopt_posted(epoch, "0x" + posted.hex())
            return True
        seen = self._epoch_seen_at(epoch)
        delay = self.cfg.rewards_delay_s
        if seen is None or clock < seen + delay or self.store.submitted(subject, 0):
            return False
        if not self._uptime_settled(epoch) and clock < seen + 3 * delay:
            return False
        if self.leader_for(epoch, 0, clock - seen - delay) != self.address:
            return False
        # A proposal that found no quorum is retried (rebuilt at a newer block) at most once per
        # leader timeout: a build reads every machine of the registry.
        if time.monotonic() - self._rewards_tried.get(epoch, -1e9) < max(self.cfg.leader_timeout_s, 5.0):
            return False
        self._rewards_tried[epoch] = time.monotonic()
        on_record = self.store.signed_for(subject, 0)
        if on_record is not None:
            report = on_record.report  # never sign a second version: finish the one we signed
        else:
            with self._chain_lock:
                block = int(self.h.chain.blocks.height)
            own = self.own_rewards(epoch, block)
            if own is None:
                log.info(json.dumps({"event": "rewards_empty", "epoch": epoch, "block": block}))
                return True  # nothing to claim: the budget stays unminted
            report = {**own.report(0), "root": "0x" + own.root.hex(), "block": block}
        with self._proposing_lock:
            self._proposing.add((subject, 0))
        try:
            gathered = self._gather("rewards", report)
        finally:
            with self._proposing_lock:
                self._proposing.discard((subject, 0))
        if gathered is not None:
            self._submit("rewards", subject, *gathered)
        return False

    def _adopt_posted(self, epoch: int, root: str) -> None:
        """Makes sure this operator can serve proofs for the posted root: its own tree if it has
        one with that root, else it rebuilds at the snapshot block its peers name for it."""
        if self.store.rewards_for(epoch, root=root) is not None:
            return
        blocks: list[int] = []
        mine = self.store.signed_for(self._rewards_subject(epoch), 0)
        if mine is not None:
            blocks.append(int(mine.report["block"]))
        for url in self.cfg.peers.values():
            try:
                d = requests.get(f"{url}/rewards/{epoch}", timeout=10).json()
                blocks.append(int(d["block"]))
            except (requests.RequestException, ValueError, KeyError, TypeError):
                continue
        for block in dict.fromkeys(blocks):
            try:
                r = self.own_rewards(epoch, block)
            except ValueError:
                continue
            if r is not None and "0x" + r.root.hex() == root:
                return
        log.warning(json.dumps({"event": "posted_root_not_rebuilt", "epoch": epoch, "root": root}))

    def handle_sign_rewards(self, report: dict) -> tuple[int, dict]:
        """A leader's EpochRewards: signed when the epoch is finalized with no root yet and this
        operator's own tree, built from the chain at the proposal's snapshot block, is identical."""
        try:
            epoch, nonce = int(report["epoch"]), int(report["nonce"])
            int(report["block"])
            _hex32(report["root"])
            int(report["total_work"]), int(report["total_availability"])
        except (KeyError, TypeError, ValueError) as e:
            return 400, {"error": f"malformed report: {e}"}
        em = getattr(self.h, "emissions", None)
        if em is None:
            return 409, {"refused": "this deployment has no Emissions contract"}
        with self._chain_lock:
            finalized = epoch < int(em.next_epoch())
            posted = bytes(em.epochs(epoch).root) != b"\x00" * 32
            onchain_nonce = int(em.rewards_nonce(epoch))
        reason = None
        if not finalized:
            reason = f"epoch {epoch} is not finalized"
        elif posted:
            reason = f"epoch {epoch} already has its root"
        elif nonce != onchain_nonce:
            reason = f"nonce {nonce} is not the current {onchain_nonce}"
        else:
            try:
                reason = self._rewards_match(report)
                seen = self._epoch_seen_at(epoch)
                with self._chain_lock:
                    snapshot_ts = int(self.h.chain.blocks[int(report["block"])].timestamp)
                if reason is None and (seen is None or snapshot_ts < seen + 3 * self.cfg.rewards_delay_s):
                    if not self._uptime_settled(epoch, int(report["block"])):
                        reason = "uptime of machines I probed is not on-chain at the snapshot block yet"
            except ValueError as e:
                reason = str(e)
        if reason:
            self.metrics.signatures_refused.labels(kind="rewards", reason="invalid").inc()
            return 409, {"refused": reason}
        subject = self._rewards_subject(epoch)
        existing = self.store.signed_for(subject, nonce)
        digest = self._digest_hex("rewards", report)
        if existing is not None and existing.digest != digest:
            return 200, {"conflict": True, "report": existing.report, "signature": existing.signature}
        with self._proposing_lock:
            busy = (subject, nonce) in self._proposing
        if existing is None and busy:
            self.metrics.signatures_refused.labels(kind="rewards", reason="proposing").inc()
            return 409, {"refused": "I am proposing my own version of these rewards right now"}
        sig = self._sign_report("rewards", report)
        if sig is None:
            return 409, {"refused": "already signed another version"}
        self.metrics.signatures_given.labels(kind="rewards").inc()
        return 200, {"signature": sig, "digest": digest, "operator": self.address}

    def rewards_record(self, epoch: int) -> dict | None:
        """GET /rewards/<epoch>: this operator's tree for the epoch (the posted root's when it
        has it, else its latest), with `posted` telling whether it is the root on-chain."""
        em = getattr(self.h, "emissions", None)
        if em is None:
            return None
        with self._chain_lock:
            onchain = bytes(em.epochs(epoch).root)
        onchain_hex = "0x" + onchain.hex() if onchain != b"\x00" * 32 else None
        rec = (self.store.rewards_for(epoch, root=onchain_hex) if onchain_hex else None) or self.store.rewards_for(
            epoch
        )
        if rec is None:
            return None
        return {**rec, "posted": rec["root"] == onchain_hex, "onchain_root": onchain_hex, "operator": self.address}

    def rewards_proof(self, epoch: int, provider: str) -> dict | None:
        """GET /rewards/<epoch>/<provider>: the provider's leaf fields and Merkle proof."""
        rec = self.rewards_record(epoch)
        if rec is None:
            return None
        r = epoch_rewards.rewards_from_json(rec)
        try:
            p = to_checksum_address(provider)
        except ValueError:
            return None
        if p not in r.leaves:
            return None
        work, availability = r.leaves[p]
        return {
            "epoch": epoch,
            "provider": p,
            "work_units": str(work),
            "availability_weight": str(availability),
            "proof": ["0x" + x.hex() for x in r.proofs[p]],
            "root": rec["root"],
            "posted": rec["posted"],
            "block": rec["block"],
        }

    # ------------------------------------------------------------------ HTTP
    def _start_http(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # structured logs only
                return

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/health":
                    ok = service.healthy and not service._stop.is_set()
                    body = {"ok": ok, "operator": service.address, "last_error": service.last_error}
                    self._send(200 if ok else 503, json.dumps(body).encode())
                elif self.path == "/metrics":
                    self._send(200, generate_latest(service.metrics.registry), "text/plain; version=0.0.4")
                elif self.path.startswith("/audits/") and self.path.removeprefix("/audits/").isdigit():
                    rec = service.audit_record(int(self.path.removeprefix("/audits/")))
                    if rec is None:
                        self._send(404, b'{"error": "no audit of this job by this operator"}')
                    else:
                        self._send(200, json.dumps(rec).encode())
                elif self.path.startswith("/rewards/"):
                    parts = self.path.removeprefix("/rewards/").split("/")
                    if not parts[0].isdigit() or len(parts) > 2:
                        self._send(404, b'{"error": "try /rewards/<epoch> or /rewards/<epoch>/<provider>"}')
                        return
                    try:
                        with service._chain_lock:
                            out = (service.rewards_record(int(parts[0])) if len(parts) == 1
                                   else service.rewards_proof(int(parts[0]), parts[1]))  # fmt: skip
                    except Exception as e:  # noqa: BLE001 - a bad address, an RPC error
                        self._send(400, json.dumps({"error": str(e)[:200]}).encode())
                        return
                    if out is None:
                        self._send(404, b'{"error": "no rewards (or no leaf) for this epoch at this operator"}')
                    else:
                        self._send(200, json.dumps(out).encode())
                else:
                    self._send(
                        404, b'{"error": "unknown path: try /health, /metrics, /audits/<job_id>, /rewards/<epoch>"}'
                    )

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                if self.path == "/sign/price":
                    try:
                        body = json.loads(self.rfile.read(length) or b"{}")
                    except ValueError:
                        body = None
                    if not isinstance(body, dict):
                        self._send(400, b'{"error": "body must be JSON {\\"round_id\\": N}"}')
                        return
                    code, out = service.handle_sign_price(body)
                    self._send(code, json.dumps(out).encode())
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    report = body["report"]
                except (ValueError, KeyError):
                    self._send(400, b'{"error": "body must be JSON {\\"report\\": {...}}"}')
                    return
                if self.path == "/sign/attestation":
                    code, out = service.handle_sign_attestation(report)
                elif self.path == "/sign/uptime":
                    code, out = service.handle_sign_uptime(report)
                elif self.path == "/sign/verdict":
                    code, out = service.handle_sign_verdict(report)
                elif self.path == "/sign/rewards":
                    code, out = service.handle_sign_rewards(report)
                else:
                    code, out = (
                        404,
                        {"error": "unknown path: POST /sign/<attestation|uptime|verdict|rewards|price>"},
                    )
                self._send(code, json.dumps(out).encode())

        self.server = ThreadingHTTPServer((self.cfg.host, self.cfg.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
