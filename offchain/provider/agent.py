"""The provider agent's HTTP server: hardware challenges and content-addressed blobs, on aiohttp
(`offchain/http_server.py`: its own event loop in a daemon thread).

The oracle drives one challenge over these endpoints (see `offchain/oracle/challenger.py` and
`offchain/benchmark/challenge.py` for the protocol); users upload job specs and inputs, and
anyone downloads them and job outputs, as blobs. Every JSON reply is an object, every error is
`{"error": "<what is wrong and how to fix it>"}` with a 4xx/5xx status, never a trace.

    GET  /health
         -> {"ok": true, "provider": addr, "claimed_class": id, "claimed_class_name": name,
             "device": "cpu" | "cuda:0", "version": AGENT_VERSION, "torch": torch version,
             "max_blob_bytes": int}
    GET  /metrics
         -> Prometheus text (`text/plain; version=0.0.4`) from the agent's metrics registry;
            404 if this agent keeps no metrics.
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
         400 if sha256(body) != hex, 411 without a Content-Length (a chunked upload), 413 over
         the agent's cap (`max_blob_bytes`, default 64 MiB): a body up to 16 MiB over the cap is
         read and discarded first, so the client sees the 413; a larger one is cut off (the
         connection is closed). The body streams to disk, never held whole in memory.
         Job specs (`workloads.base.canonical_json(spec)`, named by the on-chain spec_hash) and
         the inputs a spec names by hash are uploaded here by the user before the job is
         funded; the job worker stores outputs here too.
    With `blob_auth` (`gpunet provider serve` sets it), every blob request is signed by an
    account (header X-Gpunet-Auth, offchain/blob_auth.py) and checked against who may read or
    write what, with per-account quotas (offchain/provider/blob_access.py): 401 unsigned,
    expired or replayed, 403 not allowed, 413 over the account's quota, 503 while the job
    worker is still connecting to the chain.
    GET  /blobs/<sha256 hex>  (HEAD: the same headers, no body)
         -> application/octet-stream: the blob (sha256(body) == hex). 404 if unknown.
         A job's `result_uri` on-chain is `<agent url>/blobs/<result hash hex>`; blobs stay
         served after the job is final (see `offchain/provider/blobs.py`).

Status codes: 400 malformed request (the message says which field and what is accepted),
404 unknown path or id, 405 wrong method, 411 no Content-Length, 413 body too large (JSON
bodies: over `MAX_BODY_BYTES`, 1 MiB, the app's `client_max_size`; blobs: over the cap),
422 cannot satisfy, 500 an internal error (logged here, reported as a one-line message).
A request aiohttp cannot parse (bad request line, header or Content-Length) gets its plain-text
400. A client that disconnects mid-request or mid-response is logged as one line, no traceback.

The event loop only moves bytes: the challenge and memory proof (torch), result serialisation
and blob disk IO run on the server's worker threads (`_WORKERS`), so /health, /metrics and blob
transfers keep answering while a long challenge computes. POST /challenge replies as soon as the
commitment exists (one hop from the worker thread back to the loop).

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

import asyncio
import json
import logging
import os
import re
import signal
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from aiohttp import web
from prometheus_client import generate_latest

from offchain.blob_auth import HEADER, AuthError
from offchain.http_server import HttpServer, blocking, client_gone
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
# Worker threads for blocking work: one challenge computes at a time; the rest serve blob
# transfers (an upload holds one for as long as its body takes to arrive) and quick refusals.
_WORKERS = 32
# An upload whose body stops arriving for this long is abandoned.
_BODY_STALL_S = 120.0
_CHUNK = 1 << 20

_ID = r"([0-9a-f]{32})"
_HASH = r"([0-9a-f]{64})"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"/health"), "health"),
    ("GET", re.compile(r"/metrics"), "metrics"),
    ("POST", re.compile(r"/challenge"), "challenge"),
    ("GET", re.compile(rf"/challenge/{_ID}/result"), "result"),
    ("POST", re.compile(r"/memory"), "memory"),
    ("POST", re.compile(rf"/memory/{_ID}/open"), "memory_open"),
    ("PUT", re.compile(rf"/blobs/{_HASH}"), "blob_put"),
    ("GET", re.compile(rf"/blobs/{_HASH}"), "blob_get"),
]
_ENDPOINTS = (
    "GET /health, GET /metrics, POST /challenge, GET /challenge/<id>/result, POST /memory, POST /memory/<id>/open, "
    "PUT /blobs/<sha256 hex>, GET /blobs/<sha256 hex>"
)
_NO_STORE = {"Cache-Control": "no-store"}


def _json(status: int, obj: dict) -> web.Response:
    return web.Response(status=status, body=json.dumps(obj).encode(), content_type="application/json",
                        headers=_NO_STORE)  # fmt: skip


async def _body(request: web.Request) -> dict:
    """The request's JSON object body (at most MAX_BODY_BYTES)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:  # a chunked body past client_max_size
        raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes") from None
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise RequestError(400, "the body must be a JSON object (Content-Type: application/json)") from None
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object (Content-Type: application/json)")
    return body


