"""The operator side of one hardware challenge against a provider agent, over HTTP.

`run_hardware_challenge(endpoint, claimed_class)` runs, in order (protocol pieces in
`offchain/benchmark/challenge.py`, the rule in `offchain/benchmark/decision.py`, endpoints in
`offchain/provider/agent.py`):

1. GET /health: the agent answers with ok (else fail_unreachable).
2. Up to k = 3 timed matmul rounds. Each: a fresh 32-byte nonce (secrets), POST /challenge
   {nonce, n, dtype, deadline_s}, timed with `time.monotonic()` around the POST on the oracle's
   own clock. The allowance A = `time_allowance(claimed_class, n, dtype, fixed)`,
       fixed = network_allowance_s + overhead_ns x 1e-9 x n^2
   (the round trip, default 0.25 s, plus the provider's per-element work besides the product:
   deriving A and B on its device, moving C to the host and hashing it; 100 ns for the CPU
   floor, 20 ns for GPU classes, which derive on the GPU). The
   round's deadline D = 2A is the fail line: the agent abandons the product once it cannot
   make D (`aborted`), and the oracle stops waiting at D + a grace. Rounds stop at the first
   one within A.
3. Every answered round, only after its commitment arrived: a fresh Freivalds seed; GET
   /challenge/<id>/result; the body must hash (sha256) to the commitment, parse as an n x n
   tensor of the dtype, and pass `freivalds_check` against A, B re-derived from the nonce.
4. Only when the timing passed: the memory round. A fresh nonce, POST /memory sized to the
   claimed memory x fraction; only after the root arrived, a fresh seed picks `k_chunks`
   indices; POST /memory/<id>/open; the digests must hash to the root and the sampled chunks
   must match (`verify_memory_proof`).

Outcomes: "pass"; "fail_misreport" (a wrong product, a commitment mismatch, a bad memory proof,
a challenge refused with a 4xx, or every one of the k rounds over the fail line);
"fail_unreachable" (connection refused or reset, a 5xx, health not ok); "inconclusive" (the
best round was between A and 2A, or the agent stayed busy -- with a job or another operator's
challenge -- longer than `busy_wait_s`). Busy is never read as unreachable; an inconclusive
challenge is never reported on-chain (the oracle service tries again later). Every exchanged
value goes into `transcript`, and `transcript_hash` is sha256 of its canonical JSON (sorted
keys, no spaces), so a report can commit to exactly what was observed.

Sizes (`default_challenge`), chosen from a time budget: a CPU claim is challenged in fp32 at
n = 1024 (A = 0.215 s of compute at the 0.01 TFLOPS floor + 0.25 s + 0.1 s = 0.57 s); a GPU
class in its primary dtype (bf16, or fp32 for T4) at the largest n of 1024..8192 whose fail
line 2A fits `ROUND_BUDGET_S` (4 s): n = 8192 with the default allowances (A = 1.6 s for an
H100, 1.8 s for a T4). Every GPU class computes that in milliseconds (a T4 in 0.2 s), so a
GPU of the class passes with a wide margin under load; a 2-core CPU needs 6 s or more (this
VM: ~3 s to derive the inputs, 2.8 s for a bf16 product with AVX512-BF16, minutes without)
and stops at the fail line. What the timing cannot do at these sizes: tell GPU classes apart,
or a CPU more than ~2x this VM's from a GPU class (its round would land between A and 2A:
INCONCLUSIVE, so it stays Pending but is not slashed).

Never imports `offchain.provider`; they meet over HTTP only.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from offchain.benchmark import challenge as ch
from offchain.benchmark import decision as dc
from offchain.benchmark.gpu_classes import GpuClass, get_class
from offchain.benchmark.wire import parse_canonical, parse_hex
from offchain.oracle import agent_http as ah
from offchain.oracle.agent_http import DEFAULT_CONNECT_TIMEOUT_S, base_url, probe_uptime

TRANSCRIPT_VERSION = "gpunet/hw-challenge/v2"
DEFAULT_NETWORK_ALLOWANCE_S = 0.25
# The provider's per-element work besides the product: deriving A and B from the nonce (on its
# own device), moving C to the host and hashing it. A CPU does all of it on the CPU (measured
# ~50 ns per element idle on a 2-core VM, up to ~2x under full load: 100 ns); a GPU derives on
# the GPU in milliseconds and hashes C on its host at ~5-7 ns per element (fp32): 20 ns.
CPU_OVERHEAD_NS = 100.0
GPU_OVERHEAD_NS = 20.0
DEFAULT_N_CPU = 1024
# Candidate sizes for GPU classes, and the budget the fail line of one round must fit: it bounds
# what one challenge can cost any provider, honest or not (k rounds x the fail line at most).
GPU_SIZES = (1024, 2048, 4096, 8192)
ROUND_BUDGET_S = 4.0
DEFAULT_K_CHUNKS = 4
# The oracle waits this long past a round's fail line before it calls the round over.
MIN_GRACE_S = 2.0
# How long the oracle keeps asking an agent that answers 429 (busy) before it calls the whole
# challenge inconclusive and comes back later.
BUSY_WAIT_S = 30.0
# The untimed downloads / memory proof get this long at least.
TRANSFER_TIMEOUT_S = 120.0

PASS = "pass"
FAIL_MISREPORT = "fail_misreport"
FAIL_UNREACHABLE = "fail_unreachable"
INCONCLUSIVE = "inconclusive"
# What goes on-chain: INCONCLUSIVE never does.
DECISIVE = (PASS, FAIL_MISREPORT, FAIL_UNREACHABLE)


@dataclass
class ChallengeOutcome:
    passed: bool
    outcome: str  # "pass" | "fail_misreport" | "fail_unreachable" | "inconclusive"
    reasons: list[str]
    claimed_class: int
    n: int
    dtype: str
    elapsed_s: float | None  # the best round, oracle's clock around POST /challenge
    allowance_s: float | None
    effective_tflops: float | None  # 2 n^3 / elapsed_s / 1e12, in `dtype`
    transcript: dict[str, Any] = field(repr=False)
    transcript_hash: str = ""
    # Each round's seconds on the oracle's clock (None: no answer by the fail line).
    round_seconds: list[float | None] = field(default_factory=list)
    # What the agent reported computing (its own clock, untrusted): matmul rounds + memory proof.
    provider_seconds: float = 0.0

    @property
    def decisive(self) -> bool:
        return self.outcome in DECISIVE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, ASCII: the bytes `transcript_hash` hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def transcript_hash(transcript: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(transcript)).hexdigest()


def overhead_ns(claimed_class: int | str | GpuClass) -> float:
    """The per-element allowance for the class's work besides the product (see CPU_OVERHEAD_NS)."""
    return CPU_OVERHEAD_NS if get_class(claimed_class).is_floor else GPU_OVERHEAD_NS


