"""EIP-2612 permits for ComputeToken (snekmate erc20), so a user funds a job in one transaction.

The token's EIP-712 domain is name "gpunet", version "1" (ComputeToken's constructor arguments
`name_eip712_` and `version_eip712_`, see offchain/chain/deploy.py), the chain id and the token.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

from offchain.chain.reports import DOMAIN_VERSION, typed_data

TOKEN_EIP712_NAME = "gpunet"
TOKEN_EIP712_VERSION = DOMAIN_VERSION  # "1", as every gpunet domain


PERMIT_FIELDS: tuple[tuple[str, str], ...] = (
    ("owner", "address"),
    ("spender", "address"),
    ("value", "uint256"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)


def permit_typed_data(
    token_address: str, chain_id: int, owner: str, spender: str, value: int, nonce: int, deadline: int
) -> dict[str, Any]:
    """EIP-712 typed data (eth_account `full_message` form) of an ERC-2612 Permit."""
    message = {"owner": owner, "spender": spender, "value": value, "nonce": nonce, "deadline": deadline}
    return typed_data("Permit", PERMIT_FIELDS, token_address, chain_id, message, TOKEN_EIP712_NAME)


def sign_permit(
    private_key: str | bytes, token: Any, chain_id: int, owner: str, spender: str, value: int, deadline: int
) -> tuple[int, bytes, bytes]:
    """(v, r, s) of `owner`'s permit for `spender` to move `value` until `deadline`.

    `token` is a contract handle with `address` and `nonces(owner)` (ape or web3 style).
    """
    typed = permit_typed_data(token.address, chain_id, owner, spender, value, token.nonces(owner), deadline)
    signed = Account.sign_message(encode_typed_data(full_message=typed), private_key)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
