"""EIP-712 reports for OracleHub: typed data, digests, signing, signature order.

Operators sign a `BenchmarkAttestation` or an `UptimeReport` under the domain
("gpunet OracleHub", "1", chain id, hub address); a submitter passes the report and at least
`threshold` 65-byte signatures ordered by signer address ascending (the contract rejects
anything else). Everything here is computed locally: never trust an RPC to say what is signed.

    typed = attestation_typed_data(hub.address, chain_id, report)
    sigs = sort_signatures([(op.address, sign_report(op.key, typed)) for op in quorum])
    hub.submit_attestation(report_tuple(ATTESTATION_FIELDS, report), sigs, sender=...)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "gpunet OracleHub"
DOMAIN_VERSION = "1"
# PriceFeed's own domain: an operator's price observation is signed for PriceFeed, never the hub.
PRICE_DOMAIN_NAME = "gpunet PriceFeed"

# Field order and types: must match the structs and type hashes in contracts/OracleHub.vy.
ATTESTATION_FIELDS: tuple[tuple[str, str], ...] = (
    ("machine_id", "uint256"),
    ("provider", "address"),
    ("class_id", "uint16"),
    ("outcome", "uint8"),
    ("fp32_gflops", "uint256"),
    ("bf16_gflops", "uint256"),
    ("bandwidth_gbs", "uint256"),
    ("transcript_hash", "bytes32"),
    ("measured_at", "uint256"),
    ("valid_until", "uint256"),
    ("nonce", "uint256"),
)
UPTIME_FIELDS: tuple[tuple[str, str], ...] = (
    ("epoch", "uint256"),
    ("machine_id", "uint256"),
    ("probes", "uint256"),
    ("successes", "uint256"),
    ("nonce", "uint256"),
)
VERDICT_FIELDS: tuple[tuple[str, str], ...] = (
    ("job_id", "uint256"),
    ("result_hash", "bytes32"),
    ("valid", "bool"),
    ("evidence_hash", "bytes32"),
    ("nonce", "uint256"),
)
# PriceObservation (contracts/PriceFeed.vy): each operator signs its own; price is USD per
# token with 8 decimals (PRICE_DECIMALS).
PRICE_FIELDS: tuple[tuple[str, str], ...] = (
    ("round_id", "uint256"),
    ("price", "uint256"),
    ("observed_at", "uint256"),
)
PRICE_DECIMALS = 8
_EIP712_DOMAIN_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)

Report = Mapping[str, Any]
TypedData = dict[str, Any]


class Outcome(IntEnum):
    """BenchmarkAttestation.outcome (OracleHub.OUTCOME_*)."""

    PASS = 0
    FAIL_MISREPORT = 1
    FAIL_UNREACHABLE = 2


def type_string(primary: str, fields: Iterable[tuple[str, str]]) -> str:
    """`Name(type1 name1,...)`, the string the contract's type hash is the keccak of."""
    return f"{primary}({','.join(f'{t} {n}' for n, t in fields)})"


ATTESTATION_TYPEHASH = keccak(text=type_string("BenchmarkAttestation", ATTESTATION_FIELDS))
UPTIME_TYPEHASH = keccak(text=type_string("UptimeReport", UPTIME_FIELDS))
VERDICT_TYPEHASH = keccak(text=type_string("JobVerdict", VERDICT_FIELDS))
PRICE_TYPEHASH = keccak(text=type_string("PriceObservation", PRICE_FIELDS))


