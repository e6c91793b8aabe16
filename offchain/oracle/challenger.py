"""The operator side of one hardware challenge against a provider agent, over HTTP.

`run_hardware_challenge(endpoint, claimed_class)` runs, in order (protocol pieces in
`offchain/benchmark/challenge.py`, endpoints in `offchain/provider/agent.py`):

1. GET /health: the agent answers with ok (else fail_unreachable).
2. Matmul round: a fresh 32-byte nonce (secrets), POST /challenge {nonce, n, dtype}, timed with
   `time.monotonic()` around the POST on the oracle's own clock. The answer must arrive within
   `time_allowance(claimed_class, n, dtype, network_allowance)`, where
       network_allowance = network_allowance_s + derive_allowance_ns x 1e-9 x n^2
   The first term is the round trip (default 0.25 s: generous on loopback or a LAN, set it
   from the link for remote providers); the second is the provider's CPU-side work that does
   not depend on its GPU: deriving A and B from the nonce and hashing C (measured ~19 ns per
   n^2 element on a 2-core Xeon VM; default 40 ns, i.e. 0.67 s at n = 4096, 2.7 s at 8192).
3. Only after the commitment arrived: a fresh Freivalds seed; GET /challenge/<id>/result; the
   body must hash (sha256) to the commitment, parse as an n x n tensor of the dtype, and pass
   `freivalds_check` against A, B re-derived from the nonce.
4. Memory round: a fresh nonce, POST /memory sized to the claimed memory x fraction; only
   after the root arrived, a fresh seed picks `k_chunks` indices; POST /memory/<id>/open; the
   digests must hash to the root and the sampled chunks must match (`verify_memory_proof`).

Outcomes: "pass"; "fail_misreport" (too slow for the class, wrong product, commitment
mismatch, bad memory proof, a challenge refused with a 4xx); "fail_unreachable" (connection
refused, timeout, a 5xx, health not ok). Every exchanged value goes into `transcript`, and
`transcript_hash` is sha256 of its canonical JSON (sorted keys, no spaces), so a report can
commit to exactly what was observed.

Sizes (`default_challenge`): a CPU claim is challenged in fp32 at n = 1024 (allowed 0.215 s of
compute at the 0.01 TFLOPS floor); a GPU class in its primary dtype (bf16, or fp32 for T4) at
n = 8192. At n = 8192 an H100 needs ~1.6 ms of compute, so its allowance is essentially the
network + derivation term; a CPU needs 8-20 s there (this VM: bf16 1024^3 products at ~85
GFLOPS, fp32 ~150 GFLOPS), so a CPU claiming any GPU class fails by several times. Smaller n
(tests use 4096) still fails a CPU by ~2x on this VM. Note what the timing cannot do at these
sizes: tell GPU classes apart, since all of them finish within the fixed term.

Never imports `offchain.provider`; they meet over HTTP only.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from offchain.benchmark import challenge as ch
from offchain.benchmark.gpu_classes import GpuClass, get_class
from offchain.benchmark.wire import parse_canonical, parse_hex

TRANSCRIPT_VERSION = "gpunet/hw-challenge/v1"
DEFAULT_NETWORK_ALLOWANCE_S = 0.25
DEFAULT_DERIVE_ALLOWANCE_NS = 40.0
DEFAULT_N_CPU = 1024
DEFAULT_N_GPU = 8192
DEFAULT_K_CHUNKS = 4
DEFAULT_CONNECT_TIMEOUT_S = 5.0
# The timed POST is given up on (-> fail_unreachable) after max(MIN_READ_TIMEOUT_S,
# READ_TIMEOUT_FACTOR x allowance): long enough that a working but slow device (a CPU needs
# ~15-25 s for n = 8192 bf16) is measured and fails as a misreport, not as unreachable.
MIN_READ_TIMEOUT_S = 60.0
READ_TIMEOUT_FACTOR = 10.0
# The untimed downloads / memory proof get this long at least.
TRANSFER_TIMEOUT_S = 120.0

PASS = "pass"
FAIL_MISREPORT = "fail_misreport"
FAIL_UNREACHABLE = "fail_unreachable"


@dataclass
class ChallengeOutcome:
    passed: bool
    outcome: str  # "pass" | "fail_misreport" | "fail_unreachable"
    reasons: list[str]
    claimed_class: int
    n: int
    dtype: str
    elapsed_s: float | None  # oracle's clock around POST /challenge
    allowance_s: float | None
    effective_tflops: float | None  # 2 n^3 / elapsed_s / 1e12, in `dtype`
    transcript: dict[str, Any] = field(repr=False)
    transcript_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, ASCII: the bytes `transcript_hash` hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def transcript_hash(transcript: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(transcript)).hexdigest()


def default_challenge(claimed_class: int | str | GpuClass) -> tuple[int, str]:
    """(n, dtype) for a class: fp32 at 1024 for the CPU floor, the class's primary dtype at 8192 otherwise."""
    cls = get_class(claimed_class)
    if cls.is_floor:
        return DEFAULT_N_CPU, "fp32"
    return DEFAULT_N_GPU, cls.primary_dtype


