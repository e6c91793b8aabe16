"""Signed job orders from the command line (docs/PROTOCOL.md, "Signed orders"). Adds commands to
the `job` and `provider` groups; what they do is in offchain/client/orders.py.

    gpunet job sign-order --spec-hash HEX --units N (--provider ADDR | --open --price USD) [--class C]
                          [--price USD] [--max-tokens T | --max-slippage-bps BPS] [--accept-window S]
                          [--complete-within S] -o ORDER.json
    gpunet provider fill ORDER.json --machine ID [--result-hash HEX --result-uri URI] [--yes]

The user signs (no transaction; the escrow is taken at the fill, from its deposit or allowance);
the provider fills, and with a result the job is Submitted at once. The spec and inputs reach the
provider as for any job; the provider agent does not fill orders by itself yet.
"""

from __future__ import annotations

import click

from offchain.chain.jobs import ZERO_ADDRESS
from offchain.cli.common import (
    ADDRESS,
    GPU_CLASS,
    AmountType,
    Chain,
    Signer,
    account,
    chain_options,
    confirm,
    out,
    session,
    signer_options,
    yes_option,
)
from offchain.cli.job import job
from offchain.cli.provider import provider


def _hash32(value: str, what: str) -> bytes:
    text = value.strip().removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise click.BadParameter(f"{value!r} is not 32 bytes of hex (64 digits)", param_hint=what)
    return raw


@job.command("sign-order")
@click.option("--spec-hash", required=True, help="The job spec's content hash (64 hex digits).")
@click.option("--units", type=click.IntRange(1), required=True, help="Compute units.")
@click.option("--provider", "provider_addr", type=ADDRESS, default=None, help="The provider that may fill it.")
@click.option("--open", "open_order", is_flag=True, help="Any provider with a machine of the class may fill it.")
@click.option("--class", "class_id", type=GPU_CLASS, default="1", show_default=True, help="GPU class id or name.")
@click.option("--price", type=AmountType("USD"), default=None, help="USD per compute unit (default: the offer).")
@click.option("--max-tokens", type=AmountType("tokens"), default=None, help="Most tokens the fill may escrow.")
@click.option("--max-slippage-bps", type=click.IntRange(0, 10_000), default=100, show_default=True)
@click.option("--accept-window", type=click.IntRange(1), default=600, show_default=True, help="Seconds to fill it.")
@click.option("--complete-within", type=click.IntRange(1), default=3600, show_default=True,
              help="Seconds to deliver after a fill without the result.")  # fmt: skip
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), required=True, help="Order file to write.")
@signer_options
@chain_options
def job_sign_order(spec_hash, units, provider_addr, open_order, class_id, price, max_tokens, max_slippage_bps,
                   accept_window, complete_within, out_path, signer: Signer, chain: Chain) -> None:  # fmt: skip
    """Sign a job order (no transaction): hand ORDER.json to the provider, which fills it."""
    from offchain.client import sdk

    if (provider_addr is None) == (not open_order):
        raise click.UsageError("give either --provider ADDR or --open")
    spec = _hash32(spec_hash, "--spec-hash")
    acct = account(signer, chain)
    with session(chain) as h:
        data = sdk.make_order(
            h, acct, provider=provider_addr or ZERO_ADDRESS, class_id=class_id, spec_hash=spec, units=units,
            price=price, accept_window=accept_window, complete_within=complete_within, max_tokens=max_tokens,
            max_slippage_bps=max_slippage_bps,
        )  # fmt: skip
    sdk.save_order(data, out_path)
    o = data["order"]
    out.print(
        f"order signed: job {data['job_id']} once filled ({hex(data['job_id'])}); at most "
        f"{sdk.tokens(o['max_tokens'])} tokens, fill by {o['accept_by']} (unix time); written to {out_path}"
    )


@provider.command("fill")
@click.argument("order_path", metavar="ORDER.json", type=click.Path(exists=True, dir_okay=False))
@click.option("--machine", "machine_id", type=click.IntRange(1), required=True, help="Your Active machine.")
@click.option("--result-hash", default=None, help="The output's sha256 (64 hex digits): fill and submit at once.")
@click.option("--result-uri", default="", help="Where the output is served (with --result-hash).")
@yes_option
@signer_options
@chain_options
def provider_fill(order_path, machine_id, result_hash, result_uri, yes: bool, signer: Signer, chain: Chain) -> None:
    """Fill a user's signed order: its escrow is taken, your collateral locked, the job yours."""
    from offchain.client import sdk

    result = _hash32(result_hash, "--result-hash") if result_hash else b"\0" * 32
    if result_hash and not result_uri:
        raise click.UsageError("--result-hash needs --result-uri (where the output is served)")
    data = sdk.load_order(order_path)
    acct = account(signer, chain)
    with session(chain) as h:
        o = data["order"]
        confirm(yes, f"fill job {data['job_id']}: {o['compute_units']} units for {o['user']} on machine {machine_id}")
        job_id, receipt = sdk.fill_order(h, acct, data, machine_id, result, result_uri)
    state = "submitted" if result_hash else "running: submit its result with the agent or `submit_result`"
    out.print(f"job {job_id} filled ({state}); tx {receipt.txn_hash}")
