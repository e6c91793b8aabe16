"""Who signed an OracleHub report: the signers recovered from the report transaction's calldata.

OracleHub's events say how many operators signed a report, not who. The transaction that
submitted the report says: its calldata
(decoded with the hub's ABI) holds each report and the quorum's signatures, and each signature
recovers to its operator over the report's EIP-712 digest (`offchain.chain.reports`, the same
typed data the operators signed). A report reaching the hub through another contract's call has
no such calldata: it is given no signers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from offchain.chain import reports as R

# OracleHub report calls: (the report's fields, its typed data, the signature kind).
REPORT_CALLS = {
    "submit_attestation": (R.ATTESTATION_FIELDS, R.attestation_typed_data, "attestation"),
    "submit_uptime": (R.UPTIME_FIELDS, R.uptime_typed_data, "uptime"),
    "submit_verdict": (R.VERDICT_FIELDS, R.verdict_typed_data, "verdict"),
    "submit_verdicts": (R.VERDICT_FIELDS, R.verdict_typed_data, "verdict"),
}


def _struct(value: Any, fields: Iterable[tuple[str, str]]) -> dict:
    """A decoded struct argument (ape gives a mapping or a tuple) as {field: value}."""
    names = [f for f, _ in fields]
    if hasattr(value, "items"):
        return {k: value[k] for k in names}
    if hasattr(value, "__getitem__") and not isinstance(value, str | bytes):
        return dict(zip(names, list(value), strict=True))
    return {k: getattr(value, k) for k in names}


def report_signers(hub: Any, chain_id: int, web3: Any, tx: str) -> list[tuple[str, str, dict, list[str]]]:
    """(kind, subject, report, signers) of each report that transaction `tx` submitted to `hub`:
    subject is the job or machine id ("epoch:machine" for uptime), signers lower-case addresses."""
    data = web3.eth.get_transaction(tx)["input"]
    try:
        method, args = hub.decode_input(bytes(data))
    except Exception:  # noqa: BLE001 - not a direct call to the hub (a contract called it): no signers known
        return []
    fn = str(method).split("(")[0].strip()
    if fn not in REPORT_CALLS:
        return []
    fields, typed, kind = REPORT_CALLS[fn]
    values = list(args.values())
    reports, sigs = (values[0], values[-1]) if fn == "submit_verdicts" else ([values[0]], [values[-1]])
    out = []
    for raw, signatures in zip(reports, sigs, strict=True):
        report = _struct(raw, fields)
        td = typed(hub.address, chain_id, report)
        signers = [R.recover_signer(td, bytes(s)).lower() for s in signatures]
        subject = (
            f"{report['epoch']}:{report['machine_id']}"
            if kind == "uptime"
            else str(report.get("job_id", report.get("machine_id")))
        )
        out.append((kind, subject, report, signers))
    return out


def finding(kind: str, report: dict) -> str:
    """What a signer of this report found: valid/invalid, pass/fail_*, or the probes answered."""
    if kind == "verdict":
        return "valid" if report["valid"] else "invalid"
    if kind == "attestation":
        return R.Outcome(int(report["outcome"])).name.lower()
    return f"{int(report['successes'])}/{int(report['probes'])} probes"


__all__ = ["REPORT_CALLS", "finding", "report_signers"]
