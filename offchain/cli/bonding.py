"""Stake in, stake out: the steps `gpunet provider` and `gpunet oracle` share (ProviderRegistry and
OracleHub bond tokens the same way: approve + stake, request_unstake, withdraw after a delay)."""

from __future__ import annotations

from typing import Any

import click

from offchain.cli.common import confirm, send, tokens


def check_balance(h: Any, who: str, amount: int) -> None:
    bal = int(h.token.balanceOf(who))
    if bal < amount:
        raise click.ClickException(
            f"{who} holds {tokens(bal)} GPU, {tokens(amount - bal)} short of {tokens(amount)}: get tokens first"
        )


def approve_and_stake(h: Any, acct: Any, contract: Any, amount: int) -> Any:
    """approve (only if the allowance is short), then `contract.stake`: a clear two-step sequence.
    Returns the stake transaction."""
    if int(h.token.allowance(acct.address, contract.address)) < amount:
        send("approve", h.token.approve, contract.address, amount, sender=acct)
    return send("stake", contract.stake, amount, sender=acct)


def withdraw_unbonded(h: Any, acct: Any, yes: bool, *, amount: int, release: int, withdraw: Any, group: str) -> Any:
    """Pays out `amount` once `release` has passed; one line saying what to do otherwise."""
    if not amount:
        raise click.ClickException(f"{acct.address} has nothing unbonding: `gpunet {group} unstake AMOUNT` first")
    now = int(h.chain.blocks.head.timestamp)
    if now < release:
        raise click.ClickException(f"still unbonding: {tokens(amount)} GPU is released in {release - now} s")
    confirm(yes, f"withdraw {tokens(amount)} GPU to {acct.address}")
    return send("withdraw", withdraw, sender=acct)
