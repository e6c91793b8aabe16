# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title JobMarket's signed orders: a job created, escrowed and taken in the provider's transaction
@custom:contract-name job_orders
@license AGPL-3.0-only
@notice The user signs an `Order` (EIP-712, JobMarket's domain: this chain and this contract)
        and hands it to a provider off-chain; the provider fills it with `fill_order`, which
        does in one transaction what `create_job` and `accept` (and `submit_result`, when the
        provider passes a result) do in two or three: checks the user's signature, escrows
        `Settlement.quote(price_per_unit) * compute_units` tokens from the user (at most
        `max_tokens`), locks the provider's collateral at its audit rate, and stores the job
        Running, or Submitted with its challenge window open. Same escrow, collateral, audit
        draw and settlement as any job (docs/PROTOCOL.md, "Signed orders").

        The job id is the order's EIP-712 digest, so an order is filled at most once: its
        slot is taken by the job (or by `cancel_order`, JobMarketExt). An order is valid until
        `accept_by`; nobody but the provider it names (any provider with a machine of the
        class, for an order naming none) can fill it, and only at the price the user signed.
"""

from interfaces import IJobMarket
from interfaces import ISettlement
from modules import job_store
from modules import market_params
from modules import market_funds
from modules import audit_draw

from snekmate.utils import eip712_domain_separator
from snekmate.utils import ecdsa

uses: job_store
uses: market_params
uses: market_funds
uses: audit_draw
uses: eip712_domain_separator


struct Order:
    # Signs the order and pays the escrow (its allowance to JobMarket).
    user: address
    # The provider that may fill it, or empty: any provider with an Active machine of the class.
    provider: address
    class_id: uint16
    # Content hash of the job spec.
    spec_hash: bytes32
    compute_units: uint256
    # USD per compute unit (18 decimals): the job's price, agreed by both signatures.
    price_per_unit: uint256
    # The most tokens the user will escrow (its slippage bound on the token price).
    max_tokens: uint256
    # Last second at which the order may be filled.
    accept_by: uint256
    # Seconds the provider has from the fill to submit a result.
    complete_within: uint256
    # Any number: two orders that differ only here are two jobs.
    salt: uint256


# A batch: one signature for up to MAX_BATCH jobs of one user, provider, class, price and windows.
struct OrderBatch:
    user: address
    provider: address
    class_id: uint16
    spec_hashes: DynArray[bytes32, job_store.MAX_BATCH]
    compute_units: DynArray[uint256, job_store.MAX_BATCH]
    price_per_unit: uint256
    # The most tokens the user will escrow for the whole batch.
    max_tokens: uint256
    accept_by: uint256
    complete_within: uint256
    salt: uint256


# JobMarket's EIP-712 domain (with this chain's id and JobMarket's address).
DOMAIN_NAME: constant(String[50]) = "gpunet JobMarket"
DOMAIN_VERSION: constant(String[20]) = "1"

ORDER_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Order(address user,address provider,uint16 class_id,bytes32 spec_hash,uint256 compute_units,uint256 price_per_unit,uint256 max_tokens,uint256 accept_by,uint256 complete_within,uint256 salt)"
)


ORDER_BATCH_TYPEHASH: public(constant(bytes32)) = keccak256(
    "OrderBatch(address user,address provider,uint16 class_id,bytes32[] spec_hashes,uint256[] compute_units,uint256 price_per_unit,uint256 max_tokens,uint256 accept_by,uint256 complete_within,uint256 salt)"
)


# The whole job in one event: offchain/chain/jobs.py rebuilds the `Job` from it.
event OrderFilled:
    job_id: indexed(uint256)
    user: indexed(address)
    provider: indexed(address)
    machine_id: uint256
    class_id: uint16
    spec_hash: bytes32
    compute_units: uint256
    payment: uint256
    usd_value: uint256
    collateral: uint256
    fee_bps: uint256
    accept_by: uint256
    complete_within: uint256
    complete_by: uint256
    audit_bps: uint256
    # Empty when the fill only accepted the job (Running): the result comes with submit_result.
    result_hash: bytes32
    result_uri: String[256]
    challenge_end: uint256
    draw_round: uint256


# A filled batch: what its jobs share. Job i's id is `order_id + i`; its own fields are in its
# OrderJobFilled. offchain/chain/jobs.py rebuilds each `Job` from the two (usd_value =
# price_per_unit * compute_units).
event OrderBatchFilled:
    order_id: indexed(uint256)
    user: indexed(address)
    provider: indexed(address)
    jobs: uint256
    machine_id: uint256
    class_id: uint16
    price_per_unit: uint256
    fee_bps: uint256
    accept_by: uint256
    complete_within: uint256
    complete_by: uint256
    audit_bps: uint256
    # Where the provider serves the batch's results (by job id); empty when only accepted.
    result_uri: String[256]
    challenge_end: uint256
    draw_round: uint256

event OrderJobFilled:
    job_id: indexed(uint256)
    spec_hash: bytes32
    compute_units: uint256
    payment: uint256
    collateral: uint256
    result_hash: bytes32


@external
@view
def order_id(order: Order) -> uint256:
    """
    @notice The id the job of `order` gets when filled: its EIP-712 digest (what the user signs).
    """
    return self._order_id(order)


@external
@view
def order_batch_id(order: OrderBatch) -> uint256:
    """
    @notice The id of the first job of `order` (job i gets `order_batch_id(order) + i`): its
            EIP-712 digest (what the user signs).
    """
    return self._batch_id(order)


@internal
@view
def _batch_id(order: OrderBatch) -> uint256:
    # EIP-712 encodes an array as the hash of its elements, concatenated (abi_encode of a
    # dynamic array puts its offset and length first: 64 bytes skipped).
    n: uint256 = len(order.spec_hashes) * 32
    m: uint256 = len(order.compute_units) * 32
    specs: bytes32 = keccak256(slice(abi_encode(order.spec_hashes), 64, n))
    units: bytes32 = keccak256(slice(abi_encode(order.compute_units), 64, m))
    return convert(
        eip712_domain_separator._hash_typed_data_v4(
            keccak256(
                abi_encode(
                    ORDER_BATCH_TYPEHASH,
                    order.user,
                    order.provider,
                    order.class_id,
                    specs,
                    units,
                    order.price_per_unit,
                    order.max_tokens,
                    order.accept_by,
                    order.complete_within,
                    order.salt,
                )
            )
        ),
        uint256,
    )


@internal
@view
def _order_id(order: Order) -> uint256:
    return convert(
        eip712_domain_separator._hash_typed_data_v4(keccak256(abi_encode(ORDER_TYPEHASH, order))), uint256
    )


@internal
@view
def _check_terms(user: address, provider: address, accept_by: uint256):
    # What every fill checks first: not paused, the order still valid, the caller its provider.
    market_params._require_not_paused()
    assert block.timestamp <= accept_by, "job_market: order expired"
    if provider != empty(address):
        assert msg.sender == provider, "job_market: order is for another provider"
    assert user != empty(address), "job_market: order has no user"


@internal
@pure
def _check_signer(digest: uint256, signature: Bytes[65], user: address):
    assert ecdsa._recover_sig(convert(digest, bytes32), signature) == user, "job_market: bad order signature"


@internal
def _fill(
    order: Order,
    signature: Bytes[65],
    machine_id: uint256,
    audit_bps: uint256,
    result_hash: bytes32,
    result_uri: String[256],
) -> (uint256, uint256):
    # Checks `order` and its signature, escrows the payment and stores the job (Submitted with
    # `result_hash`, Running without); returns (job id, collateral). The caller locks the collateral.
    self._check_terms(order.user, order.provider, order.accept_by)
    job_id: uint256 = self._order_id(order)
    self._check_signer(job_id, signature, order.user)
    # One fill per order: the slot is the job's from now on (or was cancelled).
    assert job_store._jobs[job_id] == 0, "job_market: order filled or cancelled"
    assert order.spec_hash != empty(bytes32), "job_market: spec hash is empty"
    assert order.compute_units > 0, "job_market: compute units is zero"
    assert order.price_per_unit > 0, "job_market: price is zero"
    market_params._check_complete_within(order.complete_within)
    payment: uint256 = staticcall ISettlement(market_funds.SETTLEMENT).quote(order.price_per_unit) * order.compute_units
    assert payment <= order.max_tokens, "job_market: payment above max tokens"
    status: uint8 = job_store.STATUS_RUNNING
    challenge_end: uint256 = 0
    draw_round: uint256 = 0
    if result_hash != empty(bytes32):
        status = job_store.STATUS_SUBMITTED
        challenge_end = block.timestamp + market_params._challenge_window()
        draw_round = audit_draw._draw_round()
    job: IJobMarket.Job = IJobMarket.Job(
        user=order.user,
        provider=msg.sender,
        machine_id=machine_id,
        class_id=order.class_id,
        spec_hash=order.spec_hash,
        compute_units=order.compute_units,
        payment=payment,
        usd_value=order.price_per_unit * order.compute_units,
        collateral=market_params._required_collateral(payment, market_params._collateral_floor(payment), audit_bps),
        fee_bps=market_params._fee_bps(),
        accept_by=order.accept_by,
        complete_within=order.complete_within,
        complete_by=block.timestamp + order.complete_within,
        result_hash=result_hash,
        challenge_end=challenge_end,
        audit_bps=audit_bps,
        draw_round=draw_round,
    )
    job_store._store(job_id, job, status)
    log OrderFilled(
        job_id=job_id,
        user=order.user,
        provider=msg.sender,
        machine_id=machine_id,
        class_id=order.class_id,
        spec_hash=order.spec_hash,
        compute_units=order.compute_units,
        payment=payment,
        usd_value=job.usd_value,
        collateral=job.collateral,
        fee_bps=job.fee_bps,
        accept_by=order.accept_by,
        complete_within=order.complete_within,
        complete_by=job.complete_by,
        audit_bps=audit_bps,
        result_hash=result_hash,
        result_uri=result_uri,
        challenge_end=challenge_end,
        draw_round=draw_round,
    )
    market_funds._take(order.user, payment)
    return job_id, job.collateral


@internal
def _fill_batch(
    order: OrderBatch,
    signature: Bytes[65],
    machine_id: uint256,
    audit_bps: uint256,
    result_hashes: DynArray[bytes32, job_store.MAX_BATCH],
    result_uri: String[256],
) -> (uint256, uint256):
    # `_fill` for a batch: one signature, one price read, one escrow; each job its own slot
    # (id `order_id + i`). Returns (order id, total collateral); the caller locks it.
    self._check_terms(order.user, order.provider, order.accept_by)
    n: uint256 = len(order.spec_hashes)
    job_store._check_batch(n, len(order.compute_units))
    status: uint8 = job_store.STATUS_RUNNING
    challenge_end: uint256 = 0
    draw_round: uint256 = 0
    if len(result_hashes) > 0:
        job_store._check_batch(n, len(result_hashes))
        status = job_store.STATUS_SUBMITTED
        challenge_end = block.timestamp + market_params._challenge_window()
        draw_round = audit_draw._draw_round()
    order_id: uint256 = self._batch_id(order)
    self._check_signer(order_id, signature, order.user)
    assert order.price_per_unit > 0, "job_market: price is zero"
    market_params._check_complete_within(order.complete_within)
    unit_tokens: uint256 = staticcall ISettlement(market_funds.SETTLEMENT).quote(order.price_per_unit)
    job: IJobMarket.Job = IJobMarket.Job(
        user=order.user,
        provider=msg.sender,
        machine_id=machine_id,
        class_id=order.class_id,
        spec_hash=empty(bytes32),
        compute_units=0,
        payment=0,
        usd_value=0,
        collateral=0,
        fee_bps=market_params._fee_bps(),
        accept_by=order.accept_by,
        complete_within=order.complete_within,
        complete_by=block.timestamp + order.complete_within,
        result_hash=empty(bytes32),
        challenge_end=challenge_end,
        audit_bps=audit_bps,
        draw_round=draw_round,
    )
    total: uint256 = 0
    collateral: uint256 = 0
    for i: uint256 in range(n, bound=job_store.MAX_BATCH):
        job_id: uint256 = order_id + i
        # One fill per order (the first slot), and no job over another's slot.
        assert job_store._jobs[job_id] == 0, "job_market: order filled or cancelled"
        job.spec_hash = order.spec_hashes[i]
        job.compute_units = order.compute_units[i]
        assert job.spec_hash != empty(bytes32), "job_market: spec hash is empty"
        assert job.compute_units > 0, "job_market: compute units is zero"
        job.payment = unit_tokens * job.compute_units
        job.usd_value = order.price_per_unit * job.compute_units
        job.collateral = market_params._required_collateral(job.payment, market_params._collateral_floor(job.payment), audit_bps)
        if status == job_store.STATUS_SUBMITTED:
            job.result_hash = result_hashes[i]
            assert job.result_hash != empty(bytes32), "job_market: result hash is empty"
        job_store._store(job_id, job, status)
        log OrderJobFilled(
            job_id=job_id,
            spec_hash=job.spec_hash,
            compute_units=job.compute_units,
            payment=job.payment,
            collateral=job.collateral,
            result_hash=job.result_hash,
        )
        total += job.payment
        collateral += job.collateral
    assert total <= order.max_tokens, "job_market: payment above max tokens"
    log OrderBatchFilled(
        order_id=order_id,
        user=order.user,
        provider=msg.sender,
        jobs=n,
        machine_id=machine_id,
        class_id=order.class_id,
        price_per_unit=order.price_per_unit,
        fee_bps=job.fee_bps,
        accept_by=order.accept_by,
        complete_within=order.complete_within,
        complete_by=job.complete_by,
        audit_bps=audit_bps,
        result_uri=result_uri,
        challenge_end=challenge_end,
        draw_round=draw_round,
    )
    market_funds._take(order.user, total)
    return order_id, collateral
