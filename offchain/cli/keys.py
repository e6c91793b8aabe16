"""`gpunet keys`: the X25519 encryption keys sealed jobs are opened with (offchain/sealing.py).

Where each role's key file is: a provider's agent keeps `<--state-dir>/encryption-key.json`, an
oracle operator `<--db without .sqlite>.keys.json`, a user `~/.gpunet/keys/<address>.json` (or
--key-file / GPUNET_KEY_FILE). Agents and operators publish their current key in KeyDirectory
themselves; `rotate` makes a new key, keeps the old ones (to open jobs sealed before) and
publishes the new one; a running agent or operator picks it up within a minute. A user's own
file is never published (only the user opens its own wraps): `rotate` renews it locally. A lost
file: `rotate` with the path makes a new file and publishes its key (jobs sealed to the lost key
stay unreadable to this account).
"""

from __future__ import annotations

import json

import click

from offchain.cli.common import (
    Chain,
    Signer,
    account,
    chain_options,
    confirm,
    json_option,
    out,
    session,
    signer_options,
    yes_option,
)


@click.group("keys")
def keys_group() -> None:
    """Encryption keys for sealed jobs: show the published one, rotate."""


def _load(path: str, address: str | None = None):
    from offchain.sealing import Keyring, SealError

    try:
        ring = Keyring.load(path)
    except SealError as e:
        raise click.UsageError(str(e)) from None
    if address is not None and ring.address != address.lower():
        raise click.UsageError(f"key file {path} belongs to {ring.address}, not the signer {address}")
    return ring


@keys_group.command("show")
@click.option("--key-file", required=True, type=click.Path(dir_okay=False, exists=True), help="The key file.")
@json_option
@chain_options
def keys_show(key_file: str, as_json: bool, chain: Chain) -> None:
    """The key file's account, current key and versions, and what KeyDirectory holds for it."""
    from offchain.chain import keys

    ring = _load(key_file)
    with session(chain) as h:
        if not keys.has_directory(h):
            raise click.ClickException("this deployment has no KeyDirectory: jobs cannot be sealed on it")
        onchain = keys.recipients(h, [ring.address])[ring.address]
    info = {
        "account": ring.address,
        "kind": "user (never published)" if ring.self_numbered else "published (an agent's or operator's)",
        "current_version": ring.current,
        "versions": sorted(ring.keys),
        "public_key": ring.public_key().hex(),
        "published_version": onchain.version if onchain else 0,
        "published_matches": bool(onchain and onchain.public_key == ring.public_key()),
    }
    if as_json:
        click.echo(json.dumps(info))
        return
    for k, v in info.items():
        out.print(f"{k}: {v}")
    if ring.self_numbered:
        out.print("a user's own key is not published: only you open the wraps to you, with this file")


@keys_group.command("rotate")
@click.option("--key-file", required=True, type=click.Path(dir_okay=False),
              help="The key file (a missing one is made anew: the lost-key case).")  # fmt: skip
@signer_options
@chain_options
@yes_option
def keys_rotate(key_file: str, signer: Signer, chain: Chain, yes: bool) -> None:
    """A new current key (the old ones stay in the file: jobs sealed to them still open). An
    agent's or operator's key is published in KeyDirectory (a transaction); a user's own key
    file is renewed locally. Sign as the key file's account."""
    from pathlib import Path

    from offchain.chain import keys
    from offchain.sealing import SealError

    acct = account(signer, chain)
    path = Path(key_file)
    ring = _load(key_file, acct.address) if path.exists() else None
    publishes = ring is None or not ring.self_numbered
    with session(chain) as h:
        if not keys.has_directory(h):
            raise click.ClickException("this deployment has no KeyDirectory: jobs cannot be sealed on it")
        if publishes:
            what = "make a new key file" if ring is None else "rotate the key"
            confirm(yes, f"{what} {key_file} and publish its key in KeyDirectory as {acct.address}")
        try:
            ring, published = keys.rotate(h, acct, path)
        except SealError as e:
            raise click.ClickException(str(e)) from None
    if published:
        out.print(f"{ring.address}: key version {ring.current} published ({ring.public_key().hex()}); "
                  f"{len(ring.keys)} key(s) kept in {key_file}")  # fmt: skip
    else:
        out.print(f"{ring.address}: new key {ring.current} in {key_file} (a user's own key: not published); "
                  f"{len(ring.keys)} key(s) kept, jobs sealed before still open")  # fmt: skip
