"""`gpunet explorer`: the market's web view (offchain/explorer/), served from a local index."""

from __future__ import annotations

from pathlib import Path

import click

from offchain.cli.common import Chain, chain_options, session


@click.command()
@chain_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on (0.0.0.0: every interface).")
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.option(
    "--index",
    "index_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The index file (default: one per deployment under ~/.cache/gpunet/explorer/, or $GPUNET_EXPLORER_DIR).",
)
@click.option(
    "--sync-s", default=5.0, show_default=True, type=click.FloatRange(0.5, 3600), help="Seconds between syncs."
)
def explorer(chain: Chain, host: str, port: int, index_path: Path | None, sync_s: float) -> None:
    """Serve a read-only web explorer of the market: network, providers, jobs, oracles, verification.

    Every page has a JSON API at /api/... . The index is built from the chain's events on the
    first start (a deployment's whole history: this can take a while) and kept current after.
    """
    import signal
    import threading
    import time

    from offchain.explorer.server import Explorer, serve

    with session(chain) as h:
        try:
            ex = Explorer(h, index_path=index_path, sync_s=sync_s)
        except OSError as e:
            raise click.ClickException(f"cannot open the explorer's index: {e}") from None
        t0 = time.monotonic()
        click.echo(f"indexing the deployment's events into {ex.index.path} ...", err=True)
        block = ex.sync_once()
        try:
            server = serve(ex, host, port)
        except OSError as e:
            raise click.ClickException(
                f"cannot serve on {host}:{port} ({e.strerror or e}): choose another --port"
            ) from None
        ex.start()
        click.echo(
            f"gpunet explorer on {server.url} (indexed to block {block} in {time.monotonic() - t0:.1f} s; "
            f"syncs every {sync_s:g} s). Ctrl-C stops it."
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            stop.wait()
        finally:
            ex.stop()
            server.server_close()
