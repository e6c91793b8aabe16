"""Part of the oracle service (`offchain/oracle/service.py`, which documents the whole loop):
Hardware attestations: which machines need one, the leader's challenge (with its FAIL
confirmation and back-off) and report, and the co-signer's check (`handle_sign_attestation`).

A mixin of `OracleService`: it uses the service's chain handles, store, metrics and signing.
"""

from __future__ import annotations

import json
import time
from typing import Any

from offchain.chain.reports import ATTESTATION_FIELDS, attestation_typed_data, report_tuple
from offchain.constants import MachineStatus
from offchain.oracle.challenger import INCONCLUSIVE, run_hardware_challenge
from offchain.oracle.common import (
    CPU_CLASS_ID,
    NO_EXPIRY,
    OUTCOME_CODES,
    log,
)
from offchain.oracle.quorum import Duty


def _attestation_agrees(svc: Any, report: dict) -> bool:
    mine = svc.hw.own(int(report["machine_id"]), int(report["nonce"]))
    return mine in OUTCOME_CODES and OUTCOME_CODES[mine] == report["outcome"]


# Attestations: one per machine and nonce; a peer agrees when its own challenge of the machine
# reached the same decisive outcome.
ATTESTATION = Duty(
    kind="attestation",
    subject=lambda svc, r: svc._subject(r["machine_id"]),
    typed_data=lambda svc, r: attestation_typed_data(svc.h.hub.address, svc.chain_id, r),
    agrees=_attestation_agrees,
    submit=lambda svc, r, sigs, job: svc.h.hub.submit_attestation(
        report_tuple(ATTESTATION_FIELDS, r), sigs, sender=svc.sender
    ),
    # A peer's report jailed the machine meanwhile: it waits for its provider to ask again.
    gone=("machine jailed",),
)

# What a machine must be, on-chain, for a report on it to be drawn up or co-signed. A Jailed
# machine takes none until its provider calls `request_attestation` (the registry refuses it):
# a leader that indexed it Pending before a peer's FAIL landed would otherwise slash it twice.
_ATTESTABLE = (MachineStatus.PENDING, MachineStatus.ACTIVE)


