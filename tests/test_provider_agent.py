"""Provider agent (offchain/provider/agent.py) against the oracle's challenger (offchain/oracle/challenger.py).

Real HTTP servers on 127.0.0.1 free ports, real torch on the CPU, no mocks. Sizes are small
(n <= 1024) except the one H100 claim, which uses the default n = 8192 bf16: a CPU cannot make
the fail line there (deriving the inputs alone takes ~3 s on a 2-core VM against a fail line of
~3.2 s), stops each round at it, and is free again at once; that test skips the memory round.
"""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import torch

from offchain.benchmark import challenge as ch
from offchain.benchmark.wire import canonical_bytes, parse_canonical, parse_hex
from offchain.oracle.challenger import (
    FAIL_MISREPORT,
    FAIL_UNREACHABLE,
    INCONCLUSIVE,
    PASS,
    canonical_json,
    default_challenge,
    probe_uptime,
    run_hardware_challenge,
)
from offchain.provider.agent import AgentConfig, TtlLru, serve

ADDR = "0x00000000000000000000000000000000000000a1"
MiB = 1 << 20
# The CPU class claims 2 GiB; 1/128 of it in 1 MiB chunks is a 16 MiB working set.
SMALL_MEMORY = dict(memory_fraction=1 / 128, memory_chunk_bytes=MiB, k_chunks=3)


def _start(**kw):
    server, thread = serve(AgentConfig(provider=ADDR, port=0, device="cpu", **kw))
    return server, thread


def _stop(server, thread):
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def honest():
    server, thread = _start(claimed_class="CPU")
    yield server.url
    _stop(server, thread)


@pytest.fixture(scope="module")
def liar():
    server, thread = _start(claimed_class="CPU", cheat="wrong-challenge")
    yield server.url
    _stop(server, thread)


@pytest.fixture(scope="module")
def sloth():
    server, thread = _start(claimed_class="CPU", cheat="slow", slow_delay_s=0.8)
    yield server.url
    _stop(server, thread)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_transcript(o):
    assert o.transcript_hash == hashlib.sha256(canonical_json(o.transcript)).hexdigest()
    assert o.transcript["outcome"] == o.outcome
    assert o.transcript["reasons"] == o.reasons


# ----------------------------------------------------------------------------- outcomes


def test_honest_cpu_claiming_cpu_passes(honest):
    assert default_challenge("CPU") == (1024, "fp32")
    o = run_hardware_challenge(honest, "CPU", **SMALL_MEMORY)
    assert o.outcome == PASS and o.passed, o.reasons
    assert o.reasons == []
    assert (o.n, o.dtype, o.claimed_class) == (1024, "fp32", 1)
    assert 0 < o.elapsed_s < o.allowance_s
    assert o.effective_tflops == pytest.approx(2 * 1024**3 / o.elapsed_s / 1e12)
    mm, mem = o.transcript["rounds"][-1], o.transcript["memory"]
    assert o.round_seconds[-1] == o.elapsed_s and len(o.transcript["rounds"]) == len(o.round_seconds)
    assert mm["commitment_ok"] and mm["freivalds_ok"]
    assert mm["result_sha256"] == mm["commitment"]
    assert len({mm["nonce"], mm["r_seed"], mem["nonce"], mem["sample_seed"]}) == 4
    assert mem["ok"] and mem["n_chunks"] == 16 and len(mem["indices"]) == 3
    assert o.transcript["health"]["provider"] == ADDR and o.transcript["health"]["device"] == "cpu"
    _check_transcript(o)
    json.dumps(o.to_dict())  # serializable as a whole


def test_cpu_claiming_h100_fails_on_time__stops_at_the_fail_line(honest):
    assert default_challenge("H100 SXM5") == (8192, "bf16")  # from the 4 s round budget
    o = run_hardware_challenge(honest, "H100 SXM5", check_memory=False)
    assert o.outcome == FAIL_MISREPORT and not o.passed
    assert (o.n, o.dtype) == (8192, "bf16")  # GPU classes are challenged in their primary dtype
    assert o.round_seconds == [None, None, None] and o.elapsed_s is None
    (reason,) = o.reasons
    assert reason.startswith("too slow for claimed class H100 SXM5: all 3 rounds over 2x the allowance")
    assert f"allowed {o.allowance_s:.3f}s" in reason
    # Every round was abandoned by the agent at the deadline it was given (on a busy machine
    # the oracle may stop waiting first: "no answer by the fail line")...
    assert all("over" in rd and "commitment" not in rd for rd in o.transcript["rounds"])
    assert any(rd["over"].startswith("aborted by the agent") for rd in o.transcript["rounds"])
    # ...so it is free for the next operator within a block, not busy for minutes.
    deadline = time.monotonic() + 20
    while True:
        r = requests.post(honest + "/challenge", json={"nonce": "22" * 32, "n": 64, "dtype": "fp32"}, timeout=10)
        if r.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200 and "commitment" in r.json()
    _check_transcript(o)


