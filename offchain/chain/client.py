"""Contract handles for a recorded deployment (deployments/<network>.json), through ape."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offchain.chain.deploy import DEPLOYMENTS_DIR, deployment_path, load_record

DEPLOYMENT_ENV = "GPUNET_DEPLOYMENT"


class DeploymentNotFound(RuntimeError):
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


def parse_network(choice: str) -> tuple[str, str, str | None]:
    parts = choice.split(":")
    if len(parts) < 2:
        raise ValueError(f"network {choice!r}: expected ECOSYSTEM:NETWORK[:PROVIDER], e.g. ethereum:local:foundry")
    return parts[0], parts[1], parts[2] if len(parts) > 2 else None


@contextlib.contextmanager
def connect(network_choice: str) -> Iterator[Handles]:
    """Connects ape to `network_choice` and yields handles to the recorded contracts."""
    from ape import chain, networks, project

    ecosystem, network, provider = parse_network(network_choice)
    # GPUNET_DEPLOYMENT names another record file: tests and side-by-side devnets use it so
    # their processes never read (or race on) the shared deployments/<network>.json.
    override = os.environ.get(DEPLOYMENT_ENV)
    path = Path(override) if override else deployment_path(ecosystem, network, provider)
    record = load_record(path)
    if record is None:
        known = sorted(p.name for p in DEPLOYMENTS_DIR.glob("*.json"))
        raise DeploymentNotFound(
            f"no deployment recorded at {path}: run `ape run deploy --network {network_choice}` first"
            + (f" (recorded: {', '.join(known)})" if known else "")
        )
    with networks.parse_network_choice(network_choice):
        if chain.chain_id != record["chain_id"]:
            raise DeploymentNotFound(
                f"{path.name} is for chain {record['chain_id']} but {network_choice} is chain {chain.chain_id}: "
                "redeploy with `ape run deploy --redeploy`"
            )
        c = record["contracts"]
        for name, addr in c.items():
            if not chain.provider.get_code(addr):
                raise DeploymentNotFound(f"{name} at {addr} has no code on this chain: redeploy")
        yield Handles(
            record=record,
            token=project.ComputeToken.at(c["ComputeToken"]),
            registry=project.ProviderRegistry.at(c["ProviderRegistry"]),
            market=project.JobMarket.at(c["JobMarket"]),
            hub=project.OracleHub.at(c["OracleHub"]),
            chain=chain,
            price_feed=project.PriceFeed.at(c["PriceFeed"]) if "PriceFeed" in c else None,
            emissions=project.Emissions.at(c["Emissions"]) if "Emissions" in c else None,
            settlement=project.Settlement.at(c["Settlement"]) if "Settlement" in c else None,
        )
