"""Links between oracle operators that `make faults` can cut: a network partition on one host.

Each operator reaches each peer through its own TCP forwarder (one per ordered pair, on a port of
its own), so cutting operator X off its peers is closing the links X -> * and * -> X while
X's RPC to the node and its own probes of provider agents go on untouched. A cut link behaves
like a dropped route, not a refused port: a new connection is accepted and then never answered
(the peer's request runs into its own timeout) and open connections are closed.

Plain asyncio streams on a thread of their own: a byte pipe with an on/off switch is all this
needs; an HTTP proxy library would parse what must pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class PeerLinks:
    """Forwarders src -> dst for every ordered pair of `ports` (name -> the HTTP port it serves)."""

    def __init__(self, ports: dict[str, int], host: str = "127.0.0.1"):
        self.ports, self.host = dict(ports), host
        self.links: dict[tuple[str, str], int] = {}
        self._cut: set[str] = set()
        self._open: dict[tuple[str, str], set[asyncio.StreamWriter]] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="peer-links", daemon=True)

    def start(self) -> dict[tuple[str, str], int]:
        """Opens every link; returns {(src, dst): port src must use to reach dst}."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return dict(self.links)

    def url(self, src: str, dst: str) -> str:
        return f"http://{self.host}:{self.links[(src, dst)]}"

    def cut(self, name: str) -> None:
        """Cuts `name` off every peer (both directions) until `heal(name)`."""
        self._loop.call_soon_threadsafe(self._cut_now, name)

    def heal(self, name: str) -> None:
        self._loop.call_soon_threadsafe(self._cut.discard, name)

    def stop(self) -> None:
        async def close() -> None:
            for s in self._servers:
                s.close()
            for writers in self._open.values():
                for w in writers:
                    w.close()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    # ------------------------------------------------------------------ on the loop
    def _is_cut(self, pair: tuple[str, str]) -> bool:
        return pair[0] in self._cut or pair[1] in self._cut

    def _cut_now(self, name: str) -> None:
        self._cut.add(name)
        for pair, writers in self._open.items():
            if self._is_cut(pair):
                for w in list(writers):
                    w.close()

    async def _listen(self) -> None:
        for src in self.ports:
            for dst, port in self.ports.items():
                if src == dst:
                    continue
                pair = (src, dst)
                self._open[pair] = set()
                server = await asyncio.start_server(
                    lambda r, w, pair=pair, port=port: self._serve(pair, port, r, w), self.host, 0
                )
                self._servers.append(server)
                self.links[pair] = server.sockets[0].getsockname()[1]

    async def _serve(self, pair: tuple[str, str], port: int, reader, writer) -> None:
        if self._is_cut(pair):
            # A dropped route: the connection stays silent until the client gives up.
            with contextlib.suppress(ConnectionError):
                while await reader.read(1 << 16):
                    pass
            writer.close()
            return
        try:
            up_r, up_w = await asyncio.open_connection(self.host, port)
        except OSError:
            writer.close()
            return
        self._open[pair].update((writer, up_w))

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await r.read(1 << 16):
                    w.write(data)
                    await w.drain()
            w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        self._open[pair].difference_update((writer, up_w))