def test_wrong_challenge_fails_freivalds(liar):
    o = run_hardware_challenge(liar, "CPU", n=256, **SMALL_MEMORY)
    assert o.outcome == FAIL_MISREPORT
    (rd,) = o.transcript["rounds"]  # one wrong product is proof enough: no more rounds
    assert rd["commitment_ok"]  # it committed to what it served...
    assert not rd["freivalds_ok"]  # ...which is not A @ B
    assert any(r.startswith("wrong product") for r in o.reasons), o.reasons
    assert o.elapsed_s < o.allowance_s  # fast, but wrong
    assert "memory" not in o.transcript


def test_wrong_challenge_fails_bf16_too(liar):
    # A GPU class (L4) at a tiny n: the CPU is fast enough there, so only the product is wrong.
    o = run_hardware_challenge(liar, "L4", n=128, check_memory=False)
    assert o.dtype == "bf16" and o.outcome == FAIL_MISREPORT
    assert [r for r in o.reasons if not r.startswith("wrong product")] == [], o.reasons
    # The CPU floor has no bf16 figure: asking for it is a bad argument, not an outcome.
    with pytest.raises(ValueError, match="fp32"):
        run_hardware_challenge(liar, "CPU", n=128, dtype="bf16")


def test_slow_agent_fails__every_round_over_the_fail_line(sloth):
    o = run_hardware_challenge(sloth, "CPU", n=256, check_memory=False)
    assert o.outcome == FAIL_MISREPORT
    assert 0.8 > 2 * o.allowance_s  # the sloth sleeps past the fail line
    assert o.round_seconds == [None, None, None]
    assert "too slow for claimed class CPU: all 3 rounds over" in o.reasons[0]
    assert all(rd["freivalds_ok"] for rd in o.transcript["rounds"])  # late, but correct


def test_slow_agent_past_read_timeout_is_a_misreport_not_unreachable(sloth):
    # No answer by the fail line + grace: the round is over, not "unreachable" -- else a liar
    # could dodge the slash by never answering a challenge it cannot make.
    o = run_hardware_challenge(sloth, "CPU", n=64, check_memory=False, grace_s=0.05)
    assert o.outcome == FAIL_MISREPORT
    assert o.transcript["rounds"][0]["over"] == "no answer by the fail line"
    assert o.effective_tflops is None and o.round_seconds == [None, None, None]
    _check_transcript(o)


def test_between_allowance_and_fail_line_is_inconclusive():
    # 1.3 s of sleep against A = 1.0 s (network allowance) and a fail line of 2.0 s: slow in
    # every round but never clearly over: no verdict, nothing to report, try again later.
    server, thread = _start(claimed_class="CPU", cheat="slow", slow_delay_s=1.3)
    try:
        o = run_hardware_challenge(server.url, "CPU", n=64, check_memory=False, network_allowance_s=1.0)
    finally:
        _stop(server, thread)
    assert o.outcome == INCONCLUSIVE and not o.passed and not o.decisive
    assert len(o.round_seconds) == 3 and all(o.allowance_s < t <= 2 * o.allowance_s for t in o.round_seconds)
    assert o.reasons[0].startswith("timing inconclusive for claimed class CPU")


