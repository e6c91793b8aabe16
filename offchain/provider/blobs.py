"""The provider's content-addressed blob store: job specs, inputs and outputs on disk.

A blob's name is the sha256 hex of its bytes, so anyone holding the hash (the chain's
`spec_hash` and `result_hash`, a spec's `inputs`) can fetch it from any provider and check it.
Layout: ``<root>/<first 2 hex>/<64 hex>``, written to ``<root>/tmp/`` first and renamed into
place, so a crash never leaves a half-written blob under a valid name (a reader sees the whole
blob or none). Writes are idempotent: putting a blob that exists is a no-op.

A sealed job's blobs are stored as sealed (offchain/sealing.py): the store never holds their
plaintext, and opens them only in memory, for the job that runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

DEFAULT_MAX_BLOB_BYTES = 64 << 20
HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class BlobError(ValueError):
    """A blob was refused; `status` is the HTTP status the agent answers with."""

    status = 400


class BlobHashMismatch(BlobError):
    status = 400


class BlobTooLarge(BlobError):
    status = 413


def check_hex(h: str) -> str:
    """`h` as a lowercase sha256 hex name, or ValueError saying what a blob name looks like."""
    if not isinstance(h, str) or not HEX64.fullmatch(h):
        raise BlobError(f"a blob name is 64 lowercase hex characters (sha256 of the bytes), got {h!r}")
    return h


class BlobStore:
    """Blobs on disk under `root`, at most `max_bytes` each. Safe for concurrent threads and
    processes (every write is a rename of a private temp file)."""

    def __init__(self, root: str | Path, max_bytes: int = DEFAULT_MAX_BLOB_BYTES):
        if max_bytes < 1:
            raise ValueError("blob store: max_bytes must be >= 1")
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, h: str) -> Path:
        check_hex(h)
        return self.root / h[:2] / h

    def has(self, h: str) -> bool:
        try:
            return self.path(h).is_file()
        except BlobError:
            return False

    def get(self, h: str) -> bytes | None:
        """The blob's bytes, or None if this store does not have it."""
        try:
            return self.path(h).read_bytes()
        except (FileNotFoundError, BlobError):
            return None

    def size(self, h: str) -> int | None:
        try:
            return self.path(h).stat().st_size
        except (FileNotFoundError, BlobError):
            return None

    def open(self, h: str) -> BinaryIO | None:
        """An open binary file for streaming the blob out, or None if absent."""
        try:
            return open(self.path(h), "rb")  # noqa: SIM115 - the caller closes it
        except (FileNotFoundError, BlobError):
            return None

    def put(self, data: bytes, expected: str | None = None) -> str:
        """Stores `data`; returns its hex name. With `expected`, refuses bytes that do not hash
        to it (BlobHashMismatch). Over `max_bytes`: BlobTooLarge."""
        if len(data) > self.max_bytes:
            raise BlobTooLarge(f"blob of {len(data)} bytes is over this store's cap of {self.max_bytes} bytes")
        return self._write(iter([data]), expected, len(data))

    def put_stream(self, stream: BinaryIO, length: int, expected: str) -> str:
        """Stores `length` bytes read from `stream` (an HTTP body) without holding them in memory;
        the hash is checked before the blob gets its name."""
        if length > self.max_bytes:
            raise BlobTooLarge(f"blob of {length} bytes is over this store's cap of {self.max_bytes} bytes")

        def chunks() -> Iterator[bytes]:
            left = length
            while left > 0:
                chunk = stream.read(min(_CHUNK, left))
                if not chunk:
                    raise BlobError(f"body ended after {length - left} of {length} bytes (Content-Length)")
                left -= len(chunk)
                yield chunk

        return self._write(chunks(), expected, length)

    def _write(self, chunks: Iterator[bytes], expected: str | None, length: int) -> str:
        if expected is not None:
            check_hex(expected)
        tmp = self._tmp / f"{secrets.token_hex(8)}.part"
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    digest.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            h = digest.hexdigest()
            if expected is not None and h != expected:
                raise BlobHashMismatch(f"body hashes to {h}, not {expected}: upload the bytes whose sha256 is the name")
            final = self.path(h)
            if final.is_file():
                return h  # idempotent: the same name always holds the same bytes
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
            return h
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def __len__(self) -> int:
        return sum(1 for _ in self.names())

    def remove(self, h: str) -> bool:
        """Deletes the blob (garbage collection); False if it was not here."""
        try:
            self.path(h).unlink()
            return True
        except (FileNotFoundError, BlobError):
            return False

    def names(self) -> Iterator[str]:
        for sub in self.root.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                for p in sub.iterdir():
                    if HEX64.fullmatch(p.name):
                        yield p.name

    def mapping(self, key: bytes | None = None, where: Mapping[str, str] | None = None) -> BlobMapping:
        """A read-only `Mapping[hex, bytes]` view that loads blobs on access (what
        `offchain.workloads.validate/execute` take as `blobs`). A sealed job's view: its inputs
        by their plaintext sha256, read from their sealed blobs (`where`: sha256 -> address)
        and opened under the job's data `key` (`offchain.sealing.open_blob`) as they are read."""
        return BlobMapping(self, key, where)


class BlobMapping(Mapping[str, bytes]):
    """Lazy `Mapping` over a `BlobStore`: `h in m` checks the disk, `m[h]` reads the file (for a
    sealed job, the blob `where[h]`, opened under `key`; SealError if it does not open)."""

    def __init__(self, store: BlobStore, key: bytes | None = None, where: Mapping[str, str] | None = None):
        self._store = store
        self._key = key
        self._where = where

    def _address(self, h: str) -> str | None:
        return h if self._where is None else self._where.get(h)

    def __contains__(self, h: object) -> bool:
        return isinstance(h, str) and (a := self._address(h)) is not None and self._store.has(a)

    def __getitem__(self, h: str) -> bytes:
        a = self._address(h)
        data = None if a is None else self._store.get(a)
        if data is None:
            raise KeyError(h)
        if self._key is not None:
            import hashlib

            from offchain.sealing import SealError, open_blob

            data = open_blob(data, self._key)
            if self._where is not None and hashlib.sha256(data).hexdigest() != h:
                raise SealError(f"the sealed input {a} does not open to the content {h} the spec names")
        return data

    def __iter__(self) -> Iterator[str]:
        return self._store.names()

    def __len__(self) -> int:
        return len(self._store)


__all__ = [
    "DEFAULT_MAX_BLOB_BYTES",
    "BlobError",
    "BlobHashMismatch",
    "BlobMapping",
    "BlobStore",
    "BlobTooLarge",
    "check_hex",
]
