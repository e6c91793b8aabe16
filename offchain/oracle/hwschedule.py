"""When an oracle operator challenges each machine again, and which of its own outcomes still count.

The decision rule (`offchain/benchmark/decision.py`) gives PASS, FAIL or INCONCLUSIVE per
challenge. This module holds the operator's side of what happens next (used by
`offchain/oracle/service.py`):

- INCONCLUSIVE (timing between A and 2A, or the agent busy with a job or another operator's
  challenge): nothing is reported; this operator does not challenge the machine again before
  a back-off of `retry_s` (30 s), doubled after each inconclusive one up to `max_backoff_s`
  (10 min). A PASS or FAIL resets it.
- Own outcomes are remembered per (machine, attestation nonce) with the time they were reached:
  a co-signer reuses a decisive one for `reuse_s` (10 min), an inconclusive one only for
  `inconclusive_reuse_s` (30 s: enough to refuse a burst of sign requests without
  re-challenging the machine each time, short enough to try again on the leader's next round).
  So a stale FAIL never blocks a PASS forever, and a leader cannot make a peer challenge a
  machine more than about once per 30 s.

Thread-safe: the main loop (leader) and the HTTP handlers (co-signer) share one instance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_RETRY_S = 30.0
DEFAULT_MAX_BACKOFF_S = 600.0
DEFAULT_REUSE_S = 600.0
DEFAULT_INCONCLUSIVE_REUSE_S = 30.0
INCONCLUSIVE = "inconclusive"


@dataclass
class _Retry:
    next_at: float
    backoff_s: float


class HardwareSchedule:
    def __init__(
        self,
        *,
        retry_s: float = DEFAULT_RETRY_S,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        reuse_s: float = DEFAULT_REUSE_S,
        inconclusive_reuse_s: float = DEFAULT_INCONCLUSIVE_REUSE_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        if retry_s <= 0 or max_backoff_s < retry_s or reuse_s <= 0 or inconclusive_reuse_s < 0:
            raise ValueError("hwschedule: 0 < retry_s <= max_backoff_s, reuse_s > 0, inconclusive_reuse_s >= 0")
        self.retry_s, self.max_backoff_s = retry_s, max_backoff_s
        self.reuse_s, self.inconclusive_reuse_s = reuse_s, inconclusive_reuse_s
        self._clock = clock
        self._lock = threading.Lock()
        self._retry: dict[int, _Retry] = {}
        self._outcomes: dict[tuple[int, int], tuple[str, float]] = {}

    def due(self, machine_id: int) -> bool:
        """Whether this operator may challenge the machine now (not inside an inconclusive back-off)."""
        with self._lock:
            r = self._retry.get(machine_id)
            return r is None or self._clock() >= r.next_at

    def seconds_until_due(self, machine_id: int) -> float:
        with self._lock:
            r = self._retry.get(machine_id)
            return 0.0 if r is None else max(0.0, r.next_at - self._clock())

    def record(self, machine_id: int, nonce: int, outcome: str) -> float:
        """Remembers an own outcome; an inconclusive one starts or doubles the back-off (returned,
        in seconds; 0 for a decisive outcome, which clears it)."""
        now = self._clock()
        with self._lock:
            self._outcomes[(machine_id, nonce)] = (outcome, now)
            if outcome != INCONCLUSIVE:
                self._retry.pop(machine_id, None)
                return 0.0
            prev = self._retry.get(machine_id)
            backoff = self.retry_s if prev is None else min(self.max_backoff_s, prev.backoff_s * 2)
            self._retry[machine_id] = _Retry(now + backoff, backoff)
            return backoff

    def own(self, machine_id: int, nonce: int) -> str | None:
        """This operator's outcome for the machine at this nonce if it still counts, else None."""
        with self._lock:
            got = self._outcomes.get((machine_id, nonce))
        if got is None:
            return None
        outcome, at = got
        age = self._clock() - at
        limit = self.inconclusive_reuse_s if outcome == INCONCLUSIVE else self.reuse_s
        return outcome if age <= limit else None

    def forget_before(self, machine_id: int, nonce: int) -> None:
        """Drops outcomes of older nonces (they can never be signed again)."""
        with self._lock:
            for key in [k for k in self._outcomes if k[0] == machine_id and k[1] < nonce]:
                del self._outcomes[key]


__all__ = ["HardwareSchedule", "INCONCLUSIVE"]