def test_busy_with_a_job__inconclusive_not_unreachable__and_the_next_job_leaves_a_gap():
    server, thread = _start(claimed_class="CPU", challenge_gap_s=30)
    agent = server.agent
    try:
        with agent.device_lock():  # a job runs
            o = run_hardware_challenge(server.url, "CPU", n=64, check_memory=False, busy_wait_s=0.5)
            assert o.outcome == INCONCLUSIVE, o.reasons
            assert "busy running a job" in o.reasons[0]
            r = requests.post(server.url + "/challenge", json={"nonce": "33" * 32, "n": 8, "dtype": "fp32"}, timeout=5)
            assert r.status_code == 429 and r.json()["busy"] == "job" and r.json()["retry_after_s"] > 0
        assert agent.challenge_wanted()
        # The worker, before its next job, waits for the turned-away challenge...
        waited: list[float] = []
        waiter = threading.Thread(target=lambda: waited.append(agent.wait_for_challenge_gap()))
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive()
        o = run_hardware_challenge(server.url, "CPU", n=64, check_memory=False)  # ...which now runs
        waiter.join(timeout=10)
        assert o.outcome == PASS, o.reasons
        assert not waiter.is_alive() and 0.3 <= waited[0] < 30
        assert not agent.challenge_wanted()
        assert agent.wait_for_challenge_gap() < 0.1  # nothing waiting: no delay
    finally:
        _stop(server, thread)


def test_deadline__agent_abandons_a_product_it_cannot_finish(honest):
    r = requests.post(
        honest + "/challenge",
        json={"nonce": "44" * 32, "n": 2048, "dtype": "fp32", "deadline_s": 0.001},
        timeout=30,
    )
    body = r.json()
    assert r.status_code == 200 and body["aborted"] == "deadline" and "commitment" not in body
    assert body["rows_done"] < 2048
    for bad in (0, -1, "1", True, 1e9):
        r = requests.post(honest + "/challenge", json={"nonce": "44" * 32, "n": 8, "dtype": "fp32", "deadline_s": bad},
                          timeout=5)  # fmt: skip
        assert r.status_code == 400 and "deadline_s" in r.json()["error"]


def test_closed_port_is_unreachable():
    url = f"http://127.0.0.1:{_free_port()}"
    o = run_hardware_challenge(url, "CPU", n=64, check_memory=False, connect_timeout_s=1)
    assert o.outcome == FAIL_UNREACHABLE and not o.passed
    assert o.reasons[0].startswith("health: ConnectionError")
    assert o.elapsed_s is None and o.effective_tflops is None
    _check_transcript(o)


