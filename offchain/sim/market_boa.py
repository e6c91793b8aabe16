"""JobMarket under titanoboa (the simulation and the stateful fuzz): both halves at one address.

JobMarket delegatecalls JobMarketExt for every selector it does not have (cancel, expire,
dispute, post_verdict, parameters, pause, roles, views); offchain/chain/market_abi.py merges
the two ABIs for ape. Here `deploy_market` returns a `Market` whose attributes are JobMarket's
functions, then JobMarketExt's called at JobMarket's address, and whose `get_logs()` decodes
the events of both (boa decodes a log with the contract registered at its address: JobMarket,
given the extension's events too).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


class Market:
    """JobMarket (a boa VyperContract) plus JobMarketExt's functions at the same address."""

    _OWN = ("_market", "_ext", "_last")

    def __init__(self, market: Any, ext_view: Any):
        self._market = market
        self._ext = ext_view
        self._last = market  # whose call `get_logs()` reads

    def __setattr__(self, name: str, value: Any) -> None:
        # Settings (e.g. boa's `_storage` dump) apply to both halves.
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self._market, name, value)
            setattr(self._ext, name, value)

    @property
    def address(self) -> Any:
        return self._market.address

    @property
    def contract(self) -> Any:
        """JobMarket's own VyperContract (storage introspection, source-level helpers)."""
        return self._market

    def __getattr__(self, name: str) -> Any:
        # Only reached for names this class does not define: a function or attribute of a half.
        for half in (self._market, self._ext):
            if name in half.__dict__ or hasattr(type(half), name):
                attr = getattr(half, name)
                if callable(attr) and not isinstance(attr, type):
                    return self._tracked(half, attr)
                return attr
        raise AttributeError(f"JobMarket has no {name!r}")

    def _tracked(self, half: Any, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self._last = half
            return fn(*args, **kwargs)

        return call

    def get_logs(self, *args: Any, **kwargs: Any) -> list:
        return self._last.get_logs(*args, **kwargs)


def deploy_market(
    contracts: Path, token: str, registry: str, settlement: str, params_check: str, beacon: str, params: tuple
) -> Market:
    """Deploys JobMarketExt and JobMarket as offchain/chain/deploy.py does."""
    import boa

    ext = boa.load(str(contracts / "JobMarketExt.vy"), token, registry, settlement, params_check, beacon)
    market = boa.load(
        str(contracts / "JobMarket.vy"), token, registry, settlement, params_check, beacon, ext.address, params
    )
    with warnings.catch_warnings():
        # `at` warns that the market's code is not the extension's: it is not, by design.
        warnings.simplefilter("ignore", UserWarning)
        ext_view = boa.load_partial(str(contracts / "JobMarketExt.vy")).at(market.address)
    # `at` registered the extension's view at the market's address: the market decodes its logs,
    # with the extension's events added (cancel, expire, disputes, verdicts, pause, roles).
    merged = {**ext_view.event_abi_for, **market.event_abi_for}
    market.__dict__["event_abi_for"] = merged
    ext_view.__dict__["event_abi_for"] = merged
    boa.env.register_contract(market.address, market)
    return Market(market, ext_view)
