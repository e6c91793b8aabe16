"""A user's prepaid deposit in JobMarket: tokens its signed orders are paid from (no token
transfer per job, docs/PROTOCOL.md "Signed orders"). Re-exported by `offchain.client.sdk`."""

from __future__ import annotations

from typing import Any

from offchain.client.money import ClientError, revert_reason, tokens


def deposit_of(h: Any, address: str) -> int:
    """The tokens (wei) `address` has prepaid in JobMarket."""
    return int(h.market.deposits(address))


def deposit(h: Any, account: Any, amount: int) -> Any:
    """Prepays `amount` tokens (wei) from the account's balance; approves JobMarket for exactly
    that first when its allowance is short. Returns the receipt."""
    if amount <= 0:
        raise ClientError("the amount to deposit must be above zero")
    balance = int(h.token.balanceOf(account.address))
    if balance < amount:
        raise ClientError(f"{account.address} holds {tokens(balance)} tokens, less than {tokens(amount)}")
    if int(h.token.allowance(account.address, h.market.address)) < amount:
        h.token.approve(h.market.address, amount, sender=account)
    try:
        return h.market.deposit(amount, sender=account)
    except Exception as e:  # noqa: BLE001 - a revert: show the contract's reason
        raise ClientError(f"deposit failed: {revert_reason(e)}") from None


def withdraw_deposit(h: Any, account: Any, amount: int | None = None) -> Any:
    """Takes back `amount` tokens (wei; all of it when None) of the account's deposit. Never
    paused. Returns the receipt."""
    have = deposit_of(h, account.address)
    amount = have if amount is None else amount
    if have == 0:
        raise ClientError(f"{account.address} has no deposit in JobMarket")
    if not 0 < amount <= have:
        raise ClientError(f"the amount must be within 0..{tokens(have)} tokens (the deposit), got {tokens(amount)}")
    try:
        return h.market.withdraw_deposit(amount, sender=account)
    except Exception as e:  # noqa: BLE001
        raise ClientError(f"withdraw_deposit failed: {revert_reason(e)}") from None