def test_5xx_is_unreachable():
    class Broken(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/health":
                body = b'{"ok": true}'
                self.send_response(200)
            else:
                body = b'{"error": "boom"}'
                self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.do_GET()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        o = run_hardware_challenge(f"127.0.0.1:{server.server_address[1]}", "CPU", n=64, check_memory=False)
    finally:
        server.shutdown()
        server.server_close()
    assert o.outcome == FAIL_UNREACHABLE
    assert o.reasons == ["challenge: HTTP 503: boom"]


def test_probe_uptime(honest):
    assert probe_uptime(honest, timeout=2)
    assert probe_uptime(honest.removeprefix("http://"), timeout=2)  # scheme optional
    assert not probe_uptime(f"http://127.0.0.1:{_free_port()}", timeout=1)
    assert not probe_uptime("http://127.0.0.1:1", timeout=1)


def test_restart_forgets_challenges_but_keeps_working():
    server, thread = _start(claimed_class=1)
    url = server.url
    port = server.server_address[1]
    r = requests.post(url + "/challenge", json={"nonce": "11" * 32, "n": 32, "dtype": "fp32"}, timeout=10)
    cid = r.json()["challenge_id"]
    _stop(server, thread)
    assert not probe_uptime(url, timeout=1)
    server, thread = serve(AgentConfig(provider=ADDR, claimed_class=1, port=port, device="cpu"))
    try:
        assert requests.get(f"{url}/challenge/{cid}/result", timeout=5).status_code == 404
        o = run_hardware_challenge(url, "CPU", n=128, **SMALL_MEMORY)
        assert o.passed, o.reasons
    finally:
        _stop(server, thread)


# ----------------------------------------------------------------------------- replay / binding


def test_old_answer_does_not_verify_for_new_nonce(honest):
    n1, n2 = bytes(range(32)), bytes(range(1, 33))
    r1 = requests.post(honest + "/challenge", json={"nonce": n1.hex(), "n": 96, "dtype": "fp32"}, timeout=10).json()
    r2 = requests.post(honest + "/challenge", json={"nonce": n2.hex(), "n": 96, "dtype": "fp32"}, timeout=10).json()
    assert r1["challenge_id"] != r2["challenge_id"] and r1["commitment"] != r2["commitment"]
    body1 = requests.get(f"{honest}/challenge/{r1['challenge_id']}/result", timeout=10).content
    body2 = requests.get(f"{honest}/challenge/{r2['challenge_id']}/result", timeout=10).content
    c1, c2 = parse_canonical(body1), parse_canonical(body2)
    # Served bytes are the commitment preimage: sha256(body) == commitment == challenge.commit(C).
    assert hashlib.sha256(body1).hexdigest() == r1["commitment"] == ch.commit(c1).hex()
    assert ch.verify_answer(n1, 96, "fp32", c1, bytes.fromhex(r1["commitment"]))
    assert ch.verify_answer(n2, 96, "fp32", c2, bytes.fromhex(r2["commitment"]))
    # Replaying the old answer (with its own, matching commitment) under the new nonce fails Freivalds...
    assert not ch.verify_answer(n2, 96, "fp32", c1, bytes.fromhex(r1["commitment"]))
    # ...and the old bytes do not match the new commitment.
    assert hashlib.sha256(body1).hexdigest() != r2["commitment"]
    assert not ch.verify_answer(n2, 96, "fp32", c1, bytes.fromhex(r2["commitment"]))


def test_wire_format_roundtrip():
    for dt in ("fp32", "bf16", "fp16"):
        t = torch.randn(5, 7).to(ch.CHALLENGE_DTYPES[dt])
        data = canonical_bytes(t)
        assert hashlib.sha256(data).digest() == ch.commit(t)
        back = parse_canonical(data)
        assert back.dtype == t.dtype and torch.equal(back.view(torch.uint8), t.view(torch.uint8))
    data = canonical_bytes(torch.ones(3, 3))
    for bad in (data[:-1], data + b"\x00", b"x" + data[1:], data.replace(b"torch.float32", b"torch.float64")):
        with pytest.raises(ValueError):
            parse_canonical(bad)
    with pytest.raises(ValueError):
        parse_canonical(data, max_bytes=10)
    assert parse_hex("0x" + "ab" * 16, min_bytes=16, max_bytes=32, what="x") == b"\xab" * 16


# ----------------------------------------------------------------------------- bad input


NONCE = "22" * 32


def mem(claimed: int, fraction: float, chunk: int) -> dict:
    return {"nonce": NONCE, "claimed_bytes": claimed, "fraction": fraction, "chunk_bytes": chunk}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "needle"),
    [
        ("POST", "/challenge", {"n": 64, "dtype": "fp32"}, 400, "'nonce' must be a hex string"),
        ("POST", "/challenge", {"nonce": "zz" * 32, "n": 64, "dtype": "fp32"}, 400, "not valid hex"),
        ("POST", "/challenge", {"nonce": "ab" * 8, "n": 64, "dtype": "fp32"}, 400, "16-64 bytes"),
        ("POST", "/challenge", {"nonce": NONCE, "n": 0, "dtype": "fp32"}, 400, "'n' must be in 1..16384"),
        ("POST", "/challenge", {"nonce": NONCE, "n": 10**6, "dtype": "fp32"}, 400, "'n' must be in 1..16384"),
        ("POST", "/challenge", {"nonce": NONCE, "n": "64", "dtype": "fp32"}, 400, "'n' must be an integer"),
        ("POST", "/challenge", {"nonce": NONCE, "n": True, "dtype": "fp32"}, 400, "'n' must be an integer"),
        ("POST", "/challenge", {"nonce": NONCE, "n": 64, "dtype": "fp64"}, 400, "'dtype' must be one of fp32"),
        ("POST", "/challenge", [1, 2], 400, "must be a JSON object"),
        ("POST", "/challenge", b"{not json", 400, "must be a JSON object"),
        ("POST", "/memory", mem(2**31, 0, MiB), 400, "(0, 1]"),
        ("POST", "/memory", mem(2**31, 0.01, 1000), 400, "1024"),
        ("POST", "/memory", mem(100, 0.5, MiB), 400, "smaller than one chunk"),
        ("POST", "/memory", mem(2**40, 0.5, 64 * MiB), 422, "over this agent's limit"),
        ("GET", "/challenge/" + "0" * 32 + "/result", None, 404, "no challenge"),
        ("GET", "/challenge/not-an-id/result", None, 404, "no such endpoint"),
        ("POST", "/memory/" + "0" * 32 + "/open", {"indices": [0]}, 404, "no memory proof"),
        ("GET", "/challenge", None, 405, "not allowed"),
        ("GET", "/nope", None, 404, "no such endpoint"),
    ],
)  # fmt: skip
def test_bad_requests_get_helpful_errors(honest, method, path, body, status, needle):
    kw = {"data": body} if isinstance(body, bytes) else {"json": body}
    r = requests.request(method, honest + path, timeout=10, **kw)
    assert r.status_code == status
    assert r.headers["Content-Type"] == "application/json"
    err = r.json()["error"]
    assert needle in err, err
    assert "Traceback" not in r.text


