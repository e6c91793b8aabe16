"""The oracle's chain lock (offchain/oracle/common.py `FairRLock`): re-entrant, and granted in
arrival order, so a thread that keeps re-taking it cannot starve a waiter (the beacon duty's
reveals missed their window under load with `threading.RLock`)."""

from __future__ import annotations

import threading
import time

import pytest

from offchain.oracle.common import FairRLock


def _tickets_taken(lock: FairRLock, n: int) -> None:
    """Waits (no timing assumption beyond a generous bound) until `n` tickets were handed out."""
    deadline = time.monotonic() + 30
    while lock._next_ticket < n:
        assert time.monotonic() < deadline, "a thread never asked for the lock"
        time.sleep(0.001)


def test_reentrant_and_only_the_holder_releases():
    lock = FairRLock()
    with lock, lock:
        pass
    lock.acquire()
    errors = []

    def other():
        try:
            lock.release()
        except RuntimeError as e:
            errors.append(str(e))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    lock.release()
    assert errors and "does not hold it" in errors[0]
    with pytest.raises(RuntimeError):
        lock.release()


def test_a_waiter_is_served_before_a_holder_that_comes_back():
    """The main thread releases and re-takes the lock in a tight loop (as the oracle's cycle does
    around each chain read); a second thread asking once gets it at the next release."""
    lock = FairRLock()
    order: list[str] = []
    asked = threading.Event()

    def waiter():
        asked.set()
        with lock:
            order.append("waiter")

    lock.acquire()
    t = threading.Thread(target=waiter)
    t.start()
    asked.wait()
    _tickets_taken(lock, 2)  # the holder's and the waiter's
    lock.release()
    for _ in range(50):
        with lock:
            order.append("loop")
    t.join(timeout=5)
    assert order[0] == "waiter", order[:5]


def test_served_in_arrival_order():
    lock = FairRLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
        t.start()
        threads.append(t)
        _tickets_taken(lock, i + 2)  # each takes its ticket before the next starts
    lock.release()
    for t in threads:
        t.join(timeout=5)
    assert order == [0, 1, 2, 3, 4]
