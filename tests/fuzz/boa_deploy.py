"""Deployment shared by the titanoboa fuzz machines: the token, the registry and a price quorum
(OracleHub with three staked operators, threshold 2, and a PriceFeed on it), and the audit
draw's beacon with members that committed their hash chains. Each machine then adds what it
exercises (AuditBeacon + JobMarket + Settlement, or Settlement + Emissions)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import boa
from eth_account import Account

from offchain.params import UNBONDING_PERIOD_SECONDS, OracleParams, PriceFeedParams


def deploy_quorum(contracts: Path, op_keys: list[bytes], price_params: PriceFeedParams) -> SimpleNamespace:
    """tok, reg, hub, ops (eth_account accounts sorted by address, each staked and an operator)
    and feed, deployed from the current boa.env sender (which owns and administers them)."""
    tok = boa.load(str(contracts / "ComputeToken.vy"), "gpunet Compute", "GPU", "gpunet", "1")
    reg = boa.load(str(contracts / "ProviderRegistry.vy"), tok.address, UNBONDING_PERIOD_SECONDS)
    op_params = OracleParams()
    hub = boa.load(
        str(contracts / "OracleHub.vy"),
        tok.address,
        reg.address,
        op_params.min_operator_stake,
        op_params.hardware_slash_bps,
        op_params.equivocation_slash_bps,
    )
    ops = sorted((Account.from_key(k) for k in op_keys), key=lambda a: int(a.address, 16))
    for op in ops:
        tok.mint(op.address, op_params.min_operator_stake)
        with boa.env.prank(op.address):
            tok.approve(hub.address, op_params.min_operator_stake)
            hub.stake(op_params.min_operator_stake)
        hub.add_operator(op.address)
    hub.set_threshold(2)
    feed = boa.load(str(contracts / "PriceFeed.vy"), hub.address, *price_params.as_tuple())
    return SimpleNamespace(tok=tok, reg=reg, hub=hub, ops=ops, feed=feed)


def deploy_beacon(contracts: Path, round_seconds: int, reveal_window: int, commitments: dict[str, bytes]):
    """AuditBeacon, administered by the current boa.env sender, as deploy_all deploys it: every
    address of `commitments` is added as a member and commits its chain's v_0 (both apply two
    rounds on: the caller moves time on before jobs are drawn from the members' rounds)."""
    beacon = boa.load(str(contracts / "AuditBeacon.vy"), round_seconds, reveal_window)
    for member, commitment in commitments.items():
        beacon.add_member(member)
        with boa.env.prank(member):
            beacon.commit(commitment)
    return beacon
