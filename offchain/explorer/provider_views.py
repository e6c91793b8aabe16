"""The provider pages' data (the list; one provider's machines, attestations and who signed
them, uptime, stake, reputation, earnings and slashes): a part of `Views` (views.py), split off
to keep each module to one page family. Its methods use `Views`' helpers (epochs, events)."""

from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict

from offchain.explorer.index import SLASH_REASONS, ZERO
from offchain.explorer.job_views import NotFound, _f


class ProviderViews:
    def providers(self) -> dict:
        rows = []
        counts = defaultdict(Counter)
        for p, st, n in self.ix.read("SELECT provider, status, COUNT(*) FROM jobs GROUP BY provider, status"):
            counts[p][st] = n
        slashed = Counter()
        for e in self._events("name = 'Slashed'"):
            slashed[e["args"]["provider"]] += int(e["args"]["amount"])
        slash_count = Counter(s["provider"] for s in self._slashes())
        machine_counts = {
            p: (n, active or 0)
            for p, n, active in self.ix.read(
                "SELECT provider, COUNT(*), SUM(status = 'ACTIVE') FROM machines GROUP BY provider"
            )
        }
        for addr, staked, rep, bps in self.ix.read(
            "SELECT address, staked, reputation, audit_bps FROM providers ORDER BY address"
        ):
            machines = machine_counts.get(addr, (0, 0))
            rows.append(
                {
                    "address": addr,
                    "staked": staked,
                    "staked_tokens": _f(staked),
                    "audit_bps": bps,
                    "reputation": json.loads(rep) if rep else None,
                    "machines": machines[0],
                    "active_machines": machines[1] or 0,
                    "jobs": dict(counts[addr]),
                    "slashed": str(slashed[addr]),
                    "slashed_tokens": _f(slashed[addr]),
                    "slashes": slash_count[addr],
                }
            )
        return {**self._status(), "providers": rows}

    def provider(self, address: str) -> dict:
        p = address.lower()
        row = self.ix.read_one("SELECT staked, reputation, audit_bps FROM providers WHERE address = ?", (p,))
        if row is None:
            raise NotFound(f"no provider {address} in this deployment's events")
        names = self.class_names()
        machines = []
        for mid, cid, gpus, vram, endpoint, st, until in self.ix.read(
            "SELECT machine_id, class_id, gpu_count, vram_mb, endpoint, status, attested_until FROM machines "
            "WHERE provider = ? ORDER BY machine_id",
            (p,),
        ):
            machines.append(
                {
                    "machine_id": mid,
                    "class_id": cid,
                    "class": names.get(cid, str(cid)),
                    "gpu_count": gpus,
                    "vram_mb": vram,
                    "endpoint": endpoint,
                    "status": st,
                    "attested_until": until,
                }
            )
        attestations = self.attestations("provider = ?", (p,))
        uptime = [
            {
                "epoch": e["args"]["epoch"],
                "machine_id": e["args"]["machine_id"],
                "uptime_bps": e["args"]["uptime_bps"],
                "probes": e["args"]["probes"],
                "successes": e["args"]["successes"],
            }
            for e in self._events(
                "name = 'UptimeRecorded' AND machine_id IN (SELECT machine_id FROM machines WHERE provider = ?)", (p,)
            )
        ]
        earnings: dict[int, dict] = defaultdict(
            lambda: {"settlement": 0, "usd": 0, "emissions": 0, "emissions_usd": 0, "jobs": 0}
        )
        for e in self._events("name = 'Settled' AND provider = ?", (p,)):
            ep = earnings[self.epoch_of(e["time"])]
            ep["settlement"] += int(e["args"]["minted"])
            ep["usd"] += int(e["args"]["usd_net"])
        prices = [(e["time"], int(e["args"]["answer"])) for e in self._events("name = 'RoundAccepted'")]
        for e in self._events("name = 'Claimed' AND provider = ?", (p,)):
            ep = earnings[int(e["args"]["epoch"])]
            ep["emissions"] += int(e["args"]["amount"])
            # Emissions in USD at the feed's last price before the claim (8 decimals).
            i = bisect.bisect_right(prices, (e["time"], 2**256)) - 1
            if i >= 0:
                ep["emissions_usd"] += int(e["args"]["amount"]) * prices[i][1] // 10**8
        for ep, n in self._per_epoch_counts("ended", "provider = ? AND status = 'FINALIZED'", (p,)):
            earnings[ep]["jobs"] += n
        per_epoch = [
            {
                "epoch": n,
                "settlement": str(v["settlement"]),
                "emissions": str(v["emissions"]),
                "usd": str(v["usd"]),
                "jobs": v["jobs"],
                "settlement_tokens": _f(v["settlement"]),
                "emissions_tokens": _f(v["emissions"]),
                "usd_f": _f(v["usd"]),
                "emissions_usd": str(v["emissions_usd"]),
                "emissions_usd_f": _f(v["emissions_usd"]),
            }
            for n, v in sorted(earnings.items())
        ]
        slashes = self._slashes("provider = ?", (p,))
        states = dict(self.ix.read("SELECT status, COUNT(*) FROM jobs WHERE provider = ? GROUP BY status", (p,)))
        return {
            **self._status(),
            "address": p,
            "staked": row[0],
            "staked_tokens": _f(row[0]),
            "reputation": json.loads(row[1]) if row[1] else None,
            "audit_bps": row[2],
            "machines": machines,
            "attestations": attestations,
            "uptime": uptime,
            "earnings": per_epoch,
            "slashes": slashes,
            "jobs_by_state": states,
            "jobs": self.jobs(provider=p)["jobs"],
        }

    def _slashes(self, where: str = "1", args: tuple = ()) -> list[dict]:
        """Slashes, oldest first. A slash is the provider's `Slashed` events (each a part: to the
        user, to the challenger, burned) up to the event they were for, which the contracts log
        right after them in the same transaction: JobFailed or JobExpired (`job_id`), or a failed
        AttestationAccepted (`machine_id`). So a batch of verdicts failing two of a provider's
        jobs is two slashes. Parts of 0 tokens (nothing left to slash) are left out."""
        out: list[dict] = []
        pending: dict[tuple[str, str], dict] = {}
        subjects = ("JobFailed", "JobExpired", "AttestationAccepted")
        names = ", ".join(f"'{n}'" for n in ("Slashed", *subjects))
        for e in self._events(f"name IN ({names}) AND {where}", args):
            a = e["args"]
            key = (e["tx"], a["provider"])
            if e["event"] != "Slashed":
                s = pending.pop(key, None)
                if s is not None:
                    s["job_id"], s["machine_id"] = a.get("job_id"), a.get("machine_id")
                    out.append(s)
                continue
            if not int(a["amount"]):
                continue
            reason = SLASH_REASONS.get(str(a["reason"]).removeprefix("0x"), a["reason"])
            s = pending.setdefault(
                key,
                {
                    "block": e["block"],
                    "time": e["time"],
                    "tx": e["tx"],
                    "provider": a["provider"],
                    "reason": reason,
                    "amount": 0,
                    "parts": [],
                    "job_id": None,
                    "machine_id": None,
                },
            )
            s["amount"] += int(a["amount"])
            to = "burned" if a["beneficiary"] == ZERO else a["beneficiary"]
            s["parts"].append({"to": to, "amount": str(a["amount"]), "amount_tokens": _f(a["amount"])})
        out.extend(pending.values())  # slashed for nothing that followed (none today)
        out.sort(key=lambda s: s["block"])
        return [{**s, "amount": str(s["amount"]), "amount_tokens": _f(s["amount"])} for s in out]

    def attestations(self, where: str, args: tuple) -> list[dict]:
        out = []
        rows = self.ix.read(
            "SELECT block, machine_id, provider, outcome, class_id, fp32_gflops, bf16_gflops, bandwidth_gbs, nonce, "
            f"time FROM attestations WHERE {where} ORDER BY block, log_index",
            args,
        )
        signed: dict[tuple[str, int], list[str]] = defaultdict(list)  # (machine, nonce) -> signers, one query
        for subject, nonce, op in self.ix.read(
            "SELECT subject, nonce, operator FROM signatures WHERE kind = 'attestation' AND subject IN "
            f"(SELECT DISTINCT CAST(machine_id AS TEXT) FROM attestations WHERE {where})",
            args,
        ):
            signed[(subject, nonce)].append(op)
        for block, mid, prov, outcome, cid, fp32, bf16, bw, nonce, t in rows:
            signers = signed.get((str(mid), nonce), [])
            out.append(
                {
                    "block": block,
                    "time": t,
                    "machine_id": mid,
                    "provider": prov,
                    "outcome": ("pass", "fail: misreport", "fail: unreachable")[outcome] if outcome < 3 else outcome,
                    "class_id": cid,
                    "fp32_gflops": fp32,
                    "bf16_gflops": bf16,
                    "bandwidth_gbs": bw,
                    "nonce": nonce,
                    "signers": signers,
                }
            )
        return out

    # ---------------------------------------------------------------------------- oracles
