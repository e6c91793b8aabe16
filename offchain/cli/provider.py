"""`gpunet provider …`: everything a provider does, from joining to getting paid.

Joining, in order (each step one command; those that send transactions ask first, `--yes` for
scripts):

    gpunet bench                                   # measure this machine; register checks the claim
    gpunet provider stake 100 --account ME         # approve + ProviderRegistry.stake
    gpunet provider serve --claim CPU --state-dir ./state --account ME     # the agent + job worker (keep running)
    gpunet provider register CPU --gpus 1 --vram-mb 2048 --endpoint http://HOST:9650 --account ME
    gpunet provider status --account ME            # wait for the machine to turn Active
    gpunet provider offer CPU 0.002 --account ME   # USD per compute unit

Daily: `status`, `jobs`, `earnings`, `claim` (the agent claims by itself), `reattest`; leaving:
`exit-machine`, `unstake`, `withdraw`.
"""

from __future__ import annotations

import click
from rich.table import Table

from offchain.chain.events import logs
from offchain.cli.bonding import approve_and_stake, check_balance, withdraw_unbonded
from offchain.cli.common import (
    ADDRESS,
    GPU_CLASS,
    AmountType,
    Chain,
    Signer,
    account,
    chain_options,
    confirm,
    emit_json,
    json_option,
    send,
    session,
    signer_options,
    tokens,
    usd,
    yes_option,
)
from offchain.cli.common import out as console
from offchain.constants import MachineStatus

# Lets a negative amount reach its check ("must be positive") instead of reading as an option.
NUMBER_ARGS = {"ignore_unknown_options": True}
# ProviderRegistry.NO_EXPIRY: a machine activated by hand (governance), never re-attested.
NO_EXPIRY = 2**32 - 1
# Job cheat modes (offchain/provider/cheats.py); spelled out here so `--help` needs no torch import.
JOB_CHEATS = ("wrong-output", "skip-work", "cheaper-model")


@click.group()
def provider() -> None:
    """Provider commands: stake, register and serve machines, offer, see jobs and earnings."""


def _who(address: str | None, signer: Signer, chain: Chain) -> str:
    if address:
        return address
    if not signer.given:
        raise click.UsageError("give the provider's ADDRESS, or a signer (--account ALIAS / --test-account N)")
    return account(signer, chain, sign=False).address


def machines_of(h, provider_addr: str) -> list[int]:
    return [int(lg.machine_id) for lg in logs(h, h.registry.MachineRegistered, provider=provider_addr)]


def _offers(h, address: str) -> list[tuple[int, str, int]]:
    """(class id, name, USD per unit) of the provider's current offers."""
    from offchain.params import GPU_CLASSES

    out = []
    for c in GPU_CLASSES:
        price = int(h.registry.offers(address, c.class_id))
        if price:
            out.append((c.class_id, c.name, price))
    return out


