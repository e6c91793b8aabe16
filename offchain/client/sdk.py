"""The user's side of a job, as a library: pick an offer, upload the spec and inputs, fund the
job in one transaction (EIP-2612 permit), wait, download and check the result, dispute it.

Prices are in USD: offers and `max_price` are USD per compute unit with 18 decimals (`USD`,
`parse_usd`). A job escrows the tokens its USD value buys at the on-chain token/USD price, as
JobMarket computes it: `Settlement.quote(price per unit) * units` (`job_quote`); the client
quotes first and funds with `max_tokens` = the quote
plus a slippage allowance (`max_slippage_bps`, 1% by default), so a price round landing
between the quote and the transaction cannot make the user pay more than that. Without a fresh
price on-chain nothing can be funded: `NoPrice` says so.

Every function takes `h`, contract handles for a deployment (`offchain.chain.client.connect`,
or any object with `token`, `registry`, `market`, `settlement`, `chain` and `record`; `hub`,
OracleHub, for the uptime offers are ranked by, is optional), and,
when it sends a transaction, an ape account. Failures the user can act on raise `ClientError` with a message
that says what to fix; the CLI (`offchain/client/cli.py`) prints it as is.

The client meets providers only through the chain and their agents' HTTP endpoints
(`PUT/GET /blobs/<sha256 hex>`, see `offchain/provider/agent.py`); it imports nothing from
`offchain.provider` or `offchain.oracle`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offchain.chain.events import start_block as _start_block
from offchain.chain.jobs import ZERO_ADDRESS, job_from_chain, jobs_from_receipt, order_result_event
from offchain.client.blobs import download, request_signer, upload  # noqa: F401 - re-exported: the one entry point
from offchain.client.money import (  # noqa: F401 - re-exported: sdk is the client's one entry point
    _NO_PRICE_REASONS,
    DEFAULT_MAX_SLIPPAGE_BPS,
    NO_PRICE_HELP,
    TOKEN,
    USD,
    ClientError,
    NoPrice,
    _no_price,
    fmt_price,
    fmt_usd,
    job_quote,
    parse_tokens,
    parse_usd,
    revert_reason,
    slippage_bound,
    token_price,
    token_quote,
    tokens,
)
from offchain.client.offers import (  # noqa: F401 - re-exported
    UNKNOWN_UPTIME_RANK_BPS,
    Offer,
    Uptime,
    _now,
    _stop,
    can_cover,
    fmt_bps,
    latest_uptime,
    rank_offers,
    reputation,
)
from offchain.constants import TERMINAL_JOB_STATUSES, JobStatus

# `offchain.workloads` imports torch (seconds): imported where a spec or an output is handled,
# so reading commands (`gpunet job show`, `provider status`) start fast.

DEFAULT_ACCEPT_WINDOW = 600
DEFAULT_COMPLETE_WITHIN = 3600
PERMIT_VALIDITY_S = 3600
OPEN_CANDIDATES = 3
# Statuses after which `submit` stops waiting: the result is on-chain, or the job ended.
RESULT_STATUSES = frozenset({JobStatus.SUBMITTED, JobStatus.AUDIT}) | TERMINAL_JOB_STATUSES


@dataclass
class Submission:
    job_id: int
    provider: str | None  # None: an open job
    class_id: int
    price: int  # USD per compute unit, 18 decimals
    units: int
    payment: int  # tokens escrowed (wei)
    spec_hash: str
    usd_value: int = 0  # price x units, 18 decimals
    max_tokens: int = 0  # the slippage bound the job was funded with (and the permit's amount)
    uploaded_to: list[str] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    tx_hash: str = ""


# ---------------------------------------------------------------------------- specs and blobs


def load_spec(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ClientError(f"spec file {path} not found") from None
    except ValueError as e:
        raise ClientError(f"spec file {path} is not JSON: {e}") from None


def read_blob_files(paths: Iterable[str | Path]) -> dict[str, bytes]:
    """{sha256 hex: bytes} of input files (a spec names its inputs by these hashes)."""
    out = {}
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as e:
            raise ClientError(f"cannot read input file {p}: {e}") from None
        out[hashlib.sha256(data).hexdigest()] = data
    return out


def check_spec(spec: dict, blobs: Mapping[str, bytes]) -> int:
    """Validates the spec with its input blobs and returns its compute units."""
    from offchain import workloads

    try:
        workloads.validate(spec)
    except workloads.SpecError as e:
        raise ClientError(f"spec invalid: {e}") from None
    inputs = spec.get("inputs", {})
    missing = {name: h for name, h in inputs.items() if h not in blobs}
    if missing:
        raise ClientError(
            "the spec names inputs that were not given: "
            + ", ".join(f"{n} = {h}" for n, h in missing.items())
            + " (pass each input file with --blob FILE; its sha256 must equal the hash in the spec)"
        )
    extra = sorted(set(blobs) - set(inputs.values()))
    if extra:
        raise ClientError(f"--blob files not named in the spec's inputs: {extra} (spec inputs: {inputs})")
    try:
        workloads.validate(spec, blobs)
    except workloads.SpecError as e:
        raise ClientError(f"spec invalid with its inputs: {e}") from None
    return workloads.compute_units(spec)


def spec_class(spec: dict, class_opt: str | int | None) -> int:
    """The GPU class to buy: `class_opt` (--class), else the spec's meta.class, else CPU (1)."""
    from offchain.benchmark.gpu_classes import get_class

    choice = class_opt if class_opt is not None else (spec.get("meta") or {}).get("class", 1)
    try:
        return get_class(choice).class_id
    except KeyError as e:
        raise ClientError(f"{e.args[0]}: pass --class ID|NAME") from None


