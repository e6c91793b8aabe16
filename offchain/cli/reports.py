"""Read-only views: `gpunet job list`, `gpunet job logs ID`, `gpunet provider jobs`,
`gpunet provider earnings`. They add commands to the `job` and `provider` groups; what they read
is in offchain/client/timeline.py and offchain/client/earnings.py, this module prints it.

    gpunet job list [--user ADDR | --account ALIAS | --test-account N] [--state STATE ...] [--json]
    gpunet job logs ID [--json]
    gpunet provider jobs [ADDRESS | --account ALIAS | --test-account N] [--state STATE ...] [--json]
    gpunet provider earnings [ADDRESS | signer] [--epochs N | --since UNIX] [--json]
"""

from __future__ import annotations

import time

import click
from rich import box
from rich.table import Table
from rich.text import Text

from offchain.cli.common import (
    ADDRESS,
    JOB_ID,
    Chain,
    Signer,
    account,
    chain_options,
    emit_json,
    json_option,
    out,
    session,
    short,
    signer_options,
    tokens,
    usd,
)
from offchain.cli.job import job
from offchain.cli.provider import provider
from offchain.constants import JobStatus

STATES = [s.name for s in JobStatus if s != JobStatus.NONE]


def _state_option(f):
    return click.option("--state", "states", multiple=True, type=click.Choice(STATES, case_sensitive=False),
                        help="Only jobs in this state (repeat for several).")(f)  # fmt: skip


def signer_address(signer: Signer, chain: Chain) -> str:
    """The signer's address without unlocking it: these commands sign nothing, so a keystore
    account costs no passphrase prompt."""
    if signer.account and signer.test_account is None:
        from offchain.chain.project import use_gpunet_project

        use_gpunet_project()
        from ape import accounts

        if signer.account in list(accounts.aliases):
            return accounts.load(signer.account).address
    return account(signer, chain).address  # a test account, or the one-line error


def _who(address: str | None, signer: Signer, chain: Chain, what: str) -> str:
    if address:
        return address
    if not signer.given:
        raise click.UsageError(f"give {what}, or a signer (--account ALIAS / --test-account N)")
    return signer_address(signer, chain)


