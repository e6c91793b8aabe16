# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title JobMarket's intake: pricing and escrowing new jobs
@custom:contract-name job_intake
@license AGPL-3.0-only
@notice `create_job(s)` price a job at the provider's offer (or the user's price for an open
        job), escrow `Settlement.quote(price) * units` tokens and store the job Open.
        Paused with JobMarket (the guardian's stop for new jobs).
"""

from interfaces import IJobMarket
from interfaces import IProviderRegistry
from interfaces import ISettlement
from modules import job_store
from modules import market_params
from modules import market_funds

uses: job_store
uses: market_params
uses: market_funds


event JobCreated:
    job_id: indexed(uint256)
    user: indexed(address)
    provider: indexed(address)
    class_id: uint16
    spec_hash: bytes32
    compute_units: uint256
    payment: uint256
    usd_value: uint256
    collateral: uint256
    fee_bps: uint256
    accept_by: uint256
    complete_within: uint256


@external
def create_job(
    provider: address,
    class_id: uint16,
    spec_hash: bytes32,
    compute_units: uint256,
    max_price_per_unit: uint256,
    accept_window: uint256,
    complete_within: uint256,
    max_tokens: uint256,
) -> uint256:
    """
    @notice Escrows the payment for a job (needs an allowance or a prior permit): the job's
            USD value at the current token price, `Settlement.quote(price per unit) * units`
            (tokens per unit rounded up: at most one wei per unit above the exact amount).
    @param provider The provider whose offer to take, or empty for an open job that any
           provider with an Active machine of the class may accept at `max_price_per_unit`.
    @param max_price_per_unit USD per compute unit (18 decimals). For a targeted job, the
           highest offer accepted (the job is priced at the provider's current offer); for an
           open job, the price paid.
    @param max_tokens The most tokens the caller will escrow (slippage bound on the price).
    @return The new job id.
    """
    return self._create(
        provider, class_id, spec_hash, compute_units, max_price_per_unit, accept_window, complete_within, max_tokens
    )


@external
def create_job_with_permit(
    provider: address,
    class_id: uint16,
    spec_hash: bytes32,
    compute_units: uint256,
    max_price_per_unit: uint256,
    accept_window: uint256,
    complete_within: uint256,
    max_tokens: uint256,
    permit_amount: uint256,
    permit_deadline: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
) -> uint256:
    """
    @notice `create_job` in one transaction from a wallet with no allowance: applies the
            caller's EIP-2612 permit for this contract first.
    @dev The permit call may fail because someone front-ran the same signature onto the
         token (that sets the same allowance): its failure is ignored and the transfer
         decides, with "transfer failed" if the allowance is still short.
    """
    permit_ok: bool = raw_call(
        market_funds.TOKEN,
        abi_encode(
            msg.sender, self, permit_amount, permit_deadline, v, r, s,
            method_id=method_id("permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"),
        ),
        revert_on_failure=False,
    )
    return self._create(
        provider, class_id, spec_hash, compute_units, max_price_per_unit, accept_window, complete_within, max_tokens
    )


@external
def create_jobs(
    provider: address,
    class_id: uint16,
    spec_hashes: DynArray[bytes32, job_store.MAX_BATCH],
    compute_units: DynArray[uint256, job_store.MAX_BATCH],
    max_price_per_unit: uint256,
    accept_window: uint256,
    complete_within: uint256,
    max_tokens: uint256,
) -> DynArray[uint256, job_store.MAX_BATCH]:
    """
    @notice Batch form of `create_job`: the same provider, class, price and windows for
            every job; one token transfer for the total, bounded by `max_tokens`.
    @return The new job ids, in order.
    """
    market_params._require_not_paused()
    job_store._check_batch(len(spec_hashes), len(compute_units))
    price: uint256 = self._price(provider, class_id, max_price_per_unit, accept_window, complete_within)
    unit_tokens: uint256 = staticcall ISettlement(market_funds.SETTLEMENT).quote(price)
    ids: DynArray[uint256, job_store.MAX_BATCH] = []
    total: uint256 = 0
    for i: uint256 in range(len(spec_hashes), bound=job_store.MAX_BATCH):
        job_id: uint256 = 0
        payment: uint256 = 0
        job_id, payment = self._new_job(
            provider, class_id, spec_hashes[i], compute_units[i], price, unit_tokens, accept_window, complete_within
        )
        ids.append(job_id)
        total += payment
    market_funds._collect(total, max_tokens)
    return ids


@internal
def _create(
    provider: address,
    class_id: uint16,
    spec_hash: bytes32,
    compute_units: uint256,
    max_price_per_unit: uint256,
    accept_window: uint256,
    complete_within: uint256,
    max_tokens: uint256,
) -> uint256:
    market_params._require_not_paused()
    price: uint256 = self._price(provider, class_id, max_price_per_unit, accept_window, complete_within)
    job_id: uint256 = 0
    payment: uint256 = 0
    unit_tokens: uint256 = staticcall ISettlement(market_funds.SETTLEMENT).quote(price)
    job_id, payment = self._new_job(
        provider, class_id, spec_hash, compute_units, price, unit_tokens, accept_window, complete_within
    )
    market_funds._collect(payment, max_tokens)
    return job_id


@internal
@view
def _price(
    provider: address, class_id: uint16, max_price_per_unit: uint256, accept_window: uint256, complete_within: uint256
) -> uint256:
    # Parameters are read field by field: copying the struct would cost 13 cold slot reads.
    assert staticcall IProviderRegistry(market_funds.REGISTRY).class_exists(class_id), "job_market: unknown class"
    market_params._check_windows(accept_window, complete_within)
    if provider == empty(address):
        assert max_price_per_unit > 0, "job_market: price is zero"
        return max_price_per_unit
    offer: uint256 = staticcall IProviderRegistry(market_funds.REGISTRY).offers(provider, class_id)
    assert offer > 0, "job_market: provider has no offer"
    assert offer <= max_price_per_unit, "job_market: offer above max price"
    return offer


@internal
def _new_job(
    provider: address,
    class_id: uint16,
    spec_hash: bytes32,
    compute_units: uint256,
    price: uint256,
    unit_tokens: uint256,
    accept_window: uint256,
    complete_within: uint256,
) -> (uint256, uint256):
    # Returns (job id, tokens escrowed). `unit_tokens` = Settlement.quote(price): the tokens per
    # compute unit at the current price, rounded up (so a batch reads the price once).
    assert spec_hash != empty(bytes32), "job_market: spec hash is empty"
    assert compute_units > 0, "job_market: compute units is zero"
    usd_value: uint256 = price * compute_units
    payment: uint256 = unit_tokens * compute_units
    # Rounded up: the collateral errs on the side of the user.
    collateral: uint256 = market_params._collateral_floor(payment)
    job: IJobMarket.Job = IJobMarket.Job(
        user=msg.sender,
        provider=provider,
        machine_id=0,
        class_id=class_id,
        spec_hash=spec_hash,
        compute_units=compute_units,
        payment=payment,
        usd_value=usd_value,
        collateral=collateral,
        fee_bps=market_params._fee_bps(),
        accept_by=block.timestamp + accept_window,
        complete_within=complete_within,
        complete_by=0,
        result_hash=empty(bytes32),
        challenge_end=0,
        audit_bps=0,
        draw_round=0,
    )
    job_id: uint256 = job_store._next_id()
    job_store._store(job_id, job, job_store.STATUS_OPEN)
    log JobCreated(
        job_id=job_id,
        user=msg.sender,
        provider=provider,
        class_id=class_id,
        spec_hash=spec_hash,
        compute_units=compute_units,
        payment=payment,
        usd_value=usd_value,
        collateral=collateral,
        fee_bps=job.fee_bps,
        accept_by=job.accept_by,
        complete_within=complete_within,
    )
    return job_id, payment
