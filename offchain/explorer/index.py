"""The explorer's index: one SQLite file per deployment, kept current from every contract's events.

`ExplorerIndex(h).sync()` reads the events since its cursor with `offchain.chain.follow` (one
`eth_getLogs` per chunk of blocks for every contract of the deployment) and writes, per chunk
and in one transaction:
- `events`: every event (a token Transfer only when it mints or burns), with its block time,
  for the job, provider, machine and operator histories;
- `jobs`, `machines`, `providers`, `operators`: the current state each event leaves;
- `signatures`: who signed each attestation, uptime report and verdict, recovered from the
  report transaction's calldata (events carry only how many signed);
- `attestations`: each attestation and its measured figures (from its event).

After each sync, each provider an event touched reads its stake, reputation and audit rate
again, and the operators their stake and membership, when an event named one (views: a slash or
a lock moves a stake, and reputation changes, without an event of their own).

Like the client's market index it is a cache: named by chain id, registry and deployment block
hash, rebuilt from the deployment block after a reorganisation or when deleted. Amounts are
token wei as decimal text (they pass 2^63); views sum them in Python.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from eth_utils import keccak

from offchain.chain.events import start_block
from offchain.chain.follow import Follower, Source, default_reorg_depth
from offchain.chain.jobs import MARKET_EVENTS
from offchain.chain.views import read_many
from offchain.constants import JobStatus, MachineStatus
from offchain.explorer.signers import finding, report_signers
from offchain.sqlite_store import SqliteStore


def sql_job_id(job_id: Any) -> Any:
    """A job id as SQLite can hold it: create_job's ids as integers; a signed order's job (its id
    the order's 256-bit digest, beyond SQLite's 64-bit integers) as 0x-hex text, which no
    integer id equals. The index lists create_job's jobs; order jobs appear in the events."""
    if job_id is None or int(job_id) < 2**63:
        return job_id
    return hex(int(job_id))


SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx TEXT NOT NULL, time INTEGER NOT NULL,
    contract TEXT NOT NULL, name TEXT NOT NULL, job_id INTEGER, provider TEXT, machine_id INTEGER,
    operator TEXT, epoch INTEGER, args TEXT NOT NULL, PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS events_name ON events (name);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_provider ON events (provider) WHERE provider IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_machine ON events (machine_id) WHERE machine_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_operator ON events (operator) WHERE operator IS NOT NULL;
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY, user TEXT NOT NULL, provider TEXT NOT NULL, class_id INTEGER NOT NULL,
    units TEXT NOT NULL, payment TEXT NOT NULL, usd_value TEXT NOT NULL, collateral TEXT NOT NULL,
    fee_bps INTEGER NOT NULL, audit_bps INTEGER, machine_id INTEGER, status TEXT NOT NULL,
    created INTEGER NOT NULL, accepted INTEGER, submitted INTEGER, ended INTEGER, accept_by INTEGER,
    complete_by INTEGER, challenge_end INTEGER, audit_deadline INTEGER, result_hash TEXT,
    disputed INTEGER NOT NULL DEFAULT 0, drawn INTEGER NOT NULL DEFAULT 0, verdict INTEGER,
    signers INTEGER, audit_timed_out INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_provider ON jobs (provider);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs (user);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS machines (
    machine_id INTEGER PRIMARY KEY, provider TEXT NOT NULL, class_id INTEGER NOT NULL, gpu_count INTEGER,
    vram_mb INTEGER, endpoint TEXT, status TEXT NOT NULL, attested_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS machines_provider ON machines (provider);
CREATE TABLE IF NOT EXISTS attestations (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, machine_id INTEGER NOT NULL, provider TEXT NOT NULL,
    outcome INTEGER NOT NULL, class_id INTEGER NOT NULL, fp32_gflops INTEGER, bf16_gflops INTEGER,
    bandwidth_gbs INTEGER, nonce INTEGER, time INTEGER NOT NULL, PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS attestations_machine ON attestations (machine_id);
CREATE TABLE IF NOT EXISTS signatures (
    kind TEXT NOT NULL, subject TEXT NOT NULL, nonce INTEGER NOT NULL, operator TEXT NOT NULL,
    finding TEXT NOT NULL, block INTEGER NOT NULL, PRIMARY KEY (kind, subject, nonce, operator)
);
CREATE INDEX IF NOT EXISTS signatures_operator ON signatures (operator);
CREATE TABLE IF NOT EXISTS providers (
    address TEXT PRIMARY KEY, staked TEXT NOT NULL DEFAULT '0', reputation TEXT, audit_bps INTEGER,
    dirty INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS operators (
    address TEXT PRIMARY KEY, active INTEGER NOT NULL DEFAULT 0, stake TEXT NOT NULL DEFAULT '0'
);
"""

REGISTRY_EVENTS = (
    "GpuClassSet",
    "MachineRegistered",
    "MachineStatusChanged",
    "AttestationRecorded",
    "EndpointUpdated",
    "Staked",
    "UnstakeRequested",
    "Withdrawn",
    "OfferSet",
    "Slashed",
)
HUB_EVENTS = (
    "OperatorUnstakeRequested",
    "OperatorAdded",
    "OperatorRemoved",
    "OperatorStaked",
    "OperatorWithdrawn",
    "AttestationAccepted",
    "UptimeRecorded",
    "VerdictAccepted",
    "EquivocationProven",
    "ThresholdSet",
)
SOURCES = (
    ("market", MARKET_EVENTS),
    ("registry", REGISTRY_EVENTS),
    ("hub", HUB_EVENTS),
    ("settlement", ("Settled",)),
    ("price_feed", ("RoundAccepted",)),
    ("emissions", ("EpochFinalized", "RewardsPosted", "Claimed")),
    ("token", ("Transfer",)),
)
ZERO = "0x" + "00" * 20
SLASH_REASONS = {
    keccak(text=t).hex(): name
    for t, name in (
        ("HARDWARE_MISREPORT", "hardware misreport"),
        ("NO_SHOW", "no-show"),
        ("INVALID_RESULT", "invalid result"),
    )
}


def index_dir() -> Path:
    if os.environ.get("GPUNET_EXPLORER_DIR"):
        return Path(os.environ["GPUNET_EXPLORER_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpunet" / "explorer"


def plain(v: Any) -> Any:
    """An event argument as JSON: bytes as 0x-hex, addresses as lower-case text, ints exact."""
    if isinstance(v, bytes | bytearray):
        return "0x" + bytes(v).hex()
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, str) and v.startswith("0x") and len(v) == 42:
        return v.lower()
    if isinstance(v, list | tuple):
        return [plain(x) for x in v]
    return str(v)


class ExplorerIndex(SqliteStore):
    """The index of one deployment (`h`: handles from `offchain.chain.client.connect`)."""

    SCHEMA = SCHEMA
    SYNCHRONOUS = "NORMAL"  # a cache: rebuilt from the chain if a power loss drops a commit

    def __init__(self, h: Any, path: Path | None = None):
        self.h = h
        self.start = start_block(h)
        if path is None:
            deploy = h.chain.blocks[self.start].hash
            tag = (deploy.hex() if isinstance(deploy, bytes) else str(deploy)).removeprefix("0x")[:16]
            path = index_dir() / f"{h.chain.chain_id}-{h.registry.address.lower()}-{tag}.sqlite"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path)
        self.chain_id = int(h.chain.chain_id)
        self.contracts = {name: getattr(h, name, None) for name, _ in SOURCES}
        self.names = {c.address.lower(): n for n, c in self.contracts.items() if c is not None}
        sources = [Source(c, ev) for (name, ev) in SOURCES if (c := self.contracts[name]) is not None]
        self.follower = Follower(
            h.chain,
            sources,
            self,
            "cursor",
            start_block=self.start,
            reorg_depth=default_reorg_depth(self.chain_id),
            on_reorg=self.clear,
        )
        self._sync_lock = threading.Lock()
        self._times: dict[int, int] = {}
        self._calls: dict[str, list[tuple[str, int, str, str]]] = {}
        self._save_constants()

    def _save_constants(self) -> None:
        """What the views need and no event says: epoch length and start, the operator quorum."""
        h, meta = self.h, {"chain_id": str(self.chain_id), "start_block": str(self.start)}
        if getattr(h, "emissions", None) is not None:
            meta["epoch_seconds"] = str(int(h.emissions.EPOCH_SECONDS()))
            meta["genesis"] = str(int(h.emissions.GENESIS()))
        meta["threshold"] = str(int(h.hub.threshold()))
        meta["contracts"] = json.dumps({n: c.address for n, c in self.contracts.items() if c is not None})
        self.set_metas(meta)

    def clear(self) -> None:
        self._calls.clear()
        self._times.clear()
        with self.transaction():
            for table in (
                "blocks",
                "events",
                "jobs",
                "machines",
                "attestations",
                "signatures",
                "providers",
                "operators",
            ):
                self.write(f"DELETE FROM {table}")

    # ---------------------------------------------------------------------------- sync
    def sync(self) -> int:
        """Reads the chain up to its head; returns the new cursor (the last block indexed)."""
        with self._sync_lock:
            head = int(self.h.chain.blocks.head.number)
            cursor = self.follower.follow(head, self._handle)
            self._refresh_providers()
            self._refresh_operators()
            self.set_meta("synced_head", str(cursor))
            return cursor

    def _time(self, block: int) -> int:
        if block not in self._times:
            row = self.read_one("SELECT time FROM blocks WHERE number = ?", (block,))
            self._times[block] = int(row[0]) if row else int(self.h.chain.blocks[block].timestamp)
        return self._times[block]

    def _handle(self, logs: list[Any], start: int, stop: int) -> None:
        # A chunk that failed half-way was rolled back: look its transactions up again.
        self._calls.clear()
        with self.transaction():
            for lg in logs:
                self._one(lg)
            if stop >= start:
                self.write("INSERT OR REPLACE INTO blocks VALUES (?, ?)", (stop, self._time(stop)))
        self._calls.clear()
        if len(self._times) > 10_000:
            self._times.clear()

    def _one(self, lg: Any) -> None:
        contract = self.names.get(str(lg.contract_address).lower(), "?")
        name = str(lg.event_name)
        a = {k: plain(v) for k, v in lg.event_arguments.items()}
        block, index = int(lg.block_number), int(lg.log_index)
        tx = plain(lg.transaction_hash)
        if name == "Transfer":
            addrs = [v for v in a.values() if isinstance(v, str) and len(v) == 42]
            if len(addrs) < 2 or ZERO not in addrs[:2]:
                return  # only mints and burns
        t = self._time(block)
        self.write("INSERT OR IGNORE INTO blocks VALUES (?, ?)", (block, t))
        provider = a.get("provider")
        operator = a.get("operator")
        self.write(
            "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                block,
                index,
                tx,
                t,
                contract,
                name,
                sql_job_id(a.get("job_id")),
                provider,
                a.get("machine_id"),
                operator,
                a.get("epoch"),
                json.dumps(a),
            ),
        )
        handler = getattr(self, f"_on_{name}", None)
        if handler is not None:
            handler(a, t, block, index, tx)
        if operator and contract == "hub":
            self.write("INSERT OR IGNORE INTO operators (address) VALUES (?)", (operator,))
            self.set_meta("operators_dirty", "1")
        if provider and provider != ZERO and contract in ("market", "registry"):
            self.write(
                "INSERT INTO providers (address) VALUES (?) ON CONFLICT(address) DO UPDATE SET dirty = 1", (provider,)
            )

    # ---------------------------------------------------------------------------- jobs
    def _job(self, job_id: int, sql: str, args: tuple) -> None:
        self.write(f"UPDATE jobs SET {sql} WHERE job_id = ?", (*args, sql_job_id(job_id)))

    def _on_JobCreated(self, a: dict, t: int, *_: Any) -> None:  # noqa: N802 - named for the event
        self.write(
            "INSERT OR REPLACE INTO jobs (job_id, user, provider, class_id, units, payment, usd_value, collateral,"
            " fee_bps, status, created, accept_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                a["job_id"],
                a["user"],
                a["provider"],
                a["class_id"],
                str(a["compute_units"]),
                str(a["payment"]),
                str(a["usd_value"]),
                str(a["collateral"]),
                a["fee_bps"],
                JobStatus.OPEN.name,
                t,
                a["accept_by"],
            ),
        )

    def _on_JobAccepted(self, a: dict, t: int, *_: Any) -> None:  # noqa: N802
        self._job(
            a["job_id"],
            "status = ?, provider = ?, machine_id = ?, accepted = ?, complete_by = ?, collateral = ?, audit_bps = ?",
            (
                JobStatus.RUNNING.name,
                a["provider"],
                a["machine_id"],
                t,
                a["complete_by"],
                str(a.get("collateral", 0)),
                a.get("audit_bps"),
            ),
        )

    def _on_ResultSubmitted(self, a: dict, t: int, *_: Any) -> None:  # noqa: N802
        self._job(
            a["job_id"],
            "status = ?, submitted = ?, result_hash = ?, challenge_end = ?",
            (JobStatus.SUBMITTED.name, t, a["result_hash"], a["challenge_end"]),
        )

    def _on_JobDisputed(self, a: dict, t: int, *_: Any) -> None:  # noqa: N802
        self._job(
            a["job_id"], "status = ?, disputed = 1, audit_deadline = ?", (JobStatus.AUDIT.name, a["audit_deadline"])
        )

    def _on_VerdictPosted(self, a: dict, *_: Any) -> None:  # noqa: N802
        # A verdict on a job nobody disputed: the job was drawn for audit.
        self._job(
            a["job_id"], "verdict = ?, drawn = CASE WHEN disputed = 0 THEN 1 ELSE drawn END", (1 if a["valid"] else 0,)
        )

    def _on_VerdictAccepted(self, a: dict, t: int, block: int, index: int, tx: str) -> None:  # noqa: N802
        self._job(a["job_id"], "signers = ?", (a["signers"],))
        self._signers(tx, block)

    def _end(self, a: dict, t: int, status: JobStatus) -> None:
        self._job(a["job_id"], "status = ?, ended = ?", (status.name, t))

    def _on_JobFinalized(self, a: dict, t: int, *_: Any) -> None:  # noqa: N802
        self._end(a, t, JobStatus.FINALIZED)
        if a.get("audit_timed_out"):
            self._job(a["job_id"], "audit_timed_out = 1, drawn = CASE WHEN disputed = 0 THEN 1 ELSE drawn END", ())

    def _on_JobFailed(self, a: dict, t: int, *_: Any) -> None:  # noqa: N802
        self._end(a, t, JobStatus.FAILED)

    def _on_JobCancelled(self, a: dict, t: int, *_: Any) -> None:  # noqa: N802
        self._end(a, t, JobStatus.CANCELLED)

    def _on_JobExpired(self, a: dict, t: int, *_: Any) -> None:  # noqa: N802
        self._end(a, t, JobStatus.EXPIRED)

    # ---------------------------------------------------------------------------- machines and stake
    def _on_MachineRegistered(self, a: dict, *_: Any) -> None:  # noqa: N802
        self.write(
            "INSERT OR REPLACE INTO machines (machine_id, provider, class_id, gpu_count, vram_mb, endpoint, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                a["machine_id"],
                a["provider"],
                a["class_id"],
                a["gpu_count"],
                a["vram_mb"],
                a["endpoint"],
                MachineStatus.PENDING.name,
            ),
        )

    def _on_MachineStatusChanged(self, a: dict, *_: Any) -> None:  # noqa: N802
        self.write(
            "UPDATE machines SET status = ? WHERE machine_id = ?",
            (MachineStatus(a["new_status"]).name, a["machine_id"]),
        )

    def _on_AttestationRecorded(self, a: dict, *_: Any) -> None:  # noqa: N802
        self.write(
            "UPDATE machines SET attested_until = ? WHERE machine_id = ?", (a["attested_until"], a["machine_id"])
        )

    def _on_EndpointUpdated(self, a: dict, *_: Any) -> None:  # noqa: N802
        self.write("UPDATE machines SET endpoint = ? WHERE machine_id = ?", (a["endpoint"], a["machine_id"]))

    def _on_AttestationAccepted(self, a: dict, t: int, block: int, index: int, tx: str) -> None:  # noqa: N802
        self._signers(tx, block)  # who signed: the event only says how many
        self.write(
            "INSERT OR REPLACE INTO attestations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (block, index, a["machine_id"], a["provider"], a["outcome"], a["class_id"], a.get("fp32_gflops"),
             a.get("bf16_gflops"), a.get("bandwidth_gbs"), a.get("nonce"), t),
        )  # fmt: skip

    # ---------------------------------------------------------------------------- operators
    # Operators' rows: any hub event naming an operator (added, removed, staked, unstaking,
    # withdrawn, equivocation slashed) marks the set to read again after the sync
    # (`_refresh_operators`: stake and membership are views).
    def _on_ThresholdSet(self, a: dict, *_: Any) -> None:  # noqa: N802
        self.set_meta("threshold", str(a["threshold"]))

    def _on_UptimeRecorded(self, a: dict, t: int, block: int, index: int, tx: str) -> None:  # noqa: N802
        self._signers(tx, block)

    def _signers(self, tx: str, block: int) -> list[tuple[str, str, dict, list[str]]]:
        """(kind, subject, report, signers) of each report in OracleHub call `tx`
        (`signers.report_signers`), written to `signatures` (once per transaction)."""
        if tx not in self._calls:
            self._calls[tx] = report_signers(self.h.hub, self.chain_id, self.h.chain.provider.web3, tx)
            for kind, subject, report, signers in self._calls[tx]:
                for who in signers:
                    self.write(
                        "INSERT OR REPLACE INTO signatures VALUES (?, ?, ?, ?, ?, ?)",
                        (kind, subject, int(report["nonce"]), who, finding(kind, report), block),
                    )
        return self._calls[tx]

    # ---------------------------------------------------------------------------- live reads
    def _refresh_operators(self) -> None:
        """Each operator's stake and membership, read again after an event named one (one
        batched request: `read_many`)."""
        if self.get_meta("operators_dirty") != "1":
            return
        ops = [r[0] for r in self.read("SELECT address FROM operators")]
        hub = self.h.hub
        got = read_many(
            self.h.chain.provider, [c for op in ops for c in ((hub.operator_stake, (op,)), (hub.is_operator, (op,)))]
        )
        for i, op in enumerate(ops):
            stake, active = int(got[2 * i]), bool(got[2 * i + 1])
            self.write("UPDATE operators SET stake = ?, active = ? WHERE address = ?", (str(stake), int(active), op))
        self.set_meta("operators_dirty", "0")

    def _refresh_providers(self) -> None:
        """Stake, reputation and audit rate of each provider an event touched since the last sync
        (a slash or a lock moves the stake without a Staked event), in one batched request."""
        dirty = [r[0] for r in self.read("SELECT address FROM providers WHERE dirty = 1")]
        reg, market = self.h.registry, self.h.market
        calls = [c for p in dirty for c in ((reg.reputation, (p,)), (market.audit_rate, (p,)), (reg.stakes, (p,)))]
        got = read_many(self.h.chain.provider, calls)
        fields = ("completed", "failed", "expired", "audits_passed", "disputes_won", "disputes_lost")
        for i, p in enumerate(dirty):
            rep, bps, stakes = got[3 * i : 3 * i + 3]
            rep_d = {f: int(getattr(rep, f) if hasattr(rep, f) else rep[j]) for j, f in enumerate(fields)}
            staked = int(stakes.staked if hasattr(stakes, "staked") else stakes[0])
            self.write(
                "UPDATE providers SET staked = ?, reputation = ?, audit_bps = ?, dirty = 0 WHERE address = ?",
                (str(staked), json.dumps(rep_d), int(bps), p),
            )


__all__ = ["ExplorerIndex", "SLASH_REASONS", "index_dir", "plain"]
