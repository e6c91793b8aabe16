"""Part of the oracle service (`offchain/oracle/service.py`, which documents the whole loop):
uptime: probing Active machines at random moments, leading an epoch's UptimeReport, co-signing
(`handle_sign_uptime`) when this operator's own probes agree within the tolerance.

A mixin of `OracleService`: it uses the service's chain handles, store, metrics and signing.
"""

from __future__ import annotations

import random

from offchain.chain.reports import UPTIME_FIELDS, report_tuple, uptime_typed_data
from offchain.constants import MachineStatus
from offchain.oracle.quorum import Duty

# Uptime: one report per (epoch, machine) and nonce; a peer signs (`handle_sign_uptime`) when its
# own probes' ratio is within the tolerance, which a leader's tally of versions cannot re-check.
UPTIME = Duty(
    kind="uptime",
    subject=lambda svc, r: svc._uptime_subject(r),
    typed_data=lambda svc, r: uptime_typed_data(svc.h.hub.address, svc.chain_id, r),
    agrees=lambda svc, r: False,
    submit=lambda svc, r, sigs, job: svc.h.hub.submit_uptime(report_tuple(UPTIME_FIELDS, r), sigs, sender=svc.sender),
)


class UptimeRoundsMixin:
    def epoch_of(self, now: int) -> int:
        return (now - self.cfg.epoch_genesis) // self.cfg.epoch_seconds

    def _uptime_subject(self, report: dict) -> str:
        return f"uptime:{report['epoch']}:{report['machine_id']}"

    def uptime_round(self, now: int) -> None:
        from offchain.oracle.agent_http import probe_uptime

        epoch = self.epoch_of(now)
        for m in self.store.machines():
            if m["status"] != MachineStatus.ACTIVE:
                continue
            # Probe at random moments: on average `probes_per_epoch` times per epoch.
            p = self.cfg.poll_s * self.cfg.probes_per_epoch / self.cfg.epoch_seconds
            if random.random() < p:
                self.store.record_probe(epoch, m["machine_id"], probe_uptime(m["endpoint"], timeout=5.0))
            self._report_uptime(epoch - 1, m)

    def _report_uptime(self, epoch: int, m: dict) -> None:
        probes, successes = self.store.probe_counts(epoch, m["machine_id"])
        if probes == 0:
            return
        report = {"epoch": epoch, "machine_id": m["machine_id"], "probes": probes, "successes": successes, "nonce": 0}
        subject = self._uptime_subject(report)
        if self.store.submitted(subject, 0):
            return
        with self._chain_lock:
            if self.h.hub.uptime_nonce(epoch, m["machine_id"]) != 0:
                self.store.mark_submitted(subject, 0, "by-peer")
                return
        if self.leader_for(m["machine_id"], epoch, 0) != self.address:
            return
        gathered = self._gather("uptime", report)
        if gathered is not None:
            self._submit("uptime", subject, *gathered)

    def handle_sign_uptime(self, report: dict) -> tuple[int, dict]:
        try:
            epoch, mid = int(report["epoch"]), int(report["machine_id"])
            probes, successes = int(report["probes"]), int(report["successes"])
        except (KeyError, TypeError, ValueError) as e:
            return 400, {"error": f"malformed report: {e}"}
        if report.get("nonce") != 0 or probes <= 0 or successes > probes:
            return 409, {"refused": "invalid counts or nonce"}
        mine_p, mine_s = self.store.probe_counts(epoch, mid)
        if mine_p == 0:
            return 409, {"refused": "I have no probes of this machine in that epoch"}
        diff = abs(successes * 10_000 // probes - mine_s * 10_000 // mine_p)
        if diff > self.cfg.uptime_tolerance_bps:
            return 409, {"refused": f"my uptime differs by {diff} bps"}
        existing = self.store.signed_for(self._uptime_subject(report), 0)
        digest = self._digest_hex("uptime", report)
        if existing is not None and existing.digest != digest:
            return 200, {"conflict": True, "report": existing.report, "signature": existing.signature}
        sig = self._sign_report("uptime", report)
        if sig is None:
            return 409, {"refused": "already signed another version"}
        self.metrics.signatures_given.labels(kind="uptime").inc()
        return 200, {"signature": sig, "digest": digest, "operator": self.address}
