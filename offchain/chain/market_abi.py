"""JobMarket as callers see it: its own ABI plus JobMarketExt's, at the market's address.

JobMarket keeps the job's hot path (create, accept, submit, finalize, claim) and delegatecalls
JobMarketExt for every other selector (cancel, expire, dispute, post_verdict, parameters, pause,
roles, views), so those functions and the events they log belong to JobMarket's address but not
to JobMarket's compiled ABI. `market_at` gives one ape contract with both, so callers (and event
decoding) never need to know which half a function lives in. ape has no ABI-merging helper;
this is the dozen lines it takes.
"""

from __future__ import annotations

from typing import Any


def _key(entry: Any) -> tuple:
    # Functions and events by name and input types; one entry per signature.
    return (entry.type, getattr(entry, "name", ""), tuple(str(i.type) for i in getattr(entry, "inputs", []) or []))


def merged_contract_type(project: Any) -> Any:
    """JobMarket's contract type with JobMarketExt's functions and events added (JobMarket's win)."""
    market = project.JobMarket.contract_type
    ext = project.JobMarketExt.contract_type
    seen = {_key(e) for e in market.abi}
    abi = list(market.abi) + [e for e in ext.abi if e.type in ("function", "event") and _key(e) not in seen]
    # Rebuilt, not copied: a copy would keep the original's cached method and event tables.
    data = market.model_dump(by_alias=True, mode="json")
    data["abi"] = [e.model_dump(by_alias=True, mode="json") for e in abi]
    return type(market).model_validate(data)


def market_at(project: Any, address: Any, txn_hash: Any = None) -> Any:
    """The JobMarket at `address` with every function and event of both halves."""
    from ape.contracts import ContractInstance

    return ContractInstance(address, merged_contract_type(project), txn_hash=txn_hash)
