"""Signed job orders (contracts/modules/job_orders.vy): build, sign and identify them off-chain.

A user signs an `Order` under JobMarket's EIP-712 domain ("gpunet JobMarket", version "1", the
chain id, JobMarket's address) and hands it to a provider, which fills it on-chain
(`JobMarket.fill_order`): the job is created, escrowed and taken in the provider's transaction.
The job id is the order's digest (`order_id`), so the user knows it before the fill.
"""

from __future__ import annotations

from typing import Any

from eth_account.messages import encode_typed_data
from eth_utils import keccak

from offchain.chain.reports import report_tuple, typed_data

ORDER_DOMAIN_NAME = "gpunet JobMarket"

# Field order and types: must match `struct Order` and ORDER_TYPEHASH in contracts/modules/job_orders.vy.
ORDER_FIELDS: tuple[tuple[str, str], ...] = (
    ("user", "address"),
    ("provider", "address"),
    ("class_id", "uint16"),
    ("spec_hash", "bytes32"),
    ("compute_units", "uint256"),
    ("price_per_unit", "uint256"),
    ("max_tokens", "uint256"),
    ("accept_by", "uint256"),
    ("complete_within", "uint256"),
    ("salt", "uint256"),
)
ORDER_TYPE = "Order(" + ",".join(f"{t} {n}" for n, t in ORDER_FIELDS) + ")"
ORDER_TYPEHASH = keccak(text=ORDER_TYPE)


def _typed(primary: str, fields: tuple, market_address: str, chain_id: int, order: dict[str, Any]) -> dict:
    return typed_data(primary, fields, market_address, chain_id, order, ORDER_DOMAIN_NAME)


def _digest(typed: dict[str, Any]) -> int:
    # The EIP-712 digest, keccak(0x19 0x01 domainSeparator structHash): what JobMarket's order ids are.
    signable = encode_typed_data(full_message=typed)
    return int.from_bytes(keccak(b"\x19" + signable.version + signable.header + signable.body), "big")


def _signature(account: Any, typed: dict[str, Any]) -> bytes:
    sig = account.sign_message(encode_typed_data(full_message=typed))
    if sig is None:
        raise ValueError(f"account {account.address} cannot sign messages (EIP-712 order)")
    if hasattr(sig, "encode_rsv"):  # ape MessageSignature
        return bytes(sig.encode_rsv())
    return bytes(sig.signature)  # eth_account SignedMessage


def order_typed_data(market_address: str, chain_id: int, order: dict[str, Any]) -> dict[str, Any]:
    """EIP-712 typed data (eth_account `full_message` form) of `order` for the JobMarket at
    `market_address` on chain `chain_id`."""
    return _typed("Order", ORDER_FIELDS, market_address, chain_id, order)


def order_id(market_address: str, chain_id: int, order: dict[str, Any]) -> int:
    """The job id `fill_order` gives `order`: its EIP-712 digest (JobMarket's `order_id`)."""
    return _digest(order_typed_data(market_address, chain_id, order))


def order_tuple(order: dict[str, Any]) -> tuple:
    """The order as `fill_order`'s struct argument."""
    return report_tuple(ORDER_FIELDS, order)


def sign_order(account: Any, market_address: str, chain_id: int, order: dict[str, Any]) -> bytes:
    """The 65-byte signature (r, s, v) of `order` by an ape account (test and keyfile accounts
    alike: no private key leaves ape) or an eth_account LocalAccount."""
    return _signature(account, order_typed_data(market_address, chain_id, order))


# A batch order: one signature for up to 100 jobs (contracts/modules/job_orders.vy `OrderBatch`).
# The Order's fields with the job's spec hash and units as lists, one entry per job.
_BATCHED = {"spec_hash": ("spec_hashes", "bytes32[]"), "compute_units": ("compute_units", "uint256[]")}
ORDER_BATCH_FIELDS: tuple[tuple[str, str], ...] = tuple(_BATCHED.get(n, (n, t)) for n, t in ORDER_FIELDS)
ORDER_BATCH_TYPE = "OrderBatch(" + ",".join(f"{t} {n}" for n, t in ORDER_BATCH_FIELDS) + ")"
ORDER_BATCH_TYPEHASH = keccak(text=ORDER_BATCH_TYPE)


def order_batch_typed_data(market_address: str, chain_id: int, order: dict[str, Any]) -> dict[str, Any]:
    """EIP-712 typed data of a batch order for the JobMarket at `market_address`."""
    return _typed("OrderBatch", ORDER_BATCH_FIELDS, market_address, chain_id, order)


def order_batch_id(market_address: str, chain_id: int, order: dict[str, Any]) -> int:
    """The id of a batch order's first job (job i: + i), as JobMarket's `order_batch_id`."""
    return _digest(order_batch_typed_data(market_address, chain_id, order))


def order_batch_tuple(order: dict[str, Any]) -> tuple:
    """The batch order as `fill_order_batch`'s struct argument."""
    return report_tuple(ORDER_BATCH_FIELDS, order)


def sign_order_batch(account: Any, market_address: str, chain_id: int, order: dict[str, Any]) -> bytes:
    """The 65-byte signature of a batch order (see `sign_order`)."""
    return _signature(account, order_batch_typed_data(market_address, chain_id, order))
