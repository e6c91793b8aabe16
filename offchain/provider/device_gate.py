"""Who may use the provider's device right now: one hardware challenge or one job at a time.

A challenge never queues (the oracle times it: waiting behind another operator's challenge or a
job would make an honest device look slow); it is refused at once with `DeviceBusy`, which the
agent answers as HTTP 429 and the oracle retries untimed, reading a long busy spell as
INCONCLUSIVE, never as a failure. A job waits for the device. A challenge refused because of a
job is remembered: before the next job, `job()` waits (up to `gap_s`) until a challenge has run,
so the oracle's next try finds the device free. Running jobs are never interrupted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator

log = logging.getLogger("gpunet.provider.agent")


class DeviceBusy(Exception):
    """The device is held by `holder` ("challenge" or "job")."""

    def __init__(self, holder: str):
        super().__init__(f"device busy with a {holder}")
        self.holder = holder


class DeviceGate:
    def __init__(self, gap_s: float):
        if gap_s < 0:
            raise ValueError("device gate: gap_s must be >= 0")
        self.gap_s = gap_s
        self._lock = threading.Lock()
        self._holder: str | None = None
        # When a challenge was last refused because of a job, and when a challenge last ended.
        self._cond = threading.Condition()
        self._wanted_at: float | None = None
        self._challenged_at = 0.0

    @contextlib.contextmanager
    def challenge(self) -> Iterator[None]:
        """Holds the device for one challenge, or raises DeviceBusy at once."""
        if not self._lock.acquire(blocking=False):
            holder = self._holder or "challenge"
            if holder == "job":
                with self._cond:
                    self._wanted_at = time.monotonic()
            raise DeviceBusy(holder)
        self._holder = "challenge"
        try:
            yield
        finally:
            self._holder = None
            self._lock.release()
            with self._cond:
                self._challenged_at = time.monotonic()
                self._cond.notify_all()

    @contextlib.contextmanager
    def job(self) -> Iterator[None]:
        """Holds the device for one job, after leaving a gap for a turned-away challenge."""
        self.wait_for_gap()
        with self._lock:
            self._holder = "job"
            try:
                yield
            finally:
                self._holder = None

    def challenge_wanted(self) -> bool:
        """A challenge was refused because of a job and none has run since (within the gap window)."""
        with self._cond:
            w = self._wanted_at
            return w is not None and self._challenged_at < w and time.monotonic() - w < self.gap_s

    def wait_for_gap(self, stop: threading.Event | None = None) -> float:
        """If a challenge was turned away for a job, wait until one has run (or `gap_s` passed
        since it was turned away). Returns the seconds waited."""
        t0 = time.monotonic()
        with self._cond:
            while self._wanted_at is not None and self._challenged_at < self._wanted_at:
                left = self._wanted_at + self.gap_s - time.monotonic()
                if left <= 0 or (stop is not None and stop.is_set()):
                    break
                self._cond.wait(min(left, 0.5))
            self._wanted_at = None
        waited = time.monotonic() - t0
        if waited > 0.01:
            log.info(json.dumps({"event": "challenge_gap", "waited_s": round(waited, 3)}))
        return waited


__all__ = ["DeviceBusy", "DeviceGate"]
