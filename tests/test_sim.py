"""`gpunet sim` on the small scenario (offchain/sim/scenarios/small.json): the issue's properties.

One run of each variant (BME design and Render-style) on the real contracts in titanoboa's
in-process EVM (every job through JobMarket, every provider's pay through JobMarket.claim and
Settlement; ~45 s of CPU for both); every check reads values the engine read from the chain each
epoch (ComputeToken totals and JobMarket's balance, JobMarket's job statuses and accruals,
Settlement's Settled events and total_burned, Emissions' budgets and claims). Runs
without ape's chain:
    .venv/bin/python -m pytest tests/test_sim.py -q -p no:cacheprovider -p no:ape_test
"""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest
from click.testing import CliRunner

from offchain.constants import MAX_BPS, ONE_TOKEN
from offchain.sim.engine import run_both
from offchain.sim.report import write_all
from offchain.sim.scenario import load_scenario

# Token amounts in the rows are floats of whole tokens (wei / 1e18): exact to ~1e-9.
EPS = 1e-6


# 15 of the CI scenario's 20 epochs: the demand ramp (epoch 8), the spike (10) and the drop (14)
# are all in, every adversary acts, in three quarters of the time (`gpunet sim` runs all 20).
EPOCHS = 15


@pytest.fixture(scope="module")
def scenario():
    return dataclasses.replace(load_scenario(), epochs=EPOCHS)


@pytest.fixture(scope="module")
def run(scenario, tmp_path_factory):
    sims = run_both(scenario)
    out = tmp_path_factory.mktemp("sim")
    summary = write_all(sims, out)
    return sims, summary, out


def _rows(run, variant):
    return run[0][variant].rows


@pytest.mark.parametrize("variant", ["bme", "render"])
def test_supply_is_minted_minus_burned_under_the_cap(run, variant):
    rows = _rows(run, variant)
    assert len(rows) == EPOCHS
    prev = None
    for r in rows:
        assert r["supply_identity"], r["epoch"]
        assert r["supply"] == pytest.approx(r["total_minted"] - r["total_burned"], abs=EPS)
        assert r["total_emitted"] <= r["allocated"] + EPS <= r["emission_cap"] + EPS
        if prev is not None:
            assert r["supply"] == pytest.approx(prev["supply"] + r["minted"] - r["burned"], abs=EPS)
        prev = r


@pytest.mark.parametrize("variant", ["bme", "render"])
def test_nothing_minted_for_unfinalized_or_invalid_work(run, variant):
    rows = _rows(run, variant)
    # The cheater is caught (jobs failed), yet every mint is a finalized job's settlement or a claim.
    assert sum(r["jobs_failed"] for r in rows) > 0
    for r in rows:
        assert r["minted_unbacked"] == pytest.approx(0, abs=EPS)
        assert r["minted_for_invalid"] == 0
        assert r["work_units_unbacked"] == pytest.approx(0, abs=EPS)
        if variant == "render":
            assert r["minted_settlement"] == 0
        else:
            assert r["minted"] == pytest.approx(r["minted_settlement"] + r["minted_emissions"], abs=EPS)


@pytest.mark.parametrize("variant", ["bme", "render"])
def test_settlement_burns_the_escrow_and_mints_at_most_escrow_minus_fee(run, variant):
    """Per claim (JobMarket.claim's Settled: the provider's jobs finalized since its last claim):
    burned == the jobs' escrow, cap == escrow - fees, minted <= cap; Settlement.total_burned
    grows by exactly the escrow of the jobs claimed, each Finalized and claimed once."""
    rows = _rows(run, variant)
    for r in rows:
        assert r["settled_mismatch"] == 0, r["epoch"]
        assert not r["settled_jobs_unmatched"], r["epoch"]
        assert r["minted_over_cap"] == 0, r["epoch"]
        assert r["escrow_burned_unbacked"] == 0, r["epoch"]
        assert r["burned_escrow"] > 0
        # The fee is burned, never re-minted: settlement mints less than it burns.
        assert r["minted_settlement"] < r["burned_escrow"]
    if variant == "bme":
        # The provider is paid ~ the USD value minus the 5% fee (the price barely moves within a day).
        minted, burned = sum(r["minted_settlement"] for r in rows), sum(r["burned_escrow"] for r in rows)
        assert 0.9 * burned < minted < 0.96 * burned


