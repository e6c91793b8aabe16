"""`gpunet info`, `gpunet price show`, `gpunet rewards show|claim`: the market's state."""

from __future__ import annotations

import json

import click
from rich.table import Table

from offchain.cli.common import (
    ADDRESS,
    Chain,
    Signer,
    account,
    chain_options,
    json_option,
    send,
    session,
    signer_options,
    tokens,
)
from offchain.cli.common import out as console
from offchain.constants import PARAM_FIELDS


@click.command()
@chain_options
@json_option
def info(chain: Chain, as_json: bool) -> None:
    """Show the deployment, protocol parameters and totals."""
    with session(chain) as h:
        params = dict(zip(PARAM_FIELDS, h.market.params(), strict=True))
        out = {
            "network": chain.network,
            "chain_id": h.record["chain_id"],
            "contracts": h.record["contracts"],
            "git_commit": h.record.get("git_commit"),
            "params": params,
            "job_count": h.market.job_count(),
            "machine_count": h.registry.machine_count(),
            "token_supply": h.token.totalSupply(),
            # Escrow burned by job settlement (fees included) at the providers' claims; providers
            # are minted their pay. `finalized_escrow`: the escrow of every job finalized, the part
            # not burned yet is credited to providers who have not claimed.
            "settlement_burned": h.settlement.total_burned() if h.settlement is not None else None,
            "finalized_escrow": int(h.market.total_burned()),
            "paused": {"JobMarket": h.market.paused(), "ProviderRegistry": h.registry.paused()},
        }
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    t = Table(title=f"gpunet on {chain.network} (chain {out['chain_id']})", show_header=False)
    for name, addr in out["contracts"].items():
        t.add_row(name, addr)
    for k, v in params.items():
        t.add_row(k, str(v))
    t.add_row("jobs", str(out["job_count"]))
    t.add_row("machines", str(out["machine_count"]))
    t.add_row("token supply", tokens(out["token_supply"]))
    if out["settlement_burned"] is not None:
        t.add_row("burned by job settlement", tokens(out["settlement_burned"]))
        unclaimed = out["finalized_escrow"] - int(out["settlement_burned"])
        t.add_row("finalized jobs' escrow not claimed yet", tokens(unclaimed))
    t.add_row("paused", json.dumps(out["paused"]))
    console.print(t)


@click.group()
def price() -> None:
    """Token/USD price (PriceFeed, reported by the oracle quorum)."""


@price.command("show")
@chain_options
@json_option
def price_show(chain: Chain, as_json: bool) -> None:
    """Show the latest PriceFeed answer: price, round, updatedAt and age."""
    with session(chain) as h:
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


@click.group()
def rewards() -> None:
    """Epoch emissions (Emissions): budgets, pools, posted roots and claims."""


def _emissions(h):
    if getattr(h, "emissions", None) is None:
        raise click.ClickException(
            "this deployment has no Emissions contract: redeploy with `ape run deploy --redeploy`"
        )
    return h.emissions


@rewards.command("show")
@chain_options
@click.option(
    "--epoch", type=click.IntRange(0), default=None, help="Epoch to show (default: the latest finalized one)."
)
@click.option(
    "--provider", "provider_addr", type=ADDRESS, default=None, help="Also say whether this provider has claimed."
)
@json_option
def rewards_show(chain: Chain, epoch: int | None, provider_addr: str | None, as_json: bool) -> None:
    """Show an epoch's budget, pools, whether its rewards root is posted and what was claimed."""
    with session(chain) as h:
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
    t.add_row("emitted / allocated / cap", " / ".join(tokens(out[k]) for k in ("total_emitted", "allocated",
                                                                               "emission_cap")))  # fmt: skip
    if "epoch" in out:
        t.add_row("epoch", f"{out['epoch']} (starts {out['epoch_start']})" + ("" if out["finalized"] else "  OPEN"))
        t.add_row("budget", tokens(out["budget"]))
        t.add_row("burned in epoch", tokens(out["burned"]))
        t.add_row("rewards root", out["root"] if out["root_posted"] else "not posted yet")
        t.add_row("work pool / availability pool", f"{tokens(out['work_pool'])} / {tokens(out['availability_pool'])}")
        t.add_row("claimed", tokens(out["claimed"]))
        if "provider" in out:
            t.add_row(f"claimed by {out['provider']}", "yes" if out["provider_claimed"] else "no")
    console.print(t)


@rewards.command("claim")
@chain_options
@click.option("--epoch", type=click.IntRange(0), required=True)
@click.option(
    "--provider",
    "provider_addr",
    type=ADDRESS,
    required=True,
    help="The provider whose leaf is claimed (gets the tokens).",
)
@click.option(
    "--oracle",
    "oracles",
    multiple=True,
    default=("http://127.0.0.1:9700",),
    show_default=True,
    help="Oracle operator URL serving GET /rewards/<epoch>/<provider> (repeat: tried in order).",
)
@signer_options
@json_option
def rewards_claim(
    chain: Chain, epoch: int, provider_addr: str, oracles: tuple[str, ...], signer: Signer, as_json: bool
) -> None:
    """Claim a provider's emission for an epoch: fetch its leaf and proof from an operator,
    check them against the root on-chain, and call Emissions.claim (tokens go to the provider)."""
    import requests

    from offchain.economics import rewards as RW

    provider_cs = provider_addr
    sender = account(signer, chain)  # anyone may send the claim; the tokens go to the provider
    with session(chain) as h:
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
        before = int(h.token.balanceOf(provider_cs))
        tx = send("claim", em.claim, epoch, provider_cs, work, avail, proof, sender=sender)
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
        console.print(f"claimed {tokens(minted)} GPU for {provider_cs} (epoch {epoch}, gas {out['gas']})")
