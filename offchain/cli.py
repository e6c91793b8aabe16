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

# Job cheat modes (offchain/provider/cheats.py); spelled out here so `--help` needs no torch import.
JOB_CHEATS = ("wrong-output", "skip-work", "cheaper-model")

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
                "token_supply": h.token.totalSupply(),
                # Escrow burned by job settlement (fees included); providers are minted their pay.
                "settlement_burned": h.settlement.total_burned() if h.settlement is not None else None,
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
    if out["settlement_burned"] is not None:
        t.add_row("burned by job settlement", _tokens(out["settlement_burned"]))
    t.add_row("paused", json.dumps(out["paused"]))
    console.print(t)


@main.group()
def provider() -> None:
    """Provider commands."""


@provider.command("show")
@click.argument("address")
@network_option
def provider_show(address: str, network: str) -> None:
    """Show a provider's stake, offers and machines, with each machine's latest uptime as the
    oracle quorum reported it (OracleHub; "no report yet" before its first probed epoch ends)."""
    from offchain.client.sdk import fmt_bps, latest_uptime

    with _connect(network) as h:
        s = h.registry.stakes(address)
        t = Table(title=f"provider {address}", show_header=False)
        t.add_row("staked", _tokens(s.staked))
        t.add_row("locked (job collateral)", _tokens(s.locked))
        t.add_row("unbonding", _tokens(s.unbonding))
        t.add_row("unbonding release (unix)", str(s.unbonding_release))
        t.add_row("required stake", _tokens(h.registry.required_stake(address)))
        for cid, name, usd in _offers(h, address):
            t.add_row(f"offer: class {cid} {name}", f"{_usd(usd)} per compute unit")
        console.print(t)
        m = Table(title="machines")
        for col in ("id", "class", "gpus", "vram MB", "status", "uptime (latest report)", "endpoint"):
            m.add_column(col)
        mids = [
            int(lg.machine_id)
            for lg in h.registry.MachineRegistered.range(0, None, search_topics={"provider": address})
        ]
        uptime = latest_uptime(h, mids)
        for mid in mids:
            info = h.registry.machines(mid)
            u = uptime.get(mid)
            m.add_row(
                str(mid),
                str(info.class_id),
                str(info.gpu_count),
                str(info.vram_mb),
                MachineStatus(info.status).name,
                f"{fmt_bps(u.bps)} (epoch {u.epoch}: {u.successes}/{u.probes} probes)" if u else "no report yet",
                info.endpoint,
            )
        console.print(m)