@provider.command("status")
@click.argument("address", type=ADDRESS, required=False)
@signer_options
@chain_options
@json_option
def provider_status(address: str | None, signer: Signer, chain: Chain, as_json: bool) -> None:
    """A provider's stake, claimable job pay, machines (attestation state and expiry, uptime),
    offers, reputation and audit rate. ADDRESS defaults to the signer's."""
    from offchain.client.sdk import latest_uptime, reputation

    who = _who(address, signer, chain)
    with session(chain) as h:
        s = h.registry.stakes(who)
        now = int(h.chain.blocks.head.timestamp)
        mids = machines_of(h, who)
        uptime = latest_uptime(h, mids)
        machines = []
        for mid in mids:
            m = h.registry.machines(mid)
            u = uptime.get(mid)
            machines.append({
                "id": mid, "class_id": int(m.class_id), "gpu_count": int(m.gpu_count), "vram_mb": int(m.vram_mb),
                "status": MachineStatus(m.status).name, "attested_until": int(m.attested_until),
                "expires_in_s": int(m.attested_until) - now if int(m.attested_until) else None,
                "endpoint": m.endpoint,
                "uptime": None if u is None else {"bps": u.bps, "epoch": u.epoch, "probes": u.probes,
                                                  "successes": u.successes},
            })  # fmt: skip
        rep = reputation(h, who)
        burned, usd_net, cap = (int(x) for x in h.market.accrued(who))
        out = {
            "provider": who,
            "staked": int(s.staked),
            "locked": int(s.locked),
            "unbonding": int(s.unbonding),
            "unbonding_release": int(s.unbonding_release),
            "required_stake": int(h.registry.required_stake(who)),
            "balance": int(h.token.balanceOf(who)),
            "machines": machines,
            "offers": [{"class_id": c, "class": n, "usd_per_unit": p} for c, n, p in _offers(h, who)],
            "reputation": rep,
            "audit_bps": int(h.market.audit_rate(who)),
            # Job pay credited and not claimed yet (`gpunet provider claim`): the escrow a claim
            # burns, its USD value net of fees, and the most it can mint (escrow minus fees).
            "claimable": {"escrow": burned, "usd_net": usd_net, "max_mint": cap},
        }
    if as_json:
        emit_json(out)
        return
    t = Table(title=f"provider {who}", show_header=False)
    t.add_row("wallet balance", f"{tokens(out['balance'])} GPU")
    t.add_row("staked / required", f"{tokens(out['staked'])} / {tokens(out['required_stake'])} GPU")
    c = out["claimable"]
    # A finalized job's collateral and its `completed` count wait for the provider's next claim.
    until_claim = " (with finalized jobs' share until the claim)" if c["escrow"] else ""
    t.add_row("locked (job collateral)", tokens(out["locked"]) + until_claim)
    t.add_row("claimable job pay", f"{usd(c['usd_net'])} net of fees, at most {tokens(c['max_mint'])} GPU "
              f"(escrow {tokens(c['escrow'])}; `gpunet provider claim` pays it, frees their collateral "
              "and records them)" if c["escrow"] else "none")  # fmt: skip
    if out["unbonding"]:
        t.add_row("unbonding", f"{tokens(out['unbonding'])} until {out['unbonding_release']} (unix)")
    for o in out["offers"]:
        t.add_row(f"offer: {o['class']}", f"{usd(o['usd_per_unit'])} per compute unit")
    if not out["offers"]:
        t.add_row("offers", "none (gpunet provider offer CLASS USD)")
    t.add_row("reputation", ", ".join(f"{k} {v}" for k, v in rep.items()))
    t.add_row("audit rate", f"{out['audit_bps'] / 100:g}% of jobs")
    console.print(t)
    m = Table(title="machines")
    for col in ("id", "class", "gpus", "VRAM MB", "status", "attested for", "uptime", "endpoint"):
        m.add_column(col)
    for x in machines:
        m.add_row(str(x["id"]), _class_label(x["class_id"]), str(x["gpu_count"]), str(x["vram_mb"]), x["status"],
                  _attested_for(x) if x["status"] == "ACTIVE" else "-", _uptime_text(x["uptime"]),
                  x["endpoint"])  # fmt: skip
    if machines:
        console.print(m)
    else:
        console.print("no machines: gpunet provider register CLASS --gpus N --vram-mb MB --endpoint URL")


def _class_label(class_id: int) -> str:
    """A class as the README writes it: its name with its on-chain id (`CPU (1)`)."""
    from offchain.client.timeline import class_name

    name = class_name(class_id)
    return f"{name} ({int(class_id)})" if not name.startswith("class ") else name


def _attested_for(machine: dict) -> str:
    if machine["attested_until"] >= NO_EXPIRY:
        return "no expiry"
    left = machine["expires_in_s"]
    return "expired" if left is None or left <= 0 else f"{left // 3600} h {left % 3600 // 60} min"


def _uptime_text(u: dict | None) -> str:
    from offchain.client.sdk import fmt_bps

    if u is None:
        return "no report yet"
    return f"{fmt_bps(u['bps'])} (epoch {u['epoch']}: {u['successes']}/{u['probes']} probes)"


# `show` was this command's name before `status`; kept so scripts keep working.
provider.add_command(provider_status, "show")


@provider.command("stake", context_settings=NUMBER_ARGS)
@click.argument("amount", type=AmountType("tokens"))
@signer_options
@chain_options
@yes_option
def provider_stake(amount: int, signer: Signer, chain: Chain, yes: bool) -> None:
    """Bond AMOUNT tokens as stake, a decimal such as 100 (approve + ProviderRegistry.stake)."""
    acct = account(signer, chain)
    with session(chain) as h:
        check_balance(h, acct.address, amount)
        confirm(yes, f"stake {tokens(amount)} GPU from {acct.address} (approve + stake)")
        tx = approve_and_stake(h, acct, h.registry, amount)
        s = h.registry.stakes(acct.address)
        need = int(h.registry.required_stake(acct.address))
    console.print(f"staked {tokens(amount)} GPU: {tokens(int(s.staked))} staked, {tokens(need)} required by your "
                  f"machines; tx {tx.txn_hash}")  # fmt: skip


