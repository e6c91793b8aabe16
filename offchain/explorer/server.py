"""The explorer's web app: every page is server-rendered HTML (Jinja2) with a JSON API behind it.

    GET /                      /api/overview          the network: machines, offers, jobs, volume, supply, epochs
    GET /providers             /api/providers         every provider
    GET /providers/<address>   /api/providers/<addr>  machines, attestations, uptime, reputation, earnings, slashes
    GET /jobs?status=&provider=&user=&before=   /api/jobs     50 jobs at a time, newest first
    GET /jobs/<id>             /api/jobs/<id>         timeline, draw, verdict findings, settlement
    GET /oracles               /api/oracles           operators, reports signed, equivocations
    GET /verification          /api/verification      audits, disputes, slashes, false-slash rate, overhead
    GET /health                {"ok", "synced_block", "last_error"}
    GET /static/...            CSS, the plots' script and uPlot (shipped in this package; no CDN)

A page and its API read the same view (`views.py`), from the index only: a request makes no
chain call. A background thread syncs the index every `sync_s` seconds; pages read through
their own SQLite connection, so a sync in progress never blocks them (WAL). Unknown subjects
are 404 with one line saying what was asked; a malformed query is 400.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from offchain.cli.common import short
from offchain.client.timeline import fmt_time
from offchain.explorer.index import ExplorerIndex
from offchain.explorer.views import NotFound, Views
from offchain.http_server import HttpServer, blocking, json_response
from offchain.sqlite_store import SqliteStore

HERE = Path(__file__).parent
CACHE_PAGES = 256
MAX_ID = 2**63 - 1  # SQLite's integers
log = logging.getLogger("gpunet.explorer")
ADDRESS_LEN = 42


def _tokens(v: Any, digits: int = 3) -> str:
    return f"{float(v):,.{digits}f}"


def _utc(t: Any) -> str:
    return fmt_time(t) if t else "—"


AMOUNTS = frozenset(
    {
        "payment",
        "collateral",
        "refund",
        "bond",
        "user_compensation",
        "challenger_reward",
        "burned",
        "penalty",
        "amount",
        "fee",
        "minted",
        "cap",
    }
)
USD_FIELDS = frozenset({"usd_value", "usd_net"})
TIMES = frozenset({"accept_by", "complete_by", "challenge_end", "audit_deadline"})


def _arg(value: Any, key: str) -> str:
    """An event argument for people: tokens and USD in units, times in UTC, hashes shortened."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # an exact big integer (the API gives those as text)
    if key in AMOUNTS and isinstance(value, int):
        return f"{value / 10**18:,.6f} tokens"
    if key in USD_FIELDS and isinstance(value, int):
        return f"{value / 10**18:,.4f} USD"
    if key in TIMES and isinstance(value, int):
        return fmt_time(value)
    if key == "valid" or isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value.startswith("0x") and len(value) == 66:
        return value[:10] + "…"
    return short(value) if isinstance(value, str) else str(value)


def make_env() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.filters.update(tokens=_tokens, utc=_utc, short=short, arg=_arg)
    return env


