"""The aiohttp servers (offchain/http_server.py) behind the provider agent and the oracle API:
clients that vanish mid-request leave them serving and log no traceback, oversized bodies get a
JSON 413, blocking work stays off the event loop, and the wire contract of the agent's docstring
(405, 411, HEAD, the 413 drain rule, /metrics) holds.

Real servers on 127.0.0.1 free ports; the agent runs torch on the CPU, the oracle API a stand-in
service object with the attributes and methods `start_http` calls.
"""

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter

from offchain.http_server import DaemonThreadPool, HttpServer
from offchain.oracle.http_api import MAX_BODY_BYTES as ORACLE_MAX_BODY
from offchain.oracle.http_api import start_http
from offchain.provider.agent import MAX_BODY_BYTES, AgentConfig, serve

ADDR = "0x00000000000000000000000000000000000000a1"
OPERATOR = "0x00000000000000000000000000000000000000b2"
MiB = 1 << 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _send_and_drop(port: int, data: bytes, *, read: int = 0) -> None:
    """Open a connection, send `data`, optionally read `read` bytes of the reply, and close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(data)
        got = 0
        while got < read:
            chunk = c.recv(min(65536, read - got))
            if not chunk:
                break
            got += len(chunk)


def _rude_clients(port: int, big_blob: str | None = None) -> None:
    """Clients that give up halfway, in every phase of a request."""
    nonce = "13" * 32
    challenge = json.dumps({"nonce": nonce, "n": 512, "dtype": "fp32"}).encode()
    drops = [
        b"GET /hea",  # half a request line
        b"GET /health HTTP/1.1\r\nHost: x\r\n",  # headers never end
        b'POST /challenge HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"no',  # half a body
        b"PUT /blobs/" + ("ab" * 32).encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 40000000\r\n\r\nabc",
        b"PUT /blobs/" + ("cd" * 32).encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n" + b"x" * 1000,
        # a whole request whose sender leaves before the (computed) answer
        b"POST /challenge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(challenge)}\r\n\r\n".encode()
        + challenge,
        b"POST /sign/attestation HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
        b"GARBAGE\r\n\r\n",  # not HTTP at all
    ]
    for data in drops:
        _send_and_drop(port, data)
    if big_blob is not None:  # leave in the middle of a download
        _send_and_drop(port, f"GET /blobs/{big_blob} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), read=100_000)
    time.sleep(0.5)  # let the server notice the closed connections


# ----------------------------------------------------------------------------- the agent


@pytest.fixture(scope="module")
def agent():
    server, thread = serve(AgentConfig(provider=ADDR, port=0, device="cpu", max_blob_bytes=4096))
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_agent_cli_survives_clients_that_leave_midway__no_traceback_on_stderr(tmp_path):
    port = _free_port()
    cmd = [sys.executable, "-c", "from offchain.cli import main; main()", "provider", "serve", "--port", str(port),
           "--provider-address", ADDR, "--claim", "CPU", "--device", "cpu", "--max-blob-mb", "16",
           "--state-dir", str(tmp_path)]  # fmt: skip
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))  # fmt: skip
    try:
        line = p.stdout.readline()
        assert f"serving on http://127.0.0.1:{port}" in line, (line, p.stderr.read() if p.poll() else "")
        url = f"http://127.0.0.1:{port}"
        big = os.urandom(8 * MiB)  # far more than the socket buffers hold
        assert requests.put(f"{url}/blobs/{_sha(big)}", data=big, timeout=30).status_code == 201
        _rude_clients(port, big_blob=_sha(big))
        assert requests.get(f"{url}/health", timeout=5).json()["ok"] is True
        r = requests.post(f"{url}/challenge", json={"nonce": "11" * 32, "n": 64, "dtype": "fp32"}, timeout=30)
        assert r.status_code == 200, r.text  # the dropped challenge released the device
        assert requests.get(f"{url}/blobs/{_sha(big)}", timeout=30).content == big
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert "stopped" in out
    assert "Traceback" not in err, err
    assert "client went away" in err  # one line each, at INFO
    assert "Unhandled exception" not in err
    assert all("bad request" in line for line in err.splitlines() if "Error handling request" in line), err


def test_agent_oversized_json_body__413_json(agent):
    r = requests.post(agent.url + "/challenge", data=b"x" * (MAX_BODY_BYTES + 1), timeout=10)
    assert r.status_code == 413 and r.headers["Content-Type"] == "application/json"
    assert r.json() == {"error": f"request body over {MAX_BODY_BYTES} bytes"}
    # Without a Content-Length (chunked), the app's client_max_size catches it.
    r = requests.post(agent.url + "/memory", data=(b"y" * 65536 for _ in range(40)), timeout=10)
    assert r.status_code == 413 and "request body over" in r.json()["error"]
    assert requests.get(agent.url + "/health", timeout=5).status_code == 200


def test_agent_health_and_blobs_answer_during_a_long_challenge(agent):
    done: dict = {}

    def challenge() -> None:
        t0 = time.monotonic()
        r = requests.post(agent.url + "/challenge", json={"nonce": "21" * 32, "n": 4096, "dtype": "fp32"}, timeout=120)
        done.update(status=r.status_code, seconds=time.monotonic() - t0)

    data = b"blob while busy"
    assert requests.put(f"{agent.url}/blobs/{_sha(data)}", data=data, timeout=5).status_code in (200, 201)
    t = threading.Thread(target=challenge)
    t.start()
    time.sleep(0.3)
    latencies = []
    while t.is_alive():
        t0 = time.monotonic()
        assert requests.get(agent.url + "/health", timeout=5).status_code == 200
        assert requests.get(f"{agent.url}/blobs/{_sha(data)}", timeout=5).content == data
        latencies.append(time.monotonic() - t0)
        r = requests.post(agent.url + "/challenge", json={"nonce": "22" * 32, "n": 8, "dtype": "fp32"}, timeout=5)
        assert r.status_code in (200, 429)  # 429 while the long one holds the device
        time.sleep(0.1)
    t.join()
    assert done["status"] == 200
    if done["seconds"] < 1.0:
        pytest.skip(f"the n=4096 challenge took only {done['seconds']:.2f}s here: nothing to overlap")
    # Served while the challenge ran: a server blocked by it would answer the first round only
    # once it ended, and the loop would stop there (no wall-clock bound: a busy machine is slower).
    assert len(latencies) >= 2 and max(latencies) < done["seconds"] / 2, (latencies, done)


def test_agent_wire_contract__405_411_head_drain_and_cut_off(agent):
    url = agent.url
    r = requests.delete(url + "/challenge", timeout=5)
    assert r.status_code == 405 and "DELETE not allowed on /challenge" in r.json()["error"]
    assert requests.post(url + "/health", timeout=5).status_code == 405
    h = _sha(b"abc")
    r = requests.put(f"{url}/blobs/{h}", data=(b for b in [b"abc"]), timeout=5)  # chunked: no Content-Length
    assert r.status_code == 411 and "Content-Length" in r.json()["error"]
    assert requests.put(f"{url}/blobs/{h}", data=b"abc", timeout=5).status_code in (200, 201)
    head = requests.head(f"{url}/blobs/{h}", timeout=5)
    assert head.status_code == 200 and head.headers["Content-Length"] == "3" and head.content == b""
    assert head.headers["Server"] == "gpunet-agent/1"
    assert requests.head(f"{url}/blobs/{'0' * 64}", timeout=5).status_code == 404
    # Over the cap by less than the drain allowance: read, discarded, and answered.
    r = requests.put(f"{url}/blobs/{'ef' * 32}", data=b"z" * (4096 + MiB), timeout=10)
    assert r.status_code == 413 and "cap of 4096 bytes" in r.json()["error"]
    # Far over: answered at once and cut off, without waiting for (or reading) the body.
    with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as c:
        # Headers only: body bytes left unread in the agent's socket would make its close a TCP
        # reset, which may reach this end before the reply does (and the kernel then drops it).
        c.sendall(f"PUT /blobs/{'ef' * 32} HTTP/1.1\r\nHost: x\r\nContent-Length: {1 << 34}\r\n\r\n".encode())
        reply = b""
        while chunk := c.recv(65536):  # a server waiting for the body would time this out (5 s)
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413") and b"over this agent's cap" in reply
    assert requests.get(url + "/health", timeout=5).status_code == 200


def test_agent_metrics(agent):
    had = getattr(agent.agent, "metrics", None)
    try:
        if had is None:
            agent.agent.metrics = None
            r = requests.get(agent.url + "/metrics", timeout=5)
            assert r.status_code == 404 and r.json() == {"error": "metrics are not enabled on this agent"}
        registry = CollectorRegistry()
        Counter("gpunet_test_things", "things", registry=registry).inc(3)
        agent.agent.metrics = SimpleNamespace(registry=registry)
        r = requests.get(agent.url + "/metrics", timeout=5)
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/plain; version=0.0.4"
        assert "gpunet_test_things_total 3.0" in r.text
    finally:
        if had is None:
            del agent.agent.metrics
        else:
            agent.agent.metrics = had


# ----------------------------------------------------------------------------- the oracle API


class _FakeService:
    """What `start_http` uses of an OracleService."""

    def __init__(self) -> None:
        self.cfg = SimpleNamespace(host="127.0.0.1", port=0)
        self.address = OPERATOR
        self.healthy = True
        self.last_error = None
        self._stop = threading.Event()
        self._chain_lock = threading.RLock()
        self.metrics = SimpleNamespace(registry=CollectorRegistry())
        self.signed: list = []

    def audit_record(self, job_id: int):
        return {"job_id": job_id} if job_id == 7 else None

    def rewards_record(self, epoch: int):
        return {"epoch": epoch} if epoch == 1 else None

    def rewards_proof(self, epoch: int, provider: str):
        if not provider.startswith("0x"):
            raise ValueError(f"bad address {provider!r}")
        return {"epoch": epoch, "provider": provider}

    def handle_sign_attestation(self, report: dict):
        time.sleep(float(report.get("sleep", 0)))
        self.signed.append(report)
        return 200, {"signature": "0x01"}

    def handle_sign_uptime(self, report: dict):
        return 409, {"error": "no"}

    def handle_sign_verdict(self, report: dict):
        raise RuntimeError("a bug")

    def handle_sign_rewards(self, report: dict):
        return 200, {}

    def handle_sign_price(self, body: dict):
        return 200, {"round_id": body.get("round_id")}


@pytest.fixture
def oracle():
    service = _FakeService()
    server = start_http(service)
    yield service, server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_oracle_api_paths_codes_and_bodies(oracle):
    service, server, url = oracle
    assert server.url == url and server.port == server.server_address[1]
    r = requests.get(url + "/health", timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert r.json() == {"ok": True, "operator": OPERATOR, "last_error": None}
    service.healthy, service.last_error = False, "boom"
    assert requests.get(url + "/health", timeout=5).status_code == 503
    r = requests.get(url + "/metrics", timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/plain; version=0.0.4"
    assert requests.get(url + "/audits/7", timeout=5).json() == {"job_id": 7}
    r = requests.get(url + "/audits/8", timeout=5)
    assert r.status_code == 404 and r.json()["error"] == "no audit of this job by this operator"
    assert requests.get(url + "/rewards/1", timeout=5).json() == {"epoch": 1}
    assert requests.get(url + "/rewards/2", timeout=5).status_code == 404
    assert requests.get(url + "/rewards/1/0xab", timeout=5).json() == {"epoch": 1, "provider": "0xab"}
    r = requests.get(url + "/rewards/1/nope", timeout=5)
    assert r.status_code == 400 and "bad address" in r.json()["error"]
    assert requests.get(url + "/rewards/x", timeout=5).status_code == 404
    r = requests.get(url + "/nope", timeout=5)
    assert r.status_code == 404 and r.json()["error"].startswith("unknown path: try /health")
    assert requests.post(url + "/sign/attestation", json={"report": {"a": 1}}, timeout=5).json() == {
        "signature": "0x01"
    }
    assert requests.post(url + "/sign/uptime", json={"report": {}}, timeout=5).status_code == 409
    r = requests.post(url + "/sign/attestation", data=b"not json", timeout=5)
    assert r.status_code == 400 and r.json()["error"] == 'body must be JSON {"report": {...}}'
    assert requests.post(url + "/sign/attestation", json=[1], timeout=5).status_code == 400
    assert requests.post(url + "/sign/price", json={"round_id": 3}, timeout=5).json() == {"round_id": 3}
    r = requests.post(url + "/sign/price", json=[3], timeout=5)
    assert r.status_code == 400 and r.json()["error"] == 'body must be JSON {"round_id": N}'
    r = requests.post(url + "/sign/nope", json={"report": {}}, timeout=5)
    assert r.status_code == 404 and "POST /sign/<" in r.json()["error"]
    r = requests.post(url + "/sign/verdict", json={"report": {}}, timeout=5)
    assert r.status_code == 500 and r.json()["error"].startswith("internal error (RuntimeError)")
    assert requests.put(url + "/health", timeout=5).status_code == 405


def test_oracle_oversized_post__413_json(oracle):
    _, _, url = oracle
    r = requests.post(url + "/sign/attestation", data=b"x" * (ORACLE_MAX_BODY + 1), timeout=10)
    assert r.status_code == 413 and r.headers["Content-Type"] == "application/json"
    assert r.json() == {"error": f"request body over {ORACLE_MAX_BODY} bytes"}
    assert requests.get(url + "/health", timeout=5).status_code == 200


def test_oracle_survives_clients_that_leave_midway__no_traceback(oracle, capfd, caplog):
    service, server, url = oracle
    caplog.set_level(logging.DEBUG)
    _rude_clients(server.port)
    # A peer that leaves while its /sign request is being handled.
    body = json.dumps({"report": {"sleep": 0.5}}).encode()
    _send_and_drop(server.port, b"POST /sign/attestation HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
    time.sleep(1.0)
    assert service.signed == [{"sleep": 0.5}]  # it was still handled
    assert requests.get(url + "/health", timeout=5).json()["ok"] is True
    assert requests.post(url + "/sign/rewards", json={"report": {}}, timeout=5).status_code == 200
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, err
    assert "Traceback" not in caplog.text, caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text


def test_oracle_health_answers_while_handlers_wait_for_the_chain_lock(oracle):
    service, _, url = oracle
    results: list = []
    with service._chain_lock:  # a cycle holds the chain; a peer's /rewards request waits for it
        t = threading.Thread(target=lambda: results.append(requests.get(url + "/rewards/1", timeout=30)))
        t.start()
        time.sleep(0.3)
        for _ in range(5):  # answered while the lock is held: a handler waiting on it would time out
            assert requests.get(url + "/health", timeout=5).status_code == 200
            assert requests.get(url + "/metrics", timeout=5).status_code == 200
        assert t.is_alive()
    t.join(10)
    assert results[0].json() == {"epoch": 1}


# ----------------------------------------------------------------------------- the shared server


def test_http_server_lifecycle__bind_error_idempotent_stop_and_daemon_pool():
    from aiohttp import web

    app = web.Application()
    server = HttpServer(app, "127.0.0.1", 0, name="t")
    closed: list = []
    server.on_close.append(lambda: closed.append(1))
    with pytest.raises(OSError):
        HttpServer(web.Application(), "127.0.0.1", server.port, name="t2")
    assert server.thread.is_alive() and server.thread.daemon
    server.shutdown()
    server.shutdown()
    assert not server.thread.is_alive()
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url, timeout=2)
    server.server_close()
    server.server_close()
    assert closed == [1]

    pool = DaemonThreadPool(2, "p")
    futs = [pool.submit(time.sleep, 0.2) for _ in range(4)]
    assert [f.result(5) for f in futs] == [None] * 4
    assert len(pool._threads) == 2 and all(t.daemon for t in pool._threads)
    assert pool.submit(lambda: 1 / 0).exception(5).__class__ is ZeroDivisionError
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(print)
