"""The benchmark challenge: the pieces the oracle (verifier) and provider agent share.

Matmul challenge (speed + correctness), one round:
1. Oracle -> provider: a fresh random `nonce` (>= 16 bytes), `n`, `dtype`. The oracle's clock
   starts when it sends.
2. Provider: `derive_inputs(nonce, n, dtype, device)` -> A, B; C = A @ B (`compute_product`);
   replies `commit(C)` (32 bytes). The oracle's clock stops on receipt; it must be within
   `time_allowance(claimed_class, n, dtype, network_allowance_s)`.
3. Provider uploads C (untimed: the commitment already binds it).
4. Oracle: checks `commit(C)` equals the commitment, re-derives A, B from the nonce, draws
   Freivalds vectors from randomness chosen *after* step 2, and runs `freivalds_check(A, B, C)`
   in O(n^2). `verify_answer` does all of step 4.
Because A and B are a function of the nonce, an answer computed for another (old) nonce fails.

Memory challenge: `memory_proof` fills a working set of `fraction` x the claimed memory from
the nonce, all of it allocated at once, and returns one digest per chunk; the provider sends
`memory_root(...)` first, the oracle then picks chunk indices (`sample_chunk_indices`) and
`verify_memory_proof` recomputes only those chunks. Soundness is limited and stated: a wrong
digest for a fraction f of the chunks survives K samples with probability (1-f)^K, but the
chunk contents are cheap to regenerate, so this shows the device can allocate and fill the
working set, not that it holds all of it at once; the matmul challenge sized so that A, B and
C fill a good part of VRAM is the stronger memory signal.

Determinism: inputs are an integer hash of (nonce, index) computed on the provider's own device
(`derive_inputs`), exact int64 arithmetic, so a GPU provider and a CPU oracle derive identical
bits whatever their torch versions, and a GPU spends milliseconds on them: the timed round
measures the product and the commitment, not the host CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from offchain.benchmark.classify import MIN_FRACTION
from offchain.benchmark.gpu_classes import GpuClass, get_class
from offchain.benchmark.measure import resolve_device, tf32_mode

CHALLENGE_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_NAME_OF = {v: k for k, v in CHALLENGE_DTYPES.items()}

# Freivalds tolerance per dtype: the largest accepted |(A(Br) - Cr)_i| / ||C_i||_2 for a
# Rademacher (+-1) vector r. For an honest C the residual is C's own rounding error summed with
# random signs: std ~ u/sqrt(3) relative to ||C_i|| (u: unit roundoff of the output dtype), far
# below these; a single entry off by delta shows up as |delta| against tol x ||C_i||.
#   bf16: u = 2^-8 (3.9e-3) -> tol 2e-2 (~12 sigma).
#   fp16: u = 2^-11 (4.9e-4) -> tol 4e-3, room for fp16 split-K partial sums on GPUs.
#   fp32: accumulation error ~ 6e-8 x sqrt(n) (~5e-6 at n = 8192) -> tol 1e-4, which rejects
#         TF32 (inputs rounded to 10 mantissa bits: ~4e-4 relative), so an fp32 challenge
#         cannot be answered at TF32 speed.
FREIVALDS_TOL: dict[str, float] = {"fp32": 1e-4, "bf16": 2e-2, "fp16": 4e-3}
DEFAULT_ROUNDS = 3
# Rows per float64 block in the verifier's matrix-vector products (bounds its extra memory).
_CHUNK_ROWS = 2048

_INPUT_DOMAIN = b"gpunet/bench/inputs/v1"
_COMMIT_DOMAIN = b"gpunet/bench/commit/v1"
_MEM_DOMAIN = b"gpunet/bench/memory/v1"
_MEM_ROOT_DOMAIN = b"gpunet/bench/memory-root/v1"
_SAMPLE_DOMAIN = b"gpunet/bench/memory-sample/v1"

# Memory proof layout: chunks of int32 words, digested as 256 column sums.
DEFAULT_CHUNK_BYTES = 64 << 20
_LANES = 256
_MASK32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # the multiplier of a well-known 32-bit integer hash; < 2^27 keeps int64 exact
DEFAULT_MEMORY_FRACTION = 0.85


def dtype_name(dtype: str | torch.dtype) -> str:
    """ "fp32" / "bf16" / "fp16" for a name or torch dtype; ValueError otherwise."""
    if isinstance(dtype, torch.dtype):
        if dtype not in _NAME_OF:
            raise ValueError(f"challenge: unsupported dtype {dtype} (fp32, bf16, fp16)")
        return _NAME_OF[dtype]
    if dtype not in CHALLENGE_DTYPES:
        raise ValueError(f"challenge: unsupported dtype {dtype!r} (fp32, bf16, fp16)")
    return dtype


def seed_from_nonce(nonce: bytes, domain: bytes = _INPUT_DOMAIN) -> int:
    """A 63-bit torch seed: the first 8 bytes of sha256(domain || nonce)."""
    return int.from_bytes(hashlib.sha256(domain + bytes(nonce)).digest()[:8], "big") >> 1


# ----------------------------------------------------------------------------- matmul challenge


# Inputs are generated in row blocks of this many elements (bounds the int64 temporaries).
_DERIVE_BLOCK = 1 << 22
_SEED_MASK = 0xFFFFFFFF


def _input_seeds(nonce: bytes, which: bytes) -> tuple[int, int]:
    """Two 32-bit keys for matrix `which` (b"A" or b"B"): the first 8 bytes of sha256(domain || nonce || which)."""
    d = hashlib.sha256(_INPUT_DOMAIN + bytes(nonce) + which).digest()
    return int.from_bytes(d[:4], "big"), int.from_bytes(d[4:8], "big")


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """In place on int64 values in [0, 2^32): the xorshift-multiply integer hash (a bijection of
    32-bit words), in exact int64 arithmetic so CPU and GPU give the same bits."""
    for _ in range(2):
        x.bitwise_xor_(x >> 16)
        x.mul_(_MIX).bitwise_and_(_MASK32)
    return x.bitwise_xor_(x >> 16)


def _derive_matrix(
    n: int, keys: tuple[int, int], tdt: torch.dtype, dev: torch.device, deadline: float | None = None
) -> torch.Tensor:
    out = torch.empty((n, n), dtype=tdt, device=dev)
    flat = out.view(-1)
    total = n * n
    for start in range(0, total, _DERIVE_BLOCK):
        if deadline is not None and time.perf_counter() > deadline:
            raise DeadlineExceeded(0.0, 0, n)
        stop = min(total, start + _DERIVE_BLOCK)
        x = torch.arange(start, stop, dtype=torch.int64, device=dev)
        _mix32(x.bitwise_xor_(keys[0]))
        _mix32(x.bitwise_xor_(keys[1]))
        # The top 24 bits as an integer k: k x 2^-23 - 1 is exact in fp32 and lies in [-1, 1);
        # the cast to bf16/fp16 then rounds to nearest-even, the same on every device.
        v = (x >> 8).to(torch.float32).mul_(2.0**-23).sub_(1.0)
        flat[start:stop] = v.to(tdt)
    return out


def derive_inputs(
    nonce: bytes,
    n: int,
    dtype: str | torch.dtype = "bf16",
    device: str | torch.device | None = "cpu",
    deadline: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A, B (n x n, in [-1, 1), cast to `dtype`) from the nonce, generated on `device` itself.

    Entry (i, j) of A is k x 2^-23 - 1 for k the top 24 bits of h(h(i n + j xor a1) xor a2), h the
    32-bit xorshift-multiply hash and (a1, a2) from sha256 of the nonce (B likewise with its own
    keys). Integer arithmetic only, so the bits are identical on every device and torch
    version, and a GPU derives its inputs in milliseconds on the GPU: the timed round then
    measures the product, not the host CPU (the old torch.Generator inputs cost ~10-20 ns per
    element on the host, an allowance that let a fast CPU pass for an H100). `deadline` (a
    `time.perf_counter()` value): DeadlineExceeded once it passes, checked every 4M elements.
    """
    if not 1 <= n < 1 << 16:
        raise ValueError("challenge: n must be in 1..65535")
    tdt = CHALLENGE_DTYPES[dtype_name(dtype)]
    dev = resolve_device(device)
    a = _derive_matrix(n, _input_seeds(nonce, b"A"), tdt, dev, deadline)
    return a, _derive_matrix(n, _input_seeds(nonce, b"B"), tdt, dev, deadline)