def test_memory_open_rejects_bad_indices(honest):
    body = {"nonce": NONCE, "claimed_bytes": 8 * MiB, "fraction": 0.5, "chunk_bytes": MiB}
    r = requests.post(honest + "/memory", json=body, timeout=10).json()
    assert r["n_chunks"] == 4
    for bad in ([4], [-1], "0", [True], list(range(5))):
        resp = requests.post(f"{honest}/memory/{r['memory_id']}/open", json={"indices": bad}, timeout=10)
        assert resp.status_code == 400 and "indices" in resp.json()["error"]
    ok = requests.post(f"{honest}/memory/{r['memory_id']}/open", json={"indices": [1, 3]}, timeout=10).json()
    proof = ch.MemoryProof(MiB, tuple(bytes.fromhex(d) for d in ok["digests"]))
    assert proof.root.hex() == r["root"]
    assert ch.verify_memory_proof(bytes.fromhex(NONCE), proof, proof.root, [1, 3], 8 * MiB, fraction=0.5)


def test_config_validation_and_cache():
    with pytest.raises(KeyError):
        AgentConfig(provider=ADDR, claimed_class="GTX 480")
    with pytest.raises(ValueError, match="cheat"):
        AgentConfig(provider=ADDR, cheat="lazy")
    assert AgentConfig(provider=ADDR, claimed_class="h100 sxm5").claimed_class_id == 10
    lru = TtlLru(2, ttl_s=0.05)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.get("a")
    lru.put("c", 3)  # evicts b, the least recently used
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (1, None, 3)
    time.sleep(0.06)
    assert lru.get("a") is None and len(lru) == 0


# ----------------------------------------------------------------------------- CLI


def test_cli_provider_serve_until_sigterm():
    port = _free_port()
    cmd = [
        sys.executable,
        "-c",
        "from offchain.cli import main; main()",
        "provider",
        "serve",
        "--port",
        str(port),
        "--provider-address",
        ADDR,
        "--claim",
        "CPU",
        "--device",
        "cpu",
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline()
        assert f"serving on http://127.0.0.1:{port}" in line, (line, p.stderr.read() if p.poll() else "")
        assert probe_uptime(f"127.0.0.1:{port}", timeout=5)
        health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        assert health["provider"].lower() == ADDR and health["claimed_class"] == 1  # checksummed by the CLI
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=15)
        assert p.returncode == 0
        assert "stopped" in out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not probe_uptime(f"127.0.0.1:{port}", timeout=1)