def _bench_warning(class_id: int) -> str | None:
    """Why the claimed class looks too big for this machine, from `gpunet bench`'s saved profile."""
    from offchain.benchmark.classify import check_claim
    from offchain.cli.bench import load_saved_profile

    profile = load_saved_profile()
    if profile is None:
        return "no `gpunet bench` result on this machine to check the claim against: run `gpunet bench` first"
    res = check_claim(profile, class_id)
    if res.passed:
        return None
    return f"this machine's `gpunet bench` does not support the claim: {'; '.join(res.reasons)}"


@provider.command("register")
@click.argument("class_id", metavar="CLASS", type=GPU_CLASS)
@click.option("--gpus", "gpu_count", type=click.IntRange(1, 64), default=1, show_default=True, help="GPUs in it.")
@click.option("--vram-mb", type=click.IntRange(1, 2**24 - 1), default=None,
              help="Memory per machine in MB the memory proof may fill (default: the class's).")  # fmt: skip
@click.option("--endpoint", required=True, help="URL where the agent (`gpunet provider serve`) is reached.")
@click.option("--skip-agent-check", is_flag=True,
              help="Register without asking the agent at --endpoint first (it must be up within seconds).")  # fmt: skip
@signer_options
@chain_options
@yes_option
def provider_register(class_id: int, gpu_count: int, vram_mb: int | None, endpoint: str, skip_agent_check: bool,
                      signer: Signer, chain: Chain, yes: bool) -> None:  # fmt: skip
    """Register a machine of GPU class CLASS (id or name). It starts Pending; the oracle quorum
    challenges its agent and attests it Active (or jails it)."""
    from urllib.parse import urlparse

    from offchain.benchmark.gpu_classes import get_class

    cls = get_class(class_id)
    u = urlparse(endpoint)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise click.BadParameter(f"{endpoint!r} is not an http(s) URL, e.g. http://203.0.113.7:9650",
                                 param_hint="--endpoint")  # fmt: skip
    if len(endpoint) > 256:
        raise click.BadParameter("longer than 256 characters", param_hint="--endpoint")
    vram_mb = vram_mb or int(cls.vram_gib * 1024)
    acct = account(signer, chain)
    if not skip_agent_check:
        _check_agent(endpoint, acct.address, class_id)
    warning = _bench_warning(class_id)
    with session(chain) as h:
        gc = h.registry.gpu_classes(class_id)
        if not gc.enabled:
            raise click.ClickException(f"class {class_id} ({cls.name}) is not enabled on this deployment")
        need = int(h.registry.required_stake(acct.address)) + int(gc.min_stake_per_gpu) * gpu_count
        staked = int(h.registry.stakes(acct.address).staked)
        if staked < need:
            raise click.ClickException(
                f"{acct.address} has {tokens(staked)} GPU staked; with this machine it needs {tokens(need)}: "
                f"`gpunet provider stake {(need - staked) / 10**18:g}` first"
            )
        what = f"register a {cls.name} machine ({gpu_count} GPU, {vram_mb} MB) at {endpoint}"
        if warning and not yes:  # part of the question (or of the one error line without a terminal)
            what += f" (warning: {warning})"
        elif warning:
            click.echo(f"warning: {warning}", err=True)
        confirm(yes, what)
        tx = send("register", h.registry.register, class_id, gpu_count, vram_mb, endpoint, sender=acct)
        mid = int(tx.decode_logs(h.registry.MachineRegistered)[0].machine_id)
    console.print(f"machine {mid} registered (Pending); tx {tx.txn_hash}")
    console.print("next: the oracle quorum challenges its agent; `gpunet provider status` shows it ACTIVE once "
                  "attested, then `gpunet provider offer`")  # fmt: skip


def _check_agent(endpoint: str, provider_addr: str, class_id: int) -> None:
    """The quorum challenges a new machine at once and jails one that does not answer: the agent
    must already serve this provider and this class at the endpoint."""
    import requests

    url = endpoint.rstrip("/") + "/health"
    try:
        health = requests.get(url, timeout=5).json()
    except (requests.RequestException, ValueError):
        raise click.ClickException(
            f"no gpunet agent answers at {url}: start `gpunet provider serve --claim {class_id} ...` there first "
            "(the oracle quorum challenges a new machine at once and jails one that does not answer)"
        ) from None
    served = str(health.get("provider") or "")
    if served.lower() != provider_addr.lower():
        raise click.ClickException(f"the agent at {endpoint} serves provider {served or '?'}, not {provider_addr}")
    if int(health.get("claimed_class") or 0) != class_id:
        raise click.ClickException(
            f"the agent at {endpoint} claims class {health.get('claimed_class')}, not {class_id}: "
            "restart it with the same --claim"
        )