def round_allowance(
    claimed_class: int | str | GpuClass,
    n: int,
    dtype: str,
    network_allowance_s: float = DEFAULT_NETWORK_ALLOWANCE_S,
    derive_allowance_ns: float | None = None,
) -> float:
    """A for one round: the class's compute at its floor, the network term and the per-element
    overhead term (`derive_allowance_ns`, default `overhead_ns(class)`) x n^2."""
    per_el = overhead_ns(claimed_class) if derive_allowance_ns is None else derive_allowance_ns
    return ch.time_allowance(claimed_class, n, dtype, network_allowance_s + per_el * 1e-9 * n * n)


def default_challenge(
    claimed_class: int | str | GpuClass,
    *,
    network_allowance_s: float = DEFAULT_NETWORK_ALLOWANCE_S,
    derive_allowance_ns: float | None = None,
    budget_s: float = ROUND_BUDGET_S,
) -> tuple[int, str]:
    """(n, dtype) for a class: fp32 at 1024 for the CPU floor; the class's primary dtype at the
    largest of GPU_SIZES whose fail line (2A) fits `budget_s` (the smallest if none does)."""
    cls = get_class(claimed_class)
    if cls.is_floor:
        return DEFAULT_N_CPU, "fp32"
    dtype = cls.primary_dtype
    chosen = GPU_SIZES[0]
    for n in GPU_SIZES:
        a = round_allowance(cls, n, dtype, network_allowance_s, derive_allowance_ns)
        if dc.FAIL_FACTOR * a <= budget_s:
            chosen = n
    return chosen, dtype


