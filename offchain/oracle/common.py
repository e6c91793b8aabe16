"""Constants and small helpers the oracle service's parts share (`offchain/oracle/service.py`)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("gpunet.oracle")

OUTCOME_CODES = {"pass": 0, "fail_misreport": 1, "fail_unreachable": 2}
NO_EXPIRY = 2**32 - 1
CPU_CLASS_ID = 1
# Observations are stamped max(head block time, wall clock - this): never after the block that
# includes them when clocks agree within it, and fresh even when a dev chain idles.
PRICE_CLOCK_SLACK_S = 30
# A gathered observation is submitted only if it stays acceptable this long (time to be mined).
PRICE_SUBMIT_MARGIN_S = 15
# How often a non-due round re-reads the source to look for a large move.
PRICE_CHECK_S = 10.0
# Highest round id above the chain's latest a peer observes for (PriceFeed.MAX_ROUND_GAP).
PRICE_MAX_ROUNDS_AHEAD = 2**32


def _hex32(value: bytes | str) -> str:
    """A bytes32 (bytes or 0x-hex) as 64 lowercase hex digits; ValueError if it is not 32 bytes."""
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw.hex()


class CircuitBreaker(RuntimeError):
    """An invariant the service relies on broke: stop rather than sign anything."""


class FairRLock:
    """A re-entrant lock granted in arrival order (FIFO), for the service's chain lock.

    `threading.RLock` is not fair: a thread that releases it and takes it again at once, as the
    main loop does around each of a cycle's many chain reads, usually wins it back, and under
    load the beacon duty's thread then waited past its 20 s reveal window (a `make load` run
    lost two rounds that way: every job of them was audited). Here each waiter takes a ticket
    and is served in turn, so a waiter waits for the holders ahead of it, never for a holder
    that keeps coming back. Written here because the standard library has no fair lock and
    none of the locked dependencies provides one.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            ticket = self._next_ticket
            self._next_ticket += 1
            while self._serving != ticket or self._owner is not None:
                self._cond.wait()
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("FairRLock released by a thread that does not hold it")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._serving += 1
                self._cond.notify_all()

    def __enter__(self) -> FairRLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
