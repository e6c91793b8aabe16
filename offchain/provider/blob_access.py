"""Who may put and get which blob at a provider's agent, per-account quotas, and garbage
collection (docs/SECURITY.md, "Data protection").

- **Signed requests** (offchain/blob_auth.py): every PUT/GET/HEAD names its account.
- **Writers**: any account, up to `quota_bytes` of blobs it uploaded that are still stored
  (and the agent's per-blob cap). The first uploader owns a blob; uploading bytes that are
  already here makes the account a reader of them (it holds them anyway), at no quota cost.
- **Readers**: the blob's uploaders, the users of the jobs that use it (the worker links a
  job's spec, inputs and output to the job and its user when it accepts and runs it), the
  provider itself, and the current oracle operators (any of them may be asked to audit; the
  worker refreshes the set from the chain). Anyone else gets 403, whether the blob exists or
  not (404 only for a reader), so a hash seen on-chain tells an outsider nothing.
- **Garbage collection** (`collect`, from the worker's loop): a blob goes `retention_s` after
  the last job that uses it is final (Finalized, Failed, Expired or Cancelled: no audit or
  dispute can need it any more), and a blob no job of this provider ever used goes
  `orphan_ttl_s` after its upload (a job funded elsewhere, or never funded).
Metadata lives in SQLite beside the blobs (`<blob dir>/access.sqlite`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from offchain.blob_auth import AuthError, Verifier
from offchain.provider.blobs import BlobStore
from offchain.sqlite_store import SqliteStore

DEFAULT_QUOTA_BYTES = 1 << 30
DEFAULT_RETENTION_S = 7 * 24 * 3600
DEFAULT_ORPHAN_TTL_S = 24 * 3600
OPERATOR_CHECK_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blob (hash TEXT PRIMARY KEY, size INTEGER NOT NULL, owner TEXT NOT NULL,
                                 created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS blob_owner ON blob (owner);
CREATE TABLE IF NOT EXISTS reader (hash TEXT NOT NULL, account TEXT NOT NULL, PRIMARY KEY (hash, account));
CREATE TABLE IF NOT EXISTS job_blob (hash TEXT NOT NULL, job_id INTEGER NOT NULL, final_at REAL,
                                     PRIMARY KEY (hash, job_id));
"""


class _Meta(SqliteStore):
    SCHEMA = _SCHEMA
    SYNCHRONOUS = "NORMAL"