class _Inconclusive(Exception):
    pass


@dataclass
class _Ctx:
    """What one challenge carries between its steps."""

    s: requests.Session
    url: str
    n: int
    dtype: str
    allowance: float
    fail_line: float
    grace: float
    connect_timeout_s: float
    busy_wait_s: float
    freivalds_rounds: int
    rng: Callable[[int], bytes]
    reasons: list[str] = field(default_factory=list)
    provider_seconds: float = 0.0
    timed_out: bool = False


def _timed_round(ctx: _Ctx, times: list[float | None], rounds_tx: list[dict[str, Any]]) -> None:
    """One matmul round: appends its transcript entry to `rounds_tx` and its seconds (None when
    over the fail line) to `times` -- before verifying the product, so a wrong answer's timing
    is on record too."""
    rd: dict[str, Any] = {"index": len(times)}
    rounds_tx.append(rd)
    nonce = ctx.rng(32)
    rd["nonce"] = nonce.hex()
    body = {"nonce": nonce.hex(), "n": ctx.n, "dtype": ctx.dtype, "deadline_s": round(ctx.fail_line, 6)}
    # After a round timed out, the agent may still be computing it: a 429 now is its own doing,
    # so it waits only as long as a round may take instead of the full busy wait.
    busy_wait = min(ctx.busy_wait_s, ctx.fail_line + ctx.grace) if ctx.timed_out else ctx.busy_wait_s
    try:
        r, elapsed = ah.request_when_free(
            ctx.s,
            "POST",
            ctx.url + "/challenge",
            what="challenge",
            timeout=(ctx.connect_timeout_s, ctx.fail_line + ctx.grace),
            busy_wait_s=busy_wait,
            json=body,
        )
    except requests.ReadTimeout:
        ctx.timed_out = True
        rd["over"] = "no answer by the fail line"
        times.append(None)
        return
    except ah.Busy:
        if not ctx.timed_out:
            rounds_tx.pop()
            raise
        rd["over"] = "still busy with the previous, timed-out round"
        times.append(None)
        return
    rd["elapsed_s"] = round(elapsed, 6)
    reply = ah.json_obj(r, "challenge", ("n", "dtype"))
    if reply.get("n") != ctx.n or reply.get("dtype") != ctx.dtype:
        raise ah.Misreport(
            f"challenge: reply is for n={reply.get('n')} {reply.get('dtype')}, asked n={ctx.n} {ctx.dtype}"
        )
    rd["provider_seconds"] = ah.plain(reply.get("provider_seconds"))  # the provider's word, untrusted
    ctx.provider_seconds += ah.seconds(reply.get("provider_seconds"))
    if reply.get("aborted"):
        rd["over"] = f"aborted by the agent ({ah.plain(reply.get('aborted'))})"
        times.append(None)
        return
    reply = ah.json_obj(r, "challenge", ("challenge_id", "commitment"))
    cid = str(reply["challenge_id"])
    rd["challenge_id"] = cid
    try:
        commitment = parse_hex(reply["commitment"], min_bytes=32, max_bytes=32, what="commitment")
    except ValueError as e:
        raise ah.Misreport(f"challenge: {e}") from None
    rd["commitment"] = commitment.hex()
    times.append(None if elapsed > ctx.fail_line else elapsed)
    _verify_round(ctx, rd, nonce, cid, commitment)


