"""Helpers for scripts/bench.py: a gas recorder, a job driver over ape, and a storage profiler.

The driver keeps every job's current `Job` struct (rebuilt from receipts with
offchain.chain.jobs), moves anvil's clock, and records `gas_used` of every transaction
under an operation name.
"""

from __future__ import annotations

import statistics
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from offchain.chain import jobs as jobs_mod
from offchain.chain.anvil import anvil_bin
from offchain.constants import MachineStatus

ZERO_ADDRESS = "0x" + "00" * 20
CPU = 1
PRICE = 10**15  # $0.001 per compute unit (USD, 18 decimals)
UNITS = 1_000  # -> a $1.00 job
# The users' slippage bound: 10 tokens for a $1 job (the bench's price stays at $1.25).
MAX_TOKENS = 10 * 10**18
ACCEPT_WINDOW = 3600
COMPLETE_WITHIN = 3600
# A realistic result location (a CIDv1): its length is part of submit_result's calldata and log.
RESULT_URI = "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"


def spec_hash(n: int) -> bytes:
    return (0x5EC0_0000 + n).to_bytes(32, "big")


def result_hash(n: int) -> bytes:
    return (0xA5A5_0000 + n).to_bytes(32, "big")


def median(values: list[int]) -> int:
    return int(statistics.median(values))


