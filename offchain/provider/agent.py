"""The provider agent's HTTP server: hardware challenges and content-addressed blobs
(stdlib ThreadingHTTPServer).

The oracle drives one challenge over these endpoints (see `offchain/oracle/challenger.py` and
`offchain/benchmark/challenge.py` for the protocol); users upload job specs and inputs, and
anyone downloads them and job outputs, as blobs. Every JSON reply is an object, every error is
`{"error": "<what is wrong and how to fix it>"}` with a 4xx/5xx status, never a trace.

    GET  /health
         -> {"ok": true, "provider": addr, "claimed_class": id, "claimed_class_name": name,
             "device": "cpu" | "cuda:0", "version": AGENT_VERSION, "torch": torch version}
    POST /challenge  {"nonce": hex (16-64 bytes), "n": int, "dtype": "fp32" | "bf16" | "fp16",
                      "deadline_s": number (optional)}
         -> {"challenge_id": hex, "commitment": hex32, "n", "dtype", "provider_seconds"}
         Derives A, B from the nonce, computes C = A @ B on the device, commits to C and only
         then replies: the oracle times this request on its own clock. C's bytes stay in a
         small in-memory cache (LRU of `cache_size` entries, each dropped after `cache_ttl_s`).
         With `deadline_s` (the oracle's fail line for the round) the product is computed in row
         blocks and abandoned as soon as it cannot be done within that many seconds of the
         request: -> {"aborted": "deadline", "n", "dtype", "provider_seconds", "rows_done"}.
         So a device far too slow for its claim is busy for about `deadline_s`, not minutes.
    GET  /challenge/<id>/result
         -> application/octet-stream: `offchain.benchmark.wire.canonical_bytes(C)`, the exact
            preimage `challenge.commit` hashes, so sha256(body) == commitment. 404 if the id
            is unknown or expired.
    POST /memory  {"nonce": hex, "claimed_bytes": int, "fraction": float in (0, 1],
                   "chunk_bytes": int (multiple of 1024)}
         -> {"memory_id": hex, "root": hex32, "n_chunks": int, "chunk_bytes": int,
             "provider_seconds"}: `challenge.memory_proof` on the device, all at once.
         422 if the working set is over this agent's `max_working_set_bytes` or cannot be
         allocated (the claim cannot be backed).
    POST /memory/<id>/open  {"indices": [int, ...]}
         -> {"memory_id", "chunk_bytes", "n_chunks", "root", "indices", "digests": [hex32, ...]}
         All chunk digests (the root is a hash over all of them, so the verifier needs them
         all to check it) for the indices the verifier drew after it saw the root; the
         verifier recomputes the sampled chunks from the nonce (`verify_memory_proof`).
    PUT  /blobs/<sha256 hex>  body: the blob's bytes (Content-Length required)
         -> 201 {"hash": hex, "size": int} (200 if it was already here: PUT is idempotent).
         400 if sha256(body) != hex, 413 over the agent's cap (`max_blob_bytes`, default
         64 MiB). Job specs (`workloads.base.canonical_json(spec)`, named by the on-chain
         spec_hash) and the inputs a spec names by hash are uploaded here by the user before
         the job is funded; the job worker stores outputs here too.
    GET  /blobs/<sha256 hex>  (HEAD: the same headers, no body)
         -> application/octet-stream: the blob (sha256(body) == hex). 404 if unknown.
         A job's `result_uri` on-chain is `<agent url>/blobs/<result hash hex>`; blobs stay
         served after the job is final (see `offchain/provider/blobs.py`).

Status codes: 400 malformed request (the message says which field and what is accepted),
404 unknown path or id, 405 wrong method, 411 no Content-Length, 413 body too large,
422 cannot satisfy, 500 an internal error (logged here, reported as a one-line message).

One challenge computes at a time (a lock), so concurrent challenges do not slow each other
down unevenly; a busy agent answers 429 {"error", "busy": "challenge" | "job", "retry_after_s"}
and the oracle retries untimed. The job worker (`offchain/provider/worker.py`) takes the same
lock while it executes a job, so a challenge never shares the device with a job. Busy is never
a failure: an oracle that cannot get a turn within its wait calls the challenge INCONCLUSIVE and
comes back later. To give it a turn, a challenge refused because of a job is remembered: before
the worker starts its next job it waits (up to `challenge_gap_s`) until a challenge has run.

Challenge state is only the short-lived caches: a restarted agent answers new challenges as
before and 404s on ids it no longer has, which the oracle treats as a failed round. Blobs live
on disk (`blob_dir`; a temporary directory when none is given) and survive restarts.

Challenge cheat modes, for demos and tests: "wrong-challenge" corrupts a few entries of C by
about their row's norm before committing (the commitment matches the served bytes; Freivalds
fails); "slow" sleeps `slow_delay_s` after computing, before replying. (Job cheats,
"wrong-output", "skip-work" and "cheaper-model", belong to the job worker: such an agent
answers its hardware challenges honestly, so it becomes Active and then cheats on jobs.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch

from offchain.benchmark import challenge as ch
from offchain.benchmark.gpu_classes import get_class
from offchain.benchmark.measure import resolve_device
from offchain.benchmark.wire import canonical_bytes, parse_hex
from offchain.provider.blobs import DEFAULT_MAX_BLOB_BYTES, BlobError, BlobStore

log = logging.getLogger("gpunet.provider.agent")

AGENT_VERSION = "gpunet-agent/1"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9650
CHEAT_MODES = ("wrong-challenge", "slow")
MAX_BODY_BYTES = 1 << 20
# A refused (413) upload up to this much over the cap is read and discarded so the client sees
# the 413 instead of a reset connection; larger ones are cut off.
_DRAIN_BYTES = 16 << 20
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
        self.challenges = TtlLru(config.cache_size, config.cache_ttl_s)
        self.memories = TtlLru(max(16, config.cache_size), config.cache_ttl_s)
        self._compute = threading.Lock()
        # Who holds `_compute` ("challenge" or "job"), and the gap bookkeeping: when a challenge
        # was last refused because of a job, and when a challenge last ran to its end.
        self._holder: str | None = None
        self._gap = threading.Condition()
        self._wanted_at: float | None = None
        self._challenged_at = 0.0
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
        # One challenge computes at a time, and a second one is refused at once (HTTP 429) rather
        # than queued: the oracle times the exchange, so queueing behind another operator's
        # challenge (or a job) would make an honest device look slow. The oracle retries a 429
        # untimed, and reads a long busy spell as INCONCLUSIVE, never as a failure.
        if not self._compute.acquire(blocking=False):
            holder = self._holder or "challenge"
            if holder == "job":
                with self._gap:
                    self._wanted_at = time.monotonic()
                raise RequestError(
                    429,
                    "busy running a job: the next job waits for this challenge; retry shortly",
                    {"busy": "job", "retry_after_s": _RETRY_AFTER_JOB_S},
                )
            raise RequestError(
                429,
                "busy with another challenge: retry shortly",
                {"busy": "challenge", "retry_after_s": _RETRY_AFTER_CHALLENGE_S},
            )
        self._holder = "challenge"
        try:
            yield
        finally:
            self._holder = None
            self._compute.release()
            with self._gap:
                self._challenged_at = time.monotonic()
                self._gap.notify_all()

    def challenge_wanted(self) -> bool:
        """A challenge was refused because of a job and none has run since (within the gap window)."""
        with self._gap:
            w = self._wanted_at
            return w is not None and self._challenged_at < w and time.monotonic() - w < self.config.challenge_gap_s

    def wait_for_challenge_gap(self, stop: threading.Event | None = None) -> float:
        """Before a job: if a challenge was turned away for the previous one, wait until one has
        run (or `challenge_gap_s` passed since it was turned away). Returns the seconds waited."""
        t0 = time.monotonic()
        with self._gap:
            while self._wanted_at is not None and self._challenged_at < self._wanted_at:
                left = self._wanted_at + self.config.challenge_gap_s - time.monotonic()
                if left <= 0 or (stop is not None and stop.is_set()):
                    break
                self._gap.wait(min(left, 0.5))
            self._wanted_at = None
        waited = time.monotonic() - t0
        if waited > 0.01:
            log.info(json.dumps({"event": "challenge_gap", "waited_s": round(waited, 3)}))
        return waited

    @contextlib.contextmanager
    def device_lock(self):
        """Held by the job worker while it executes: a challenge arriving meanwhile gets 429
        (busy: job) and is retried by the oracle, rather than being timed while sharing the
        device with a job. Before taking it, the worker leaves a gap for a challenge that was
        turned away (`wait_for_challenge_gap`)."""
        self.wait_for_challenge_gap()
        with self._compute:
            self._holder = "job"
            try:
                yield
            finally:
                self._holder = None

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
        }

    def challenge(self, body: dict) -> dict:
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


_ID = r"([0-9a-f]{32})"
_HASH = r"([0-9a-f]{64})"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"/health"), "health"),
    ("POST", re.compile(r"/challenge"), "challenge"),
    ("GET", re.compile(rf"/challenge/{_ID}/result"), "result"),
    ("POST", re.compile(r"/memory"), "memory"),
    ("POST", re.compile(rf"/memory/{_ID}/open"), "memory_open"),
    ("PUT", re.compile(rf"/blobs/{_HASH}"), "blob_put"),
    ("GET", re.compile(rf"/blobs/{_HASH}"), "blob_get"),
]
_ENDPOINTS = (
    "GET /health, POST /challenge, GET /challenge/<id>/result, POST /memory, POST /memory/<id>/open, "
    "PUT /blobs/<sha256 hex>, GET /blobs/<sha256 hex>"
)


class _Handler(BaseHTTPRequestHandler):
    server_version = AGENT_VERSION
    server: _AgentServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _body(self) -> dict:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise RequestError(400, "bad Content-Length header") from None
        if length > MAX_BODY_BYTES:
            raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            raise RequestError(400, "the body must be a JSON object (Content-Type: application/json)") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the body must be a JSON object (Content-Type: application/json)")
        return body

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            for m, pattern, name in _ROUTES:
                match = pattern.fullmatch(path)
                if not match:
                    continue
                if m != method and not (method == "HEAD" and m == "GET"):
                    continue
                self._route(name, match.groups())
                return
            if any(p.fullmatch(path) for _, p, _ in _ROUTES):
                raise RequestError(405, f"{method} not allowed on {path} ({_ENDPOINTS})")
            if path.startswith("/blobs/"):
                raise RequestError(404, f"no such endpoint {method} {path}: a blob name is a lowercase sha256 hex")
            raise RequestError(404, f"no such endpoint {method} {path} ({_ENDPOINTS})")
        except RequestError as e:
            self._json(e.status, {"error": e.message, **e.extra})
        except (BrokenPipeError, ConnectionResetError):
            log.info("client went away during %s %s", method, path)
        except Exception as e:  # never a trace on the wire
            log.exception("agent: internal error on %s %s", method, path)
            try:
                self._json(500, {"error": f"internal error ({type(e).__name__}); see the agent's log"})
            except OSError:
                pass

    def _route(self, name: str, groups: tuple[str, ...]) -> None:
        agent = self.server.agent
        if name == "health":
            self._json(200, agent.health())
        elif name == "challenge":
            self._json(200, agent.challenge(self._body()))
        elif name == "result":
            self._send(200, agent.result(groups[0]), "application/octet-stream")
        elif name == "memory":
            self._json(200, agent.memory(self._body()))
        elif name == "memory_open":
            self._json(200, agent.memory_open(groups[0], self._body()))
        elif name == "blob_put":
            self._blob_put(agent.blobs, groups[0])
        elif name == "blob_get":
            self._blob_get(agent.blobs, groups[0])
        else:  # pragma: no cover - routes and names are in sync
            raise RequestError(404, f"no route {name}")

    def _blob_put(self, store: BlobStore, h: str) -> None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise RequestError(411, "PUT /blobs/<hash> needs a Content-Length header (send the body in one piece)")
        try:
            length = int(raw)
        except ValueError:
            raise RequestError(400, "bad Content-Length header") from None
        if length < 0:
            raise RequestError(400, "bad Content-Length header")
        if length > store.max_bytes:
            if length - store.max_bytes <= _DRAIN_BYTES:
                left = length
                while left > 0 and (chunk := self.rfile.read(min(1 << 20, left))):
                    left -= len(chunk)
            else:
                self.close_connection = True
            raise RequestError(413, f"blob of {length} bytes is over this agent's cap of {store.max_bytes} bytes")
        existed = store.has(h)
        try:
            store.put_stream(self.rfile, length, h)
        except BlobError as e:
            raise RequestError(e.status, str(e)) from None
        self._json(200 if existed else 201, {"hash": h, "size": length})

    def _blob_get(self, store: BlobStore, h: str) -> None:
        f = store.open(h)
        if f is None:
            raise RequestError(404, f"no blob {h} here (upload it with PUT /blobs/{h})")
        with f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            # Content-addressed: the bytes behind a name never change.
            self.send_header("Cache-Control", "public, max-age=31536000, immutable")
            self.end_headers()
            if self.command != "HEAD":
                shutil.copyfileobj(f, self.wfile, 1 << 20)

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")


class _AgentServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], agent: ProviderAgent):
        super().__init__(address, _Handler)
        self.agent = agent

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def server_close(self) -> None:
        super().server_close()
        self.agent.close()


def serve(config: AgentConfig) -> tuple[_AgentServer, threading.Thread]:
    """Start the agent on (config.host, config.port) in a daemon thread; port 0 picks a free one.

    Returns (server, thread); `server.url` is its base URL. Stop with `server.shutdown();
    server.server_close()`.
    """
    agent = ProviderAgent(config)
    server = _AgentServer((config.host, int(config.port)), agent)
    thread = threading.Thread(target=server.serve_forever, name=f"gpunet-agent:{server.url}", daemon=True)
    thread.start()
    log.info(
        "agent %s serving %s (class %s, device %s)", AGENT_VERSION, server.url, agent.claimed_class.name, agent.device
    )
    return server, thread


def run_forever(
    config: AgentConfig,
    *,
    on_ready: Callable[[_AgentServer], None] | None = None,
    job_worker: Callable[[ProviderAgent, str, threading.Event], None] | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM, then shut down cleanly (in-flight requests may be cut).

    `job_worker(agent, url, stop)`, when given, runs in the calling (main) thread while the
    HTTP server runs in its own: it follows the chain and runs jobs (`offchain/provider/worker.py`)
    until `stop` is set, and must return then. Chain work stays on the main thread, where ape's
    network context was entered; an exception from it stops the agent (and is re-raised).
    """
    server, thread = serve(config)
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    if on_ready is not None:
        on_ready(server)
    try:
        if job_worker is not None:
            job_worker(server.agent, server.url, stop)
        while not stop.wait(0.5):
            if not thread.is_alive():
                break
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("agent on %s stopped", server.url)


__all__ = [
    "AGENT_VERSION",
    "CHEAT_MODES",
    "DEFAULT_PORT",
    "AgentConfig",
    "ProviderAgent",
    "RequestError",
    "TtlLru",
    "run_forever",
    "serve",
]