# ---------------------------------------------------------------------------- offers


def _rebuild(h: Any, job_id: int) -> dict:
    """The job's current struct, rebuilt from its events and checked against the chain."""
    return job_from_chain(h.market, job_id, _start_block(h), _stop(h))


# ---------------------------------------------------------------------------- funding


def sign_permit(h: Any, account: Any, spender: str, value: int, deadline: int) -> tuple[int, bytes, bytes]:
    """(v, r, s) of the account's EIP-2612 permit for ComputeToken, signed by the ape account
    (test accounts and keyfile accounts alike: no private key leaves ape)."""
    from eth_account.messages import encode_typed_data

    from offchain.chain.permit import permit_typed_data

    typed = permit_typed_data(
        h.token.address, h.chain.chain_id, account.address, spender, value, h.token.nonces(account.address), deadline
    )
    sig = account.sign_message(encode_typed_data(full_message=typed))
    if sig is None:
        raise ClientError(f"account {account.address} cannot sign messages (EIP-712 permit)")
    return int(sig.v), bytes(sig.r).rjust(32, b"\0"), bytes(sig.s).rjust(32, b"\0")


def _windows(h: Any, accept_window: int | None, complete_within: int | None) -> tuple[int, int]:
    p = h.market.params()

    def clamp(v: int | None, default: int, lo: int, hi: int, what: str) -> int:
        if v is None:
            return min(max(default, lo), hi)
        if not lo <= v <= hi:
            raise ClientError(f"{what} must be within {lo}..{hi} seconds (protocol parameters), got {v}")
        return v

    accept = clamp(
        accept_window, DEFAULT_ACCEPT_WINDOW, int(p.min_accept_window), int(p.max_accept_window), "--accept-window"
    )
    complete = clamp(
        complete_within,
        DEFAULT_COMPLETE_WITHIN,
        int(p.min_complete_within),
        int(p.max_complete_within),
        "--complete-within",
    )
    return accept, complete


