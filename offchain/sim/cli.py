"""`gpunet sim`: the agent-based simulation of the token economy (registered in offchain/cli.py)."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

console = Console()


@click.command("sim")
@click.option(
    "--scenario",
    "scenario_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Scenario file, .json or .toml (default: offchain/sim/scenarios/small.json).",
)
@click.option(
    "--out",
    "out_dir",
    default="sim-out",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Directory for epochs.csv, summary.json and the PNG plots.",
)
@click.option("--epochs", type=click.IntRange(1), default=None, help="Override the scenario's epoch count.")
@click.option("--seed", type=int, default=None, help="Override the scenario's random seed.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
def sim(scenario_path: Path | None, out_dir: Path, epochs: int | None, seed: int | None, no_plots: bool) -> None:
    """Simulate many epochs on the real contracts (in-process EVM): BME design vs a Render-style variant.

    Every job goes through JobMarket; settlement (burn the escrow, mint the USD value minus the
    fee) is the Settlement contract's."""
    from offchain.sim.engine import run_both
    from offchain.sim.report import write_all
    from offchain.sim.scenario import load_scenario

    sc = load_scenario(scenario_path)
    n = epochs or sc.epochs
    console.print(
        f"scenario {sc.name}: {n} epochs, seed {seed if seed is not None else sc.seed}, "
        f"{len(sc.agents)} agents; BME and Render-style"
    )
    t0 = time.monotonic()

    def progress(variant: str, e: int) -> None:
        if (e + 1) % max(1, n // 10) == 0 or e + 1 == n:
            console.print(f"  {variant}: epoch {e + 1}/{n}  ({time.monotonic() - t0:.0f} s)")

    sims = run_both(sc, epochs=epochs, seed=seed, progress=progress)
    summary = write_all(sims, out_dir, plots=not no_plots)
    b, r = summary["bme"], summary["render"]
    t = Table(title=f"gpunet sim: {sc.name} ({n} epochs, {time.monotonic() - t0:.0f} s)")
    t.add_column("")
    t.add_column("BME (this design)", justify="right")
    t.add_column("Render-style", justify="right")

    def row(label: str, f) -> None:
        t.add_row(label, str(f(b)), str(f(r)))

    row("final supply", lambda s: f"{s['final_supply']:,.0f}")
    row("minted: settlement", lambda s: f"{s['minted_settlement']:,.0f}")
    row("minted: emissions / scheduled", lambda s: f"{s['emissions']:,.0f} / {s['emissions_scheduled']:,.0f}")
    row("burned", lambda s: f"{s['burned']:,.0f}")
    row("price first / min / max / last", lambda s: "{first} / {min} / {max} / {last}".format(**s["price"]))
    row("honest income per unit (USD)", lambda s: f"{s['honest_income_per_unit_usd']:.3f}")
    row("income volatility (std/mean)", lambda s: f"{s['income_volatility']:.3f}")
    row("subsidy dependence", lambda s: f"{s['subsidy_dependence']:.1%}")
    for k in ("sybil", "idle", "wash"):
        row(f"emission share: {k}", lambda s, k=k: f"{s['emission_shares'][k]:.2%}")
    for name in b["profit_usd"]:
        row(f"profit USD: {name}", lambda s, name=name: f"{s['profit_usd'][name]:,.0f}")
    for label, key in (
        ("supply = minted - burned", "supply_identity_every_epoch"),
        ("minted for invalid work", "minted_for_invalid"),
        ("settlement mint above escrow - fee", "minted_over_cap"),
        ("emissions above schedule", "over_schedule"),
    ):
        row(label, lambda s, key=key: s["checks"][key])
    console.print(t)
    console.print(f"wrote {', '.join(summary['files'])}")
