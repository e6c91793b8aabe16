"""Contract handles for a recorded deployment, through ape.

`connect()` is what every command and service goes through:
- a local network's node URL is `rpc`, else $APE_FOUNDRY_HOST, else http://127.0.0.1:8545; it is
  probed first (a few seconds), so a node that is down is one clear error, never ape starting an
  anvil of its own or waiting half a minute;
- the record is `deployment` (a file), else $GPUNET_DEPLOYMENT, else the record for this network
  (for a local node: for its chain id and genesis hash, see `deploy.deployment_path`);
- the record must be for this chain and every recorded contract must have code.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offchain.chain.deploy import (
    DEPLOYMENTS_DIR,
    LOCAL_NETWORKS,
    connected_deployment_path,
    deployment_path,
    load_record,
)
from offchain.chain.market_abi import market_at

DEPLOYMENT_ENV = "GPUNET_DEPLOYMENT"
DEFAULT_LOCAL_RPC = "http://127.0.0.1:8545"
PROBE_TIMEOUT_S = 3.0
# How often a process asks for a sent transaction's receipt (ape's own default is 0.1 s: about ten
# calls per transaction on 1 s blocks). The first ask is immediate either way.
RECEIPT_POLL_S = float(os.environ.get("GPUNET_RECEIPT_POLL_S") or 0.5)


class DeploymentNotFound(RuntimeError):
    pass


class BadDeploymentFile(DeploymentNotFound):
    """The record named by --deployment / $GPUNET_DEPLOYMENT is missing or is not a record: a usage
    error, found before any node is asked."""


class NodeUnreachable(RuntimeError):
    pass


@dataclass
class Handles:
    record: dict
    token: Any
    registry: Any
    market: Any
    hub: Any
    chain: Any
    # None for a deployment recorded before PriceFeed existed.
    price_feed: Any = None
    # None for a deployment recorded before Emissions existed.
    emissions: Any = None
    # Burn-and-mint settlement (prices jobs in USD); None for a deployment recorded before it.
    settlement: Any = None
    # The audit draw's commit-reveal beacon (AuditBeacon).
    beacon: Any = None
    # Accounts' encryption keys for sealed job data (KeyDirectory); None for a deployment
    # recorded before it.
    key_directory: Any = None


def parse_network(choice: str) -> tuple[str, str, str | None]:
    parts = choice.split(":")
    if len(parts) < 2 or not all(parts[:2]):
        raise ValueError(f"network {choice!r}: expected ECOSYSTEM:NETWORK[:PROVIDER], e.g. ethereum:local:foundry")
    return parts[0], parts[1], parts[2] if len(parts) > 2 else None


def is_local(network_choice: str) -> bool:
    return parse_network(network_choice)[1] in LOCAL_NETWORKS


def local_rpc(rpc: str | None = None) -> str:
    return (rpc or os.environ.get("APE_FOUNDRY_HOST") or DEFAULT_LOCAL_RPC).rstrip("/")


def probe_rpc(url: str, timeout: float = PROBE_TIMEOUT_S) -> int:
    """The chain id the node at `url` answers with; NodeUnreachable (one line) otherwise."""
    import requests

    try:
        r = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=timeout)
        return int(r.json()["result"], 16)
    except requests.RequestException as e:
        kind = "timed out" if isinstance(e, requests.Timeout) else "refused or unreachable"
        raise NodeUnreachable(
            f"no node answers at {url} ({kind}): start one with `gpunet devnet`, or pass --rpc URL"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise NodeUnreachable(f"{url} is not an Ethereum JSON-RPC node (no eth_chainId answer)") from None


def check_network(ecosystem: str, network: str) -> None:
    """ape's NetworkError (one line, with the options) for an ecosystem or network ape does not know."""
    from ape import networks

    networks.get_ecosystem(ecosystem).get_network(network)


def record_path(network_choice: str, deployment: str | Path | None = None) -> Path | None:
    """The explicit record file (argument or $GPUNET_DEPLOYMENT), or None: found after connecting."""
    explicit = deployment or os.environ.get(DEPLOYMENT_ENV)
    return Path(explicit).expanduser() if explicit else None


