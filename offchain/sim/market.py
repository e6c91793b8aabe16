"""The token's spot market: a constant-product pool (x · y = k) of USD and tokens.

Price model (documented in docs/ECONOMICS.md, "Simulation"): the only price-setting flows are
the simulated agents' trades against one pool holding `usd` dollars and the pool account's
on-chain token balance. Users buy the tokens they escrow (buy pressure), providers sell a share
of their token income (sell pressure), the wash trader buys and sells, and a speculator adds a
zero-mean random net flow each epoch (`speculative_noise_usd`). So the price rises when net
buying is positive and falls when it is negative, with the elasticity of a constant-product
pool: buying dx dollars moves the price by the factor ((x + dx) / x)². Burned tokens never
return to the pool, which is how burns support the price here. Tokens move on-chain
(ComputeToken.transfer from/to the pool account); the USD side is a Python float.
"""

from __future__ import annotations

import boa

from offchain.constants import ONE_TOKEN


class ConstantProductPool:
    def __init__(self, token, pool_address: str, usd: float):
        self.token = token
        self.address = pool_address
        self.usd = float(usd)
        self.tokens_wei = int(token.balanceOf(pool_address))

    @property
    def tokens(self) -> float:
        return self.tokens_wei / ONE_TOKEN

    def price(self) -> float:
        """USD per token at the margin."""
        return self.usd / self.tokens

    def buy_exact(self, buyer: str, out_wei: int) -> float:
        """`buyer` receives exactly `out_wei` tokens; returns the USD it pays."""
        if out_wei <= 0:
            return 0.0
        if out_wei >= self.tokens_wei:
            raise ValueError("pool: not enough tokens")
        t = self.tokens
        cost = self.usd * t / (t - out_wei / ONE_TOKEN) - self.usd
        self.usd += cost
        self._transfer_out(buyer, out_wei)
        return cost

    def buy_with_usd(self, buyer: str, usd_in: float) -> int:
        """`buyer` spends `usd_in` dollars; returns the tokens (wei) it receives."""
        if usd_in <= 0:
            return 0
        t = self.tokens
        out = t - self.usd * t / (self.usd + usd_in)
        out_wei = int(out * ONE_TOKEN)
        self.usd += usd_in
        self._transfer_out(buyer, out_wei)
        return out_wei

    def sell(self, seller: str, in_wei: int) -> float:
        """`seller` sells `in_wei` tokens; returns the USD it receives."""
        if in_wei <= 0:
            return 0.0
        t = self.tokens
        usd_out = self.usd - self.usd * t / (t + in_wei / ONE_TOKEN)
        with boa.env.prank(seller):
            self.token.transfer(self.address, in_wei)
        self.tokens_wei += in_wei
        self.usd -= usd_out
        return usd_out

    def _transfer_out(self, to: str, amount: int) -> None:
        with boa.env.prank(self.address):
            self.token.transfer(to, amount)
        self.tokens_wei -= amount
