"""`make explorer`: the web explorer over the chain of the last `make demo` run.

The demo saves its anvil chain when it stops (`anvil-state.json` in its log directory, beside its
deployment record). This starts anvil again from that file, on a free port, and runs `gpunet
explorer` against it until Ctrl-C:

    python -m scripts.explorer_demo [--demo-dir build/demo/<time>] [--port 8700]

The explorer prints its URL ("gpunet explorer on http://..."); its index goes in the demo's
directory (`explorer-index/`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE = "anvil-state.json"


def latest_demo() -> Path | None:
    runs = sorted((REPO_ROOT / "build" / "demo").glob(f"*/{STATE}"))
    return runs[-1].parent if runs else None


@click.command()
@click.option(
    "--demo-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A demo run's log directory (default: the newest under build/demo/ with a saved chain).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
def main(demo_dir: Path | None, host: str, port: int) -> None:
    """Serve the explorer over the last demo's chain."""
    demo_dir = demo_dir or latest_demo()
    if demo_dir is None or not (demo_dir / STATE).exists() or not (demo_dir / "deployment.json").exists():
        where = demo_dir or REPO_ROOT / "build" / "demo"
        raise click.ClickException(
            f"no saved demo chain in {where} ({STATE} and deployment.json): run `make demo` first"
        )
    os.environ["GPUNET_ANVIL_ARGS"] = f"--load-state {demo_dir / STATE}"
    from offchain.chain.anvil import running_anvil

    with running_anvil(log_path=demo_dir / "anvil-explorer.log") as url:
        env = {
            **os.environ,
            "GPUNET_DEPLOYMENT": str(demo_dir / "deployment.json"),
            "GPUNET_RPC": url,
            "GPUNET_NETWORK": "ethereum:local:foundry",
            "GPUNET_EXPLORER_DIR": str(demo_dir / "explorer-index"),
        }
        click.echo(f"anvil at {url}, with the chain of {demo_dir}", err=True)
        gpunet = Path(sys.executable).with_name("gpunet")
        proc = subprocess.Popen([str(gpunet), "explorer", "--host", host, "--port", str(port)], env=env)
        # Ctrl-C or SIGTERM: passed on to the explorer, then anvil stops once it has exited. (ape
        # installs a SIGINT handler that exits at once: replaced here, or anvil would stop first.)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
        code = proc.wait()
    raise SystemExit(0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code)


if __name__ == "__main__":
    main()