def _client_errors(fn):
    """ClientError (e.g. a job that does not exist) -> one line, exit status 1."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from offchain.client.sdk import ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _clock(ts: int) -> str:
    return time.strftime("%m-%d %H:%M", time.gmtime(int(ts)))


# ---------------------------------------------------------------------------- job lists


def jobs_table(rows: list[dict], title: str, *, counterpart: str) -> Table:
    """One row per job, a section per state. `counterpart`: "provider" (a user's view) or "user"."""
    t = Table(title=title, box=box.SIMPLE_HEAD)
    for col, just in (("id", "right"), ("state", "left"), (counterpart, "left"), ("machine", "right"),
                      ("class", "right"), ("USD", "right"), ("tokens", "right"), ("created UTC", "left"),
                      ("age", "right")):  # fmt: skip
        t.add_column(col, justify=just)
    for i, r in enumerate(rows):
        last = i + 1 == len(rows) or rows[i + 1]["status"] != r["status"]
        who = r[counterpart]
        t.add_row(
            str(r["job_id"]), r["status"], short(who) if who else "(open)",
            "-" if r["machine_id"] is None else str(r["machine_id"]), str(r["class_id"]), usd(r["usd_value"]),
            tokens(r["payment"]), _clock(r["created_at"]), _age(r["age_s"]), end_section=last,
        )  # fmt: skip
    return t


def _print_jobs(rows: list[dict], title: str, counterpart: str, empty: str) -> None:
    if not rows:
        out.print(empty)
        return
    out.print(jobs_table(rows, title, counterpart=counterpart))
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    out.print(", ".join(f"{n} {s}" for s, n in counts.items()))
    out.print("a job's story and why it waits: gpunet job logs ID")


@job.command("list")
@click.option("--user", type=ADDRESS, default=None, help="Whose jobs (default: the signer's).")
@_state_option
@json_option
@signer_options
@chain_options
@_client_errors
def job_list(user: str | None, states: tuple[str, ...], as_json: bool, signer: Signer, chain: Chain) -> None:
    """Your jobs (or --user's) by state: provider, class, USD value, tokens escrowed, age."""
    from offchain.client.timeline import jobs_of

    who = _who(user, signer, chain, "--user ADDR")
    with session(chain) as h:
        rows = jobs_of(h, user=who, states=states or None)
    if as_json:
        emit_json({"user": who, "states": list(states), "jobs": rows})
        return
    what = f" in state {', '.join(states)}" if states else ""
    _print_jobs(rows, f"jobs of {who}", "provider", f"{who} has no jobs{what}")


@provider.command("jobs")
@click.argument("address", type=ADDRESS, required=False)
@_state_option
@json_option
@signer_options
@chain_options
@_client_errors
def provider_jobs(address: str | None, states: tuple[str, ...], as_json: bool, signer: Signer, chain: Chain) -> None:
    """Jobs offered to or accepted by a provider (ADDRESS, default the signer's), by state."""
    from offchain.client.timeline import jobs_of

    who = _who(address, signer, chain, "the provider's ADDRESS")
    with session(chain) as h:
        rows = jobs_of(h, provider=who, states=states or None)
    if as_json:
        emit_json({"provider": who, "states": list(states), "jobs": rows})
        return
    what = f" in state {', '.join(states)}" if states else ""
    _print_jobs(rows, f"jobs of provider {who}", "user", f"provider {who} has no jobs{what}")


# ---------------------------------------------------------------------------- one job's story


@job.command("logs")
@click.argument("job_id", type=JOB_ID)
@json_option
@chain_options
@_client_errors
def job_logs(job_id: int, as_json: bool, chain: Chain) -> None:
    """A job's story from chain events (who accepted it on which machine, its result, the audit
    draw, disputes, verdicts, settlement), and why it waits now and until when."""
    from offchain.client.timeline import timeline

    with session(chain) as h:
        tl = timeline(h, job_id)
    if as_json:
        emit_json(tl)
        return
    t = Table(title=f"job {job_id}: {tl['status']}", box=box.SIMPLE_HEAD)
    for col in ("time (UTC)", "block", "event", "what"):
        t.add_column(col, overflow="fold")
    for s in tl["steps"]:
        t.add_row(time.strftime("%m-%d %H:%M:%S", time.gmtime(s["time"])), str(s["block"]), s["event"],
                  Text(s["text"]))  # fmt: skip
    out.print(t)
    out.print(Text(("now: " if tl["waiting"]["until"] else "") + tl["waiting"]["text"]))


# ---------------------------------------------------------------------------- earnings


def _cents(v: int) -> str:
    return f"{'-' if v < 0 else ''}${abs(v) / 10**18:,.2f}"


def _amount(wei: int, usd_value: int | None, sign: int = 1) -> Text:
    """Tokens (4 decimals) over their USD value (cents; "?" when no price is known)."""
    if not wei:
        return Text("-")
    text = Text(f"{sign * wei / 10**18:,.4f}")
    text.append("\n" + ("?" if usd_value is None else _cents(sign * usd_value)), style="dim")
    return text


def earnings_table(e: dict) -> Table:
    kind = "epoch" if e["emissions_epochs"] else "day"
    t = Table(title=f"earnings of {e['provider']} (tokens; USD below)", box=box.SIMPLE_HEAD)
    for col in (kind, "jobs", "job income", "emissions", "slashed", "fees", "net"):
        t.add_column(col, justify="left" if col == kind else "right")
    for b in [*e["epochs"], e["total"]]:
        label = "total" if b["epoch"] is None else f"{b['epoch']}\n{_clock(b['start'])}"
        t.add_row(
            label, str(b["jobs"]), _amount(b["job_income"], b["job_income_usd"]),
            _amount(b["emissions"], b["emissions_usd"]), _amount(b["slashed"], b["slashed_usd"], -1),
            _amount(b["fees"], b["fees_usd"]), _amount(b["net"], b["net_usd"]),
            end_section=b["epoch"] is not None and b is e["epochs"][-1],
        )  # fmt: skip
    return t


def _footnotes(e: dict) -> list[str]:
    p = e["price"]
    price = "price unknown (no fresh token/USD price on-chain)" if p is None else (
        f"the current price, {usd(p['answer'] * 10**18 // 10 ** p['decimals'])} per token")  # fmt: skip
    notes = [
        "job income: tokens Settlement minted for finalized jobs, in USD at their settlement value (usd_net); "
        "fees: the protocol fee of those jobs (already kept out of job income), at the jobs' USD value",
        f"emissions, slashed and net in USD at {price}",
    ]
    for b in e["epochs"]:
        if b["slashes"]:
            why = ", ".join(f"{r} {tokens(a)}" for r, a in b["slashes"].items())
            notes.append(f"slashed in {'epoch' if e['emissions_epochs'] else 'day'} {b['epoch']}: {why}")
    return notes


@provider.command("earnings")
@click.argument("address", type=ADDRESS, required=False)
@click.option("--epochs", type=click.IntRange(1), default=None, help="The last N epochs (the current one included).")
@click.option("--since", type=click.IntRange(0), default=None, metavar="UNIX", help="From this unix time on.")
@json_option
@signer_options
@chain_options
@_client_errors
def provider_earnings(address: str | None, epochs: int | None, since: int | None, as_json: bool, signer: Signer,
                      chain: Chain) -> None:  # fmt: skip
    """Per Emissions epoch and in total: job income minted, emissions claimed, slashes (with
    their reasons), fees and net, in tokens and USD. ADDRESS defaults to the signer's."""
    from offchain.client.earnings import earnings

    if epochs is not None and since is not None:
        raise click.UsageError("give either --epochs N or --since UNIX, not both")
    who = _who(address, signer, chain, "the provider's ADDRESS")
    with session(chain) as h:
        e = earnings(h, who, epochs=epochs, since=since)
    if as_json:
        emit_json(e)
        return
    period = (
        "since deployment"
        if e["since"] is None
        else "since " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(e["since"]))
    )
    if not e["epochs"]:
        out.print(f"provider {who}: nothing earned, claimed or slashed {period}")
        return
    out.print(earnings_table(e))
    for note in [f"period: {period}", *_footnotes(e)]:
        out.print(Text(note))