@provider.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", default=9650, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.option(
    "--provider-address",
    default=None,
    help="The provider's account address (reported on /health); defaults to the signer's.",
)
@click.option("--claim", required=True, help="Claimed GPU class, id or name (e.g. 1, CPU, 10, 'H100 SXM5').")
@click.option(
    "--cheat",
    type=click.Choice(["wrong-challenge", "slow", *JOB_CHEATS]),
    default=None,
    help="Misbehave on purpose (demos/tests). Hardware challenges: wrong-challenge (corrupt the product), "
    "slow (answer late). Jobs (needs the job worker): wrong-output (perturb outputs), skip-work (return "
    "noise), cheaper-model (less precise/smaller computation).",
)
@click.option("--slow-delay", default=2.0, show_default=True, type=float, help="Seconds --cheat slow sleeps.")
@click.option("--device", default=None, help="torch device, e.g. cuda:0 or cpu (default: cuda if present).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory for blobs and the job worker's SQLite state (default: blobs in a temporary directory).",
)
@click.option("--max-blob-mb", default=64, show_default=True, type=click.IntRange(1), help="Largest blob accepted.")
@click.option(
    "--test-account",
    type=int,
    default=None,
    help="Local chains: ape test account N signs job transactions (starts the job worker, with --state-dir).",
)
@click.option("--account", "alias", default=None, help="ape account alias that signs job transactions.")
@network_option
@click.option(
    "--public-url",
    default=None,
    help="Base URL put in result URIs (default: the machine's registered endpoint).",
)
@click.option("--poll", "poll_s", default=1.0, show_default=True, type=float, help="Job worker poll interval (s).")
def provider_serve(
    host: str,
    port: int,
    provider_address: str | None,
    claim: str,
    cheat: str | None,
    slow_delay: float,
    device: str | None,
    state_dir: str | None,
    max_blob_mb: int,
    test_account: int | None,
    alias: str | None,
    network: str,
    public_url: str | None,
    poll_s: float,
) -> None:
    """Run the provider agent until Ctrl-C / SIGTERM: hardware challenges and blobs over HTTP,
    plus, with a signer and --state-dir, the job worker (accepts, runs and submits jobs)."""
    import logging
    from pathlib import Path

    from offchain.provider.agent import AgentConfig, run_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signer = test_account is not None or alias is not None
    if test_account is not None and alias is not None:
        raise click.UsageError("give either --test-account or --account, not both")
    if signer and state_dir is None:
        raise click.UsageError("the job worker needs --state-dir DIR (its SQLite state and blobs live there)")
    if cheat in JOB_CHEATS and not signer:
        raise click.UsageError(
            f"--cheat {cheat} cheats on jobs: run the job worker (--test-account N or --account ALIAS)"
        )
    job_worker = None
    if signer:
        from offchain.provider.worker import WorkerConfig, run_worker

        signer_address = _signer_address(test_account, alias)
        if provider_address and provider_address.lower() != signer_address.lower():
            raise click.UsageError(
                f"--provider-address {provider_address} is not the signer's address {signer_address}"
            )
        provider_address = signer_address
        try:
            wcfg = WorkerConfig(
                network=network,
                state_dir=state_dir,
                sender_index=test_account,
                sender_alias=alias,
                public_url=public_url,
                cheat=cheat if cheat in JOB_CHEATS else None,
                poll_s=poll_s,
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


def _usd(v: int) -> str:
    from offchain.client.sdk import fmt_usd

    return fmt_usd(v)


def _offers(h, address: str) -> list[tuple[int, str, int]]:
    """(class id, name, USD per unit) of the provider's current offers."""
    from offchain.params import GPU_CLASSES

    out = []
    for c in GPU_CLASSES:
        usd = int(h.registry.offers(address, c.class_id))
        if usd:
            out.append((c.class_id, c.name, usd))
    return out


@provider.command("offer")
@click.argument("class_opt", metavar="CLASS")
@click.argument("usd_per_unit", metavar="USD_PER_UNIT")
@click.option("--test-account", type=int, default=None, help="Local chains: ape test account N (the provider) signs.")
@click.option("--account", "alias", default=None, help="ape account alias of the provider.")
@network_option
def provider_offer(class_opt: str, usd_per_unit: str, test_account, alias, network: str) -> None:
    """Offer a GPU class (id or name) at USD_PER_UNIT US dollars per compute unit, a decimal
    (e.g. 0.002); 0 withdraws the offer. Jobs escrow the tokens this USD value buys at the
    on-chain token/USD price; the provider is minted the USD value minus the network fee."""
    from decimal import Decimal, InvalidOperation

    from offchain.benchmark.gpu_classes import get_class
    from offchain.client.cli import _account
    from offchain.client.sdk import ClientError, parse_usd

    try:
        cid = get_class(class_opt).class_id
    except KeyError as e:
        raise click.BadParameter(str(e.args[0])) from None
    try:
        withdraw = Decimal(usd_per_unit.strip().lstrip("$")) == 0
    except InvalidOperation:
        withdraw = False
    try:
        usd = 0 if withdraw else parse_usd(usd_per_unit, "USD_PER_UNIT")
    except ClientError as e:
        raise click.BadParameter(str(e)) from None
    with _connect(network) as h:
        acct = _account(test_account, alias)
        try:
            tx = h.registry.set_offer(cid, usd, sender=acct)
        except Exception as e:  # noqa: BLE001 - a revert: the contract's reason
            raise click.ClickException(f"set_offer reverted: {getattr(e, 'message', None) or e}") from e
    what = f"{_usd(usd)} per compute unit" if usd else "withdrawn"
    click.echo(f"offer for class {cid} by {acct.address}: {what}; tx {tx.txn_hash}")


def _signer_address(test_account: int | None, alias: str | None) -> str:
    """The address behind --test-account N / --account ALIAS (no passphrase needed for that)."""
    from ape import accounts

    try:
        if test_account is not None:
            return accounts.test_accounts[test_account].address
        return accounts.load(alias).address
    except (IndexError, KeyError) as e:
        raise click.UsageError(f"no such account: {e}") from e
    except Exception as e:  # noqa: BLE001 - ape's AccountsError for an unknown alias
        raise click.UsageError(f"cannot load account {alias!r}: {e} (see `ape accounts list`)") from e


@main.group()
def oracle() -> None:
    """Oracle operator commands."""


def _parse_peer(value: str) -> tuple[str, str]:
    if "=" not in value:
        raise click.BadParameter(f"{value!r}: expected ADDRESS=URL, e.g. 0xabc...=http://10.0.0.2:9700")
    addr, url = value.split("=", 1)
    if not (addr.startswith("0x") and len(addr) == 42):
        raise click.BadParameter(f"{addr!r} is not a 0x-prefixed 20-byte address")
    return addr, url.rstrip("/")


@oracle.command("run")
@network_option
@click.option(
    "--key-env",
    default="GPUNET_OPERATOR_KEY",
    show_default=True,
    help="Environment variable holding the operator's hex private key (signs reports).",
)
@click.option(
    "--test-account",
    type=int,
    default=None,
    help="Local chains: use ape test account N as the operator key and transaction sender.",
)
@click.option("--account", "alias", default=None, help="ape account alias that pays for submissions.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9700, show_default=True, type=int)
@click.option("--peer", "peers", multiple=True, help="Another operator, ADDRESS=URL (repeat for each).")
@click.option("--db", "db_path", default="oracle.sqlite", show_default=True, help="SQLite state file.")
@click.option("--poll", "poll_s", default=1.0, show_default=True, type=float)
@click.option("--ttl", "ttl_s", default=24 * 3600, show_default=True, type=int, help="Attestation validity (s).")
@click.option("--leader-timeout", default=30.0, show_default=True, type=float)
@click.option("--epoch-seconds", default=3600, show_default=True, type=int)
@click.option(
    "--memory-fraction",
    default=0.85,
    show_default=True,
    type=float,
    help="Share of the registered VRAM the memory proof fills.",
)
@click.option(
    "--network-allowance",
    default=0.25,
    show_default=True,
    type=float,
    help="Seconds allowed for the network round trip of a challenge.",
)
@click.option(
    "--gpu-n", type=int, default=None, help="Matrix size of GPU-class challenges (default: from the 4 s round budget)."
)
@click.option(
    "--confirm-delay",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds between a FAIL challenge and the leader's confirming one (a FAIL is proposed only if both fail).",
)
@click.option(
    "--audit-device", default=None, help="Device that re-executes audited jobs (default: cuda when present, else cpu)."
)
@click.option(
    "--audit-fetch-timeout",
    default=60.0,
    show_default=True,
    type=float,
    help="Seconds a provider has to serve a job's blobs during an audit before they count as withheld.",
)
@click.option(
    "--price-source",
    default=None,
    help="Token/USD source for PriceFeed rounds: fixed:1.25 | file:PATH (a number, re-read each time) | "
    'url:http://... (JSON {"usd": x}). Without it this operator takes no part in price rounds.',
)
@click.option("--price-interval", "price_interval_s", default=60.0, show_default=True, type=float,
              help="Seconds between price rounds.")  # fmt: skip
@click.option(
    "--emissions-epochs",
    is_flag=True,
    help="Uptime epochs are Emissions' epochs (GENESIS, EPOCH_SECONDS read from the contract; overrides "
    "--epoch-seconds): needed for the availability part of the epoch rewards roots.",
)
@click.option(
    "--probes-per-epoch", default=6, show_default=True, type=click.IntRange(1), help="Uptime probes per epoch."
)
@click.option(
    "--rewards-delay",
    "rewards_delay_s",
    default=600.0,
    show_default=True,
    type=float,
    help="Seconds after an Emissions epoch ends before its rewards root is proposed.",
)
@click.option(
    "--price-deviation-bps",
    default=100,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Round early when the own source moved this much from the last answer.",
)
@click.option("-v", "--verbose", is_flag=True)
def oracle_run(
    network,
    key_env,
    test_account,
    alias,
    host,
    port,
    peers,
    db_path,
    poll_s,
    ttl_s,
    leader_timeout,
    epoch_seconds,
    memory_fraction,
    network_allowance,
    gpu_n,
    confirm_delay,
    audit_device,
    audit_fetch_timeout,
    price_source,
    price_interval_s,
    price_deviation_bps,
    emissions_epochs,
    probes_per_epoch,
    rewards_delay_s,
    verbose,
) -> None:
    """Run an oracle operator: challenge machines, audit jobs, co-sign with peers, submit reports."""
    import logging
    import os

    from offchain.oracle.service import CircuitBreaker, OracleConfig, OracleService

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    logging.getLogger("gpunet.oracle").setLevel(logging.INFO)
    if test_account is not None:
        from ape import accounts

        key = accounts.test_accounts[test_account].private_key
    else:
        key = os.environ.get(key_env)
        if not key:
            raise click.UsageError(f"set ${key_env} to the operator's private key, or pass --test-account N")
    cfg = OracleConfig(
        network=network,
        operator_key=key,
        sender_index=test_account,
        sender_alias=alias,
        host=host,
        port=port,
        peers=dict(_parse_peer(p) for p in peers),
        db_path=db_path,
        poll_s=poll_s,
        attestation_ttl_s=ttl_s,
        leader_timeout_s=leader_timeout,
        epoch_seconds=epoch_seconds,
        challenge_kwargs={"memory_fraction": memory_fraction, "network_allowance_s": network_allowance},
        gpu_challenge_n=gpu_n,
        confirm_delay_s=confirm_delay,
        audit_device=audit_device,
        audit_fetch_timeout_s=audit_fetch_timeout,
        price_source=price_source,
        price_interval_s=price_interval_s,
        price_deviation_bps=price_deviation_bps,
        emissions_epochs=emissions_epochs,
        probes_per_epoch=probes_per_epoch,
        rewards_delay_s=rewards_delay_s,
    )
    try:
        service = OracleService(cfg)
    except ValueError as e:  # a malformed --price-source
        raise click.UsageError(str(e)) from e
    import signal

    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    try:
        service.run()
    except CircuitBreaker as e:
        raise click.ClickException(f"circuit breaker: {e}") from e
    except KeyboardInterrupt:
        service.stop()


@main.group()
def price() -> None:
    """Token/USD price (PriceFeed, reported by the oracle quorum)."""


@price.command("show")
@network_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def price_show(network: str, as_json: bool) -> None:
    """Show the latest PriceFeed answer: price, round, updatedAt and age."""
    with _connect(network) as h:
        feed = h.price_feed
        if feed is None:
            raise click.ClickException("this deployment has no PriceFeed: redeploy with `ape run deploy --redeploy`")
        now = h.chain.blocks.head.timestamp
        out = {
            "feed": feed.address,
            "description": feed.description(),
            "decimals": feed.decimals(),
            "max_age": feed.max_age(),
            "max_deviation_bps": feed.max_deviation_bps(),
            "round": feed.latest_round(),
        }
        if out["round"]:
            rid, answer, started_at, updated_at, _ = feed.latestRoundData()
            out.update(
                answer=int(answer),
                usd=int(answer) / 10 ** out["decimals"],
                started_at=int(started_at),
                updated_at=int(updated_at),
                age_s=int(now - updated_at),
                stale=bool(feed.is_stale()),
            )
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    t = Table(title=f"price feed {out['description']} ({out['feed']})", show_header=False)
    if not out["round"]:
        t.add_row("round", "none yet (no price reported)")
    else:
        t.add_row("price (USD)", f"{out['usd']:.8f}")
        t.add_row("round", str(out["round"]))
        t.add_row("updatedAt (unix)", str(out["updated_at"]))
        t.add_row("age", f"{out['age_s']} s" + ("  STALE" if out["stale"] else ""))
        t.add_row("oldest observation (unix)", str(out["started_at"]))
    t.add_row("max age", f"{out['max_age']} s")
    t.add_row("max deviation", f"{out['max_deviation_bps'] / 100:g}%")
    console.print(t)


@main.group()
def rewards() -> None:
    """Epoch emissions (Emissions): budgets, pools, posted roots and claims."""


def _emissions(h):
    if getattr(h, "emissions", None) is None:
        raise click.ClickException(
            "this deployment has no Emissions contract: redeploy with `ape run deploy --redeploy`"
        )
    return h.emissions


@rewards.command("show")
@network_option
@click.option("--epoch", type=int, default=None, help="Epoch to show (default: the latest finalized one).")
@click.option("--provider", "provider_addr", default=None, help="Also say whether this provider has claimed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def rewards_show(network: str, epoch: int | None, provider_addr: str | None, as_json: bool) -> None:
    """Show an epoch's budget, pools, whether its rewards root is posted and what was claimed."""
    with _connect(network) as h:
        em = _emissions(h)
        nxt = int(em.next_epoch())
        out: dict = {
            "emissions": em.address,
            "current_epoch": int(em.current_epoch()),
            "next_to_finalize": nxt,
            "epoch_seconds": int(em.EPOCH_SECONDS()),
            "total_emitted": int(em.total_emitted()),
            "allocated": int(em.allocated()),
            "emission_cap": int(em.EMISSION_CAP()),
        }
        if epoch is None:
            epoch = nxt - 1
        if epoch >= 0:
            e = em.epochs(epoch)
            root = bytes(e.root)
            out.update(
                epoch=epoch,
                epoch_start=int(em.epoch_start(epoch)),
                finalized=epoch < nxt,
                budget=int(e.budget),
                burned=int(e.burned),
                root_posted=root != b"\x00" * 32,
                root="0x" + root.hex(),
                total_work=int(e.total_work),
                total_availability=int(e.total_availability),
                work_pool=int(e.work_pool),
                availability_pool=int(e.availability_pool),
                claimed=int(e.claimed),
            )
            if provider_addr:
                out["provider"] = provider_addr
                out["provider_claimed"] = bool(em.claimed(epoch, provider_addr))
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    t = Table(title=f"emissions ({out['emissions']})", show_header=False)
    t.add_row("current epoch", str(out["current_epoch"]))
    t.add_row("finalized", f"epochs < {out['next_to_finalize']}")
    t.add_row("emitted / allocated / cap", " / ".join(_tokens(out[k]) for k in ("total_emitted", "allocated",
                                                                               "emission_cap")))  # fmt: skip
    if "epoch" in out:
        t.add_row("epoch", f"{out['epoch']} (starts {out['epoch_start']})" + ("" if out["finalized"] else "  OPEN"))
        t.add_row("budget", _tokens(out["budget"]))
        t.add_row("burned in epoch", _tokens(out["burned"]))
        t.add_row("rewards root", out["root"] if out["root_posted"] else "not posted yet")
        t.add_row("work pool / availability pool", f"{_tokens(out['work_pool'])} / {_tokens(out['availability_pool'])}")
        t.add_row("claimed", _tokens(out["claimed"]))
        if "provider" in out:
            t.add_row(f"claimed by {out['provider']}", "yes" if out["provider_claimed"] else "no")
    console.print(t)


@rewards.command("claim")
@network_option
@click.option("--epoch", type=int, required=True)
@click.option(
    "--provider", "provider_addr", required=True, help="The provider whose leaf is claimed (gets the tokens)."
)
@click.option(
    "--oracle",
    "oracles",
    multiple=True,
    default=("http://127.0.0.1:9700",),
    show_default=True,
    help="Oracle operator URL serving GET /rewards/<epoch>/<provider> (repeat: tried in order).",
)
@click.option("--test-account", type=int, default=None, help="Local chains: ape test account N sends the claim.")
@click.option("--account", "alias", default=None, help="ape account alias that sends the claim (anyone may).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def rewards_claim(
    network: str, epoch: int, provider_addr: str, oracles: tuple[str, ...], test_account, alias, as_json: bool
) -> None:
    """Claim a provider's emission for an epoch: fetch its leaf and proof from an operator,
    check them against the root on-chain, and call Emissions.claim (tokens go to the provider)."""
    import requests
    from eth_utils import to_checksum_address

    from offchain.economics import rewards as RW

    if test_account is None and alias is None:
        raise click.UsageError("pass --test-account N or --account ALIAS (the claim's sender)")
    try:
        provider_cs = to_checksum_address(provider_addr)
    except ValueError as e:
        raise click.BadParameter(f"{provider_addr!r} is not an address") from e
    with _connect(network) as h:
        from ape import accounts

        em = _emissions(h)
        e = em.epochs(epoch)
        root = bytes(e.root)
        if root == b"\x00" * 32:
            raise click.ClickException(f"epoch {epoch}: no rewards root posted yet")
        if em.claimed(epoch, provider_cs):
            raise click.ClickException(f"epoch {epoch}: {provider_cs} has already claimed")
        leaf, errors = None, []
        for url in oracles:
            try:
                r = requests.get(f"{url.rstrip('/')}/rewards/{epoch}/{provider_cs}", timeout=30)
                d = r.json()
                if r.status_code != 200:
                    raise ValueError(d.get("error", r.status_code))
                work, avail = int(d["work_units"]), int(d["availability_weight"])
                proof = [bytes.fromhex(p.removeprefix("0x")) for p in d["proof"]]
            except (requests.RequestException, ValueError, KeyError, TypeError) as ex:
                errors.append(f"{url}: {ex}")
                continue
            # Never trust the operator: the leaf must prove against the root on-chain.
            if not RW.verify_proof(proof, root, RW.leaf_hash(epoch, provider_cs, work, avail)):
                errors.append(f"{url}: its proof does not match the root on-chain")
                continue
            leaf = (work, avail, proof)
            break
        if leaf is None:
            raise click.ClickException("no operator gave a valid proof: " + "; ".join(errors))
        work, avail, proof = leaf
        expected = RW.claim_amount(
            int(e.work_pool), int(e.availability_pool), int(e.total_work), int(e.total_availability), work, avail
        )
        try:
            sender = accounts.test_accounts[test_account] if test_account is not None else accounts.load(alias)
        except Exception as ex:  # noqa: BLE001 - unknown account
            raise click.UsageError(f"no such account: {ex}") from ex
        if as_json:  # ape logs "Submitted ..." on stdout: keep it pure JSON
            from ape.logging import LogLevel, logger

            logger.set_level(LogLevel.WARNING)
        before = int(h.token.balanceOf(provider_cs))
        tx = em.claim(epoch, provider_cs, work, avail, proof, sender=sender)
        minted = int(h.token.balanceOf(provider_cs)) - before
        out = {
            "epoch": epoch,
            "provider": provider_cs,
            "work_units": work,
            "availability_weight": avail,
            "amount": minted,
            "expected": expected,
            "tx": str(tx.txn_hash),
            "gas": int(tx.gas_used),
        }
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        console.print(f"claimed {_tokens(minted)} GPU for {provider_cs} (epoch {epoch}, gas {out['gas']})")


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


from offchain.client.cli import add_job_commands  # noqa: E402 - needs `job` and `network_option` above

add_job_commands(job, network_option)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--device", default=None, help="torch device to measure, e.g. cuda:1 or cpu (default: cuda if present).")
@click.option("--claim", default=None, help="Also judge a claimed GPU class (id or name, e.g. 10 or 'H100 SXM5').")
def bench(as_json: bool, device: str | None, claim: str | None) -> None:
    """Measure this machine (matmul TFLOPS per dtype, copy bandwidth, memory) and classify it."""
    from offchain.benchmark.classify import best_match, check_claim
    from offchain.benchmark.gpu_classes import get_class

    try:
        claimed = get_class(claim) if claim is not None else None
    except KeyError as e:
        raise click.ClickException(str(e.args[0])) from e
    from offchain.benchmark.measure import measure

    try:
        if as_json:
            profile = measure(device=device)
        else:
            with console.status(f"measuring {device or 'default device'} (a few seconds)..."):
                profile = measure(device=device)
    except (RuntimeError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    match = best_match(profile)
    result = check_claim(profile, claimed) if claimed is not None else None
    if as_json:
        out = {"profile": profile.to_dict(), "best_match": match.to_dict() if match else None}
        if result is not None:
            out["claim"] = {
                "class_id": claimed.class_id,
                "name": claimed.name,
                "passed": result.passed,
                "suspicious": result.suspicious,
                "reasons": result.reasons,
            }
        click.echo(json.dumps(out, indent=2))
        return
    t = Table(title=f"benchmark: {profile.name} ({profile.device})", show_header=False)
    t.add_row("device type", profile.device_type)
    if profile.capability:
        t.add_row("compute capability", ".".join(map(str, profile.capability)))
    t.add_row("PCI id", profile.pci_id or "-")
    t.add_row("driver / CUDA", f"{profile.driver or '-'} / {profile.cuda_version or '-'}")
    t.add_row("torch", profile.torch_version)
    t.add_row("platform", f"{profile.platform}, {profile.cpu_count} cores")
    mem_total, mem_free = profile.memory_total_bytes / 2**30, profile.memory_free_bytes / 2**30
    t.add_row("memory total / free", f"{mem_total:.1f} / {mem_free:.1f} GiB")

    def share(v: float, spec: float | None) -> str:
        if not spec:
            return ""
        if match.is_floor:
            return f"  ({v / spec:.1f}x the {match.name} floor)"
        return f"  ({v / spec:.0%} of {match.name}'s spec)"

    for dtype, v in profile.tflops.items():
        spec = match.tflops(dtype) if match else None
        t.add_row(f"{dtype} matmul", f"{v:.4g} TFLOPS at n={profile.matmul_n.get(dtype)}{share(v, spec)}")
    bw_share = share(profile.bandwidth_gbs, match.bandwidth_gbs) if match else ""
    t.add_row("copy bandwidth", f"{profile.bandwidth_gbs:.4g} GB/s{bw_share}")
    if profile.fp32_rel_error is not None:
        t.add_row("fp32 rel. error", f"{profile.fp32_rel_error:.1e}")
    t.add_row("best match", f"{match.class_id} {match.name}" if match else "none (below the CPU floor)")
    for note in profile.notes:
        t.add_row("note", note)
    t.add_row("took", f"{profile.elapsed_s:.1f} s")
    console.print(t)
    if result is not None:
        verdict = "passes" if result.passed else "fails"
        if result.suspicious:
            verdict += " (suspicious)"
        console.print(f"claim {claimed.class_id} {claimed.name}: {verdict}")
        for r in result.reasons:
            console.print(f"  - {r}")


# `gpunet sim` (offchain/sim/): the token-economy simulation on the real contracts.
from offchain.sim.cli import sim as _sim  # noqa: E402

main.add_command(_sim)


if __name__ == "__main__":
    sys.exit(main())