def _verify_round(ctx: _Ctx, rd: dict[str, Any], nonce: bytes, cid: str, commitment: bytes) -> None:
    """Correctness of one answered round, with a seed drawn only now that the commitment is in."""
    r_seed = ctx.rng(32)
    rd["r_seed"] = r_seed.hex()
    itemsize = 4 if ctx.dtype == "fp32" else 2
    r = ah.request(
        ctx.s,
        "GET",
        f"{ctx.url}/challenge/{cid}/result",
        what="result",
        timeout=(ctx.connect_timeout_s, TRANSFER_TIMEOUT_S),
    )
    data = r.content
    rd["result_bytes"] = len(data)
    rd["result_sha256"] = hashlib.sha256(data).hexdigest()
    rd["commitment_ok"] = rd["result_sha256"] == commitment.hex()
    if not rd["commitment_ok"]:
        raise ah.Misreport("result: the downloaded bytes do not hash to the commitment")
    try:
        c = parse_canonical(data, max_bytes=ctx.n * ctx.n * itemsize + 4096)
    except ValueError as e:
        raise ah.Misreport(f"result: {e}") from None
    if tuple(c.shape) != (ctx.n, ctx.n) or c.dtype != ch.CHALLENGE_DTYPES[ctx.dtype]:
        raise ah.Misreport(f"result: got {tuple(c.shape)} {c.dtype}, expected ({ctx.n}, {ctx.n}) {ctx.dtype}")
    a, b = ch.derive_inputs(nonce, ctx.n, ctx.dtype, "cpu")
    ok = ch.freivalds_check(a, b, c, rounds=ctx.freivalds_rounds, seed=r_seed)
    rd["freivalds_ok"] = ok
    if not ok:
        raise ah.Misreport(
            f"wrong product: Freivalds' check failed for n={ctx.n} {ctx.dtype} (the result is not A @ B)"
        )


def _memory_round(
    ctx: _Ctx, mem_claim: int, memory_fraction: float, memory_chunk_bytes: int, k_chunks: int
) -> dict[str, Any]:
    mem: dict[str, Any] = {}
    m_nonce = ctx.rng(32)
    mem.update(
        nonce=m_nonce.hex(),
        claimed_bytes=mem_claim,
        fraction=memory_fraction,
        chunk_bytes=memory_chunk_bytes,
        k_chunks=k_chunks,
    )
    try:
        r, mem_elapsed = ah.request_when_free(
            ctx.s,
            "POST",
            ctx.url + "/memory",
            what="memory",
            timeout=(ctx.connect_timeout_s, TRANSFER_TIMEOUT_S),
            busy_wait_s=ctx.busy_wait_s,
            json={
                "nonce": m_nonce.hex(),
                "claimed_bytes": mem_claim,
                "fraction": memory_fraction,
                "chunk_bytes": memory_chunk_bytes,
            },
        )
    except requests.ReadTimeout as e:
        raise ah.Unreachable(f"memory: timed out ({type(e).__name__})") from None
    mem["elapsed_s"] = round(mem_elapsed, 6)
    reply = ah.json_obj(r, "memory", ("memory_id", "root", "n_chunks"))
    ctx.provider_seconds += ah.seconds(reply.get("provider_seconds"))
    mid = str(reply["memory_id"])
    try:
        root = parse_hex(reply["root"], min_bytes=32, max_bytes=32, what="memory root")
    except ValueError as e:
        raise ah.Misreport(f"memory: {e}") from None
    n_chunks = reply["n_chunks"]
    mem.update(memory_id=mid, root=root.hex(), n_chunks=n_chunks)
    want_chunks = ch.memory_chunks(mem_claim, memory_fraction, memory_chunk_bytes)
    if n_chunks != want_chunks:
        raise ah.Misreport(f"memory: {n_chunks!r} chunks, the claim needs {want_chunks}")
    s_seed = ctx.rng(32)  # drawn only now that the root is in
    indices = ch.sample_chunk_indices(s_seed, want_chunks, k_chunks)
    mem.update(sample_seed=s_seed.hex(), indices=indices)
    r = ah.request(
        ctx.s,
        "POST",
        f"{ctx.url}/memory/{mid}/open",
        what="memory open",
        timeout=(ctx.connect_timeout_s, TRANSFER_TIMEOUT_S),
        json={"indices": indices},
    )
    reply = ah.json_obj(r, "memory open", ("digests",))
    raw = reply["digests"]
    if not isinstance(raw, list) or len(raw) != want_chunks:
        raise ah.Misreport(f"memory open: expected {want_chunks} digests")
    try:
        digests = tuple(parse_hex(d, min_bytes=32, max_bytes=32, what="chunk digest") for d in raw)
    except ValueError as e:
        raise ah.Misreport(f"memory open: {e}") from None
    proof = ch.MemoryProof(memory_chunk_bytes, digests)
    mem["digests_sha256"] = hashlib.sha256(b"".join(digests)).hexdigest()
    ok = ch.verify_memory_proof(m_nonce, proof, root, indices, mem_claim, fraction=memory_fraction)
    mem["ok"] = ok
    if not ok:
        raise ah.Misreport(
            f"memory proof failed: the sampled chunks of a {proof.working_set_bytes}-byte working set "
            "do not match the root"
        )
    return mem