def _own_machine(h, acct, machine_id: int):
    count = int(h.registry.machine_count())
    if machine_id < 1 or machine_id > count:
        raise click.ClickException(
            f"machine {machine_id} does not exist ({f'machines 1..{count}' if count else 'no machines yet'})"
        )
    m = h.registry.machines(machine_id)
    if m.provider.lower() != acct.address.lower():
        raise click.ClickException(f"machine {machine_id} belongs to {m.provider}, not {acct.address}")
    return m


@provider.command("exit-machine")
@click.argument("machine_id", type=click.IntRange(1))
@signer_options
@chain_options
@yes_option
def provider_exit_machine(machine_id: int, signer: Signer, chain: Chain, yes: bool) -> None:
    """Retire a machine for good; its stake requirement is released (accepted jobs keep theirs)."""
    acct = account(signer, chain)
    with session(chain) as h:
        m = _own_machine(h, acct, machine_id)
        if MachineStatus(m.status) == MachineStatus.EXITED:
            raise click.ClickException(f"machine {machine_id} has already exited")
        confirm(yes, f"retire machine {machine_id} for good")
        tx = send("exit_machine", h.registry.exit_machine, machine_id, sender=acct)
    console.print(f"machine {machine_id} exited; tx {tx.txn_hash}")


@provider.command("reattest")
@click.argument("machine_id", type=click.IntRange(1))
@signer_options
@chain_options
@yes_option
def provider_reattest(machine_id: int, signer: Signer, chain: Chain, yes: bool) -> None:
    """Ask the quorum to challenge an Active or Jailed machine again (after a hardware change, or
    to leave jail). It takes no new jobs until attested; a second failure is slashed again."""
    acct = account(signer, chain)
    with session(chain) as h:
        m = _own_machine(h, acct, machine_id)
        st = MachineStatus(m.status)
        if st not in (MachineStatus.ACTIVE, MachineStatus.JAILED):
            raise click.ClickException(
                f"machine {machine_id} is {st.name}: only an ACTIVE or JAILED machine can ask for re-attestation"
            )
        confirm(yes, f"put machine {machine_id} ({st.name}) back to Pending for a new challenge")
        tx = send("request_attestation", h.registry.request_attestation, machine_id, sender=acct)
    console.print(f"machine {machine_id} is Pending a new challenge; tx {tx.txn_hash}")


@provider.command("unstake", context_settings=NUMBER_ARGS)
@click.argument("amount", type=AmountType("tokens"))
@signer_options
@chain_options
@yes_option
def provider_unstake(amount: int, signer: Signer, chain: Chain, yes: bool) -> None:
    """Start unbonding AMOUNT of free stake (staked minus locked minus what machines require)."""
    acct = account(signer, chain)
    with session(chain) as h:
        s = h.registry.stakes(acct.address)
        free = int(s.staked) - int(s.locked)
        if amount > free:
            # A finalized job's collateral stays locked until the provider's next claim.
            hint = "; `gpunet provider claim` releases its finalized jobs' share" if int(
                h.market.accrued(acct.address)[0]) else ""  # fmt: skip
            raise click.ClickException(
                f"only {tokens(max(free, 0))} GPU of {acct.address}'s stake is free ({tokens(int(s.locked))} locked "
                f"as job collateral{hint})"
            )
        period = int(h.registry.unbonding_period())
        confirm(yes, f"unbond {tokens(amount)} GPU (released after {period} s)")
        tx = send("request_unstake", h.registry.request_unstake, amount, sender=acct)
        release = int(h.registry.unbonding_release(acct.address))
    console.print(f"unbonding {tokens(amount)} GPU until {release} (unix), then `gpunet provider withdraw`; "
                  f"tx {tx.txn_hash}")  # fmt: skip


@provider.command("withdraw")
@signer_options
@chain_options
@yes_option
def provider_withdraw(signer: Signer, chain: Chain, yes: bool) -> None:
    """Pay out unbonded stake once its release time has passed."""
    acct = account(signer, chain)
    with session(chain) as h:
        amount = int(h.registry.unbonding(acct.address))
        release = int(h.registry.unbonding_release(acct.address))
        tx = withdraw_unbonded(h, acct, yes, amount=amount, release=release, withdraw=h.registry.withdraw,
                               group="provider")  # fmt: skip
    console.print(f"withdrew {tokens(amount)} GPU; tx {tx.txn_hash}")


