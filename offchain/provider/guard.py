"""The provider's side of data protection (docs/SECURITY.md, "Data protection"), for its job
worker (`offchain/provider/worker.py`):

- its X25519 keys (`<state dir>/encryption-key.json`, 0600), the current one published in
  KeyDirectory (retried each cycle until it is);
- opening a sealed job's envelope, after checking that every oracle operator can open it too
  (`open_envelope`; the intake refuses the job otherwise), and the data keys of accepted jobs;
- signed blob access at the agent (`offchain/provider/blob_access.py`), when the agent enforces
  it: the operator set, each job's blobs linked to its user, blobs released once their job is
  final, and garbage collection once a minute.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from offchain.blob_auth import Domain, Verifier
from offchain.chain import keys
from offchain.provider.blob_access import BlobAccess
from offchain.provider.intake import Refuse
from offchain.sealing import Keyring, SealError, open_blob, recipients_of, unpack_spec, verify_wraps

# Readers of a sealed job besides the operators and its user: the providers it was offered to
# (the client seals an open job to its 3 best offers); KeyDirectory answers 64 at most a call.
MAX_OTHER_READERS = 16
log = logging.getLogger("gpunet.provider.worker")
KEY_FILE = "encryption-key.json"  # in the worker's state_dir
TEND_S = 60.0  # how often the operator set for blob reads is re-read and old blobs collected


def _event(**kw: Any) -> None:
    log.info(json.dumps(kw, default=str))


class DataGuard:
    def __init__(self, worker: Any):
        self.w = worker
        self.keyring: Keyring | None = None
        self.data_keys: dict[str, tuple[bytes, dict]] = {}  # spec hash -> (data key, input addresses)
        self._published = False
        self._tended = 0.0

    @property
    def access(self) -> BlobAccess | None:
        return getattr(self.w.agent, "access", None)

    def setup(self) -> None:
        """Keys (without a KeyDirectory in the deployment, sealed jobs are refused) and access."""
        w = self.w
        if keys.has_directory(w.h):
            self.keyring = Keyring.load_or_create(Path(w.cfg.state_dir) / KEY_FILE, w.address, published=False)
            self.publish_key()
        else:
            _event(event="sealed_jobs_off", reason="this deployment has no KeyDirectory")
        cfg = getattr(w.agent, "config", None)
        if getattr(cfg, "blob_auth", False):
            domain = Domain(int(w.h.chain.chain_id), str(w.h.registry.address), w.address)
            access = BlobAccess(w.blobs, Verifier(domain), quota_bytes=cfg.blob_quota_bytes,
                                retention_s=cfg.blob_retention_s, orphan_ttl_s=cfg.blob_orphan_ttl_s)  # fmt: skip
            access.operators = {a.lower() for a in keys.current_operators(w.h, w.start_block)}
            access.is_operator = lambda a: bool(w.h.hub.is_operator(a))
            w.agent.access = access
            _event(event="blob_access", quota_bytes=cfg.blob_quota_bytes, retention_s=cfg.blob_retention_s,
                   operators=len(access.operators))  # fmt: skip

    def publish_key(self) -> None:
        """Publishes the current key unless it is on-chain already; a failure (another process
        sending from this account at the same moment) is retried on the next cycles."""
        if self.keyring is None or self._published:
            return
        try:
            sent = keys.publish(self.w.h, self.w.account, self.keyring)
        except Exception as e:  # noqa: BLE001 - retried next cycle; sealed jobs wait for it
            log.warning(json.dumps({"event": "encryption_key_error", "error": f"{type(e).__name__}: {e}"[:300]}))
            return
        self._published = True
        _event(event="encryption_key", published=sent, version=self.keyring.current,
               public_key=self.keyring.public_key().hex())  # fmt: skip

    def tend(self) -> None:
        """Each cycle: publish the key if it is not yet; once a minute, refresh the operator set
        for blob reads and collect old blobs (and pick up a key rotated by `gpunet keys rotate`)."""
        self.publish_key()
        if time.monotonic() - self._tended < TEND_S:
            return
        self._tended = time.monotonic()
        if self.keyring is not None and self.keyring.reload():
            self._published = False
            self.publish_key()
        access = self.access
        if access is None:
            return
        access.operators = {a.lower() for a in keys.current_operators(self.w.h, self.w.start_block)}
        gone = access.collect()
        if gone:
            _event(event="blobs_collected", count=len(gone))

    def link(self, jid: int, job: dict, hashes: list[str]) -> None:
        """The blobs serve the job (kept while it is live) and its user may read them."""
        if self.access is not None:
            self.access.link_job(jid, hashes, str(job["user"]))

    def keep(self, jid: int, hashes: list[str]) -> None:
        """The blobs are kept while the job is live (a candidate waiting to be accepted), and
        nobody becomes their reader by it."""
        if self.access is not None:
            self.access.link_job(jid, hashes, None)

    def job_final(self, jid: int) -> None:
        if self.access is not None:
            self.access.job_final(jid)

    def _check_wraps(self, envelope: bytes, key: bytes, user: str, operators: list) -> None:
        """Every wrap an auditor may one day open must be one this provider can check now:
        - every current operator with a published key is a reader;
        - each wrap is the provider's own, the job user's own (unpublished: only the user can be
          hurt by a bad one), or to a key its account published in KeyDirectory at the version
          the wrap names (the current one, or an older one: a rotation since the job was sealed),
          recomputed under that key.
        A wrap to anyone else (an operator without a key yet, a future operator, a version never
        published) could be garbage its reader finds only once it audits: "the envelope does not
        open", an invalid verdict against a provider that could not have known (an attacker's
        review). Such a job is refused."""
        wraps = {to.lower(): v for to, v in recipients_of(envelope)}
        current = {r.address.lower(): r for r in operators}
        missing = [a for a in current if a not in wraps]
        if missing:
            raise Refuse(f"sealed so that auditors cannot open it: not sealed to {missing[0]} (an oracle operator)")
        me = self.w.address.lower()
        others = sorted(set(wraps) - set(current) - {me, user.lower()})
        if len(others) > MAX_OTHER_READERS:
            raise Refuse(f"sealed to {len(others)} readers besides the operators and the user: at most "
                         f"{MAX_OTHER_READERS}")  # fmt: skip
        published = keys.recipients(self.w.h, others) if others else {}
        expected = []
        for a in [*current, *others]:
            now = current.get(a) or published.get(a)
            r = now if now is not None and now.version == wraps[a] else keys.key_at(self.w.h, a, wraps[a])
            if r is None:
                what = "an oracle operator's" if a in current else "its"
                raise Refuse(f"sealed to {a} under key version {wraps[a]}, which is not {what} published key: "
                             "a wrap nobody can check")  # fmt: skip
            expected.append(r)
        problems = verify_wraps(envelope, key, expected)
        if problems:
            raise Refuse("sealed with a wrap that does not check: " + "; ".join(problems[:3]))

    def open_envelope(self, envelope: bytes, user: str, check_auditors: bool = True) -> tuple[bytes, dict, dict]:
        """(data key, spec, {input sha256: sealed address}) of a sealed job of `user` (the job's
        on-chain user), after checking that the envelope names that user (not a copied spec
        hash) and that every current oracle operator, and every other reader, can open it:
        deterministic wraps (offchain/sealing.py) let the provider check what an auditor will
        find, so a job no auditor could read is refused, never run (an auditor holds a provider
        that accepted one responsible: docs/SECURITY.md). `check_auditors=False` for a job
        already accepted (re-opened after a restart): the operators may have rotated keys since,
        which must not make it refuse its own job."""
        if self.keyring is None:
            raise Refuse("the job is sealed and this agent has no encryption key (KeyDirectory)")
        try:
            key = self.keyring.open_key(envelope)
            spec, where, sealer = unpack_spec(open_blob(envelope, key))
        except SealError as e:
            raise Refuse(f"sealed spec does not open: {e}") from None
        except ValueError as e:
            raise Refuse(f"invalid sealed spec: {str(e)[:200]}") from None
        if sealer != user.lower():
            raise Refuse(f"the sealed spec is {sealer}'s, not this job's user's (a copied spec hash)")
        if not check_auditors:
            return key, spec, where
        readers, missing = keys.auditors(self.w.h, self.w.start_block)
        self._check_wraps(envelope, key, user, readers)
        if len(readers) < keys.quorum(self.w.h, self.w.start_block):
            raise Refuse(
                f"only {len(readers)} oracle operators published an encryption key ({len(missing)} did not): "
                "too few to audit a sealed job"
            )
        return key, spec, where
