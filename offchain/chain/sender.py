"""The hot path's transactions: calldata encoded once, a local nonce, known gas, one send.

ape prepares every transaction with six to eight RPC calls (the nonce, fee history, the
priority fee, the base fee, the sender's balance, a gas estimate, a trace after mining). The
transactions a busy network sends all day (accept_jobs, submit_results, finalize_many,
create_jobs, submit_verdicts) go through `Sender` instead:

- the calldata is encoded by ape's ABI codec (`handler.encode_input`), so arguments are
  checked and converted exactly as for an ape call;
- the nonce is counted locally (read once, then again only after a "nonce too low" answer);
- the gas limit is known: estimated once per (contract, method, batch size), then reused with
  a margin; a transaction that runs out of it drops that entry, so the next one re-estimates;
- fees are read once a minute (or again when the node says they are too low);
- the transaction is signed by the ape account (test, keyfile or hardware: ape's signer) and
  sent raw; its receipt is polled every `poll_s`.

One transaction per account is in flight at a time (a per-account lock held until its
receipt), as before: a process's chain writes are sequential. A transaction that reverts is
replayed with `eth_call` for its reason, as ape does, and raises `TxFailed`: it costs gas,
exactly like an ape transaction mined under `gas_limit: max`.

Why not ape's `sender=` path with settings: ape has no setting for a cached nonce, cached
fees or cached gas, and web3's middleware for them (signing, gas-price strategies) would
still read the nonce and estimate gas on every transaction.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

GAS_MARGIN = 1.3  # limit = estimate x margin + GAS_PAD: state moves between estimate and use
GAS_PAD = 20_000
FEES_TTL_S = 60.0
RECEIPT_TIMEOUT_S = 120.0
STUCK_AFTER_S = 15.0  # a transaction not mined after this long: is its nonce still the next one?


class TxFailed(RuntimeError):
    """A transaction that reverts (found by the gas estimate, or mined and failed) or ran out
    of gas. `revert_message` is the contract's reason, as on ape's ContractLogicError."""

    def __init__(self, method: str, reason: str) -> None:
        super().__init__(f"{method}: {reason}")
        self.revert_message = reason


def _revert_text(e: Exception) -> str:
    """web3's revert error as the contract's reason ("execution reverted: x: y" -> "x: y")."""
    msg = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
    return msg.removeprefix("execution reverted: ").removeprefix("execution reverted") or "reverted"


@dataclass
class SentReceipt:
    """What callers of the hot path read from a mined transaction (ape-receipt compatible)."""

    txn_hash: str
    block_number: int
    gas_used: int
    gas_limit: int
    logs: list[dict] = field(default_factory=list)

    def decode_logs(self, event: Any) -> list:
        """This transaction's logs of `event` (an ape `ContractEvent`), decoded by ape."""
        from ape import networks

        return list(networks.provider.network.ecosystem.decode_logs(self.logs, event.abi))


