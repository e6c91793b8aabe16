"""`gpunet`: one command line for every role.

    gpunet provider …   stake, register and serve machines, offer, status, jobs, earnings
    gpunet job …        submit, list, show, logs, result, dispute, cancel, expire
    gpunet oracle …     run an operator, stake, status
    gpunet info | price | rewards | bench | devnet | sim | explorer

One module per role (provider, job, oracle, market, bench, devnet); options, the config file
and the account lookup they share are in `common`, error reporting in `errors`.
"""

from __future__ import annotations

import os
import sys
import warnings

import click

# Modules, not their click objects: `offchain.cli.provider` stays the module (the group is
# `offchain.cli.provider.provider`).
from offchain.cli import bench as _bench
from offchain.cli import devnet as _devnet
from offchain.cli import explorer as _explorer
from offchain.cli import job as _job
from offchain.cli import keys as _keys
from offchain.cli import market as _market
from offchain.cli import oracle as _oracle
from offchain.cli import provider as _provider


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gpunet")
@click.option("--debug", is_flag=True, help="Show tracebacks and ape's log (env GPUNET_DEBUG=1).")
def cli(debug: bool) -> None:
    """gpunet: an open, verifiable market for GPU compute.

    Settings come from flags, then environment variables (GPUNET_NETWORK, GPUNET_RPC,
    GPUNET_DEPLOYMENT, GPUNET_ACCOUNT), then ./gpunet.toml or ~/.config/gpunet/config.toml.
    """
    from offchain.cli.common import quiet_ape

    quiet_ape()


for _cmd in (
    _provider.provider, _job.job, _oracle.oracle, _market.info, _market.price, _market.rewards, _bench.bench,
    _devnet.devnet, _keys.keys_group, _explorer.explorer,
):  # fmt: skip
    cli.add_command(_cmd)
import offchain.cli.orders  # noqa: E402, F401 - adds job sign-order, provider fill
import offchain.cli.reports  # noqa: E402, F401 - adds job list/logs, provider jobs/earnings to their groups
import offchain.cli.serve  # noqa: E402, F401 - adds provider serve

# `gpunet sim` (offchain/sim/): the token-economy simulation on the real contracts.
from offchain.sim.cli import sim as _sim  # noqa: E402

cli.add_command(_sim)


def main(args: list[str] | None = None) -> int:
    """The `gpunet` entry point: exit 0, 1 (runtime failure) or 2 (usage error); one line per error."""
    from offchain.cli.common import load_config
    from offchain.cli.errors import run

    argv = sys.argv if args is None else args
    # Library warnings (pydantic, ape) are not for a user's console; --debug shows them.
    if "--debug" not in argv:
        warnings.filterwarnings("ignore")
    try:
        defaults = load_config(cli)
    except click.UsageError as e:
        click.echo(f"gpunet: {e.format_message()}", err=True)
        sys.exit(2)
    cli.context_settings["default_map"] = defaults
    # Neither ape's in-process test chain nor its query cache, unless a flag, GPUNET_NETWORK or
    # the config asks for that chain: ~1.1 s of CPU less in every command that connects
    # (chain/ape_compat.py).
    if not any(":test" in str(v) for v in (*argv, os.environ.get("GPUNET_NETWORK", ""), defaults)):
        from offchain.chain.ape_compat import without_unused_plugins

        without_unused_plugins()
    sys.exit(run(cli, args))


__all__ = ["cli", "main"]
