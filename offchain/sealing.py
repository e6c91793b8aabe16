"""End-to-end encryption of job blobs: one fresh data key per job, sealed to its readers.

Pure (no chain, no HTTP): the client seals, the provider agent and the auditors open.

- **The data key** `K` (32 random bytes) is the user's, one per job. The spec, every input and
  the output are encrypted under it with ChaCha20-Poly1305 (a random 96-bit nonce per blob, so
  a key encrypts a handful of blobs: far below any nonce-collision bound).
- **The envelope** is the sealed spec: it carries `K` wrapped to each reader (the job's
  provider, every oracle operator who may audit it, the user itself) and a key commitment
  `sha256("gpunet/key-commitment/v1" || K)`. The chain's `spec_hash` is sha256 of the whole
  envelope, so nobody can swap a wrap or the commitment after the job is created.
- **A wrap** is X25519 + HKDF-SHA256 + ChaCha20-Poly1305 (the same construction as HPKE's
  base mode, RFC 9180), with one change: the ephemeral key is derived from `K` and the
  recipient's public key instead of drawn at random. So whoever knows `K` can recompute every
  wrap and check it (`verify_wraps`): the provider checks, before it accepts a job, that every
  auditor can open it, and an auditor can tell a provider that accepted an envelope it could
  have checked. (Deriving the randomness from a uniformly random 256-bit message is the
  Fujisaki-Okamoto re-encryption check; `K` never repeats, so no two wraps share an ephemeral
  key unless they wrap the same `K` to the same key, when they are the same bytes.) That is why
  this composes `cryptography`'s primitives rather than calling its HPKE `Suite`, which draws
  the ephemeral key itself and so cannot be re-encrypted to check.
- **Everyone who opens a blob gets the same plaintext**: a reader accepts `K` only if it
  matches the commitment, and an AEAD ciphertext under one key decrypts to one plaintext (the
  "invisible salamanders" attack on non-committing AEADs needs two keys). So the on-chain
  `result_hash`, sha256 of the sealed output, binds the output the user and every auditor read.

Blob layout: ``MAGIC || u32 header length || header (canonical JSON) || AEAD ciphertext``;
the ciphertext's associated data is ``MAGIC || header``, so no header field (a wrap, the
commitment, the nonce) can be changed without the body failing authentication.
Keys live in a `Keyring` file (0600): one X25519 private key per published version.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"gpunet-sealed/1\n"
ALG = "x25519-hkdf-sha256-chacha20poly1305/v1"
KEY_BYTES = 32
_NONCE_BYTES = 12
_WRAP_NONCE = b"\x00" * _NONCE_BYTES  # each wrap key (kek) encrypts exactly one message


class SealError(ValueError):
    """A sealed blob could not be opened; the message says why and what to do."""


class WrongKey(SealError):
    """Not sealed to this reader, or this reader's key is not the one it was sealed to."""


class KeyMissing(WrongKey):
    """Sealed to this reader, under a key version its key file does not hold (lost, or not
    published yet): its own trouble, not the sealer's."""


class Tampered(SealError):
    """The blob was altered or truncated (authentication failed) or is malformed."""


@dataclass(frozen=True)
class Recipient:
    """A reader of a job's data: an account and the X25519 key it published (version)."""

    address: str
    public_key: bytes
    version: int


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_commitment(key: bytes) -> bytes:
    return hashlib.sha256(b"gpunet/key-commitment/v1" + key).digest()


def is_sealed(blob: bytes) -> bool:
    return blob[: len(MAGIC)] == MAGIC


