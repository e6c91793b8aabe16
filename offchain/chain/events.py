"""Reading a deployment's event logs with ape, from its deployment block to the head."""

from __future__ import annotations

from typing import Any


def start_block(h: Any) -> int:
    """The block the deployment was recorded at (0 when the record has none)."""
    return int((getattr(h, "record", None) or {}).get("block") or 0)


def logs(h: Any, event: Any, **topics: Any) -> list[Any]:
    """Every log of `event` (e.g. h.market.JobCreated) matching indexed `topics`, oldest first.

    The stop block is explicit: ape's `range(start, None)` means `range(0, start)`, like
    Python's `range(stop)`.
    """
    stop = int(h.chain.blocks.height) + 1
    return list(event.range(start_block(h), stop, search_topics=topics or None))