@pytest.mark.parametrize("variant", ["bme", "render"])
def test_market_holds_what_it_owes_and_daily_claims_close_the_books(run, variant):
    """Every epoch: JobMarket's balance == escrow of unfinished jobs + bonds + Σ accrued + dust,
    and Settlement.total_burned == escrow of every finalized job - what is still accrued. Under
    the default policy every provider with pay claims each epoch, so nothing stays accrued, and
    at the end total_burned == the escrow of every job finalized."""
    sim = run[0][variant]
    assert sim.sc.claim == {"every_epochs": 1, "min_usd": 0.0}
    for r in _rows(run, variant):
        assert r["market_books"] == 0, r["epoch"]
        assert r["escrow_unclaimed_mismatch"] == 0, r["epoch"]
        assert r["accrued_unclaimed"] == 0, r["epoch"]
        # Honest x3, the cheater (some jobs pass) and the wash trader each claim.
        assert r["claims"] >= 4, r["epoch"]
    assert sim.finalized_escrow > 0
    assert sum(r.burned for r in sim.claim_log) == sim.finalized_escrow
    assert all(not a.unclaimed for a in sim.agents)
    assert run[1][variant]["checks"]["accrued_unclaimed_at_end"] == 0


@pytest.mark.parametrize("variant", ["bme", "render"])
def test_each_claim_mint_is_attributed_to_the_jobs_it_covers(run, variant):
    """A claim covers exactly its provider's jobs finalized since its previous claim (each job in
    one claim); its mint is split over them to the wei."""
    sim = run[0][variant]
    seen: set[int] = set()
    for c in sim.claim_log:
        ids = [j.job_id for j in c.jobs]
        assert c.jobs and not seen & set(ids)
        seen |= set(ids)
        assert all(j.provider is c.provider and j.epoch <= c.epoch for j in c.jobs)
        assert sum(j.minted for j in c.jobs) == c.minted
        assert c.burned == sum(j.f["payment"] for j in c.jobs)
    for a in sim.agents:
        assert a.claims == sum(c.provider is a for c in sim.claim_log)
        assert a.settle_total == sum(c.minted for c in sim.claim_log if c.provider is a)


@pytest.mark.parametrize("variant", ["bme", "render"])
def test_emissions_never_above_the_schedule(run, scenario, variant):
    rows = _rows(run, variant)
    em = scenario.emissions
    scheduled = em["initial_epoch_emission"] * ONE_TOKEN
    for r in rows:
        # The contract's schedule is the documented geometric decay (floored each epoch).
        assert r["scheduled"] == pytest.approx(scheduled / ONE_TOKEN, abs=EPS)
        assert r["emissions"] <= r["budget"] + EPS <= r["scheduled"] + EPS
        assert r["over_schedule"] == 0
        scheduled = scheduled * (MAX_BPS - em["decay_bps"]) // MAX_BPS
    if variant == "bme":
        # The taper: an epoch with burns gets less than its schedule.
        assert all(r["budget"] < r["scheduled"] for r in rows if r["burned"] > 0)


@pytest.mark.parametrize("variant", ["bme", "render"])
def test_audit_draw_from_the_beacon(run, variant):
    """Every epoch's results are drawn from one AuditBeacon round, fully revealed by the five
    operators (the default scenario has no silent operator); every drawn job was audited."""
    rows = _rows(run, variant)
    for r in rows:
        assert (r["draw_rounds_ready"], r["draw_rounds_degraded"]) == (1, 0), r["epoch"]
        assert r["jobs_audited"] == r["jobs_drawn"] <= r["jobs"] + 1, r["epoch"]
        assert r["draw_escaped"] == 0, r["epoch"]
    # Audits are sampled, not everything: at the 10-30% audit rates, some jobs but far from all.
    drawn, jobs = sum(r["jobs_drawn"] for r in rows), sum(r["jobs"] for r in rows)
    assert 0.05 * jobs < drawn < 0.5 * jobs


def test_wash_trader_never_ahead(run):
    for r in _rows(run, "bme"):
        assert r["profit_usd:wash-trader"] <= 0, r["epoch"]
        # In tokens, independent of the price: minted + emitted - escrow burned < 0.
        assert r["wash_net_tokens:wash-trader"] < 0, r["epoch"]
        assert r["emissions_wash"] > 0  # it does earn work emissions, just less than its fees


