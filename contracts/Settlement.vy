# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Burn-and-mint settlement of finalized jobs
@custom:contract-name Settlement
@license AGPL-3.0-only
@notice Prices jobs in USD and pays providers by minting (docs/ECONOMICS.md, "Settlement").
        - `quote(usd)`: the tokens a job of `usd` (18 decimals) escrows at the current price,
          rounded up; reverts on a missing, non-positive, future or stale price, so no job
          is funded on an old answer. JobMarket calls it in `create_job`. The price is the
          answer the feed pushed with its last round (`on_price`) while that is at most
          `max_age` old, else the feed's own (`latestRoundData`).
        - `settle(provider, burned, usd_net, cap)`: called by JobMarket's `claim(provider)`,
          which has just burned the whole escrow (`burned`, fee included) of the provider's
          jobs finalized since its last claim. Mints the provider `min(usd_net / price_now,
          cap)`, where `usd_net` is the jobs' USD value minus the fee and `cap` their escrow
          minus the fee in tokens.
          The provider's income is fixed in USD at funding, except that it never exceeds what
          the user burned minus the fee: without the cap a provider paying itself could create
          a job, wait, and finalize only if the token fell by more than the fee in between (a
          free put option on the token); with it, a wash trade always burns at least the fee.
          If the price is missing or stale at settlement, the provider gets the cap (what an
          escrow-paid market would have paid): settlement never reverts on the price, so a
          dead feed cannot strand a finished job or its collateral.
        The price is read through Chainlink's AggregatorV3Interface (`latestRoundData`), so
        PriceFeed can be replaced by a real Chainlink feed by configuration (`set_price_feed`).
        `total_burned` counts settlement burns only (escrow burned at claims). Emissions tapers
        on JobMarket's `total_burned` instead, the same escrow counted when the jobs are
        finalized, so that the taper does not depend on when providers claim.
@custom:security Needs ComputeToken's minter role. Only JobMarket (set once) may call
        `settle`, from a claim; it mints nothing for a job that JobMarket did not finalize. Roles
        (snekmate access_control; admin = governance timelock outside local networks):
        DEFAULT_ADMIN_ROLE sets the job market once and the price feed and its `max_age`.
        Only the price feed it reads may push an answer (`on_price`).
        All arithmetic is checked (Vyper reverts on overflow).
"""

from interfaces import IAggregatorV3

from snekmate.auth import access_control
# Governance: the job market (once) and the price feed.
initializes: access_control

exports: (
    access_control.supportsInterface,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
    access_control.DEFAULT_ADMIN_ROLE,
)

interface IMintableToken:
    def mint(owner: address, amount: uint256): nonpayable

# Bounds on `max_age`: at least one heartbeat of a slow feed, at most a week.
MIN_PRICE_AGE: public(constant(uint256)) = 60
MAX_PRICE_AGE: public(constant(uint256)) = 7 * 86400
# A feed with more decimals than this would overflow nothing but makes no sense for USD.
MAX_FEED_DECIMALS: public(constant(uint8)) = 18

TOKEN: public(immutable(address))

# The JobMarket allowed to call `settle` (set once).
job_market: public(address)
# The price feed (AggregatorV3Interface), its maximum answer age and its decimals, packed in
# one slot so a quote or a settlement reads one word of configuration.
_feed_config: uint256
# The latest answer the feed pushed (`on_price`, from PriceFeed as it accepts each round): answer
# (bits 0-127), its updatedAt (128-191), and a copy of `max_age` (192-223) and the feed's
# decimals (224-231), so that a quote reads one word and makes no call. Only a cache: a quote
# reads the feed itself when nothing fresh was pushed (a feed that does not push, such as a
# Chainlink one, costs what it did). Cleared by `set_price_feed`.
_pushed: uint256
# Escrow burned by settlements (fees included), at the providers' claims. (Emissions tapers on
# JobMarket.total_burned, the same escrow counted at finalization.)
total_burned: public(uint256)

_ADDRESS_MASK: constant(uint256) = 2**160 - 1
_AGE_SHIFT: constant(uint256) = 160
_DECIMALS_SHIFT: constant(uint256) = 224
_MASK_32: constant(uint256) = 2**32 - 1
_MASK_64: constant(uint256) = 2**64 - 1
_MASK_128: constant(uint256) = 2**128 - 1
_PUSHED_AT_SHIFT: constant(uint256) = 128
_PUSHED_AGE_SHIFT: constant(uint256) = 192
_PUSHED_DECIMALS_SHIFT: constant(uint256) = 224

event Settled:
    provider: indexed(address)
    # Escrow JobMarket burned for the run (fees included).
    burned: uint256
    # The run's USD value minus fees (18 decimals) and its escrow minus fees (tokens).
    usd_net: uint256
    cap: uint256
    minted: uint256
    # The price used (feed decimals); 0 when it was missing or stale and the cap was paid.
    price: uint256

event JobMarketSet:
    job_market: indexed(address)

event PriceFeedSet:
    feed: indexed(address)
    max_age: uint256
    decimals: uint8


@deploy
def __init__(token: address, price_feed: address, max_age: uint256):
    assert token != empty(address), "settlement: token is the zero address"
    access_control.__init__()
    TOKEN = token
    self._set_price_feed(price_feed, max_age)


@external
def set_job_market(market: address):
    """
    @notice Once: the JobMarket whose finalized jobs this contract settles.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert self.job_market == empty(address), "settlement: job market already set"
    assert market != empty(address), "settlement: job market is the zero address"
    self.job_market = market
    log JobMarketSet(job_market=market)