def anvil_version() -> str:
    try:
        out = subprocess.run([anvil_bin(), "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.strip().splitlines()[0] if out.strip() else "unknown"
    except (OSError, subprocess.SubprocessError, FileNotFoundError):
        return "unknown"


@dataclass
class GasLog:
    """Gas used per operation name, in the order measured."""

    ops: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def add(self, name: str, receipt: Any) -> Any:
        self.ops[name].append(int(receipt.gas_used))
        return receipt


class Driver:
    """Runs jobs through JobMarket on a deployment, keeping structs current and logging gas."""

    def __init__(self, deployment: Any, chain: Any, gas: GasLog | None = None):
        self.d = deployment
        self.market = deployment.market
        self.registry = deployment.registry
        self.token = deployment.token
        self.chain = chain
        self.gas = gas or GasLog()
        self.jobs: dict[int, dict] = {}
        self.last: Any = None  # the last receipt recorded
        self.chains: dict[str, Any] = {}  # AuditBeacon members' hash chains, by address

    # --- bookkeeping -------------------------------------------------------------------
    def track(self, receipt: Any) -> Any:
        for job_id, job in jobs_mod.jobs_from_receipt(self.market, receipt):
            self.jobs[job_id] = job
        jobs_mod.update_from_receipt(self.market, self.jobs, receipt)
        return receipt

    def t(self, job_id: int) -> tuple:
        return jobs_mod.as_tuple(self.jobs[job_id])

    def record(self, name: str | None, receipt: Any) -> Any:
        self.track(receipt)
        self.last = receipt
        if name:
            self.gas.add(name, receipt)
        return receipt

    def now(self) -> int:
        return int(self.chain.blocks.head.timestamp)

    def warp_to(self, timestamp: int) -> None:
        """Mines an empty block at `timestamp` (if it is in the future)."""
        if timestamp > self.now():
            self.chain.mine(timestamp=timestamp)

    # --- setup -------------------------------------------------------------------------
    def fund(self, minter: Any, account: Any, amount: int, gas_names: bool = False) -> None:
        self.record("token_mint" if gas_names else None, self.token.mint(account, amount, sender=minter))
        for spender, name in ((self.registry, "token_approve_registry"), (self.market, "token_approve_market")):
            self.record(name if gas_names else None, self.token.approve(spender, 2**256 - 1, sender=account))

    def make_provider(
        self, account: Any, attester: Any, stake: int, class_id: int = CPU, price: int = PRICE, names: bool = True
    ) -> int:
        """Stakes, registers one machine, activates it and posts an offer; returns the machine id."""
        n = (lambda s: s) if names else (lambda s: None)
        self.record(n("stake"), self.registry.stake(stake, sender=account))
        tx = self.record(
            n("register"),
            self.registry.register(
                class_id, 1, 16_384, f"https://{account.address.lower()}.gpunet.example:8443", sender=account
            ),
        )
        machine_id = tx.decode_logs(self.registry.MachineRegistered)[0].machine_id
        self.record(
            n("set_machine_status"),
            self.registry.set_machine_status(machine_id, int(MachineStatus.ACTIVE), sender=attester),
        )
        self.record(n("set_offer"), self.registry.set_offer(class_id, price, sender=account))
        return machine_id

    # --- single-job calls ----------------------------------------------------------------
    def create(
        self,
        user: Any,
        provider: Any | None,
        n: int,
        name: str | None = "create_job",
        accept_window: int = ACCEPT_WINDOW,
    ) -> int:
        target = provider.address if provider is not None else ZERO_ADDRESS
        tx = self.record(
            name,
            self.market.create_job(
                target, CPU, spec_hash(n), UNITS, PRICE, accept_window, COMPLETE_WITHIN, MAX_TOKENS, sender=user
            ),
        )
        return tx.decode_logs(self.market.JobCreated)[0].job_id

    def accept(self, job_id: int, provider: Any, machine_id: int, name: str | None = "accept") -> Any:
        return self.record(name, self.market.accept(job_id, self.t(job_id), machine_id, sender=provider))

    def submit(self, job_id: int, provider: Any, name: str | None = "submit_result") -> Any:
        return self.record(
            name,
            self.market.submit_result(job_id, self.t(job_id), result_hash(job_id), RESULT_URI, sender=provider),
        )

    def accept_and_submit(self, job_id: int, provider: Any, machine_id: int, name: str | None = None) -> Any:
        return self.record(
            name,
            self.market.accept_and_submit(
                job_id, self.t(job_id), machine_id, result_hash(job_id), RESULT_URI, sender=provider
            ),
        )

    def fill(self, user: Any, provider: Any, n: int, machine_id: int, name: str | None = "fill_order") -> int:
        """The user signs an order for a $1 CPU job on `provider`'s offer; the provider fills it
        with its result (Submitted). Returns the job id (the order's digest)."""
        from offchain.chain.orders import order_tuple, sign_order

        order = {
            "user": user.address,
            "provider": provider.address,
            "class_id": CPU,
            "spec_hash": spec_hash(n),
            "compute_units": UNITS,
            "price_per_unit": PRICE,
            "max_tokens": MAX_TOKENS,
            "accept_by": self.now() + ACCEPT_WINDOW,
            "complete_within": COMPLETE_WITHIN,
            "salt": n,
        }
        sig = sign_order(user, self.market.address, self.chain.chain_id, order)
        tx = self.record(
            name,
            self.market.fill_order(order_tuple(order), sig, machine_id, result_hash(n), RESULT_URI, sender=provider),
        )
        return tx.decode_logs(self.market.OrderFilled)[0].job_id

    def fill_batch(self, user: Any, provider: Any, first_n: int, size: int, machine_id: int) -> tuple[list[int], Any]:
        """A batch order of `size` $1 CPU jobs, filled with results; returns (job ids, receipt)."""
        from offchain.chain.orders import order_batch_tuple, sign_order_batch

        order = {
            "user": user.address,
            "provider": provider.address,
            "class_id": CPU,
            "spec_hashes": [spec_hash(first_n + i) for i in range(size)],
            "compute_units": [UNITS] * size,
            "price_per_unit": PRICE,
            "max_tokens": MAX_TOKENS * size,
            "accept_by": self.now() + ACCEPT_WINDOW,
            "complete_within": COMPLETE_WITHIN,
            "salt": first_n,
        }
        sig = sign_order_batch(user, self.market.address, self.chain.chain_id, order)
        results = [result_hash(first_n + i) for i in range(size)]
        tx = self.record(
            None,
            self.market.fill_order_batch(
                order_batch_tuple(order), sig, machine_id, results, RESULT_URI, sender=provider
            ),
        )
        first = tx.decode_logs(self.market.OrderBatchFilled)[0].order_id
        return [first + i for i in range(size)], tx

    def finalize(self, job_id: int, keeper: Any, name: str | None = "finalize") -> Any:
        self.warp_to(self.jobs[job_id]["challenge_end"] + 1)
        return self.record(name, self.market.finalize(job_id, self.t(job_id), sender=keeper))

    # --- batch calls -------------------------------------------------------------------
    def create_batch(self, user: Any, provider: Any, first_n: int, size: int) -> tuple[list[int], Any]:
        tx = self.record(
            None,
            self.market.create_jobs(
                provider.address,
                CPU,
                [spec_hash(first_n + i) for i in range(size)],
                [UNITS] * size,
                PRICE,
                ACCEPT_WINDOW,
                COMPLETE_WITHIN,
                MAX_TOKENS * size,
                sender=user,
            ),
        )
        ids = [log.job_id for log in tx.decode_logs(self.market.JobCreated)]
        assert len(ids) == size, f"create_jobs made {len(ids)} jobs, expected {size}"
        return ids, tx

    def accept_batch(self, ids: list[int], provider: Any, machine_id: int) -> Any:
        return self.record(None, self.market.accept_jobs(ids, [self.t(i) for i in ids], machine_id, sender=provider))

    def submit_batch(self, ids: list[int], provider: Any) -> Any:
        return self.record(
            None,
            self.market.submit_results(
                ids,
                [self.t(i) for i in ids],
                [result_hash(i) for i in ids],
                [RESULT_URI] * len(ids),
                sender=provider,
            ),
        )

    def finalize_batch(self, ids: list[int], keeper: Any) -> Any:
        self.warp_to(max(self.jobs[i]["challenge_end"] for i in ids) + 1)
        return self.record(None, self.market.finalize_many(ids, [self.t(i) for i in ids], sender=keeper))

    def status(self, job_id: int) -> int:
        return int(self.market.job_status(job_id))


# --- storage profiling (needs anvil started with --steps-tracing) ---------------------------

_CALLS = {"CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"}


def _hex32(word: str) -> str:
    return "0x" + int(word, 16).to_bytes(32, "big").hex()


def profile_storage(web3: Any, tx_hash: Any, names: dict[str, str] | None = None) -> dict:
    """Aggregates a transaction's execution gas by opcode, by contract and by (contract, SLOAD/SSTORE, slot).

    Uses debug_traceTransaction structLogs, so anvil must run with `--steps-tracing`
    (GPUNET_ANVIL_ARGS="--steps-tracing"). A step's cost is its `gasCost`, except for a
    CALL-like step into code: there it is the caller's gas drop across the call minus what
    the callee used, so every unit of gas is counted once, at the contract that spent it.
    SSTORE costs are before refunds.
    """
    names = {k.lower(): v for k, v in (names or {}).items()}
    tx_hash = tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex()
    tx = web3.eth.get_transaction(tx_hash)
    receipt = web3.eth.get_transaction_receipt(tx_hash)
    trace = web3.provider.make_request(
        "debug_traceTransaction", [tx_hash, {"disableStorage": True, "disableMemory": True}]
    )
    if "error" in trace:
        raise RuntimeError(f"debug_traceTransaction failed: {trace['error']}")
    logs = trace["result"]["structLogs"]
    if not logs:
        raise RuntimeError("empty structLogs: start anvil with GPUNET_ANVIL_ARGS=--steps-tracing")

    by_slot: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])  # -> [count, gas]
    by_op: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_contract: dict[str, int] = defaultdict(int)
    frames: list[str] = [tx["to"].lower()]  # contract executing at depth 1, 2, ...
    open_calls: list[tuple[int, str]] = []  # (index of the CALL step, caller contract)

    def close_calls(depth: int, i: int) -> None:
        # Calls whose callee ran at a depth > `depth` have returned before step i.
        while open_calls and logs[open_calls[-1][0]]["depth"] >= depth:
            j, caller = open_calls.pop()
            call, first, last = logs[j], logs[j + 1], logs[i - 1]
            callee_used = int(first["gas"]) - (int(last["gas"]) - int(last["gasCost"]))
            cost = int(call["gas"]) - int(logs[i]["gas"]) - callee_used if i < len(logs) else 0
            by_op[call["op"]][1] += cost
            by_contract[caller] += cost
            del frames[call["depth"] :]

    for i, step in enumerate(logs):
        depth = step["depth"]
        close_calls(depth, i)
        contract = frames[depth - 1]
        op = step["op"]
        by_op[op][0] += 1
        stack = step.get("stack") or []
        nxt = logs[i + 1] if i + 1 < len(logs) else None
        if op in _CALLS and nxt is not None and nxt["depth"] == depth + 1:
            open_calls.append((i, contract))
            frames.append("0x" + _hex32(stack[-2])[-40:] if len(stack) >= 2 else "?")
            continue  # costed when the callee returns
        cost = int(step["gasCost"])
        if op in _CALLS and nxt is not None:
            cost = int(step["gas"]) - int(nxt["gas"])  # precompile or code-less account
        by_op[op][1] += cost
        by_contract[contract] += cost
        if op in ("SLOAD", "SSTORE") and stack:
            key = (contract, op, _hex32(stack[-1]))
            by_slot[key][0] += 1
            by_slot[key][1] += cost
    close_calls(1, len(logs))
    executed = sum(by_contract.values())
    return {
        "gas_used": int(receipt["gasUsed"]),
        "execution": executed,
        "intrinsic_calldata_minus_refund": int(receipt["gasUsed"]) - executed,
        "by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1][1])),
        "by_contract": {names.get(k, k): v for k, v in sorted(by_contract.items(), key=lambda kv: -kv[1])},
        "by_slot": [
            (names.get(c, c), op, slot, n, g)
            for (c, op, slot), (n, g) in sorted(by_slot.items(), key=lambda kv: -kv[1][1])
        ],
    }


