"""The oracle operator's durable state (SQLite): chain cursor, known machines, and every report
it has signed.

`jobs` caches each JobMarket job's struct (rebuilt from events) and where it stands, so the
service never re-reads old logs; `audits` keeps this operator's own audit outcome per
(job, result hash), so it re-executes a job at most once, also across restarts; `rewards` keeps
the Emissions rewards trees it built (per epoch and snapshot block), from which it serves proofs.

The `signed` table is the equivocation guard: an operator signs at most one report per
(subject, nonce). Signing a second, different report for the same subject and nonce is
exactly what OracleHub slashes, so `sign_once` refuses it and returns the report already
signed instead (the leader can then adopt it). Everything else here can be rebuilt from the
chain; `signed` cannot, so keep the database file with the key. The SQLite machinery
(connection, `meta`, lock, transactions) is `offchain/sqlite_store.py`'s, at `synchronous=FULL`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from offchain.sqlite_store import SqliteStore

# (and `meta`, from SqliteStore)
SCHEMA = """
CREATE TABLE IF NOT EXISTS machines (
    machine_id INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    class_id INTEGER NOT NULL,
    vram_mb INTEGER NOT NULL DEFAULT 0,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    attested_until INTEGER NOT NULL DEFAULT 0,
    first_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS signed (
    subject TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    digest TEXT NOT NULL,
    report TEXT NOT NULL,
    signature TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (subject, nonce)
);
CREATE TABLE IF NOT EXISTS submitted (
    subject TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    tx_hash TEXT NOT NULL,
    PRIMARY KEY (subject, nonce)
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    status INTEGER NOT NULL,
    result_uri TEXT NOT NULL DEFAULT '',
    submitted_at INTEGER NOT NULL DEFAULT 0,
    audit_opened_at INTEGER NOT NULL DEFAULT 0,
    audit_deadline INTEGER NOT NULL DEFAULT 0,
    challenger TEXT NOT NULL DEFAULT '',
    drawn INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status);
CREATE TABLE IF NOT EXISTS audits (
    job_id TEXT NOT NULL,
    result_hash TEXT NOT NULL,
    valid INTEGER NOT NULL,
    reason TEXT NOT NULL,
    evidence_hash TEXT NOT NULL,
    evidence TEXT NOT NULL,
    executed_units REAL NOT NULL,
    seconds REAL NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (job_id, result_hash)
);
CREATE TABLE IF NOT EXISTS probes (
    epoch INTEGER NOT NULL,
    machine_id INTEGER NOT NULL,
    probes INTEGER NOT NULL,
    successes INTEGER NOT NULL,
    PRIMARY KEY (epoch, machine_id)
);
CREATE TABLE IF NOT EXISTS rewards (
    epoch INTEGER NOT NULL,
    block INTEGER NOT NULL,
    root TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (epoch, block)
);
"""


# Job ids are 256-bit (a signed order's job takes the order's EIP-712 digest as its id), beyond
# SQLite's 64-bit integers: they are stored as 64 hex digits, which sort as the numbers do.
# Databases from before signed orders had INTEGER ids: `_migrate_job_ids` rewrites them once.
def job_key(job_id: int) -> str:
    return f"{int(job_id):064x}"


_MIGRATE_JOB_IDS = """
ALTER TABLE jobs RENAME TO jobs_int_ids;
ALTER TABLE audits RENAME TO audits_int_ids;
DROP INDEX IF EXISTS jobs_by_status;
{schema}
INSERT INTO jobs SELECT printf('%064x', job_id), job, status, result_uri, submitted_at, audit_opened_at,
    audit_deadline, challenger, drawn FROM jobs_int_ids;
INSERT INTO audits SELECT printf('%064x', job_id), result_hash, valid, reason, evidence_hash, evidence,
    executed_units, seconds, created FROM audits_int_ids;
DROP TABLE jobs_int_ids;
DROP TABLE audits_int_ids;
"""


@dataclass(frozen=True)
class SignedReport:
    subject: str
    nonce: int
    digest: str
    report: dict[str, Any]
    signature: str


class Store(SqliteStore):
    SCHEMA = SCHEMA
    # Full sync: a signature given must never be forgotten (docs/SECURITY.md, "Assumptions").
    SYNCHRONOUS = "FULL"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._migrate_job_ids()

    def _migrate_job_ids(self) -> None:
        cols = {row[1]: row[2] for row in self.read("PRAGMA table_info(jobs)")}
        if cols.get("job_id", "").upper() != "INTEGER":
            return
        start, end = SCHEMA.index("CREATE TABLE IF NOT EXISTS jobs"), SCHEMA.index("CREATE TABLE IF NOT EXISTS probes")
        jobs_sql = SCHEMA[start:end]  # the jobs table, its index and the audits table
        with self.transaction():
            for statement in _MIGRATE_JOB_IDS.format(schema=jobs_sql).split(";"):
                if statement.strip():
                    self.write(statement)

    # meta (get_meta / set_meta: SqliteStore) ------------------------------------------------
    def check_binding(self, chain_id: int, hub: str, operator: str, deploy_block_hash: str = "") -> None:
        """The database belongs to one operator on one deployment: refuse to mix them up.

        The deployment block's hash tells apart two deployments at the same addresses (a dev
        chain restarted from the same mnemonic), whose cursors and signatures must not mix.
        """
        pairs = [("chain_id", str(chain_id)), ("hub", hub.lower()), ("operator", operator.lower())]
        if deploy_block_hash:
            pairs.append(("deploy_block_hash", deploy_block_hash.lower()))
        for key, value in pairs:
            stored = self.get_meta(key)
            if stored is None:
                self.set_meta(key, value)
            elif stored != value:
                raise RuntimeError(
                    f"oracle database {self.path} belongs to {key}={stored}, not {value}: use another --db"
                )

    # machines -------------------------------------------------------------------------
    def upsert_machine(
        self,
        machine_id: int,
        provider: str,
        class_id: int,
        vram_mb: int,
        endpoint: str,
        status: int,
        attested_until: int,
        now: float,
    ) -> None:
        self.write(
            """INSERT INTO machines (machine_id, provider, class_id, vram_mb, endpoint, status, attested_until,
               first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(machine_id) DO UPDATE SET provider=excluded.provider, class_id=excluded.class_id,
               vram_mb=excluded.vram_mb, endpoint=excluded.endpoint,
               first_seen=CASE WHEN machines.status != excluded.status
                                 OR machines.attested_until != excluded.attested_until
                               THEN excluded.first_seen ELSE machines.first_seen END,
               status=excluded.status, attested_until=excluded.attested_until""",
            (machine_id, provider, class_id, vram_mb, endpoint, status, attested_until, now),
        )

    _MACHINE_COLS = (
        "machine_id", "provider", "class_id", "vram_mb", "endpoint", "status", "attested_until", "first_seen",
    )  # fmt: skip

    def machines(self) -> list[dict[str, Any]]:
        rows = self.read(f"SELECT {', '.join(self._MACHINE_COLS)} FROM machines")
        return [dict(zip(self._MACHINE_COLS, row, strict=True)) for row in rows]

    # signed reports (equivocation guard) ---------------------------------------------------
    def signed_for(self, subject: str, nonce: int) -> SignedReport | None:
        row = self.read_one(
            "SELECT subject, nonce, digest, report, signature FROM signed WHERE subject = ? AND nonce = ?",
            (subject, nonce),
        )
        if row is None:
            return None
        return SignedReport(row[0], row[1], row[2], json.loads(row[3]), row[4])

    def sign_once(self, subject: str, nonce: int, digest: str, report: dict[str, Any], sign) -> SignedReport:
        """Signs `digest` unless another digest was already signed for (subject, nonce).

        Returns what is on record for (subject, nonce): the new signature, or the earlier
        report and signature (compare `.digest` with the one asked for).
        """
        with self.transaction():  # the check and the insert: no other thread in between
            existing = self.signed_for(subject, nonce)
            if existing is not None:
                return existing
            signature = sign(digest)
            self.write(
                "INSERT INTO signed (subject, nonce, digest, report, signature, created) "
                "VALUES (?, ?, ?, ?, ?, julianday('now'))",
                (subject, nonce, digest, json.dumps(report, sort_keys=True), signature),
            )
        return SignedReport(subject, nonce, digest, report, signature)

    def mark_submitted(self, subject: str, nonce: int, tx_hash: str) -> None:
        self.write(
            "INSERT OR REPLACE INTO submitted (subject, nonce, tx_hash) VALUES (?, ?, ?)", (subject, nonce, tx_hash)
        )

    def submitted(self, subject: str, nonce: int) -> str | None:
        row = self.read_one("SELECT tx_hash FROM submitted WHERE subject = ? AND nonce = ?", (subject, nonce))
        return row[0] if row else None

    # jobs -------------------------------------------------------------------------------
    _JOB_COLS = (
        "job_id", "job", "status", "result_uri", "submitted_at", "audit_opened_at", "audit_deadline", "challenger",
        "drawn",
    )  # fmt: skip
    _JOB_SETTABLE = frozenset(_JOB_COLS) - {"job_id", "job"}

    def upsert_job(self, job_id: int, job: dict[str, Any], status: int, **fields: Any) -> None:
        """Stores the job's struct (JSON-able, see `jobwatch.job_to_store`) and status, plus any
        other columns given (in the same commit)."""
        bad = set(fields) - self._JOB_SETTABLE
        if bad:
            raise ValueError(f"unknown job columns {sorted(bad)}")
        with self.transaction():
            self.write(
                """INSERT INTO jobs (job_id, job, status) VALUES (?, ?, ?)
                   ON CONFLICT(job_id) DO UPDATE SET job=excluded.job, status=excluded.status""",
                (job_key(job_id), json.dumps(job, sort_keys=True), int(status)),
            )
            if fields:
                self.set_job_fields(job_id, **fields)

    def set_job_fields(self, job_id: int, **fields: Any) -> None:
        bad = set(fields) - self._JOB_SETTABLE
        if bad:
            raise ValueError(f"unknown job columns {sorted(bad)}")
        cols = sorted(fields)
        self.write(
            f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in cols)} WHERE job_id = ?",  # noqa: S608 - fixed names
            (*(fields[c] for c in cols), job_key(job_id)),
        )

    def _job_row(self, row: tuple) -> dict[str, Any]:
        d = dict(zip(self._JOB_COLS, row, strict=True))
        d["job"] = json.loads(d["job"])
        d["job_id"] = int(d["job_id"], 16)
        return d

    def job(self, job_id: int) -> dict[str, Any] | None:
        row = self.read_one(f"SELECT {', '.join(self._JOB_COLS)} FROM jobs WHERE job_id = ?", (job_key(job_id),))
        return self._job_row(row) if row else None

    def jobs_with_status(self, *statuses: int) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in statuses)
        rows = self.read(
            f"SELECT {', '.join(self._JOB_COLS)} FROM jobs WHERE status IN ({marks}) ORDER BY job_id",
            (int(s) for s in statuses),
        )
        return [self._job_row(r) for r in rows]

    def jobs_to_draw(self, status: int) -> list[dict[str, Any]]:
        """Jobs in `status` whose draw is unknown or drawn: the ones not drawn need nothing more
        from the oracle (they end by a finalize), so they are not read every cycle."""
        rows = self.read(
            f"SELECT {', '.join(self._JOB_COLS)} FROM jobs WHERE status = ? AND (drawn IS NULL OR drawn != 0) "
            "ORDER BY job_id",
            (int(status),),
        )
        return [self._job_row(r) for r in rows]

    # own audit outcomes -------------------------------------------------------------------
    def record_audit(
        self,
        job_id: int,
        result_hash: str,
        valid: bool,
        reason: str,
        evidence_hash: str,
        evidence: dict[str, Any],
        executed_units: float,
        seconds: float,
    ) -> None:
        self.write(
            """INSERT OR REPLACE INTO audits (job_id, result_hash, valid, reason, evidence_hash, evidence,
               executed_units, seconds, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, julianday('now'))""",
            (job_key(job_id), result_hash, int(valid), reason, evidence_hash, json.dumps(evidence, sort_keys=True),
             executed_units, seconds),
        )  # fmt: skip

    def audit_for(self, job_id: int, result_hash: str) -> dict[str, Any] | None:
        row = self.read_one(
            "SELECT valid, reason, evidence_hash, evidence, executed_units, seconds FROM audits "
            "WHERE job_id = ? AND result_hash = ?",
            (job_key(job_id), result_hash),
        )
        if row is None:
            return None
        return {
            "valid": bool(row[0]),
            "reason": row[1],
            "evidence_hash": row[2],
            "evidence": json.loads(row[3]),
            "executed_units": row[4],
            "seconds": row[5],
        }

    # uptime probes ----------------------------------------------------------------------
    def record_probe(self, epoch: int, machine_id: int, ok: bool) -> None:
        self.write(
            """INSERT INTO probes (epoch, machine_id, probes, successes) VALUES (?, ?, 1, ?)
               ON CONFLICT(epoch, machine_id) DO UPDATE SET probes = probes + 1,
               successes = successes + excluded.successes""",
            (epoch, machine_id, 1 if ok else 0),
        )

    def probe_counts(self, epoch: int, machine_id: int) -> tuple[int, int]:
        row = self.read_one(
            "SELECT probes, successes FROM probes WHERE epoch = ? AND machine_id = ?", (epoch, machine_id)
        )
        return (row[0], row[1]) if row else (0, 0)

    # epoch rewards (Emissions) -----------------------------------------------------------
    def record_rewards(self, epoch: int, block: int, root: str, data: dict[str, Any]) -> None:
        """This operator's own rewards tree for `epoch` built at snapshot `block` (leaves and
        totals as JSON; proofs are rebuilt from the leaves when served)."""
        self.write(
            "INSERT OR REPLACE INTO rewards (epoch, block, root, data) VALUES (?, ?, ?, ?)",
            (epoch, block, root, json.dumps(data, sort_keys=True)),
        )

    def rewards_for(self, epoch: int, block: int | None = None, root: str | None = None) -> dict[str, Any] | None:
        """The stored rewards of `epoch` at `block`, or with `root`, or else the latest built."""
        q, args = "SELECT data FROM rewards WHERE epoch = ?", [epoch]
        if block is not None:
            q, args = q + " AND block = ?", [*args, block]
        if root is not None:
            q, args = q + " AND root = ?", [*args, root.lower()]
        row = self.read_one(q + " ORDER BY block DESC LIMIT 1", args)
        return json.loads(row[0]) if row else None
