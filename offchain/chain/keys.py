"""Encryption keys on-chain (KeyDirectory): who can read a sealed job, and publishing one's key.

A job's readers are its user, its provider (or, for an open job, each candidate provider) and
every current OracleHub operator: any of them may be asked to audit it (the committee, then
everyone once a committee member is late: offchain/oracle/verdicts.py). Each is a
`sealing.Recipient`, the key and version its account published in KeyDirectory; an account
that published none cannot be sealed to. See docs/SECURITY.md, "Data protection".
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from cachetools import TTLCache
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from offchain.sealing import Keyring, Recipient, SealError

OPERATORS_CACHE_S = 30.0
_PROBE = X25519PrivateKey.generate()
# Chain reads a client or a provider makes for every sealed job, each kept OPERATORS_CACHE_S
# (cachetools' TTLCache, timed by time.monotonic): the operator list, the operators' keys with the
# quorum, and other accounts' published keys.
# TTLCache is not thread-safe (an agent's HTTP threads and its worker share these): one lock
# around each cache access, never around a chain read.
_operators_cache: TTLCache = TTLCache(maxsize=64, ttl=OPERATORS_CACHE_S)
_auditors_cache: TTLCache = TTLCache(maxsize=64, ttl=OPERATORS_CACHE_S)
_recipients_cache: TTLCache = TTLCache(maxsize=4096, ttl=OPERATORS_CACHE_S)
_cache_lock = threading.Lock()
_MISS = object()


def _kept(cache: TTLCache, key: Any) -> Any:
    with _cache_lock:
        return cache.get(key, _MISS)


def _keep(cache: TTLCache, key: Any, value: Any) -> Any:
    with _cache_lock:
        cache[key] = value
    return value


def has_directory(h: Any) -> bool:
    return getattr(h, "key_directory", None) is not None


def current_operators(h: Any, start_block: int = 0) -> list[str]:
    """OracleHub's operators now: every OperatorAdded account still `is_operator` (the hub keeps
    no list; the events are read at most every `OPERATORS_CACHE_S`)."""
    key = str(h.hub.address)
    ops = _kept(_operators_cache, key)
    if ops is _MISS:
        stop = int(h.chain.blocks.height) + 1
        added = {str(log.operator) for log in h.hub.OperatorAdded.range(start_block, stop)}
        ops = _keep(_operators_cache, key, sorted((a for a in added if h.hub.is_operator(a)), key=lambda a: int(a, 16)))
    return ops


def _raw_key(k: Any) -> bytes:
    """A bytes32 key as ape gives it (bytes, HexBytes or hex text)."""
    return bytes(k) if not isinstance(k, str) else bytes.fromhex(k.removeprefix("0x"))


def recipients(h: Any, accounts: list[str]) -> dict[str, Recipient | None]:
    """{account: its published key as a Recipient, or None if it published none}."""
    if not accounts:
        return {}
    keys, versions = h.key_directory.keys_of(accounts)
    out: dict[str, Recipient | None] = {}
    for a, k, v in zip(accounts, keys, versions, strict=True):
        raw = _raw_key(k)
        out[a] = Recipient(a, raw, int(v)) if int(v) > 0 and usable_key(raw) else None
    return out


def cached_recipients(h: Any, accounts: list[str]) -> dict[str, Recipient | None]:
    """`recipients`, each answer kept `OPERATORS_CACHE_S` (a client seals many jobs a minute to
    the same providers). A key rotated meanwhile is harmless: its owner keeps the old keys, and a
    provider checks a wrap under the version it names (`key_at`); a key file lost and made anew
    refuses the jobs sealed to the old one in that time (refunded)."""
    where = str(h.key_directory.address)
    out = {a: _kept(_recipients_cache, (where, a)) for a in accounts}
    # One batched read for every account not kept.
    for a, r in recipients(h, [a for a, r in out.items() if r is _MISS]).items():
        out[a] = _keep(_recipients_cache, (where, a), r)
    return out


# (KeyDirectory, account, version) -> the key published as that version: history never changes.
_history: dict[tuple[str, str, int], bytes | None] = {}


def key_at(h: Any, account: str, version: int, start_block: int = 0) -> Recipient | None:
    """`account`'s key as it published it at `version` (KeyDirectory's EncryptionKeySet events:
    an older version after a rotation), as a Recipient of that version; None if it never
    published that version (or the key is unusable)."""
    where, acct = str(h.key_directory.address), account.lower()
    if (where, acct, int(version)) not in _history:
        stop = int(h.chain.blocks.height) + 1
        for lg in h.key_directory.EncryptionKeySet.range(start_block, stop, search_topics={"account": account}):
            args = lg.event_arguments
            raw = _raw_key(args["key"])
            _history[(where, acct, int(args["version"]))] = raw if usable_key(raw) else None
    raw = _history.get((where, acct, int(version)))
    return Recipient(acct, raw, int(version)) if raw is not None else None


def usable_key(raw: bytes) -> bool:
    """False for a published key nothing can be sealed to (a low-order X25519 point): such an
    account counts as having no key, for the client and the provider alike (one bad operator
    key must not block sealing, nor make providers refuse every job)."""
    try:
        _PROBE.exchange(X25519PublicKey.from_public_bytes(raw))
        return True
    except ValueError:
        return False


def auditors(h: Any, start_block: int = 0) -> tuple[list[Recipient], list[str]]:
    """(the operators' keys, operators without a published key), read at most every
    `OPERATORS_CACHE_S` (a client seals, and a provider checks, many jobs a minute: a key
    rotated or an operator added is seen within that time)."""
    readers, missing, _ = _auditors(h, start_block)
    return readers, missing


def quorum(h: Any, start_block: int = 0) -> int:
    """OracleHub's threshold, cached with the operators' keys."""
    return _auditors(h, start_block)[2]


def _auditors(h: Any, start_block: int) -> tuple[list[Recipient], list[str], int]:
    key = str(h.hub.address)
    value = _kept(_auditors_cache, key)
    if value is _MISS:
        found = recipients(h, current_operators(h, start_block))
        value = _keep(_auditors_cache, key, (
            [r for r in found.values() if r is not None],
            [a for a, r in found.items() if r is None],
            int(h.hub.threshold()),
        ))  # fmt: skip
    return value


def publish(h: Any, account: Any, keyring: Keyring) -> bool:
    """Publishes the keyring's current key unless KeyDirectory already has it. True if sent."""
    mine = recipients(h, [account.address])[account.address]
    if mine is not None and mine.public_key == keyring.public_key():
        keyring.renumber(mine.version)
        return False
    h.key_directory.set_encryption_key(keyring.public_key(), sender=account)
    keyring.renumber(int(h.key_directory.key_version(account.address)))
    return True


def rotate(h: Any, account: Any, path: str | Path) -> tuple[Keyring, bool]:
    """`gpunet keys rotate`: a new current key in the key file at `path`; (the keyring, whether
    it was published). An agent's or operator's file (published keys) gets its new key
    published in KeyDirectory and numbered as KeyDirectory numbers it. A user's own file is
    never published (only the user opens its own wraps): it rotates locally. A missing file is
    the lost-key case: a new file whose key is published."""
    p = Path(path)
    if not p.exists():
        ring = Keyring.create(account.address, p, published=False)
        publish(h, account, ring)
        return ring, True
    ring = Keyring.load(p)
    if ring.address != account.address.lower():
        raise SealError(f"key file {p} belongs to {ring.address}, not the signer {account.address}")
    ring.rotate()
    if ring.self_numbered:
        return ring, False
    publish(h, account, ring)
    return ring, True