# --- naming storage slots in profiles --------------------------------------------------------


def storage_layout(contract_file: str) -> dict[str, tuple[int, str]]:
    """{variable: (slot, type)} from `vyper -f layout` (snekmate on the search path)."""
    import json
    import sys
    from pathlib import Path

    import snekmate

    repo = Path(__file__).resolve().parents[1]
    search = Path(list(snekmate.__path__)[0]).parent
    vyper = Path(sys.executable).parent / "vyper"
    out = subprocess.run(
        [str(vyper), "-f", "layout", "-p", str(search), "-p", str(repo / "contracts"), contract_file],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    flat: dict[str, tuple[int, str]] = {}

    def walk(d: dict, prefix: str = "") -> None:
        for k, v in d.items():
            if "slot" in v:
                flat[prefix + k] = (int(v["slot"]), v["type"])
            else:
                walk(v, prefix + k + ".")

    walk(json.loads(out)["storage_layout"])
    return flat


def slot_labels(layout: dict[str, tuple[int, str]], keys: dict[str, list[tuple[str, bytes]]]) -> dict[str, str]:
    """Names for the storage slots of `layout`: scalars by slot number, HashMaps (one or two levels,
    Vyper's keccak256(slot . key)) for the candidate keys given per key type:
    keys = {"address": [(label, 32-byte key)], "uint256": [...], "bytes32": [...], "uint16": [...]}."""
    from eth_utils import keccak

    def word(n: int) -> bytes:
        return n.to_bytes(32, "big")

    def key_types(t: str) -> list[str]:
        # "HashMap[address, HashMap[uint16, uint256]]" -> ["address", "uint16"]
        found = []
        while t.startswith("HashMap["):
            inner = t[len("HashMap[") : -1]
            k, _, rest = inner.partition(", ")
            found.append(k)
            t = rest
        return found

    labels: dict[str, str] = {}
    for name, (slot, typ) in layout.items():
        kts = key_types(typ)
        if not kts:
            labels["0x" + word(slot).hex()] = name
            continue
        level = [(name, word(slot))]
        for kt in kts:
            level = [
                (f"{lbl}[{klbl}]", keccak(base + kbytes)) for lbl, base in level for klbl, kbytes in keys.get(kt, [])
            ]
        for lbl, s in level:
            labels["0x" + s.hex()] = lbl
            # Structs and strings in a map span consecutive slots after the base.
            for off in range(1, 4):
                labels.setdefault("0x" + word(int.from_bytes(s, "big") + off).hex(), f"{lbl}+{off}")
    return labels
