"""How challenge data travels between the provider agent and the oracle (pure: no HTTP here).

Result bytes: `canonical_bytes(t)` is exactly the byte string that `challenge.commit` hashes,
so `sha256(canonical_bytes(t)) == commit(t)` and a verifier checks a download against the
commitment with one hash, before parsing anything. Layout (see `challenge.commit`):

    b"gpunet/bench/commit/v1" || str(dtype) ASCII (e.g. "torch.bfloat16") || 0x00 ||
    ndim (1 byte) || each dimension as 8-byte big-endian || elements, row-major, little-endian

`parse_canonical` is its inverse for the challenge dtypes; it raises ValueError on anything
malformed (wrong prefix, unknown dtype, truncated or overlong payload).

Hex: nonces, commitments and digests are plain lowercase hex on the wire; `parse_hex` also
accepts a "0x" prefix.
"""

from __future__ import annotations

import hashlib
import math
import sys

import torch

from offchain.benchmark.challenge import _COMMIT_DOMAIN, CHALLENGE_DTYPES

_DTYPE_BY_STR: dict[str, torch.dtype] = {str(t): t for t in CHALLENGE_DTYPES.values()}
_MAX_DTYPE_STR = 32
_MAX_NDIM = 8


def canonical_bytes(result: torch.Tensor) -> bytes:
    """The commitment preimage of `result` (any device): sha256 of it equals `challenge.commit(result)`."""
    if sys.byteorder != "little":
        raise RuntimeError("wire: needs a little-endian host")
    t = result.detach().to("cpu").contiguous()
    head = bytearray(_COMMIT_DOMAIN)
    head += str(t.dtype).encode() + b"\x00" + bytes([t.dim()])
    for d in t.shape:
        head += int(d).to_bytes(8, "big")
    if not t.numel():
        return bytes(head)
    return bytes(head) + t.reshape(-1).view(torch.uint8).numpy().tobytes()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_canonical(data: bytes, *, max_bytes: int | None = None) -> torch.Tensor:
    """The tensor whose `canonical_bytes` is `data` (CPU, challenge dtypes only); ValueError if malformed."""
    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(f"wire: {len(data)} bytes is more than the {max_bytes} expected")
    if not data.startswith(_COMMIT_DOMAIN):
        raise ValueError("wire: missing the gpunet/bench/commit/v1 prefix")
    pos = len(_COMMIT_DOMAIN)
    end = data.find(b"\x00", pos, pos + _MAX_DTYPE_STR + 1)
    if end < 0:
        raise ValueError("wire: no dtype terminator")
    name = data[pos:end].decode("ascii", errors="replace")
    if name not in _DTYPE_BY_STR:
        raise ValueError(f"wire: unsupported dtype {name!r} (one of {', '.join(_DTYPE_BY_STR)})")
    dtype = _DTYPE_BY_STR[name]
    pos = end + 1
    if pos >= len(data):
        raise ValueError("wire: truncated before ndim")
    ndim = data[pos]
    pos += 1
    if ndim > _MAX_NDIM or len(data) < pos + 8 * ndim:
        raise ValueError("wire: bad or truncated shape")
    shape = tuple(int.from_bytes(data[pos + 8 * i : pos + 8 * i + 8], "big") for i in range(ndim))
    pos += 8 * ndim
    itemsize = torch.empty((), dtype=dtype).element_size()
    want = math.prod(shape) * itemsize
    if len(data) - pos != want:
        raise ValueError(f"wire: payload is {len(data) - pos} bytes, shape {shape} in {name} needs {want}")
    if want == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(data[pos:]), dtype=torch.uint8).view(dtype).reshape(shape)


def parse_hex(value: object, *, min_bytes: int, max_bytes: int, what: str) -> bytes:
    """Bytes from a hex string (optional 0x) of min_bytes..max_bytes; ValueError naming `what` otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a hex string of {min_bytes}-{max_bytes} bytes")
    text = value[2:] if value[:2].lower() == "0x" else value
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{what} is not valid hex (got {value[:20]!r}...)") from None
    if len(text) % 2 or not min_bytes <= len(raw) <= max_bytes:
        raise ValueError(f"{what} must be {min_bytes}-{max_bytes} bytes of hex, got {len(raw)} bytes")
    return raw
