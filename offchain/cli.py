"""`gpunet`: one command line for every role.

Issue 2 ships the read side (deployment, parameters, providers, jobs); the provider agent,
oracle service and user client add their sub-commands in later issues.
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from offchain.constants import ONE_TOKEN, PARAM_FIELDS, JobStatus, MachineStatus

console = Console()
DEFAULT_NETWORK = "ethereum:local:foundry"


def _tokens(wei: int) -> str:
    return f"{wei / ONE_TOKEN:,.6f}"


def _connect(network: str):
    from offchain.chain.client import DeploymentNotFound, connect

    try:
        return connect(network)
    except (DeploymentNotFound, ValueError) as e:
        raise click.ClickException(str(e)) from e


network_option = click.option(
    "--network",
    default=DEFAULT_NETWORK,
    show_default=True,
    envvar="GPUNET_NETWORK",
    help="ape network choice ECOSYSTEM:NETWORK:PROVIDER (env GPUNET_NETWORK).",
)


@click.group()
@click.version_option(package_name="gpunet")
def main() -> None:
    """gpunet: an open, verifiable market for GPU compute."""


@main.command()
@network_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(network: str, as_json: bool) -> None:
    """Show the deployment, protocol parameters and totals."""
    from offchain.chain.client import DeploymentNotFound

    try:
        with _connect(network) as h:
            params = dict(zip(PARAM_FIELDS, h.market.params(), strict=True))
            out = {
                "network": network,
                "chain_id": h.record["chain_id"],
                "contracts": h.record["contracts"],
                "git_commit": h.record.get("git_commit"),
                "params": params,
                "job_count": h.market.job_count(),
                "machine_count": h.registry.machine_count(),
                "fees_accrued": h.market.fees_accrued(),
                "token_supply": h.token.totalSupply(),
                "paused": {"JobMarket": h.market.paused(), "ProviderRegistry": h.registry.paused()},
            }
    except DeploymentNotFound as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    t = Table(title=f"gpunet on {network} (chain {out['chain_id']})", show_header=False)
    for name, addr in out["contracts"].items():
        t.add_row(name, addr)
    for k, v in params.items():
        t.add_row(k, str(v))
    t.add_row("jobs", str(out["job_count"]))
    t.add_row("machines", str(out["machine_count"]))
    t.add_row("token supply", _tokens(out["token_supply"]))
    t.add_row("paused", json.dumps(out["paused"]))
    console.print(t)


@main.group()
def provider() -> None:
    """Provider commands."""


@provider.command("show")
@click.argument("address")
@network_option
def provider_show(address: str, network: str) -> None:
    """Show a provider's stake and machines."""
    with _connect(network) as h:
        s = h.registry.stakes(address)
        t = Table(title=f"provider {address}", show_header=False)
        t.add_row("staked", _tokens(s.staked))
        t.add_row("locked (job collateral)", _tokens(s.locked))
        t.add_row("unbonding", _tokens(s.unbonding))
        t.add_row("unbonding release (unix)", str(s.unbonding_release))
        t.add_row("required stake", _tokens(h.registry.required_stake(address)))
        console.print(t)
        m = Table(title="machines")
        for col in ("id", "class", "gpus", "vram MB", "status", "endpoint"):
            m.add_column(col)
        for log in h.registry.MachineRegistered.range(0, None, search_topics={"provider": address}):
            mid = log.machine_id
            info = h.registry.machines(mid)
            m.add_row(
                str(mid),
                str(info.class_id),
                str(info.gpu_count),
                str(info.vram_mb),
                MachineStatus(info.status).name,
                info.endpoint,
            )
        console.print(m)


@main.group()
def job() -> None:
    """Job commands."""


@job.command("show")
@click.argument("job_id", type=int)
@network_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def job_show(job_id: int, network: str, as_json: bool) -> None:
    """Show a job: status and its full data rebuilt from events (checked against the chain)."""
    from offchain.chain.jobs import job_from_chain

    with _connect(network) as h:
        if job_id < 1 or job_id > h.market.job_count():
            raise click.ClickException(f"job {job_id} does not exist (jobs 1..{h.market.job_count()})")
        data = job_from_chain(h.market, job_id)
        status = JobStatus(h.market.job_status(job_id))
    out = {
        "job_id": job_id,
        "status": status.name,
        **{k: (v.hex() if isinstance(v, bytes) else v) for k, v in data.items()},
    }
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    t = Table(title=f"job {job_id}: {status.name}", show_header=False)
    for k, v in out.items():
        t.add_row(k, str(v))
    console.print(t)


if __name__ == "__main__":
    sys.exit(main())
