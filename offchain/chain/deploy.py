"""Deploying the gpunet contracts with ape and recording them in deployments/<network>.json.

Used by `ape run deploy`, the demo, the benchmark and the test fixtures, so every
deployment is wired the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import keccak

from offchain.chain.market_abi import market_at
from offchain.constants import ONE_TOKEN
from offchain.params import (
    GPU_CLASSES,
    HOUR,
    UNBONDING_PERIOD_SECONDS,
    BeaconParams,
    EmissionsParams,
    MarketParams,
    OracleParams,
    PriceFeedParams,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS_DIR = REPO_ROOT / "deployments"
# Another directory for deployment records (documented in README "Deployments").
DEPLOYMENTS_DIR_ENV = "GPUNET_DEPLOYMENTS_DIR"
ZERO_ADDRESS = "0x" + "00" * 20
# Token wei minted to JobMarket at deployment and never moved (see deploy_all).
MARKET_DUST = 1
LOCAL_NETWORKS = {"local"}
# Two days: long enough for users and providers to react to a parameter change.
TIMELOCK_DELAY_SECONDS = 2 * 24 * 3600


def role(name: str) -> bytes:
    return keccak(text=name)


DEFAULT_ADMIN_ROLE = b"\x00" * 32


@dataclass
class Deployment:
    token: Any
    registry: Any
    market: Any
    hub: Any = None
    timelock: Any | None = None
    record: dict = field(default_factory=dict)
    price_feed: Any = None
    emissions: Any = None
    settlement: Any = None
    beacon: Any = None
    key_directory: Any = None

    def handles(self, chain: Any) -> Any:
        """The SDK's handles (`offchain.chain.client.Handles`) on this deployment, as `connect`
        gives them for a recorded one."""
        from offchain.chain.client import Handles

        return Handles(record=self.record, token=self.token, registry=self.registry, market=self.market,
                       hub=self.hub, chain=chain, price_feed=self.price_feed, emissions=self.emissions,
                       settlement=self.settlement, beacon=self.beacon, key_directory=self.key_directory)  # fmt: skip


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "contracts"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _block_of(txn_hash) -> int | None:
    from ape import chain

    try:
        return chain.get_receipt(txn_hash if isinstance(txn_hash, str) else txn_hash.hex()).block_number
    except Exception:  # noqa: BLE001 - the record stays useful without the block number
        return None


def deployment_path(
    ecosystem: str,
    network: str,
    provider: str | None = None,
    *,
    chain_id: int | None = None,
    genesis_hash: str | None = None,
    directory: Path | None = None,
) -> Path:
    """Where a deployment's record lives: <dir>/<ecosystem>-<network>.json for a public network.

    A local node is keyed by its chain id and genesis block hash
    (<ecosystem>-local-<chain id>-<genesis hash, 12 hex>.json), so two anvils, or one restarted,
    never overwrite each other's record. <dir> is GPUNET_DEPLOYMENTS_DIR or the checkout's deployments/.
    """
    directory = directory or Path(os.environ.get(DEPLOYMENTS_DIR_ENV) or DEPLOYMENTS_DIR)
    name = f"{ecosystem}-{network}"
    if network in LOCAL_NETWORKS:
        if chain_id is None or not genesis_hash:
            raise ValueError("a local node's deployment record is keyed by its chain id and genesis hash")
        name += f"-{chain_id}-{genesis_hash.removeprefix('0x')[:12]}"
    return directory / f"{name}.json"


def connected_deployment_path(ecosystem: str, network: str) -> Path:
    """deployment_path() for the chain ape is connected to now."""
    from ape import chain

    genesis = chain.blocks[0].hash
    genesis_hex = genesis.hex() if isinstance(genesis, bytes) else str(genesis)
    return deployment_path(ecosystem, network, chain_id=chain.chain_id, genesis_hash=genesis_hex)


def load_record(path: Path) -> dict | None:
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def record_is_live(record: dict, chain_id: int, get_code) -> bool:
    """True when the record is for this chain and every recorded contract still has code."""
    if record.get("chain_id") != chain_id:
        return False
    return all(len(get_code(addr)) > 0 for addr in record.get("contracts", {}).values())


def deploy_all(
    project,
    deployer,
    *,
    local: bool,
    params: MarketParams | None = None,
    oracle_params: OracleParams | None = None,
    price_params: PriceFeedParams | None = None,
    operators: list[str] | None = None,
    threshold: int = 1,
    unbonding_period: int = UNBONDING_PERIOD_SECONDS,
    settlement_max_age: int = HOUR,
    guardian: str | None = None,
    attester: str | None = None,
    verifier: str | None = None,
    proposers: list[str] | None = None,
    timelock_delay: int = TIMELOCK_DELAY_SECONDS,
    record_path: Path | None = None,
    chain_id: int | None = None,
    emissions_params: EmissionsParams | None = None,
    seal_minters: bool = True,
    beacon_params: BeaconParams | None = None,
) -> Deployment:
    """Deploys ComputeToken, ProviderRegistry, OracleHub, PriceFeed, Settlement, JobMarket,
    Emissions and KeyDirectory and wires their roles (KeyDirectory has none).

    `settlement_max_age`: the oldest PriceFeed answer Settlement prices a job on (seconds).

    Local networks: the deployer keeps the admin role and, unless others are given, is
    guardian, attester and verifier (the oracle quorum takes the last two over later).
    Other networks: a Timelock is deployed and made admin of everything, the deployer
    renounces its admin roles and hands the token's ownership over.

    `operators` are made OracleHub operators and AuditBeacon members (each must `commit` its hash
    chain before its first round: the oracle service does at start).

    `seal_minters`: fix the token's minter set for good (always, outside tests that deploy an
    extra minter of their own on a local chain; refused on other networks).
    """
    if not seal_minters and not local:
        raise ValueError("the token's minters are always sealed outside local networks")
    params = params or MarketParams()
    oracle_params = oracle_params or OracleParams()
    price_params = price_params or PriceFeedParams()
    txs: dict[str, str] = {}
    sender = {"sender": deployer}

    token = deployer.deploy(project.ComputeToken, "gpunet Compute", "GPU", "gpunet", "1")
    txs["ComputeToken"] = token.txn_hash
    registry = deployer.deploy(project.ProviderRegistry, token.address, unbonding_period)
    txs["ProviderRegistry"] = registry.txn_hash
    hub = deployer.deploy(
        project.OracleHub,
        token.address,
        registry.address,
        oracle_params.min_operator_stake,
        oracle_params.hardware_slash_bps,
        oracle_params.equivocation_slash_bps,
    )
    txs["OracleHub"] = hub.txn_hash
    registry.grantRole(role("ATTESTER_ROLE"), hub.address, **sender)
    registry.grantRole(role("SLASHER_ROLE"), hub.address, **sender)
    for op in operators or []:
        hub.add_operator(op, **sender)
    if threshold != 1:
        hub.set_threshold(threshold, **sender)
    # Token/USD from the same operator quorum (reads OracleHub's operators, stake and threshold).
    price_feed = deployer.deploy(project.PriceFeed, hub.address, *price_params.as_tuple())
    txs["PriceFeed"] = price_feed.txn_hash
    # Burn-and-mint: Settlement prices jobs at the PriceFeed answer and mints providers' pay.
    settlement = deployer.deploy(project.Settlement, token.address, price_feed.address, settlement_max_age)
    txs["Settlement"] = settlement.txn_hash
    # Each accepted round is pushed to Settlement, so a job's quote reads one word and calls no feed.
    price_feed.set_listener(settlement.address, **sender)
    # Parameter bounds live in a pure checker contract (keeps JobMarket under 20,000 bytes).
    params_check = deployer.deploy(project.JobMarketParams)
    txs["JobMarketParams"] = params_check.txn_hash
    # The audit draw's randomness: a commit-reveal among the same operators.
    beacon_params = beacon_params or BeaconParams()
    beacon = deployer.deploy(project.AuditBeacon, *beacon_params.as_tuple())
    txs["AuditBeacon"] = beacon.txn_hash
    for op in operators or []:
        beacon.add_member(op, **sender)
    # JobMarket's paths off the job's hot path, run at JobMarket's address (delegatecall).
    market_ext = deployer.deploy(
        project.JobMarketExt,
        token.address,
        registry.address,
        settlement.address,
        params_check.address,
        beacon.address,
    )
    txs["JobMarketExt"] = market_ext.txn_hash
    deployed = deployer.deploy(
        project.JobMarket,
        token.address,
        registry.address,
        settlement.address,
        params_check.address,
        beacon.address,
        market_ext.address,
        params.as_tuple(),
    )
    txs["JobMarket"] = deployed.txn_hash
    market = market_at(project, deployed.address, deployed.txn_hash)
    settlement.set_job_market(market.address, **sender)
    token.set_minter(settlement.address, True, **sender)
    # One permanent wei in JobMarket: settlement burns every escrow, so without it the market's
    # balance slot would go back to zero after each job and the next create_job would pay a
    # zero -> non-zero SSTORE (20,000 gas instead of 2,900). JobMarket accounts for it
    # (MARKET_DUST): its balance is escrows + open bonds + 1.
    token.mint(market.address, MARKET_DUST, **sender)

    # Audit verdicts come from the oracle quorum: OracleHub posts them to JobMarket.
    hub.set_job_market(market.address, **sender)
    market.grantRole(role("VERIFIER_ROLE"), hub.address, **sender)

    # Set once, not a role: governance can never take the market's collateral rights away.
    registry.set_job_market(market.address, **sender)
    for c in GPU_CLASSES:
        registry.set_gpu_class(c.class_id, c.name, c.min_stake_tokens * ONE_TOKEN, True, **sender)

    guardian = guardian or deployer.address
    registry.grantRole(role("PAUSER_ROLE"), guardian, **sender)
    market.grantRole(role("PAUSER_ROLE"), guardian, **sender)
    if attester or local:
        registry.grantRole(role("ATTESTER_ROLE"), attester or deployer.address, **sender)
    if verifier or local:
        market.grantRole(role("VERIFIER_ROLE"), verifier or deployer.address, **sender)

    # Epoch emissions (reads the hub's operator set for its rewards roots); mints, so it must be
    # made a minter while the deployer still owns the token.
    emissions_params = emissions_params or EmissionsParams()
    emissions = deployer.deploy(
        project.Emissions, *emissions_params.constructor_args(token.address, hub.address, market.address)
    )
    txs["Emissions"] = emissions.txn_hash
    token.set_minter(emissions.address, True, **sender)
    # Equivocation proofs for EpochRewards and PriceObservation ask these two for their digests.
    hub.set_report_contracts(emissions.address, price_feed.address, **sender)
    # The minter set is final from here on (Settlement, Emissions, and on local networks the
    # deployer as a faucet): no governance action can revoke Settlement's right to mint.
    if seal_minters:
        token.seal_minters(**sender)

    timelock = None
    if not local:
        proposers = proposers or [deployer.address]
        timelock = deployer.deploy(project.Timelock, timelock_delay, proposers, proposers, ZERO_ADDRESS)
        txs["Timelock"] = timelock.txn_hash
        for c in (registry, market, hub, settlement, beacon):
            c.grantRole(DEFAULT_ADMIN_ROLE, timelock.address, **sender)
            c.renounceRole(DEFAULT_ADMIN_ROLE, deployer.address, **sender)
        token.transfer_ownership(timelock.address, **sender)
        price_feed.grantRole(DEFAULT_ADMIN_ROLE, timelock.address, **sender)
        price_feed.renounceRole(DEFAULT_ADMIN_ROLE, deployer.address, **sender)

    # Accounts' X25519 keys for sealed job data: no constructor, no roles, no admin (nothing to hand the timelock).
    key_directory = deployer.deploy(project.KeyDirectory)
    txs["KeyDirectory"] = key_directory.txn_hash

    contracts = {
        "ComputeToken": token.address,
        "ProviderRegistry": registry.address,
        "JobMarket": market.address,
        "OracleHub": hub.address,
        "PriceFeed": price_feed.address,
        "Settlement": settlement.address,
        "JobMarketParams": params_check.address,
        "JobMarketExt": market_ext.address,
        "AuditBeacon": beacon.address,
        "KeyDirectory": key_directory.address,
    }
    if timelock is not None:
        contracts["Timelock"] = timelock.address
    record = {
        "chain_id": chain_id,
        "block": _block_of(token.txn_hash),
        "contracts": contracts,
        "tx": {k: (v.hex() if isinstance(v, bytes) else str(v)) for k, v in txs.items()},
        "constructor_args": {
            "ComputeToken": ["gpunet Compute", "GPU", "gpunet", "1"],
            "ProviderRegistry": [token.address, unbonding_period],
            "JobMarketParams": [],
            "AuditBeacon": list(beacon_params.as_tuple()),
            "KeyDirectory": [],
            "JobMarketExt": [
                token.address,
                registry.address,
                settlement.address,
                params_check.address,
                beacon.address,
            ],
            "JobMarket": [
                token.address,
                registry.address,
                settlement.address,
                params_check.address,
                beacon.address,
                market_ext.address,
                params.as_dict(),
            ],
            "OracleHub": [
                token.address,
                registry.address,
                oracle_params.min_operator_stake,
                oracle_params.hardware_slash_bps,
                oracle_params.equivocation_slash_bps,
            ],
            "PriceFeed": [hub.address, *price_params.as_tuple()],
            "Settlement": [token.address, price_feed.address, settlement_max_age],
        },
        "roles": {
            "admin": timelock.address if timelock is not None else deployer.address,
            "guardian": guardian,
            "attester": attester or (deployer.address if local else None),
            "verifier": verifier or (deployer.address if local else None),
            "verdicts": hub.address,
            "oracle_operators": list(operators or []),
            "oracle_threshold": threshold,
        },
        "deployer": deployer.address,
        "vyper_version": "0.4.3",
        "git_commit": _git_commit(),
        "deployed_at": int(time.time()),
    }
    contracts["Emissions"] = emissions.address
    record["constructor_args"]["Emissions"] = list(
        emissions_params.constructor_args(token.address, hub.address, market.address, emissions.GENESIS())
    )
    record["roles"]["minters"] = [settlement.address, emissions.address] + ([deployer.address] if local else [])
    if record_path is not None:
        record_path.parent.mkdir(parents=True, exist_ok=True)
        record_path.write_text(json.dumps(record, indent=2) + "\n")
    return Deployment(
        token=token,
        registry=registry,
        market=market,
        hub=hub,
        timelock=timelock,
        record=record,
        price_feed=price_feed,
        emissions=emissions,
        settlement=settlement,
        beacon=beacon,
        key_directory=key_directory,
    )
