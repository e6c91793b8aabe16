"""The oracle operator's HTTP API: /health, /metrics, /audits/<job>, /rewards/<epoch>[/<provider>]
for anyone, and POST /sign/<kind> for peers asking this operator to co-sign a report.

    GET  /health                      -> 200 {"ok": true, "operator", "last_error"} (503 with ok false)
    GET  /metrics                     -> Prometheus text
    GET  /audits/<job_id>             -> this operator's audit of the job's current result, or 404
    GET  /rewards/<epoch>[/<provider>] -> the epoch's rewards tree, or one provider's leaf and proof;
                                         404 if none here, 400 on a bad address or an RPC error
    POST /sign/<attestation|uptime|verdict|rewards>  {"report": {...}} -> the service's answer
    POST /sign/price                  {"round_id": N} -> the service's answer

Errors are `{"error": "..."}`: 400 malformed body, 404 unknown path, 405 another method,
413 a body over `MAX_BODY_BYTES`, 500 an internal error (logged, never a trace on the wire).

Served by aiohttp (`offchain/http_server.py`) on its own event loop in a daemon thread; SQLite,
chain reads and signing run on the server's worker threads, so /health and /metrics answer while a
peer's /sign request waits for the chain lock.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest

from offchain.http_server import HttpServer, blocking, client_gone, json_response
from offchain.oracle.common import log

# The largest request body accepted (a signed report is a few KB).
MAX_BODY_BYTES = 1 << 20
_WORKERS = 16

_UNKNOWN_GET = b'{"error": "unknown path: try /health, /metrics, /audits/<job_id>, /rewards/<epoch>"}'
_BAD_REWARDS = b'{"error": "try /rewards/<epoch> or /rewards/<epoch>/<provider>"}'


def _raw(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")


def _build_app(service: Any) -> web.Application:
    async def on_get(request: web.Request) -> web.Response:
        path = request.raw_path
        if path == "/health":
            ok = service.healthy and not service._stop.is_set()
            body = {"ok": ok, "operator": service.address, "last_error": service.last_error}
            return json_response(200 if ok else 503, body)
        if path == "/metrics":
            text = await blocking(request, generate_latest, service.metrics.registry)
            return web.Response(body=text, headers={"Content-Type": "text/plain; version=0.0.4"})
        if path.startswith("/audits/") and path.removeprefix("/audits/").isdigit():
            rec = await blocking(request, service.audit_record, int(path.removeprefix("/audits/")))
            if rec is None:
                return _raw(404, b'{"error": "no audit of this job by this operator"}')
            return json_response(200, rec)
        if path.startswith("/rewards/"):
            parts = path.removeprefix("/rewards/").split("/")
            if not parts[0].isdigit() or len(parts) > 2:
                return _raw(404, _BAD_REWARDS)

            def rewards() -> dict | None:
                with service._chain_lock:
                    if len(parts) == 1:
                        return service.rewards_record(int(parts[0]))
                    return service.rewards_proof(int(parts[0]), parts[1])

            try:
                out = await blocking(request, rewards)
            except Exception as e:  # noqa: BLE001 - a bad address, an RPC error
                return json_response(400, {"error": str(e)[:200]})
            if out is None:
                return _raw(404, b'{"error": "no rewards (or no leaf) for this epoch at this operator"}')
            return json_response(200, out)
        return _raw(404, _UNKNOWN_GET)

    async def on_post(request: web.Request) -> web.Response:
        path = request.raw_path
        raw = await request.read()  # over client_max_size: HTTPRequestEntityTooLarge, see _errors
        if path == "/sign/price":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return _raw(400, b'{"error": "body must be JSON {\\"round_id\\": N}"}')
            code, out = await blocking(request, service.handle_sign_price, body)
            return json_response(code, out)
        try:
            report = json.loads(raw or b"{}")["report"]
        except (ValueError, KeyError, TypeError):
            return _raw(400, b'{"error": "body must be JSON {\\"report\\": {...}}"}')
        handle = {
            "/sign/attestation": service.handle_sign_attestation,
            "/sign/uptime": service.handle_sign_uptime,
            "/sign/verdict": service.handle_sign_verdict,
            "/sign/rewards": service.handle_sign_rewards,
        }.get(path)
        if handle is None:
            return json_response(404, {"error": "unknown path: POST /sign/<attestation|uptime|verdict|rewards|price>"})
        code, out = await blocking(request, handle, report)
        return json_response(code, out)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        if request.method in ("GET", "HEAD"):
            return await on_get(request)
        if request.method == "POST":
            return await on_post(request)
        return json_response(405, {"error": f"{request.method} not allowed: GET /health, /metrics, /audits/<job_id>, "
                                            "/rewards/<epoch>; POST /sign/<kind>"})  # fmt: skip

    @web.middleware
    async def _errors(request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            resp = json_response(413, {"error": f"request body over {MAX_BODY_BYTES} bytes"})
            resp.force_close()
            return resp
        except Exception as e:  # never a trace on the wire
            if isinstance(e, ConnectionError) and client_gone(request):
                log.info(json.dumps({"event": "http_client_gone", "method": request.method, "path": request.path}))
                return web.Response(status=499)  # nobody reads it
            log.exception("oracle http: internal error on %s %s", request.method, request.path)
            return json_response(500, {"error": f"internal error ({type(e).__name__}); see the operator's log"})

    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_errors])
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


def start_http(service: Any) -> HttpServer:
    """Serves `service`'s API on its configured host and port, in a daemon thread. The handle has
    `server_address`, `port`, `url`, `shutdown()` and `server_close()`, like the stdlib server's."""
    return HttpServer(
        _build_app(service), service.cfg.host, int(service.cfg.port), name="gpunet-oracle-http", max_workers=_WORKERS
    )


__all__ = ["MAX_BODY_BYTES", "start_http"]
