"""The job pages' data (the list, and one job's timeline, draw, findings and settlement): a
part of `Views` (views.py), split off to keep each module to one page family."""

from __future__ import annotations

from offchain.client.timeline import fmt_time
from offchain.constants import JobStatus
from offchain.explorer.index import ZERO, sql_job_id

PAGE = 50
ONE = 10**18


class NotFound(LookupError):
    """The page's subject is not in the index: the message says what was asked for."""


def _exact(args: dict) -> dict:
    """Event arguments for JSON readers: integers past 2**53 (token wei, USD) as decimal text,
    which JavaScript numbers would round."""
    return {k: str(v) if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53 else v
            for k, v in args.items()}  # fmt: skip


def _f(wei: int | str) -> float:
    return int(wei) / ONE


class JobViews:
    """Mixed into `Views`: uses its `ix`, `_events`, `_status`, `class_names` and `attestations`."""

    JOB_COLUMNS = (
        "job_id",
        "user",
        "provider",
        "class_id",
        "units",
        "payment",
        "usd_value",
        "collateral",
        "fee_bps",
        "audit_bps",
        "machine_id",
        "status",
        "created",
        "accepted",
        "submitted",
        "ended",
        "accept_by",
        "complete_by",
        "challenge_end",
        "audit_deadline",
        "result_hash",
        "disputed",
        "drawn",
        "verdict",
        "signers",
        "audit_timed_out",
    )

    def _job_row(self, row: tuple) -> dict:
        j = dict(zip(self.JOB_COLUMNS, row, strict=True))
        j["payment_tokens"], j["usd"] = _f(j["payment"]), _f(j["usd_value"])
        return j

    def jobs(
        self,
        *,
        status: str | None = None,
        provider: str | None = None,
        user: str | None = None,
        before: int | None = None,
    ) -> dict:
        where, args = ["1"], []
        if status:
            if status.upper() not in JobStatus.__members__:
                raise ValueError(f"status must be one of {', '.join(s.name for s in JobStatus if s.value)}")
            where.append("status = ?")
            args.append(status.upper())
        for col, v in (("provider", provider), ("user", user)):
            if v:
                where.append(f"{col} = ?")
                args.append(v.lower())
        if before is not None:
            where.append("job_id < ?")
            args.append(int(before))
        rows = self.ix.read(
            f"SELECT {', '.join(self.JOB_COLUMNS)} FROM jobs WHERE {' AND '.join(where)} "
            f"ORDER BY job_id DESC LIMIT {PAGE}",
            args,
        )
        jobs = [self._job_row(r) for r in rows]
        return {**self._status(), "jobs": jobs, "next_before": jobs[-1]["job_id"] if len(jobs) == PAGE else None}

    def job(self, job_id: int) -> dict:
        key = sql_job_id(int(job_id))
        row = self.ix.read_one(f"SELECT {', '.join(self.JOB_COLUMNS)} FROM jobs WHERE job_id = ?", (key,))
        if row is None:
            raise NotFound(f"no job {job_id} in this deployment (jobs 1..{self._max_job()})")
        j = self._job_row(row)
        timeline = [
            {**{k: e[k] for k in ("event", "block", "log_index", "time", "tx")}, "args": _exact(e["args"])}
            for e in self._events("job_id = ?", (sql_job_id(int(job_id)),))
        ]
        signed = {
            op: f
            for op, f in self.ix.read(
                "SELECT operator, finding FROM signatures WHERE kind = 'verdict' AND subject = ?", (str(job_id),)
            )
        }
        operators = [r[0] for r in self.ix.read("SELECT address FROM operators ORDER BY address")]
        findings = [{"operator": op, "finding": signed.get(op, "no signature")} for op in operators] if signed else []
        machine = None
        m = None
        if j["machine_id"]:
            m = self.ix.read_one(
                "SELECT class_id, gpu_count, vram_mb, status FROM machines WHERE machine_id = ?", (j["machine_id"],)
            )
        if m is not None:
            last = self.attestations(
                "machine_id = ? AND block <= (SELECT block FROM events WHERE job_id = ? AND name = 'JobAccepted')",
                (j["machine_id"], int(job_id)),
            )
            machine = {
                "machine_id": j["machine_id"],
                "class_id": m[0],
                "class": self.class_names().get(m[0], str(m[0])),
                "gpu_count": m[1],
                "vram_mb": m[2],
                "status": m[3],
                "attestation": last[-1] if last else None,
            }
        return {
            **self._status(),
            "job": j,
            "timeline": timeline,
            "findings": findings,
            "machine": machine,
            "audit": self._audit_of(j),
            "settlement": self._settlement_of(j, timeline),
            "waiting": self._waiting(j),
        }

    def _waiting(self, j: dict) -> str | None:
        """Why a job that has not ended waits, and until when (times in UTC)."""
        st = j["status"]
        if st == "OPEN":
            who = "its provider" if j["provider"] != ZERO else "any provider with an offer"
            return f"waiting for {who} to accept it, until {fmt_time(j['accept_by'])} (then the user can cancel it)"
        if st == "RUNNING":
            return (
                f"running on machine {j['machine_id']}: the result is due by {fmt_time(j['complete_by'])} "
                "(after that anyone can expire the job and the provider loses part of its collateral)"
            )
        if st == "SUBMITTED":
            return (
                f"result submitted; its challenge window ends {fmt_time(j['challenge_end'])}: the user may dispute "
                "until then, and the audit draw decides whether the oracle quorum re-executes it"
            )
        if st == "AUDIT":
            return (
                f"in audit: the oracle quorum re-executes it; its verdict is due by {fmt_time(j['audit_deadline'])} "
                "(if none comes, the result stands)"
            )
        return None

    def _max_job(self) -> int:
        row = self.ix.read_one("SELECT MAX(job_id) FROM jobs")
        return int(row[0] or 0)

    @staticmethod
    def _audit_of(j: dict) -> str:
        if j["disputed"]:
            how = "disputed by its user"
        elif j["drawn"]:
            how = "drawn for audit"
        elif j["status"] == "FINALIZED":
            return "not drawn for audit; finalized after its challenge window"
        else:
            return "no audit (yet)"
        if j["audit_timed_out"]:
            return f"{how}; the audit timed out, the result stood"
        if j["verdict"] is None:
            return f"{how}; verdict pending"
        return (
            f"{how}; the quorum ({j['signers']} signatures) found the result {'valid' if j['verdict'] else 'INVALID'}"
        )

    def _settlement_of(self, j: dict, timeline: list[dict]) -> dict | None:
        """The Settled event of the provider's claim that paid this job (finalizing only credits)."""
        fin = next((e for e in timeline if e["event"] == "JobFinalized"), None)
        if fin is None:
            return None
        after = self._events(
            "name = 'Settled' AND provider = ? AND (block > ? OR (block = ? AND log_index > ?))",
            (j["provider"], fin["block"], fin["block"], fin["log_index"]),
        )
        if not after:
            return {"claimed": False}
        a = after[0]["args"]
        return {
            "claimed": True,
            "block": after[0]["block"],
            "tx": after[0]["tx"],
            "burned": str(a["burned"]),
            "minted": str(a["minted"]),
            "usd_net": str(a["usd_net"]),
            "minted_tokens": _f(a["minted"]),
            "burned_tokens": _f(a["burned"]),
            "usd_net_f": _f(a["usd_net"]),
        }
