"""USD and token amounts for the client: parsing, formatting and on-chain quotes (Settlement).

Both amounts carry 18 decimals. A quote needs a fresh PriceFeed answer; without one the
client raises `NoPrice`, which says how to get one.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from offchain.constants import MAX_BPS


class ClientError(RuntimeError):
    """Something the user can fix; the message says what."""


class NoPrice(ClientError):
    """There is no fresh token/USD price on-chain, so no job can be funded now."""


# USD amounts (offers, max price, a job's value) and token amounts both have 18 decimals.
USD = 10**18
TOKEN = 10**18
# Slippage allowed between the client's quote and the funding transaction, in basis points.
DEFAULT_MAX_SLIPPAGE_BPS = 100
# Revert reasons of Settlement.quote / PriceFeed.latestRoundData that mean "no usable price".
_NO_PRICE_REASONS = ("no price", "stale price", "price from the future")
NO_PRICE_HELP = (
    "the oracle operators post PriceFeed rounds (`gpunet oracle run --price-source ...`); "
    "see `gpunet price show`, and try again later"
)


def _decimal_units(text: str | int | float | Decimal, what: str) -> int:
    try:
        d = Decimal(str(text).strip().lstrip("$"))
    except InvalidOperation:
        raise ClientError(f"{what} {text!r} is not a number (a decimal, e.g. 0.002)") from None
    if not d.is_finite() or d <= 0:
        raise ClientError(f"{what} must be a positive number, got {text!r}")
    scaled = d * 10**18
    if scaled != scaled.to_integral_value():
        raise ClientError(f"{what} {text!r} has more than 18 decimals")
    return int(scaled)


def parse_usd(text: str | int | float | Decimal, what: str = "USD amount") -> int:
    """A decimal USD string ("0.002", "$1.5") as an 18-decimal integer."""
    return _decimal_units(text, what)


def parse_tokens(text: str | int | float | Decimal, what: str = "token amount") -> int:
    """A decimal token amount ("12.5") in wei (18 decimals)."""
    return _decimal_units(text, what)


def _fmt18(v: int, min_places: int) -> str:
    d = (Decimal(int(v)) / 10**18).normalize()
    text = f"{d:f}"
    whole, _, frac = text.partition(".")
    frac = frac.ljust(min_places, "0")
    return f"{int(whole):,}" + (f".{frac}" if frac else "")


def fmt_usd(v: int) -> str:
    """An 18-decimal USD amount, exactly, e.g. "$0.001" or "$1,250.00"."""
    return "$" + _fmt18(v, 2)


def tokens(wei: int) -> str:
    return f"{wei / TOKEN:,.6f}"


def fmt_price(usd_per_unit: int) -> str:
    return f"{fmt_usd(usd_per_unit)}/unit ({fmt_usd(usd_per_unit * 1000)} per 1000 units)"


def revert_reason(e: Exception) -> str:
    """The contract's revert string (the first line), not ape's wrapper text."""
    msg = str(getattr(e, "revert_message", None) or getattr(e, "message", None) or e).strip()
    return msg.splitlines()[0] if msg else type(e).__name__


def _no_price(reason: str) -> NoPrice:
    return NoPrice(f"no fresh token/USD price on-chain ({reason}): {NO_PRICE_HELP}")


def _settlement(h: Any) -> Any:
    s = getattr(h, "settlement", None)
    if s is None:
        raise ClientError(
            "this deployment has no Settlement contract (jobs are priced in USD through it): "
            "redeploy with `ape run deploy --redeploy`"
        )
    return s


def token_quote(h: Any, usd_value: int) -> int:
    """Tokens (wei) a job worth `usd_value` (18 decimals) escrows now: `Settlement.quote`.
    Raises `NoPrice` when the chain has no fresh token/USD price."""
    try:
        # skip_trace: a revert is expected when there is no price; ape would print its call trace.
        return int(_settlement(h).quote(usd_value, skip_trace=True))
    except ClientError:
        raise
    except Exception as e:  # noqa: BLE001 - a revert of the view call
        reason = revert_reason(e)
        if any(r in reason for r in _NO_PRICE_REASONS):
            raise _no_price(reason) from None
        raise ClientError(f"Settlement.quote({usd_value}) failed: {reason}") from None


def token_price(h: Any) -> int:
    """The token/USD price jobs are funded at now, in the feed's decimals (`Settlement.price`)."""
    try:
        return int(_settlement(h).price(skip_trace=True))
    except ClientError:
        raise
    except Exception as e:  # noqa: BLE001
        reason = revert_reason(e)
        if any(r in reason for r in _NO_PRICE_REASONS):
            raise _no_price(reason) from None
        raise ClientError(f"Settlement.price() failed: {reason}") from None


def job_quote(h: Any, usd_per_unit: int, units: int) -> int:
    """Tokens (wei) JobMarket escrows for `units` compute units at `usd_per_unit` now: the tokens
    of one unit (`Settlement.quote`, rounded up) times the units, as `create_job` computes them."""
    return token_quote(h, usd_per_unit) * units


def slippage_bound(quote: int, max_slippage_bps: int) -> int:
    """The most tokens to escrow for a quote of `quote`: quote x (1 + slippage), rounded down."""
    if not 0 <= max_slippage_bps <= MAX_BPS:
        raise ClientError(f"--max-slippage-bps must be within 0..{MAX_BPS}, got {max_slippage_bps}")
    return quote * (MAX_BPS + max_slippage_bps) // MAX_BPS
