"""Signed job orders from the client: a user signs an order into a file, a provider fills it
(docs/PROTOCOL.md, "Signed orders"). The order file is JSON: the market and chain it is for, the
order, the user's signature and the job id the fill will give. Re-exported by `offchain.client.sdk`.

The spec and inputs reach the provider as for any job (its agent's blob store); this module only
moves the order. The provider agent does not fill orders by itself yet: `gpunet provider fill`.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from offchain.chain.jobs import ZERO_ADDRESS
from offchain.chain.orders import ORDER_FIELDS, order_id, order_tuple, sign_order
from offchain.client.money import ClientError, job_quote, revert_reason, slippage_bound, tokens


def make_order(
    h: Any,
    account: Any,
    *,
    provider: str,
    class_id: int,
    spec_hash: bytes,
    units: int,
    price: int | None = None,
    accept_window: int = 600,
    complete_within: int = 3600,
    max_tokens: int | None = None,
    max_slippage_bps: int = 100,
) -> dict:
    """Signs an order of `units` compute units of `spec_hash` for `provider` (or any provider,
    the zero address) at `price` USD per unit (default: the provider's offer); escrow at most
    `max_tokens` (default: today's quote + `max_slippage_bps`). Returns the order file's dict."""
    if units <= 0:
        raise ClientError("--units must be above zero")
    if len(spec_hash) != 32 or not any(spec_hash):
        raise ClientError("--spec-hash must be 32 bytes (64 hex digits), not all zero")
    if price is None:
        if provider == ZERO_ADDRESS:
            raise ClientError("an open order (no --provider) needs --price")
        price = int(h.registry.offers(provider, class_id))
        if price == 0:
            raise ClientError(f"provider {provider} has no offer for class {class_id}: give --price")
    p = h.market.params()
    if not int(p.min_complete_within) <= complete_within <= int(p.max_complete_within):
        raise ClientError(
            f"--complete-within must be within {int(p.min_complete_within)}..{int(p.max_complete_within)} seconds"
        )
    quote = job_quote(h, price, units)
    max_tokens = slippage_bound(quote, max_slippage_bps) if max_tokens is None else max_tokens
    if max_tokens < quote:
        raise ClientError(f"the job costs {tokens(quote)} tokens now, more than --max-tokens {tokens(max_tokens)}")
    deposit = int(h.market.deposits(account.address))
    allowance = min(int(h.token.balanceOf(account.address)), int(h.token.allowance(account.address, h.market.address)))
    if deposit < max_tokens and allowance < max_tokens:
        raise ClientError(
            f"a fill may take up to {tokens(max_tokens)} tokens: deposit them (`gpunet job deposit`), or approve "
            f"JobMarket for them (deposit {tokens(deposit)}, spendable {tokens(allowance)})"
        )
    order = {
        "user": account.address,
        "provider": provider,
        "class_id": class_id,
        "spec_hash": "0x" + spec_hash.hex(),
        "compute_units": units,
        "price_per_unit": price,
        "max_tokens": max_tokens,
        "accept_by": int(h.chain.blocks.head.timestamp) + accept_window,
        "complete_within": complete_within,
        "salt": secrets.randbits(64),
    }
    chain_id = int(h.chain.chain_id)
    signature = sign_order(account, h.market.address, chain_id, order)
    return {
        "market": h.market.address,
        "chain_id": chain_id,
        "order": order,
        "signature": "0x" + signature.hex(),
        "job_id": order_id(h.market.address, chain_id, order),
    }


def save_order(data: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def load_order(path: str | Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
        order = {name: data["order"][name] for name, _ in ORDER_FIELDS}
        return {**data, "order": order, "signature": bytes.fromhex(str(data["signature"]).removeprefix("0x"))}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ClientError(f"{path} is not an order file (gpunet job sign-order writes one): {e}") from None


def fill_order(h: Any, account: Any, data: dict, machine_id: int, result_hash: bytes = b"\0" * 32,
               result_uri: str = "") -> tuple[int, Any]:  # fmt: skip
    """Fills a loaded order file on `machine_id`: Submitted with `result_hash`, else Running.
    Returns (job id, receipt)."""
    if str(data["market"]).lower() != str(h.market.address).lower() or int(data["chain_id"]) != int(h.chain.chain_id):
        raise ClientError(
            f"the order is for JobMarket {data['market']} on chain {data['chain_id']}, "
            f"not {h.market.address} on chain {h.chain.chain_id}"
        )
    try:
        receipt = h.market.fill_order(
            order_tuple(data["order"]), data["signature"], machine_id, result_hash, result_uri, sender=account
        )
    except Exception as e:  # noqa: BLE001 - a revert: the contract's reason says what to fix
        raise ClientError(f"fill_order failed: {revert_reason(e)}") from None
    return int(receipt.decode_logs(h.market.OrderFilled)[0].job_id), receipt
