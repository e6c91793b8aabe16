# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Render-style settlement for `gpunet sim` (simulation only, never deployed)
@license AGPL-3.0-only
@notice The counterfactual the simulation compares the burn-and-mint design with: the same
        JobMarket prices a job in USD and escrows `quote(usd)` tokens exactly as
        contracts/Settlement.vy does, and burns the whole escrow at finalization, but the
        provider is paid nothing at settlement (Render pays node operators from a fixed
        emission pool per unit of work; the simulation plays that pool through Emissions).
        `settle` only counts the burn and logs Settled with minted = 0.
"""

from interfaces import IAggregatorV3

TOKEN: public(immutable(address))
PRICE_FEED: public(immutable(address))
MAX_AGE: public(immutable(uint256))
ADMIN: immutable(address)

job_market: public(address)
total_burned: public(uint256)

event Settled:
    provider: indexed(address)
    burned: uint256
    usd_net: uint256
    cap: uint256
    minted: uint256
    price: uint256


@deploy
def __init__(token: address, price_feed: address, max_age: uint256):
    TOKEN = token
    PRICE_FEED = price_feed
    MAX_AGE = max_age
    ADMIN = msg.sender


@external
def set_job_market(market: address):
    assert msg.sender == ADMIN, "settlement: caller is not the admin"
    assert self.job_market == empty(address), "settlement: job market already set"
    self.job_market = market


@external
@view
def quote(usd_value: uint256) -> uint256:
    # Settlement.quote: ceil(usd * 10^decimals / price) at a fresh price.
    assert usd_value > 0, "settlement: usd value is zero"
    answer: int256 = 0
    updated_at: uint256 = 0
    a: uint80 = 0
    b: uint256 = 0
    c: uint80 = 0
    a, answer, b, updated_at, c = staticcall IAggregatorV3(PRICE_FEED).latestRoundData()
    assert answer > 0, "settlement: no price"
    assert updated_at <= block.timestamp, "settlement: price from the future"
    assert block.timestamp - updated_at <= MAX_AGE, "settlement: stale price"
    price: uint256 = convert(answer, uint256)
    scale: uint256 = 10 ** convert(staticcall IAggregatorV3(PRICE_FEED).decimals(), uint256)
    return (usd_value * scale + price - 1) // price


@external
def settle(provider: address, burned: uint256, usd_net: uint256, cap: uint256) -> uint256:
    assert msg.sender == self.job_market, "settlement: caller is not the job market"
    self.total_burned += burned
    log Settled(provider=provider, burned=burned, usd_net=usd_net, cap=cap, minted=0, price=0)
    return 0
