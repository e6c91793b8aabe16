"""The quorum-gathering core every report duty shares: ask the peers to co-sign, tally the
versions they answer with, sign our own (at most one version per subject and nonce, ever), and
submit the version that reaches the threshold.

A duty (a report kind: attestation, uptime, verdict, rewards) is a `Duty`: what one signature
covers (its subject), the EIP-712 data signed, whether this operator agrees with a peer's
version, how the quorum's report goes on-chain and which reverts mean someone else already
did it. Each duty's module defines its `Duty` beside its rounds and its co-signing handler
(`attestations`, `uptime_rounds`, `verdicts`, `rewards_rounds`); `OracleService.DUTIES` maps
the kinds to them, and this core dispatches on that map alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from eth_account import Account

from offchain.chain.reports import typed_data_digest
from offchain.http_retry import retrying_session
from offchain.oracle.common import log

CRASH_ENV = "GPUNET_ORACLE_CRASH_AT"
CRASH_EXIT_CODE = 75


@dataclass(frozen=True)
class Duty:
    """One report kind's rules (each callable takes the service first)."""

    kind: str
    subject: Callable[[Any, dict], str]  # what one signature per nonce covers
    typed_data: Callable[[Any, dict], dict]  # the EIP-712 message signed (domain bound to chain and contract)
    agrees: Callable[[Any, dict], bool]  # whether this operator would sign a peer's version
    submit: Callable[[Any, dict, list[bytes], dict | None], Any]  # the quorum's report on-chain
    taken: tuple[str, ...] = ("wrong nonce",)  # reverts that mean another leader was first
    gone: tuple[str, ...] = ()  # reverts that mean the subject was settled meanwhile


