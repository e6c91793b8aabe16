"""Sealed jobs on the user's side: sealing a spec and its inputs to the job's readers, and
opening what comes back. The format and the cryptography: offchain/sealing.py; who the readers
are: offchain/chain/keys.py; what each party sees: docs/SECURITY.md, "Data protection"."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offchain.chain import keys
from offchain.client.money import ClientError
from offchain.sealing import (
    Keyring,
    SealError,
    is_sealed,
    new_data_key,
    open_blob,
    pack_spec,
    seal_data,
    seal_envelope,
    unpack_spec,
)

DEFAULT_KEY_DIR = Path.home() / ".gpunet" / "keys"


class KeyFileNeeded(ClientError):
    """A sealed job, and no key file to open it with."""


def key_path(address: str, key_file: str | Path | None = None) -> Path:
    """The user's key file: `key_file`, or the default one of `address`."""
    return Path(key_file) if key_file else DEFAULT_KEY_DIR / f"{address.lower()}.json"


def user_keyring(address: str, key_file: str | Path | None = None) -> Keyring:
    """The user's own keys (made on first use, never published: only the user opens its own
    wrap, to read its jobs' results from any machine that has this file)."""
    path = key_path(address, key_file)
    try:
        return Keyring.load_or_create(path, address)
    except (SealError, OSError) as e:
        raise ClientError(str(e)) from None


@dataclass
class SealedJob:
    spec_hex: str  # sha256 of the envelope: the job's on-chain spec_hash
    uploads: dict[str, bytes]  # everything to PUT, by its address (all sealed)
    providers: list[str]  # the candidate providers it is sealed to
    auditors: int  # oracle operators it is sealed to


def seal_job(
    h: Any, keyring: Keyring, spec: dict, blobs: Mapping[str, bytes], providers: list[str], start_block: int = 0
) -> SealedJob:
    """Seals `spec` and its input `blobs` ({plaintext sha256: bytes}) under a fresh data key for
    the providers that published a key, every operator that did (at least the quorum) and the
    user. The sealed spec names its inputs by their sealed addresses."""
    if not keys.has_directory(h):
        raise ClientError(
            "this deployment has no KeyDirectory, so jobs cannot be sealed: pass --public to send it in plaintext"
        )
    found = keys.cached_recipients(h, providers)
    able = [r for r in found.values() if r is not None]
    if not able:
        raise ClientError(
            f"no candidate provider ({', '.join(providers)}) published an encryption key, so none can open a "
            "sealed job: choose another provider, or pass --public to send it in plaintext"
        )
    auditors, missing = keys.auditors(h, start_block)
    need = keys.quorum(h, start_block)
    if len(auditors) < need:
        raise ClientError(
            f"only {len(auditors)} of {len(auditors) + len(missing)} oracle operators published an encryption key "
            f"and an audit needs {need}: wait for them, or pass --public to send the job in plaintext"
        )
    key = new_data_key()
    sealed = {h_: seal_data(data, key) for h_, data in blobs.items()}
    address = {h_: hashlib.sha256(b).hexdigest() for h_, b in sealed.items()}
    doc = pack_spec(spec, {h_: address[h_] for h_ in spec.get("inputs", {}).values()}, keyring.address)
    envelope = seal_envelope(doc, key, [*able, *auditors, keyring.recipient()])
    spec_hex = hashlib.sha256(envelope).hexdigest()
    remember_key(spec_hex, key)
    uploads = {spec_hex: envelope, **{address[h_]: b for h_, b in sealed.items()}}
    return SealedJob(spec_hex, uploads, [r.address for r in able], len(auditors))


# The data keys this process sealed jobs with, by spec hash (at most _KEEP): reading a result
# in the process that submitted the job needs no download of the envelope. Another process
# (`gpunet job result`) opens the envelope with the user's key file instead.
_KEEP = 10_000
_known: OrderedDict[str, bytes] = OrderedDict()


def remember_key(spec_hex: str, key: bytes) -> None:
    _known[spec_hex] = key
    while len(_known) > _KEEP:
        _known.popitem(last=False)


def known_key(spec_hex: str) -> bytes | None:
    return _known.get(spec_hex)


def open_spec(keyring: Keyring | None, envelope: bytes) -> tuple[dict, dict[str, str], bytes | None]:
    """(spec, {input sha256: blob address}, data key) of a job; a plaintext spec passes through
    (its inputs are stored under their own hashes, no key)."""
    import json

    if not is_sealed(envelope):
        spec = json.loads(envelope)
        return spec, {h_: h_ for h_ in spec.get("inputs", {}).values()}, None
    key = data_key(keyring, envelope)
    try:
        spec, where, _ = unpack_spec(open_blob(envelope, key))
    except (SealError, ValueError) as e:
        raise ClientError(f"cannot open the sealed job: {e}") from None
    return spec, where, key


def data_key(keyring: Keyring | None, envelope: bytes) -> bytes:
    if keyring is None:
        raise KeyFileNeeded("the job is sealed: its user's key file is needed to read it (--key-file)")
    try:
        return keyring.open_key(envelope)
    except SealError as e:
        raise ClientError(f"cannot open the sealed job: {e}") from None


def open_data(key: bytes | None, blob: bytes) -> bytes:
    if key is None:
        return blob
    try:
        return open_blob(blob, key)
    except SealError as e:
        raise ClientError(f"cannot open the sealed job's data: {e}") from None
