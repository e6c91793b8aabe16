"""What every `gpunet` command shares: chain and signer options, the config file, one account
lookup, confirmation prompts and output helpers.

Option values resolve in this order: command-line flag > environment variable > config file >
built-in default. The config file is ./gpunet.toml if present, else
$XDG_CONFIG_HOME/gpunet/config.toml (~/.config/gpunet/config.toml), or the file named by
$GPUNET_CONFIG. Top-level keys apply to every command; a [provider], [job], [oracle], ... table
applies to that group's commands only:

    network = "ethereum:local:foundry"
    rpc = "http://127.0.0.1:8545"
    account = "my-provider"          # ape account alias
    [provider]
    endpoint = "http://203.0.113.7:9650"
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from offchain.constants import ONE_TOKEN

DEFAULT_NETWORK = "ethereum:local:foundry"
CONFIG_ENV = "GPUNET_CONFIG"
# Wide enough for full addresses when piped (rich assumes 80 columns without a terminal).
out = Console(width=None if sys.stdout.isatty() else 120, highlight=False)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120, highlight=False)


# ---------------------------------------------------------------------------- config file


def config_paths() -> list[Path]:
    if os.environ.get(CONFIG_ENV):
        return [Path(os.environ[CONFIG_ENV]).expanduser()]
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path("gpunet.toml"), xdg / "gpunet" / "config.toml"]


def _defaults_for(command: click.Command, values: dict, sections: dict[str, dict], top: bool = True) -> dict:
    """click's default_map for `command` and, nested by name, its sub-commands.

    A group's map holds only its sub-commands' maps and a command's map only its own options, so
    an option never meets a command of the same name (`--provider` vs `gpunet provider`).
    """
    out = {p.name: values[p.name] for p in command.params if isinstance(p, click.Option) and p.name in values}
    for name, sub in getattr(command, "commands", {}).items():
        scoped = {**values, **sections.get(name, {})} if top else values
        out[name] = _defaults_for(sub, scoped, sections, top=False)
    return out


def load_config(group: click.Group) -> dict | None:
    for path in config_paths():
        if not path.is_file():
            if os.environ.get(CONFIG_ENV):
                raise click.UsageError(f"${CONFIG_ENV} names {path}, which does not exist")
            continue
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
            raise click.UsageError(f"{path}: not valid TOML ({e})") from None
        top = {k: v for k, v in data.items() if not isinstance(v, dict)}
        sections = {k: v for k, v in data.items() if isinstance(v, dict)}
        for name in sections:
            if name not in group.commands:
                raise click.UsageError(f"{path}: unknown table [{name}] (tables: {', '.join(sorted(group.commands))})")
        known = _option_names(group)
        for key in [*top, *(k for s in sections.values() for k in s)]:
            if key.replace("-", "_") not in known:
                raise click.UsageError(f"{path}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        norm = {k.replace("-", "_"): v for k, v in top.items()}
        secs = {n: {k.replace("-", "_"): v for k, v in s.items()} for n, s in sections.items()}
        return _defaults_for(group, norm, secs)
    return None


def _walk(group: click.Command) -> Iterator[click.Command]:
    yield group
    for sub in getattr(group, "commands", {}).values():
        yield from _walk(sub)


def _option_names(group: click.Group) -> set[str]:
    return {p.name for c in _walk(group) for p in c.params if isinstance(p, click.Option)}


# ---------------------------------------------------------------------------- parameter types


class AddressType(click.ParamType):
    """A 0x-prefixed 20-byte address, returned checksummed; checked before anything connects."""

    name = "ADDRESS"

    def convert(self, value, param, ctx):
        from eth_utils import is_hex_address, to_checksum_address

        text = str(value).strip()
        if not is_hex_address(text):
            self.fail(f"{text!r} is not an address (0x followed by 40 hex digits)", param, ctx)
        return to_checksum_address(text)


ADDRESS = AddressType()


class ClassType(click.ParamType):
    """A GPU class, by id or name (`gpunet info` lists them); returns the class id."""

    name = "CLASS"

    def convert(self, value, param, ctx):
        from offchain.benchmark.gpu_classes import get_class

        if isinstance(value, int):
            value = str(value)
        try:
            return get_class(value).class_id
        except KeyError as e:
            self.fail(str(e.args[0]), param, ctx)


GPU_CLASS = ClassType()


class JobIdType(click.ParamType):
    """A job id: a number from 1 (create_job's jobs count 1, 2, ...) or, for a signed order's
    job (its id is the order's 256-bit digest), that number in decimal or 0x-prefixed hex."""

    name = "ID"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            job_id = value
        else:
            text = str(value).strip()
            try:
                job_id = int(text, 16) if text.lower().startswith("0x") else int(text)
            except ValueError:
                self.fail(f"{text!r} is not a job id (a number, or 0x followed by hex digits)", param, ctx)
        if not 1 <= job_id < 2**256:
            self.fail(f"{value} is not a job id (1 .. 2**256 - 1)", param, ctx)
        return job_id


JOB_ID = JobIdType()


class AmountType(click.ParamType):
    """A positive decimal amount with 18 decimals (tokens or US dollars); returns wei."""

    def __init__(self, what: str = "amount", allow_zero: bool = False):
        self.name = what.upper()
        self.what = what
        self.allow_zero = allow_zero

    def convert(self, value, param, ctx):
        from decimal import Decimal, InvalidOperation

        if isinstance(value, int):
            return value
        text = str(value).strip().lstrip("$").replace("_", "").replace(",", "")
        try:
            d = Decimal(text)
        except InvalidOperation:
            self.fail(f"{value!r} is not a number (e.g. 12.5)", param, ctx)
        if not d.is_finite():
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if d < 0 or (d == 0 and not self.allow_zero):
            self.fail(f"{value} must be {'zero or ' if self.allow_zero else ''}positive", param, ctx)
        wei = d * ONE_TOKEN
        if wei != wei.to_integral_value():
            self.fail(f"{value} has more than 18 decimals", param, ctx)
        return int(wei)


# ---------------------------------------------------------------------------- options


@dataclass
class Chain:
    """--network / --rpc / --deployment, resolved."""

    network: str
    rpc: str | None
    deployment: str | None

    @property
    def local(self) -> bool:
        from offchain.chain.client import is_local

        return is_local(self.network)

    def export(self) -> None:
        """Makes these choices visible to services and child processes that call `connect()` themselves."""
        from offchain.chain.client import DEPLOYMENT_ENV, local_rpc

        os.environ["GPUNET_NETWORK"] = self.network
        if self.deployment:
            os.environ[DEPLOYMENT_ENV] = str(Path(self.deployment).expanduser().resolve())
        if self.local:
            os.environ["APE_FOUNDRY_HOST"] = local_rpc(self.rpc)


def _check_network(ctx, param, value: str) -> str:
    from offchain.chain.client import parse_network

    try:
        parse_network(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return value


def chain_options(f: Callable) -> Callable:
    """Adds --network, --rpc and --deployment; the command receives them as `chain: Chain`."""

    @functools.wraps(f)
    def wrapper(*args, network: str, rpc: str | None, deployment: str | None, **kwargs):
        return f(*args, chain=Chain(network, rpc, deployment), **kwargs)

    wrapper = click.option(
        "--deployment",
        default=None,
        envvar="GPUNET_DEPLOYMENT",
        metavar="FILE",
        help="Deployment record to use (env GPUNET_DEPLOYMENT; default: the one recorded for this node).",
    )(wrapper)
    wrapper = click.option(
        "--rpc",
        default=None,
        envvar="GPUNET_RPC",
        metavar="URL",
        help="Local node URL (env GPUNET_RPC; default $APE_FOUNDRY_HOST or http://127.0.0.1:8545).",
    )(wrapper)
    return click.option(
        "--network",
        default=DEFAULT_NETWORK,
        show_default=True,
        envvar="GPUNET_NETWORK",
        callback=_check_network,
        help="ape network ECOSYSTEM:NETWORK[:PROVIDER] (env GPUNET_NETWORK).",
    )(wrapper)


@dataclass
class Signer:
    test_account: int | None
    account: str | None

    @property
    def given(self) -> bool:
        return self.test_account is not None or bool(self.account)


def signer_options(f: Callable) -> Callable:
    """Adds --account ALIAS / --test-account N; the command receives `signer: Signer`."""

    @functools.wraps(f)
    def wrapper(*args, test_account: int | None, account: str | None, **kwargs):
        if test_account is not None and account:
            raise click.UsageError("give either --account ALIAS or --test-account N, not both")
        return f(*args, signer=Signer(test_account, account), **kwargs)

    wrapper = click.option(
        "--account",
        default=None,
        envvar="GPUNET_ACCOUNT",
        metavar="ALIAS",
        help="ape account alias that signs: a keystore or a hardware wallet (env GPUNET_ACCOUNT).",
    )(wrapper)
    return click.option(
        "--test-account",
        type=click.IntRange(0, 9),
        default=None,
        metavar="N",
        help="Local networks only: ape test account N (0-9, funded by anvil) signs.",
    )(wrapper)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")(f)


def yes_option(f: Callable) -> Callable:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (scripts).")(f)


# ---------------------------------------------------------------------------- accounts


def account(signer: Signer, chain: Chain, *, required: bool = True, sign: bool = True) -> Any:
    """The one account lookup: ape test account N (local networks only) or an ape account alias.

    Runs before connecting, so a missing or unknown signer costs no node round trip.
    """
    if not signer.given:
        if not required:
            return None
        raise click.UsageError(
            "this command signs: pass --account ALIAS (see `ape accounts list`)"
            + (" or --test-account N" if chain.local else "")
        )
    from offchain.chain.project import use_gpunet_project

    use_gpunet_project()  # ape-config.yaml's test mnemonic
    from ape import accounts

    if signer.test_account is not None:
        if not chain.local:
            raise click.UsageError(
                f"--test-account is for local networks only, not {chain.network}: use --account ALIAS"
            )
        return accounts.test_accounts[signer.test_account]
    aliases = list(accounts.aliases)
    if signer.account not in aliases:
        known = f" (yours: {', '.join(aliases)})" if aliases else ""
        raise click.UsageError(
            f"no ape account {signer.account!r}{known}: create one with `ape accounts generate {signer.account}` "
            f"or `ape accounts import {signer.account}`"
        )
    acct = accounts.load(signer.account)
    if sign and hasattr(acct, "set_autosign"):
        try:  # one passphrase prompt for a permit signature and its transaction
            acct.set_autosign(True)
        except Exception:  # noqa: BLE001 - hardware wallets cannot autosign; they prompt on the device
            pass
    return acct


def address_of(signer: Signer, chain: Chain) -> str:
    """The signer's address, for reading commands: no passphrase asked."""
    return account(signer, chain, sign=False).address


# ---------------------------------------------------------------------------- session


@contextmanager
def session(chain: Chain) -> Iterator[Any]:
    """Deployment handles; every known failure becomes one line (see offchain/cli/errors.py)."""
    from offchain.chain.client import connect

    chain.export()
    with connect(chain.network, deployment=chain.deployment, rpc=chain.rpc) as h:
        yield h


def confirm(yes: bool, what: str) -> None:
    """Asks before a transaction; scripts pass --yes. Without a terminal to ask on, refuses."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(f"{what}: confirm with --yes (no terminal to ask on)")
    click.confirm(f"{what}. Go ahead?", abort=True, err=True)


def quiet_ape() -> None:
    """ape's log ('Submitted …', 'Confirmed …', a failed transaction's calldata) stays off the
    console: every error reaches the user as gpunet's one line. --debug shows it."""
    if os.environ.get("GPUNET_DEBUG"):
        return
    from ape.logging import logger

    logger.disable()


# ---------------------------------------------------------------------------- output


def tokens(wei: int) -> str:
    return f"{wei / ONE_TOKEN:,.6f}"


def usd(v: int) -> str:
    from offchain.client.sdk import fmt_usd

    return fmt_usd(v)


def short(addr: str) -> str:
    return f"{addr[:6]}…{addr[-4:]}" if addr and len(addr) == 42 else str(addr)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def send(what: str, fn: Callable, *args, **kwargs) -> Any:
    """A transaction; a revert becomes one line with the contract's reason."""
    from ape.exceptions import ContractLogicError

    from offchain.client.money import revert_reason

    try:
        return fn(*args, **kwargs)
    except ContractLogicError as e:
        raise click.ClickException(f"{what} reverted: {revert_reason(e)}") from None
