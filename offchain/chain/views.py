"""Several contract views in one JSON-RPC batch request.

`read_many(provider, [(registry.reputation, (p,)), (registry.free_stake, (p,))])` returns
what `registry.reputation(p)` and `registry.free_stake(p)` would, from one HTTP round trip:
the calldata is encoded and the answers decoded by ape's ABI codec (as for an ape call), and
the calls go out together through web3's `batch_requests`. Each call still counts as one
JSON-RPC call on the node; what the batch saves is the round trips and their per-request cost
in the caller (one HTTP request, one JSON parse).

Why not a Multicall contract: it would be one more contract to deploy and trust on every
chain, and anvil has none by default. A node or provider without batch requests (ape's
in-process test node) gets the calls one by one; so does a batch with a revert in it, so that
the revert is raised by ape with its reason, exactly as a single call's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Call = tuple[Any, tuple]  # (an ape view handler such as `registry.reputation`, its arguments)


def _batched(provider: Any, calls: Sequence[Call]) -> list[Any] | None:
    from ape.contracts.base import ContractCall

    w3 = provider.web3
    if any(len(h.abis) != 1 for h, _ in calls):  # an overloaded name: ape picks the ABI per call
        return None
    try:
        with w3.batch_requests() as batch:
            for h, args in calls:
                batch.add(w3.eth.call({"to": h.contract.address, "data": bytes(h.encode_input(*args))}, "latest"))
            raw = batch.execute()
    except Exception:  # noqa: BLE001 - no batch support, or an error inside: one by one
        return None
    if len(raw) != len(calls) or any(not isinstance(r, bytes | bytearray) for r in raw):
        return None
    return [
        ContractCall(h.abis[0], h.contract.address)._decode_returndata(r) for (h, _), r in zip(calls, raw, strict=True)
    ]


def read_many(provider: Any, calls: Sequence[Call]) -> list[Any]:
    """The answers of `calls`, in order (see the module docstring)."""
    if not calls:
        return []
    if len(calls) > 1:
        out = _batched(provider, calls)
        if out is not None:
            return out
    return [h(*args) for h, args in calls]


__all__ = ["read_many"]
