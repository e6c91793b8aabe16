"""Posting a PriceFeed round from operator keys held in one process.

The oracle service gathers observations from its peers over HTTP (offchain/oracle/service.py);
this helper is for places that hold every signer's key themselves: the unit tests' deployment,
the benchmark and the simulation. It signs the same EIP-712 PriceObservation the service signs
(offchain.chain.reports.price_typed_data) and submits through the real `submit_round`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offchain.chain import reports as R

# PriceFeed answers are USD per token with 8 decimals.
PRICE_DECIMALS = 8
ONE_USD = 10**PRICE_DECIMALS


def post_price(
    feed: Any, chain_id: int, signers: list[Any], price: int | Sequence[int], observed_at: int, sender: Any
) -> Any:
    """Submits round `latest_round + 1` of `feed` at `price` (8 decimals; or each signer's own
    observation, in the order of `signers`), one observation per signer (ape accounts with
    `.private_key`, OracleHub operators), observed at `observed_at` (a block time not after the
    submitting block). The feed refuses a round less than its `min_round_interval` after the
    last one and observations spread wider than `max_spread_bps`: callers on a dev chain wait
    the interval out first (tests/conftest.py `wait_round_interval`). Returns the receipt."""
    prices = list(price) if isinstance(price, Sequence) else [price] * len(signers)
    if min(prices, default=1) <= 0:
        raise ValueError("price must be positive")
    round_id = feed.latest_round() + 1
    ordered = sorted(zip(signers, prices, strict=True), key=lambda sp: int(sp[0].address, 16))
    observations, signatures = [], []
    for signer, p in ordered:
        obs = {"round_id": round_id, "price": p, "observed_at": observed_at}
        typed = R.price_typed_data(feed.address, chain_id, obs)
        observations.append(R.report_tuple(R.PRICE_FIELDS, obs))
        signatures.append(R.sign_report(signer.private_key, typed))
    return feed.submit_round(round_id, observations, signatures, sender=sender)