def _hkdf(ikm: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def shallow_json(raw: bytes, max_depth: int = 32) -> bool:
    """True if `raw`'s brackets nest at most `max_depth` deep (counting every bracket, inside
    strings too: stricter, never looser). Checked before `json.loads` on untrusted bytes: a
    deeply nested document can overflow the C stack under a raised recursion limit."""
    depth = 0
    for b in raw.translate(None, _BRACKETS):
        depth += 1 if b in (0x5B, 0x7B) else -1
        if depth > max_depth:
            return False
    return True


def _canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _wrap(key: bytes, r: Recipient) -> dict:
    if len(r.public_key) != 32:
        raise ValueError(f"{r.address}: an X25519 public key is 32 bytes, got {len(r.public_key)}")
    addr = r.address.lower()
    context = r.public_key + addr.encode() + r.version.to_bytes(8, "big")
    eph = X25519PrivateKey.from_private_bytes(_hkdf(key, None, b"gpunet/wrap-ephemeral/v1" + context))
    enc = eph.public_key().public_bytes_raw()
    kek = _hkdf(eph.exchange(X25519PublicKey.from_public_bytes(r.public_key)), enc + r.public_key, b"gpunet/wrap/v1")
    wrapped = ChaCha20Poly1305(kek).encrypt(_WRAP_NONCE, key, context)
    return {"to": addr, "v": r.version, "e": enc.hex(), "k": wrapped.hex()}


def _assemble(header: dict, key: bytes, plaintext: bytes) -> bytes:
    hb = _canonical(header)
    body = ChaCha20Poly1305(key).encrypt(bytes.fromhex(header["nonce"]), plaintext, MAGIC + hb)
    return MAGIC + len(hb).to_bytes(4, "big") + hb + body


def seal_envelope(plaintext: bytes, key: bytes, recipients: Iterable[Recipient]) -> bytes:
    """The spec sealed under `key`, with `key` wrapped to every recipient (deduplicated)."""
    seen: dict[tuple[str, int], Recipient] = {}
    for r in recipients:
        seen[(r.address.lower(), r.version)] = r
    if not seen:
        raise ValueError("an envelope needs at least one recipient")
    header = {
        "alg": ALG,
        "commit": key_commitment(key).hex(),
        "nonce": secrets.token_bytes(_NONCE_BYTES).hex(),
        "wraps": [_wrap(key, r) for _, r in sorted(seen.items())],
    }
    return _assemble(header, key, plaintext)


def seal_data(plaintext: bytes, key: bytes) -> bytes:
    """An input or an output sealed under the job's `key` (no wraps: readers get `key` from
    the job's envelope)."""
    return _assemble(
        {"alg": ALG, "commit": key_commitment(key).hex(), "nonce": secrets.token_bytes(_NONCE_BYTES).hex()},
        key,
        plaintext,
    )


MAX_HEADER_BYTES = 64 << 10  # 300+ wraps: far more readers than any job has


def _wrap_ok(w: object) -> bool:
    return (
        isinstance(w, dict)
        and set(w) == {"to", "v", "e", "k"}
        and isinstance(w["to"], str)
        and w["to"] == w["to"].lower()
        and type(w["v"]) is int
        and w["v"] >= 1
        and isinstance(w["e"], str)
        and len(bytes.fromhex(w["e"])) == 32
        and isinstance(w["k"], str)
        and len(bytes.fromhex(w["k"])) == KEY_BYTES + 16
    )


def parse(blob: bytes) -> tuple[dict, bytes, bytes]:
    """(header, header bytes, ciphertext) of a sealed blob; Tampered if it is malformed. The
    header is checked strictly: it is the sealer's (or the provider's) input, and anything it
    could make a reader choke on is refused here, as one error."""
    if not is_sealed(blob):
        raise Tampered("not a sealed blob (no gpunet-sealed/1 header)")
    n = len(MAGIC)
    if len(blob) < n + 4:
        raise Tampered("sealed blob truncated in its header")
    size = int.from_bytes(blob[n : n + 4], "big")
    hb = blob[n + 4 : n + 4 + size]
    if len(hb) != size or size > MAX_HEADER_BYTES:
        raise Tampered("sealed blob header truncated or too large")
    try:
        header = json.loads(hb) if shallow_json(hb, 4) else None
        wraps = header.get("wraps", []) if isinstance(header, dict) else None
        ok = (
            isinstance(header, dict)
            and set(header) <= {"alg", "commit", "nonce", "wraps"}
            and header.get("alg") == ALG
            and isinstance(header["commit"], str)
            and len(bytes.fromhex(header["commit"])) == 32
            and isinstance(header["nonce"], str)
            and len(bytes.fromhex(header["nonce"])) == _NONCE_BYTES
            and isinstance(wraps, list)
            and all(_wrap_ok(w) for w in wraps)
            # One wrap per reader: a second one (a decoy before the real one) is refused.
            and len({w["to"] for w in wraps}) == len(wraps)
            and _canonical(header) == hb
        )
    except Exception:  # noqa: BLE001 - any malformed header (deep nesting: RecursionError) is the sealer's
        ok = False
    if not ok:
        raise Tampered(f"sealed blob header is malformed (expected {ALG}, canonical JSON, one wrap per reader)")
    return header, hb, blob[n + 4 + size :]


def recipients_of(blob: bytes) -> list[tuple[str, int]]:
    """(address, key version) of every reader an envelope is sealed to."""
    header, _, _ = parse(blob)
    return [(w["to"], int(w["v"])) for w in header.get("wraps", [])]


class Keyring:
    """An account's X25519 private keys, one per published version (old ones are kept to open
    jobs sealed before a rotation). File: JSON {"address", "current", "keys": {version: hex}},
    mode 0600, written whole and renamed into place."""

    def __init__(
        self,
        address: str,
        keys: Mapping[int, X25519PrivateKey],
        current: int,
        path: Path | None = None,
        published: Iterable[int] | None = None,
    ):
        self.address = address.lower()
        self.keys = dict(keys)
        self.current = current
        self.path = path
        # Versions known to be this file's key on-chain (set when published or checked): only
        # a wrap under one of them that fails to open proves a forgery. None: all (a user's
        # own keyring, never published, numbers its keys itself).
        self.self_numbered = published is None
        self.published: set[int] = set() if published is None else set(published)

    @classmethod
    def create(cls, address: str, path: str | Path | None = None, published: bool = True) -> Keyring:
        """A new key file. `published=False` for a key that is to be published in KeyDirectory
        (its number is confirmed then: `renumber`); a user's own keyring needs none."""
        ring = cls(
            address, {1: X25519PrivateKey.generate()}, 1, Path(path) if path else None, None if published else []
        )
        ring.save()
        return ring

    @classmethod
    def load(cls, path: str | Path) -> Keyring:
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
            keys = {int(v): X25519PrivateKey.from_private_bytes(bytes.fromhex(h)) for v, h in doc["keys"].items()}
            published = doc.get("published")
            ring = cls(doc["address"], keys, int(doc["current"]), p, None if published is None else published)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SealError(f"cannot read the key file {p}: {e}") from None
        if ring.current not in ring.keys:
            raise SealError(f"key file {p}: no key for its current version {ring.current}")
        return ring

    @classmethod
    def load_or_create(cls, path: str | Path, address: str, published: bool = True) -> Keyring:
        p = Path(path)
        if p.exists():
            ring = cls.load(p)
            if ring.address != address.lower():
                raise SealError(f"key file {p} belongs to {ring.address}, not {address}: use another --key-file")
            return ring
        return cls.create(address, p, published)

    def rotate(self) -> int:
        """A new current key (publish it, then jobs are sealed to it); old keys stay to open
        jobs sealed before. Returns the new version."""
        self.current = max(self.keys) + 1
        self.keys[self.current] = X25519PrivateKey.generate()
        self.save()
        return self.current

    def reload(self) -> bool:
        """Re-reads the key file (rotated by another process: `gpunet keys rotate`); True if its
        current key changed."""
        if self.path is None or not self.path.exists():
            return False
        fresh = Keyring.load(self.path)
        changed = fresh.current != self.current or fresh.public_key() != self.public_key()
        # Which versions are confirmed on-chain comes with the keys: a rotation published by
        # another process (`gpunet keys rotate`) confirms the new one; a file made anew (a lost
        # one) confirms none yet, so an old wrap that fails is KeyMissing, not a forgery.
        self.keys, self.current = fresh.keys, fresh.current
        self.published, self.self_numbered = fresh.published, fresh.self_numbered
        return changed

    def renumber(self, published_version: int) -> None:
        """Gives the current key the version KeyDirectory gave it when it was published (and
        records that version as confirmed on-chain)."""
        if published_version != self.current:
            if published_version in self.keys and (self.self_numbered or published_version in self.published):
                raise SealError(f"key file {self.path}: version {published_version} is already another key")
            # A key under that number never confirmed on-chain (a publication that failed after
            # a rotation) sealed nothing: it gives way to the one KeyDirectory now holds.
            self.keys[published_version] = self.keys.pop(self.current)
            self.published.discard(self.current)
            self.current = published_version
        self.published.add(published_version)
        self.save()

    def public_key(self, version: int | None = None) -> bytes:
        return self.keys[self.current if version is None else version].public_key().public_bytes_raw()

    def recipient(self) -> Recipient:
        return Recipient(self.address, self.public_key(), self.current)

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "address": self.address,
            "current": self.current,
            "keys": {str(v): k.private_bytes_raw().hex() for v, k in sorted(self.keys.items())},
            **({} if self.self_numbered else {"published": sorted(self.published)}),
        }
        tmp = self.path.with_name(self.path.name + f".{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, self.path)

    def open_key(self, envelope: bytes) -> bytes:
        """The job's data key from its envelope, checked against the key commitment (a key
        version this keyring lacks is looked for once more in its file: rotated meanwhile)."""
        try:
            return self._open_key(envelope)
        except KeyMissing:
            if not self.reload():
                raise
            return self._open_key(envelope)

    def _open_key(self, envelope: bytes) -> bytes:
        header, _, _ = parse(envelope)
        mine = [w for w in header.get("wraps", []) if str(w.get("to", "")).lower() == self.address]
        if not mine:
            raise WrongKey(f"this job is not sealed to {self.address} (readers: {len(header.get('wraps', []))})")
        # A wrap's version is the key's KeyDirectory version; `keys.publish` numbers this file's
        # keys the same way.
        for w in mine:  # (one at most: `parse` refuses two wraps to one reader)
            priv = self.keys.get(int(w["v"]))
            if priv is None:
                continue
            key = _unwrap(priv, self.address, w)
            if not self.self_numbered and int(w["v"]) not in self.published:
                # This file's key under that number is not confirmed on-chain here (a fresh file
                # not published yet, or a confirmation another process's save dropped): use it
                # if it opens, but a failure is no forgery we can prove, our own trouble.
                if key is None or key_commitment(key) != bytes.fromhex(header["commit"]):
                    break
                return key
            if key is None:
                if self.self_numbered:  # a user's own file numbers its keys itself: maybe another file
                    raise WrongKey(
                        f"the data key wrapped to {self.address} under key version {w['v']} does not open with "
                        f"version {w['v']} of {self.path or 'this key file'}: the job was sealed with another key "
                        "file of this account (pass it with --key-file), or it is a forged wrap"
                    )
                raise WrongKey(
                    f"the data key wrapped to {self.address} under key version {w['v']} does not open with that "
                    "key: a forged wrap"
                )
            if key_commitment(key) != bytes.fromhex(header["commit"]):
                raise Tampered("the wrapped data key does not match the envelope's key commitment")
            return key
        raise KeyMissing(
            f"sealed to {self.address} under key version(s) {sorted(int(w['v']) for w in mine)}; "
            f"this key file holds version(s) {sorted(self.keys)}"
        )


def _unwrap(priv: X25519PrivateKey, address: str, w: dict) -> bytes | None:
    pub = priv.public_key().public_bytes_raw()
    context = pub + address.encode() + int(w["v"]).to_bytes(8, "big")
    try:
        enc = bytes.fromhex(w["e"])
        kek = _hkdf(priv.exchange(X25519PublicKey.from_public_bytes(enc)), enc + pub, b"gpunet/wrap/v1")
        return ChaCha20Poly1305(kek).decrypt(_WRAP_NONCE, bytes.fromhex(w["k"]), context)
    except (InvalidTag, ValueError, KeyError, TypeError):
        return None


def open_blob(blob: bytes, key: bytes) -> bytes:
    """The plaintext of a sealed blob (an envelope or a data blob) under the job's `key`."""
    header, hb, body = parse(blob)
    if key_commitment(key) != bytes.fromhex(header["commit"]):
        raise WrongKey("this blob is sealed under another job's data key")
    try:
        return ChaCha20Poly1305(key).decrypt(bytes.fromhex(header["nonce"]), body, MAGIC + hb)
    except InvalidTag:
        raise Tampered("the sealed blob failed authentication: altered or truncated") from None


def pack_spec(spec: dict, sealed_inputs: Mapping[str, str], user: str) -> bytes:
    """What an envelope seals: the spec as it is (its inputs named by their plaintext sha256,
    which the workloads check), where each input's sealed blob is stored, and the user who
    sealed it (a provider refuses a job whose user is someone else: a copied spec hash)."""
    doc = {"spec": spec, "sealed_inputs": dict(sealed_inputs), "user": user.lower()}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def unpack_spec(doc: bytes) -> tuple[dict, dict[str, str]]:
    """(spec, {input sha256: sealed blob address}) from an opened envelope; ValueError if it is
    not one (the sealer's fault: the provider refuses the job, an auditor finds the spec invalid)."""
    try:
        if not shallow_json(doc):
            raise ValueError("nested too deep")
        d = json.loads(doc)
        spec, where, user = d["spec"], d["sealed_inputs"], d["user"]
        ok = isinstance(spec, dict) and isinstance(where, dict) and set(d) == {"spec", "sealed_inputs", "user"}
        ok = ok and isinstance(user, str) and all(isinstance(k, str) and isinstance(v, str) for k, v in where.items())
        ok = ok and pack_spec(spec, where, user) == doc
        inputs = spec.get("inputs", {})
        names = ok and isinstance(inputs, dict) and sorted(map(str, inputs.values())) == sorted(where)
    except Exception:  # noqa: BLE001 - any malformed document (deep nesting: RecursionError) is the sealer's
        ok = names = False
    if not ok:
        raise ValueError('a sealed spec is canonical JSON {"spec": {...}, "sealed_inputs": {sha256: address}, "user"}')
    if not names:
        raise ValueError("the sealed spec's sealed_inputs do not name exactly the spec's inputs")
    return spec, where, user


def verify_wraps(envelope: bytes, key: bytes, readers: Sequence[Recipient]) -> list[str]:
    """What is wrong with the envelope's wraps for `readers` (empty: every reader can open it).
    Deterministic wraps: each expected wrap is recomputed from `key` and compared."""
    header, _, _ = parse(envelope)
    have = {w["to"]: w for w in header.get("wraps", [])}  # one per reader (`parse`)
    problems = []
    for r in readers:
        w = have.get(r.address.lower())
        if w is None or w["v"] != r.version:
            problems.append(f"not sealed to {r.address.lower()} (key version {r.version})")
        elif w != _wrap(key, r):
            problems.append(f"the wrap to {r.address.lower()} (key version {r.version}) does not open")
    return problems
