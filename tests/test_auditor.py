"""offchain.oracle.auditor against a real HTTP blob server (stdlib, in the test) that stands in for
the provider agent's `GET /blobs/<sha256 hex>` endpoint: honest, corrupted, withheld and
mislabelled outputs, invalid job terms, inputs, the escalation rule and the TOPLOC path."""

from __future__ import annotations

import copy
import hashlib
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from offchain import workloads as W
from offchain.oracle.auditor import ExecConfig, audit_job, evidence_hash
from offchain.workloads.base import CompareResult, Kind, Output, canonical_json, compare_outputs

MM = {"kind": "matmul_chain", "params": {"n": 48, "k": 3, "dtype": "float32"}, "seed": 11}
TOPLOC = {
    "kind": "toploc_generate",
    "params": {
        "vocab": 64,
        "d_model": 32,
        "layers": 1,
        "heads": 2,
        "prompt_len": 8,
        "new_tokens": 12,
        "commit_every": 4,
        "topk": 4,
    },
    "seed": 5,
}
FAST = {"fetch_timeout_s": 0.4, "retries": 2}


class BlobServer:
    """GET /blobs/<hex> -> blobs[hex] (404 if absent); `lie[hex]` serves other bytes under a hash."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.lie: dict[str, bytes] = {}
        self.requests: list[str] = []
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_GET(self):
                srv.requests.append(self.path)
                h = self.path.removeprefix("/blobs/")
                body = srv.lie.get(h, srv.blobs.get(h)) if self.path.startswith("/blobs/") else None
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def put(self, data: bytes) -> str:
        h = hashlib.sha256(data).hexdigest()
        self.blobs[h] = data
        return h

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[BlobServer]:
    s = BlobServer()
    yield s
    s.close()


def _job(spec: dict, out_bytes: bytes, units: int | None = None) -> dict:
    return {
        "provider": "0x" + "11" * 20,
        "spec_hash": bytes.fromhex(W.spec_hash(spec)),
        "compute_units": W.compute_units(spec) if units is None else units,
        "result_hash": hashlib.sha256(out_bytes).digest(),
    }


def _publish(server: BlobServer, spec: dict, out: Output | bytes, units: int | None = None) -> dict:
    """Serves the spec and output like a provider agent; returns the job struct fields an audit reads."""
    server.put(canonical_json(spec))
    data = out if isinstance(out, bytes) else W.output_bytes(out)
    server.put(data)
    return _job(spec, data, units)


def _corrupt(out: Output, name: str) -> Output:
    bad = copy.deepcopy(out)
    t = bad.tensors[name]
    if t.is_floating_point():
        t.view(-1)[0] += 1.0
    else:
        t.view(-1)[0] = (t.view(-1)[0] + 1) % 2
    return bad


def test_audit__honest_output__valid_after_one_reexecution(server):
    job = _publish(server, MM, W.execute(MM, "cpu"))
    res = audit_job(job, server.url, job_id=1, device="cpu", **FAST)
    assert (res.valid, res.reason) == (True, "match")
    assert [e["by"] for e in res.executions] == ["provider", "oracle"]
    assert res.executions[1]["match"] is True and res.executions[1]["check"] == "reexecute"
    assert res.executed_units == W.compute_units(MM)
    assert res.evidence_hash == evidence_hash(res.evidence) and len(res.evidence_hash) == 32
    assert res.evidence["fetch"]["output"]["sha256"] == job["result_hash"].hex()


def test_audit__corrupted_output__invalid_after_escalation_to_a_third_execution(server):
    job = _publish(server, MM, _corrupt(W.execute(MM, "cpu"), "product"))
    res = audit_job(job, server.url, device="cpu", **FAST)
    assert (res.valid, res.reason) == (False, "mismatch")
    ex = res.executions
    assert len(ex) == 3 and [e["by"] for e in ex] == ["provider", "oracle", "oracle"]
    assert ex[1]["match"] is False and ex[2]["match"] is False
    # The third ran on another configuration: another device, or another CPU thread count.
    assert (ex[1]["device"], ex[1]["threads"]) != (ex[2]["device"], ex[2]["threads"])
    assert res.evidence["references_agree"] is True
    assert res.executed_units == 2 * W.compute_units(MM)


def test_audit__output_withheld__invalid(server):
    job = _job(MM, W.output_bytes(W.execute(MM, "cpu")))
    server.put(canonical_json(MM))  # spec served, output never stored
    res = audit_job(job, server.url, device="cpu", fetch_timeout_s=0.5, retries=3)
    assert (res.valid, res.reason) == (False, "output withheld")
    attempts = res.evidence["fetch"]["output"]["attempts"]
    assert len(attempts) == 3 and {a["status"] for a in attempts} == {404}
    assert res.executed_units == 0 and res.executions == []


def test_audit__unreachable_provider__output_withheld(server):
    job = _publish(server, MM, W.execute(MM, "cpu"))
    server.close()
    res = audit_job(job, server.url, device="cpu", **FAST)
    assert (res.valid, res.reason) == (False, "output withheld")
    assert all("error" in a for a in res.evidence["fetch"]["output"]["attempts"])


def test_audit__bytes_do_not_hash_to_the_result__invalid(server):
    honest = W.output_bytes(W.execute(MM, "cpu"))
    job = _publish(server, MM, honest)
    server.lie[job["result_hash"].hex()] = W.output_bytes(_corrupt(W.execute(MM, "cpu"), "product"))
    res = audit_job(job, server.url, device="cpu", **FAST)
    assert (res.valid, res.reason) == (False, "output hash mismatch")


def test_audit__second_url_serves_when_the_first_is_down(server):
    job = _publish(server, MM, W.execute(MM, "cpu"))
    res = audit_job(job, ["http://127.0.0.1:9", server.url], device="cpu", **FAST)
    assert (res.valid, res.reason) == (True, "match")


def test_audit__spec_withheld__invalid(server):
    data = W.output_bytes(W.execute(MM, "cpu"))
    server.put(data)
    res = audit_job(_job(MM, data), server.url, device="cpu", **FAST)
    assert (res.valid, res.reason) == (False, "spec withheld")


def test_audit__compute_units_differ_from_the_job__invalid_without_executing(server):
    job = _publish(server, MM, W.execute(MM, "cpu"), units=W.compute_units(MM) * 10)
    res = audit_job(job, server.url, device="cpu", **FAST)
    assert (res.valid, res.reason) == (False, "compute units mismatch")
    assert res.executed_units == 0


def test_audit__invalid_spec__invalid(server):
    bad = {"kind": "matmul_chain", "params": {"n": 0, "k": 3}, "seed": 1}
    server.put(canonical_json(bad))
    out = W.output_bytes(W.execute(MM, "cpu"))
    server.put(out)
    job = {
        "spec_hash": bytes.fromhex(W.spec_hash(bad)),
        "compute_units": 1,
        "result_hash": hashlib.sha256(out).digest(),
    }
    res = audit_job(job, server.url, device="cpu", **FAST)
    assert (res.valid, res.reason) == (False, "spec invalid")
    assert "params.n" in res.detail


def test_audit__garbage_output__malformed(server):
    job = _publish(server, MM, b"not a workload output")
    res = audit_job(job, server.url, device="cpu", **FAST)
    assert (res.valid, res.reason) == (False, "output malformed")


def test_audit__inputs_are_fetched_by_hash__and_withheld_inputs_are_invalid(server):
    torch.manual_seed(0)
    model = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)))
    mbuf, xbuf = io.BytesIO(), io.BytesIO()
    torch.jit.save(model, mbuf)
    torch.save(torch.randn(20, 6, generator=torch.Generator().manual_seed(1)), xbuf)
    m_hex, x_hex = server.put(mbuf.getvalue()), server.put(xbuf.getvalue())
    spec = {
        "kind": "torchscript_infer",
        "params": {"gflops": 0.001, "batch_size": 8},
        "seed": 0,
        "inputs": {"model": m_hex, "input": x_hex},
    }
    job = _publish(server, spec, W.execute(spec, "cpu", dict(server.blobs)))
    res = audit_job(job, server.url, device="cpu", **FAST)
    assert (res.valid, res.reason) == (True, "match")
    assert {"input:input", "input:model"} <= set(res.evidence["fetch"])
    del server.blobs[x_hex]
    res = audit_job(job, server.url, device="cpu", **FAST)
    assert (res.valid, res.reason) == (False, "input withheld")


def test_audit__toploc__checked_with_one_prefill(server):
    out = W.execute(TOPLOC, "cpu")
    job = _publish(server, TOPLOC, out)
    res = audit_job(job, server.url, device="cpu", **FAST)
    assert (res.valid, res.reason) == (True, "match")
    assert res.executions[1]["check"] == "toploc_verify"
    # The prefill costs less than the generation the provider was paid for.
    assert 0 < res.executed_units < W.get_kind("toploc_generate").flops(TOPLOC) / 1e9

    bad = copy.deepcopy(out)
    bad.tensors["tokens"][3] = (bad.tensors["tokens"][3] + 1) % 64
    job = _publish(server, TOPLOC, bad)
    res = audit_job(job, server.url, device="cpu", **FAST)
    assert (res.valid, res.reason) == (False, "mismatch")
    assert len(res.executions) == 3 and all(e["check"] == "toploc_verify" for e in res.executions[1:])


# A kind whose output depends on torch's thread count: an honest provider that ran with 1 thread
# disagrees with an oracle running 2 threads, and agrees with the third execution (1 thread).
def _threads_execute(spec: dict, device: torch.device, blobs) -> Output:
    return Output("thread_count_probe", {"threads": torch.tensor([torch.get_num_threads()])}, {})


def _threads_compare(a: Output, b: Output) -> CompareResult:
    return compare_outputs(a, b, {})


W.register(Kind("thread_count_probe", lambda spec, blobs: None, lambda spec: 1, _threads_execute, _threads_compare))


def test_audit__mismatch_then_agreement__valid_on_escalation_2_of_3(server):
    spec = {"kind": "thread_count_probe", "params": {}, "seed": 0}
    claimed = Output("thread_count_probe", {"threads": torch.tensor([1])}, {})
    job = _publish(server, spec, claimed)
    res = audit_job(job, server.url, device="cpu", escalation=ExecConfig("cpu", 1), **FAST)
    if torch.get_num_threads() == 1:
        assert (res.valid, res.reason) == (True, "match")
        return
    assert (res.valid, res.reason) == (True, "match on escalation")
    assert [e["match"] for e in res.executions[1:]] == [False, True]
    assert res.evidence["references_agree"] is False


# --------------------------------------------------------------------------- sealed jobs
# The same audits on a job sealed end to end (offchain/sealing.py): the operator opens the
# envelope with its own keys and reads the output under the job's data key.
PROVIDER_ADDR, OPERATOR_ADDR, OTHER_ADDR, USER_ADDR = ("0x" + c * 20 for c in ("11", "22", "33", "44"))


@pytest.fixture
def op_ring(tmp_path):
    from offchain.sealing import Keyring

    return Keyring.create(OPERATOR_ADDR, tmp_path / "op.json")


def _publish_sealed(server, spec, out, op_ring, *, readers=None, output_key=None) -> tuple[dict, bytes]:
    """Serves a sealed job like the client and the provider's worker would: the envelope
    (spec_hash), the output sealed under the data key (result_hash)."""
    from offchain import sealing as S

    key = S.new_data_key()
    provider = S.Keyring.create(PROVIDER_ADDR)
    env = S.seal_envelope(S.pack_spec(spec, {}, USER_ADDR), key, readers or [provider.recipient(), op_ring.recipient()])
    sealed_out = S.seal_data(out if isinstance(out, bytes) else W.output_bytes(out), output_key or key)
    spec_hex, out_hex = server.put(env), server.put(sealed_out)
    job = {"provider": PROVIDER_ADDR, "spec_hash": bytes.fromhex(spec_hex), "compute_units": W.compute_units(spec),
           "result_hash": bytes.fromhex(out_hex)}  # fmt: skip
    return job, key


def test_audit_sealed__honest_and_corrupted__same_verdicts_as_in_plaintext(server, op_ring):
    honest, _ = _publish_sealed(server, MM, W.execute(MM, "cpu"), op_ring)
    res = audit_job(honest, server.url, device="cpu", keyring=op_ring, **FAST)
    assert (res.valid, res.reason, res.evidence["sealed"]) == (True, "match", True)
    bad, _ = _publish_sealed(server, MM, _corrupt(W.execute(MM, "cpu"), "product"), op_ring)
    res = audit_job(bad, server.url, device="cpu", keyring=op_ring, **FAST)
    assert (res.valid, res.reason) == (False, "mismatch")
    assert len(res.executions) == 3


def test_audit_sealed__inputs_opened_under_the_job_key(server, op_ring):
    from offchain import sealing as S

    key = S.new_data_key()
    x = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(6, 3))), x)
    xs = io.BytesIO()
    torch.save(torch.randn(8, 6, generator=torch.Generator().manual_seed(1)), xs)
    m_addr, x_addr = server.put(S.seal_data(x.getvalue(), key)), server.put(S.seal_data(xs.getvalue(), key))
    m_hex, x_hex = W.blob_hash(x.getvalue()), W.blob_hash(xs.getvalue())
    spec = {"kind": "torchscript_infer", "params": {"gflops": 0.001, "batch_size": 8}, "seed": 0,
            "inputs": {"model": m_hex, "input": x_hex}}  # fmt: skip
    plain = {m_hex: x.getvalue(), x_hex: xs.getvalue()}
    env = S.seal_envelope(S.pack_spec(spec, {m_hex: m_addr, x_hex: x_addr}, USER_ADDR), key, [op_ring.recipient()])
    out = S.seal_data(W.output_bytes(W.execute(spec, "cpu", plain)), key)
    job = {"provider": PROVIDER_ADDR, "spec_hash": bytes.fromhex(server.put(env)), "compute_units": 1,
           "result_hash": bytes.fromhex(server.put(out))}  # fmt: skip
    job["compute_units"] = W.compute_units(spec)
    res = audit_job(job, server.url, device="cpu", keyring=op_ring, **FAST)
    assert (res.valid, res.reason) == (True, "match")
    assert res.evidence["fetch"]["input:model"]["sha256"] == m_addr  # fetched sealed, by its address
    server.lie[x_addr] = S.seal_data(xs.getvalue(), S.new_data_key())  # other bytes under its name
    res = audit_job(job, server.url, device="cpu", keyring=op_ring, **FAST)
    assert (res.valid, res.reason) == (False, "input hash mismatch")
    del server.lie[x_addr]
    other = S.seal_data(xs.getvalue(), S.new_data_key())  # sealed under another key, named right
    env2 = S.seal_envelope(
        S.pack_spec(spec, {m_hex: m_addr, x_hex: server.put(other)}, USER_ADDR), key, [op_ring.recipient()]
    )
    job2 = {**job, "spec_hash": bytes.fromhex(server.put(env2))}
    res = audit_job(job2, server.url, device="cpu", keyring=op_ring, **FAST)
    assert (res.valid, res.reason) == (False, "input does not open")


def test_audit_sealed__output_not_under_the_job_key__invalid(server, op_ring):
    from offchain import sealing as S

    job, _ = _publish_sealed(server, MM, W.execute(MM, "cpu"), op_ring, output_key=S.new_data_key())
    res = audit_job(job, server.url, device="cpu", keyring=op_ring, **FAST)
    assert (res.valid, res.reason) == (False, "output does not open")


def test_audit_sealed__not_sealed_to_this_operator__unavailable_not_a_verdict(server, op_ring):
    """Another committee member audits it; this operator signs nothing (never a false slash)."""
    from offchain import sealing as S
    from offchain.oracle.auditor import AuditUnavailable

    other = S.Keyring.create(OTHER_ADDR)
    job, _ = _publish_sealed(server, MM, W.execute(MM, "cpu"), op_ring, readers=[other.recipient()])
    with pytest.raises(AuditUnavailable, match="not sealed to this operator"):
        audit_job(job, server.url, device="cpu", keyring=op_ring, **FAST)
    with pytest.raises(AuditUnavailable, match="no encryption key file"):
        audit_job(job, server.url, device="cpu", **FAST)


def test_audit_sealed__operator_is_the_jobs_user__unavailable_not_a_verdict(server, op_ring, tmp_path):
    """An operator that once sealed a job as a user (its own user key file, which it never
    publishes and the provider cannot check) is drawn to audit it: its operator key does not
    open that wrap. A party to the job does not judge it, and it is never "envelope does not
    open" against the provider (found reviewing the attacker's findings)."""
    from offchain import sealing as S
    from offchain.oracle.auditor import AuditUnavailable

    as_user = S.Keyring.create(OPERATOR_ADDR, tmp_path / "as-user.json")  # a second file, same account
    job, _ = _publish_sealed(server, MM, W.execute(MM, "cpu"), op_ring,
                             readers=[S.Keyring.create(PROVIDER_ADDR).recipient(), as_user.recipient()])  # fmt: skip
    job["user"] = OPERATOR_ADDR
    with pytest.raises(AuditUnavailable, match="this operator is the job's user"):
        audit_job(job, server.url, device="cpu", keyring=op_ring, **FAST)


