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
   that the draw selected (AuditBeacon's seed for the job's `draw_round`, or every job of a
   round degraded for want of reveals: `offchain.chain.beacon`) is in audit with no
   transaction: JobMarket takes a verdict on it until `challenge_end + audit_timeout`. The
   reveals themselves (7.) run on their own thread: `beacon_duty`. The job's
   **audit committee** -- `threshold` operators in rotation order from the job's first leader --
   audits it at once on a background thread with `auditor.audit_job` (fetch spec/inputs/output
   from the provider, re-execute, compare, escalate to a third execution before "invalid") and
   keeps the outcome per (job, result hash). The verdict's leader is a committee member (the
   members in turn, one more every `leader_timeout_s`); it asks only the committee to co-sign
   for `audit_committee_timeout_s` from its first ask; after that it asks every peer, and a
   peer asked to co-sign runs its own audit first. So a job is re-executed `threshold` times,
   not once per operator, unless a committee member is down or disagrees. The leader proposes
   a JobVerdict {job_id, result_hash, valid, evidence_hash of its own evidence, nonce = 0: a
   verdict ends the job}, gathers co-signatures (POST /sign/verdict) and posts the cycle's
   verdicts with one `hub.submit_verdicts` before their audit deadlines.
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
   more than `price_deviation_bps` from it), and never before the feed's `min_round_interval`,
   the leader of the next round (`leader_for(latest_round + 1, 0, seconds since it fell due)`)
   picks a round id r > latest_round it has not abandoned, signs its own PriceObservation
   {r, price, observed_at}, asks every peer for theirs (POST /sign/price {"round_id": r} ->
   {observation, signature}), checks each signature and freshness, and submits every valid
   observation with `submit_round` (the contract takes the lower median) unless they spread
   wider than the feed's `max_spread_bps`. An operator signs at most ONE observation per round
   id, ever (a second would be equivocation, slashed through OracleHub): once its observation
   for r is older than `max_observation_age` (it can no longer be submitted), or the round's
   observations disagree, r is abandoned and the next attempt uses r + 1 (PriceFeed accepts ids
   with gaps), so a stalled round never locks the feed and no submitter ever has two
   observations of one operator for one round to choose from.

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

7. Audit beacon (AuditBeacon, `beacon_duty`): the operator commits a hash chain derived from its
   key and reveals its next value for every round that submitted jobs are drawn from, once the
   round has started on-chain and within the reveal window.