def test_cli_rejects_unknown_class():
    cmd = [sys.executable, "-c", "from offchain.cli import main; main()", "provider", "serve"]
    r = subprocess.run(
        [*cmd, "--provider-address", ADDR, "--claim", "GTX 480", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "no class named 'GTX 480'" in r.stderr


def test_concurrent_operators__busy_agent_answers_429__both_pass_untimed_wait(honest):
    """Three operators challenging one honest agent at once must all pass: the agent refuses
    the second challenge (429) instead of queueing it, and the challenger retries untimed."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        outcomes = list(pool.map(lambda _: run_hardware_challenge(honest, "CPU", **SMALL_MEMORY), range(3)))
    for o in outcomes:
        assert o.outcome == PASS, o.reasons
        assert o.elapsed_s < o.allowance_s


def test_busy_agent__429_is_not_a_failure_by_itself(honest):
    import requests

    from offchain.oracle import agent_http

    # The helper retries on 429 until the agent is free; a free agent answers at once.
    r, elapsed = agent_http.request_when_free(
        requests.Session(), "GET", honest.rstrip("/") + "/health", what="health", timeout=(2, 2), busy_wait_s=5
    )
    assert r.status_code == 200 and elapsed < 2


# ----------------------------------------------------------------------------- blobs


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_blob_store__put_get_has__content_addressed_and_atomic(tmp_path):
    from offchain.provider.blobs import BlobHashMismatch, BlobStore, BlobTooLarge

    store = BlobStore(tmp_path, max_bytes=1024)
    data = b"spec bytes"
    h = store.put(data, expected=_sha(data))
    assert h == _sha(data) and store.has(h) and store.get(h) == data and store.size(h) == len(data)
    assert store.path(h) == tmp_path / h[:2] / h
    assert store.put(data) == h  # idempotent
    assert len(store) == 1 and list(store.names()) == [h]
    m = store.mapping()
    assert h in m and m[h] == data and "0" * 64 not in m and 42 not in m
    assert store.get("0" * 64) is None and not store.has("0" * 64) and not store.has("../etc/passwd")
    with pytest.raises(BlobHashMismatch, match="hashes to"):
        store.put(b"other bytes", expected=h)
    with pytest.raises(BlobTooLarge, match="over this store's cap of 1024"):
        store.put(b"x" * 1025)
    assert store.get(h) == data and len(store) == 1
    assert list((tmp_path / "tmp").iterdir()) == []  # refused and finished writes leave no temp files


def test_blob_endpoints__put_get_head_and_errors(tmp_path):
    server, thread = serve(
        AgentConfig(provider=ADDR, port=0, device="cpu", blob_dir=str(tmp_path / "blobs"), max_blob_bytes=4096)
    )
    url = server.url
    try:
        data = bytes(range(256)) * 4
        h = _sha(data)
        assert requests.get(f"{url}/blobs/{h}", timeout=5).status_code == 404
        r = requests.put(f"{url}/blobs/{h}", data=data, timeout=5)
        assert r.status_code == 201 and r.json() == {"hash": h, "size": len(data)}
        r = requests.put(f"{url}/blobs/{h}", data=data, timeout=5)  # idempotent
        assert r.status_code == 200
        r = requests.get(f"{url}/blobs/{h}", timeout=5)
        assert r.status_code == 200 and r.content == data
        assert r.headers["Content-Type"] == "application/octet-stream"
        head = requests.head(f"{url}/blobs/{h}", timeout=5)
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data) and head.content == b""
        # The bytes live on disk in the agent's blob dir.
        assert (tmp_path / "blobs" / h[:2] / h).read_bytes() == data

        r = requests.put(f"{url}/blobs/{'ab' * 32}", data=b"not these bytes", timeout=5)
        assert r.status_code == 400 and "hashes to" in r.json()["error"]
        big = b"y" * 5000
        r = requests.put(f"{url}/blobs/{_sha(big)}", data=big, timeout=5)
        assert r.status_code == 413 and "cap of 4096" in r.json()["error"]
        assert requests.get(f"{url}/blobs/{_sha(big)}", timeout=5).status_code == 404
        r = requests.get(f"{url}/blobs/XYZ", timeout=5)
        assert r.status_code == 404 and "lowercase sha256 hex" in r.json()["error"]
        r = requests.post(f"{url}/blobs/{h}", json={}, timeout=5)
        assert r.status_code == 405
        assert requests.get(f"{url}/health", timeout=5).json()["max_blob_bytes"] == 4096
    finally:
        _stop(server, thread)
    # A restarted agent on the same directory still serves the blob.
    server, thread = serve(AgentConfig(provider=ADDR, port=0, device="cpu", blob_dir=str(tmp_path / "blobs")))
    try:
        assert requests.get(f"{server.url}/blobs/{h}", timeout=5).content == data
    finally:
        _stop(server, thread)


def test_blob_endpoints__default_temporary_dir_is_removed():
    import offchain.provider.agent as agent_mod

    agent = agent_mod.ProviderAgent(AgentConfig(provider=ADDR, device="cpu"))
    root = agent.blobs.root
    assert root.is_dir()
    agent.close()
    assert not root.exists()


def test_cli_job_cheats_need_the_job_worker():
    cmd = [sys.executable, "-c", "from offchain.cli import main; main()", "provider", "serve", "--claim", "CPU"]
    r = subprocess.run([*cmd, "--provider-address", ADDR, "--cheat", "wrong-output"], capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 2 and "cheats on jobs: run the job worker" in r.stderr
    r = subprocess.run([*cmd, "--test-account", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "needs --state-dir" in r.stderr
