"""`gpunet job …`: the user's commands (submit, list, show, logs, result, dispute, cancel, expire).

Everything the commands do is in `offchain.client.sdk`; this module parses options, prints tables
and progress, and turns `ClientError` into a one-line message with exit status 1.

    gpunet job submit SPEC.json [--provider ADDR | --open] [--class ID|NAME | --gpu MODEL]
                      [--max-price USD_PER_UNIT] [--max-slippage-bps BPS | --max-tokens TOKENS]
                      [--blob FILE ...] [--no-wait] [--timeout S] [--json] [--yes]
                      (--account ALIAS | --test-account N) [--network ...]
    gpunet job show ID [--json]                 (also: `job status ID`)
    gpunet job result ID -o DIR [--verify]
    gpunet job dispute|cancel|expire ID (--account ALIAS | --test-account N)
    gpunet job deposit [TOKENS] / withdraw-deposit [TOKENS]   (prepaid tokens for signed orders)

A job's ID is a number; a signed order's job has the order's digest as its id (decimal or 0x-hex).

Prices are in USD: offers and --max-price are USD per compute unit (e.g. 0.002). The job
escrows the tokens its USD value buys at the on-chain token/USD price (Settlement.quote); the
transaction is bounded by --max-tokens (default: that quote + --max-slippage-bps, 1%).

`job submit` prints the offers it ranked (`sdk.Offer.rank_key`): cheapest first, then fewer
failed+expired jobs, then higher uptime, then more completed jobs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click
from rich.table import Table

from offchain.cli.common import (
    ADDRESS,
    GPU_CLASS,
    JOB_ID,
    AmountType,
    Chain,
    Signer,
    account,
    chain_options,
    confirm,
    err,
    json_option,
    out,
    session,
    signer_options,
    yes_option,
)


def key_file_option(f: Callable) -> Callable:
    return click.option(
        "--key-file", type=click.Path(dir_okay=False), default=None, envvar="GPUNET_KEY_FILE",
        help="Your encryption keys for sealed jobs (default ~/.gpunet/keys/<the job user's address>.json, "
        "made on first use; env GPUNET_KEY_FILE).",
    )(f)  # fmt: skip


def _usd_option(value: str | None, what: str, parse: Callable[[str, str], int]) -> int | None:
    from offchain.client.sdk import ClientError

    if value is None:
        return None
    try:
        return parse(value, what)
    except ClientError as e:
        raise click.BadParameter(str(e)) from None


def _offer_table(offers: list, targets: list, units: int) -> Table:
    from offchain.client.sdk import fmt_usd

    chosen = {o.provider for o in targets}
    from offchain.client.timeline import class_name

    cls = f"{class_name(offers[0].class_id)} ({offers[0].class_id})" if offers else "?"
    t = Table(title=f"offers for class {cls} ({units} compute units)")
    cols = ("", "provider", "USD/unit", "job USD", "failed+expired", "uptime", "completed", "machines", "endpoint")
    for col in cols:
        t.add_column(col)
    for o in offers:
        t.add_row(
            "*" if o.provider in chosen else "",
            o.provider,
            fmt_usd(o.price),
            fmt_usd(o.price * units),
            str(o.bad_record),
            o.uptime_text(),
            str(o.reputation["completed"]),
            ",".join(map(str, o.machine_ids)),
            o.endpoint,
        )
    return t


@click.group()
def job() -> None:
    """User commands: submit jobs, follow them, fetch and check results, dispute."""


@job.command("submit")
@click.argument("spec_path", metavar="SPEC.json", type=click.Path(exists=True, dir_okay=False))
@click.option("--provider", type=ADDRESS, default=None, help="Take this provider's offer (default: the best-ranked).")
@click.option("--open", "open_job", is_flag=True, help="An open job any provider of the class may accept.")
@click.option(
    "--max-price",
    metavar="USD",
    default=None,
    help="Highest price per compute unit in US dollars, a decimal (e.g. 0.002 = $0.002 per unit, 18 decimals "
    "at most). Open jobs are priced at exactly this.",
)
@click.option(
    "--max-slippage-bps",
    type=click.IntRange(0, 10_000),
    default=100,
    show_default=True,
    help="Tokens the job may escrow above the client's quote if the token/USD price moves before "
    "the transaction, in basis points (100 = 1%).",
)
@click.option(
    "--max-tokens",
    metavar="TOKENS",
    default=None,
    help="Explicit cap on the tokens escrowed, a decimal (e.g. 12.5), instead of the quote + "
    "--max-slippage-bps; the permit is signed for this amount.",
)
@click.option("--blob", "blob_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An input file the spec names by sha256 (repeat for each).")  # fmt: skip
@click.option("--class", "class_opt", type=GPU_CLASS, default=None,
              help="GPU class id or name (default: spec meta.class or CPU).")  # fmt: skip
@click.option("--gpu", "gpu_model", default=None, help="GPU model, e.g. H100 or 4090 (picks its class; or --class).")
@click.option(
    "--accept-window", type=click.IntRange(1), default=None, help="Seconds a provider has to accept (default 600)."
)
@click.option(
    "--complete-within", type=click.IntRange(1), default=None, help="Seconds to deliver after accepting (default 3600)."
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the result to be submitted.")
@click.option("--timeout", type=click.FloatRange(0), default=900.0, show_default=True, help="Seconds to wait.")
@click.option(
    "--public",
    is_flag=True,
    help="Send the spec, inputs and result in plaintext (default: sealed to the provider, auditors and you).",
)
@key_file_option
@json_option
@yes_option
@signer_options
@chain_options
def job_submit(
    spec_path, provider, open_job, max_price, max_slippage_bps, max_tokens, blob_files, class_opt, gpu_model,
    accept_window, complete_within, wait, timeout, public, key_file, as_json, yes, signer: Signer, chain: Chain,
) -> None:  # fmt: skip
    """Submit a job: validate SPEC.json, rank offers (USD per compute unit), quote the job in
    tokens at the on-chain token/USD price, seal the spec and inputs (end to end: only the
    provider, the oracle operators who audit and you can read them; --public sends them in
    plaintext), upload them to the provider, fund it with a permit (one transaction) and wait
    for the result."""
    from offchain.client import sdk
    from offchain.constants import JobStatus

    if provider and open_job:
        raise click.UsageError("give either --provider ADDR or --open, not both")
    if gpu_model is not None:
        if class_opt is not None:
            raise click.UsageError("give either --class or --gpu, not both")
        class_opt = _class_of_model(gpu_model)
    max_price = _usd_option(max_price, "--max-price", sdk.parse_usd)
    max_tokens = _usd_option(max_tokens, "--max-tokens", sdk.parse_tokens)
    console = err if as_json else out
    try:  # the spec is checked before anything touches the chain
        spec = sdk.load_spec(spec_path)
        blobs = sdk.read_blob_files(blob_files)
        units = sdk.check_spec(spec, blobs)
        class_id = sdk.spec_class(spec, class_opt)
    except sdk.ClientError as e:  # a file the user named is wrong: a usage error (exit 2)
        raise click.UsageError(str(e)) from None
    acct = account(signer, chain)
    keyring = None
    new_key_file = False
    if not public:
        from offchain.client.sealed import key_path, user_keyring

        new_key_file = not key_path(acct.address, key_file).exists()
        try:
            keyring = user_keyring(acct.address, key_file)
        except sdk.ClientError as e:
            raise click.UsageError(str(e)) from None
    with session(chain) as h:

        def show_offers(offers, targets) -> None:
            console.print(_offer_table(offers, targets, units))
            who = "an open job" if not targets else ", ".join(o.provider for o in targets)
            confirm(yes, f"fund job ({units} compute units, class {class_id}) with {who}")

        sub = sdk.submit(
            h, acct, spec, blobs, class_id=class_id, provider=provider, open_job=open_job,
            max_price=max_price, accept_window=accept_window, complete_within=complete_within,
            on_offers=show_offers, max_slippage_bps=max_slippage_bps, max_tokens=max_tokens, keyring=keyring,
        )  # fmt: skip
        who = "open job" if sub.provider is None else f"provider {sub.provider}"
        console.print(
            f"job {sub.job_id} funded: {who}, {sub.units} units at {sdk.fmt_usd(sub.price)}/unit = "
            f"{sdk.fmt_usd(sub.usd_value)} = {sdk.tokens(sub.payment)} tokens escrowed "
            f"(at most {sdk.tokens(sub.max_tokens)}); spec {sub.spec_hash} uploaded "
            f"{'in plaintext' if public else 'sealed'} to {', '.join(sub.uploaded_to)}"
        )
        if keyring is not None:
            console.print(
                f"sealed to the provider, the oracle operators and you; your key file: {keyring.path}"
                + (" (new: keep it with your account's key, `gpunet job result` needs it)" if new_key_file else "")
            )
        final = None
        if wait:
            with console.status(f"job {sub.job_id}: waiting for a provider...") as spinner:

                def progress(st: JobStatus, elapsed: float) -> None:
                    spinner.update(f"job {sub.job_id}: {st.name} ({elapsed:.0f}s)")

                final = sdk.wait(h, sub.job_id, timeout=timeout, on_status=progress)
            info = sdk.status(h, sub.job_id)
            console.print(
                f"job {sub.job_id}: {final.name}"
                + (f", result {info['result_hash']} at {info['result_uri']}" if "result_uri" in info else "")
            )
            if "result_uri" in info:
                console.print(f"fetch it with: gpunet job result {sub.job_id} -o DIR")
    if as_json:
        click.echo(json.dumps({
            "job_id": sub.job_id, "provider": sub.provider, "class_id": sub.class_id, "price": sub.price,
            "price_usd": sdk.fmt_usd(sub.price), "units": sub.units, "usd_value": sub.usd_value,
            "payment": sub.payment, "max_tokens": sub.max_tokens, "spec_hash": sub.spec_hash,
            "uploaded_to": sub.uploaded_to, "status": final.name if final else "OPEN", "sealed": not public,
        }))  # fmt: skip
    else:
        click.echo(f"job id: {sub.job_id}")


@job.command("show")
@click.argument("job_id", type=JOB_ID)
@json_option
@chain_options
def job_show(job_id: int, as_json: bool, chain: Chain) -> None:
    """Show a job: its status, its data rebuilt from events (checked against the chain) and where
    its result is served. `gpunet job logs ID` tells its story and why it waits."""
    from offchain.client import sdk

    with session(chain) as h:
        info = sdk.status(h, job_id)
    if as_json:
        click.echo(json.dumps(info, default=str))
        return
    t = Table(title=f"job {job_id}: {info['status']}", show_header=False)
    for k, v in info.items():
        t.add_row(k, json.dumps(v) if isinstance(v, dict) else str(v))
    out.print(t)


@job.command("result")
@click.argument("job_id", type=JOB_ID)
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for output.bin, output.pt and output.json.")  # fmt: skip
@click.option("--verify", is_flag=True, help="Also re-execute the job here and compare (grounds to dispute).")
@click.option("--device", default=None, help="torch device for --verify (default cpu).")
@key_file_option
@signer_options
@chain_options
def job_result(
    job_id: int, out_dir: str, verify: bool, device: str | None, key_file: str | None, signer: Signer, chain: Chain
) -> None:
    """Download a job's result, check it against the on-chain hash, open it if it is sealed
    (with the job user's key file) and write it to DIR. Agents serve a job's blobs only to its
    user (and its provider and auditors): sign as the user with --account / --test-account."""
    from offchain.client import sdk
    from offchain.client.sealed import KeyFileNeeded, key_path
    from offchain.sealing import Keyring, SealError

    with session(chain) as h:
        user = str(sdk.status(h, job_id).get("user", ""))
        path = key_path(user, key_file)
        try:
            keyring = Keyring.load(path) if path.exists() else None
        except SealError as e:
            raise click.UsageError(str(e)) from None
        acct = account(signer, chain) if signer.given else None
        try:
            res = sdk.fetch_result(h, job_id, out_dir, keyring=keyring, account=acct)
        except KeyFileNeeded:
            raise sdk.ClientError(
                f"the job is sealed: its user's key file is needed to read it, and {path} does not exist: pass the "
                f"key file `gpunet job submit` made for {user} with --key-file"
            ) from None
        out.print(f"job {job_id}: result {res.result_hash} verified against the chain; output {len(res.data)} bytes")
        for f in res.files.values():
            out.print(f"  wrote {f}")
        if verify:
            with out.status("re-executing the job locally..."):
                cmp = sdk.verify_locally(h, job_id, res, device, keyring=keyring, account=acct)
            if cmp:
                out.print(f"local re-execution matches: {cmp.detail}")
            else:
                out.print(f"[bold red]MISMATCH[/] with a local re-execution: {cmp.detail}")
                out.print(f"dispute it before the challenge window ends: gpunet job dispute {job_id}")
                sys.exit(2)


@job.command("dispute")
@click.argument("job_id", type=JOB_ID)
@yes_option
@signer_options
@chain_options
def job_dispute(job_id: int, yes: bool, signer: Signer, chain: Chain) -> None:
    """Dispute a submitted result (posts the bond; the oracle quorum re-executes the job)."""
    from offchain.client import sdk

    acct = account(signer, chain)
    with session(chain) as h:
        info = sdk.status(h, job_id)  # the state and the owner are checked before asking
        st = info["status"]
        if st != "SUBMITTED":
            raise click.ClickException(f"job {job_id} is {st}: only a Submitted result can be disputed")
        user = str(info["user"])
        if user.lower() != acct.address.lower():
            raise click.ClickException(f"job {job_id} belongs to {user}: only a job's user may dispute it")
        confirm(yes, f"dispute job {job_id}, posting a bond (returned with a reward if the result is wrong)")
        receipt = sdk.dispute(h, acct, job_id)
        d = h.market.disputes(job_id)
    out.print(
        f"job {job_id} disputed (bond {sdk.tokens(int(d.bond))} tokens, verdict due by {int(d.audit_deadline)}); "
        f"tx {receipt.txn_hash}"
    )


@job.command("cancel")
@click.argument("job_id", type=JOB_ID)
@signer_options
@chain_options
def job_cancel(job_id: int, signer: Signer, chain: Chain) -> None:
    """Take back the payment of your job that no provider has accepted."""
    from offchain.client import sdk

    acct = account(signer, chain)
    with session(chain) as h:
        receipt = sdk.cancel(h, acct, job_id)
    out.print(f"job {job_id} cancelled, payment refunded; tx {receipt.txn_hash}")


@job.command("expire")
@click.argument("job_id", type=JOB_ID)
@signer_options
@chain_options
def job_expire(job_id: int, signer: Signer, chain: Chain) -> None:
    """End a job whose deadline passed (anyone may): refund, plus the no-show penalty if a
    provider accepted it and never delivered."""
    from offchain.client import sdk

    acct = account(signer, chain)
    with session(chain) as h:
        receipt = sdk.expire(h, acct, job_id)
        logs = receipt.decode_logs(h.market.JobExpired)
    if logs:
        a = logs[0].event_arguments
        out.print(
            f"job {job_id} expired: the user was refunded {sdk.tokens(int(a['refund']))} tokens plus a no-show "
            f"penalty of {sdk.tokens(int(a['penalty']))}; tx {receipt.txn_hash}"
        )
    else:
        out.print(f"job {job_id} was never accepted: cancelled, payment refunded; tx {receipt.txn_hash}")


@job.command("deposit")
@click.argument("amount", type=AmountType("tokens"), required=False)
@yes_option
@signer_options
@chain_options
def job_deposit(amount: int | None, yes: bool, signer: Signer, chain: Chain) -> None:
    """Prepay TOKENS for your signed orders (a provider's fill takes the payment from the deposit:
    no token transfer per job); without AMOUNT, show your deposit. Take it back at any time
    with `gpunet job withdraw-deposit`."""
    from offchain.client import sdk

    acct = account(signer, chain)
    with session(chain) as h:
        if amount is None:
            out.print(f"{acct.address} has {sdk.tokens(sdk.deposit_of(h, acct.address))} tokens deposited")
            return
        confirm(yes, f"deposit {sdk.tokens(amount)} tokens in JobMarket for your signed orders")
        receipt = sdk.deposit(h, acct, amount)
        have = sdk.deposit_of(h, acct.address)
    out.print(f"deposited {sdk.tokens(amount)} tokens (now {sdk.tokens(have)}); tx {receipt.txn_hash}")


@job.command("withdraw-deposit")
@click.argument("amount", type=AmountType("tokens"), required=False)
@signer_options
@chain_options
def job_withdraw_deposit(amount: int | None, signer: Signer, chain: Chain) -> None:
    """Take back AMOUNT tokens of your deposit (all of it without AMOUNT). Never paused."""
    from offchain.client import sdk

    acct = account(signer, chain)
    with session(chain) as h:
        receipt = sdk.withdraw_deposit(h, acct, amount)
        have = sdk.deposit_of(h, acct.address)
    out.print(f"deposit withdrawn (left: {sdk.tokens(have)} tokens); tx {receipt.txn_hash}")


# `status` was `show`'s twin; one command now, both names kept.
job.add_command(job_show, "status")


def _class_of_model(model: str) -> int:
    """The GPU class whose name contains `model` (case-insensitive), e.g. "h100" -> H100 SXM5."""
    from offchain.benchmark.gpu_classes import GPU_CLASS_TABLE

    needle = model.strip().lower()
    hits = [c for c in GPU_CLASS_TABLE if needle and needle in c.name.lower()]
    if len(hits) != 1:
        names = ", ".join(c.name for c in GPU_CLASS_TABLE)
        what = "matches no class" if not hits else f"matches {len(hits)} classes"
        raise click.BadParameter(f"{model!r} {what} (classes: {names})", param_hint="--gpu")
    return hits[0].class_id
