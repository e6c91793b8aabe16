"""Each explorer page's data, as a JSON-ready dict, read from the index alone (`index.py`).

Amounts are token wei and USD with 18 decimals, as decimal text (exact; JavaScript numbers are
not); a view also gives the figures a page shows in plain units (`*_tokens`, `*_usd`, floats).
Epochs are Emissions' (`GENESIS`, `EPOCH_SECONDS`); a deployment without Emissions counts one
epoch per day from its first block.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from offchain.constants import JobStatus, MachineStatus
from offchain.explorer.index import ZERO, ExplorerIndex
from offchain.explorer.job_views import PAGE, JobViews, NotFound, _f
from offchain.explorer.provider_views import ProviderViews

END_STATES = ("FINALIZED", "FAILED", "CANCELLED", "EXPIRED")


MAX_POINTS = 500


def _thin(points: list) -> list:
    """At most MAX_POINTS of a time series, evenly spaced, the last kept: a plot is no sharper
    with more, and the page stays small however long the chain."""
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS - 1)] + [points[-1]]


class Views(ProviderViews, JobViews):
    def __init__(self, index: ExplorerIndex):
        self.ix = index

    # ---------------------------------------------------------------------------- helpers
    def _meta_int(self, key: str, default: int) -> int:
        v = self.ix.get_meta(key)
        return int(v) if v not in (None, "") else default

    def epoch_params(self) -> tuple[int, int]:
        """(genesis, epoch length): Emissions' immutables, read once (a deployment without
        Emissions: one epoch per day from its first event)."""
        if getattr(self, "_epochs", None) is None:
            genesis = self._meta_int("genesis", 0)
            length = self._meta_int("epoch_seconds", 86_400)
            if not genesis:
                row = self.ix.read_one("SELECT MIN(time) FROM events")
                if not row or not row[0]:
                    return 0, length  # nothing indexed yet: not cached
                genesis = int(row[0])
            self._epochs = (genesis, length)
        return self._epochs

    def epoch_of(self, t: int) -> int:
        genesis, length = self.epoch_params()
        return max(0, (int(t) - genesis) // length)

    def _per_epoch_counts(self, column: str, where: str = "1", args: tuple = ()) -> list[tuple[int, int]]:
        """(epoch, jobs) of the jobs table's `column` time, counted in SQLite."""
        genesis, length = self.epoch_params()
        return self.ix.read(
            f"SELECT MAX(0, ({column} - ?) / ?) AS ep, COUNT(*) FROM jobs WHERE {column} IS NOT NULL AND {where} "
            "GROUP BY ep",
            (genesis, length, *args),
        )

    def _events(self, where: str, args: tuple = (), limit: int | None = None) -> list[dict]:
        rows = self.ix.read(
            "SELECT block, log_index, tx, time, contract, name, args FROM events "
            f"WHERE {where} ORDER BY block, log_index" + (f" LIMIT {int(limit)}" if limit else ""),
            args,
        )
        return [
            {"block": b, "log_index": i, "tx": tx, "time": t, "contract": c, "event": n, "args": json.loads(a)}
            for b, i, tx, t, c, n, a in rows
        ]

    def class_names(self) -> dict[int, str]:
        names = {e["args"]["class_id"]: e["args"]["name"] for e in self._events("name = 'GpuClassSet'")}
        return names

    def _status(self) -> dict:
        return {
            "synced_block": self._meta_int("synced_head", -1),
            "chain_id": self._meta_int("chain_id", 0),
            "contracts": json.loads(self.ix.get_meta("contracts", "{}") or "{}"),
        }

    def _mints_burns(self) -> list[tuple[int, int, int]]:
        """(time, minted, burned) of each token mint and burn, oldest first."""
        out = []
        for e in self._events("name = 'Transfer'"):
            addrs = [v for v in e["args"].values() if isinstance(v, str) and len(v) == 42]
            amount = next(v for v in e["args"].values() if isinstance(v, int))
            if addrs[0] == ZERO and addrs[1] != ZERO:
                out.append((e["time"], amount, 0))
            elif addrs[1] == ZERO and addrs[0] != ZERO:
                out.append((e["time"], 0, amount))
        return out

    # ---------------------------------------------------------------------------- overview
    def overview(self) -> dict:
        names = self.class_names()
        machines = Counter()
        for cid, st, n in self.ix.read("SELECT class_id, status, COUNT(*) FROM machines GROUP BY class_id, status"):
            machines[(cid, st)] = n
        by_class = [
            {
                "class_id": cid,
                "class": names.get(cid, str(cid)),
                **{s.name: machines.get((cid, s.name), 0) for s in MachineStatus if s.value},
            }
            for cid in sorted({c for c, _ in machines})
        ]
        offers: dict[tuple[str, int], int] = {}
        for e in self._events("name = 'OfferSet'"):
            offers[(e["args"]["provider"], e["args"]["class_id"])] = e["args"]["price_per_unit"]
        offer_rows = [
            {"provider": p, "class_id": c, "class": names.get(c, str(c)), "price_usd": str(v), "price": _f(v)}
            for (p, c), v in sorted(offers.items())
            if v
        ]
        states = dict(self.ix.read("SELECT status, COUNT(*) FROM jobs GROUP BY status"))
        vol_usd = vol_tok = fin_usd = fin_tok = 0
        for st, pay, usd in self.ix.read("SELECT status, payment, usd_value FROM jobs WHERE status != 'CANCELLED'"):
            vol_usd += int(usd)
            vol_tok += int(pay)
            if st == "FINALIZED":
                fin_usd += int(usd)
                fin_tok += int(pay)
        per_epoch: dict[int, dict] = defaultdict(
            lambda: {"minted": 0, "burned": 0, "settlement_minted": 0, "emissions": 0, "jobs": 0}
        )
        supply, series = 0, []
        for t, minted, burned in self._mints_burns():
            supply += minted - burned
            series.append([t, _f(supply)])
            ep = per_epoch[self.epoch_of(t)]
            ep["minted"] += minted
            ep["burned"] += burned
        for e in self._events("name = 'Settled'"):
            per_epoch[self.epoch_of(e["time"])]["settlement_minted"] += int(e["args"]["minted"])
        for e in self._events("name = 'Claimed'"):
            per_epoch[int(e["args"]["epoch"])]["emissions"] += int(e["args"]["amount"])  # the epoch it rewards
        for ep, n in self._per_epoch_counts("created"):
            per_epoch[ep]["jobs"] += n
        epochs = []
        for n in sorted(per_epoch):
            ep = per_epoch[n]
            paid = ep["settlement_minted"] + ep["emissions"]
            epochs.append(
                {
                    "epoch": n,
                    **{k: (str(v) if k != "jobs" else v) for k, v in ep.items()},
                    "minted_tokens": _f(ep["minted"]),
                    "burned_tokens": _f(ep["burned"]),
                    "settlement_tokens": _f(ep["settlement_minted"]),
                    "emissions_tokens": _f(ep["emissions"]),
                    "subsidy_share": round(ep["emissions"] / paid, 4) if paid else None,
                }
            )
        prices = [[e["time"], e["args"]["answer"] / 1e8] for e in self._events("name = 'RoundAccepted'")]
        series, prices = _thin(series), _thin(prices)
        return {
            **self._status(),
            "machines_by_class": by_class,
            "offers": offer_rows,
            "jobs_by_state": {s.name: states.get(s.name, 0) for s in JobStatus if s.value},
            "jobs_total": sum(states.values()),
            "volume": {
                "usd": str(vol_usd),
                "tokens": str(vol_tok),
                "finalized_usd": str(fin_usd),
                "finalized_tokens": str(fin_tok),
                "usd_f": _f(vol_usd),
                "tokens_f": _f(vol_tok),
                "finalized_usd_f": _f(fin_usd),
                "finalized_tokens_f": _f(fin_tok),
            },
            "supply": str(supply),
            "supply_tokens": _f(supply),
            "epochs": epochs,
            "plots": {"supply": series, "price": prices},
        }

    # ---------------------------------------------------------------------------- providers
    def oracles(self) -> dict:
        signed = defaultdict(Counter)
        for op, kind, n in self.ix.read("SELECT operator, kind, COUNT(*) FROM signatures GROUP BY operator, kind"):
            signed[op][kind] = n
        equivocations = [
            {
                "operator": e["args"]["operator"],
                "reporter": e["args"]["reporter"],
                "slashed": str(e["args"]["slashed"]),
                "slashed_tokens": _f(e["args"]["slashed"]),
                "block": e["block"],
                "time": e["time"],
            }
            for e in self._events("name = 'EquivocationProven'")
        ]
        ops = [
            {
                "address": a,
                "active": bool(act),
                "stake": s,
                "stake_tokens": _f(s),
                "signed": dict(signed[a]),
                "signed_total": sum(signed[a].values()),
                "equivocations": sum(1 for q in equivocations if q["operator"] == a),
            }
            for a, act, s in self.ix.read("SELECT address, active, stake FROM operators ORDER BY address")
        ]
        rounds = self.ix.read_one("SELECT COUNT(*) FROM events WHERE name = 'RoundAccepted'")[0]
        return {
            **self._status(),
            "threshold": self._meta_int("threshold", 0),
            "operators": ops,
            "equivocations": equivocations,
            "price_rounds": rounds,
        }

    # ---------------------------------------------------------------------------- verification
    def verification(self) -> dict:
        q = self.ix.read_one(
            "SELECT SUM(drawn), SUM(drawn AND verdict IS NOT NULL), SUM(drawn AND verdict = 0), "
            "SUM(drawn AND audit_timed_out), SUM(disputed), SUM(disputed AND verdict = 0), "
            "SUM(disputed AND verdict = 1), "
            "SUM(disputed AND audit_timed_out), SUM(status IN ('SUBMITTED', 'AUDIT', 'FINALIZED', 'FAILED')) FROM jobs"
        )
        drawn, audited, caught, timed_out, disputes, won, lost, d_timed_out, delivered = (int(v or 0) for v in q)
        sold = reexec = 0
        for units, signers, verdict in self.ix.read(
            "SELECT units, signers, verdict FROM jobs WHERE status IN ('SUBMITTED', 'AUDIT', 'FINALIZED', 'FAILED')"
        ):
            sold += int(units)
            if verdict is not None:
                reexec += int(units) * int(signers or 0)
        by_reason: dict[str, dict] = defaultdict(lambda: {"count": 0, "amount": 0})
        slashes = self._slashes()
        for s in slashes:
            by_reason[s["reason"]]["count"] += 1
            by_reason[s["reason"]]["amount"] += int(s["amount"])
        for e in self._events("name = 'EquivocationProven'"):
            by_reason["operator equivocation"]["count"] += 1
            by_reason["operator equivocation"]["amount"] += int(e["args"]["slashed"])
        contradicted = self._contradicted_hardware_slashes(slashes)
        total_slashes = sum(v["count"] for v in by_reason.values())
        attest = Counter(o for (o,) in self.ix.read("SELECT outcome FROM attestations"))
        return {
            **self._status(),
            "audits": {
                "drawn": drawn,
                "audited": audited,
                "failed": caught,
                "timed_out": timed_out,
                "catch_rate": round(caught / audited, 4) if audited else None,
            },
            "caught": {"total": caught + won, "by_audit": caught, "by_dispute": won, "checked": drawn + disputes},
            "disputes": {"raised": disputes, "won_by_user": won, "lost_by_user": lost, "timed_out": d_timed_out},
            "slashes_by_reason": {
                k: {"count": v["count"], "amount": str(v["amount"]), "amount_tokens": _f(v["amount"])}
                for k, v in sorted(by_reason.items())
            },
            "hardware": {
                "attestations": sum(attest.values()),
                "passed": attest.get(0, 0),
                "failed_misreport": attest.get(1, 0),
                "failed_unreachable": attest.get(2, 0),
            },
            "false_slashes": {
                "contradicted": contradicted,
                "slashes": total_slashes,
                "rate": round(contradicted / total_slashes, 4) if total_slashes else None,
            },
            "overhead": {
                "sold_units": sold,
                "reexecuted_units": reexec,
                "delivered_jobs": delivered,
                "ratio": round(reexec / sold, 4) if sold else None,
            },
        }

    def _contradicted_hardware_slashes(self, slashes: list[dict]) -> int:
        """Hardware slashes whose machine later passed an attestation (of the same class): the
        protocol's own evidence that the machine was, at least afterwards, what it claimed. The
        one kind of slash the chain can contradict: a verdict is final, a no-show is a fact."""
        n = 0
        for s in slashes:
            if s["reason"] != "hardware misreport":
                continue
            failed = self.ix.read_one(
                "SELECT machine_id, class_id FROM attestations WHERE block = ? AND provider = ? AND outcome = 1",
                (s["block"], s["provider"]),
            )
            if failed and self.ix.read_one(
                "SELECT 1 FROM attestations WHERE machine_id = ? AND class_id = ? AND outcome = 0 AND block > ?",
                (failed[0], failed[1], s["block"]),
            ):
                n += 1
        return n


__all__ = ["NotFound", "PAGE", "Views"]
