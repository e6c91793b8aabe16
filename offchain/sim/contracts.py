"""The simulation's chain: the real contracts deployed into titanoboa's in-process EVM.

`deploy_contracts` wires ComputeToken, ProviderRegistry, OracleHub (N_OPERATORS staked
operators, threshold THRESHOLD), PriceFeed, Settlement (or the Render-style
RenderSettlement.vy), AuditBeacon, JobMarket and Emissions as offchain/chain/deploy.py
`deploy_all(local=True)` wires a local deployment: Settlement is a token minter and JobMarket's
settler, Emissions tapers on JobMarket.total_burned (the escrow of finalized jobs), the oracle
operators are AuditBeacon's members (each commits its hash chain: offchain/sim/beacon.py), and the deployer keeps the
attester and verifier roles (the quorum's stand-in)."""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boa
from boa.interpret import set_cache_dir, set_search_paths
from eth_account import Account
from eth_utils import keccak

from offchain.chain.deploy import MARKET_DUST
from offchain.constants import ONE_TOKEN
from offchain.params import (
    UNBONDING_PERIOD_SECONDS,
    BeaconParams,
    EmissionsParams,
    MarketParams,
    OracleParams,
    PriceFeedParams,
)
from offchain.sim.market_boa import deploy_market
from offchain.sim.model import N_OPERATORS, SETTLEMENT_MAX_AGE, THRESHOLD, Operator
from offchain.sim.scenario import ClassEcon

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "contracts"
RENDER_SETTLEMENT = Path(__file__).resolve().parent / "RenderSettlement.vy"


def setup_boa() -> None:
    set_cache_dir(str(REPO / ".cache" / "titanoboa"))
    set_search_paths([str(CONTRACTS), str(REPO)] + [p for p in sys.path if p and os.path.isdir(p)])


@functools.cache
def _deployer(path: str):
    """A compiled contract, compiled (or read from the disk cache) once per process."""
    return boa.load_partial(path)


def load(path: Path, *args):
    return _deployer(str(path)).deploy(*args)


@dataclass
class Contracts:
    token: Any
    registry: Any
    hub: Any
    feed: Any
    settlement: Any
    beacon: Any
    market: Any
    emissions: Any
    operators: list[Operator]
    chain_id: int


def operator_keys() -> list[Operator]:
    """The quorum's deterministic throwaway keys (they sign on this in-process chain only), by address."""
    keys = [keccak(f"gpunet sim operator {i}".encode()) for i in range(N_OPERATORS)]
    return sorted((Operator(Account.from_key(k).address, k) for k in keys), key=lambda a: int(a.address, 16))


def deploy_contracts(
    variant: str,
    classes: dict[str, ClassEcon],
    emissions: EmissionsParams,
    market_params: MarketParams,
    beacon_params: BeaconParams,
    genesis: int,
) -> Contracts:
    """Deploys and wires everything from the current boa.env sender (the admin) at the current time."""
    env = boa.env
    admin = str(env.eoa)
    tok = load(CONTRACTS / "ComputeToken.vy", "gpunet Compute", "GPU", "gpunet", "1")
    reg = load(CONTRACTS / "ProviderRegistry.vy", tok.address, UNBONDING_PERIOD_SECONDS)
    op = OracleParams()
    hub = load(
        CONTRACTS / "OracleHub.vy",
        tok.address,
        reg.address,
        op.min_operator_stake,
        op.hardware_slash_bps,
        op.equivocation_slash_bps,
    )
    reg.grantRole(reg.ATTESTER_ROLE(), hub.address)
    reg.grantRole(reg.SLASHER_ROLE(), hub.address)
    operators = operator_keys()
    for o in operators:
        tok.mint(o.address, op.min_operator_stake)
        with env.prank(o.address):
            tok.approve(hub.address, op.min_operator_stake)
            hub.stake(op.min_operator_stake)
        hub.add_operator(o.address)
    hub.set_threshold(THRESHOLD)
    feed = load(CONTRACTS / "PriceFeed.vy", hub.address, *PriceFeedParams().as_tuple())
    settlement_src = CONTRACTS / "Settlement.vy" if variant == "bme" else RENDER_SETTLEMENT
    settlement = load(settlement_src, tok.address, feed.address, SETTLEMENT_MAX_AGE)
    if variant == "bme":  # each round pushed to Settlement, as offchain/chain/deploy.py wires it
        feed.set_listener(settlement.address)
    params_check = load(CONTRACTS / "JobMarketParams.vy")
    # The audit draw's randomness: a commit-reveal among the same operators.
    beacon = load(CONTRACTS / "AuditBeacon.vy", *beacon_params.as_tuple())
    for o in operators:
        beacon.add_member(o.address)
    mk = deploy_market(
        CONTRACTS,
        tok.address,
        reg.address,
        settlement.address,
        params_check.address,
        beacon.address,
        market_params.as_tuple(),
    )
    settlement.set_job_market(mk.address)
    tok.set_minter(settlement.address, True)
    tok.mint(mk.address, MARKET_DUST)
    hub.set_job_market(mk.address)
    mk.grantRole(mk.VERIFIER_ROLE(), hub.address)
    reg.set_job_market(mk.address)
    for c in classes.values():
        reg.set_gpu_class(c.class_id, c.name, c.min_stake_tokens * ONE_TOKEN, True)
    reg.grantRole(reg.PAUSER_ROLE(), admin)
    mk.grantRole(mk.PAUSER_ROLE(), admin)
    # Local network: the deployer is attester and verifier (the quorum's stand-in).
    reg.grantRole(reg.ATTESTER_ROLE(), admin)
    mk.grantRole(mk.VERIFIER_ROLE(), admin)
    em = load(
        CONTRACTS / "Emissions.vy",
        *emissions.constructor_args(tok.address, hub.address, mk.address, genesis),
    )
    tok.set_minter(em.address, True)
    return Contracts(
        token=tok,
        registry=reg,
        hub=hub,
        feed=feed,
        settlement=settlement,
        beacon=beacon,
        market=mk,
        emissions=em,
        operators=operators,
        chain_id=int(em.eip712Domain()[3]),
    )