def test_render_style_pays_the_wash_trader(run):
    """Why the wash guard exists: paid per unit of work from a fixed pool, self-dealing pays."""
    assert _rows(run, "render")[-1]["profit_usd:wash-trader"] > 0


def test_sybil_farm_gets_no_emissions_and_idle_gets_only_availability(run):
    rows = _rows(run, "bme")
    for r in rows:
        assert r["emissions_sybil"] == 0
        assert r["share_sybil"] == 0
    assert sum(r["emissions_idle"] for r in rows) > 0
    summary = run[1]["bme"]
    assert summary["emission_shares"]["sybil"] == 0
    assert summary["emission_shares"]["idle"] < summary["emission_shares"]["honest"]


@pytest.mark.parametrize("variant", ["bme", "render"])
def test_cheater_ends_poorer_than_honest(run, variant):
    sims = run[0]
    cheater = sims[variant].by_name["cheater-h100"]
    assert cheater.caught > 0
    last = _rows(run, variant)[-1]
    # Same hardware (4 x H100) as honest-h100-b.
    assert last["profit_usd:cheater-h100"] < 0 < last["profit_usd:honest-h100-b"]
    assert last["profit_tokens:cheater-h100"] < 0


def test_bme_income_is_steadier_and_less_subsidised_than_render(run):
    b, r = run[1]["bme"], run[1]["render"]
    assert b["income_volatility"] < r["income_volatility"]
    assert b["subsidy_dependence"] < 0.5
    assert r["subsidy_dependence"] == 1.0
    assert b["checks"]["supply_identity_every_epoch"] and r["checks"]["supply_identity_every_epoch"]