@provider.command("offer", context_settings=NUMBER_ARGS)
@click.argument("class_id", metavar="CLASS", type=GPU_CLASS)
@click.argument("usd_per_unit", metavar="USD_PER_UNIT", type=AmountType("USD", allow_zero=True))
@signer_options
@chain_options
@yes_option
def provider_offer(class_id: int, usd_per_unit: int, signer: Signer, chain: Chain, yes: bool) -> None:
    """Offer GPU class CLASS at USD_PER_UNIT US dollars per compute unit (e.g. 0.002); 0 withdraws
    the offer. Jobs escrow the tokens this USD value buys at the on-chain token/USD price."""
    acct = account(signer, chain)
    with session(chain) as h:
        if usd_per_unit:
            s = h.registry.stakes(acct.address)
            if int(s.staked) == 0:
                raise click.ClickException(f"{acct.address} has no stake: `gpunet provider stake AMOUNT` first")
            active = [m for m in machines_of(h, acct.address)
                      if int(h.registry.machines(m).class_id) == class_id
                      and MachineStatus(h.registry.machines(m).status) == MachineStatus.ACTIVE]  # fmt: skip
            if not active:
                raise click.ClickException(
                    f"{acct.address} has no ACTIVE machine of class {class_id}: register one and wait for its "
                    "attestation (`gpunet provider status`)"
                )
        confirm(yes, f"{'offer' if usd_per_unit else 'withdraw the offer for'} class {class_id}"
                + (f" at {usd(usd_per_unit)} per compute unit" if usd_per_unit else ""))  # fmt: skip
        tx = send("set_offer", h.registry.set_offer, class_id, usd_per_unit, sender=acct)
    what = f"{usd(usd_per_unit)} per compute unit" if usd_per_unit else "withdrawn"
    click.echo(f"offer for class {_class_label(class_id)} by {acct.address}: {what}; tx {tx.txn_hash}")


@provider.command("claim")
@click.option("--for", "for_address", type=ADDRESS, default=None, metavar="ADDRESS",
              help="The provider to claim for (anyone may; the tokens go to it). Default: the signer.")  # fmt: skip
@signer_options
@chain_options
@yes_option
@json_option
def provider_claim(for_address: str | None, signer: Signer, chain: Chain, yes: bool, as_json: bool) -> None:
    """Claim a provider's job pay: its jobs finalized since its last claim are credited in
    JobMarket; the claim burns their escrow and Settlement mints the provider their USD value net
    of fees at the current price (at most the escrow minus fees). It also frees those jobs'
    collateral and adds them to the provider's reputation. The agent claims by itself."""
    acct = account(signer, chain)
    who = for_address or acct.address
    with session(chain) as h:
        burned, usd_net, cap = (int(x) for x in h.market.accrued(who))
        if burned == 0:
            raise click.ClickException(f"nothing to claim for {who}: none of its jobs finalized since its last claim")
        confirm(yes, f"claim {who}'s job pay: burn {tokens(burned)} GPU of escrow, mint {usd(usd_net)} worth "
                f"(at most {tokens(cap)} GPU)")  # fmt: skip
        tx = send("claim", h.market.claim, who, sender=acct)
        (a,) = [lg.event_arguments for lg in tx.decode_logs(h.settlement.Settled)]
        released = sum(int(lg.event_arguments["amount"]) for lg in tx.decode_logs(h.registry.CollateralUnlocked))
        dec = int(h.settlement.feed_decimals())
        out = {"provider": who, "burned": int(a["burned"]), "usd_net": int(a["usd_net"]), "cap": int(a["cap"]),
               "minted": int(a["minted"]), "price": int(a["price"]), "price_decimals": dec,
               "collateral_released": released, "tx": str(tx.txn_hash), "gas": int(tx.gas_used)}  # fmt: skip
    if as_json:
        emit_json(out)
        return
    price = f"{out['price'] / 10**dec:g} USD per GPU" if out["price"] else "no fresh price: the cap"
    click.echo(f"claimed for {who}: burned {tokens(out['burned'])} GPU of escrow, minted {tokens(out['minted'])} "
               f"GPU at {price}, freed {tokens(released)} GPU of collateral; tx {out['tx']}")  # fmt: skip
