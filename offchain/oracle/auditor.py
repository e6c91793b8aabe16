"""One audit of one job: fetch what the provider committed to, re-execute, compare, escalate.

Pure: HTTP (the provider's blob endpoints) and torch; no chain. The oracle service calls
`audit_job` for every job in Audit (sampled or disputed) and signs a JobVerdict from the
outcome; each operator of the quorum runs its own audit.

Where things are: the provider agent serves content-addressed blobs at
`GET <agent>/blobs/<sha256 hex>` (404 if unknown): the spec (its canonical JSON, whose sha256
is the job's `spec_hash`), every input named in `spec["inputs"]`, and the output
(`offchain.workloads.output_bytes`, whose sha256 is the job's `result_hash`). `provider_url`
is one base URL or several (the result URI's base, the machine's registered endpoint); every
one is tried.

The rules, in the order they are checked (first that applies decides):

1. **Withheld is invalid** (DESIGN.md, "Job lifecycle": the provider must serve the output
   until the job is final; withholding it during an audit counts as invalid). The provider
   accepted the job, so it had the spec and the inputs, and it committed to the output, so it
   has that too. A blob that no candidate URL returns within `retries` attempts spread over
   `fetch_timeout_s` -> invalid: "spec withheld", "input withheld", "output withheld". Bytes that
   do not hash to the address are not the blob ("spec hash mismatch", "input hash mismatch",
   "output hash mismatch"); a blob over `max_blob_bytes` (default 1 GiB, 4x the largest output
   a built-in kind can produce: matmul_chain at n = 8192 fp32 is 256 MiB) is "... too large",
   so an endless stream cannot stall an audit until its deadline.
2. **The job's terms must match its spec**: a spec that is not canonical or fails
   `workloads.validate` ("spec invalid"), whose `compute_units` differ from the job's
   ("compute units mismatch"), or that fails deterministically when executed ("spec
   unexecutable": a WorkloadError, or the same other error on both configurations; two
   different errors are treated as the oracle's trouble, see below). Invalid, because
   the provider checks all of this with the same code, for free, before it accepts and locks
   collateral; an output of a job that cannot be re-executed as specified can never be a
   verified result; and paying for it would let a user and a provider in collusion buy
   "verified compute" (which emissions reward) with inflated compute units. Honest agents
   refuse such jobs, so this slashes only providers that skip the checks.
3. An output that does not parse as a workload output is invalid ("output malformed").
4. **Re-execution, escalated before an invalid verdict** (REFERENCES.md, "escalate before
   slashing"): the oracle executes the spec on its own device and `workloads.compare`s the
   provider's output against it. A match is valid ("match"). A mismatch is not yet a
   verdict: a third execution runs on a different configuration (CPU if the first ran on CUDA;
   CUDA if the first ran on CPU and a GPU is present; else another CPU thread count, which
   changes float reduction orders) and the verdict is the majority of the three executions
   (provider, oracle run 1, oracle run 2): valid if the third agrees with the provider
   ("match on escalation"), invalid if it does not either ("mismatch"). For `toploc_generate`
   the check is `toploc_generate.verify(spec, claimed)` (one prefill instead of re-generating),
   escalated the same way.

**Sealed jobs** (offchain/sealing.py): every blob is fetched and hash-checked as stored
(sealed); the operator opens the spec's envelope with its own keys and reads the inputs and the
output under the job's data key. The provider checked before accepting that every operator's
wrap opens (the wraps are deterministic, so it could), and it sealed the output itself, so:
a wrap to this operator that does not open, or a blob that does not open under the data key, is
invalid ("envelope does not open", "input does not open", "output does not open"). A job not
sealed to this operator at all (its key was published later), or sealed under a key version its
key file does not hold (lost), is `AuditUnavailable`: the committee's other members audit it.

Oracle-side trouble (out of memory, a bug) raises `AuditUnavailable`: no verdict may be signed
on it; the service retries later, and an audit that never completes times out in the
provider's favour (JobMarket pays it after `audit_deadline`).

`evidence` is what was observed (hashes, every fetch attempt, each execution's configuration,
timing and comparison); `evidence_hash` = sha256 of its canonical JSON, the JobVerdict's
`evidence_hash`. It contains timings and URLs, so two operators' evidence hashes differ even when
they agree on the verdict. `executed_units` counts the compute units the oracle spent
re-executing (the prefill's GFLOPs for toploc), for the verification-overhead figure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import torch

from offchain import workloads as W
from offchain.oracle.audit_fetch import _Fetched, base_urls, fetch_blob
from offchain.sealing import KeyMissing, Keyring, SealError, WrongKey, is_sealed, open_blob, shallow_json, unpack_spec
from offchain.sealing import recipients_of as _readers
from offchain.workloads import toploc_generate
from offchain.workloads.base import GFLOP, canonical_json, default_device

EVIDENCE_VERSION = "gpunet/audit/v1"
DEFAULT_FETCH_TIMEOUT_S = 60.0
DEFAULT_RETRIES = 4
DEFAULT_MAX_BLOB_BYTES = 2**30

# torch's thread count is process-wide and executions are heavy: one at a time per process
# (the service runs the leader's audit and peers' audits on different threads).
_EXEC_LOCK = threading.Lock()


class AuditUnavailable(RuntimeError):
    """The oracle could not complete the audit for reasons of its own: sign nothing."""


@dataclass
class AuditOutcome:
    valid: bool
    reason: str  # "match", "match on escalation", "mismatch", "output withheld", ...
    detail: str
    evidence: dict[str, Any] = field(repr=False)
    evidence_hash: bytes = b""  # sha256 of canonical_json(evidence), 32 bytes
    executed_units: float = 0.0  # compute units (GFLOP) the oracle re-executed
    seconds: float = 0.0  # wall time of the whole audit

    @property
    def executions(self) -> list[dict[str, Any]]:
        return self.evidence.get("executions", [])


@dataclass(frozen=True)
class ExecConfig:
    """Where and how one re-execution runs."""

    device: str
    threads: int

    def describe(self) -> dict[str, Any]:
        return {"device": self.device, "threads": self.threads}


def evidence_hash(evidence: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical_json(evidence)).digest()


def _finite(x: float) -> float | str:
    """Canonical JSON has no NaN/inf: write those as strings."""
    return x if math.isfinite(x) else str(x)


def _hex(value: bytes | str) -> str:
    if isinstance(value, str):
        return value.lower().removeprefix("0x")
    return bytes(value).hex()


# --------------------------------------------------------------------------- execution


def primary_config(device: str | torch.device | None = None) -> ExecConfig:
    dev = torch.device(device) if device is not None else default_device()
    return ExecConfig(str(dev), torch.get_num_threads())


def escalation_config(first: ExecConfig) -> ExecConfig:
    """A configuration that differs from `first` in what changes float orders: the device if
    there is another one, else the CPU thread count."""
    threads = torch.get_num_threads()
    if first.device.startswith("cuda"):
        return ExecConfig("cpu", threads)
    if torch.cuda.is_available():
        return ExecConfig("cuda", threads)
    other = max(1, first.threads // 2) if first.threads > 1 else 2
    return ExecConfig("cpu", other)


@contextlib.contextmanager
def _configured(cfg: ExecConfig) -> Iterator[None]:
    with _EXEC_LOCK:
        old = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            yield
        finally:
            torch.set_num_threads(old)


_ORACLE_SIDE = (MemoryError, torch.cuda.OutOfMemoryError)


def _run_check(spec: dict, claimed: W.Output, blobs: dict[str, bytes], cfg: ExecConfig, units: float) -> dict[str, Any]:
    """One oracle execution under `cfg`, compared with the claimed output. Returns its record:
    match (bool | None when it failed), detail, errors, seconds, and the reference's hash."""
    rec: dict[str, Any] = {"by": "oracle", **cfg.describe(), "units": units}
    t0 = time.monotonic()
    try:
        with _configured(cfg):
            if spec["kind"] == toploc_generate.NAME:
                rec["check"] = "toploc_verify"
                res = toploc_generate.verify(spec, claimed, cfg.device)
            else:
                rec["check"] = "reexecute"
                ref = W.execute(spec, cfg.device, blobs)
                rec["result_hash"] = W.result_hash(ref).hex()
                res = W.compare(claimed, ref)
    except _ORACLE_SIDE as e:
        raise AuditUnavailable(f"out of memory on {cfg.device}: {e}") from e
    except W.WorkloadError as e:
        rec.update(match=None, error=f"WorkloadError: {e}", deterministic=True)
    except Exception as e:  # noqa: BLE001 - a user's model may raise anything; judged below
        rec.update(match=None, error=f"{type(e).__name__}: {str(e)[:300]}", deterministic=False)
    else:
        rec.update(
            match=bool(res.match),
            detail=res.detail,
            max_abs_err=_finite(res.max_abs_err),
            max_rel_err=_finite(res.max_rel_err),
        )
    rec["seconds"] = round(time.monotonic() - t0, 4)
    return rec


