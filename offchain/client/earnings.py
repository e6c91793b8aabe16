"""A provider's earnings per Emissions epoch (`gpunet provider earnings`). Read-only, over the
SDK's handles.

Per epoch (GENESIS + k * EPOCH_SECONDS, by the block time of each log) and over the period:
- job income: tokens Settlement minted the provider (`Settled.minted`), worth `Settled.usd_net`,
  counted at its claims (`JobMarket.claim`; credit not claimed yet is in `gpunet provider status`);
- emissions: tokens claimed from Emissions (`Claimed.amount`);
- slashed: stake taken by ProviderRegistry (`Slashed.amount`), by reason;
- fees: the protocol fee of its finalized jobs (`JobFinalized.fee`; already kept out of the
  job income, shown for information);
- net = job income + emissions - slashed.
USD: job income at its settlement value, fees at their jobs' USD value, emissions, slashes and
net at the current token/USD price (`Settlement.price`), or None where no price is known.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from eth_utils import keccak

from offchain.chain.events import logs
from offchain.client.sdk import ClientError, token_price
from offchain.client.timeline import BlockTimes, now

SLASH_REASONS = {keccak(text=n): n for n in ("NO_SHOW", "INVALID_RESULT", "HARDWARE_MISREPORT")}
# Without an Emissions contract, periods are UTC days.
DAY = 86400


def reason_name(reason: Any) -> str:
    raw = bytes(reason)
    return SLASH_REASONS.get(raw, "0x" + raw.hex())


@dataclass
class Bucket:
    """One epoch's (or the whole period's) amounts: tokens as wei, USD with 18 decimals."""

    epoch: int | None
    start: int | None
    jobs: int = 0
    job_income: int = 0
    job_income_usd: int = 0
    emissions: int = 0
    slashed: int = 0
    slashes: dict[str, int] = field(default_factory=dict)
    fees: int = 0
    fees_usd: int = 0

    @property
    def net(self) -> int:
        return self.job_income + self.emissions - self.slashed

    def as_dict(self, price: tuple[int, int] | None) -> dict:
        d = asdict(self)
        d["net"] = self.net
        for k in ("emissions", "slashed"):
            d[f"{k}_usd"] = at_price(getattr(self, k), price)
        d["net_usd"] = None if price is None else self.job_income_usd + d["emissions_usd"] - d["slashed_usd"]
        return d


def at_price(wei: int, price: tuple[int, int] | None) -> int | None:
    """USD (18 decimals) of `wei` tokens at `price` = (answer, feed decimals)."""
    return None if price is None else wei * price[0] // 10 ** price[1]


def current_price(h: Any) -> tuple[int, int] | None:
    """(answer, decimals) of the token/USD price jobs are funded at now, or None if unknown."""
    if getattr(h, "settlement", None) is None:
        return None
    try:
        return token_price(h), int(h.settlement.feed_decimals())
    except ClientError:
        return None


def epoch_clock(h: Any) -> tuple[int, int]:
    """(GENESIS, EPOCH_SECONDS) of Emissions; UTC days without one."""
    em = getattr(h, "emissions", None)
    if em is None:
        return 0, DAY
    return int(em.GENESIS()), int(em.EPOCH_SECONDS())


def period_start(h: Any, epochs: int | None, since: int | None) -> int | None:
    """The first unix time counted: the start of the last `epochs` epochs (the current one
    included), or `since`, or None (everything)."""
    if since is not None:
        return since
    if epochs is None:
        return None
    genesis, length = epoch_clock(h)
    current = (now(h) - genesis) // length
    return genesis + max(current - epochs + 1, 0) * length


def _provider_logs(h: Any, provider: str) -> list[tuple[str, Any]]:
    found = [("settled", lg) for lg in logs(h, h.settlement.Settled, provider=provider)] if h.settlement else []
    found += [("fee", lg) for lg in logs(h, h.market.JobFinalized, provider=provider)]
    found += [("slashed", lg) for lg in logs(h, h.registry.Slashed, provider=provider)]
    if getattr(h, "emissions", None) is not None:
        found += [("claimed", lg) for lg in logs(h, h.emissions.Claimed, provider=provider)]
    return found


def _add(b: Bucket, kind: str, a: dict) -> None:
    if kind == "settled":
        b.job_income += int(a["minted"])
        b.job_income_usd += int(a["usd_net"])
    elif kind == "fee":
        b.jobs += 1
        b.fees += int(a["fee"])
        b.fees_usd += int(a["usd_value"]) * int(a["fee"]) // int(a["burned"]) if int(a["burned"]) else 0
    elif kind == "slashed":
        reason = reason_name(a["reason"])
        b.slashed += int(a["amount"])
        b.slashes[reason] = b.slashes.get(reason, 0) + int(a["amount"])
    elif kind == "claimed":
        b.emissions += int(a["amount"])


def earnings(h: Any, provider: str, *, epochs: int | None = None, since: int | None = None) -> dict:
    """{"provider", "since", "until", "genesis", "epoch_seconds", "price", "epochs": [...], "total"}."""
    genesis, length = epoch_clock(h)
    start = period_start(h, epochs, since)
    times = BlockTimes(h)
    buckets: dict[int, Bucket] = {}
    total = Bucket(None, start)
    for kind, lg in _provider_logs(h, provider):
        t = times[lg.block_number]
        if start is not None and t < start:
            continue
        k = (t - genesis) // length
        b = buckets.setdefault(k, Bucket(k, genesis + k * length))
        a = dict(lg.event_arguments)
        _add(b, kind, a)
        _add(total, kind, a)
    price = current_price(h)
    return {
        "provider": provider, "since": start, "until": now(h), "genesis": genesis, "epoch_seconds": length,
        "emissions_epochs": getattr(h, "emissions", None) is not None,
        "price": None if price is None else {"answer": price[0], "decimals": price[1]},
        "epochs": [buckets[k].as_dict(price) for k in sorted(buckets)], "total": total.as_dict(price),
    }  # fmt: skip


__all__ = ["SLASH_REASONS", "earnings", "reason_name"]
