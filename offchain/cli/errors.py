"""Turning any failure into one line: what went wrong and what to do about it.

`gpunet` exits 2 for a usage error (bad flag, argument, config), 1 for a runtime failure, and
prints a traceback only with --debug (or GPUNET_DEBUG=1).
"""

from __future__ import annotations

import click


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""


def _with_options(text: str, limit: int = 8) -> str:
    """ape's "No network in 'ethereum' named 'x'. Options:" plus one option a line, as one line."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    head, options = lines[0], lines[1:]
    if not head.endswith("Options:") or not options:
        return head
    more = f", and {len(options) - limit} more" if len(options) > limit else ""
    return f"{head.removesuffix('Options:').rstrip().rstrip('.')} (options: {', '.join(options[:limit])}{more})"


def describe(e: BaseException) -> tuple[str, int]:
    """(one-line message, exit code) for an exception a command let through."""
    from offchain.chain.client import BadDeploymentFile, DeploymentNotFound, NodeUnreachable
    from offchain.chain.project import ProjectNotFound
    from offchain.client.sdk import ClientError

    if isinstance(e, BadDeploymentFile):  # --deployment FILE: the user named a wrong file
        return _first_line(str(e)), 2
    if isinstance(e, (DeploymentNotFound, NodeUnreachable, ClientError)):
        return _first_line(str(e)), 1
    if isinstance(e, ProjectNotFound):
        return _first_line(str(e)), 1
    try:
        from ape.exceptions import (
            ApeException,
            ContractLogicError,
            ConversionError,
            NetworkError,
            ProviderNotConnectedError,
            SignatureError,
        )
    except ImportError:  # pragma: no cover - ape is a hard dependency
        ApeException = ContractLogicError = ConversionError = NetworkError = ()  # noqa: N806
        ProviderNotConnectedError = SignatureError = ()  # noqa: N806
    if ContractLogicError and isinstance(e, ContractLogicError):
        from offchain.client.money import revert_reason

        return f"the transaction reverted: {revert_reason(e)}", 1
    if ConversionError and isinstance(e, ConversionError):
        return f"cannot convert a value: {_first_line(str(e))}", 1
    if NetworkError and isinstance(e, NetworkError):
        return f"network: {_with_options(str(e))} (see `ape networks list`)", 2
    if ProviderNotConnectedError and isinstance(e, ProviderNotConnectedError):
        return "not connected to a node: check --network and --rpc", 1
    if SignatureError and isinstance(e, SignatureError):
        return f"signing failed: {_first_line(str(e))}", 1
    import requests

    if isinstance(e, requests.RequestException):
        url = getattr(getattr(e, "request", None), "url", None)
        return f"HTTP request failed{f' ({url})' if url else ''}: {type(e).__name__}", 1
    if isinstance(e, PermissionError):
        return f"permission denied: {e.filename or e}", 1
    if isinstance(e, FileNotFoundError):
        return f"no such file: {e.filename or e}", 1
    if isinstance(e, OSError):
        return f"{type(e).__name__}: {_first_line(str(e))}", 1
    if ApeException and isinstance(e, ApeException):
        return f"{type(e).__name__}: {_first_line(str(e))}", 1
    return f"unexpected {type(e).__name__}: {_first_line(str(e))} (rerun with --debug for the traceback)", 1


def run(group: click.Group, args: list[str] | None = None) -> int:
    """Runs the click group; every error is one line on stderr and an exit code."""
    import os
    import sys

    argv = list(sys.argv[1:] if args is None else args)
    # --debug anywhere on the line (`gpunet job show 3 --debug` too), not only before the command.
    debug = "--debug" in argv or bool(os.environ.get("GPUNET_DEBUG"))
    argv = [a for a in argv if a != "--debug"]
    if debug:
        os.environ["GPUNET_DEBUG"] = "1"
    try:
        group.main(args=argv, prog_name="gpunet", standalone_mode=False)
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("gpunet: aborted", err=True)
        return 1
    except click.UsageError as e:
        hint = ""
        if e.ctx is not None:
            hint = f" (see `{e.ctx.command_path} --help`)"
        click.echo(f"gpunet: {_first_line(e.format_message())}{hint}", err=True)
        return 2
    except click.ClickException as e:
        click.echo(f"gpunet: {_first_line(e.format_message())}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("gpunet: interrupted", err=True)
        return 130
    except Exception as e:  # noqa: BLE001 - the point: one line, not a traceback
        if debug:
            raise
        msg, code = describe(e)
        click.echo(f"gpunet: {msg}", err=True)
        return code
