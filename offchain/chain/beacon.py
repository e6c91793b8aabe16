"""The audit draw: AuditBeacon's rounds and seeds, the member's hash chain, and JobMarket's
draw rule mirrored off-chain (docs/SECURITY.md, "The audit draw").

A result submitted at time T is drawn from beacon round T // round_seconds + 1. The round's
seed is keccak256(abi_encode(XOR of keccak256(abi_encode(member, reveal)), round)) once all
members revealed;
a job is drawn when keccak256(abi_encode(seed, job_id)) % 10^4 < audit_bps. A round not fully
revealed by round * round_seconds + reveal_window is degraded: every job drawn from it (with a
non-zero audit rate) is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import encode as _abi_encode
from eth_utils import keccak as _keccak

from offchain.constants import MAX_BPS

# AuditBeacon.draw_seed round states.
ROUND_PENDING = 0
ROUND_READY = 1
ROUND_DEGRADED = 2
# How many reveals one hash chain serves before the member commits a new one. At one reveal per
# 30 s round that has jobs, 2**16 lasts 22 days of continuous load; the chain is rebuilt from the
# operator's key in about a tenth of a second.
CHAIN_LENGTH = 2**16


def draw_round(timestamp: int, round_seconds: int) -> int:
    """The beacon round a result submitted at `timestamp` is drawn from (JobMarket._submit)."""
    return int(timestamp) // int(round_seconds) + 1


def reveal_share(member: str, secret: bytes) -> bytes:
    """What a member's reveal adds (XOR) to its round: keccak256(abi_encode(member, secret)). Bound
    to the member, so a member that copied another's commitment cannot cancel its reveals."""
    return _keccak(_abi_encode(["address", "bytes32"], [member, bytes(secret)]))


def round_seed(xor: bytes, round_: int) -> bytes:
    """AuditBeacon.draw_seed's seed of a fully revealed round, from its `round_xor` (the XOR of
    every reveal's `reveal_share`)."""
    return _keccak(_abi_encode(["bytes32", "uint256"], [bytes(xor), int(round_)]))


def drawn_from_seed(seed: bytes, job_id: int, audit_bps: int) -> bool:
    """JobMarket._drawn for a ready round: keccak256(abi_encode(seed, job_id)) % 10^4 < audit_bps."""
    if int(audit_bps) == 0:
        return False
    h = _keccak(_abi_encode(["bytes32", "uint256"], [bytes(seed), int(job_id)]))
    return int.from_bytes(h, "big") % MAX_BPS < int(audit_bps)


def audit_draw(beacon: Any, job_id: int, job: dict, now: int | None = None, seeds: dict | None = None) -> bool | None:
    """Whether a submitted job was drawn for audit: True/False, or None before it is submitted
    or while its round is pending. `now` (chain time) lets a caller see a round degrade before a
    new block exists (a dev chain may mine only on transactions); JobMarket agrees once one does.
    `seeds`: a caller's {round: (state, seed)} cache of final rounds (Ready and Degraded never
    change), so many jobs of one round cost one `draw_seed` read."""
    round_ = int(job.get("draw_round", 0))
    if round_ == 0:
        return None
    if int(job["audit_bps"]) == 0:
        return False
    if seeds is not None and round_ in seeds:
        state, seed = seeds[round_]
    else:
        state, seed = beacon.draw_seed(round_)
        if seeds is not None and int(state) in (ROUND_READY, ROUND_DEGRADED):
            seeds[round_] = (state, seed)
    if now is not None and int(state) not in (ROUND_READY, ROUND_DEGRADED):
        return draw_outcome(state, seed, job_id, int(job["audit_bps"]), now, round_, *_timing(beacon))
    return draw_outcome(state, seed, job_id, int(job["audit_bps"]))


def _timing(beacon: Any) -> tuple[int, int]:
    return int(beacon.ROUND_SECONDS()), int(beacon.REVEAL_WINDOW())


def draw_outcome(
    state: int, seed: bytes, job_id: int, audit_bps: int, now: int | None = None, round_: int = 0,
    round_seconds: int = 0, reveal_window: int = 0,
) -> bool | None:  # fmt: skip
    """The draw of a job from its round's (state, seed) as AuditBeacon.draw_seed returns them: the
    seed decides once the round is Ready, every job of a Degraded round is drawn, and a round
    still pending at chain time `now` past its reveal window (round_ * round_seconds +
    reveal_window) will degrade, so its jobs count as drawn; else None (not known yet). The one
    rule the client (`audit_draw`) and the oracle (its per-cycle cache of rounds) both apply."""
    if int(state) == ROUND_READY:
        return drawn_from_seed(bytes(seed), job_id, audit_bps)
    if int(state) == ROUND_DEGRADED:
        return True
    if now is not None and int(now) > round_ * round_seconds + reveal_window:
        return True
    return None


@dataclass
class HashChain:
    """A member's hash chain v_n -> ... -> v_0 with keccak(v_i) = v_(i-1); v_0 is committed and
    reveals go v_1, v_2, ... Derived from a secret (the operator's key and the chain's
    generation), so a restarted service rebuilds it and finds its place from the on-chain tip."""

    values: list[bytes]

    @classmethod
    def derive(cls, key_material: bytes, context: bytes, length: int = CHAIN_LENGTH) -> HashChain:
        x = _keccak(b"gpunet-audit-beacon" + bytes(key_material) + bytes(context))
        rev = [x]
        for _ in range(length):
            x = _keccak(x)
            rev.append(x)
        rev.reverse()  # rev[0] = v_0 (the commitment), rev[-1] = the secret
        return cls(values=rev)

    @property
    def commitment(self) -> bytes:
        return self.values[0]

    def next_after(self, tip: bytes) -> bytes | None:
        """The value to reveal after `tip` (the member's last revealed value or commitment), or
        None when `tip` is not on this chain or the chain is used up."""
        index = self._index().get(bytes(tip))
        if index is None or index + 1 >= len(self.values):
            return None
        return self.values[index + 1]

    def __contains__(self, value: object) -> bool:
        """Whether `value` (a member's on-chain tip) is one of this chain's values."""
        return isinstance(value, (bytes, bytearray)) and bytes(value) in self._index()

    def remaining_after(self, tip: bytes) -> int:
        index = self._index().get(bytes(tip))
        return 0 if index is None else len(self.values) - 1 - index

    def _index(self) -> dict[bytes, int]:
        if not hasattr(self, "_idx"):
            self._idx = {v: i for i, v in enumerate(self.values)}
        return self._idx