def test_outputs_written(run):
    _, summary, out = run
    for name in (
        "epochs.csv",
        "summary.json",
        "supply.png",
        "price_demand.png",
        "income.png",
        "profits.png",
        "emissions.png",
    ):
        assert (out / name).stat().st_size > 0, name
    with (out / "epochs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * EPOCHS
    assert {row["variant"] for row in rows} == {"bme", "render"}
    assert json.loads((out / "summary.json").read_text())["bme"]["epochs"] == EPOCHS


def test_cli_sim(tmp_path):
    from offchain.cli import cli as main

    res = CliRunner().invoke(main, ["sim", "--epochs", "2", "--seed", "3", "--out", str(tmp_path), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "Render-style" in res.output
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["bme"]["epochs"] == s["render"]["epochs"] == 2


TOML_SCENARIO = """
name = "toml"
epochs = 2
seed = 1
[market]
initial_price_usd = 2.0
pool_tokens = 100000
speculative_noise_usd = 0
[emissions]
initial_epoch_emission = 1000
decay_bps = 20
emission_cap = 1000000
taper_reference = 1000
work_share_bps = 7000
wash_guard_bps = 5000
[classes."H100 SXM5"]
price_usd = 2.5
cost_usd = 1.1
units_per_gpu = 24
[demand]
units = { "H100 SXM5" = 100 }
profile = [[0, 1.0]]
[[agents]]
name = "h"
kind = "honest"
machines = [["H100 SXM5", 2]]
"""


def test_silent_operator_degrades_the_round(tmp_path):
    """One operator withholds its reveal in epoch 1: that round is degraded once its reveal window
    closes and JobMarket draws every job of it (none finalizes without an audit); epoch 0's round
    is fully revealed and only sampled."""
    from offchain.sim.engine import Simulation

    p = tmp_path / "s.toml"
    p.write_text(TOML_SCENARIO + '[beacon.silent]\n"1" = 1\n')
    sc = load_scenario(p)
    assert sc.beacon == {"silent": {"1": 1}}
    sim = Simulation(sc, "bme")
    r0, r1 = sim.run()
    assert (r0["draw_rounds_ready"], r0["draw_rounds_degraded"]) == (1, 0)
    assert r0["jobs_drawn"] < r0["jobs"]
    assert (r1["draw_rounds_ready"], r1["draw_rounds_degraded"]) == (0, 1)
    assert r1["jobs"] > 0 and r1["jobs_drawn"] == r1["jobs_audited"] == r1["jobs"]
    assert r0["draw_escaped"] == r1["draw_escaped"] == 0
    assert r1["minted_for_invalid"] == 0 and r1["settled_mismatch"] == 0


def test_delayed_claims_keep_escrow_in_the_market_until_claimed(tmp_path):
    """Claiming every 2 epochs: nothing is burned or minted by settlement in epoch 0 (the escrow
    stays credited in JobMarket, whose books still balance), yet Emissions tapers epoch 0 on its
    finalized escrow; epoch 1's claim covers both epochs' jobs at once, and the run's end claims
    what epoch 2 credited."""
    from offchain.sim.engine import Simulation

    p = tmp_path / "s.toml"
    p.write_text(TOML_SCENARIO.replace("epochs = 2", "epochs = 3") + "[claim]\nevery_epochs = 2\n")
    sc = load_scenario(p)
    assert sc.claim == {"every_epochs": 2, "min_usd": 0.0}
    sim = Simulation(sc, "bme")
    r0, r1, r2 = sim.run()
    for r in (r0, r1, r2):
        assert r["jobs"] > 0 and r["market_books"] == 0 and r["escrow_unclaimed_mismatch"] == 0
        assert r["settled_mismatch"] == 0 and not r["settled_jobs_unmatched"]
        assert r["minted_unbacked"] == pytest.approx(0, abs=EPS)
    assert r0["claims"] == 0 and r0["accrued_unclaimed"] > 0
    assert r0["burned_escrow"] == r0["minted_settlement"] == r0["burned"] == 0
    # The taper counts epoch 0's finalized escrow although nobody claimed it yet (JobMarket's
    # total_burned, counted at finalization): holding claims back changes no epoch's budget.
    taper = sc.emissions.get("taper_reference", 10_000)
    assert r0["budget"] == pytest.approx(r0["scheduled"] * taper / (taper + r0["accrued_unclaimed"]), rel=1e-9)
    assert r1["claims"] == 1 and r1["accrued_unclaimed"] == 0
    assert r1["burned_escrow"] == pytest.approx(
        r0["accrued_unclaimed"] + sum(j.f["payment"] for j in sim.claim_log[0].jobs if j.epoch == 1) / ONE_TOKEN,
        abs=EPS,
    )
    assert {j.epoch for j in sim.claim_log[0].jobs} == {0, 1}
    # Epoch 2's jobs are only one epoch old: claimed because the run ends.
    assert r2["claims"] == 1 and r2["accrued_unclaimed"] == 0
    assert {j.epoch for j in sim.claim_log[1].jobs} == {2}
    assert sum(c.burned for c in sim.claim_log) == sim.finalized_escrow
    # Income is attributed to the epoch the work was done in, not the claim's.
    a = sim.agents[0]
    assert [e for e, *_ in a.series] == [0, 1, 2] and all(inc > 0 for _, inc, _, _ in a.series)


@pytest.mark.parametrize(("min_usd", "claims"), [(1.0, [1, 1]), (10**9, [0, 1])])
def test_claim_threshold_claims_early_once_accrued_usd_reaches_it(tmp_path, min_usd, claims):
    """With a claim every 99 epochs, a provider whose accrued USD value minus fees reaches
    `min_usd` claims at once; below it, only the run's end claims."""
    from offchain.sim.engine import Simulation

    p = tmp_path / "s.toml"
    p.write_text(TOML_SCENARIO + f"[claim]\nevery_epochs = 99\nmin_usd = {min_usd}\n")
    rows = Simulation(load_scenario(p), "bme").run()
    assert [r["claims"] for r in rows] == claims
    assert rows[-1]["accrued_unclaimed"] == 0 and all(r["market_books"] == 0 for r in rows)


def test_toml_scenario(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(TOML_SCENARIO)
    sc = load_scenario(p)
    assert sc.epochs == 2 and sc.classes["H100 SXM5"].class_id == 10
    assert sc.agents[0].machines == (("H100 SXM5", 2),)
    assert sc.demand_multiplier(5) == 1.0
    bad = tmp_path / "bad.toml"
    bad.write_text(TOML_SCENARIO.replace('kind = "honest"', 'kind = "whale"'))
    with pytest.raises(ValueError, match="kind must be one of"):
        load_scenario(bad)
    for claim, match in (("every_epochs = 0", "every_epochs must be >= 1"), ("often = 1", "unknown keys")):
        bad.write_text(TOML_SCENARIO + f"[claim]\n{claim}\n")
        with pytest.raises(ValueError, match=match):
            load_scenario(bad)