class AttestationsMixin:
    def _needs_attestation(self, m: dict, now: int) -> bool:
        if m["status"] == MachineStatus.PENDING:
            return True
        # Renew ahead of expiry: the margin, but never more than a quarter of the validity.
        margin = min(self.cfg.renew_margin_s, self.cfg.attestation_ttl_s // 4)
        return (
            m["status"] == MachineStatus.ACTIVE
            and m["attested_until"] != NO_EXPIRY
            and m["attested_until"] - now < margin
        )

    # ------------------------------------------------------------------ attestations
    def _subject(self, machine_id: int) -> str:
        return f"attestation:{machine_id}"

    def _own_challenge(self, m: dict, nonce: int, role: str) -> Any:
        kwargs = dict(self.cfg.challenge_kwargs)
        # The memory proof is sized to the VRAM the provider registered for this machine.
        kwargs.setdefault("memory_claim_bytes", int(m["vram_mb"]) * 2**20)
        if self.cfg.gpu_challenge_n and int(m["class_id"]) != CPU_CLASS_ID:
            kwargs.setdefault("n", self.cfg.gpu_challenge_n)
        # `total_s`: the whole challenge as this operator waits for it (seconds per challenge);
        # `elapsed_s`: the provider's timed matmul round only, what the class allowance checks.
        t0 = time.monotonic()
        outcome = run_hardware_challenge(m["endpoint"], m["class_id"], **kwargs)
        total_s = time.monotonic() - t0
        backoff = self.hw.record(m["machine_id"], nonce, outcome.outcome)
        self.metrics.challenges.labels(outcome=outcome.outcome, role=role).inc()
        self.metrics.challenge_seconds.observe(total_s)
        log.info(
            json.dumps(
                {
                    "event": "challenge",
                    "role": role,
                    "machine_id": m["machine_id"],
                    "outcome": outcome.outcome,
                    "elapsed_s": outcome.elapsed_s,
                    "total_s": round(total_s, 3),
                    "allowance_s": outcome.allowance_s,
                    "round_seconds": outcome.round_seconds,
                    "reasons": outcome.reasons,
                    **({"retry_in_s": backoff} if backoff else {}),
                }
            )
        )
        return outcome

    def attest(self, m: dict, now: int, clock: int) -> None:
        mid = m["machine_id"]
        with self._chain_lock:
            nonce = self.h.hub.attestation_nonce(mid)
            status = self.h.registry.machine_status(mid)
        subject = self._subject(mid)
        if self.store.submitted(subject, nonce) or status not in _ATTESTABLE:
            return  # (the index catches up with a status change on its next read)
        waited = clock - m["first_seen"]  # from the block of the machine's last event: the same for all
        if self.leader_for(mid, nonce, waited) != self.address:
            return
        on_record = self.store.signed_for(subject, nonce)
        if on_record is not None:
            report = on_record.report  # never sign a second version: finish the one we signed
        else:
            if not self.hw.due(mid):  # backing off after an inconclusive challenge
                return
            self.hw.forget_before(mid, nonce)
            outcome = self._own_challenge(m, nonce, "leader")
            confirmations = 1
            while outcome.outcome not in ("pass", INCONCLUSIVE) and confirmations < self.cfg.fail_confirmations:
                # One FAIL is not enough to jail: look again after a pause (load passes).
                if self._stop.wait(self.cfg.confirm_delay_s):
                    return
                outcome = self._own_challenge(m, nonce, "leader-confirm")
                confirmations += 1
            if outcome.outcome == INCONCLUSIVE:
                return
            tflops = outcome.effective_tflops or 0.0
            report = {
                "machine_id": mid,
                "provider": m["provider"],
                "class_id": m["class_id"],
                "outcome": OUTCOME_CODES[outcome.outcome],
                "fp32_gflops": int(tflops * 1000) if outcome.dtype == "fp32" else 0,
                "bf16_gflops": int(tflops * 1000) if outcome.dtype != "fp32" else 0,
                "bandwidth_gbs": 0,
                "transcript_hash": "0x" + outcome.transcript_hash.removeprefix("0x"),
                "measured_at": now,
                "valid_until": now + self.cfg.attestation_ttl_s if outcome.outcome == "pass" else 0,
                "nonce": nonce,
            }
        with self._proposing_lock:
            self._proposing.add((subject, nonce))
        try:
            signatures = self._gather("attestation", report)
        finally:
            with self._proposing_lock:
                self._proposing.discard((subject, nonce))
        if signatures is None:
            return
        report, sigs = signatures
        self._submit("attestation", subject, report, sigs)

    def handle_sign_attestation(self, report: dict) -> tuple[int, dict]:
        try:
            mid = int(report["machine_id"])
            nonce = int(report["nonce"])
            outcome_code = int(report["outcome"])
        except (KeyError, TypeError, ValueError) as e:
            return 400, {"error": f"malformed report: {e}"}
        with self._chain_lock:
            onchain_nonce = self.h.hub.attestation_nonce(mid)
            info = self.h.registry.machines(mid)
            now = self.h.chain.blocks.head.timestamp
        reason = None
        if nonce != onchain_nonce:
            reason = f"nonce {nonce} is not the current {onchain_nonce}"
        elif info.provider.lower() != str(report["provider"]).lower() or info.class_id != report["class_id"]:
            reason = "provider or class does not match the registry"
        elif info.status == MachineStatus.EXITED:
            if outcome_code == 0:
                reason = "machine exited"
            # A FAIL still counts: exiting must not dodge the hardware slash (SECURITY.md, finding 2).
        elif info.status not in _ATTESTABLE:
            reason = "machine jailed: it takes no attestation until its provider requests one"
        elif outcome_code == 0 and not (now < report["valid_until"] <= now + self.cfg.attestation_ttl_s + 600):
            reason = "validity outside the attestation TTL"
        elif report["measured_at"] > now + 600:
            reason = "measured in the future"
        subject = self._subject(mid)
        if reason:
            self.metrics.signatures_refused.labels(kind="attestation", reason="invalid").inc()
            return 409, {"refused": reason}
        existing = self.store.signed_for(subject, nonce)
        digest = self._digest_hex("attestation", report)
        if existing is not None and existing.digest != digest:
            return 200, {"conflict": True, "report": existing.report, "signature": existing.signature}
        with self._proposing_lock:
            busy = (subject, nonce) in self._proposing
        if existing is None and busy:
            self.metrics.signatures_refused.labels(kind="attestation", reason="proposing").inc()
            return 409, {"refused": "I am proposing my own version of this report right now"}
        mine = self.hw.own(mid, nonce)
        if mine is None:
            m = {"machine_id": mid, "endpoint": info.endpoint, "class_id": info.class_id, "vram_mb": info.vram_mb}
            mine = self._own_challenge(m, nonce, "peer").outcome
        if mine == INCONCLUSIVE:
            self.metrics.signatures_refused.labels(kind="attestation", reason="inconclusive").inc()
            return 409, {"refused": "my own challenge is inconclusive (load or busy): ask again later", "retry": True}
        if OUTCOME_CODES[mine] != outcome_code:
            self.metrics.signatures_refused.labels(kind="attestation", reason="disagree").inc()
            return 409, {"refused": f"my own challenge says {mine}"}
        sig = self._sign_report("attestation", report)
        if sig is None:
            return 409, {"refused": "already signed another version"}
        self.metrics.signatures_given.labels(kind="attestation").inc()
        return 200, {"signature": sig, "digest": digest, "operator": self.address}
