"""`gpunet oracle run|stake|unstake|withdraw|status`: an oracle operator's commands.

Joining the quorum takes two steps: the operator bonds at least `min_operator_stake` with
`gpunet oracle stake`, then governance (OracleHub's admin) adds its address with
`add_operator`. Leaving: governance removes it, and the operator unbonds with
`gpunet oracle unstake` and, after 14 days, `gpunet oracle withdraw`.
"""

from __future__ import annotations

import click
from rich.table import Table

from offchain.chain.events import logs
from offchain.cli.bonding import approve_and_stake, check_balance, withdraw_unbonded
from offchain.cli.common import (
    ADDRESS,
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
    short,
    signer_options,
    tokens,
    yes_option,
)
from offchain.cli.common import out as console


@click.group()
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
@chain_options
@click.option(
    "--key-env",
    default="GPUNET_OPERATOR_KEY",
    show_default=True,
    help="Environment variable holding the operator's hex private key (signs reports).",
)
@signer_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9700, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--peer",
    "peers",
    multiple=True,
    callback=lambda c, p, v: [_parse_peer(x) for x in v],
    help="Another operator, ADDRESS=URL (repeat for each).",
)
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
    chain: Chain,
    key_env,
    signer: Signer,
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
    sender = account(signer, chain, required=False)
    chain.export()
    if signer.test_account is not None:
        key = sender.private_key
    else:
        key = os.environ.get(key_env)
        if not key:
            raise click.UsageError(
                f"set ${key_env} to the operator's private key (it signs reports)"
                + (", or pass --test-account N" if chain.local else "")
            )
    cfg = OracleConfig(
        network=chain.network,
        operator_key=key,
        sender_index=signer.test_account,
        sender_alias=signer.account,
        host=host,
        port=port,
        peers=dict(peers),
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


@oracle.command("stake", context_settings={"ignore_unknown_options": True})
@click.argument("amount", type=AmountType("tokens"))
@signer_options
@chain_options
@yes_option
def oracle_stake(amount: int, signer: Signer, chain: Chain, yes: bool) -> None:
    """Bond AMOUNT tokens behind this operator's signatures (approve + OracleHub.stake)."""
    acct = account(signer, chain)
    with session(chain) as h:
        check_balance(h, acct.address, amount)
        confirm(yes, f"bond {tokens(amount)} GPU in OracleHub from {acct.address} (approve + stake)")
        tx = approve_and_stake(h, acct, h.hub, amount)
        staked = int(h.hub.operator_stake(acct.address))
        minimum = int(h.hub.min_operator_stake())
        member = bool(h.hub.is_operator(acct.address))
    console.print(f"staked {tokens(amount)} GPU; operator stake now {tokens(staked)} (minimum {tokens(minimum)}); "
                  f"tx {tx.txn_hash}")  # fmt: skip
    if not member:
        console.print(f"next: governance adds {acct.address} to the quorum (OracleHub.add_operator)")


@oracle.command("unstake", context_settings={"ignore_unknown_options": True})
@click.argument("amount", type=AmountType("tokens"))
@signer_options
@chain_options
@yes_option
def oracle_unstake(amount: int, signer: Signer, chain: Chain, yes: bool) -> None:
    """Start unbonding AMOUNT of the operator's stake (slashable until released, 14 days)."""
    acct = account(signer, chain)
    with session(chain) as h:
        have = int(h.hub.operator_stake(acct.address))
        if amount > have:
            raise click.ClickException(f"{acct.address} has {tokens(have)} GPU staked, less than {tokens(amount)}")
        confirm(yes, f"unbond {tokens(amount)} GPU of {acct.address}'s operator stake")
        tx = send("request_unstake", h.hub.request_unstake, amount, sender=acct)
        release = int(h.hub.operator_unbonding_release(acct.address))
    console.print(f"unbonding {tokens(amount)} GPU until {release} (unix); then `gpunet oracle withdraw`; "
                  f"tx {tx.txn_hash}")  # fmt: skip


@oracle.command("withdraw")
@signer_options
@chain_options
@yes_option
def oracle_withdraw(signer: Signer, chain: Chain, yes: bool) -> None:
    """Pay out the operator's unbonded stake once its release time has passed."""
    acct = account(signer, chain)
    with session(chain) as h:
        amount = int(h.hub.operator_unbonding(acct.address))
        release = int(h.hub.operator_unbonding_release(acct.address))
        tx = withdraw_unbonded(h, acct, yes, amount=amount, release=release, withdraw=h.hub.withdraw, group="oracle")
    console.print(f"withdrew {tokens(amount)} GPU; tx {tx.txn_hash}")


@oracle.command("status")
@click.option("--address", type=ADDRESS, default=None, help="Operator address (default: the signer's).")
@click.option("--url", default=None, help="The operator's service URL, for its /health (e.g. http://127.0.0.1:9700).")
@signer_options
@chain_options
@json_option
def oracle_status(address, url, signer: Signer, chain: Chain, as_json: bool) -> None:
    """An operator's membership, stake and recent reports; the quorum's members; its service health."""
    if address is None:
        if not signer.given:
            raise click.UsageError("give --address ADDR, or a signer (--account ALIAS / --test-account N)")
        address = account(signer, chain, sign=False).address
    with session(chain) as h:
        hub = h.hub
        members = {}
        for lg in logs(h, hub.OperatorAdded):
            members[lg.operator] = True
        for lg in logs(h, hub.OperatorRemoved):
            members.pop(lg.operator, None)
        att = logs(h, hub.AttestationAccepted)
        verdicts = logs(h, hub.VerdictAccepted)
        out = {
            "operator": address,
            "is_operator": bool(hub.is_operator(address)),
            "stake": int(hub.operator_stake(address)),
            "unbonding": int(hub.operator_unbonding(address)),
            "unbonding_release": int(hub.operator_unbonding_release(address)),
            "min_operator_stake": int(hub.min_operator_stake()),
            "threshold": int(hub.threshold()),
            "operators": [a for a in members if hub.is_operator(a)],
            "attestations_total": len(att),
            "verdicts_total": len(verdicts),
            "last_attestation_block": att[-1].block_number if att else None,
            "last_verdict_block": verdicts[-1].block_number if verdicts else None,
        }
        beacon = getattr(h, "beacon", None)
        if beacon is not None:  # the audit draw: this operator must reveal in every drawn round
            m = beacon.members(address)
            out["beacon_member"] = int(m.active_until) > int(beacon.current_round())
            out["beacon_committed"] = bytes(m.tip) != b"\x00" * 32 or int(m.pending_from) != 0
            out["beacon_last_round"] = int(m.last_round)
    if url:
        out["health"] = _health(url)
        out["metrics_url"] = url.rstrip("/") + "/metrics"
    if as_json:
        emit_json(out)
        return
    t = Table(title=f"oracle operator {out['operator']}", show_header=False)
    t.add_row("member of the quorum", "yes" if out["is_operator"] else "no (governance adds operators)")
    t.add_row("stake", f"{tokens(out['stake'])} (minimum {tokens(out['min_operator_stake'])})")
    if out["unbonding"]:
        t.add_row("unbonding", f"{tokens(out['unbonding'])} until {out['unbonding_release']} (unix)")
    t.add_row("quorum", f"{out['threshold']} of {len(out['operators'])}: "
              + ", ".join(short(a) for a in out["operators"]))  # fmt: skip
    t.add_row(
        "attestations accepted (all)", f"{out['attestations_total']} (last in block {out['last_attestation_block']})"
    )
    t.add_row("verdicts accepted (all)", f"{out['verdicts_total']} (last in block {out['last_verdict_block']})")
    if "beacon_member" in out:
        state = ("no (governance adds members: AuditBeacon.add_member)" if not out["beacon_member"] else
                 "yes, " + ("chain committed" if out["beacon_committed"] else "no chain committed yet (`oracle run` "
                            "commits at start)") + f", last reveal in round {out['beacon_last_round']}")  # fmt: skip
        t.add_row("audit beacon member", state)
    if "health" in out:
        t.add_row("service", str(out["health"]))
        t.add_row("metrics", out["metrics_url"])
    console.print(t)


def _health(url: str) -> str:
    import requests

    try:
        r = requests.get(url.rstrip("/") + "/health", timeout=3)
        d = r.json()
        return "healthy" if d.get("ok") else f"unhealthy: {d.get('last_error')}"
    except (requests.RequestException, ValueError) as e:
        return f"unreachable ({type(e).__name__})"


@oracle.command("admit")
@click.argument("operator", type=ADDRESS)
@click.option("--threshold", type=click.IntRange(1, 32), default=None,
              help="Signatures a report needs afterwards (default: a strict majority of the operators).")  # fmt: skip
@signer_options
@chain_options
@yes_option
def oracle_admit(operator: str, threshold: int | None, signer: Signer, chain: Chain, yes: bool) -> None:
    """Governance: add OPERATOR to the quorum (OracleHub.add_operator; the signer needs OracleHub's
    admin role: the deployer on a local chain, the Timelock on a public one), keep the threshold
    a strict majority, and make it an AuditBeacon member (it reveals for the audit draw)."""
    acct = account(signer, chain)
    with session(chain) as h:
        hub = h.hub
        admin_role = b"\x00" * 32
        if not hub.hasRole(admin_role, acct.address):
            raise click.ClickException(
                f"{acct.address} lacks OracleHub's admin role: operators are admitted by governance "
                "(on a public network, a Timelock proposal calling OracleHub.add_operator)"
            )
        if hub.is_operator(operator):
            raise click.ClickException(f"{operator} is already an operator")
        stake, minimum = int(hub.operator_stake(operator)), int(hub.min_operator_stake())
        if stake < minimum:
            raise click.ClickException(
                f"{operator} has {tokens(stake)} GPU bonded, below the {tokens(minimum)} minimum: "
                "it runs `gpunet oracle stake AMOUNT` first"
            )
        n = int(hub.operator_count()) + 1
        m = threshold or n // 2 + 1
        if m * 2 <= n:
            raise click.UsageError(f"--threshold {m} of {n} operators is not a strict majority")
        confirm(yes, f"admit {operator} to the quorum ({m} of {n} signatures per report)")
        tx = send("add_operator", hub.add_operator, operator, sender=acct)
        if int(hub.threshold()) != m:
            send("set_threshold", hub.set_threshold, m, sender=acct)
        beacon_note = _admit_to_beacon(h, operator, acct)
    console.print(f"{operator} admitted: the quorum is {m} of {n}; tx {tx.txn_hash}{beacon_note}")


def _admit_to_beacon(h, operator: str, acct) -> str:
    """Makes the new operator an AuditBeacon member too (it reveals for the audit draw; its
    `oracle run` commits its hash chain at start). Returns a note for the admit line."""
    beacon = getattr(h, "beacon", None)
    if beacon is None:
        return ""
    if int(beacon.members(operator).active_until) > int(beacon.current_round()):
        return "; already an AuditBeacon member"
    if not beacon.hasRole(b"\x00" * 32, acct.address):
        return f"; {acct.address} lacks AuditBeacon's admin role: governance adds it there (add_member)"
    send("add_member", beacon.add_member, operator, sender=acct)
    return "; AuditBeacon member two rounds from now (its `oracle run` commits a hash chain at start)"