def _load(path: Path, hint: str, error: type[DeploymentNotFound] = DeploymentNotFound) -> dict:
    try:
        record = load_record(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path} is not a deployment record (bad JSON: {e})") from None
    except OSError as e:  # no permission, a special file
        raise error(f"{path}: cannot read it ({e.strerror or type(e).__name__}): {hint}") from None
    if record is None:
        if path.is_dir():
            raise error(f"{path} is a directory, not a deployment record: {hint}")
        if error is BadDeploymentFile:
            raise error(f"{path}: no such file ({hint})")
        raise error(f"no deployment recorded at {path}: {hint}")
    if not isinstance(record, dict) or "contracts" not in record or "chain_id" not in record:
        raise error(f"{path} is not a deployment record (no contracts/chain_id)")
    return record


@contextlib.contextmanager
def connect(network_choice: str, *, deployment: str | Path | None = None, rpc: str | None = None) -> Iterator[Handles]:
    """Connects ape to `network_choice` and yields handles to the recorded contracts."""
    from offchain.chain.project import use_gpunet_project

    ecosystem, network, _ = parse_network(network_choice)
    explicit = record_path(network_choice, deployment)
    if explicit is not None:  # checked before connecting: no node needed to see a missing file
        record = _load(explicit, f"check --deployment / ${DEPLOYMENT_ENV}", BadDeploymentFile)
    elif network not in LOCAL_NETWORKS:  # a public network's record is named by the network: no node needed
        check_network(ecosystem, network)
        explicit = deployment_path(ecosystem, network)
        record = _load(explicit, f"deploy with `ape run deploy --network {network_choice} --account ALIAS`")
    if network in LOCAL_NETWORKS:
        url = local_rpc(rpc)
        probe_rpc(url)
        # ape-foundry connects here instead of starting an anvil of its own.
        os.environ["APE_FOUNDRY_HOST"] = url
        from offchain.chain.ape_compat import receipts_wait_for_blocks

        receipts_wait_for_blocks()
    use_gpunet_project()
    from ape import chain, networks, project

    with networks.parse_network_choice(network_choice):
        if explicit is None:
            path = connected_deployment_path(ecosystem, network)
            known = sorted(p.name for p in path.parent.glob(f"{ecosystem}-{network}*.json"))
            record = _load(
                path,
                f"deploy with `gpunet devnet` (local) or `ape run deploy --network {network_choice}`"
                + (f" (records for other nodes: {', '.join(known)})" if known else ""),
            )
        else:
            path = explicit
        if chain.chain_id != record["chain_id"]:
            raise DeploymentNotFound(
                f"{path.name} is for chain {record['chain_id']} but the node is chain {chain.chain_id}: "
                "wrong --network/--rpc, or redeploy"
            )
        c = record["contracts"]
        for name, addr in c.items():
            if not chain.provider.get_code(addr):
                raise DeploymentNotFound(f"{name} at {addr} ({path.name}) has no code on this chain: redeploy")
        from offchain.chain.ape_compat import bound_gas, poll_receipts_every, skip_code_checks_for

        restore_gas = bound_gas(chain.provider.network)
        skip_code_checks_for(c.values())
        poll_receipts_every(chain.provider.web3, RECEIPT_POLL_S)
        try:
            yield Handles(
                record=record,
                token=project.ComputeToken.at(c["ComputeToken"]),
                registry=project.ProviderRegistry.at(c["ProviderRegistry"]),
                market=market_at(project, c["JobMarket"]),
                hub=project.OracleHub.at(c["OracleHub"]),
                chain=chain,
                price_feed=project.PriceFeed.at(c["PriceFeed"]) if "PriceFeed" in c else None,
                emissions=project.Emissions.at(c["Emissions"]) if "Emissions" in c else None,
                settlement=project.Settlement.at(c["Settlement"]) if "Settlement" in c else None,
                beacon=project.AuditBeacon.at(c["AuditBeacon"]) if "AuditBeacon" in c else None,
                key_directory=project.KeyDirectory.at(c["KeyDirectory"]) if "KeyDirectory" in c else None,
            )
        finally:
            restore_gas()


__all__ = [
    "DEPLOYMENTS_DIR",
    "DEPLOYMENT_ENV",
    "BadDeploymentFile",
    "DeploymentNotFound",
    "Handles",
    "NodeUnreachable",
    "connect",
]
