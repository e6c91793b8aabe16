"""Two adjustments to ape for gpunet's processes, each where ape has no setting for it.

- `receipts_wait_for_blocks`: on an anvil node that mines on an interval, wait for receipts.
- `skip_code_checks_for`: no `eth_getCode` before every call to a contract whose code was
  checked when the process connected.
- `poll_receipts_every`: how often a sent transaction's receipt is asked for.
- `bound_gas`: transactions declare a bounded gas limit, not the block's gas limit.
- `without_unused_plugins`: a `gpunet` process loads neither ape's in-process test chain nor
  its query cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

# Addresses (lowercase) whose code `connect` checked: ape's per-call check is skipped for them.
_VERIFIED: set[str] = set()


def receipts_wait_for_blocks() -> None:
    """Makes ape wait for every transaction's receipt on an anvil node that mines on an interval.

    ape decides whether a sent transaction will be mined from ape-foundry's `auto_mine`, which is
    anvil's `anvil_getAutomine`. Under interval mining (`anvil --block-time N`, as `make load`
    runs it) that answers false, and ape then hands back a receipt "not in a block" at once
    (no logs, no contract address) as if the node mined only on demand. gpunet never runs a
    node that mines only on demand (`--no-mining`), so in its processes every transaction is
    one that a block will include: the receipt is waited for. A patch of the class property,
    since ape-foundry has no setting for it (its `block_time` applies to nodes ape starts).
    """
    from ape_foundry.provider import FoundryProvider

    if getattr(FoundryProvider, "_gpunet_waits_for_blocks", False):
        return
    FoundryProvider.auto_mine = property(lambda self: True, FoundryProvider.auto_mine.fset)
    FoundryProvider._gpunet_waits_for_blocks = True


def skip_code_checks_for(addresses: Iterable[str]) -> None:
    """No `eth_getCode` before each call or transaction to these contracts.

    ape checks that a contract has code before every call and transaction it sends to it; on a
    development network (a local anvil) it never caches that answer, so every view costs two
    RPC calls (issue "The network at load and under faults" measured 977 such calls in one
    worker profile). `connect` checks the code of every contract of the deployment once, and
    gpunet's contracts cannot lose their code (no SELFDESTRUCT, no proxies), so the check is
    skipped for them; any other address is still checked by ape. A patch of ape's method
    (`ContractMethodHandler._validate_is_contract`), since ape has no setting for it.
    """
    from ape.contracts.base import ContractMethodHandler

    _VERIFIED.update(a.lower() for a in addresses)
    if getattr(ContractMethodHandler, "_gpunet_skips_verified", False):
        return
    original = ContractMethodHandler._validate_is_contract

    def _validate_is_contract(self) -> None:
        if str(self.contract.address).lower() in _VERIFIED:
            return
        original(self)

    ContractMethodHandler._validate_is_contract = _validate_is_contract
    ContractMethodHandler._gpunet_skips_verified = True


def poll_receipts_every(web3, seconds: float) -> None:
    """Polls for a sent transaction's receipt every `seconds` instead of every 0.1 s.

    ape waits for receipts with web3's `wait_for_transaction_receipt` at its default 0.1 s
    latency: on a chain with 1 s blocks that is about ten `eth_getTransactionReceipt` calls per
    transaction (40k of the 125k calls of a `make load` run). The first poll is still immediate,
    so an automining dev node answers at once; a mined transaction is seen at most `seconds`
    after its block. A wrapper on this web3 instance only, since ape passes no poll latency.
    """
    eth = web3.eth
    if getattr(eth, "_gpunet_poll_s", None) == seconds:
        return
    original = getattr(eth, "_gpunet_wait_original", eth.wait_for_transaction_receipt)

    def wait_for_transaction_receipt(transaction_hash, timeout: float = 120, poll_latency: float = seconds):
        return original(transaction_hash, timeout=timeout, poll_latency=poll_latency)

    eth._gpunet_wait_original = original
    eth.wait_for_transaction_receipt = wait_for_transaction_receipt
    eth._gpunet_poll_s = seconds


APE_PATH_GAS = 2_000_000  # the gas every transaction not sent by chain/sender.py declares


def bound_gas(network) -> Callable[[], None]:
    """Transactions on a local node declare APE_PATH_GAS, not the whole block's gas limit.

    ape's default for local networks is `gas_limit: max`: every transaction declares the
    block gas limit (30M on anvil), so a block holds one transaction, and the whole network
    (every client, provider and operator together) was bounded at one transaction per block.
    `max` also made every view read the latest block first, for a gas limit it then drops.
    Not `auto`: an estimate runs on the latest block, and a transaction due at the next
    block's time (a beacon reveal at its round's start, on a node that mines on demand)
    would be refused by it. The hot path (chain/sender.py) sends known gas of its own; the
    rest (reveals, attestations, rounds, claims) each use well under APE_PATH_GAS, so fifteen
    fit in a block. Public networks keep ape's `auto`.

    Sets it on the connected network object only, and returns the function that puts the old
    setting back (`connect` calls it on exit, so a test process that connects in-process
    keeps ape's setting for its other tests). A patch of the network's cached `gas_limit`,
    since ape-config.yaml would change it for ape's test runner too.
    """
    had, saved = "gas_limit" in network.__dict__, network.__dict__.get("gas_limit")

    def restore() -> None:
        network.__dict__.pop("gas_limit", None)
        if had:
            network.__dict__["gas_limit"] = saved

    if network.gas_limit == "max":
        network.__dict__["gas_limit"] = APE_PATH_GAS
    return restore


def _offers_nothing():
    """A plugin hook with nothing to offer (a generator, as ape expects of a provider hook)."""
    yield from ()


def without_unused_plugins() -> None:
    """ape's in-process test chain and its query cache are not loaded in this process.

    Both are plugin hooks that ape calls whenever it lists a network's providers or its query
    engines, and each imports a heavy module for something no `gpunet` command uses:
    - ape_test's `providers` imports its provider class, and with it py-evm, for
      `ethereum:local:test`, a chain that lives inside one process, with no deployment and no
      peers;
    - ape_cache's `query_engines` imports SQLAlchemy, for a cache that answers only once
      `ape cache init` made its database, which gpunet never does.
    `gpunet provider status` against anvil takes 2.7 s of CPU without them, 3.9 s with them
    (medians, `farm-bench --vs`); ~110 `gpunet` processes run in `make test`. The `gpunet`
    entry point calls this unless the test chain is asked for; ape's test runner, which runs
    on it, never does. ape looks each hook up on the plugin module at every call (its
    PluginManager), so the module attribute is what is replaced; the plugins' accounts and
    config hooks stay. Idempotent.
    """
    import ape_cache
    import ape_test

    ape_test.providers = _offers_nothing
    ape_cache.query_engines = _offers_nothing
