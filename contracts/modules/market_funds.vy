# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title JobMarket's money paths: escrow in and out, and burn-and-mint settlement
@custom:contract-name market_funds
@license AGPL-3.0-only
@notice Every token JobMarket moves goes through `_pull` / `_push`; every finalized job is
        settled by `_settle` (the rule) and credited to its provider by `_pay_out`; `claim`
        burns a provider's credited escrow and has Settlement mint its pay, once for all
        the jobs finalized since its last claim (docs/ECONOMICS.md, "Settlement"). Assumes
        the token moves exact amounts (no fee, no rebase).
"""

from ethereum.ercs import IERC20
from interfaces import IComputeToken
from interfaces import IJobMarket
from interfaces import IProviderRegistry
from interfaces import ISettlement
from modules import market_params
from modules import reputation

# The payment token (ComputeToken).
TOKEN: public(immutable(address))
# Prices jobs in tokens and mints providers' pay (burn-and-mint, docs/ECONOMICS.md).
SETTLEMENT: public(immutable(address))
# Where stake and collateral live.
REGISTRY: public(immutable(address))


# provider -> (USD value minus fees, 18 decimals) << 128 | (escrow minus fees, tokens) summed over
# every job of the provider ever finalized; then the same word as it stood at the provider's last
# claim. A claim settles the difference. Cumulative, so that the word never returns to zero
# between claims: a zero -> non-zero write would cost the next finalize 20,000 gas more.
_credited: HashMap[address, uint256]
_claimed: HashMap[address, uint256]

# provider -> what else its next claim settles, for the jobs finalized since its last claim:
# their escrow to burn (bits 0-103, fees included), their collateral to release in
# ProviderRegistry (bits 104-207) and how many count as completed in its reputation (bits
# 208-254). Bit 255 stays set once used, so a claim never leaves the word at zero (same reason).
# Finalizing thus writes no ProviderRegistry slot: the release and the record wait for the claim
# (docs/ECONOMICS.md, "Settlement"); until then the collateral stays locked, never less.
_pending: HashMap[address, uint256]

# Low 128 bits: the escrow (fees included) of every job finalized, what the claims burn, counted
# when the job is credited (`total_burned`). Emissions tapers on it (the "customer burns"), so the
# taper does not depend on when providers claim (delaying burns into fewer epochs would raise the
# convex taper's budget). High 128 bits: a copy of the parameter `min_reputation_usd` (set with
# the parameters), which every finalize reads too: one cold read for both, not two.
_burns: uint256

# user -> tokens prepaid for signed orders (JobMarketExt: `deposit`, `withdraw_deposit`). A fill
# draws the payment from here when it covers it (one warm word, not a token transfer), else from
# the user's allowance.
deposits: public(HashMap[address, uint256])

_MASK_128: constant(uint256) = 2**128 - 1
_MASK_104: constant(uint256) = 2**104 - 1
# The completed count (bits 208-254, below the used bit).
_MASK_47: constant(uint256) = 2**47 - 1
_PENDING_USED: constant(uint256) = 1 << 255


event JobFinalized:
    job_id: indexed(uint256)
    provider: indexed(address)
    # The job's USD value and its escrow, all of it burned (Settlement mints the provider's pay).
    usd_value: uint256
    burned: uint256
    # The fee's share of the escrow (tokens): the provider is minted at most `burned - fee`.
    fee: uint256
    # True when an audit ran out of time without a verdict.
    audit_timed_out: bool


@deploy
def __init__(token: address, registry: address, settlement: address):
    assert token != empty(address), "job_market: token is the zero address"
    assert registry != empty(address), "job_market: registry is the zero address"
    assert settlement != empty(address), "job_market: settlement is the zero address"
    TOKEN = token
    REGISTRY = registry
    SETTLEMENT = settlement


@internal
def _settle(job_id: uint256, job: IJobMarket.Job, audit_timed_out: bool) -> (uint256, uint256):
    # THE settlement rule, in one place (docs/ECONOMICS.md, "Settlement"): the whole escrow is
    # burned and the provider is minted the job's USD value minus the fee at the settlement
    # price, at most the escrow minus the fee (`Settlement.settle`). Returns (usd_net, cap) for
    # `_pay_out`, which may sum them over a run of one provider's jobs. Rounds down: the fee
    # errs in the provider's favour.
    fee: uint256 = job.payment * job.fee_bps // market_params.MAX_BPS
    log JobFinalized(
        job_id=job_id,
        provider=job.provider,
        usd_value=job.usd_value,
        burned=job.payment,
        fee=fee,
        audit_timed_out=audit_timed_out,
    )
    return job.usd_value - job.usd_value * job.fee_bps // market_params.MAX_BPS, job.payment - fee


@external
def claim(provider: address) -> uint256:
    """
    @notice Anyone: burns the escrow of `provider`'s jobs finalized since its last claim and
            has Settlement mint the provider its pay for them, `min(usd_net / price, cap)`
            over their sums at the price now (paid to `provider`, whoever calls; Settlement
            logs `Settled`). Never paused.
    @return The tokens minted.
    """
    burned: uint256 = 0
    usd_net: uint256 = 0
    cap: uint256 = 0
    burned, usd_net, cap = self._unclaimed(provider)
    assert burned > 0, "job_market: nothing to claim"
    pending: uint256 = self._pending[provider]
    self._pending[provider] = _PENDING_USED
    self._claimed[provider] = self._credited[provider]
    # The collateral of those jobs is released and their completed count recorded only now.
    self._release(provider, (pending >> 104) & _MASK_104, ((pending >> 208) & _MASK_47) << reputation.COMPLETED)
    extcall IComputeToken(TOKEN).burn(burned)
    return extcall ISettlement(SETTLEMENT).settle(provider, burned, usd_net, cap)


@external
@view
def accrued(provider: address) -> (uint256, uint256, uint256):
    """
    @notice What `claim(provider)` would settle now: (escrow to burn, USD value minus fees,
            escrow minus fees = the most it can mint).
    """
    return self._unclaimed(provider)


@internal
@view
def _unclaimed(provider: address) -> (uint256, uint256, uint256):
    # (escrow, USD net, cap) credited since the last claim. The cumulative words never fall
    # below their values at the last claim, so unsafe_sub cannot wrap.
    credited: uint256 = self._credited[provider]
    done: uint256 = self._claimed[provider]
    return (
        self._pending[provider] & _MASK_104,
        unsafe_sub(credited >> 128, done >> 128),
        unsafe_sub(credited & _MASK_128, done & _MASK_128),
    )


@internal
def _pay_out(provider: address, burned: uint256, usd_net: uint256, cap: uint256, collateral: uint256, completed: uint256):
    # Settles what `_settle` gave a provider (summed over a run of its jobs in `finalize_many`):
    # credits the escrow to burn, the pay to mint, the collateral to release and the `completed`
    # count to the provider's next `claim`; nothing for the empty provider before the first run
    # of a batch.
    if provider == empty(address):
        return
    acc: uint256 = self._credited[provider]
    # convert() reverts past 2**128 - 1 (3.4e20 tokens or USD over a provider's lifetime): never
    # reached by real jobs.
    self._credited[provider] = (
        convert(convert((acc >> 128) + usd_net, uint128), uint256) << 128
    ) | convert(convert((acc & _MASK_128) + cap, uint128), uint256)
    p: uint256 = self._pending[provider]
    # convert() reverts past 2**104 wei (2e13 tokens) since the provider's last claim, which
    # anyone may make: never reached by real jobs.
    self._pending[provider] = (
        _PENDING_USED
        | ((p >> 208) + completed) << 208
        | convert(convert(((p >> 104) & _MASK_104) + collateral, uint104), uint256) << 104
        | convert(convert((p & _MASK_104) + burned, uint104), uint256)
    )
    b: uint256 = self._burns
    # convert() reverts past 2**128 - 1 wei (3.4e20 tokens) burned in all: never reached.
    self._burns = (b >> 128) << 128 | convert(convert((b & _MASK_128) + burned, uint128), uint256)


@external
@view
def total_burned() -> uint256:
    """
    @notice The escrow (fees included) of every job finalized so far: what the providers'
            claims burn (Emissions' taper input).
    """
    return self._burns & _MASK_128


@internal
@view
def _counts(usd_value: uint256) -> uint256:
    # 1 when a finalized job of `usd_value` counts as `completed` (the reputation increment):
    # worth at least `min_reputation_usd`.
    if usd_value >= self._burns >> 128:
        return 1
    return 0


@internal
def _set_min_reputation(min_reputation_usd: uint256):
    # With every parameter set (JobMarketParams bounds it below 2**128).
    self._burns = min_reputation_usd << 128 | (self._burns & _MASK_128)


@internal
def _take(owner: address, amount: uint256):
    # A signed order's escrow: from the owner's deposit when it covers `amount`, else its allowance.
    d: uint256 = self.deposits[owner]
    if d >= amount:
        self.deposits[owner] = unsafe_sub(d, amount)
    else:
        self._pull(owner, amount)


@internal
@view
def _reputation(provider: address) -> uint256:
    # `provider`'s packed reputation word in ProviderRegistry (market_params._audit_rate_for reads it).
    return staticcall IProviderRegistry(REGISTRY).reputation_word(provider)


@internal
def _lock(provider: address, machine_id: uint256, class_id: uint16, collateral: uint256):
    # `provider`'s collateral for what it accepts or fills, on one of its machines of the class.
    extcall IProviderRegistry(REGISTRY).lock_collateral(provider, machine_id, class_id, collateral)


@internal
def _release(provider: address, collateral: uint256, record: uint256):
    # Releases `provider`'s collateral in ProviderRegistry and adds `record` (packed reputation
    # increments) to its record there.
    extcall IProviderRegistry(REGISTRY).unlock_collateral(provider, collateral, record)


@internal
def _slash(provider: address, amount: uint256, reason: bytes32, beneficiary: address) -> uint256:
    # Slashes up to `amount` of `provider`'s stake to `beneficiary` (burned when empty); nothing
    # for a zero amount (the registry refuses one). Returns what was slashed.
    if amount == 0:
        return 0
    return extcall IProviderRegistry(REGISTRY).slash(provider, amount, reason, beneficiary)


@internal
def _collect(amount: uint256, max_tokens: uint256):
    # The caller's escrow for what it creates, bounded by its slippage limit.
    assert amount <= max_tokens, "job_market: payment above max tokens"
    self._pull(msg.sender, amount)


@internal
def _pull(owner: address, amount: uint256):
    assert extcall IERC20(TOKEN).transferFrom(owner, self, amount, default_return_value=True), \
        "job_market: transfer failed"


@internal
def _push(to: address, amount: uint256):
    if amount > 0:
        assert extcall IERC20(TOKEN).transfer(to, amount, default_return_value=True), "job_market: transfer failed"