def _as_bytes32(value: bytes | str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def _normalize(fields: Iterable[tuple[str, str]], report: Report) -> dict[str, Any]:
    """The report's fields in order, bytes32 as bytes and addresses checksummed; extra keys dropped."""
    return {name: _normal(typ, report[name]) for name, typ in fields}


def _normal(typ: str, value: Any) -> Any:
    if typ.endswith("[]"):  # an array (a batch order's spec hashes and units)
        return [_normal(typ[:-2], v) for v in value]
    if typ == "bytes32":
        return _as_bytes32(value)
    if typ == "address":
        return to_checksum_address(value)
    if typ == "bool":
        return bool(value)
    if typ == "string":
        return str(value)
    return int(value)


def report_tuple(fields: Iterable[tuple[str, str]], report: Report) -> tuple:
    """The report as the contract's struct argument (a tuple in field order)."""
    return tuple(_normalize(fields, report).values())


def domain(hub_address: str, chain_id: int, name: str = DOMAIN_NAME) -> dict[str, Any]:
    return {
        "name": name,
        "version": DOMAIN_VERSION,
        "chainId": int(chain_id),
        "verifyingContract": to_checksum_address(hub_address),
    }


def typed_data(
    primary: str,
    fields: tuple[tuple[str, str], ...],
    hub_address: str,
    chain_id: int,
    report: Report,
    domain_name: str = DOMAIN_NAME,
) -> TypedData:
    """EIP-712 typed data (eth_account `full_message` form) of `report` as `primary(fields)` under
    the domain (domain_name, version "1", chain id, `hub_address` = the verifying contract).
    Every gpunet signature (OracleHub reports, price observations, epoch rewards, permits) uses it."""
    return {
        "types": {
            "EIP712Domain": [{"name": n, "type": t} for n, t in _EIP712_DOMAIN_FIELDS],
            primary: [{"name": n, "type": t} for n, t in fields],
        },
        "primaryType": primary,
        "domain": domain(hub_address, chain_id, domain_name),
        "message": _normalize(fields, report),
    }


def attestation_typed_data(hub_address: str, chain_id: int, report: Report) -> TypedData:
    """EIP-712 typed data (eth_account `full_message` form) of a BenchmarkAttestation."""
    return typed_data("BenchmarkAttestation", ATTESTATION_FIELDS, hub_address, chain_id, report)


def uptime_typed_data(hub_address: str, chain_id: int, report: Report) -> TypedData:
    """EIP-712 typed data (eth_account `full_message` form) of an UptimeReport."""
    return typed_data("UptimeReport", UPTIME_FIELDS, hub_address, chain_id, report)


def verdict_typed_data(hub_address: str, chain_id: int, report: Report) -> TypedData:
    """EIP-712 typed data (eth_account `full_message` form) of a JobVerdict."""
    return typed_data("JobVerdict", VERDICT_FIELDS, hub_address, chain_id, report)


def price_typed_data(feed_address: str, chain_id: int, observation: Report) -> TypedData:
    """EIP-712 typed data of a PriceObservation, under PriceFeed's domain (the feed's address)."""
    return typed_data("PriceObservation", PRICE_FIELDS, feed_address, chain_id, observation, PRICE_DOMAIN_NAME)


def typed_data_digest(typed_data: TypedData) -> bytes:
    """keccak256(0x19 0x01 || domainSeparator || structHash): what the operators sign."""
    m = encode_typed_data(full_message=typed_data)
    return keccak(b"\x19" + m.version + m.header + m.body)


def sign_digest(private_key: str | bytes, digest: bytes) -> bytes:
    """65-byte r || s || v (v = 27 or 28, low s) signature of a raw 32-byte digest."""
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    return bytes(Account.unsafe_sign_hash(digest, private_key).signature)


def sign_report(private_key: str | bytes, typed_data: TypedData) -> bytes:
    """An operator's 65-byte signature of a report's typed data."""
    return sign_digest(private_key, typed_data_digest(typed_data))


def recover_signer(typed_data: TypedData, signature: bytes) -> str:
    """The checksummed address that signed `typed_data` (check co-signatures before submitting)."""
    return Account.recover_message(encode_typed_data(full_message=typed_data), signature=bytes(signature))


def sort_signatures(signed: Iterable[tuple[str, bytes]]) -> list[bytes]:
    """Signatures ordered by signer address ascending, as `submit_*` requires.

    Raises ValueError on a repeated signer (the contract would reject the report)."""
    by_signer: dict[int, bytes] = {}
    for signer, sig in signed:
        key = int(signer, 16)
        if key in by_signer:
            raise ValueError(f"duplicate signer {to_checksum_address(signer)}")
        by_signer[key] = bytes(sig)
    return [by_signer[k] for k in sorted(by_signer)]


__all__ = [
    "ATTESTATION_FIELDS",
    "ATTESTATION_TYPEHASH",
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "UPTIME_FIELDS",
    "UPTIME_TYPEHASH",
    "Outcome",
    "PRICE_DECIMALS",
    "PRICE_DOMAIN_NAME",
    "PRICE_FIELDS",
    "PRICE_TYPEHASH",
    "price_typed_data",
    "attestation_typed_data",
    "domain",
    "recover_signer",
    "report_tuple",
    "sign_digest",
    "sign_report",
    "sort_signatures",
    "type_string",
    "typed_data_digest",
    "uptime_typed_data",
]
