"""New blocks as they come: a loop waits for the next block instead of sleeping a fixed time.

`HeadWatcher(rpc_url)` subscribes to `newHeads` over the node's websocket (anvil serves one on
its HTTP port; so do geth and reth with `--ws`), on a daemon thread with its own asyncio loop
(web3's `WebSocketProvider` is asyncio-only). `wait(stop, timeout)` returns as soon as a block
newer than the last one the caller saw arrives, when `stop` is set, or after `timeout`, so a
caller that only has HTTP (no websocket at that address, or a proxy in between) keeps its poll
interval. `head` is the newest block seen, (number, timestamp), which saves the caller its own
head read while the subscription is live. The subscription reconnects after a drop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

log = logging.getLogger("gpunet.chain.heads")

RECONNECT_S = 5.0  # after a drop or a refused connection, the next try
FRESH_S = 3.0  # a head older than this (by the wall clock) is not used in place of a read


def ws_url(rpc_url: str) -> str | None:
    """The websocket address of an HTTP RPC address (same host and port), or None."""
    if rpc_url.startswith("http://"):
        return "ws://" + rpc_url.removeprefix("http://")
    if rpc_url.startswith("https://"):
        return "wss://" + rpc_url.removeprefix("https://")
    return rpc_url if rpc_url.startswith(("ws://", "wss://")) else None


class HeadWatcher:
    """Follows new block headers over a websocket subscription (see the module docstring)."""

    def __init__(self, rpc_url: str) -> None:
        self.url = ws_url(rpc_url)
        self._cond = threading.Condition()
        self._head: tuple[int, int] | None = None
        self._seen_at = 0.0
        self._stopped = threading.Event()
        self.live = False  # subscribed right now

    def start(self) -> HeadWatcher:
        if self.url is not None:
            threading.Thread(target=self._run, name="heads", daemon=True).start()
        return self

    def close(self) -> None:
        self._stopped.set()

    @property
    def head(self) -> tuple[int, int] | None:
        """(number, timestamp) of the newest block, while the subscription is live and fresh."""
        with self._cond:
            if self.live and self._head is not None and time.monotonic() - self._seen_at < FRESH_S:
                return self._head
        return None

    def wait(self, stop: threading.Event, timeout: float, after: int | None = None) -> bool:
        """Waits for a block above `after` (default: the newest seen now), `stop`, or `timeout`
        seconds; True when a new block arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            floor = after if after is not None else (self._head[0] if self._head else -1)
            while not stop.is_set():
                if self._head is not None and self._head[0] > floor:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))  # wakes for `stop` too
        return False

    # ------------------------------------------------------------------ the subscription
    def _run(self) -> None:
        logged = False
        while not self._stopped.is_set():
            try:
                asyncio.run(self._subscribe())
            except Exception as e:  # noqa: BLE001 - no websocket there, or a drop: the caller polls
                if not logged:
                    log.info(json.dumps({"event": "heads_unavailable", "url": self.url, "error": str(e)[:200]}))
                    logged = True
            self.live = False
            self._stopped.wait(RECONNECT_S)

    async def _subscribe(self) -> None:
        from web3 import AsyncWeb3, WebSocketProvider

        # One connection attempt: this thread's loop waits RECONNECT_S between tries and stops on
        # close(). web3's own retries (5, with backoff) outlived close() by ~25 s and logged a
        # traceback at each failed try into the caller's log.
        async with AsyncWeb3(WebSocketProvider(self.url, max_connection_retries=1)) as w3:
            await w3.eth.subscribe("newHeads")
            self.live = True
            async for msg in w3.socket.process_subscriptions():
                if self._stopped.is_set():
                    return
                h: Any = msg.get("result") or {}
                with self._cond:
                    self._head = (int(h["number"]), int(h["timestamp"]))
                    self._seen_at = time.monotonic()
                    self._cond.notify_all()


__all__ = ["HeadWatcher", "ws_url"]
