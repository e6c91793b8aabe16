"""Token/USD price sources and the arithmetic of PriceFeed rounds (contracts/PriceFeed.vy).

An operator reads its own source, `--price-source`:

    fixed:1.25            a constant (tests, devnets)
    file:/path/price.txt  a number in a text file, re-read at every observation
    url:http://host/p     an HTTP GET answering JSON {"usd": 1.25}

and signs a PriceObservation {round_id, price (USD per token, 8 decimals), observed_at}.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

import requests

PRICE_DECIMALS = 8
_SCALE = Decimal(10) ** PRICE_DECIMALS
# PriceFeed stores answers in 128 bits.
MAX_ANSWER = 2**128 - 1


class PriceSourceError(RuntimeError):
    """The source could not give a usable price right now (sign nothing, retry later)."""


def to_answer(usd: Decimal | str | float) -> int:
    """USD per token as PriceFeed's integer answer (8 decimals), rounded half-even."""
    try:
        value = Decimal(str(usd)) if not isinstance(usd, Decimal) else usd
    except InvalidOperation as e:
        raise PriceSourceError(f"not a number: {usd!r}") from e
    if not value.is_finite() or value <= 0:
        raise PriceSourceError(f"price must be a positive number, got {usd!r}")
    answer = int((value * _SCALE).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    if answer <= 0 or answer > MAX_ANSWER:
        raise PriceSourceError(f"price {usd!r} is outside what the feed can hold (8 decimals, > 0)")
    return answer


def from_answer(answer: int) -> Decimal:
    return Decimal(int(answer)) / _SCALE


def parse_price_source(spec: str, timeout_s: float = 10.0) -> Callable[[], int]:
    """A callable returning the current price as an 8-decimal integer (PriceSourceError if the
    source fails). Raises ValueError for a malformed spec."""
    kind, sep, arg = spec.partition(":")
    if not sep or not arg:
        raise ValueError(f"price source {spec!r}: expected fixed:USD, file:PATH or url:http(s)://...")
    if kind == "fixed":
        answer = to_answer(arg)
        return lambda: answer
    if kind == "file":
        path = Path(arg)

        def read_file() -> int:
            try:
                return to_answer(path.read_text().strip())
            except OSError as e:
                raise PriceSourceError(f"cannot read {path}: {e}") from e

        return read_file
    if kind == "url":
        if not arg.startswith(("http://", "https://")):
            raise ValueError(f"price source {spec!r}: the url must start with http:// or https://")

        def read_url() -> int:
            try:
                r = requests.get(arg, timeout=timeout_s)
                r.raise_for_status()
                body = r.json()
            except (requests.RequestException, ValueError) as e:
                raise PriceSourceError(f"{arg}: {e}") from e
            if not isinstance(body, dict) or "usd" not in body or isinstance(body["usd"], bool):
                raise PriceSourceError(f'{arg}: expected JSON {{"usd": number}}, got {str(body)[:200]}')
            return to_answer(str(body["usd"]))

        return read_url
    raise ValueError(f"price source {spec!r}: unknown kind {kind!r} (fixed, file or url)")


def lower_median(prices: list[int]) -> int:
    """The contract's answer for a round: the lower median."""
    if not prices:
        raise ValueError("no prices")
    s = sorted(prices)
    return s[(len(s) - 1) // 2]


def deviation_bps(new: int, old: int) -> int:
    """|new - old| / old in basis points, rounded down (PriceFeed's deviation guard)."""
    if old <= 0:
        raise ValueError("old price must be positive")
    return abs(new - old) * 10_000 // old


def within_deviation(new: int, old: int, max_deviation_bps: int) -> bool:
    """Exactly PriceFeed's guard: |new - old| * 10_000 <= old * max_deviation_bps."""
    return abs(new - old) * 10_000 <= old * max_deviation_bps