def choose(
    h: Any, class_id: int, units: int, *, provider: str | None, open_job: bool, max_price: int | None
) -> tuple[list[Offer], list[Offer], int]:
    """(all ranked offers, the providers to upload to, USD price per unit to fund at: the
    contract's `max_price_per_unit`; a provider's job is priced at its offer, at most this).
    `max_price`: USD per unit, 18 decimals. Raises `NoPrice` when collateral cover has to be
    checked in tokens and the chain has no fresh price."""
    offers = rank_offers(h, class_id)
    if not offers:
        raise ClientError(
            f"no offer for class {class_id}: no provider offers it with an Active machine now "
            "(see `gpunet provider show ADDR`; try another --class)"
        )
    if provider is not None:
        match = [o for o in offers if o.provider.lower() == provider.lower()]
        if not match:
            raise ClientError(
                f"provider {provider} has no offer for class {class_id} with an Active machine "
                f"(offering: {', '.join(o.provider for o in offers)})"
            )
        o = match[0]
        if max_price is not None and o.price > max_price:
            raise ClientError(
                f"price above max: {provider} asks {fmt_usd(o.price)}/unit, --max-price is {fmt_usd(max_price)}/unit"
            )
        return offers, [o], o.price if max_price is None else max_price
    affordable = [o for o in offers if max_price is None or o.price <= max_price]
    if not affordable:
        raise ClientError(
            f"price above max: the cheapest offer for class {class_id} is {fmt_usd(offers[0].price)}/unit, "
            f"--max-price is {fmt_usd(max_price)}/unit"
        )
    # One params read and one quote per distinct price, not per offer.
    bps = int(h.market.params().collateral_bps)
    quote = functools.cache(lambda price: job_quote(h, price, units))
    able = [o for o in affordable if can_cover(h, o, quote(o.price), bps)] or affordable
    if open_job:
        chosen = able[:OPEN_CANDIDATES]
        # An open job pays exactly the price it is funded at: enough for every candidate.
        return offers, chosen, max_price if max_price is not None else max(o.price for o in chosen)
    return offers, able[:1], able[0].price if max_price is None else max_price