class DeadlineExceeded(Exception):
    """The product would not be done by the deadline the verifier set: computing stopped early."""

    def __init__(self, seconds: float, rows_done: int, rows: int):
        super().__init__(f"stopped after {seconds:.3f}s with {rows_done} of {rows} rows done")
        self.seconds, self.rows_done, self.rows = seconds, rows_done, rows


# Row blocks of a deadline-bounded product: the first is small (it warms the device up), the
# next ones last about BLOCK_TARGET_S each, so a stop lands at most that long after the deadline.
# The finish is projected from the second block on: the first carries the BLAS warm-up (threads
# starting, cold caches). On the 2-core CI machine with processes starting beside it, its 8 rows
# took 11-36 ms where the whole 1024x1024 fp32 product takes 0.15 s: projected from it, an
# honest CPU was stopped, failed twice and was jailed.
FIRST_BLOCK_ROWS = 8
BLOCK_TARGET_S = 0.05


def compute_product(a: torch.Tensor, b: torch.Tensor, deadline: float | None = None) -> torch.Tensor:
    """The provider's honest answer: A @ B in the inputs' dtype (TF32 off for fp32 on CUDA).

    `deadline` (a `time.perf_counter()` value): compute in row blocks and raise DeadlineExceeded
    as soon as the product cannot be done by then -- the deadline passed, or the rows left, at
    the speed measured so far, would end after it. A device far too slow for the challenge (a
    CPU without native bf16 asked for a GPU-sized bf16 product) so stops after its first small
    block instead of computing for minutes. A device that makes the deadline computes the same
    product: each row of C still comes from the same row of A and all of B (the BLAS may round
    a little differently per block shape, well inside Freivalds' tolerance).
    """
    ctx = tf32_mode(False) if a.device.type == "cuda" and a.dtype == torch.float32 else contextlib.nullcontext()
    with ctx:
        if deadline is None:
            return a @ b
        n = a.shape[0]
        start = time.perf_counter()
        if start > deadline:  # deriving the inputs alone took too long
            raise DeadlineExceeded(0.0, 0, n)
        c = torch.empty((n, b.shape[1]), dtype=a.dtype, device=a.device)
        done, rows = 0, min(n, FIRST_BLOCK_ROWS)
        first = rows
        while done < n:
            t0 = time.perf_counter()
            torch.mm(a[done : done + rows], b, out=c[done : done + rows])
            if a.device.type == "cuda":
                torch.cuda.synchronize(a.device)
            now = time.perf_counter()
            done += rows
            if done >= n:
                break
            per_row = max(now - t0, 1e-9) / rows
            if now > deadline or (done > first and now + per_row * (n - done) > deadline):
                raise DeadlineExceeded(now - start, done, n)
            rows = max(1, min(n - done, 4 * rows, int(BLOCK_TARGET_S / per_row)))
        return c