class _BodyReader:
    """A blocking `read(n)` over an aiohttp request body, for `BlobStore.put_stream` on a worker
    thread: each read is handed to the event loop and waited for."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop):
        self._content = request.content
        self._loop = loop

    def read(self, n: int) -> bytes:
        fut = asyncio.run_coroutine_threadsafe(self._content.read(n), self._loop)
        try:
            return fut.result(_BODY_STALL_S)
        except TimeoutError:
            fut.cancel()
            raise RequestError(400, f"the body stalled: no bytes for {_BODY_STALL_S:g}s") from None


async def _dispatch(request: web.Request) -> web.StreamResponse:
    method = request.method
    path = request.path.rstrip("/") or "/"
    for m, pattern, name in _ROUTES:
        match = pattern.fullmatch(path)
        if not match:
            continue
        if m != method and not (method == "HEAD" and m == "GET"):
            continue
        return await _route(request, name, match.groups())
    if any(p.fullmatch(path) for _, p, _ in _ROUTES):
        raise RequestError(405, f"{method} not allowed on {path} ({_ENDPOINTS})")
    if path.startswith("/blobs/"):
        raise RequestError(404, f"no such endpoint {method} {path}: a blob name is a lowercase sha256 hex")
    raise RequestError(404, f"no such endpoint {method} {path} ({_ENDPOINTS})")


async def _route(request: web.Request, name: str, groups: tuple[str, ...]) -> web.StreamResponse:
    agent: ProviderAgent = request.app[_AGENT]
    if name == "health":
        return _json(200, agent.health())
    if name == "metrics":
        metrics = getattr(agent, "metrics", None)
        if metrics is None:
            raise RequestError(404, "metrics are not enabled on this agent")
        text = await blocking(request, generate_latest, metrics.registry)
        return web.Response(body=text, headers={"Content-Type": "text/plain; version=0.0.4", **_NO_STORE})
    if name == "challenge":
        body = await _body(request)
        return _json(200, await blocking(request, agent.challenge, body))
    if name == "result":
        data = await blocking(request, agent.result, groups[0])
        return web.Response(body=data, content_type="application/octet-stream", headers=_NO_STORE)
    if name == "memory":
        body = await _body(request)
        return _json(200, await blocking(request, agent.memory, body))
    if name == "memory_open":
        body = await _body(request)
        return _json(200, await blocking(request, agent.memory_open, groups[0], body))
    if name == "blob_put":
        try:
            signer = await _blob_access(request, agent, "PUT", groups[0])
        except _Reply as r:
            return r.response
        if signer is None:
            return await _blob_put(request, agent.blobs, groups[0])
        size, stored = int(request.content_length or 0), False
        try:
            resp = await _blob_put(request, agent.blobs, groups[0])
            stored = resp.status in (200, 201)
            return resp
        finally:  # (shielded: a client that hangs up must not leave its bytes reserved)
            await asyncio.shield(blocking(request, agent.access.end_put, signer, groups[0], size, stored))
    if name == "blob_get":
        await _blob_access(request, agent, request.method, groups[0])
        return await _blob_get(request, agent.blobs, groups[0], private=agent.config.blob_auth)
    raise RequestError(404, f"no route {name}")  # pragma: no cover - routes and names are in sync


class _Reply(Exception):  # noqa: N818 - not an error: a finished response to return as it is
    def __init__(self, response: web.StreamResponse):
        self.response = response


async def _blob_access(request: web.Request, agent: ProviderAgent, method: str, h: str) -> str | None:
    """The signer of a blob request, when this agent enforces access (offchain/provider/
    blob_access.py); None when it does not. Refusals are one-line errors (401, 403, 413, 503)."""
    if not agent.config.blob_auth:
        return None
    access = getattr(agent, "access", None)
    if access is None:
        raise RequestError(503, "blob access is not ready: the agent is still connecting to the chain", {"retry": True})
    header = request.headers.get(HEADER)
    try:
        if method == "PUT":
            return await blocking(request, access.check_put, header, h, int(request.content_length or 0))
        return await blocking(request, access.check_get, header, method, h)
    except AuthError as e:
        if method != "PUT":
            raise RequestError(e.status, str(e)) from None
        # The client is sending a body: read it away (up to _DRAIN_BYTES) so that it sees the
        # reply, or cut the connection off after replying, as for a blob over the cap.
        resp = _json(e.status, {"error": str(e)})
        if int(request.content_length or 0) <= _DRAIN_BYTES:
            while await request.content.readany():
                pass
            raise _Reply(resp) from None
        resp.force_close()
        await resp.prepare(request)
        await resp.write_eof()
        request.protocol.force_close()
        raise _Reply(resp) from None


async def _blob_put(request: web.Request, store: BlobStore, h: str) -> web.StreamResponse:
    raw = request.headers.get("Content-Length")
    if raw is None:
        raise RequestError(411, "PUT /blobs/<hash> needs a Content-Length header (send the body in one piece)")
    try:
        length = int(raw)
    except ValueError:
        raise RequestError(400, "bad Content-Length header") from None
    if length < 0:
        raise RequestError(400, "bad Content-Length header")
    if length > store.max_bytes:
        resp = _json(413, {"error": f"blob of {length} bytes is over this agent's cap of {store.max_bytes} bytes"})
        if length - store.max_bytes <= _DRAIN_BYTES:
            while await request.content.readany():
                pass
            return resp
        # Cut off: reply, then close the connection instead of reading the rest.
        resp.force_close()
        await resp.prepare(request)
        await resp.write_eof()
        request.protocol.force_close()
        return resp
    existed = await blocking(request, store.has, h)
    try:
        await blocking(request, store.put_stream, _BodyReader(request, asyncio.get_running_loop()), length, h)
    except BlobError as e:
        raise RequestError(e.status, str(e)) from None
    return _json(200 if existed else 201, {"hash": h, "size": length})


async def _blob_get(request: web.Request, store: BlobStore, h: str, private: bool = False) -> web.StreamResponse:
    f: BinaryIO | None = await blocking(request, store.open, h)
    if f is None:
        raise RequestError(404, f"no blob {h} here (upload it with PUT /blobs/{h})")
    try:
        # Content-addressed: the bytes behind a name never change (but a signed read is not
        # for a shared cache).
        immutable = {"Cache-Control": f"{'private' if private else 'public'}, max-age=31536000, immutable"}
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream", **immutable})
        resp.content_length = os.fstat(f.fileno()).st_size
        await resp.prepare(request)
        if request.method != "HEAD":
            while chunk := await blocking(request, f.read, _CHUNK):
                await resp.write(chunk)
        await resp.write_eof()
        return resp
    finally:
        f.close()


@web.middleware
async def _errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestError as e:
        return _json(e.status, {"error": e.message, **e.extra})
    except Exception as e:  # never a trace on the wire
        if isinstance(e, ConnectionError) and client_gone(request):
            log.info("client went away during %s %s", request.method, request.path)
            return web.Response(status=499)  # nobody reads it
        log.exception("agent: internal error on %s %s", request.method, request.path)
        return _json(500, {"error": f"internal error ({type(e).__name__}); see the agent's log"})


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = AGENT_VERSION


_AGENT: web.AppKey[ProviderAgent] = web.AppKey("agent", ProviderAgent)


def _build_app(agent: ProviderAgent) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_errors])
    app[_AGENT] = agent
    app.on_response_prepare.append(_server_header)
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


class _AgentServer(HttpServer):
    """The agent's server handle: `url`, `server_address`, `agent`, `shutdown()`, `server_close()`
    (which also removes the agent's temporary blob directory)."""

    def __init__(self, address: tuple[str, int], agent: ProviderAgent):
        self.agent = agent
        super().__init__(_build_app(agent), address[0], int(address[1]), name="gpunet-agent", max_workers=_WORKERS)
        self.on_close.append(agent.close)


def serve(config: AgentConfig) -> tuple[_AgentServer, threading.Thread]:
    """Start the agent on (config.host, config.port) in a daemon thread; port 0 picks a free one.

    Returns (server, thread); `server.url` is its base URL. Stop with `server.shutdown();
    server.server_close()`.
    """
    agent = ProviderAgent(config)
    try:
        server = _AgentServer((config.host, int(config.port)), agent)
    except BaseException:
        agent.close()
        raise
    server.thread.name = f"gpunet-agent:{server.url}"
    log.info(
        "agent %s serving %s (class %s, device %s)", AGENT_VERSION, server.url, agent.claimed_class.name, agent.device
    )
    return server, server.thread


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
