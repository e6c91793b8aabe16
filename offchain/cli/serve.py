"""`gpunet provider serve`: the provider's agent (hardware challenges and blobs over HTTP) and,
with a signer and --state-dir, its job worker. Registered on the `gpunet provider` group."""

from __future__ import annotations

import sys

import click

from offchain.cli.common import ADDRESS, GPU_CLASS, Chain, Signer, account, chain_options, signer_options
from offchain.cli.provider import JOB_CHEATS, provider


@provider.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", default=9650, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.option(
    "--provider-address",
    default=None,
    type=ADDRESS,
    help="The provider's account address (reported on /health); defaults to the signer's.",
)
@click.option(
    "--claim", required=True, type=GPU_CLASS, help="Claimed GPU class, id or name (e.g. 1, CPU, 10, 'H100 SXM5')."
)
@click.option(
    "--cheat",
    type=click.Choice(["wrong-challenge", "slow", *JOB_CHEATS]),
    default=None,
    help="Misbehave on purpose (demos/tests). Hardware challenges: wrong-challenge (corrupt the product), "
    "slow (answer late). Jobs (needs the job worker): wrong-output (perturb outputs), skip-work (return "
    "noise), cheaper-model (less precise/smaller computation).",
)
@click.option(
    "--slow-delay", default=2.0, show_default=True, type=click.FloatRange(0), help="Seconds --cheat slow sleeps."
)
@click.option("--device", default=None, help="torch device, e.g. cuda:0 or cpu (default: cuda if present).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory for blobs and the job worker's SQLite state (default: blobs in a temporary directory).",
)
@click.option("--max-blob-mb", default=64, show_default=True, type=click.IntRange(1), help="Largest blob accepted.")
@click.option(
    "--blob-quota-mb",
    default=1024,
    show_default=True,
    type=click.IntRange(1),
    help="Most blob data one account may keep here (signed uploads; freed as its jobs end).",
)
@click.option(
    "--blob-retention-hours",
    default=168.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Hours a job's blobs stay after the job is final (then they are deleted).",
)
@click.option(
    "--open-blobs",
    is_flag=True,
    help="Serve blobs to anyone holding a hash, unsigned (default with the job worker: only the job's "
    "user, this provider and the oracle operators, with signed requests).",
)
@signer_options
@chain_options
@click.option(
    "--public-url",
    default=None,
    help="Base URL put in result URIs (default: the machine's registered endpoint).",
)
@click.option(
    "--poll",
    "poll_s",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.05),
    help="Job worker poll interval (s).",
)
@click.option(
    "--max-pending",
    default=4,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Most accepted jobs not yet delivered; the worker accepts up to this many at once (one "
    "accept_jobs transaction) and delivers them together (one submit_results). Jobs run one "
    "after another: raise it only as far as their completion deadlines allow.",
)
@click.option(
    "--claim-every",
    "claim_every_s",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Claim credited job pay at most this often (s); 0: at every cycle with credit. One claim "
    "(~108k gas) pays every job finalized since the last one and frees their collateral (locked "
    "until then, like their count towards ending probation).",
)
def provider_serve(
    host: str,
    port: int,
    provider_address: str | None,
    claim: int,
    cheat: str | None,
    slow_delay: float,
    device: str | None,
    state_dir: str | None,
    max_blob_mb: int,
    blob_quota_mb: int,
    blob_retention_hours: float,
    open_blobs: bool,
    signer: Signer,
    chain: Chain,
    public_url: str | None,
    poll_s: float,
    max_pending: int,
    claim_every_s: float,
) -> None:
    """Run the provider agent until Ctrl-C / SIGTERM: hardware challenges and blobs over HTTP,
    plus, with a signer and --state-dir, the job worker (accepts, runs and submits jobs)."""
    import logging
    from pathlib import Path

    from offchain.provider.agent import AgentConfig, run_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if signer.given and state_dir is None:
        raise click.UsageError("the job worker needs --state-dir DIR (its SQLite state and blobs live there)")
    if cheat in JOB_CHEATS and not signer.given:
        raise click.UsageError(
            f"--cheat {cheat} cheats on jobs: run the job worker (--test-account N or --account ALIAS)"
        )
    job_worker = None
    if signer.given:
        from offchain.provider.worker import WorkerConfig, run_worker

        signer_address = account(signer, chain).address
        chain.export()
        if provider_address and provider_address.lower() != signer_address.lower():
            raise click.UsageError(
                f"--provider-address {provider_address} is not the signer's address {signer_address}"
            )
        provider_address = signer_address
        try:
            wcfg = WorkerConfig(
                network=chain.network,
                state_dir=state_dir,
                sender_index=signer.test_account,
                sender_alias=signer.account,
                public_url=public_url,
                cheat=cheat if cheat in JOB_CHEATS else None,
                poll_s=poll_s,
                max_pending=max_pending,
                claim_every_s=claim_every_s,
            )
        except ValueError as e:
            raise click.ClickException(str(e)) from e

        def job_worker(agent, url, stop) -> None:
            run_worker(wcfg, agent, url, stop)

    if not provider_address:
        raise click.UsageError("give --provider-address ADDR (or a signer: --test-account N / --account ALIAS)")
    try:
        config = AgentConfig(
            provider=provider_address,
            claimed_class=claim,
            host=host,
            port=port,
            device=device,
            cheat=cheat if cheat not in JOB_CHEATS else None,
            slow_delay_s=slow_delay,
            blob_dir=str(Path(state_dir) / "blobs") if state_dir else None,
            max_blob_bytes=max_blob_mb << 20,
            blob_auth=job_worker is not None and not open_blobs,
            blob_quota_bytes=blob_quota_mb << 20,
            blob_retention_s=blob_retention_hours * 3600,
        )

        def ready(server) -> None:
            worker = f", job worker as {provider_address}" if job_worker else ""
            click.echo(f"gpunet agent serving on {server.url} (claim {claim}, cheat {cheat or 'none'}{worker})")
            sys.stdout.flush()

        run_forever(config, on_ready=ready, job_worker=job_worker)
    except KeyError as e:
        raise click.ClickException(str(e.args[0])) from e
    except (ValueError, RuntimeError, OSError) as e:
        raise click.ClickException(str(e)) from e
    click.echo("gpunet agent stopped")
