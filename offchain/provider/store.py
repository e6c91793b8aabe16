"""The job worker's durable state (SQLite in `--state-dir`): chain cursor, the provider's
machines, and what it has decided and done about each job.

The chain is the truth about a job (status, who accepted it, its result hash); this file only
remembers what the chain cannot tell a restarted worker: which job it was about to accept
(`accepting`: resolved against the chain on restart, so a crash between sending `accept` and
recording it neither loses the job nor tries to take it twice), which result it computed
(`result_hex`: its output blob is in the blob store, so a restart after executing submits it
without recomputing), and which jobs it refused and why.

Job states::

    candidate -> accepting -> running -> executed -> submitted -> done
         \\-> refused (permanently: invalid spec, wrong compute units)   \\-> done
    any -> done (final on-chain, taken by another provider, or its window passed)

The SQLite machinery (connection, `meta`, lock, transactions) is `offchain/sqlite_store.py`'s,
at `synchronous=NORMAL` (docs/SECURITY.md, "Assumptions").
"""

from __future__ import annotations

import time

from offchain.sqlite_store import SqliteStore

# (and `meta`, from SqliteStore)
SCHEMA = """
CREATE TABLE IF NOT EXISTS machines (machine_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    machine_id INTEGER,
    result_hex TEXT,
    reason TEXT,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
"""

STATES = ("candidate", "accepting", "running", "executed", "submitted", "refused", "done")
# Jobs this worker still has something to do for (or to watch).
OPEN_STATES = ("candidate", "accepting", "running", "executed", "submitted")


class StateMismatch(RuntimeError):
    """The state directory belongs to another chain, deployment or provider."""


class WorkerStore(SqliteStore):
    SCHEMA = SCHEMA
    # Every commit survives the process being killed (kill -9) without an fsync per commit;
    # a power loss may drop the last few, and the chain decides those on restart.
    SYNCHRONOUS = "NORMAL"

    # meta (get_meta / set_meta: SqliteStore) ------------------------------------------------
    def check_binding(self, chain_id: int, market: str, provider: str, deploy_block_hash: str = "") -> None:
        """Binds the state dir to one (chain, JobMarket, provider) on first use; refuses another
        later: its cursor and job ids would mean nothing there. `deploy_block_hash` tells apart
        two deployments at the same addresses (a dev chain restarted and redeployed from the
        same mnemonic gets the same chain id and contract addresses, but not the same blocks)."""
        want = {
            "chain_id": str(chain_id),
            "market": market.lower(),
            "provider": provider.lower(),
            "deploy_block_hash": deploy_block_hash.lower(),
        }
        have = {k: self.get_meta(k) for k in want}
        if all(v is None for v in have.values()):
            self.set_metas(want)
            return
        if have != want:
            raise StateMismatch(
                f"state dir {self.path} belongs to chain {have['chain_id']}, JobMarket {have['market']}, provider "
                f"{have['provider']} (deployment block {have['deploy_block_hash']}); this is chain {chain_id}, "
                f"JobMarket {market}, provider {provider} (deployment block {deploy_block_hash}): "
                "use another --state-dir (or delete this one after a redeploy)"
            )

    # machines --------------------------------------------------------------------------
    def add_machine(self, machine_id: int) -> None:
        self.write("INSERT OR IGNORE INTO machines (machine_id) VALUES (?)", (machine_id,))

    def machines(self) -> list[int]:
        return [r[0] for r in self.read("SELECT machine_id FROM machines ORDER BY machine_id")]

    # jobs ------------------------------------------------------------------------------
    _COLS = ("job_id", "state", "machine_id", "result_hex", "reason")

    def add_candidate(self, job_id: int) -> bool:
        """Records a job seen on-chain; False if it was already known (in any state)."""
        added = self.write(
            "INSERT OR IGNORE INTO jobs (job_id, state, updated) VALUES (?, 'candidate', ?)", (job_id, time.time())
        )
        return added == 1

    def set_state(
        self,
        job_id: int,
        state: str,
        *,
        machine_id: int | None = None,
        result_hex: str | None = None,
        reason: str | None = None,
    ) -> None:
        if state not in STATES:
            raise ValueError(f"unknown job state {state!r}")
        self.write(
            "INSERT INTO jobs (job_id, state, machine_id, result_hex, reason, updated) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, "
            "machine_id = COALESCE(excluded.machine_id, jobs.machine_id), "
            "result_hex = COALESCE(excluded.result_hex, jobs.result_hex), "
            "reason = COALESCE(excluded.reason, jobs.reason), updated = excluded.updated",
            (job_id, state, machine_id, result_hex, reason, time.time()),
        )

    def job(self, job_id: int) -> dict | None:
        row = self.read_one(f"SELECT {', '.join(self._COLS)} FROM jobs WHERE job_id = ?", (job_id,))
        return dict(zip(self._COLS, row, strict=True)) if row else None

    def jobs_in(self, *states: str) -> list[dict]:
        marks = ",".join("?" for _ in states)
        rows = self.read(f"SELECT {', '.join(self._COLS)} FROM jobs WHERE state IN ({marks}) ORDER BY job_id", states)
        return [dict(zip(self._COLS, r, strict=True)) for r in rows]

    def counts(self) -> dict[str, int]:
        """Jobs per state (states with none left out)."""
        return dict(self.read("SELECT state, COUNT(*) FROM jobs GROUP BY state"))


__all__ = ["OPEN_STATES", "STATES", "StateMismatch", "WorkerStore"]
