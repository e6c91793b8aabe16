"""Deploy gpunet: `ape run deploy --network ethereum:local:foundry` (or any network ape knows).

Deploys ComputeToken, ProviderRegistry, OracleHub, PriceFeed, Settlement, JobMarket and
Emissions (plus a governance Timelock outside local networks), wires the roles and writes
deployments/<ecosystem>-<network>.json (a local node:
...-local-<chain id>-<genesis>.json). Running it again reuses a recorded deployment whose contracts
still exist on that chain, unless --redeploy.
Outside local networks the signer comes from `--account ALIAS` (ape accounts), never a key in code.
"""

import json

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

from offchain.chain.deploy import LOCAL_NETWORKS, connected_deployment_path, deploy_all, load_record, record_is_live


@click.command(cls=ConnectedProviderCommand, short_help="Deploy the gpunet contracts")
@click.option("--redeploy", is_flag=True, help="Deploy again even if deployments/<network>.json is live.")
@click.option("--account", "alias", default=None, help="ape account alias to deploy from (required off local).")
@click.option("--guardian", default=None, help="Address given PAUSER_ROLE (default: the deployer).")
@click.option(
    "--price-max-age",
    default=3600,
    show_default=True,
    type=click.IntRange(60, 7 * 86400),
    help="Oldest PriceFeed answer (seconds) Settlement prices a job on.",
)
def cli(ecosystem, network, provider, redeploy, alias, guardian, price_max_age):
    local = network.name in LOCAL_NETWORKS
    # A local node's record is keyed by its chain id and genesis hash: two anvils never share one.
    path = connected_deployment_path(ecosystem.name, network.name)
    record = load_record(path)
    if record and not redeploy and record_is_live(record, chain.chain_id, lambda a: provider.get_code(a)):
        click.echo(f"Already deployed on chain {record['chain_id']} (see {path}); pass --redeploy to deploy again.")
        click.echo(json.dumps(record["contracts"], indent=2))
        return
    if alias:
        deployer = accounts.load(alias)
    elif local:
        deployer = accounts.test_accounts[0]
    else:
        raise click.UsageError(f"network {network.name!r} is not local: pass --account ALIAS (see `ape accounts list`)")
    d = deploy_all(
        project,
        deployer,
        local=local,
        guardian=guardian,
        settlement_max_age=price_max_age,
        record_path=path,
        chain_id=chain.chain_id,
    )
    click.echo(f"Deployed to chain {chain.chain_id}; recorded in {path.relative_to(path.parents[1])}")
    click.echo(json.dumps(d.record["contracts"], indent=2))