def submit(
    h: Any,
    account: Any,
    spec: dict,
    blobs: Mapping[str, bytes] | None = None,
    *,
    class_id: int = 1,
    provider: str | None = None,
    open_job: bool = False,
    max_price: int | None = None,
    accept_window: int | None = None,
    complete_within: int | None = None,
    on_offers: Callable[[list[Offer], list[Offer]], None] | None = None,
    max_slippage_bps: int = DEFAULT_MAX_SLIPPAGE_BPS,
    max_tokens: int | None = None,
    keyring: Any = None,
) -> Submission:
    """Validates, ranks offers, quotes the job in tokens, uploads the spec and inputs, funds the
    job with a permit (one transaction) and returns the new job's id. Does not wait (see `wait`).

    `max_price`: USD per compute unit (18 decimals). The job escrows `job_quote` tokens, at
    most `max_tokens` (default: the quote plus `max_slippage_bps`); the permit is for
    exactly `max_tokens`, and only the escrow is transferred.

    `keyring` (the user's `offchain.sealing.Keyring`, see `offchain.client.sealed`): the spec
    and inputs are sealed to the chosen provider(s), the oracle operators and the user, and
    the chain's spec_hash is the sealed spec's; None sends them in plaintext."""
    if provider is not None and open_job:
        raise ClientError("give either --provider ADDR or --open, not both")
    blobs = dict(blobs or {})
    units = check_spec(spec, blobs)
    from offchain.workloads.base import canonical_json

    spec_bytes = canonical_json(spec)
    spec_hex = hashlib.sha256(spec_bytes).hexdigest()
    accept_window, complete_within = _windows(h, accept_window, complete_within)
    offers, targets, price = choose(h, class_id, units, provider=provider, open_job=open_job, max_price=max_price)
    if on_offers is not None:
        on_offers(offers, targets)
    # A provider's job is priced at its offer (the contract checks offer <= `price`), an open
    # job at `price` itself.
    unit_price = price if open_job else targets[0].price
    usd_value = unit_price * units
    quote = job_quote(h, unit_price, units)
    if max_tokens is None:
        max_tokens = slippage_bound(quote, max_slippage_bps)
    elif max_tokens < quote:
        raise ClientError(
            f"the job ({fmt_usd(usd_value)}) costs {tokens(quote)} tokens at the current token price, "
            f"more than --max-tokens {tokens(max_tokens)}: raise --max-tokens or wait for the price to move"
        )
    balance = int(h.token.balanceOf(account.address))
    if balance < quote:
        raise ClientError(
            f"balance {tokens(balance)} tokens is below the payment {tokens(quote)} tokens "
            f"({units} units = {fmt_usd(usd_value)})"
        )
    uploads = {spec_hex: spec_bytes, **blobs}
    if keyring is not None:
        from offchain.client.sealed import seal_job

        sealed = seal_job(h, keyring, spec, blobs, [o.provider for o in targets], int(h.record.get("block") or 0))
        spec_hex, uploads = sealed.spec_hex, sealed.uploads
        targets = [o for o in targets if o.provider in sealed.providers]
    uploaded, errors = [], []
    signer = request_signer(h, account)
    for o in targets:
        try:
            upload(o.endpoint, uploads, signer=signer, provider=o.provider)
            uploaded.append(o.provider)
        except ClientError as e:
            errors.append(f"{o.provider}: {e}")
    if not uploaded:
        raise ClientError("could not upload the spec and inputs to any provider: " + "; ".join(errors))
    deadline = _now(h) + PERMIT_VALIDITY_S
    # The permit covers the slippage bound; JobMarket transfers only the escrow (<= max_tokens).
    v, r, s = sign_permit(h, account, h.market.address, max_tokens, deadline)
    target = ZERO_ADDRESS if open_job else targets[0].provider
    try:
        receipt = h.market.create_job_with_permit(
            target, class_id, bytes.fromhex(spec_hex), units, price, accept_window, complete_within,
            max_tokens, max_tokens, deadline, v, r, s, sender=account,
        )  # fmt: skip
    except Exception as e:  # noqa: BLE001 - a revert: show the contract's reason
        raise funding_error(e, "create_job_with_permit", "the job", quote, max_tokens,
                            "--max-slippage-bps / --max-tokens") from None  # fmt: skip
    created = jobs_from_receipt(h.market, receipt)
    if not created:
        raise ClientError("the funding transaction created no job (no JobCreated event)")
    job_id, job = created[0]
    return Submission(
        job_id=int(job_id),
        provider=None if open_job else target,
        class_id=class_id,
        price=int(job["usd_value"]) // units,
        units=units,
        payment=int(job["payment"]),
        spec_hash=spec_hex,
        usd_value=int(job["usd_value"]),
        max_tokens=max_tokens,
        uploaded_to=uploaded,
        offers=offers,
        tx_hash=str(receipt.txn_hash),
    )


def funding_error(e: Exception, call: str, what: str, quote: int, max_tokens: int, allow: str) -> ClientError:
    """The user's one line for a funding transaction that reverted: no fresh price, a price that
    rose past the slippage bound between the quote and the transaction, or the contract's reason."""
    reason = revert_reason(e)
    if any(x in reason for x in _NO_PRICE_REASONS):
        return _no_price(reason)
    if "payment above max tokens" in reason:
        return ClientError(
            f"the token price fell between the quote ({tokens(quote)} tokens) and the transaction: {what} "
            f"now costs more than the {tokens(max_tokens)} tokens allowed; nothing was paid. Submit again, "
            f"or allow more with {allow}"
        )
    return ClientError(f"{call} reverted: {reason}")


# ---------------------------------------------------------------------------- following a job


def _check_id(h: Any, job_id: int) -> None:
    count = int(h.market.job_count())
    if 1 <= job_id <= count:
        return
    # A signed order's job takes the order's digest as its id: it exists once its slot is set.
    if job_id > count and int(h.market.job_status(job_id)) != JobStatus.NONE:
        return
    raise ClientError(f"job {job_id} does not exist ({f'jobs 1..{count}' if count else 'no jobs yet'})")


