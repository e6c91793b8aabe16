# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize codesize
"""
@title JobMarket's extension: the paths off the job's hot path
@custom:contract-name JobMarketExt
@license AGPL-3.0-only
@notice Runs only inside JobMarket: JobMarket's fallback delegatecalls here for every
        selector it does not have itself, so these functions are called at JobMarket's
        address, on JobMarket's storage and tokens, and log as JobMarket. Call them there
        (offchain/chain/market_abi.py merges the two ABIs).

        What lives here: cancel and expire (a job's exits), disputes and audit verdicts
        (modules/market_audits.vy), parameters, the guardian's pause, role management
        and the views. What stays in JobMarket: creating, accepting, submitting,
        finalizing and claiming (every transaction of a job's normal life), so none of
        them pays for a second call.

        Why: JobMarket must stay under 20,000 bytes of runtime code (issue 11) and still
        take new paths. This is the extension pattern of Balancer v3's Vault (its
        VaultExtension), not a proxy: the extension's address is an immutable of
        JobMarket, set at deployment and never changeable, and JobMarket checks at
        deployment that this contract was built over the same token, registry,
        settlement, parameter checker and beacon.
@custom:security Both contracts initialize the same stateful modules in the same order and
        declare no storage of their own, so they have one storage layout (checked by
        tests/test_market_ext.py against `vyper -f layout` of both). Called directly,
        at its own address, this contract acts on its own empty storage: it holds no
        tokens and no role anywhere (ProviderRegistry, Settlement and the token answer
        only JobMarket's address), and its constructor renounces the admin role that
        snekmate's access_control grants the deployer in that storage. Roles are those
        of JobMarket (docs/SECURITY.md).
"""

from interfaces import IJobMarket
from interfaces import IJobMarketParams
from interfaces import IProviderRegistry
from modules import reputation

# The stateful modules, in JobMarket's order (one storage layout for both contracts).
from snekmate.auth import access_control
initializes: access_control

from modules import job_store
initializes: job_store

from modules import market_params
initializes: market_params

from modules import audit_draw
initializes: audit_draw

from modules import market_funds
initializes: market_funds

from modules import market_audits
initializes: market_audits[
    job_store := job_store,
    market_params := market_params,
    market_funds := market_funds,
    audit_draw := audit_draw,
    access_control := access_control,
]

from snekmate.utils import eip712_domain_separator
# The market's EIP-712 domain (immutables only): run here, at the market's address, it is the
# market's domain, so `cancel_order` cancels the id `fill_order` would use.
initializes: eip712_domain_separator

from modules import job_orders
initializes: job_orders[
    job_store := job_store,
    market_params := market_params,
    market_funds := market_funds,
    audit_draw := audit_draw,
    eip712_domain_separator := eip712_domain_separator,
]

exports: (
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.DEFAULT_ADMIN_ROLE,
    job_store.job_commitment,
    market_params.MAX_BPS,
    market_params.PARAMS_CHECK,
    market_params.params,
    market_params.dispute_bond,
    market_params.required_collateral,
    audit_draw.BEACON,
    audit_draw.DRAW_ROUND_SECONDS,
    market_funds.TOKEN,
    market_funds.SETTLEMENT,
    market_funds.REGISTRY,
    market_funds.accrued,
    market_funds.deposits,
    market_audits.VERIFIER_ROLE,
    market_audits.disputes,
    market_audits.dispute,
    market_audits.post_verdict,
    market_audits.audit_drawn,
    job_orders.ORDER_BATCH_TYPEHASH,
    job_orders.order_batch_id,
)

# Pauses new jobs, nothing else.
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER_ROLE")

_REASON_NO_SHOW: constant(bytes32) = keccak256("NO_SHOW")


event JobCancelled:
    job_id: indexed(uint256)
    user: indexed(address)
    refund: uint256

event OrderCancelled:
    job_id: indexed(uint256)
    user: indexed(address)

event Deposited:
    account: indexed(address)
    amount: uint256
    balance: uint256

event DepositWithdrawn:
    account: indexed(address)
    amount: uint256
    balance: uint256

event JobExpired:
    job_id: indexed(uint256)
    provider: indexed(address)
    refund: uint256
    penalty: uint256


@deploy
def __init__(token: address, registry: address, settlement: address, params_check: address, beacon: address):
    """
    @notice The immutables every module reads, equal to JobMarket's (JobMarket checks them).
    """
    access_control.__init__()
    # This contract's own storage is never used: it keeps no admin there either.
    access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    market_funds.__init__(token, registry, settlement)
    market_params.__init__(params_check)
    audit_draw.__init__(beacon)
    eip712_domain_separator.__init__(job_orders.DOMAIN_NAME, job_orders.DOMAIN_VERSION)


@external
def cancel(job_id: uint256, job: IJobMarket.Job):
    """
    @notice The user takes back an Open job's payment. Never paused.
    """
    job_store._check_open(job_id, job)
    job_store._check_user(job)
    self._cancel(job_id, job)


@external
def deposit(amount: uint256):
    """
    @notice Prepays `amount` tokens (from the caller's allowance) for the caller's signed
            orders: a fill takes the payment from here when it covers it. Never paused.
    """
    assert amount > 0, "job_market: amount is zero"
    market_funds._pull(msg.sender, amount)
    balance: uint256 = market_funds.deposits[msg.sender] + amount
    market_funds.deposits[msg.sender] = balance
    log Deposited(account=msg.sender, amount=amount, balance=balance)


