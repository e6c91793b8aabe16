"""Runs an `aiohttp.web.Application` on its own event loop in a daemon thread, for the provider
agent (`offchain/provider/agent.py`) and the oracle operator's API (`offchain/oracle/http_api.py`).

    server = HttpServer(app, "127.0.0.1", 0, name="gpunet-agent", max_workers=32)
    server.url            # "http://127.0.0.1:<port>"; also .host, .port, .server_address
    server.shutdown()     # stop accepting, close connections, stop the loop (idempotent)
    server.server_close() # shutdown() if needed, then release the worker threads (idempotent)

The event loop only parses requests and writes replies. Handlers run anything that blocks (torch,
SQLite, chain reads, disk IO) with `await blocking(request, fn, *args)`, on the server's own pool
of daemon threads (`max_workers`), so a long computation never holds up another request and never
keeps the process from exiting, as with the stdlib servers this replaced.

Clients that go away mid-request or mid-response are not errors: `client_gone(request)` tells a
handler so, and a filter on the `aiohttp.server` logger drops the tracebacks aiohttp would log for
a reset connection and logs a malformed request as one line. aiohttp's access log is off; the
services log what they do as structured lines of their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

T = TypeVar("T")

# How long shutdown() lets in-flight requests finish before it cuts them.
SHUTDOWN_GRACE_S = 1.0
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


class DaemonThreadPool(concurrent.futures.Executor):
    """At most `max_workers` daemon threads, started as work arrives and reused.

    Unlike `ThreadPoolExecutor` (whose threads the interpreter joins at exit), a computation still
    running here does not keep a stopped server's process alive: its result is simply dropped.
    """

    def __init__(self, max_workers: int, name: str):
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self._max, self._name = max_workers, name
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name}: cannot run new work after shutdown")
            fut: concurrent.futures.Future[T] = concurrent.futures.Future()
            self._work.put((fut, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                t = threading.Thread(target=self._worker, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
            return fut

    def _worker(self) -> None:
        while (item := self._work.get()) is not None:
            fut, fn, args, kwargs = item
            del item
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(*args, **kwargs))
                except BaseException as e:  # noqa: BLE001 - handed to whoever awaits the future
                    fut.set_exception(e)
            del fut, fn, args, kwargs
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            if cancel_futures:
                while True:
                    try:
                        item = self._work.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            for _ in self._threads:
                self._work.put(None)
            threads = list(self._threads)
        if wait:
            for t in threads:
                t.join()


_POOL: web.AppKey[DaemonThreadPool] = web.AppKey("gpunet_pool", DaemonThreadPool)


async def blocking(request: web.Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` on the server's worker threads, off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[_POOL], functools.partial(fn, *args, **kwargs))


def client_gone(request: web.Request) -> bool:
    """Whether the client that sent `request` has closed its connection."""
    transport = request.transport
    return transport is None or transport.is_closing()


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> web.Response:
    """`obj` as JSON, Content-Type exactly `application/json` (as the stdlib servers sent it)."""
    return web.Response(status=status, body=json.dumps(obj).encode(), content_type="application/json", headers=headers)


class _ClientNoise(logging.Filter):
    """On `aiohttp.server`: a peer that resets or drops its connection is not an error worth a
    traceback (dropped), and a malformed request is logged as one line without one."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        if isinstance(exc, ConnectionError | asyncio.CancelledError):
            return False
        if isinstance(exc, HttpProcessingError):  # the client's fault: one line, a warning at most
            record.msg = f"{record.getMessage()}: bad request: {' '.join(str(exc).split())}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


_filter = _ClientNoise()
if _filter not in logging.getLogger("aiohttp.server").filters:
    logging.getLogger("aiohttp.server").addFilter(_filter)


class HttpServer:
    """`app` served on (host, port) (port 0: a free one) from a daemon thread; ready on return.

    A bind error (port in use, bad host) is raised here, as OSError. `on_close` callbacks run
    once, in `server_close()`.
    """

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        name: str = "gpunet-http",
        max_workers: int = 16,
        shutdown_grace_s: float = SHUTDOWN_GRACE_S,
    ):
        self.app = app
        self.pool = DaemonThreadPool(max_workers, f"{name}-worker")
        app[_POOL] = self.pool
        self.on_close: list[Callable[[], None]] = []
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_grace_s)
        self._stopped = False
        self._closed = False
        self._stop_lock = threading.Lock()
        started: concurrent.futures.Future[tuple] = concurrent.futures.Future()
        self.thread = threading.Thread(target=self._run, args=(host, int(port), started), name=name, daemon=True)
        self.thread.start()
        try:
            self.server_address: tuple = started.result(_START_TIMEOUT_S)
        except BaseException:
            self._stopped = self._closed = True
            self.pool.shutdown(wait=False)
            raise

    @property
    def host(self) -> str:
        return str(self.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self, host: str, port: int, started: concurrent.futures.Future) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start(host, port))
        except BaseException as e:  # noqa: BLE001 - handed to the constructor
            try:
                loop.run_until_complete(self._runner.cleanup())
            except Exception:  # noqa: BLE001, S110 - the bind error is what matters
                pass
            loop.close()
            started.set_exception(e)
            return
        started.set_result(tuple(self._runner.addresses[0][:2]))
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _start(self, host: str, port: int) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()

    def shutdown(self) -> None:
        """Stops serving: closes the listening socket and the connections (in-flight requests get
        `shutdown_grace_s` to finish), then stops the loop. Blocking work they started runs on."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        if self.thread is threading.current_thread():
            raise RuntimeError("HttpServer.shutdown() called from its own event loop")
        try:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(_STOP_TIMEOUT_S)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass  # the loop is being stopped anyway
        finally:
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._loop.stop)
            self.thread.join(_STOP_TIMEOUT_S)

    def server_close(self) -> None:
        """`shutdown()` if not done yet, then releases the worker threads and runs `on_close`."""
        self.shutdown()
        with self._stop_lock:
            if self._closed:
                return
            self._closed = True
        self.pool.shutdown(wait=False, cancel_futures=True)
        for cb in self.on_close:
            cb()


__all__ = ["DaemonThreadPool", "HttpServer", "blocking", "client_gone", "json_response"]
