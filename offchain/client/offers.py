"""Offers for a GPU class, ranked the way `gpunet job submit` shows them: price, then the
provider's record (failed + expired jobs), then its machines' oracle-reported uptime, then
completed jobs. Re-exported by `offchain.client.sdk`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from offchain.chain.views import read_many
from offchain.client.index import index_for
from offchain.constants import MAX_BPS, REPUTATION_FIELDS, MachineStatus


def _now(h: Any) -> int:
    return max(int(h.chain.blocks.head.timestamp), int(time.time()))


def _stop(h: Any) -> int:
    # An explicit stop block: ape's `range(start, None)` means `range(0, start)` (like Python's range(stop)).
    return int(h.chain.blocks.height) + 1


@dataclass(frozen=True)
class Uptime:
    """A machine's uptime as the oracle quorum reported it (OracleHub `UptimeRecorded`) for
    `epoch`: the share of the operators' random probes (GET /health) it answered."""

    machine_id: int
    epoch: int
    bps: int  # successes x 10_000 // probes, as OracleHub.uptime_bps stores it
    probes: int
    successes: int


# How an offer whose machines have no uptime report yet ranks: as if its uptime were this. After
# every provider whose machines answered at least half the probes, before those that answered
# fewer (a new machine is unknown, not bad); at equal uptime a known one ranks first.
UNKNOWN_UPTIME_RANK_BPS = 5_000


@dataclass
class Offer:
    """A provider able to take a job of a class now: it offers the class and has an Active machine of it."""

    provider: str
    class_id: int
    price: int  # USD per compute unit, 18 decimals
    machine_ids: list[int]
    endpoint: str
    reputation: dict[str, int]
    free_stake: int
    # Latest reported uptime of each of `machine_ids` that has a report (`latest_uptime`).
    uptime: dict[int, Uptime] = field(default_factory=dict)

    @property
    def bad_record(self) -> int:
        return self.reputation["failed"] + self.reputation["expired"]

    @property
    def uptime_bps(self) -> int | None:
        """Mean latest reported uptime of the offer's Active machines of the class that have a
        report, in basis points; None (unknown) when none has one yet. The mean, not the best
        machine: the provider, not the client, picks the machine that runs the job."""
        known = [self.uptime[m].bps for m in self.machine_ids if m in self.uptime]
        return sum(known) // len(known) if known else None

    def uptime_text(self) -> str:
        """e.g. "83.33% (epoch 12)", "91.66% (epochs 11-12, 1/2 machines)" or "unknown"."""
        bps = self.uptime_bps
        if bps is None:
            return "unknown"
        reports = [self.uptime[m] for m in self.machine_ids if m in self.uptime]
        lo, hi = min(u.epoch for u in reports), max(u.epoch for u in reports)
        where = [f"epoch {hi}" if lo == hi else f"epochs {lo}-{hi}"]
        if len(reports) < len(self.machine_ids):
            where.append(f"{len(reports)}/{len(self.machine_ids)} machines")
        return f"{fmt_bps(bps)} ({', '.join(where)})"

    def rank_key(self) -> tuple:
        """Cheapest first; at equal price fewer failures+expiries, then higher uptime
        (`uptime_bps`; unknown ranks as `UNKNOWN_UPTIME_RANK_BPS`, after a known equal one),
        then more completed jobs, then the address (a stable order)."""
        bps = self.uptime_bps
        uptime = (-bps, 0) if bps is not None else (-UNKNOWN_UPTIME_RANK_BPS, 1)
        return (self.price, self.bad_record, uptime, -self.reputation["completed"], self.provider.lower())


def reputation(h: Any, provider: str) -> dict[str, int]:
    return _reputation_of(h.registry.reputation(provider))


def _reputation_of(raw: Any) -> dict[str, int]:
    return dict(zip(REPUTATION_FIELDS, (int(x) for x in raw), strict=True))


def latest_uptime(h: Any, machine_ids: Iterable[int] | None = None) -> dict[int, Uptime]:
    """{machine id: its uptime in the latest epoch that has a report for it}, from OracleHub's
    `UptimeRecorded` events (of `machine_ids`, or of every machine) as the local index holds them
    (`offchain.client.index`, synced first); machines without a report are absent. Epochs are
    numbered by the oracle operators: Emissions' epochs under `gpunet oracle run
    --emissions-epochs`, else (unix time // --epoch-seconds); either way a higher number is a
    later epoch, and an epoch's report lands after the epoch ends, so the latest report is at
    most about one epoch old while the quorum probes the machine. A report submitted again for
    the same epoch (a later nonce) replaces the earlier one, as in OracleHub.uptime_bps. Empty
    when `h` has no hub."""
    if getattr(h, "hub", None) is None:
        return {}
    idx = index_for(h)
    if machine_ids is None:
        machine_ids = [r[0] for r in idx.db.execute("SELECT machine_id FROM uptime").fetchall()]
    return {m: Uptime(m, *row) for m, row in idx.uptime([int(x) for x in machine_ids]).items()}


def fmt_bps(bps: int) -> str:
    """Basis points as a percentage with two decimals, e.g. 8333 -> "83.33%"."""
    return f"{bps // 100}.{bps % 100:02d}%"


def rank_offers(h: Any, class_id: int, now: int | None = None) -> list[Offer]:
    """Every provider with a current offer for `class_id` and an Active, attested machine of it,
    best first (`Offer.rank_key`): by price, then failed+expired jobs, then the mean latest
    reported uptime of its Active machines of the class (`latest_uptime`; a provider none of
    whose machines has a report yet is unknown: ranked after known-good ones, never excluded),
    then completed jobs. Offers, machines and uptime come from the local index (synced from the
    events since its cursor); reputation and free stake are read live for the candidates."""
    reg = h.registry
    now = _now(h) if now is None else now
    idx = index_for(h)
    candidates = []
    for p, price in sorted(idx.offers(class_id)):
        active, endpoint = [], ""
        for mid, status, attested_until, url in idx.machines(p, class_id):
            if status == MachineStatus.ACTIVE and now <= attested_until:
                active.append(mid)
                endpoint = endpoint or url
        if active:
            candidates.append((p, price, active, endpoint))
    # Every candidate's reputation and free stake in one batch request.
    reads = [c for p, *_ in candidates for c in ((reg.reputation, (p,)), (reg.free_stake, (p,)))]
    live = read_many(h.chain.provider, reads)
    offers = [
        Offer(p, class_id, price, active, endpoint, _reputation_of(live[2 * i]), int(live[2 * i + 1]))
        for i, (p, price, active, endpoint) in enumerate(candidates)
    ]
    uptime = latest_uptime(h, [m for o in offers for m in o.machine_ids]) if offers else {}
    for o in offers:
        o.uptime = {m: uptime[m] for m in o.machine_ids if m in uptime}
    return sorted(offers, key=Offer.rank_key)


def can_cover(h: Any, offer: Offer, payment: int, collateral_bps: int | None = None) -> bool:
    """Whether the provider's free stake covers the collateral it would lock for this payment.
    `collateral_bps`: JobMarket's `params().collateral_bps`, read here when not given."""
    m = h.market
    if collateral_bps is None:
        collateral_bps = int(m.params().collateral_bps)
    floor = (payment * collateral_bps + MAX_BPS - 1) // MAX_BPS
    return offer.free_stake >= int(m.required_collateral(payment, floor, m.audit_rate(offer.provider)))