class QuorumMixin:
    """Co-signing and submission for OracleService (uses self.cfg, self.store, self.h, self.DUTIES)."""

    DUTIES: dict[str, Duty] = {}

    def _ask_peers(self, path: str, body: dict, peers: dict[str, str] | None = None) -> list[tuple[str, dict | None]]:
        """POSTs `body` to `<peer url>/<path>` of every peer (or of `peers`) at once; returns
        (peer, JSON answer or None when unreachable or not JSON) in peer order."""

        def ask(peer: str, url: str) -> tuple[str, dict | None]:
            try:  # a peer restarting is retried briefly (`offchain.http_retry`; signing is idempotent)
                r = retrying_session(retries=2).post(f"{url}/{path}", json=body, timeout=self.cfg.peer_timeout_s)
                return peer, r.json() if r.headers.get("content-type", "").startswith("application/json") else None
            except (requests.RequestException, ValueError) as e:
                log.info(json.dumps({"event": "peer_unreachable", "peer": peer, "error": str(e)}))
                return peer, None

        asked = self.cfg.peers if peers is None else peers
        with ThreadPoolExecutor(max_workers=max(1, len(asked))) as pool:
            return list(pool.map(lambda kv: ask(*kv), asked.items()))

    def _gather(
        self, kind: str, report: dict, peers: dict[str, str] | None = None
    ) -> tuple[dict, list[tuple[str, str]]] | None:
        """Collects signatures per report version; returns a version that reaches the threshold.

        Peers that already signed another version of this subject and nonce return it with
        their signature: every version seen is tallied (signatures checked), our own signature
        goes to our proposal unless we signed something else before, and whichever version
        reaches `threshold` is submitted. So concurrent leaders converge instead of deadlocking.
        """
        versions: dict[str, tuple[dict, dict[str, str]]] = {}

        def add(rep: dict, signer: str, sig: str) -> None:
            digest = self._digest(kind, rep)
            recovered = Account._recover_hash(digest, signature=bytes.fromhex(sig.removeprefix("0x")))
            if recovered.lower() != signer.lower():
                log.warning(json.dumps({"event": "bad_peer_signature", "peer": signer}))
                return
            versions.setdefault("0x" + digest.hex(), (rep, {}))[1][signer] = sig

        answers = self._ask_peers(f"sign/{kind}", {"report": report}, peers)
        for peer, ans in answers:
            if ans and ans.get("signature") and not ans.get("conflict"):
                add(report, peer, ans["signature"])
            elif ans and ans.get("conflict") and ans.get("report") and ans.get("signature"):
                add(ans["report"], peer, ans["signature"])
            else:
                log.info(json.dumps({"event": "peer_refused", "peer": peer, "answer": ans}))
        # Our own signature: the version we signed before, else our proposal if enough agree,
        # else the best-supported version we agree with.
        mine = self.store.signed_for(
            self._subject_of(kind, report),
            report["nonce"],
        )
        if mine is not None:
            versions.setdefault(mine.digest, (mine.report, {}))[1][self.address] = mine.signature
        else:
            ranked = sorted(versions.items(), key=lambda kv: len(kv[1][1]), reverse=True)
            candidates = [v for v in ranked if v[1][0] == report or self._agrees_with(kind, v[1][0])]
            target = candidates[0][1][0] if candidates else report
            if len(versions.get(self._digest_hex(kind, target), (None, {}))[1]) + 1 >= self.threshold:
                own = self._sign_report(kind, target)
                if own is not None:
                    versions.setdefault(self._digest_hex(kind, target), (target, {}))[1][self.address] = own
        for rep, sigs in versions.values():
            if len(sigs) >= self.threshold:
                ordered = sorted(sigs.items(), key=lambda kv: int(kv[0], 16))
                return rep, ordered
        log.info(
            json.dumps(
                {"event": "no_quorum_yet", "kind": kind, "versions": {d: len(v[1]) for d, v in versions.items()}}
            )
        )
        return None

    def _agrees_with(self, kind: str, report: dict) -> bool:
        return self.DUTIES[kind].agrees(self, report)

    def _digest(self, kind: str, report: dict) -> bytes:
        # Computed locally from the report: never trust an RPC to tell us what we sign.
        return typed_data_digest(self.DUTIES[kind].typed_data(self, report))

    def _digest_hex(self, kind: str, report: dict) -> str:
        return "0x" + self._digest(kind, report).hex()

    def _sign_report(self, kind: str, report: dict) -> str | None:
        subject = self._subject_of(kind, report)
        digest = self._digest_hex(kind, report)
        rec = self.store.sign_once(
            subject, report["nonce"], digest, report, lambda d: self.sign_digest(bytes.fromhex(d[2:]))
        )
        if rec.digest != digest:
            log.warning(json.dumps({"event": "refused_second_version", "subject": subject}))
            return None
        return rec.signature

    def _submit(
        self, kind: str, subject: str, report: dict, sigs: list[tuple[str, str]], job: dict | None = None
    ) -> None:
        self._crash_point(kind, subject)
        duty = self.DUTIES[kind]
        sig_bytes = [bytes.fromhex(s.removeprefix("0x")) for _, s in sigs]
        with self._chain_lock:
            try:
                tx = duty.submit(self, report, sig_bytes, job)
            except Exception as e:  # noqa: BLE001
                if any(r in str(e) for r in duty.taken):  # another leader was first
                    self.store.mark_submitted(subject, report["nonce"], "by-peer")
                    return
                if any(r in str(e) for r in duty.gone):  # settled meanwhile: nothing left to report
                    log.info(json.dumps({"event": f"{kind}_too_late", "subject": subject, "error": str(e)[:200]}))
                    self.store.mark_submitted(subject, report["nonce"], "gone")
                    return
                raise
        self.store.mark_submitted(subject, report["nonce"], str(tx.txn_hash))
        self.metrics.reports_submitted.labels(kind=kind).inc()
        log.info(
            json.dumps(
                {"event": "submitted", "kind": kind, "subject": subject, "gas": tx.gas_used, "signers": len(sigs)}
            )
        )

    def _crash_point(self, kind: str, subject: str) -> None:
        """The test hook above: exits holding a quorum not yet submitted, the worst moment to die."""
        if self.cfg.crash_at == f"quorum:{kind}":
            log.warning(json.dumps({"event": "crash_injected", "at": self.cfg.crash_at, "subject": subject}))
            os._exit(CRASH_EXIT_CODE)

    def _subject_of(self, kind: str, report: dict) -> str:
        return self.DUTIES[kind].subject(self, report)
