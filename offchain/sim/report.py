"""Summary, CSV and PNG plots of a simulation run (BME design and Render-style variant)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

from offchain.sim.engine import Simulation


def _cv(xs: list[float]) -> float:
    """Coefficient of variation (population std / mean); 0 for fewer than two points."""
    if len(xs) < 2:
        return 0.0
    m = statistics.fmean(xs)
    return statistics.pstdev(xs) / m if m else 0.0


def summarize(sim: Simulation) -> dict:
    rows = sim.rows
    last = rows[-1]
    prices = [r["price_usd"] for r in rows]
    honest = [a for a in sim.agents if a.kind == "honest"]
    # Income volatility: per honest provider, std/mean of its USD income per compute unit over
    # the epochs it worked, weighted by units; subsidy dependence: emissions' share of income.
    cvs, weights = [], []
    for a in honest:
        series = [inc / u for _, inc, u, _ in a.series if u > 0]
        if len(series) >= 2:
            cvs.append(_cv(series))
            weights.append(a.units)
    volatility = sum(c * w for c, w in zip(cvs, weights, strict=True)) / sum(weights) if weights else 0.0
    income = sum(a.income_usd for a in honest)
    emission_usd = sum(a.emission_usd for a in honest)
    emitted = sum(r["emissions"] for r in rows)
    kinds = ("sybil", "idle", "wash", "cheater", "honest")
    shares = {k: (sum(r[f"emissions_{k}"] for r in rows) / emitted if emitted else 0.0) for k in kinds}
    profits = {a.name: round(last[f"profit_usd:{a.name}"], 2) for a in sim.agents}
    out = {
        "variant": sim.variant,
        "epochs": len(rows),
        "final_supply": round(last["supply"], 2),
        "total_minted_since_genesis": round(sum(r["minted"] for r in rows), 2),
        "minted_settlement": round(sum(r["minted_settlement"] for r in rows), 2),
        "emissions": round(emitted, 2),
        "emissions_scheduled": round(sum(r["scheduled"] for r in rows), 2),
        "burned": round(sum(r["burned"] for r in rows), 2),
        "burned_escrow": round(sum(r["burned_escrow"] for r in rows), 2),
        "price": {
            "first": round(prices[0], 4),
            "min": round(min(prices), 4),
            "max": round(max(prices), 4),
            "last": round(prices[-1], 4),
            "epoch_cv": round(_cv(prices), 4),
        },
        "revenue_usd": round(sum(r["revenue_usd"] for r in rows), 2),
        "honest_income_usd": round(income, 2),
        "honest_income_per_unit_usd": round(income / sum(a.units for a in honest), 4) if honest else 0.0,
        "income_volatility": round(volatility, 4),
        "subsidy_dependence": round(emission_usd / income, 4) if income else 0.0,
        "emission_shares": {k: round(v, 4) for k, v in shares.items()},
        "profit_usd": profits,
        "jobs_failed": sum(r["jobs_failed"] for r in rows),
        # Providers' claims (JobMarket.claim) under the scenario's claim policy.
        "claims": sum(r["claims"] for r in rows),
        "claim_policy": dict(sim.sc.claim),
        "checks": {
            "supply_identity_every_epoch": all(r["supply_identity"] for r in rows),
            "minted_unbacked": round(sum(abs(r["minted_unbacked"]) for r in rows), 6),
            "minted_for_invalid": round(sum(r["minted_for_invalid"] for r in rows), 6),
            "minted_over_cap": round(sum(r["minted_over_cap"] for r in rows), 6),
            "escrow_burned_unbacked": round(sum(abs(r["escrow_burned_unbacked"]) for r in rows), 6),
            "settled_mismatch": sum(r["settled_mismatch"] + int(r["settled_jobs_unmatched"]) for r in rows),
            "over_schedule": round(sum(r["over_schedule"] for r in rows), 6),
            "escrow_unclaimed_mismatch": round(sum(abs(r["escrow_unclaimed_mismatch"]) for r in rows), 6),
            "market_books": round(sum(abs(r["market_books"]) for r in rows), 6),
            # After the run's final claims nothing is left credited (the books close).
            "accrued_unclaimed_at_end": last["accrued_unclaimed"],
            "emitted_under_cap": last["total_emitted"] <= last["emission_cap"],
        },
    }
    for a in sim.agents:
        if a.kind == "wash":
            out.setdefault("wash_net_tokens", {})[a.name] = round(last[f"wash_net_tokens:{a.name}"], 4)
    return out


def write_csv(sims: dict[str, Simulation], path: Path) -> None:
    rows = [r for sim in sims.values() for r in sim.rows]
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})


def plot(sims: dict[str, Simulation], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bme, render = sims["bme"], sims["render"]
    ep = [r["epoch"] for r in bme.rows]

    def col(sim, k):
        return [r[k] for r in sim.rows]

    def cum(xs):
        s, out_ = 0.0, []
        for x in xs:
            s += x
            out_.append(s)
        return out_

    files = []
    title = f"gpunet sim: {bme.sc.name}"

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    ax[0].plot(ep, cum(col(bme, "minted_settlement")), label="minted: settlement (Settled)")
    ax[0].plot(ep, cum(col(bme, "minted_emissions")), label="minted: emissions")
    ax[0].plot(ep, cum(col(bme, "burned")), label="burned")
    ax[0].plot(ep, cum(col(render, "minted_emissions")), "--", label="Render-style: emissions")
    ax[0].plot(ep, cum(col(render, "burned")), "--", label="Render-style: burned")
    ax[0].set_title("Cumulative mints and burns (tokens)")
    ax[0].legend(fontsize=8)
    s0 = bme.rows[0]["supply"] - bme.rows[0]["minted"] + bme.rows[0]["burned"]
    ax[1].plot(ep, [r["supply"] - s0 for r in bme.rows], label="BME")
    ax[1].plot(ep, [r["supply"] - s0 for r in render.rows], "--", label="Render-style")
    ax[1].set_title("Supply change since genesis (tokens)")
    ax[1].legend(fontsize=8)
    fig.suptitle(title)
    files.append(_save(fig, out / "supply.png"))

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    ax[0].plot(ep, col(bme, "price_usd"), label="BME (PriceFeed answer)")
    ax[0].plot(ep, col(render, "price_usd"), "--", label="Render-style")
    ax[0].set_title("Token price (USD)")
    ax[0].legend(fontsize=8)
    ax[1].plot(ep, col(bme, "demand_units"), label="demand")
    ax[1].plot(ep, col(bme, "served_units"), label="served")
    ax[1].set_title("Compute units per epoch")
    ax[1].legend(fontsize=8)
    fig.suptitle(title)
    files.append(_save(fig, out / "price_demand.png"))

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    ax[0].plot(ep, col(bme, "income_per_unit_usd"), label="BME")
    ax[0].plot(ep, col(render, "income_per_unit_usd"), "--", label="Render-style (emissions only)")
    ax[0].set_title("Honest providers' income per compute unit (USD)")
    ax[0].legend(fontsize=8)
    ax[1].plot(ep, col(bme, "emission_share_of_income"), label="BME")
    ax[1].plot(ep, col(render, "emission_share_of_income"), "--", label="Render-style")
    ax[1].set_ylim(0, 1.05)
    ax[1].set_title("Subsidy dependence: emissions' share of income")
    ax[1].legend(fontsize=8)
    fig.suptitle(title)
    files.append(_save(fig, out / "income.png"))

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for i, sim in enumerate((bme, render)):
        for a in sim.agents:
            style = "-" if a.kind == "honest" else "--"
            ax[i].plot(ep, col(sim, f"profit_usd:{a.name}"), style, label=f"{a.name} ({a.kind})")
        ax[i].axhline(0, color="grey", lw=0.5)
        ax[i].set_title(("BME" if sim is bme else "Render-style") + ": cumulative profit (USD)")
    ax[1].legend(fontsize=7)
    fig.suptitle(title)
    files.append(_save(fig, out / "profits.png"))

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    ax[0].plot(ep, col(bme, "scheduled"), label="scheduled")
    ax[0].plot(ep, col(bme, "budget"), label="budget (tapered)")
    ax[0].plot(ep, col(bme, "emissions"), label="claimed")
    ax[0].set_title("BME emissions per epoch (tokens)")
    ax[0].legend(fontsize=8)
    for k in ("share_sybil", "share_idle", "share_fake"):
        ax[1].plot(ep, col(bme, k), label=k.replace("share_", "BME: "))
    ax[1].plot(
        ep,
        [r["emissions_wash"] / r["emissions"] if r["emissions"] else 0 for r in render.rows],
        "--",
        label="Render-style: wash",
    )
    ax[1].set_title("Share of emissions")
    ax[1].legend(fontsize=8)
    fig.suptitle(title)
    files.append(_save(fig, out / "emissions.png"))
    return files


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def write_all(sims: dict[str, Simulation], out: Path, plots: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    summary = {v: summarize(s) for v, s in sims.items()}
    write_csv(sims, out / "epochs.csv")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    files = [out / "epochs.csv", out / "summary.json"]
    if plots:
        files += plot(sims, out)
    summary["files"] = [str(f) for f in files]
    return summary
