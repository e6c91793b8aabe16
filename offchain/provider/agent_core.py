"""The provider agent's logic behind its HTTP endpoints (`offchain/provider/agent.py` documents
the wire API): configuration, the hardware challenge and memory proof on the device, the
short-lived caches of their results, and the challenge cheat modes for demos and tests.
Usable without a server; the device is shared with the job worker through `device_gate`, and
so are the Prometheus metrics (`metrics`, an `offchain/provider/metrics.py` `AgentMetrics`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch

from offchain.benchmark import challenge as ch
from offchain.benchmark.gpu_classes import get_class
from offchain.benchmark.measure import resolve_device
from offchain.benchmark.wire import canonical_bytes, parse_hex
from offchain.provider.blobs import DEFAULT_MAX_BLOB_BYTES, BlobStore
from offchain.provider.device_gate import DeviceBusy, DeviceGate
from offchain.provider.metrics import AgentMetrics

log = logging.getLogger("gpunet.provider.agent")

AGENT_VERSION = "gpunet-agent/1"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9650
CHEAT_MODES = ("wrong-challenge", "slow")
MAX_CHUNKS = 1 << 16
MAX_DEADLINE_S = 3600.0
# What a refused challenge is told to wait before asking again.
_RETRY_AFTER_CHALLENGE_S = 1.0
_RETRY_AFTER_JOB_S = 15.0
_WRONG_ENTRIES = 8


class RequestError(Exception):
    """A client error: `status` and a message that says what to fix (`extra`: more reply fields)."""

    def __init__(self, status: int, message: str, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra or {}


@dataclass
class AgentConfig:
    provider: str
    claimed_class: int | str = 1
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0: any free port
    device: str | None = None  # None / "auto": cuda if torch sees a GPU, else cpu
    cheat: str | None = None  # None, "wrong-challenge" or "slow" (hardware challenges only)
    slow_delay_s: float = 2.0
    max_n: int = 16384
    # Largest memory-challenge working set; None: the GPU's total memory, or 2 GiB on a CPU.
    max_working_set_bytes: int | None = None
    cache_size: int = 4
    cache_ttl_s: float = 300.0
    # Where blobs live (None: a temporary directory removed when the process exits).
    blob_dir: str | None = None
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES
    # Signed blob requests, readers and quotas (offchain/provider/blob_access.py): the job
    # worker attaches `agent.access` once it is on the chain. `gpunet provider serve` turns it
    # on; off, anyone holding a hash may get or put a blob.
    blob_auth: bool = False
    blob_quota_bytes: int = 1 << 30
    blob_retention_s: float = 7 * 24 * 3600.0
    blob_orphan_ttl_s: float = 24 * 3600.0
    # How long the job worker holds its next job back for a challenge that was refused while a
    # job ran (the oracle retries within ~30 s; see the module docstring).
    challenge_gap_s: float = 90.0
    claimed_class_id: int = field(init=False)

    def __post_init__(self) -> None:
        self.claimed_class_id = get_class(self.claimed_class).class_id  # KeyError names the known ones
        if self.device in ("", "auto"):
            self.device = None
        if self.cheat in ("", "none"):
            self.cheat = None
        if self.cheat is not None and self.cheat not in CHEAT_MODES:
            raise ValueError(f"agent: cheat must be one of {', '.join(CHEAT_MODES)} or None, not {self.cheat!r}")
        if not 0 <= int(self.port) <= 65535:
            raise ValueError("agent: port must be 0..65535")
        if self.max_n < 1 or self.cache_size < 1 or self.cache_ttl_s <= 0 or self.slow_delay_s < 0:
            raise ValueError("agent: max_n, cache_size >= 1; cache_ttl_s > 0; slow_delay_s >= 0")
        if self.max_blob_bytes < 1:
            raise ValueError("agent: max_blob_bytes must be >= 1")
        if self.challenge_gap_s < 0:
            raise ValueError("agent: challenge_gap_s must be >= 0")


class TtlLru:
    """A thread-safe LRU of at most `size` entries, each dropped `ttl_s` after it was stored."""

    def __init__(self, size: int, ttl_s: float):
        self.size, self.ttl_s = size, ttl_s
        self._d: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        for k in [k for k, (t, _) in self._d.items() if now - t > self.ttl_s]:
            del self._d[k]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            self._d[key] = (now, value)
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def get(self, key: str) -> Any | None:
        with self._lock:
            self._expire(time.monotonic())
            if key not in self._d:
                return None
            self._d.move_to_end(key)
            return self._d[key][1]

    def __len__(self) -> int:
        with self._lock:
            return len(self._d)


@dataclass(frozen=True)
class _Challenge:
    result: torch.Tensor  # on the host; `canonical_bytes(result)` hashes to `commitment`
    commitment: bytes
    n: int
    dtype: str


@dataclass(frozen=True)
class _Memory:
    proof: ch.MemoryProof


def _corrupt(c: torch.Tensor, nonce: bytes) -> torch.Tensor:
    """The wrong-challenge cheat: a few entries moved by their row's 2-norm (far above Freivalds' tolerance)."""
    c = c.clone()
    n, m = c.shape
    g = torch.Generator(device="cpu").manual_seed(ch.seed_from_nonce(nonce, b"gpunet/agent/cheat"))
    rows = torch.randint(0, n, (_WRONG_ENTRIES,), generator=g).tolist()
    cols = torch.randint(0, m, (_WRONG_ENTRIES,), generator=g).tolist()
    for i, j in zip(rows, cols, strict=True):
        norm = float(torch.linalg.vector_norm(c[i].to(torch.float64)))
        c[i, j] = float(c[i, j]) + max(norm, 1.0)
    return c


def _int_field(body: dict, name: str, lo: int, hi: int) -> int:
    v = body.get(name)
    if not isinstance(v, int) or isinstance(v, bool):
        raise RequestError(400, f"{name!r} must be an integer in {lo}..{hi}, got {v!r}")
    if not lo <= v <= hi:
        raise RequestError(400, f"{name!r} must be in {lo}..{hi}, got {v}")
    return v


def _deadline_field(body: dict) -> float | None:
    v = body.get("deadline_s")
    if v is None:
        return None
    if not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v <= MAX_DEADLINE_S:
        raise RequestError(400, f"'deadline_s' must be a number of seconds in (0, {MAX_DEADLINE_S:g}], got {v!r}")
    return float(v)


def _nonce_field(body: dict) -> bytes:
    try:
        return parse_hex(body.get("nonce"), min_bytes=16, max_bytes=64, what="'nonce'")
    except ValueError as e:
        raise RequestError(400, f"{e} (32 random bytes recommended)") from None


class ProviderAgent:
    """The challenge logic behind the HTTP handler (usable without a server)."""

    def __init__(self, config: AgentConfig):
        self.config = config
        self.device = resolve_device(config.device)
        self.claimed_class = get_class(config.claimed_class_id)
        # Shared with the job worker of this process (`JobWorker.metrics`); served at GET /metrics.
        self.metrics = AgentMetrics()
        self.metrics.set_info(config.provider, self.claimed_class.name, str(self.device), AGENT_VERSION)
        self.challenges = TtlLru(config.cache_size, config.cache_ttl_s)
        self.memories = TtlLru(max(16, config.cache_size), config.cache_ttl_s)
        self.gate = DeviceGate(config.challenge_gap_s)
        self._tmp_blobs: str | None = None
        if config.blob_dir is None:
            self._tmp_blobs = tempfile.mkdtemp(prefix="gpunet-blobs-")
        self.blobs = BlobStore(config.blob_dir or self._tmp_blobs, config.max_blob_bytes)
        # Warm the device up (thread pools, kernels, allocator) so the first timed round
        # measures the product, not a cold start.
        ch.compute_product(*ch.derive_inputs(bytes(32), 256, "fp32", self.device), time.perf_counter() + 60)
        if config.max_working_set_bytes is not None:
            self.max_working_set = int(config.max_working_set_bytes)
        elif self.device.type == "cuda":
            self.max_working_set = torch.cuda.get_device_properties(self.device).total_memory
        else:
            self.max_working_set = 2 << 30

    @contextlib.contextmanager
    def _busy_guard(self):
        """The device for one challenge, or HTTP 429 at once (see `device_gate`)."""
        try:
            with self.gate.challenge():
                yield
        except DeviceBusy as e:
            if e.holder == "job":
                raise RequestError(
                    429,
                    "busy running a job: the next job waits for this challenge; retry shortly",
                    {"busy": "job", "retry_after_s": _RETRY_AFTER_JOB_S},
                ) from None
            raise RequestError(
                429,
                "busy with another challenge: retry shortly",
                {"busy": "challenge", "retry_after_s": _RETRY_AFTER_CHALLENGE_S},
            ) from None

    def challenge_wanted(self) -> bool:
        return self.gate.challenge_wanted()

    def wait_for_challenge_gap(self, stop: threading.Event | None = None) -> float:
        return self.gate.wait_for_gap(stop)

    def device_lock(self):
        """Held by the job worker while it executes (`DeviceGate.job`): a challenge arriving
        meanwhile gets 429 (busy: job) rather than being timed while sharing the device."""
        return self.gate.job()

    def close(self) -> None:
        """Removes the temporary blob directory, if this agent made one."""
        if self._tmp_blobs is not None:
            shutil.rmtree(self._tmp_blobs, ignore_errors=True)
            self._tmp_blobs = None

    def health(self) -> dict:
        return {
            "ok": True,
            "provider": self.config.provider,
            "claimed_class": self.claimed_class.class_id,
            "claimed_class_name": self.claimed_class.name,
            "device": str(self.device),
            "version": AGENT_VERSION,
            "torch": torch.__version__,
            "max_blob_bytes": self.blobs.max_bytes,
            # "starting" until the job worker is on the chain and checks signed blob requests
            # (uploads meanwhile get 503 with "retry": true); "signed" after; "open" without.
            "blob_access": ("signed" if getattr(self, "access", None) is not None else "starting")
            if self.config.blob_auth
            else "open",
        }

    def challenge(self, body: dict) -> dict:
        """A matmul challenge (counted in `metrics.challenges` by outcome)."""
        return self.metrics.serve_challenge("matmul", lambda: self._challenge(body))

    def _challenge(self, body: dict) -> dict:
        nonce = _nonce_field(body)
        n = _int_field(body, "n", 1, self.config.max_n)
        dtype = body.get("dtype")
        if dtype not in ch.CHALLENGE_DTYPES:
            raise RequestError(400, f"'dtype' must be one of {', '.join(ch.CHALLENGE_DTYPES)}, got {dtype!r}")
        deadline_s = _deadline_field(body)
        with self._busy_guard():
            t0 = time.perf_counter()
            try:
                deadline = None if deadline_s is None else t0 + deadline_s
                a, b = ch.derive_inputs(nonce, n, dtype, self.device, deadline)
                c = ch.compute_product(a, b, deadline)
            except (MemoryError, torch.OutOfMemoryError) as e:
                raise RequestError(422, f"cannot hold an n={n} {dtype} challenge on {self.device}: {e}") from None
            except ch.DeadlineExceeded as e:
                log.info(json.dumps({"event": "challenge_aborted", "n": n, "dtype": dtype, "deadline_s": deadline_s,
                                     "seconds": round(e.seconds, 3), "rows_done": e.rows_done}))  # fmt: skip
                return {
                    "aborted": "deadline",
                    "n": n,
                    "dtype": dtype,
                    "deadline_s": deadline_s,
                    "rows_done": e.rows_done,
                    "provider_seconds": round(time.perf_counter() - t0, 6),
                }
            del a, b
            if self.config.cheat == "wrong-challenge":
                c = _corrupt(c, nonce)
            c = c.cpu()  # synchronises a GPU; the result download serialises it, untimed
            commitment = ch.commit(c)
            seconds = time.perf_counter() - t0
            if self.config.cheat == "slow":
                time.sleep(self.config.slow_delay_s)
        cid = secrets.token_hex(16)
        self.challenges.put(cid, _Challenge(c, commitment, n, dtype))
        return {
            "challenge_id": cid,
            "commitment": commitment.hex(),
            "n": n,
            "dtype": dtype,
            "provider_seconds": round(seconds, 6),
        }

    def result(self, cid: str) -> bytes:
        entry = self.challenges.get(cid)
        if entry is None:
            raise RequestError(
                404, f"no challenge {cid!r} here (unknown, or expired after {self.config.cache_ttl_s:g}s)"
            )
        return canonical_bytes(entry.result)

    def memory(self, body: dict) -> dict:
        """A memory proof (counted in `metrics.challenges` by outcome)."""
        return self.metrics.serve_challenge("memory", lambda: self._memory(body))

    def _memory(self, body: dict) -> dict:
        nonce = _nonce_field(body)
        claimed = _int_field(body, "claimed_bytes", 1, 1 << 50)
        chunk = _int_field(body, "chunk_bytes", 1024, 1 << 32)
        if chunk % 1024:
            raise RequestError(400, f"'chunk_bytes' must be a multiple of 1024, got {chunk}")
        fraction = body.get("fraction")
        if not isinstance(fraction, int | float) or isinstance(fraction, bool) or not 0 < fraction <= 1:
            raise RequestError(400, f"'fraction' must be a number in (0, 1], got {fraction!r}")
        try:
            n_chunks = ch.memory_chunks(claimed, float(fraction), chunk)
        except ValueError as e:
            raise RequestError(400, f"{e}: raise 'fraction' or lower 'chunk_bytes'") from None
        if n_chunks > MAX_CHUNKS:
            raise RequestError(400, f"{n_chunks} chunks is more than {MAX_CHUNKS}: raise 'chunk_bytes'")
        if n_chunks * chunk > self.max_working_set:
            raise RequestError(
                422,
                f"working set of {n_chunks * chunk} bytes is over this agent's limit of "
                f"{self.max_working_set} bytes on {self.device}",
            )
        with self._busy_guard():
            try:
                proof = ch.memory_proof(nonce, claimed, self.device, fraction=float(fraction), chunk_bytes=chunk)
            except MemoryError as e:
                raise RequestError(422, str(e)) from None
        mid = secrets.token_hex(16)
        self.memories.put(mid, _Memory(proof))
        return {
            "memory_id": mid,
            "root": proof.root.hex(),
            "n_chunks": proof.n_chunks,
            "chunk_bytes": proof.chunk_bytes,
            "provider_seconds": round(proof.seconds, 6),
        }

    def memory_open(self, mid: str, body: dict) -> dict:
        entry = self.memories.get(mid)
        if entry is None:
            raise RequestError(404, f"no memory proof {mid!r} here (unknown, or expired)")
        proof = entry.proof
        idx = body.get("indices")
        if (
            not isinstance(idx, list)
            or len(idx) > proof.n_chunks
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < proof.n_chunks for i in idx)
        ):
            raise RequestError(
                400, f"'indices' must be a list of at most {proof.n_chunks} chunk indices in 0..{proof.n_chunks - 1}"
            )
        return {
            "memory_id": mid,
            "chunk_bytes": proof.chunk_bytes,
            "n_chunks": proof.n_chunks,
            "root": proof.root.hex(),
            "indices": idx,
            "digests": [d.hex() for d in proof.digests],
        }


__all__ = [
    "AGENT_VERSION",
    "CHEAT_MODES",
    "DEFAULT_PORT",
    "AgentConfig",
    "ProviderAgent",
    "RequestError",
    "TtlLru",
]