class Sender:
    """Sends one account's hot-path transactions (see the module docstring)."""

    _by_address: dict[str, Sender] = {}
    _registry_lock = threading.Lock()

    def __init__(self, account: Any, provider: Any, *, poll_s: float = 0.5) -> None:
        self.account = account
        self.address = str(account.address)
        self.provider = provider
        self.web3 = provider.web3
        self.chain_id = int(provider.chain_id)
        self.poll_s = poll_s
        self.stuck_after_s = STUCK_AFTER_S
        self.lock = threading.RLock()
        self._nonce: int | None = None
        self._fees: tuple[int, int] | None = None  # (max fee, priority fee)
        self._fees_at = -1e18
        self._gas: dict[tuple[str, bytes, int], int] = {}
        self._pending_estimates = True

    @classmethod
    def of(cls, account: Any, provider: Any | None = None, *, poll_s: float | None = None) -> Sender:
        """The process's one `Sender` for `account` (one nonce counter per account)."""
        if poll_s is None:
            from offchain.chain.client import RECEIPT_POLL_S

            poll_s = RECEIPT_POLL_S
        if provider is None:
            from ape import networks

            provider = networks.provider
        key = str(account.address).lower()
        with cls._registry_lock:
            s = cls._by_address.get(key)
            if s is None or s.provider is not provider:
                s = cls._by_address[key] = cls(account, provider, poll_s=poll_s)
            return s

    # ------------------------------------------------------------------ the pieces
    def _fees_now(self, refresh: bool = False) -> tuple[int, int]:
        if refresh or self._fees is None or time.monotonic() - self._fees_at > FEES_TTL_S:
            base = int(self.web3.eth.get_block("latest").get("baseFeePerGas") or 0)
            try:
                tip = int(self.web3.eth.max_priority_fee)
            except Exception:  # noqa: BLE001 - a node without eth_maxPriorityFeePerGas
                tip = 10**9
            # Twice the base fee: room for six full blocks in a row (+12.5% each) before a resend.
            self._fees = (2 * base + tip, tip)
            self._fees_at = time.monotonic()
        return self._fees

    def _gas_for(self, to: str, data: bytes, items: int) -> int:
        key = (to.lower(), bytes(data[:4]), items)
        gas = self._gas.get(key)
        if gas is None:
            est = self._estimate({"from": self.address, "to": to, "data": data})
            gas = self._gas[key] = int(est * GAS_MARGIN) + GAS_PAD
        return gas

    def _estimate(self, call: dict) -> int:
        """The call's gas on the pending block, where the node has one (a transaction due at
        the next block's time, a deadline just passed or a window just opened, would be
        refused on the latest block); on the latest block otherwise."""
        from web3.exceptions import MethodUnavailable

        try:
            if self._pending_estimates:
                try:
                    return int(self.web3.eth.estimate_gas(call, "pending"))
                except MethodUnavailable:  # eth-tester (ape's in-process test node)
                    self._pending_estimates = False
            return int(self.web3.eth.estimate_gas(call))
        except Exception as e:  # noqa: BLE001 - web3's ContractLogicError, or a test node's own
            if "revert" not in str(e).lower():
                raise
            raise TxFailed("estimate", _revert_text(e)) from None

    def _resync_nonce(self) -> int:
        self._nonce = int(self.web3.eth.get_transaction_count(self.address, "pending"))
        return self._nonce

    def _sign_and_send(
        self, to: str, data: bytes, gas: int, value: int, nonce: int | None = None
    ) -> tuple[str, int, bytes]:
        """Signs and sends with the next local nonce (or `nonce`, which leaves the counter as is)."""
        max_fee, tip = self._fees_now()
        if self._nonce is None:
            self._resync_nonce()
        for attempt in range(3):
            use = self._nonce if nonce is None else nonce
            txn = self.provider.network.ecosystem.create_transaction(
                chain_id=self.chain_id, receiver=to, data=data, value=value, nonce=use,
                gas_limit=gas, max_fee=max_fee, max_priority_fee=tip, type=2, sender=self.address,
            )  # fmt: skip
            signed = self.account.sign_transaction(txn)
            if signed is None:
                raise TxFailed("sign", f"{self.address} refused to sign")
            raw = signed.serialize_transaction()
            try:
                h = self.web3.eth.send_raw_transaction(raw)
            except Exception as e:  # noqa: BLE001 - the node's answer decides what to fix
                msg = str(e).lower()
                if attempt < 2 and "nonce" in msg and nonce is None:  # another sender moved it
                    self._resync_nonce()
                    continue
                if attempt < 2 and ("fee" in msg or "underpriced" in msg):
                    max_fee, tip = self._fees_now(refresh=True)
                    continue
                raise
            if nonce is None:
                self._nonce += 1
            return ("0x" + bytes(h).hex() if isinstance(h, bytes) else str(h)), use, raw
        raise TxFailed("send", "could not send after 3 tries")  # pragma: no cover - the loop returns or raises

    def _reason(self, to: str, data: bytes, block: int) -> str:
        """Why a mined transaction reverted: replayed with eth_call on its block's parent state."""
        try:
            self.web3.eth.call({"from": self.address, "to": to, "data": data}, block - 1)
        except Exception as e:  # noqa: BLE001 - the revert is the answer
            return _revert_text(e)
        return "reverted (the replay on the parent block succeeds: the state moved within the block)"

    def _send_and_wait(self, to: str, data: bytes, gas: int, value: int) -> tuple[Any, str]:
        """Sends and waits for the receipt. A transaction still unmined after STUCK_AFTER_S is
        checked against the account's mined nonce:
        - below it: the node lost earlier transactions (a restart from a state saved before they
          were mined), and ours waits behind the gap. The gap is filled with empty transfers to
          itself, never with the lost payloads (their callers saw them fail and decide again);
        - above it (and none of our versions mined): another sender used the nonce, so ours can
          never be mined: sent again with the next nonce;
        - equal: it is next in line. When the base fee has risen past what it offers, it is
          replaced (same nonce, fees read again, at least 10% more); else the same bytes are sent
          again, in case the node lost it.
        Every version sent for a nonce is looked for, so a replaced one that was mined after all
        is found and the payload is never sent twice."""
        from web3.exceptions import TimeExhausted, TransactionNotFound

        eth = self.web3.eth
        deadline = time.monotonic() + RECEIPT_TIMEOUT_S
        txn_hash, nonce, raw = self._sign_and_send(to, data, gas, value)
        versions = [txn_hash]  # every transaction sent with `nonce` for this payload
        offered = self._fees_now()[0]
        while True:
            wait = min(self.stuck_after_s, max(deadline - time.monotonic(), 0.1))
            try:
                return eth.wait_for_transaction_receipt(txn_hash, timeout=wait, poll_latency=self.poll_s), txn_hash
            except TimeExhausted:
                if time.monotonic() >= deadline:
                    self._nonce = None  # read again before the next transaction
                    raise
                # The count first, then the receipts: a transaction mined between the two reads
                # is found by the second, so it is never sent twice.
                mined = int(eth.get_transaction_count(self.address, "latest"))
                for h in versions:
                    try:
                        return eth.get_transaction_receipt(h), h
                    except TransactionNotFound:
                        pass
                if mined < nonce:
                    for n in range(mined, nonce):
                        self._sign_and_send(self.address, b"", 21_000, 0, nonce=n)
                elif mined > nonce:
                    self._nonce = mined
                    txn_hash, nonce, raw = self._sign_and_send(to, data, gas, value)
                    versions, offered = [txn_hash], self._fees_now()[0]
                elif self._fees_now(refresh=True)[0] > offered * 11 // 10:  # priced out: replace it
                    txn_hash, _, raw = self._sign_and_send(to, data, gas, value, nonce=nonce)
                    versions.append(txn_hash)
                    offered = self._fees_now()[0]
                else:  # the node may have lost it: the same bytes again ("already known" if not)
                    with contextlib.suppress(Exception):
                        eth.send_raw_transaction(raw)

    # ------------------------------------------------------------------ the call
    def transact(self, handler: Any, *args: Any, items: int = 1, value: int = 0) -> SentReceipt:
        """Sends `handler(*args)` (an ape contract method) from this account and waits for it.

        `items` is the batch size, for the gas cache. Raises `TxFailed` when the transaction is
        mined but fails, and whatever the node says when it is refused or cannot be estimated
        (a revert found by the estimate names its reason, as ape's would).
        """
        to = str(handler.contract.address)
        data = bytes(handler.encode_input(*args))
        name = getattr(handler, "name", None) or handler.abis[0].name
        with self.lock:
            try:
                gas = self._gas_for(to, data, items)
            except TxFailed as e:
                raise TxFailed(name, e.revert_message) from None
            r, txn_hash = self._send_and_wait(to, data, gas, value)
        if int(r["status"]) != 1:
            if int(r["gasUsed"]) >= gas * 0.98:
                self._gas.pop((to.lower(), data[:4], items), None)
                raise TxFailed(name, f"out of gas at {gas} (the next one re-estimates)")
            raise TxFailed(name, self._reason(to, data, int(r["blockNumber"])))
        return SentReceipt(
            txn_hash=txn_hash, block_number=int(r["blockNumber"]), gas_used=int(r["gasUsed"]),
            gas_limit=gas, logs=[dict(lg) for lg in r["logs"]],
        )  # fmt: skip


__all__ = ["SentReceipt", "Sender", "TxFailed"]