class Explorer:
    """The index, its sync thread and the views: what the app serves."""

    def __init__(self, h: Any, *, index_path: Path | None = None, sync_s: float = 5.0, cache_pages: int = CACHE_PAGES):
        self.index = ExplorerIndex(h, index_path)
        self.views = Views(SqliteStore(self.index.path, schema="", synchronous="NORMAL"))
        self.sync_s = sync_s
        self.cache_pages = cache_pages  # 0: every request computes its page (the bench's worst case)
        self.last_error: str | None = None
        self.last_sync: float | None = None
        self.synced_block: int | None = None
        # Page data by (view, argument, query) for the block indexed: a view's data changes
        # only when a sync moves the index, so a busy page is computed once per sync.
        self._cache: collections.OrderedDict[tuple, tuple[int, dict]] = collections.OrderedDict()
        self._cache_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync_once(self) -> int:
        try:
            block = self.index.sync()
        except Exception as e:
            self.last_error = f"{type(e).__name__}: {e}"[:300]
            log.warning(json.dumps({"event": "explorer_sync_error", "error": self.last_error}))
            raise
        self.last_error, self.last_sync, self.synced_block = None, time.time(), block
        return block

    def page_data(self, key: tuple, fn: Callable[[], dict]) -> tuple[int, dict]:
        """(status, data) of a view: computed in one read snapshot of the index, kept until the
        next sync moves it (at most `cache_pages` pages). 404 and 400 answers are not kept."""
        key = (self.synced_block, *key)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        try:
            with self.views.ix.snapshot():
                out = (200, fn())
        except NotFound as e:
            return 404, {"error": str(e)}
        except ValueError as e:
            return 400, {"error": str(e)}
        with self._cache_lock:
            self._cache[key] = out
            while len(self._cache) > self.cache_pages:
                self._cache.popitem(last=False)
        return out

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.sync_s):
                try:
                    self.sync_once()
                except Exception:  # noqa: BLE001 - said in last_error and the log; retried next period
                    pass

        self._thread = threading.Thread(target=loop, name="explorer-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def build_app(explorer: Explorer) -> web.Application:
    env = make_env()
    v = explorer.views

    def jobs_view(q: dict) -> dict:
        before = q.get("before")
        if before is not None and (not str(before).isdigit() or int(before) > MAX_ID):
            raise ValueError("before must be a job id")
        for key in ("provider", "user"):
            if q.get(key) and (len(q[key]) != ADDRESS_LEN or not q[key].startswith("0x")):
                raise ValueError(f"{key} must be a 0x address of 40 hex digits")
        return v.jobs(
            status=q.get("status") or None,
            provider=q.get("provider") or None,
            user=q.get("user") or None,
            before=int(before) if before is not None else None,
        )

    def provider_view(q: dict, address: str) -> dict:
        if len(address) != ADDRESS_LEN or not address.startswith("0x"):
            raise ValueError(f"not an address: {address[:60]!r} (0x and 40 hex digits)")
        return v.provider(address)

    def job_view(q: dict, job_id: str) -> dict:
        if not job_id.isdigit() or int(job_id) > MAX_ID:
            raise ValueError(f"not a job id: {job_id[:40]!r}")
        return v.job(int(job_id))

    routes: list[tuple[str, str, Callable[..., dict]]] = [
        ("/", "overview.html", lambda q: v.overview()),
        ("/providers", "providers.html", lambda q: v.providers()),
        ("/providers/{arg}", "provider.html", provider_view),
        ("/jobs", "jobs.html", jobs_view),
        ("/jobs/{arg}", "job.html", job_view),
        ("/oracles", "oracles.html", lambda q: v.oracles()),
        ("/verification", "verification.html", lambda q: v.verification()),
    ]

    def data(request: web.Request, fn: Callable[..., dict]) -> tuple[int, dict]:
        """On a worker thread: the view's (status, data), from the cache or the index."""
        q = dict(request.query)
        arg = request.match_info.get("arg")
        key = (request.match_info.route.resource.canonical, arg, tuple(sorted(q.items())))
        return explorer.page_data(key, lambda: fn(q, arg) if arg is not None else fn(q))

    def page(template: str, fn: Callable[..., dict]) -> Callable:
        def render(request: web.Request) -> tuple[int, str]:
            status, out = data(request, fn)
            name = template if status == 200 else "error.html"
            body = env.get_template(name).render(
                d=out,
                status=status,
                path=request.path,
                query=dict(request.query),
                api="/api" + (request.path if request.path != "/" else "/overview"),
            )
            return status, body

        async def html(request: web.Request) -> web.Response:
            t0 = time.perf_counter()
            status, body = await blocking(request, render, request)
            resp = web.Response(status=status, text=body, content_type="text/html")
            resp.headers["Server-Timing"] = f"render;dur={(time.perf_counter() - t0) * 1000:.1f}"
            return resp

        async def api(request: web.Request) -> web.Response:
            status, out = await blocking(request, data, request, fn)
            return json_response(status, out)

        return html, api

    async def health(request: web.Request) -> web.Response:
        ok = explorer.last_error is None and explorer.last_sync is not None
        body = {"ok": ok, "synced_block": explorer.synced_block, "last_error": explorer.last_error}
        return json_response(200 if ok else 503, body)

    @web.middleware
    async def errors(request: web.Request, handler: Callable) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status == 404:
                return json_response(
                    404,
                    {
                        "error": f"no page {request.path}: try /, /providers, /jobs, /oracles, "
                        "/verification (and /api/... for JSON)"
                    },
                )
            raise
        except Exception as e:  # never a trace on the wire
            log.exception("explorer: internal error on %s", request.path)
            return json_response(500, {"error": f"internal error ({type(e).__name__}); see the explorer's log"})

    app = web.Application(middlewares=[errors])
    for path, template, fn in routes:
        html, api = page(template, fn)
        app.router.add_get(path, html)
        app.router.add_get("/api/overview" if path == "/" else "/api" + path, api)
    app.router.add_get("/health", health)
    app.router.add_static("/static", HERE / "static", show_index=False)
    return app


def serve(explorer: Explorer, host: str, port: int) -> HttpServer:
    """The explorer's app on (host, port), in a daemon thread (`offchain/http_server.py`)."""
    return HttpServer(build_app(explorer), host, port, name="gpunet-explorer", max_workers=8)


__all__ = ["Explorer", "build_app", "serve"]