def commit(result: torch.Tensor) -> bytes:
    """32-byte commitment to a tensor: sha256 of a canonical serialization.

    Serialization: b"gpunet/bench/commit/v1" || dtype (the ASCII of `str(dtype)`, e.g.
    "torch.bfloat16") || 0x00 || ndim (1 byte) || each dimension as 8-byte big-endian ||
    the elements in row-major (C) order, each in its IEEE / two's-complement little-endian
    encoding. Device, strides and memory layout do not matter; shape, dtype and bits do
    (so -0.0 != 0.0 and NaN payloads count).
    """
    if sys.byteorder != "little":
        raise RuntimeError("challenge: commit needs a little-endian host")
    t = result.detach().to("cpu").contiguous()
    h = hashlib.sha256(_COMMIT_DOMAIN)
    h.update(str(t.dtype).encode() + b"\x00" + bytes([t.dim()]))
    for d in t.shape:
        h.update(int(d).to_bytes(8, "big"))
    if t.numel():
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))  # no copy of C
    return h.digest()


def _as_seed(seed: int | bytes | None) -> int:
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bytes | bytearray):
        return seed_from_nonce(bytes(seed), b"gpunet/bench/freivalds/v1")
    return int(seed) & (2**63 - 1)


def _mm64(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """m @ v in float64, m converted in row blocks (bounded extra memory); result on m's device."""
    v = v.to(device=m.device, dtype=torch.float64)
    out = torch.empty((m.shape[0], v.shape[1]), dtype=torch.float64, device=m.device)
    for s in range(0, m.shape[0], _CHUNK_ROWS):
        out[s : s + _CHUNK_ROWS] = m[s : s + _CHUNK_ROWS].to(torch.float64) @ v
    return out


def _row_norms64(m: torch.Tensor) -> torch.Tensor:
    out = torch.empty(m.shape[0], dtype=torch.float64, device=m.device)
    for s in range(0, m.shape[0], _CHUNK_ROWS):
        out[s : s + _CHUNK_ROWS] = torch.linalg.vector_norm(m[s : s + _CHUNK_ROWS].to(torch.float64), dim=1)
    return out


def freivalds_check(
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    rounds: int = DEFAULT_ROUNDS,
    seed: int | bytes | None = None,
    tol: float | None = None,
) -> bool:
    """Whether C = A @ B, in O(n^2): A(B r) vs C r for `rounds` random +-1 vectors r.

    The verifier must choose `seed` after it has the provider's commitment (None: a fresh
    secret seed). Everything is computed in float64, so only the answer's own rounding shows;
    row i passes if max over rounds |(A(Br) - Cr)_i| <= tol x ||C_i||_2 (plus float64 slack).
    `tol` defaults to FREIVALDS_TOL for the least precise dtype among A, B and C. A non-finite
    entry or a shape mismatch fails. With +-1 vectors a single wrong entry off by more than
    tol x ||C_i|| is caught in every round; several wrong entries in one row cancel in a round
    with probability <= 1/2, hence several rounds.
    """
    if a.dim() != 2 or b.dim() != 2 or c.dim() != 2:
        return False
    n, k = a.shape
    if b.shape[0] != k or c.shape != (n, b.shape[1]):
        return False
    if not bool(torch.isfinite(c).all()):
        return False
    if tol is None:
        names = [_NAME_OF.get(t.dtype, "fp32") for t in (a, b, c)]
        tol = max(FREIVALDS_TOL[x] for x in names)
    m = b.shape[1]
    g = torch.Generator(device="cpu").manual_seed(_as_seed(seed))
    r = torch.randint(0, 2, (m, max(1, rounds)), generator=g, dtype=torch.int8).to(torch.float64).mul_(2).sub_(1)
    abr = _mm64(a, _mm64(b, r))
    cr = _mm64(c, r.to(c.device)).to(abr.device)
    resid = (abr - cr).abs().amax(dim=1)
    scale = _row_norms64(c).to(abr.device)
    # float64 slack for the verifier's own rounding: ~n * 2^-52 * ||A_i|| * ||B||_F.
    slack = _row_norms64(a).to(abr.device) * float(torch.linalg.norm(b.to(torch.float64))) * (k * 2.0**-52)
    return bool((resid <= tol * scale + slack).all())


@dataclass(frozen=True)
class ChallengeAnswer:
    result: torch.Tensor
    commitment: bytes
    seconds: float


def answer_challenge(
    nonce: bytes,
    n: int,
    dtype: str | torch.dtype = "bf16",
    device: str | torch.device | None = None,
    deadline_s: float | None = None,
) -> ChallengeAnswer:
    """The provider side: derive inputs, multiply, commit. `seconds` is the provider's own clock;
    with `deadline_s` it raises DeadlineExceeded once the product cannot be done in that long."""
    dev = resolve_device(device)
    t0 = time.perf_counter()
    a, b = derive_inputs(nonce, n, dtype, dev)
    c = compute_product(a, b, None if deadline_s is None else t0 + deadline_s)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    digest = commit(c)
    return ChallengeAnswer(c, digest, time.perf_counter() - t0)


def verify_answer(
    nonce: bytes,
    n: int,
    dtype: str | torch.dtype,
    result: torch.Tensor,
    commitment: bytes,
    *,
    seed: int | bytes | None = None,
    rounds: int = DEFAULT_ROUNDS,
    device: str | torch.device | None = "cpu",
) -> bool:
    """The oracle side (step 4): commitment, shape, dtype, then Freivalds on re-derived inputs."""
    name = dtype_name(dtype)
    if result.shape != (n, n) or result.dtype != CHALLENGE_DTYPES[name]:
        return False
    if commit(result) != bytes(commitment):
        return False
    a, b = derive_inputs(nonce, n, name, device)
    return freivalds_check(a, b, result.to(a.device), rounds=rounds, seed=seed)


def time_allowance(
    claimed_class: int | str | GpuClass, n: int, dtype: str | torch.dtype, network_allowance_s: float
) -> float:
    """Most seconds the claimed class may take for an n x n challenge in `dtype`, on the oracle's clock.

    = 2 n^3 / (0.7 x dense peak of the class in dtype) + network_allowance_s
    (the CPU floor: its figure at 100%, since it is already a minimum). 0.7 is classify's
    MIN_FRACTION: a device at 70% of peak just makes it. `network_allowance_s` covers the round
    trip, the provider's input derivation from the nonce and hashing C; it is the oracle's to
    choose from its link to the provider. ValueError if the class has no such dtype.
    """
    cls = get_class(claimed_class)
    name = dtype_name(dtype)
    spec = cls.tflops(name)
    if spec is None:
        raise ValueError(f"challenge: {cls.name} has no {name} figure; challenge it in {cls.primary_dtype}")
    if n < 1 or network_allowance_s < 0:
        raise ValueError("challenge: n >= 1 and network_allowance_s >= 0")
    fraction = 1.0 if cls.is_floor else MIN_FRACTION
    return 2 * n**3 / (fraction * spec * 1e12) + network_allowance_s


# ----------------------------------------------------------------------------- memory challenge


def _chunk_seed(nonce: bytes, index: int) -> int:
    return int.from_bytes(hashlib.sha256(_MEM_DOMAIN + bytes(nonce) + index.to_bytes(8, "big")).digest()[:4], "big")


def _fill_chunk(out: torch.Tensor, nonce: bytes, index: int) -> None:
    """Write chunk `index`'s int32 words into `out` (1-D int32, any device).

    word[i] = mix32(i xor s_index), s_index from sha256(domain || nonce || index), mix32 the
    xorshift-multiply integer hash, all in exact int64 arithmetic: identical bits on CPU and GPU.
    """
    x = torch.arange(out.numel(), dtype=torch.int64, device=out.device)
    x.bitwise_xor_(_chunk_seed(nonce, index))
    for _ in range(2):
        x.bitwise_xor_(x >> 16)
        x.mul_(_MIX).bitwise_and_(_MASK32)
    x.bitwise_xor_(x >> 16)
    x.sub_((x >> 31) << 32)  # to signed int32 range exactly
    out.copy_(x)


def _chunk_digest(index: int, words: torch.Tensor) -> bytes:
    """sha256(domain || index || 256 int64 column sums of the chunk as a (-1, 256) matrix)."""
    sums = words.view(-1, _LANES).sum(dim=0, dtype=torch.int64).cpu()
    payload = sums.numpy().astype("<i8").tobytes()
    return hashlib.sha256(_MEM_DOMAIN + b"/chunk" + index.to_bytes(8, "big") + payload).digest()


def memory_root(chunk_bytes: int, digests: Sequence[bytes]) -> bytes:
    """The provider's commitment to its chunk digests: sha256(domain || chunk_bytes || count || digests)."""
    h = hashlib.sha256(_MEM_ROOT_DOMAIN + int(chunk_bytes).to_bytes(8, "big") + len(digests).to_bytes(8, "big"))
    for d in digests:
        h.update(d)
    return h.digest()


@dataclass(frozen=True)
class MemoryProof:
    chunk_bytes: int
    digests: tuple[bytes, ...]
    seconds: float = 0.0

    @property
    def n_chunks(self) -> int:
        return len(self.digests)

    @property
    def working_set_bytes(self) -> int:
        return self.chunk_bytes * len(self.digests)

    @property
    def root(self) -> bytes:
        return memory_root(self.chunk_bytes, self.digests)


def memory_chunks(claimed_bytes: int, fraction: float, chunk_bytes: int) -> int:
    """How many chunks the working set has: floor(fraction x claimed / chunk_bytes), at least 1."""
    if chunk_bytes <= 0 or chunk_bytes % (4 * _LANES):
        raise ValueError(f"challenge: chunk_bytes must be a positive multiple of {4 * _LANES}")
    if not 0 < fraction <= 1:
        raise ValueError("challenge: fraction must be in (0, 1]")
    n = math.floor(fraction * claimed_bytes / chunk_bytes)
    if n < 1:
        raise ValueError("challenge: the working set is smaller than one chunk")
    return n


def memory_proof(
    nonce: bytes,
    claimed_bytes: int,
    device: str | torch.device | None = None,
    *,
    fraction: float = DEFAULT_MEMORY_FRACTION,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> MemoryProof:
    """The provider side: allocate fraction x claimed_bytes on the device at once, fill every
    chunk from the nonce, then digest every chunk. Raises MemoryError if it cannot allocate."""
    dev = resolve_device(device)
    n_chunks = memory_chunks(claimed_bytes, fraction, chunk_bytes)
    words = chunk_bytes // 4
    t0 = time.perf_counter()
    try:
        ws = torch.empty((n_chunks, words), dtype=torch.int32, device=dev)
    except (RuntimeError, MemoryError) as e:  # torch.OutOfMemoryError is a RuntimeError
        raise MemoryError(f"challenge: cannot allocate {n_chunks * chunk_bytes} bytes on {dev}: {e}") from e
    for k in range(n_chunks):
        _fill_chunk(ws[k], nonce, k)
    digests = tuple(_chunk_digest(k, ws[k]) for k in range(n_chunks))
    del ws
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return MemoryProof(chunk_bytes, digests, time.perf_counter() - t0)


def sample_chunk_indices(seed: bytes, n_chunks: int, k: int) -> list[int]:
    """K distinct chunk indices from verifier randomness `seed` (drawn after the root arrived)."""
    k = min(k, n_chunks)
    g = torch.Generator(device="cpu").manual_seed(seed_from_nonce(bytes(seed), _SAMPLE_DOMAIN))
    return sorted(torch.randperm(n_chunks, generator=g)[:k].tolist())


def verify_memory_proof(
    nonce: bytes,
    proof: MemoryProof,
    root: bytes,
    indices: Sequence[int],
    claimed_bytes: int,
    *,
    fraction: float = DEFAULT_MEMORY_FRACTION,
    device: str | torch.device | None = "cpu",
) -> bool:
    """The oracle side: size, root, and the sampled chunks recomputed from the nonce (O(K x chunk))."""
    if proof.n_chunks != memory_chunks(claimed_bytes, fraction, proof.chunk_bytes):
        return False
    if proof.root != bytes(root):
        return False
    dev = resolve_device(device)
    buf = torch.empty(proof.chunk_bytes // 4, dtype=torch.int32, device=dev)
    for k in indices:
        if not 0 <= k < proof.n_chunks:
            return False
        _fill_chunk(buf, nonce, k)
        if _chunk_digest(k, buf) != proof.digests[k]:
            return False
    return True