def _units_per_check(spec: dict) -> float:
    if spec["kind"] == toploc_generate.NAME:
        return toploc_generate.verify_flops(spec) / GFLOP
    return float(W.compute_units(spec))


# --------------------------------------------------------------------------- the audit


def audit_job(
    job: dict,
    provider_url: str | Sequence[str],
    *,
    job_id: int | None = None,
    device: str | torch.device | None = None,
    escalation: ExecConfig | None = None,
    fetch_timeout_s: float = DEFAULT_FETCH_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
    session: requests.Session | None = None,
    keyring: Keyring | None = None,
    auth: Callable[[str, str], dict] | None = None,
) -> AuditOutcome:
    """Audits `job` (a JobMarket Job dict: spec_hash, result_hash, compute_units, ...) against
    the blobs served at `provider_url` (see the module docstring for the rules).

    `device`: the first re-execution's device (default CUDA when present); `escalation`: the
    configuration of the third execution (default `escalation_config`). Raises
    AuditUnavailable when the oracle itself cannot finish. `keyring`: this operator's
    encryption keys, to open a sealed job (see "Sealed jobs" in the module docstring);
    `auth(method, blob)`: the signed-request headers for the provider's agent
    (offchain/blob_auth.py), which serves blobs to the oracle operators."""
    t_start = time.monotonic()
    urls = base_urls(provider_url)
    spec_hex, result_hex = _hex(job["spec_hash"]), _hex(job["result_hash"])
    evidence: dict[str, Any] = {
        "version": EVIDENCE_VERSION,
        "job_id": job_id,
        "spec_hash": spec_hex,
        "result_hash": result_hex,
        "compute_units": int(job["compute_units"]),
        "provider": str(job.get("provider", "")),
        "urls": urls,
        "started_unix": round(time.time(), 3),
        "torch": torch.__version__,
        "fetch": {},
        "executions": [],
    }
    executed = 0.0

    def done(valid: bool, reason: str, detail: str) -> AuditOutcome:
        if evidence.get("sealed"):
            # The evidence is served by the oracle's API: no hash of a sealed job's plaintext
            # output in it (an observer could confirm a guessed output against it).
            for ex in evidence["executions"]:
                if ex.get("by") == "oracle":
                    ex.pop("result_hash", None)
        evidence["verdict"] = {"valid": valid, "reason": reason, "detail": detail}
        evidence["executed_units"] = executed
        return AuditOutcome(
            valid=valid,
            reason=reason,
            detail=detail,
            evidence=evidence,
            evidence_hash=evidence_hash(evidence),
            executed_units=executed,
            seconds=time.monotonic() - t_start,
        )

    if not urls:
        return done(False, "output withheld", "the provider gave no URL to fetch from")
    own_session = session is None
    s = session or requests.Session()
    try:

        def fetch(hexhash: str, what: str) -> _Fetched:
            f = fetch_blob(
                s, urls, hexhash, timeout_s=fetch_timeout_s, retries=retries, max_bytes=max_blob_bytes, auth=auth
            )
            evidence["fetch"][what] = f.record
            return f

        # 1. spec, inputs and output must be served (output first: it is what is on trial).
        out_f = fetch(result_hex, "output")
        if out_f.data is None:
            return done(False, f"output {out_f.problem}", f"output {result_hex} not obtained from {urls}")
        spec_f = fetch(spec_hex, "spec")
        if spec_f.data is None:
            return done(False, f"spec {spec_f.problem}", f"spec {spec_hex} not obtained from {urls}")
        spec_bytes, key, where = spec_f.data, None, None
        evidence["sealed"] = is_sealed(spec_bytes)
        if evidence["sealed"]:
            if keyring is None:
                raise AuditUnavailable("the job is sealed and this oracle has no encryption key file")
            try:
                key = keyring.open_key(spec_bytes)
                spec_bytes = open_blob(spec_bytes, key)
            except KeyMissing as e:  # this operator's own trouble: another member audits it
                raise AuditUnavailable(f"cannot open the sealed job: {e}") from None
            except WrongKey as e:
                if not any(a == keyring.address for a, _ in _readers(spec_f.data)):
                    # Not sealed to this operator at all (it published its key after the job
                    # was sealed, say): another committee member audits it.
                    raise AuditUnavailable(f"the job is not sealed to this operator: {e}") from None
                if str(job.get("user", "")).lower() == keyring.address:
                    # Its wrap is to the job user's own key file (this operator sealed the job as
                    # a user), which the provider cannot check: never a verdict (and a party to a
                    # job does not judge it); another committee member audits it.
                    raise AuditUnavailable(f"this operator is the job's user: {e}") from None
                return done(False, "envelope does not open", str(e)[:500])
            except SealError as e:
                return done(False, "envelope does not open", str(e)[:500])
            try:
                spec, where, sealer = unpack_spec(spec_bytes)
            except ValueError as e:
                return done(False, "spec invalid", str(e)[:500])
            if job.get("user") and sealer != str(job["user"]).lower():  # the provider checks this too
                return done(False, "spec invalid", f"the sealed spec is {sealer}'s, not the job's user's")
            spec_bytes = canonical_json(spec)

        # 2. the job's terms must match its spec.
        try:
            if not shallow_json(spec_bytes):
                raise ValueError("the spec nests too deep")
            spec = json.loads(spec_bytes)
            if canonical_json(spec) != spec_bytes:
                raise W.SpecError("the spec blob is not canonical JSON (sorted keys, no spaces)")
            W.validate(spec)
        except (ValueError, W.SpecError) as e:
            return done(False, "spec invalid", str(e)[:500])
        evidence["kind"] = spec["kind"]
        units = W.compute_units(spec)
        evidence["spec_compute_units"] = units
        if units != int(job["compute_units"]):
            return done(
                False, "compute units mismatch", f"the spec is {units} units, the job pays {job['compute_units']}"
            )
        blobs: dict[str, bytes] = {}
        for name, h in sorted(spec.get("inputs", {}).items()):
            f = fetch(where[h] if where is not None else h, f"input:{name}")
            if f.data is None:
                return done(False, f"input {f.problem}", f"input {name!r} ({h}) not obtained from {urls}")
            blobs[h] = f.data
            if key is not None:
                try:
                    blobs[h] = open_blob(f.data, key)
                except Exception as e:  # noqa: BLE001 - any failure is the sealed bytes'
                    return done(False, "input does not open", f"input {name!r}: {str(e)[:300]}")
                if hashlib.sha256(blobs[h]).hexdigest() != h:  # the provider's intake checks this too
                    return done(False, "input does not open", f"input {name!r} does not open to {h}")
        try:
            W.validate(spec, blobs)
        except W.SpecError as e:
            return done(False, "spec invalid", str(e)[:500])

        # 3. the output must open (a sealed job's, under its data key) and parse.
        out_bytes = out_f.data
        if key is not None:
            try:
                out_bytes = open_blob(out_bytes, key)
            except Exception as e:  # noqa: BLE001 - any failure (a malformed header too) is the provider's bytes
                return done(False, "output does not open", str(e)[:500])
        try:
            claimed = W.output_from_bytes(out_bytes)
        except Exception as e:  # noqa: BLE001 - any parse failure is the provider's bytes
            return done(False, "output malformed", f"{type(e).__name__}: {str(e)[:300]}")
        evidence["executions"].append({"by": "provider", "result_hash": result_hex, "kind": claimed.kind})

        # 4. re-execute; on a mismatch escalate to a third execution before an invalid verdict.
        per_check = _units_per_check(spec)
        first_cfg = primary_config(device)
        first = _run_check(spec, claimed, blobs, first_cfg, per_check)
        evidence["executions"].append(first)
        executed += per_check
        if first["match"]:
            return done(True, "match", first["detail"])
        second_cfg = escalation or escalation_config(first_cfg)
        second = _run_check(spec, claimed, blobs, second_cfg, per_check)
        evidence["executions"].append(second)
        executed += per_check
        if "result_hash" in first and "result_hash" in second:
            evidence["references_agree"] = first["result_hash"] == second["result_hash"]
        if second["match"]:
            return done(
                True,
                "match on escalation",
                f"first: {first.get('detail') or first.get('error')}; second: {second['detail']}",
            )
        if first["match"] is None and second["match"] is None:
            if not (first.get("deterministic") or second.get("deterministic")) and first["error"] != second["error"]:
                # Two different non-workload errors: nothing says the spec is at fault.
                raise AuditUnavailable(f"execution failed differently twice: {first['error']}; {second['error']}")
            return done(False, "spec unexecutable", first["error"])
        worst = second if second["match"] is False else first
        return done(False, "mismatch", worst.get("detail") or worst.get("error", ""))
    finally:
        if own_session:
            s.close()


__all__ = [
    "AuditOutcome",
    "AuditUnavailable",
    "ExecConfig",
    "audit_job",
    "base_urls",
    "escalation_config",
    "evidence_hash",
    "fetch_blob",
    "primary_config",
]