Where the parts live: this module holds the loop, the configuration and the start-up checks.
Each duty is a module of its own, a mixin of `OracleService` with its rounds, its co-signing
handler and its `Duty` (subject, signed data, agreement rule, submission): `attestations` (2),
`uptime_rounds` (3), `verdicts` (4), `rewards_rounds` (6); `price_rounds` (5) gathers signed
observations instead of reports. They share one quorum core, `quorum` (asking the peers,
tallying versions, signing at most one version, submitting), and one view of the chain,
`following` (1 and 4's events through `offchain.chain.follow`). `beacon_duty` (7) runs beside
them on a thread; the HTTP API is `http_api` (on aiohttp); shared constants are in `common`.

Metrics (Prometheus text format) at GET /metrics; GET /health answers {"ok": ...}. A circuit
breaker stops the service when an invariant it relies on breaks (the chain id or the hub
address changes under the same database, or the operator is no longer registered).
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from offchain.chain import keys
from offchain.economics import rewards as RW
from offchain.http_server import HttpServer
from offchain.oracle import beacon_duty
from offchain.oracle.attestations import ATTESTATION, AttestationsMixin
from offchain.oracle.common import (  # noqa: F401 - PRICE_CLOCK_SLACK_S is re-exported (tests)
    OUTCOME_CODES,
    PRICE_CLOCK_SLACK_S,
    CircuitBreaker,
    FairRLock,
    _hex32,
    log,
)
from offchain.oracle.following import CURSOR, FollowingMixin
from offchain.oracle.http_api import start_http
from offchain.oracle.hwschedule import HardwareSchedule
from offchain.oracle.metrics import Metrics
from offchain.oracle.price_rounds import PriceRoundsMixin
from offchain.oracle.pricing import parse_price_source
from offchain.oracle.quorum import CRASH_ENV, CRASH_EXIT_CODE, QuorumMixin  # noqa: F401 - re-exported
from offchain.oracle.rewards_rounds import REWARDS, RewardsRoundsMixin
from offchain.oracle.store import Store
from offchain.oracle.uptime_rounds import UPTIME, UptimeRoundsMixin
from offchain.oracle.verdicts import VERDICT, VerdictsMixin
from offchain.sealing import Keyring

OPERATOR_CHECK_S = 10.0  # how often the service checks it is still a registered operator


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
    # X25519 keys for sealed jobs (offchain/sealing.py); None: "<db name>.keys.json" beside it.
    key_file: str | None = None
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
    # Blocks a reorganisation may replace (offchain.chain.follow); None: 0 on a local dev chain, else 12.
    reorg_depth: int | None = None
    # Test hook (`make faults`): GPUNET_ORACLE_CRASH_AT=quorum:<kind> exits at once (status 75, no
    # cleanup) when this operator has gathered a quorum for a <kind> report and not submitted it.
    crash_at: str | None = field(default_factory=lambda: os.environ.get(CRASH_ENV) or None)

    def __post_init__(self) -> None:
        kinds = ("attestation", "uptime", "verdict", "rewards")
        if self.crash_at is not None and self.crash_at not in [f"quorum:{k}" for k in kinds]:
            raise ValueError(f"{CRASH_ENV} must be quorum:<{'|'.join(kinds)}>, not {self.crash_at!r}")


class OracleService(
    FollowingMixin,
    QuorumMixin,
    AttestationsMixin,
    VerdictsMixin,
    PriceRoundsMixin,
    RewardsRoundsMixin,
    UptimeRoundsMixin,
):
    # The report duties over the one quorum core (offchain/oracle/quorum.py).
    DUTIES = {d.kind: d for d in (ATTESTATION, UPTIME, VERDICT, REWARDS)}

    def __init__(self, config: OracleConfig):
        self.cfg = config
        self.account = Account.from_key(config.operator_key)
        self.address = self.account.address
        self.store = Store(config.db_path)
        self.metrics = Metrics()
        self._chain_lock = FairRLock()  # FIFO: the beacon duty's reveals must not starve
        self._operator_checked_at = -1e18
        self._cycle_head_ts: int | None = None
        self.hw = HardwareSchedule(retry_s=config.hw_retry_s, max_backoff_s=config.hw_max_backoff_s)
        if config.fail_confirmations < 1 or config.confirm_delay_s < 0:
            raise ValueError("oracle: fail_confirmations >= 1 and confirm_delay_s >= 0")
        # (subject, nonce) this operator is proposing right now: while in flight it co-signs no
        # other version, so two concurrent leaders cannot each sign the other's report and
        # leave every version one signature short (see `_gather`).
        self._proposing: set[tuple[str, int]] = set()
        self._first_asked: dict[str, int] = {}  # verdict subject -> when this leader first asked its committee
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
        self._price_floor = 0  # lowest round id this operator may still lead (abandoned ids below)
        # (epoch, snapshot block) -> own rewards built there (None: no leaves).
        self._rewards_cache: dict[tuple[int, int], RW.EpochRewards | None] = {}
        self._rewards_tried: dict[int, float] = {}  # epoch -> monotonic time of the last proposal
        self._stop = threading.Event()
        self.healthy = True
        self.index_synced = False  # set once the events are followed to a head read (following.py)
        self.keyring: Keyring | None = None  # set at start when the deployment has a KeyDirectory
        self._key_published = False
        self.last_error: str | None = None
        self.server: HttpServer | None = None

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

    def _setup_keys(self) -> None:
        """This operator's encryption keys (to open the sealed jobs it audits), next to its
        database; the current one is published in KeyDirectory if it is not there yet."""
        if not keys.has_directory(self.h):
            return
        path = self.cfg.key_file or str(Path(self.cfg.db_path).with_name(Path(self.cfg.db_path).stem + ".keys.json"))
        self.keyring = Keyring.load_or_create(path, self.address, published=False)
        self._publish_key()

    def _publish_key(self) -> None:
        """Publishes the key unless it is on-chain already; a failure (another process sending
        from this account at the same moment) is retried every cycle."""
        if self.keyring is None or self._key_published:
            return
        try:
            with self._chain_lock:
                sent = keys.publish(self.h, self.sender, self.keyring)
        except Exception as e:  # noqa: BLE001 - retried next cycle; audits of sealed jobs wait for it
            log.warning(json.dumps({"event": "encryption_key_error", "error": f"{type(e).__name__}: {e}"[:300]}))
            return
        self._key_published = True
        log.info(json.dumps({"event": "encryption_key", "published": sent, "version": self.keyring.current}))

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
            self._setup_keys()
            threading.Thread(target=self._audit_worker, name="audit", daemon=True).start()
            self.beacon_duty = beacon_duty.start_for_service(self)  # reveals on a thread of their own
            self.server = start_http(self)
            self.port = self.server.server_address[1]
            log.info(
                json.dumps(
                    {
                        "event": "started",
                        "operator": self.address,
                        "port": self.port,
                        "threshold": self.threshold,
                        # where it resumes: the blocks its stored cursors say were processed (-1: none)
                        CURSOR: int(self.store.get_meta(CURSOR, "-1")),
                    }  # fmt: skip
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
            if time.monotonic() - self._operator_checked_at > OPERATOR_CHECK_S:
                if not self.h.hub.is_operator(self.address):
                    raise CircuitBreaker(f"{self.address} was removed from the operator set")
                self._operator_checked_at = time.monotonic()
            now = self.h.chain.blocks.head.timestamp
            self._cycle_head_ts = int(now)  # the cycle's one head read, for its rounds
        # Chain time when the chain moves, wall time when it idles (a dev chain mines only on
        # transactions): leader rotation and uptime epochs must advance either way.
        clock = max(now, int(time.time()))
        self._publish_key()
        self.jobs_round(now, clock)
        for m in self.store.machines():
            if self._needs_attestation(m, now):
                self.attest(m, now, clock)
        self.uptime_round(clock)
        self.price_round(clock)
        self.rewards_round(clock)
