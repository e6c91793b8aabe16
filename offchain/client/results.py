"""A job's result for its user: download it, check it against the on-chain hash, write it out
and re-execute it locally (grounds for a dispute). Re-exported by `offchain.client.sdk`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offchain.client.blobs import download, request_signer
from offchain.client.money import ClientError
from offchain.client.sdk import _check_id, _rebuild, result_event
from offchain.client.sealed import data_key, known_key, open_data, open_spec
from offchain.constants import JobStatus
from offchain.sealing import is_sealed

if TYPE_CHECKING:
    from offchain import workloads


@dataclass
class Result:
    job_id: int
    result_hash: str
    uri: str
    output: workloads.Output
    data: bytes
    files: dict[str, Path] = field(default_factory=dict)


def fetch_result(
    h: Any, job_id: int, out_dir: str | Path | None = None, keyring: Any = None, account: Any = None
) -> Result:
    """Downloads the job's output from its result URI, checks sha256 == the on-chain result hash,
    and (with `out_dir`) writes output.bin (the canonical bytes), output.pt (a dict of tensors +
    kind and meta, `torch.load`-able) and output.json (the same as JSON). `account` (the job's
    user) signs the downloads; `keyring` (the user's keys) opens a sealed job's output."""
    from offchain import workloads

    _check_id(h, job_id)
    ev = result_event(h, job_id)
    if ev is None:
        st = JobStatus(h.market.job_status(job_id))
        raise ClientError(f"job {job_id} has no result yet (status {st.name}); wait with `gpunet job status {job_id}`")
    args = ev.event_arguments
    expected = bytes(args["result_hash"]).hex()
    job = _rebuild(h, job_id) if account is not None else None  # (read only when it is needed)
    auth = _auth(h, account, job)
    data = download(args["result_uri"], expected, auth=auth)
    if is_sealed(data):  # a sealed job: its data key comes from the spec's envelope
        job = job or _rebuild(h, job_id)
        spec_hex = bytes(job["spec_hash"]).hex()
        key = known_key(spec_hex) or data_key(keyring, _spec_blob(args["result_uri"], spec_hex, auth))
        data = open_data(key, data)
    elif keyring is not None and auth is not None and _spec_is_sealed(args["result_uri"], job, auth):
        raise ClientError(
            f"job {job_id}: the provider committed a plaintext output for a sealed job (auditors find it invalid): "
            f"dispute it before its challenge window ends with `gpunet job dispute {job_id}`"
        )
    try:
        out = workloads.output_from_bytes(data)
    except workloads.WorkloadError as e:
        raise ClientError(f"the result matches its hash but is not a workload output: {e}") from None
    res = Result(int(job_id), expected, args["result_uri"], out, data)
    if out_dir is not None:
        res.files = write_output(out, data, Path(out_dir))
    return res


def write_output(out: workloads.Output, data: bytes, out_dir: Path) -> dict[str, Path]:
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"bin": out_dir / "output.bin", "pt": out_dir / "output.pt", "json": out_dir / "output.json"}
    files["bin"].write_bytes(data)
    torch.save({"kind": out.kind, "meta": out.meta, "tensors": out.tensors}, files["pt"])
    tensors = {}
    for name, t in sorted(out.tensors.items()):
        as_py = t.to(torch.float64) if t.dtype in (torch.bfloat16, torch.float16) else t
        tensors[name] = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape), "values": as_py.tolist()}
    doc = {"kind": out.kind, "meta": out.meta, "sha256": hashlib.sha256(data).hexdigest(), "tensors": tensors}
    files["json"].write_text(json.dumps(doc, allow_nan=True))
    return files


MAX_SPEC_BYTES = 16 << 20


def _spec_blob(result_uri: str, spec_hex: str, auth: Any) -> bytes:
    """The job's spec blob, from the agent that serves its result."""
    return download(f"{result_uri.rsplit('/blobs/', 1)[0]}/blobs/{spec_hex}", spec_hex, MAX_SPEC_BYTES, auth)


def _spec_is_sealed(result_uri: str, job: dict, auth: Any) -> bool:
    """Whether the job's spec (at the agent that serves its result) is sealed. Asked only by a
    user with a key file (one without keys has no sealed job) when the output is plaintext. A
    spec the agent does not serve is an error: a provider must not dodge the check by
    withholding it."""
    spec_hex = bytes(job["spec_hash"]).hex()
    if known_key(spec_hex) is not None:  # this process sealed it
        return True
    try:
        return is_sealed(_spec_blob(result_uri, spec_hex, auth))
    except ClientError as e:
        raise ClientError(
            f"the output is in plaintext, and whether the job was sealed cannot be told: its spec is not served ({e})"
        ) from None


def _auth(h: Any, account: Any, job: dict) -> tuple[Any, str] | None:
    if account is None:
        return None
    return request_signer(h, account), str(job["provider"])


def verify_locally(
    h: Any, job_id: int, result: Result, device: str | None = None, keyring: Any = None, account: Any = None
) -> workloads.CompareResult:
    """Re-executes the job here (spec and inputs fetched from the provider that served the
    result, by hash) and compares with the provider's output; a mismatch is grounds to dispute."""
    from offchain import workloads

    job = _rebuild(h, job_id)
    base = result.uri.rsplit("/blobs/", 1)[0]
    spec_hex = bytes(job["spec_hash"]).hex()
    auth = _auth(h, account, job)
    spec, where, key = open_spec(keyring, _spec_blob(result.uri, spec_hex, auth))
    blobs = {h_: open_data(key, download(f"{base}/blobs/{addr}", addr, auth=auth)) for h_, addr in where.items()}
    reference = workloads.execute(spec, device or "cpu", blobs)
    return workloads.compare(result.output, reference)
