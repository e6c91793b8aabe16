"""`gpunet devnet`: a local chain with gpunet deployed, in one command (for the quickstarts).

Starts anvil on 127.0.0.1:PORT (ape's test mnemonic, so `--test-account N` signs), deploys
every contract from test account 0 (which keeps the admin roles on a local chain), mints
tokens to test accounts 1-9 so they can stake and pay, records the deployment for this node
(deployments/ethereum-local-<chain id>-<genesis>.json) and runs until Ctrl-C.
"""

from __future__ import annotations

import click

from offchain.cli.common import AmountType, emit_json, json_option, out, tokens


@click.command()
@click.option("--port", default=8545, show_default=True, type=click.IntRange(1, 65535), help="anvil's port.")
@click.option("--mint", default="10000", show_default=True, type=AmountType("tokens", allow_zero=True),
              help="Tokens minted to each of test accounts 1-9.")  # fmt: skip
@click.option("--challenge-window", type=click.IntRange(60), default=None,
              help="Seconds a user has to dispute a result (default: the protocol's, one hour).")  # fmt: skip
@click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None, help="anvil's log file.")
@json_option
def devnet(port: int, mint: int, challenge_window: int | None, log_path: str | None, as_json: bool) -> None:
    """Start a local chain with gpunet deployed and funded test accounts; Ctrl-C stops it."""
    import signal
    import threading
    from pathlib import Path

    from offchain.chain.anvil import running_anvil
    from offchain.chain.client import NodeUnreachable, probe_rpc
    from offchain.chain.deploy import connected_deployment_path, deploy_all
    from offchain.chain.project import use_gpunet_project
    from offchain.params import MarketParams

    url = f"http://127.0.0.1:{port}"
    try:
        probe_rpc(url, timeout=1.0)
        raise click.ClickException(f"a node already answers at {url}: stop it, or pass --port N")
    except NodeUnreachable:
        pass
    use_gpunet_project()
    from ape import accounts, chain, networks, project

    stop = threading.Event()
    # Both end the wait below (ape's own SIGINT handler would exit before the record is removed).
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with running_anvil(port=port, log_path=Path(log_path) if log_path else None) as rpc:
        with networks.parse_network_choice("ethereum:local:foundry"):
            deployer = accounts.test_accounts[0]
            path = connected_deployment_path("ethereum", "local")
            status = out.status("deploying the contracts...") if not as_json else None
            if status:
                status.start()
            try:
                params = MarketParams(challenge_window=challenge_window) if challenge_window else None
                d = deploy_all(project, deployer, local=True, params=params, record_path=path, chain_id=chain.chain_id)
                if mint:
                    for i in range(1, 10):
                        d.token.mint(accounts.test_accounts[i].address, mint, sender=deployer)
            finally:
                if status:
                    status.stop()
            info = {
                "rpc": rpc,
                "chain_id": chain.chain_id,
                "deployment": str(path),
                "contracts": d.record["contracts"],
                "admin": deployer.address,
                "funded": {i: accounts.test_accounts[i].address for i in range(1, 10)},
                "minted_each": mint,
            }
            if as_json:
                emit_json(info)
            else:
                out.print(f"gpunet devnet: anvil at {rpc} (chain {chain.chain_id}); deployment recorded in {path}")
                out.print(f"admin (test account 0): {deployer.address}")
                out.print(f"test accounts 1-9 hold {tokens(mint)} GPU each: sign with --test-account N")
                out.print("Ctrl-C stops the chain (its state is lost).")
            click.get_text_stream("stdout").flush()
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    path.unlink(missing_ok=True)  # the chain is gone: its record would only mislead