def result_event(h: Any, job_id: int) -> Any | None:
    """The event that committed the job's result (`result_hash`, `result_uri`), or None: a
    ResultSubmitted, or for a signed order filled with its result its OrderFilled (a batch
    order's: its OrderJobFilled's hash with the batch's URI)."""
    search = {"job_id": job_id}
    logs = list(h.market.ResultSubmitted.range(_start_block(h), _stop(h), search_topics=search))
    if logs:
        return logs[-1]
    if job_id <= int(h.market.job_count()):
        return None
    return order_result_event(h.market, job_id, _start_block(h), _stop(h))


def status(h: Any, job_id: int) -> dict:
    """The job's status, its data rebuilt from events, and its result location if submitted."""
    _check_id(h, job_id)
    job = _rebuild(h, job_id)
    st = JobStatus(h.market.job_status(job_id))
    out: dict[str, Any] = {"job_id": job_id, "status": st.name, "now": _now(h)}
    out.update({k: ("0x" + bytes(v).hex() if isinstance(v, bytes) else v) for k, v in job.items()})
    ev = result_event(h, job_id)
    if ev is not None:
        out["result_uri"] = ev.event_arguments["result_uri"]
    if st == JobStatus.AUDIT:
        d = h.market.disputes(job_id)
        out["dispute"] = {"challenger": d.challenger, "bond": int(d.bond), "audit_deadline": int(d.audit_deadline)}
    return out


def wait(
    h: Any,
    job_id: int,
    *,
    until: frozenset[JobStatus] = RESULT_STATUSES,
    timeout: float = 600.0,
    poll_s: float = 1.0,
    on_status: Callable[[JobStatus, float], None] | None = None,
) -> JobStatus:
    """Polls until the job reaches a status in `until`; ClientError on timeout or when an Open
    job's acceptance window passes (nobody took it)."""
    t0 = time.monotonic()
    accept_by = None
    while True:
        st = JobStatus(h.market.job_status(job_id))
        if on_status is not None:
            on_status(st, time.monotonic() - t0)
        if st in until:
            return st
        if st == JobStatus.OPEN:
            if accept_by is None:
                accept_by = int(_rebuild(h, job_id)["accept_by"])
            if _now(h) > accept_by:
                raise ClientError(
                    f"job {job_id}: no provider accepted it before its acceptance window closed; "
                    f"take the payment back with `gpunet job cancel {job_id}` and submit again"
                )
        if time.monotonic() - t0 > timeout:
            raise ClientError(
                f"job {job_id} still {st.name} after {timeout:.0f}s; follow it with `gpunet job status {job_id}`"
            )
        time.sleep(poll_s)


__all__ = [
    "ClientError",
    "NoPrice",
    "Offer",
    "Result",
    "Submission",
    "UNKNOWN_UPTIME_RANK_BPS",
    "Uptime",
    "cancel",
    "check_spec",
    "choose",
    "deposit",
    "deposit_of",
    "dispute",
    "download",
    "expire",
    "fetch_result",
    "fmt_bps",
    "fmt_usd",
    "job_quote",
    "withdraw_deposit",
    "latest_uptime",
    "load_spec",
    "parse_tokens",
    "parse_usd",
    "rank_offers",
    "read_blob_files",
    "sign_permit",
    "spec_class",
    "status",
    "slippage_bound",
    "submit",
    "token_price",
    "token_quote",
    "upload",
    "verify_locally",
    "wait",
]


# Results live in their own module; `sdk.fetch_result(...)` and friends keep working.
# Disputes, cancellations and expiries: the user's actions on a job that went wrong.
from offchain.client.actions import cancel, dispute, expire  # noqa: E402, F401
from offchain.client.deposits import deposit, deposit_of, withdraw_deposit  # noqa: E402, F401
from offchain.client.orders import fill_order, load_order, make_order, save_order  # noqa: E402, F401
from offchain.client.results import Result, fetch_result, verify_locally, write_output  # noqa: E402, F401
