"""The audit draw in the simulation: the oracle operators as AuditBeacon members.

Each operator derives a hash chain from its key and the run's seed (offchain/chain/beacon.py
HashChain), commits its v_0 at deployment, and reveals its next chain value for every round
that the epoch's jobs are drawn from, at the round's start (what the oracle service does). A
scenario may keep some operators silent in some epochs (`beacon.silent`): their round is then
degraded once its reveal window closes, and JobMarket audits every job drawn from it.

The draw is read from the contracts (AuditBeacon.draw_seed, JobMarket.audit_drawn) and checked
against offchain/chain/beacon.py's mirror of it: the seed of a fully revealed round is
keccak256(abi_encode(XOR of keccak256(abi_encode(member, reveal)), round)), a job is drawn when
keccak256(abi_encode(seed, job_id)) % 10^4 < audit_bps, and a degraded round draws every job."""

from __future__ import annotations

import boa

from offchain.chain.beacon import (
    ROUND_DEGRADED,
    ROUND_PENDING,
    ROUND_READY,
    HashChain,
    audit_draw,
    reveal_share,
    round_seed,
)
from offchain.sim.model import Operator

ZERO32 = b"\x00" * 32
STATE_NAMES = {ROUND_PENDING: "pending", ROUND_READY: "ready", ROUND_DEGRADED: "degraded"}


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


class BeaconMembers:
    """The operators' side of AuditBeacon: their hash chains, commitments and reveals, and the
    draw read back from the contracts (and checked against the off-chain mirror)."""

    def __init__(self, beacon, market, operators: list[Operator], seed: int, reveals: int):
        self.beacon, self.market = beacon, market
        self.operators = list(operators)
        self.round_seconds = int(beacon.ROUND_SECONDS())
        self.reveal_window = int(beacon.REVEAL_WINDOW())
        context = f"gpunet sim beacon {seed}".encode()
        # One value per reveal (one round a epoch), none left over.
        self.chains = {o.address: HashChain.derive(o.private_key, context, length=max(1, reveals)) for o in operators}
        # Each member's last revealed value (its commitment before the first reveal).
        self.tips: dict[str, bytes] = {}
        # round -> (XOR of the reveals' shares made, how many were made).
        self.reveals: dict[int, tuple[bytes, int]] = {}

    def commit(self) -> int:
        """Every member commits its chain; returns the first round the commitments apply to."""
        applies = 0
        for o in self.operators:
            chain = self.chains[o.address]
            with boa.env.prank(o.address):
                self.beacon.commit(chain.commitment)
            (e,) = [e for e in self.beacon.get_logs() if type(e).__name__ == "Committed"]
            applies = max(applies, int(e.applies_from))
            self.tips[o.address] = chain.commitment
        return applies

    def round_start(self, round_: int) -> int:
        return round_ * self.round_seconds

    def reveal(self, round_: int, silent: int = 0) -> None:
        """Every member but the first `silent` reveals its next chain value for `round_`, at the
        round's start (or now, when that is later: it must still be inside the reveal window)."""
        start = self.round_start(round_)
        boa.env.timestamp = max(int(boa.env.timestamp), start)
        assert boa.env.timestamp <= start + self.reveal_window, f"round {round_}: reveal window over"
        x, n = self.reveals.get(round_, (ZERO32, 0))
        for o in self.operators[silent:]:
            secret = self.chains[o.address].next_after(self.tips[o.address])
            assert secret is not None, f"{o.address}: hash chain used up"
            with boa.env.prank(o.address):
                self.beacon.reveal(round_, secret)
            self.tips[o.address] = secret
            x, n = _xor(x, reveal_share(o.address, secret)), n + 1
        self.reveals[round_] = (x, n)

    def close(self, round_: int) -> None:
        """Time moves past `round_`'s reveal window: its state is final (ready or degraded)."""
        boa.env.timestamp = max(int(boa.env.timestamp), self.round_start(round_) + self.reveal_window + 1)

    def state(self, round_: int) -> int:
        """AuditBeacon.draw_seed's state for `round_`, checked against the reveals made: ready
        with the mirrored seed once every member revealed, else pending until the window closes
        and degraded after."""
        state, seed = self.beacon.draw_seed(round_)
        x, n = self.reveals.get(round_, (ZERO32, 0))
        if n == len(self.operators):
            want = (ROUND_READY, round_seed(x, round_))
        elif boa.env.timestamp > self.round_start(round_) + self.reveal_window:
            want = (ROUND_DEGRADED, ZERO32)
        else:
            want = (ROUND_PENDING, ZERO32)
        assert (int(state), bytes(seed)) == want, f"round {round_}: draw_seed {state}, mirror {want[0]}"
        return int(state)

    def drawn(self, job_id: int, job: dict, tup: tuple) -> bool:
        """JobMarket.audit_drawn for a Submitted job, which must agree with the off-chain rule
        (offchain/chain/beacon.py audit_draw) on the beacon's seed."""
        drawn = bool(self.market.audit_drawn(job_id, tup))
        assert drawn == audit_draw(self.beacon, job_id, job), f"job {job_id}: audit_drawn disagrees with the mirror"
        return drawn