def test_audit_sealed__signed_requests_carry_the_operator_auth(server, op_ring):
    job, _ = _publish_sealed(server, MM, W.execute(MM, "cpu"), op_ring)
    seen = []

    def auth(method, blob):
        seen.append((method, blob))
        return {"X-Gpunet-Auth": f"sig-{blob[:8]}"}

    res = audit_job(job, server.url, device="cpu", keyring=op_ring, auth=auth, **FAST)
    assert res.valid
    assert ("GET", job["result_hash"].hex()) in seen and ("GET", job["spec_hash"].hex()) in seen


def test_attack_sealed_output_with_a_nested_header__invalid_not_a_timeout(server, op_ring):
    """A provider's output whose header makes a JSON parser recurse used to raise out of the
    audit (no verdict: paid at the audit timeout; review finding). It is invalid."""
    job, _ = _publish_sealed(server, MM, W.execute(MM, "cpu"), op_ring)
    from offchain import sealing as S

    hb = b"[" * 50_000 + b"]" * 50_000
    evil = S.MAGIC + len(hb).to_bytes(4, "big") + hb
    job["result_hash"] = bytes.fromhex(server.put(evil))
    res = audit_job(job, server.url, device="cpu", keyring=op_ring, **FAST)
    assert (res.valid, res.reason) == (False, "output does not open")


def test_sealed_evidence__no_hash_of_the_plaintext_output(server, op_ring):
    job, _ = _publish_sealed(server, MM, W.execute(MM, "cpu"), op_ring)
    res = audit_job(job, server.url, device="cpu", keyring=op_ring, **FAST)
    assert res.valid and all("result_hash" not in ex for ex in res.executions if ex["by"] == "oracle")
    plain = _publish(server, MM, W.execute(MM, "cpu"))
    res = audit_job(plain, server.url, device="cpu", **FAST)
    assert "result_hash" in res.executions[1]  # a public job's evidence keeps it
