"""offchain/http_retry.py: sessions that retry connection failures and gateway errors (urllib3's
Retry), against a real local HTTP server that fails a given number of times first."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from offchain.http_retry import retrying_session


class _Flaky(BaseHTTPRequestHandler):
    failures = 0  # answers left to fail with 503
    seen: list[str] = []

    def _answer(self) -> None:
        type(self).seen.append(self.command)
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if type(self).failures > 0:
            type(self).failures -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture()
def flaky():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    _Flaky.seen = []
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("method", ["GET", "PUT", "POST"])
def test_gateway_errors_are_retried_until_the_peer_answers(flaky, method):
    _, url = flaky
    _Flaky.failures = 2
    r = retrying_session(retries=3, backoff_s=0.01).request(method, f"{url}/x", data=b"blob", timeout=5)
    assert r.status_code == 200 and r.text == "ok"
    assert _Flaky.seen == [method] * 3


def test_gives_up_after_its_retries_with_the_last_answer(flaky):
    _, url = flaky
    _Flaky.failures = 10
    r = retrying_session(retries=2, backoff_s=0.01).get(f"{url}/x", timeout=5)
    assert r.status_code == 503
    assert len(_Flaky.seen) == 3  # the first try and two retries


def test_connection_refused__retried_then_one_clear_exception():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(requests.ConnectionError):
        retrying_session(retries=2, backoff_s=0.01).get(f"http://127.0.0.1:{port}/x", timeout=2)
