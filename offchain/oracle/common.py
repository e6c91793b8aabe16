"""Constants and small helpers the oracle service's parts share (`offchain/oracle/service.py`)."""

from __future__ import annotations

import logging

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