def base_url(endpoint: str) -> str:
    """'host:port' or 'http(s)://host:port[/prefix]' -> a base URL without a trailing slash."""
    e = endpoint.strip()
    if "://" not in e:
        e = "http://" + e
    return e.rstrip("/")


class _Unreachable(Exception):
    pass


class _Busy(Exception):
    """HTTP 429: the agent is computing another operator's challenge; retry, untimed."""


class _Misreport(Exception):
    pass


def _error_text(r: requests.Response) -> str:
    try:
        msg = r.json().get("error")
    except (ValueError, AttributeError):
        msg = None
    return str(msg) if msg else (r.text[:200] or r.reason or "")


def _request(
    session: requests.Session, method: str, url: str, *, what: str, timeout: tuple[float, float], **kw: Any
) -> requests.Response:
    """One HTTP call: network errors and 5xx -> _Unreachable, other non-200 -> _Misreport."""
    try:
        r = session.request(method, url, timeout=timeout, **kw)
    except requests.Timeout as e:
        raise _Unreachable(f"{what}: timed out ({type(e).__name__})") from None
    except requests.RequestException as e:
        raise _Unreachable(f"{what}: {type(e).__name__}: {str(e)[:200]}") from None
    if r.status_code == 429:
        raise _Busy(f"{what}: busy")
    if r.status_code >= 500:
        raise _Unreachable(f"{what}: HTTP {r.status_code}: {_error_text(r)}")
    if r.status_code != 200:
        raise _Misreport(f"{what}: provider refused (HTTP {r.status_code}): {_error_text(r)}")
    return r


BUSY_RETRY_SECONDS = 120.0


def _request_when_free(
    session: requests.Session, method: str, url: str, *, what: str, timeout: tuple[float, float], **kw: Any
) -> tuple[requests.Response, float]:
    """`_request`, retrying while the agent answers 429 (busy with another operator's challenge),
    with random back-off, for at most BUSY_RETRY_SECONDS. Returns the response and the seconds the
    successful attempt took (only that attempt is timed)."""
    deadline = time.monotonic() + BUSY_RETRY_SECONDS
    while True:
        t0 = time.monotonic()
        try:
            r = _request(session, method, url, what=what, timeout=timeout, **kw)
            return r, time.monotonic() - t0
        except _Busy:
            if time.monotonic() > deadline:
                raise _Unreachable(f"{what}: agent busy for {BUSY_RETRY_SECONDS:.0f}s") from None
            time.sleep(random.uniform(0.2, 1.0))


