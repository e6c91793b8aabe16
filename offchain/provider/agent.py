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

import json
import logging
import os
import re
import shutil
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from offchain.provider.agent_core import (  # re-exported: the agent's public names
    AGENT_VERSION,
    CHEAT_MODES,
    DEFAULT_PORT,
    AgentConfig,
    ProviderAgent,
    RequestError,
    TtlLru,
)
from offchain.provider.blobs import BlobError, BlobStore

log = logging.getLogger("gpunet.provider.agent")

MAX_BODY_BYTES = 1 << 20
# A refused (413) upload up to this much over the cap is read and discarded so the client sees
# the 413 instead of a reset connection; larger ones are cut off.
_DRAIN_BYTES = 16 << 20

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