def run_hardware_challenge(
    endpoint: str,
    claimed_class: int | str | GpuClass,
    *,
    n: int | None = None,
    dtype: str | None = None,
    network_allowance_s: float = DEFAULT_NETWORK_ALLOWANCE_S,
    derive_allowance_ns: float | None = None,
    rounds: int = dc.DEFAULT_ROUNDS,
    fail_factor: float = dc.FAIL_FACTOR,
    busy_wait_s: float = BUSY_WAIT_S,
    check_memory: bool = True,
    memory_claim_bytes: int | None = None,
    memory_fraction: float = ch.DEFAULT_MEMORY_FRACTION,
    memory_chunk_bytes: int = ch.DEFAULT_CHUNK_BYTES,
    k_chunks: int = DEFAULT_K_CHUNKS,
    freivalds_rounds: int = ch.DEFAULT_ROUNDS,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    grace_s: float | None = None,
    rng: Callable[[int], bytes] = secrets.token_bytes,
    session: requests.Session | None = None,
) -> ChallengeOutcome:
    """One hardware challenge (see the module docstring). `n`/`dtype` default per `default_challenge`;
    `memory_claim_bytes` defaults to the class's VRAM; `rng(k)` returns k fresh random bytes
    (nonces and post-commitment seeds); `grace_s` is how long past the fail line a round's answer
    is still waited for (default max(2 s, the network allowance)). Raises ValueError/KeyError
    only for bad arguments."""
    cls = get_class(claimed_class)
    dn, ddt = default_challenge(cls, network_allowance_s=network_allowance_s, derive_allowance_ns=derive_allowance_ns)
    n = dn if n is None else int(n)
    dtype = ch.dtype_name(ddt if dtype is None else dtype)
    allowance = round_allowance(cls, n, dtype, network_allowance_s, derive_allowance_ns)
    if rounds < 1 or fail_factor <= 1 or busy_wait_s < 0:
        raise ValueError("challenger: rounds >= 1, fail_factor > 1, busy_wait_s >= 0")
    mem_claim = cls.vram_bytes if memory_claim_bytes is None else int(memory_claim_bytes)
    if check_memory:
        ch.memory_chunks(mem_claim, memory_fraction, memory_chunk_bytes)  # ValueError early on bad sizes
    grace = max(MIN_GRACE_S, network_allowance_s) if grace_s is None else float(grace_s)
    url = base_url(endpoint)
    own_session = session is None
    ctx = _Ctx(
        s=session or requests.Session(),
        url=url,
        n=n,
        dtype=dtype,
        allowance=allowance,
        fail_line=fail_factor * allowance,
        grace=grace,
        connect_timeout_s=connect_timeout_s,
        busy_wait_s=busy_wait_s,
        freivalds_rounds=freivalds_rounds,
        rng=rng,
    )
    times: list[float | None] = []
    verdict = None
    tx: dict[str, Any] = {
        "version": TRANSCRIPT_VERSION,
        "endpoint": url,
        "claimed_class": {"id": cls.class_id, "name": cls.name},
        "started_unix": round(time.time(), 3),
        "params": {
            "n": n,
            "dtype": dtype,
            "network_allowance_s": network_allowance_s,
            "overhead_ns": overhead_ns(cls) if derive_allowance_ns is None else derive_allowance_ns,
            "allowance_s": allowance,
            "fail_line_s": ctx.fail_line,
            "rounds": rounds,
            "freivalds_rounds": freivalds_rounds,
        },
    }
    try:
        # 1. health
        r = ah.request(ctx.s, "GET", url + "/health", what="health", timeout=(connect_timeout_s, connect_timeout_s))
        try:
            health = r.json()
        except ValueError:
            health = None
        if not isinstance(health, dict) or health.get("ok") is not True:
            raise ah.Unreachable("health: the agent did not answer {'ok': true}")
        tx["health"] = {k: ah.plain(health.get(k)) for k in ("provider", "claimed_class", "device", "version", "torch")}

        # 2-3. timed rounds, each answered one verified
        tx["rounds"] = []
        while dc.more_rounds_needed(times, allowance, rounds=rounds):
            _timed_round(ctx, times, tx["rounds"])
        verdict, why = dc.timing_verdict(times, allowance, rounds=rounds, fail_factor=fail_factor)
        if verdict == dc.FAIL:
            raise ah.Misreport(f"too slow for claimed class {cls.name}: {why} (n={n} {dtype})")
        if verdict == dc.INCONCLUSIVE:
            raise _Inconclusive(f"timing inconclusive for claimed class {cls.name}: {why} (n={n} {dtype})")

        # 4. memory round (untimed), only once the timing passed
        if check_memory:
            tx["memory"] = _memory_round(ctx, mem_claim, memory_fraction, memory_chunk_bytes, k_chunks)
        outcome = PASS
    except ah.Unreachable as e:
        outcome = FAIL_UNREACHABLE
        ctx.reasons.append(str(e))
    except ah.Misreport as e:
        outcome = FAIL_MISREPORT
        ctx.reasons.append(str(e))
    except (ah.Busy, _Inconclusive) as e:
        outcome = INCONCLUSIVE
        ctx.reasons.append(str(e))
    finally:
        if own_session:
            ctx.s.close()

    best = dc.best_seconds(times)
    tflops = 2 * n**3 / best / 1e12 if best else None
    tx["round_seconds"] = [None if t is None else round(t, 6) for t in times]
    tx["outcome"] = outcome
    tx["reasons"] = list(ctx.reasons)
    tx["effective_tflops"] = tflops
    return ChallengeOutcome(
        passed=outcome == PASS,
        outcome=outcome,
        reasons=list(ctx.reasons),
        claimed_class=cls.class_id,
        n=n,
        dtype=dtype,
        elapsed_s=best,
        allowance_s=allowance,
        effective_tflops=tflops,
        transcript=tx,
        transcript_hash=transcript_hash(tx),
        round_seconds=list(times),
        provider_seconds=round(ctx.provider_seconds, 6),
    )


__all__ = [
    "BUSY_WAIT_S",
    "DECISIVE",
    "CPU_OVERHEAD_NS",
    "GPU_OVERHEAD_NS",
    "DEFAULT_NETWORK_ALLOWANCE_S",
    "FAIL_MISREPORT",
    "FAIL_UNREACHABLE",
    "INCONCLUSIVE",
    "PASS",
    "ROUND_BUDGET_S",
    "ChallengeOutcome",
    "base_url",
    "canonical_json",
    "default_challenge",
    "probe_uptime",
    "round_allowance",
    "run_hardware_challenge",
    "transcript_hash",
]