def _json_obj(r: requests.Response, what: str, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError:
        raise _Misreport(f"{what}: reply is not JSON") from None
    if not isinstance(body, dict) or any(k not in body for k in keys):
        raise _Misreport(f"{what}: reply lacks {', '.join(keys)}")
    return body


def _plain(v: Any) -> str | int | float | bool | None:
    """A provider-supplied scalar made safe for the canonical JSON (no NaN, no nesting)."""
    if v is None or isinstance(v, bool | int | str):
        return v if not isinstance(v, str) else v[:200]
    if isinstance(v, float):
        return v if v == v and abs(v) != float("inf") else None
    return str(v)[:200]


def probe_uptime(endpoint: str, timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> bool:
    """GET /health answers 200 with {"ok": true} within `timeout` seconds."""
    try:
        r = requests.get(base_url(endpoint) + "/health", timeout=timeout)
        return r.status_code == 200 and r.json().get("ok") is True
    except (requests.RequestException, ValueError, AttributeError):
        return False


def run_hardware_challenge(
    endpoint: str,
    claimed_class: int | str | GpuClass,
    *,
    n: int | None = None,
    dtype: str | None = None,
    network_allowance_s: float = DEFAULT_NETWORK_ALLOWANCE_S,
    derive_allowance_ns: float = DEFAULT_DERIVE_ALLOWANCE_NS,
    check_memory: bool = True,
    memory_claim_bytes: int | None = None,
    memory_fraction: float = ch.DEFAULT_MEMORY_FRACTION,
    memory_chunk_bytes: int = ch.DEFAULT_CHUNK_BYTES,
    k_chunks: int = DEFAULT_K_CHUNKS,
    freivalds_rounds: int = ch.DEFAULT_ROUNDS,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    read_timeout_s: float | None = None,
    rng: Callable[[int], bytes] = secrets.token_bytes,
    session: requests.Session | None = None,
) -> ChallengeOutcome:
    """One hardware challenge (see the module docstring). `n`/`dtype` default per `default_challenge`;
    `memory_claim_bytes` defaults to the class's VRAM; `rng(k)` returns k fresh random bytes
    (nonces and post-commitment seeds); `read_timeout_s` bounds the timed POST (default
    max(60 s, 10 x allowance)). Raises ValueError/KeyError only for bad arguments."""
    cls = get_class(claimed_class)
    dn, ddt = default_challenge(cls)
    n = dn if n is None else int(n)
    dtype = ch.dtype_name(ddt if dtype is None else dtype)
    derive_s = derive_allowance_ns * 1e-9 * n * n
    allowance = ch.time_allowance(cls, n, dtype, network_allowance_s + derive_s)
    mem_claim = cls.vram_bytes if memory_claim_bytes is None else int(memory_claim_bytes)
    if check_memory:
        ch.memory_chunks(mem_claim, memory_fraction, memory_chunk_bytes)  # ValueError early on bad sizes
    read_timeout = (
        read_timeout_s if read_timeout_s is not None else max(MIN_READ_TIMEOUT_S, READ_TIMEOUT_FACTOR * allowance)
    )
    url = base_url(endpoint)
    own_session = session is None
    s = session or requests.Session()

    reasons: list[str] = []
    unreachable = False
    elapsed: float | None = None
    answered = False
    tx: dict[str, Any] = {
        "version": TRANSCRIPT_VERSION,
        "endpoint": url,
        "claimed_class": {"id": cls.class_id, "name": cls.name},
        "started_unix": round(time.time(), 3),
        "params": {
            "n": n,
            "dtype": dtype,
            "network_allowance_s": network_allowance_s,
            "derive_allowance_s": round(derive_s, 6),
            "allowance_s": allowance,
            "freivalds_rounds": freivalds_rounds,
            "read_timeout_s": read_timeout,
        },
    }
    try:
        # 1. health
        r = _request(s, "GET", url + "/health", what="health", timeout=(connect_timeout_s, connect_timeout_s))
        try:
            health = r.json()
        except ValueError:
            health = None
        if not isinstance(health, dict) or health.get("ok") is not True:
            raise _Unreachable("health: the agent did not answer {'ok': true}")
        tx["health"] = {k: _plain(health.get(k)) for k in ("provider", "claimed_class", "device", "version", "torch")}

        # 2. matmul round, timed
        mm: dict[str, Any] = {}
        tx["matmul"] = mm
        nonce = rng(32)
        mm["nonce"] = nonce.hex()
        t0 = time.monotonic()
        try:
            r, elapsed = _request_when_free(
                s,
                "POST",
                url + "/challenge",
                what="challenge",
                timeout=(connect_timeout_s, read_timeout),
                json={"nonce": nonce.hex(), "n": n, "dtype": dtype},
            )
        except (_Unreachable, _Misreport):
            elapsed = time.monotonic() - t0
            mm["elapsed_s"] = round(elapsed, 6)
            raise
        mm["elapsed_s"] = round(elapsed, 6)
        reply = _json_obj(r, "challenge", ("challenge_id", "commitment"))
        answered = True
        cid = str(reply["challenge_id"])
        mm["challenge_id"] = cid
        mm["provider_seconds"] = _plain(reply.get("provider_seconds"))  # the provider's word, untrusted
        try:
            commitment = parse_hex(reply["commitment"], min_bytes=32, max_bytes=32, what="commitment")
        except ValueError as e:
            raise _Misreport(f"challenge: {e}") from None
        mm["commitment"] = commitment.hex()
        if reply.get("n") != n or reply.get("dtype") != dtype:
            raise _Misreport(f"challenge: reply is for n={reply.get('n')} {reply.get('dtype')}, asked n={n} {dtype}")
        if elapsed > allowance:
            reasons.append(
                f"too slow for claimed class {cls.name}: took {elapsed:.3f}s, allowed {allowance:.3f}s "
                f"(n={n} {dtype}, {2 * n**3 / elapsed / 1e12:.3g} TFLOPS effective)"
            )

        # 3. correctness, with a seed drawn only now that the commitment is in
        r_seed = rng(32)
        mm["r_seed"] = r_seed.hex()
        itemsize = 4 if dtype == "fp32" else 2
        r = _request(
            s,
            "GET",
            f"{url}/challenge/{cid}/result",
            what="result",
            timeout=(connect_timeout_s, max(TRANSFER_TIMEOUT_S, read_timeout)),
        )
        data = r.content
        mm["result_bytes"] = len(data)
        mm["result_sha256"] = hashlib.sha256(data).hexdigest()
        mm["commitment_ok"] = mm["result_sha256"] == commitment.hex()
        if not mm["commitment_ok"]:
            raise _Misreport("result: the downloaded bytes do not hash to the commitment")
        try:
            c = parse_canonical(data, max_bytes=n * n * itemsize + 4096)
        except ValueError as e:
            raise _Misreport(f"result: {e}") from None
        if tuple(c.shape) != (n, n) or c.dtype != ch.CHALLENGE_DTYPES[dtype]:
            raise _Misreport(f"result: got {tuple(c.shape)} {c.dtype}, expected ({n}, {n}) {dtype}")
        a, b = ch.derive_inputs(nonce, n, dtype, "cpu")
        ok = ch.freivalds_check(a, b, c, rounds=freivalds_rounds, seed=r_seed)
        del a, b, c, data
        mm["freivalds_ok"] = ok
        if not ok:
            reasons.append(f"wrong product: Freivalds' check failed for n={n} {dtype} (the result is not A @ B)")

        # 4. memory round (untimed)
        if check_memory:
            mem: dict[str, Any] = {}
            tx["memory"] = mem
            m_nonce = rng(32)
            mem.update(
                nonce=m_nonce.hex(),
                claimed_bytes=mem_claim,
                fraction=memory_fraction,
                chunk_bytes=memory_chunk_bytes,
                k_chunks=k_chunks,
            )
            r, mem_elapsed = _request_when_free(
                s,
                "POST",
                url + "/memory",
                what="memory",
                timeout=(connect_timeout_s, TRANSFER_TIMEOUT_S),
                json={
                    "nonce": m_nonce.hex(),
                    "claimed_bytes": mem_claim,
                    "fraction": memory_fraction,
                    "chunk_bytes": memory_chunk_bytes,
                },
            )
            mem["elapsed_s"] = round(mem_elapsed, 6)
            reply = _json_obj(r, "memory", ("memory_id", "root", "n_chunks"))
            mid = str(reply["memory_id"])
            try:
                root = parse_hex(reply["root"], min_bytes=32, max_bytes=32, what="memory root")
            except ValueError as e:
                raise _Misreport(f"memory: {e}") from None
            n_chunks = reply["n_chunks"]
            mem.update(memory_id=mid, root=root.hex(), n_chunks=n_chunks)
            want_chunks = ch.memory_chunks(mem_claim, memory_fraction, memory_chunk_bytes)
            if n_chunks != want_chunks:
                raise _Misreport(f"memory: {n_chunks!r} chunks, the claim needs {want_chunks}")
            s_seed = rng(32)  # drawn only now that the root is in
            indices = ch.sample_chunk_indices(s_seed, want_chunks, k_chunks)
            mem.update(sample_seed=s_seed.hex(), indices=indices)
            r = _request(
                s,
                "POST",
                f"{url}/memory/{mid}/open",
                what="memory open",
                timeout=(connect_timeout_s, TRANSFER_TIMEOUT_S),
                json={"indices": indices},
            )
            reply = _json_obj(r, "memory open", ("digests",))
            raw = reply["digests"]
            if not isinstance(raw, list) or len(raw) != want_chunks:
                raise _Misreport(f"memory open: expected {want_chunks} digests")
            try:
                digests = tuple(parse_hex(d, min_bytes=32, max_bytes=32, what="chunk digest") for d in raw)
            except ValueError as e:
                raise _Misreport(f"memory open: {e}") from None
            proof = ch.MemoryProof(memory_chunk_bytes, digests)
            mem["digests_sha256"] = hashlib.sha256(b"".join(digests)).hexdigest()
            ok = ch.verify_memory_proof(m_nonce, proof, root, indices, mem_claim, fraction=memory_fraction)
            mem["ok"] = ok
            if not ok:
                reasons.append(
                    f"memory proof failed: the sampled chunks of a {proof.working_set_bytes}-byte working set "
                    "do not match the root"
                )
    except _Unreachable as e:
        unreachable = True
        reasons.append(str(e))
    except _Misreport as e:
        reasons.append(str(e))
    finally:
        if own_session:
            s.close()

    if unreachable:
        outcome = FAIL_UNREACHABLE
    elif reasons:
        outcome = FAIL_MISREPORT
    else:
        outcome = PASS
    tflops = 2 * n**3 / elapsed / 1e12 if answered and elapsed else None
    tx["outcome"] = outcome
    tx["reasons"] = list(reasons)
    tx["effective_tflops"] = tflops
    return ChallengeOutcome(
        passed=outcome == PASS,
        outcome=outcome,
        reasons=reasons,
        claimed_class=cls.class_id,
        n=n,
        dtype=dtype,
        elapsed_s=elapsed,
        allowance_s=allowance,
        effective_tflops=tflops,
        transcript=tx,
        transcript_hash=transcript_hash(tx),
    )


__all__ = [
    "DEFAULT_DERIVE_ALLOWANCE_NS",
    "DEFAULT_NETWORK_ALLOWANCE_S",
    "FAIL_MISREPORT",
    "FAIL_UNREACHABLE",
    "PASS",
    "ChallengeOutcome",
    "base_url",
    "canonical_json",
    "default_challenge",
    "probe_uptime",
    "run_hardware_challenge",
    "transcript_hash",
]