@external
def withdraw_deposit(amount: uint256):
    """
    @notice Takes back `amount` of the caller's deposit, at any time. Never paused. An order
            whose fill finds the deposit short is paid from the allowance instead, or fails.
    """
    balance: uint256 = market_funds.deposits[msg.sender]
    assert amount > 0, "job_market: amount is zero"
    assert amount <= balance, "job_market: amount above deposit"
    balance = unsafe_sub(balance, amount)
    market_funds.deposits[msg.sender] = balance
    market_funds._push(msg.sender, amount)
    log DepositWithdrawn(account=msg.sender, amount=amount, balance=balance)


@external
def cancel_order(order: job_orders.Order):
    """
    @notice The user withdraws a signed order nobody has filled yet: it can never be filled
            (its job id is marked Cancelled). Never paused. No funds move: an order escrows
            nothing until it is filled.
    """
    self._cancel_order(order.user, job_orders._order_id(order))


@external
def fill_order_batch(
    order: job_orders.OrderBatch,
    signature: Bytes[65],
    machine_id: uint256,
    result_hashes: DynArray[bytes32, job_store.MAX_BATCH],
    result_uri: String[256],
) -> uint256:
    """
    @notice `fill_order` for a batch order (one signature for up to MAX_BATCH jobs, one price,
            one escrow, one collateral lock): job i gets id `order_batch_id(order) + i`, is
            Submitted with `result_hashes[i]` (the results served at `result_uri`), or Running
            when `result_hashes` is empty. All or nothing. Paused with `accept`. Runs here,
            not in JobMarket, for room: the extra call is ~60 gas per job of a batch of 50.
    @return The id of the batch's first job.
    """
    order_id: uint256 = 0
    collateral: uint256 = 0
    order_id, collateral = job_orders._fill_batch(
        order, signature, machine_id, market_params._audit_rate_for(market_funds._reputation(msg.sender)), result_hashes, result_uri
    )
    market_funds._lock(msg.sender, machine_id, order.class_id, collateral)
    return order_id



@external
def cancel_order_batch(order: job_orders.OrderBatch):
    """
    @notice `cancel_order` for a batch order: none of its jobs can be filled (its first job's
            id is marked Cancelled, and a fill needs every slot free).
    """
    self._cancel_order(order.user, job_orders._batch_id(order))


@external
def expire(job_id: uint256, job: IJobMarket.Job):
    """
    @notice Ends a job whose deadline passed: an Open job past `accept_by` is Cancelled
            (full refund); a Running job past `complete_by` is Expired (full refund, plus
            the no-show penalty slashed from the provider's collateral to the user).
    """
    status: uint8 = job_store._load(job_id, job)
    if status == job_store.STATUS_OPEN:
        assert block.timestamp > job.accept_by, "job_market: acceptance window open"
        self._cancel(job_id, job)
    elif status == job_store.STATUS_RUNNING:
        assert block.timestamp > job.complete_by, "job_market: job not overdue"
        job_store._store(job_id, job, job_store.STATUS_EXPIRED)
        market_funds._push(job.user, job.payment)
        market_funds._release(job.provider, job.collateral, 1 << reputation.EXPIRED)
        penalty: uint256 = market_funds._slash(
            job.provider, job.collateral * market_params._p.noshow_penalty_bps // market_params.MAX_BPS, _REASON_NO_SHOW, job.user
        )
        log JobExpired(job_id=job_id, provider=job.provider, refund=job.payment, penalty=penalty)
    else:
        raise "job_market: job cannot expire"


@external
@view
def audit_rate(provider: address) -> uint256:
    """
    @notice Audit probability (basis points) a job accepted now by `provider` would get.
    """
    return market_params._audit_rate_for(market_funds._reputation(provider))


@external
def set_params(new_params: IJobMarketParams.Params):
    """
    @notice Governance (DEFAULT_ADMIN_ROLE): new protocol parameters, checked by
            JobMarketParams; jobs keep the fee, collateral and windows fixed in them.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    market_params._set(new_params)
    market_funds._set_min_reputation(new_params.min_reputation_usd)
    audit_draw._check_latency(new_params.challenge_window)


@external
def pause():
    """
    @notice The guardian (PAUSER_ROLE) stops new jobs: create and accept. Nothing else.
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    market_params._pause()


@external
def unpause():
    """
    @notice The guardian (PAUSER_ROLE) lets new jobs in again.
    """
    access_control._check_role(PAUSER_ROLE, msg.sender)
    market_params._unpause()


@internal
def _cancel(job_id: uint256, job: IJobMarket.Job):
    # An Open job's refund (the user cancels it, or its acceptance window passed).
    job_store._store(job_id, job, job_store.STATUS_CANCELLED)
    market_funds._push(job.user, job.payment)
    log JobCancelled(job_id=job_id, user=job.user, refund=job.payment)


@internal
def _cancel_order(user: address, job_id: uint256):
    # Marks an unfilled order's (first) job id Cancelled, so no fill can take it.
    assert msg.sender == user, "job_market: caller is not the user"
    assert job_store._jobs[job_id] == 0, "job_market: order filled or cancelled"
    job_store._jobs[job_id] = convert(job_store.STATUS_CANCELLED, uint256)
    log OrderCancelled(job_id=job_id, user=msg.sender)
