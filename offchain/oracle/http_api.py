"""The oracle operator's HTTP API: /health, /metrics, /audits/<job>, /rewards/<epoch>[/<provider>]
for anyone, and POST /sign/<kind> for peers asking this operator to co-sign a report.

On `http.server` for now (issue 12 moves both services to a well-kept server library).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import generate_latest


def start_http(service: Any) -> ThreadingHTTPServer:
    """Serves `service`'s API on its configured host and port, in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # structured logs only
            return

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/health":
                ok = service.healthy and not service._stop.is_set()
                body = {"ok": ok, "operator": service.address, "last_error": service.last_error}
                self._send(200 if ok else 503, json.dumps(body).encode())
            elif self.path == "/metrics":
                self._send(200, generate_latest(service.metrics.registry), "text/plain; version=0.0.4")
            elif self.path.startswith("/audits/") and self.path.removeprefix("/audits/").isdigit():
                rec = service.audit_record(int(self.path.removeprefix("/audits/")))
                if rec is None:
                    self._send(404, b'{"error": "no audit of this job by this operator"}')
                else:
                    self._send(200, json.dumps(rec).encode())
            elif self.path.startswith("/rewards/"):
                parts = self.path.removeprefix("/rewards/").split("/")
                if not parts[0].isdigit() or len(parts) > 2:
                    self._send(404, b'{"error": "try /rewards/<epoch> or /rewards/<epoch>/<provider>"}')
                    return
                try:
                    with service._chain_lock:
                        out = (service.rewards_record(int(parts[0])) if len(parts) == 1
                               else service.rewards_proof(int(parts[0]), parts[1]))  # fmt: skip
                except Exception as e:  # noqa: BLE001 - a bad address, an RPC error
                    self._send(400, json.dumps({"error": str(e)[:200]}).encode())
                    return
                if out is None:
                    self._send(404, b'{"error": "no rewards (or no leaf) for this epoch at this operator"}')
                else:
                    self._send(200, json.dumps(out).encode())
            else:
                self._send(404, b'{"error": "unknown path: try /health, /metrics, /audits/<job_id>, /rewards/<epoch>"}')

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if self.path == "/sign/price":
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    self._send(400, b'{"error": "body must be JSON {\\"round_id\\": N}"}')
                    return
                code, out = service.handle_sign_price(body)
                self._send(code, json.dumps(out).encode())
                return
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                report = body["report"]
            except (ValueError, KeyError):
                self._send(400, b'{"error": "body must be JSON {\\"report\\": {...}}"}')
                return
            handle = {
                "/sign/attestation": service.handle_sign_attestation,
                "/sign/uptime": service.handle_sign_uptime,
                "/sign/verdict": service.handle_sign_verdict,
                "/sign/rewards": service.handle_sign_rewards,
            }.get(self.path)
            if handle is None:
                code, out = 404, {"error": "unknown path: POST /sign/<attestation|uptime|verdict|rewards|price>"}
            else:
                code, out = handle(report)
            self._send(code, json.dumps(out).encode())

    server = ThreadingHTTPServer((service.cfg.host, service.cfg.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
