"""One row of epochs.csv: what an epoch did, read from the chain, and the property checks.

Every check is computed from values read on-chain (ComputeToken totals and JobMarket's balance,
JobMarket's job statuses and accruals, Settlement's Settled events and total_burned, Emissions'
budgets and claims, AuditBeacon's round states); tests/test_sim.py asserts them (0 / True when
the property holds). Finalizing a job only credits its provider; a claim (JobMarket.claim) burns
and mints, once for the jobs the provider finalized since its previous claim (offchain/sim/jobs.py),
so the settlement checks are per claim and the escrow still held is accounted for."""

from __future__ import annotations

from offchain.chain.beacon import ROUND_DEGRADED, ROUND_READY
from offchain.chain.deploy import MARKET_DUST
from offchain.constants import TERMINAL_JOB_STATUSES, JobStatus
from offchain.sim.model import tok


def epoch_row(sim, epoch, price, demand, served, jobs, wash_jobs, st, em, minted0, burned0, settle_burned0) -> dict:
    token, mk = sim.token, sim.market
    supply = int(token.totalSupply())
    total_minted, total_burned = int(token.total_minted()), int(token.total_burned())
    minted, burned = total_minted - minted0, total_burned - burned0
    settle_minted = st["minted_settlement"]
    emitted = em["claimed"]
    all_jobs = jobs + wash_jobs
    claimed = [j for r in st["runs"] for j in r.jobs]
    # Job outcomes as JobMarket stores them now (not as the engine believes): this epoch's jobs
    # and those the epoch's claims settled (finalized in this epoch or an earlier one).
    on_chain = {j.job_id: int(mk.job_status(j.job_id)) for j in all_jobs + claimed}
    final = int(JobStatus.FINALIZED)
    finalized = [j for j in all_jobs if on_chain[j.job_id] == final]
    finalized_fees = sum(j.fee for j in finalized)
    # Settlement mints of claims covering a job that is not Finalized (Failed, Cancelled, ...).
    invalid_minted = sum(r.minted for r in st["runs"] if any(on_chain[j.job_id] != final for j in r.jobs))
    settled_ids = [j.job_id for j in claimed]
    # Jobs finalized and not claimed yet, now (the engine's books; checked against accrued below).
    pending = {j.job_id for a in sim.agents for j in a.unclaimed}
    settle_burned = int(sim.settlement.total_burned()) - settle_burned0
    # JobMarket's books: what it holds against what it owes (escrow of unfinished jobs, open
    # dispute bonds, the providers' credited escrow, and the permanent dust).
    accrued = sum(int(mk.accrued(a.address)[0]) for a in sim.agents)
    unfinished = [j for j in all_jobs if on_chain[j.job_id] not in TERMINAL_JOB_STATUSES]
    bonds = sum(int(mk.disputes(j.job_id)[1]) for j in unfinished if on_chain[j.job_id] == int(JobStatus.AUDIT))
    owed = sum(j.f["payment"] for j in unfinished) + bonds + accrued + MARKET_DUST
    # The audit draw's rounds as AuditBeacon holds them now (final: their reveal windows closed).
    round_state = {r: int(sim.beacon.draw_seed(r)[0]) for r in st["rounds"]}
    spot = sim.pool.price()
    honest = [a for a in sim.agents if a.kind == "honest"]
    h_income = sum(tok(a.epoch_settle + a.epoch_emission) * price for a in honest)
    h_emission = sum(tok(a.epoch_emission) * price for a in honest)
    h_units = sum(a.epoch_units for a in honest)
    by_kind = em["by_kind"]
    row = {
        "variant": sim.variant,
        "epoch": epoch,
        "price_usd": price,
        "spot_price_usd": spot,
        "supply": tok(supply),
        "total_minted": tok(total_minted),
        "total_burned": tok(total_burned),
        "minted": tok(minted),
        "minted_settlement": tok(settle_minted),
        "minted_emissions": tok(emitted),
        "burned": tok(burned),
        "burned_escrow": tok(st["burned_escrow"]),
        "scheduled": tok(em["scheduled"]),
        "budget": tok(em["budget"]),
        "emissions": tok(emitted),
        "total_emitted": tok(int(sim.emissions.total_emitted())),
        "allocated": tok(int(sim.emissions.allocated())),
        "emission_cap": tok(sim.params.emission_cap),
        "demand_units": sum(demand.values()),
        "served_units": served,
        "revenue_usd": sum(j.value_usd for j in jobs if on_chain[j.job_id] == final),
        "wash_usd": sum(j.value_usd for j in wash_jobs),
        "jobs": len(jobs),
        "jobs_failed": st["failed"],
        # Claims (JobMarket.claim) this epoch, and the escrow credited and not claimed at its end.
        "claims": len(st["runs"]),
        "accrued_unclaimed": tok(accrued),
        # The audit draw: beacon rounds fully revealed / degraded, jobs drawn and audited.
        "draw_rounds_ready": sum(s == ROUND_READY for s in round_state.values()),
        "draw_rounds_degraded": sum(s == ROUND_DEGRADED for s in round_state.values()),
        "jobs_drawn": st["drawn"],
        "jobs_audited": len(st["audited"]),
        "slashed": tok(st["slashed"]),
        "honest_income_usd": h_income,
        "honest_units": h_units,
        "income_per_unit_usd": h_income / h_units if h_units else 0.0,
        "emission_share_of_income": h_emission / h_income if h_income else 0.0,
        "emissions_sybil": tok(by_kind.get("sybil", 0)),
        "emissions_idle": tok(by_kind.get("idle", 0)),
        "emissions_wash": tok(by_kind.get("wash", 0)),
        "emissions_cheater": tok(by_kind.get("cheater", 0)),
        "emissions_honest": tok(by_kind.get("honest", 0)),
        "share_sybil": by_kind.get("sybil", 0) / emitted if emitted else 0.0,
        "share_idle": by_kind.get("idle", 0) / emitted if emitted else 0.0,
        "share_fake": (by_kind.get("sybil", 0) + by_kind.get("wash", 0)) / emitted if emitted else 0.0,
        # Checks, all read on-chain (the test asserts them; 0 / True when the property holds).
        "supply_identity": supply == total_minted - total_burned,
        # Every minted token is a Settled mint or an Emissions claim (ComputeToken.total_minted).
        "minted_unbacked": tok(minted - settle_minted - emitted),
        # Settled mints of claims covering a job JobMarket does not hold Finalized.
        "minted_for_invalid": tok(invalid_minted),
        # Each claim: minted <= its jobs' escrow - fees (and burned/usd_net/cap, and the accrual
        # before it, are exactly those sums; nothing accrued after it; no finalization settled).
        "minted_over_cap": tok(st["minted_over_cap"]),
        "settled_mismatch": st["cap_mismatch"],
        # Settlement.total_burned grew by exactly the escrow of the jobs claimed (each once).
        "escrow_burned_unbacked": tok(settle_burned - sum(j.f["payment"] for j in claimed)),
        # Every job finalized is claimed exactly once: this epoch's claims cover distinct Finalized
        # jobs, and (unclaimed at the start + finalized now) == (claimed now + unclaimed now).
        "settled_jobs_unmatched": len(settled_ids) != len(set(settled_ids))
        or sim.pending0 | {j.job_id for j in finalized} != set(settled_ids) | pending
        or bool(set(settled_ids) & pending),
        # Since genesis: Settlement.total_burned == escrow of every finalized job - what is still
        # credited and unclaimed (0 after the run's final claims: total_burned == finalized escrow).
        "escrow_unclaimed_mismatch": tok(
            int(sim.settlement.total_burned()) - sim.settle_burned_genesis - (sim.finalized_escrow - accrued)
        ),
        # JobMarket's balance == escrow of unfinished jobs + dispute bonds + credited escrow + dust.
        "market_books": tok(int(token.balanceOf(mk.address)) - owed),
        "work_units_unbacked": tok(em["leaf_work"] - finalized_fees) if sim.variant == "bme" else 0.0,
        "over_schedule": tok(max(0, emitted - em["budget"]) + max(0, em["budget"] - em["scheduled"])),
        # Jobs finalized without an audit although their round was degraded (withholding a reveal
        # must never let a job escape its draw).
        "draw_escaped": sum(
            1
            for j in finalized
            if j.f["audit_bps"] > 0
            and round_state[j.f["draw_round"]] == ROUND_DEGRADED
            and j.job_id not in st["audited"]
        ),
    }
    for a in sim.agents:
        row[f"profit_usd:{a.name}"] = sim.profit_usd(a, spot)
        row[f"profit_tokens:{a.name}"] = sim.profit_tokens(a)
        if a.kind == "wash":
            # What paying itself returned, in tokens: minted + emitted - escrow burned (< 0).
            row[f"wash_net_tokens:{a.name}"] = tok(a.settle_total + a.emission_total - a.wash_burned)
    return row
