"""The client's local index of the market: offers, machines and uptime reports, in SQLite,
kept current from the chain's events by `offchain.chain.follow` (one `eth_getLogs` per sync for
ProviderRegistry's and OracleHub's events since the stored cursor).

`rank_offers` reads its candidates from here instead of re-scanning every offer, machine and
uptime log from the deployment block on every submit; what changes without an event (a
provider's reputation and free stake, the price it would quote) is still read live for the
few candidates.

One file per deployment, named by chain id, registry address and the deployment block's hash
(a fresh anvil reuses addresses, never that hash), under `$GPUNET_INDEX_DIR` or
`${XDG_CACHE_HOME:-~/.cache}/gpunet/index/`. Several processes may share it (SQLite WAL,
a busy timeout; every write is an idempotent upsert). It is a cache: a reorganisation (the
cursor block's hash changed, checked at every sync) drops it and the same sync rebuilds it
from the deployment block, and deleting the file is always safe.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from offchain.chain.events import start_block
from offchain.chain.follow import Follower, Source

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offers (
    provider TEXT, class_id INTEGER, price TEXT NOT NULL, PRIMARY KEY (provider, class_id)
);
CREATE TABLE IF NOT EXISTS machines (
    machine_id INTEGER PRIMARY KEY, provider TEXT NOT NULL, class_id INTEGER NOT NULL,
    status INTEGER NOT NULL DEFAULT 0, attested_until INTEGER NOT NULL DEFAULT 0, endpoint TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS uptime (
    machine_id INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, bps INTEGER NOT NULL, probes INTEGER NOT NULL,
    successes INTEGER NOT NULL
);
"""
REGISTRY_EVENTS = ("OfferSet", "MachineRegistered", "MachineStatusChanged", "AttestationRecorded", "EndpointUpdated")


def index_dir() -> Path:
    if os.environ.get("GPUNET_INDEX_DIR"):
        return Path(os.environ["GPUNET_INDEX_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpunet" / "index"


class MarketIndex:
    """Offers, machines and latest uptime of one deployment, synced from its events."""

    def __init__(self, h: Any, path: Path | None = None):
        self.h = h
        if path is None:
            deploy = h.chain.blocks[start_block(h)].hash
            tag = (deploy.hex() if isinstance(deploy, bytes) else str(deploy)).removeprefix("0x")[:16]
            path = index_dir() / f"{h.chain.chain_id}-{h.registry.address.lower()}-{tag}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # a cache: rebuilt from the chain if lost
        self.db.executescript(SCHEMA)
        sources = [Source(h.registry, REGISTRY_EVENTS)]
        if getattr(h, "hub", None) is not None:
            sources.append(Source(h.hub, ("UptimeRecorded",)))
        # On a reorganisation (or a local chain reverted to a snapshot) the index is dropped and
        # rebuilt from the deployment block: it is a cache, and a replay from the fork could not
        # undo rows the abandoned blocks wrote.
        self.follower = Follower(h.chain, sources, self, "cursor", start_block=start_block(h), on_reorg=self._clear)

    # the Follower's cursor store
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _clear(self) -> None:
        # One transaction: the rows and the cursor go together (no empty index with a cursor).
        self.db.executescript(
            "BEGIN IMMEDIATE; DELETE FROM offers; DELETE FROM machines; DELETE FROM uptime; "
            "DELETE FROM meta WHERE key LIKE 'cursor%'; COMMIT;"
        )

    def sync(self) -> int:
        """Applies the events since the cursor; returns the block the index is current to."""
        with self._lock:
            return self.follower.follow(int(self.h.chain.blocks.height), self._apply)

    def _apply(self, logs: list[Any], start: int, stop: int) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for lg in logs:
                a, name = lg.event_arguments, lg.event_name
                if name == "OfferSet":
                    db.execute(
                        "INSERT OR REPLACE INTO offers VALUES (?, ?, ?)",
                        (a["provider"], int(a["class_id"]), str(int(a["price_per_unit"]))),
                    )
                elif name == "MachineRegistered":
                    db.execute(
                        "INSERT OR IGNORE INTO machines (machine_id, provider, class_id, endpoint) VALUES (?, ?, ?, ?)",
                        (int(a["machine_id"]), a["provider"], int(a["class_id"]), str(a["endpoint"])),
                    )
                elif name == "MachineStatusChanged":
                    mid = int(a["machine_id"])
                    db.execute("UPDATE machines SET status = ? WHERE machine_id = ?", (int(a["new_status"]), mid))
                elif name == "AttestationRecorded":
                    db.execute(
                        "UPDATE machines SET status = ?, attested_until = ? WHERE machine_id = ?",
                        (int(a["status"]), int(a["attested_until"]), int(a["machine_id"])),
                    )
                elif name == "EndpointUpdated":
                    mid = int(a["machine_id"])
                    db.execute("UPDATE machines SET endpoint = ? WHERE machine_id = ?", (str(a["endpoint"]), mid))
                elif name == "UptimeRecorded":
                    # The latest epoch wins; a later report for the same epoch replaces it (as OracleHub).
                    db.execute(
                        "INSERT INTO uptime VALUES (?, ?, ?, ?, ?) ON CONFLICT(machine_id) DO UPDATE SET "
                        "epoch = excluded.epoch, bps = excluded.bps, probes = excluded.probes, "
                        "successes = excluded.successes WHERE excluded.epoch >= uptime.epoch",
                        (int(a["machine_id"]), int(a["epoch"]), int(a["uptime_bps"]), int(a["probes"]),
                         int(a["successes"])),
                    )  # fmt: skip
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ reads
    def offers(self, class_id: int) -> list[tuple[str, int]]:
        """(provider, price) of every non-zero offer for the class."""
        rows = self.db.execute("SELECT provider, price FROM offers WHERE class_id = ?", (class_id,)).fetchall()
        return [(p, int(price)) for p, price in rows if int(price) > 0]

    def machines(self, provider: str, class_id: int) -> list[tuple[int, int, int, str]]:
        """(machine_id, status, attested_until, endpoint) of the provider's machines of the class."""
        return self.db.execute(
            "SELECT machine_id, status, attested_until, endpoint FROM machines WHERE provider = ? AND class_id = ? "
            "ORDER BY machine_id",
            (provider, class_id),
        ).fetchall()

    def uptime(self, machine_ids: list[int]) -> dict[int, tuple[int, int, int, int]]:
        """{machine_id: (epoch, bps, probes, successes)} of the latest report of each machine that has one."""
        if not machine_ids:
            return {}
        marks = ",".join("?" * len(machine_ids))
        rows = self.db.execute(
            f"SELECT machine_id, epoch, bps, probes, successes FROM uptime WHERE machine_id IN ({marks})",
            [int(m) for m in machine_ids],
        ).fetchall()
        return {r[0]: tuple(r[1:]) for r in rows}


def index_for(h: Any) -> MarketIndex:
    """The handle's index (opened once per handle), synced to the head."""
    idx = getattr(h, "_market_index", None)
    if idx is None:
        idx = MarketIndex(h)
        try:
            h._market_index = idx
        except AttributeError:  # a handle that takes no attributes: an index per call
            pass
    idx.sync()
    return idx