@external
def set_price_feed(feed: address, max_age: uint256):
    """
    @notice Points settlement at another AggregatorV3Interface feed (e.g. a Chainlink one).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._set_price_feed(feed, max_age)


@external
@view
def price_feed() -> address:
    return convert(self._feed_config & _ADDRESS_MASK, address)


@external
@view
def max_age() -> uint256:
    return (self._feed_config >> _AGE_SHIFT) & _MASK_32


@external
@view
def feed_decimals() -> uint8:
    return convert(self._feed_config >> _DECIMALS_SHIFT, uint8)


@external
def on_price(answer: uint256, updated_at: uint256):
    """
    @notice The price feed only: its answer as it accepts a round, kept for `quote` (see
            `_pushed`). Anything else (another address, a zero or future answer) is refused.
    """
    assert msg.sender == convert(self._feed_config & _ADDRESS_MASK, address), "settlement: caller is not the price feed"
    assert answer > 0 and answer <= _MASK_128, "settlement: no price"
    assert updated_at <= block.timestamp, "settlement: price from the future"
    self._pushed = (self._pushed >> _PUSHED_AGE_SHIFT) << _PUSHED_AGE_SHIFT | updated_at << _PUSHED_AT_SHIFT | answer


@external
@view
def price() -> uint256:
    """
    @notice The answer `quote` uses now (feed decimals); reverts like `quote`. `settle` reads
            the feed itself (the same answer unless a push was lost, both at most `max_age` old).
    """
    return self._quote_price()[0]


@external
@view
def quote(usd_value: uint256) -> uint256:
    """
    @notice Tokens (18 decimals) escrowed for a job worth `usd_value` (18 decimals) at the
            current price, rounded up (the protocol's side).
    """
    assert usd_value > 0, "settlement: usd value is zero"
    price: uint256 = 0
    scale: uint256 = 0
    price, scale = self._quote_price()
    return (usd_value * scale + price - 1) // price


@external
def settle(provider: address, burned: uint256, usd_net: uint256, cap: uint256) -> uint256:
    """
    @notice JobMarket only: mints the provider for a run of its jobs that JobMarket just
            finalized and whose escrow (`burned`) it just burned.
    @return The tokens minted.
    """
    assert msg.sender == self.job_market, "settlement: caller is not the job market"
    assert cap <= burned, "settlement: cap above burned"
    price: uint256 = 0
    ok: bool = False
    price, ok = self._read_price()
    minted: uint256 = cap
    scale: uint256 = 10 ** (self._feed_config >> _DECIMALS_SHIFT)
    # A USD value so large that `usd_net * scale` would overflow (possible only with a foreign
    # feed and an absurd job) also pays the cap: settle must never revert.
    if ok and usd_net <= max_value(uint256) // scale:
        minted = min(usd_net * scale // price, cap)
    else:
        price = 0
    self.total_burned += burned
    if minted > 0:
        extcall IMintableToken(TOKEN).mint(provider, minted)
    log Settled(provider=provider, burned=burned, usd_net=usd_net, cap=cap, minted=minted, price=price)
    return minted


@internal
@view
def _quote_price() -> (uint256, uint256):
    # (answer, 10**decimals) for a quote: the pushed answer while it is at most `max_age` old (one
    # storage read, no call), else the feed's own, with `_fresh_price`'s checks and reasons.
    w: uint256 = self._pushed
    at: uint256 = (w >> _PUSHED_AT_SHIFT) & _MASK_64
    if at != 0 and block.timestamp - at <= (w >> _PUSHED_AGE_SHIFT) & _MASK_32:
        return w & _MASK_128, 10 ** (w >> _PUSHED_DECIMALS_SHIFT)
    return self._fresh_price(), 10 ** (self._feed_config >> _DECIMALS_SHIFT)


@internal
@view
def _fresh_price() -> uint256:
    # The same checks as `_read_price`, each with its own reason (for `quote` and `price`).
    cfg: uint256 = self._feed_config
    answer: int256 = 0
    updated_at: uint256 = 0
    round_id: uint80 = 0
    started_at: uint256 = 0
    answered_in: uint80 = 0
    round_id, answer, started_at, updated_at, answered_in = staticcall IAggregatorV3(convert(cfg & _ADDRESS_MASK, address)).latestRoundData()
    assert answer > 0, "settlement: no price"
    assert updated_at <= block.timestamp, "settlement: price from the future"
    assert block.timestamp - updated_at <= (cfg >> _AGE_SHIFT) & _MASK_32, "settlement: stale price"
    return convert(answer, uint256)


@internal
@view
def _read_price() -> (uint256, bool):
    # Never reverts: a feed that reverts, returns garbage, a non-positive, future or stale
    # answer gives (0, False) and settlement pays the cap.
    cfg: uint256 = self._feed_config
    ok: bool = False
    data: Bytes[160] = b""
    ok, data = raw_call(
        convert(cfg & _ADDRESS_MASK, address),
        method_id("latestRoundData()"),
        max_outsize=160,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not ok or len(data) != 160:
        return 0, False
    # Read as raw words so that malformed values cannot make abi_decode revert.
    answer: int256 = convert(extract32(data, 32, output_type=bytes32), int256)
    updated_at: uint256 = convert(extract32(data, 96, output_type=bytes32), uint256)
    if answer <= 0 or updated_at > block.timestamp:
        return 0, False
    if block.timestamp - updated_at > (cfg >> _AGE_SHIFT) & _MASK_32:
        return 0, False
    return convert(answer, uint256), True


@internal
def _set_price_feed(feed: address, max_age: uint256):
    assert feed != empty(address), "settlement: price feed is the zero address"
    assert max_age >= MIN_PRICE_AGE, "settlement: max_age too short"
    assert max_age <= MAX_PRICE_AGE, "settlement: max_age too long"
    decimals: uint8 = staticcall IAggregatorV3(feed).decimals()
    assert decimals <= MAX_FEED_DECIMALS, "settlement: feed decimals above 18"
    self._feed_config = (
        convert(feed, uint256) | (max_age << _AGE_SHIFT) | (convert(decimals, uint256) << _DECIMALS_SHIFT)
    )
    # Nothing pushed by the new feed yet: quotes read it until it pushes.
    self._pushed = (max_age << _PUSHED_AGE_SHIFT) | (convert(decimals, uint256) << _PUSHED_DECIMALS_SHIFT)
    log PriceFeedSet(feed=feed, max_age=max_age, decimals=decimals)