class BlobAccess:
    def __init__(
        self,
        store: BlobStore,
        verifier: Verifier,
        *,
        quota_bytes: int = DEFAULT_QUOTA_BYTES,
        retention_s: float = DEFAULT_RETENTION_S,
        orphan_ttl_s: float = DEFAULT_ORPHAN_TTL_S,
        clock=time.time,
    ):
        if quota_bytes < 1 or retention_s < 0 or orphan_ttl_s < 0:
            raise ValueError("blob access: quota_bytes >= 1, retention_s >= 0, orphan_ttl_s >= 0")
        self.store = store
        self.verifier = verifier
        self.provider = verifier.domain.provider.lower()
        self.quota_bytes, self.retention_s, self.orphan_ttl_s = int(quota_bytes), retention_s, orphan_ttl_s
        self.operators: set[str] = set()
        # A live check for an operator added since the set was read (the worker sets it); its
        # answers are kept OPERATOR_CHECK_S.
        self.is_operator: Callable[[str], bool] | None = None
        self._checked: dict[str, tuple[float, bool]] = {}
        self._clock = clock
        self.meta = _Meta(Path(store.root) / "access.sqlite")
        # Bytes of uploads checked against the quota and still streaming, per signer: a quota
        # check reads only stored blobs, so concurrent PUTs of one account each passed it before
        # any was recorded (an attacker's review). Checked and reserved under one lock.
        self._reserved: dict[tuple[str, str], list[int]] = {}  # (signer, blob) -> each upload's bytes
        self._quota_lock = threading.Lock()

    # ---------------------------------------------------------------- requests
    def check_put(self, header: str | None, h: str, size: int) -> str:
        """The signer, if it may upload `size` bytes as `h`; AuthError (401/403/413) if not.
        The bytes count against its quota until `end_put` (call it whatever the upload's fate)."""
        signer = self.verifier.verify(header, "PUT", h).lower()
        with self._quota_lock:
            if self.store.has(h):  # stored again: costs nothing, reserves nothing
                size = 0
            else:
                used = self.meta.read_one("SELECT COALESCE(SUM(size), 0) FROM blob WHERE owner = ?", (signer,))[0]
                used += self._streaming(signer)
                if used + size > self.quota_bytes:
                    raise AuthError(
                        f"{signer} stores {used} bytes here (uploads under way included); {size} more is over the "
                        f"per-account quota of {self.quota_bytes} bytes (blobs are removed once their jobs are "
                        "final, see `gpunet provider serve`)",
                        413,
                    )
            self._reserved.setdefault((signer, h), []).append(size)
        return signer

    def end_put(self, signer: str, h: str, size: int, stored: bool) -> None:
        """An upload `check_put` allowed has ended: recorded if `stored`, its reservation freed."""
        with self._quota_lock:
            if stored:
                self.record_put(signer, h, size)
            tickets = self._reserved.get((signer, h), [])
            if tickets:
                tickets.pop()
            if not tickets:
                self._reserved.pop((signer, h), None)

    def _streaming(self, signer: str) -> int:
        """Bytes of `signer`'s uploads under way (a handful at most: one per request thread)."""
        return sum(sum(sizes) for (who, _), sizes in self._reserved.items() if who == signer)

    def record_put(self, signer: str, h: str, size: int) -> None:
        with self.meta.transaction():
            self.meta.write(
                "INSERT OR IGNORE INTO blob (hash, size, owner, created) VALUES (?, ?, ?, ?)",
                (h, size, signer.lower(), self._clock()),
            )
            self.meta.write("INSERT OR IGNORE INTO reader (hash, account) VALUES (?, ?)", (h, signer.lower()))

    def check_get(self, header: str | None, method: str, h: str) -> str:
        """The signer, if it may read `h`; AuthError (401/403) if not."""
        signer = self.verifier.verify(header, method, h).lower()
        if signer == self.provider or signer in self.operators or self._operator_now(signer):
            return signer
        if self.meta.read_one("SELECT 1 FROM reader WHERE hash = ? AND account = ?", (h, signer)) is None:
            raise AuthError(
                f"{signer} may not read blob {h}: only its uploader, the user of a job that uses it, the provider "
                "and the oracle operators may",
                403,
            )
        return signer

    def _operator_now(self, account: str) -> bool:
        if self.is_operator is None:
            return False
        hit = self._checked.get(account)
        if hit is None or time.monotonic() - hit[0] > OPERATOR_CHECK_S:
            try:
                hit = (time.monotonic(), bool(self.is_operator(account)))
            except Exception:  # noqa: BLE001 - the chain unreachable: the set read a minute ago decides
                return False
            self._checked[account] = hit
        return hit[1]

    # ---------------------------------------------------------------- the worker's bookkeeping
    def link_job(self, job_id: int, hashes: Iterable[str], user: str | None) -> None:
        """The blobs `hashes` serve job `job_id` (kept while it is live: not final any more, if
        it was); with `user`, the job's user may read them."""
        with self.meta.transaction():
            for h in hashes:
                self.meta.write("INSERT OR IGNORE INTO job_blob (hash, job_id) VALUES (?, ?)", (h, int(job_id)))
                if user is not None:
                    self.meta.write("INSERT OR IGNORE INTO reader (hash, account) VALUES (?, ?)", (h, user.lower()))
                if self.meta.read_one("SELECT 1 FROM blob WHERE hash = ?", (h,)) is None and self.store.has(h):
                    # The worker's own output: owned by the provider, no user quota charged.
                    size = self.store.size(h) or 0
                    self.meta.write(
                        "INSERT OR IGNORE INTO blob (hash, size, owner, created) VALUES (?, ?, ?, ?)",
                        (h, size, self.provider, self._clock()),
                    )
            self.meta.write("UPDATE job_blob SET final_at = NULL WHERE job_id = ?", (int(job_id),))

    def job_final(self, job_id: int) -> None:
        self.meta.write(
            "UPDATE job_blob SET final_at = ? WHERE job_id = ? AND final_at IS NULL", (self._clock(), int(job_id))
        )

    def collect(self) -> list[str]:
        """Removes the blobs past their retention; returns their hashes."""
        now = self._clock()
        done = self.meta.read(
            "SELECT hash FROM job_blob GROUP BY hash HAVING COUNT(final_at) = COUNT(*) AND MAX(final_at) < ?",
            (now - self.retention_s,),
        )
        orphans = self.meta.read(
            "SELECT hash FROM blob WHERE created < ? AND hash NOT IN (SELECT hash FROM job_blob)",
            (now - self.orphan_ttl_s,),
        )
        gone = sorted({r[0] for r in done} | {r[0] for r in orphans})
        for h in gone:
            self.store.remove(h)
            with self.meta.transaction():
                for table in ("blob", "reader", "job_blob"):
                    self.meta.write(f"DELETE FROM {table} WHERE hash = ?", (h,))  # noqa: S608 - fixed names
        return gone
