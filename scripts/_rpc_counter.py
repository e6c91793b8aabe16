"""A counting JSON-RPC proxy for `make load`: forwards every request to the node unchanged and
counts the calls by method, on one port per role (oracles, agents, clients), so the harness can
say how many RPC calls each kind of process made per job. A batch request counts as its number
of calls. Built on aiohttp (server and client), run on its own event loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from offchain.chain.anvil import free_ports


class RpcCounter:
    def __init__(self, upstream: str, roles: list[str]):
        self.upstream = upstream
        self.roles = list(roles)
        self.ports = dict(zip(self.roles, free_ports(len(self.roles)), strict=True))
        self._counts: dict[str, Counter] = {r: Counter() for r in self.roles}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rpc-counter", daemon=True)

    def urls(self) -> dict[str, str]:
        return {r: f"http://127.0.0.1:{p}" for r, p in self.ports.items()}

    def start(self) -> dict[str, str]:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the RPC counting proxy did not start")
        return self.urls()

    def stop(self) -> None:
        async def close() -> None:
            for runner in self._runners:
                await runner.cleanup()
            await self._session.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def reset(self) -> None:
        with self._lock:
            for c in self._counts.values():
                c.clear()

    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {r: dict(c) for r, c in self._counts.items()}

    def _count(self, role: str, body: bytes) -> None:
        try:
            msg = json.loads(body)
        except ValueError:
            msg = None
        calls = msg if isinstance(msg, list) else [msg]
        with self._lock:
            for call in calls:
                method = call.get("method", "?") if isinstance(call, dict) else "?"
                self._counts[role][method] += 1

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        session = self._session = ClientSession(timeout=ClientTimeout(total=120))
        self._runners: list[web.AppRunner] = []

        def handler_for(role: str):
            async def handle(request: web.Request) -> web.Response:
                body = await request.read()
                self._count(role, body)
                headers = {"Content-Type": "application/json"}
                try:
                    async with session.post(self.upstream, data=body, headers=headers) as r:
                        data = await r.read()
                        return web.Response(body=data, status=r.status, content_type="application/json")
                except (ClientError, TimeoutError) as e:  # the node is down (make faults restarts it)
                    return web.Response(status=502, text=f"node unreachable: {type(e).__name__}")

            return handle

        for role, port in self.ports.items():
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/{tail:.*}", handler_for(role))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            self._runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", port).start()
