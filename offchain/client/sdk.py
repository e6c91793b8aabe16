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
import io
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from offchain.chain.jobs import ZERO_ADDRESS, as_tuple, audit_draw, job_from_chain, jobs_from_receipt
from offchain.constants import MAX_BPS, REPUTATION_FIELDS, TERMINAL_JOB_STATUSES, JobStatus, MachineStatus

if TYPE_CHECKING:
    from offchain import workloads

# `offchain.workloads` imports torch (seconds): imported where a spec or an output is handled,
# so reading commands (`gpunet job show`, `provider status`) start fast.

DEFAULT_ACCEPT_WINDOW = 600
DEFAULT_COMPLETE_WITHIN = 3600
PERMIT_VALIDITY_S = 3600
OPEN_CANDIDATES = 3
HTTP_TIMEOUT = (5.0, 120.0)
MAX_RESULT_BYTES = 1 << 30
# Statuses after which `submit` stops waiting: the result is on-chain, or the job ended.
RESULT_STATUSES = frozenset({JobStatus.SUBMITTED, JobStatus.AUDIT}) | TERMINAL_JOB_STATUSES
# USD amounts (offers, max price, a job's value) and token amounts both have 18 decimals.
USD = 10**18
TOKEN = 10**18
# Slippage allowed between the client's quote and the funding transaction, in basis points.
DEFAULT_MAX_SLIPPAGE_BPS = 100
# Revert reasons of Settlement.quote / PriceFeed.latestRoundData that mean "no usable price".
_NO_PRICE_REASONS = ("no price", "stale price", "price from the future")
NO_PRICE_HELP = (
    "the oracle operators post PriceFeed rounds (`gpunet oracle run --price-source ...`); "
    "see `gpunet price show`, and try again later"
)


class ClientError(RuntimeError):
    """Something the user can fix; the message says what."""


class NoPrice(ClientError):
    """There is no fresh token/USD price on-chain, so no job can be funded now."""


@dataclass(frozen=True)
class Uptime:
    """A machine's uptime as the oracle quorum reported it (OracleHub `UptimeRecorded`) for
    `epoch`: the share of the operators' random probes (GET /health) it answered."""

    machine_id: int
    epoch: int
    bps: int  # successes x 10_000 // probes, as OracleHub.uptime_bps stores it
    probes: int
    successes: int


# How an offer whose machines have no uptime report yet ranks: as if its uptime were this. After
# every provider whose machines answered at least half the probes, before those that answered
# fewer (a new machine is unknown, not bad); at equal uptime a known one ranks first.
UNKNOWN_UPTIME_RANK_BPS = 5_000


@dataclass
class Offer:
    """A provider able to take a job of a class now: it offers the class and has an Active machine of it."""

    provider: str
    class_id: int
    price: int  # USD per compute unit, 18 decimals
    machine_ids: list[int]
    endpoint: str
    reputation: dict[str, int]
    free_stake: int
    # Latest reported uptime of each of `machine_ids` that has a report (`latest_uptime`).
    uptime: dict[int, Uptime] = field(default_factory=dict)

    @property
    def bad_record(self) -> int:
        return self.reputation["failed"] + self.reputation["expired"]

    @property
    def uptime_bps(self) -> int | None:
        """Mean latest reported uptime of the offer's Active machines of the class that have a
        report, in basis points; None (unknown) when none has one yet. The mean, not the best
        machine: the provider, not the client, picks the machine that runs the job."""
        known = [self.uptime[m].bps for m in self.machine_ids if m in self.uptime]
        return sum(known) // len(known) if known else None

    def uptime_text(self) -> str:
        """e.g. "83.33% (epoch 12)", "91.66% (epochs 11-12, 1/2 machines)" or "unknown"."""
        bps = self.uptime_bps
        if bps is None:
            return "unknown"
        reports = [self.uptime[m] for m in self.machine_ids if m in self.uptime]
        lo, hi = min(u.epoch for u in reports), max(u.epoch for u in reports)
        where = [f"epoch {hi}" if lo == hi else f"epochs {lo}-{hi}"]
        if len(reports) < len(self.machine_ids):
            where.append(f"{len(reports)}/{len(self.machine_ids)} machines")
        return f"{fmt_bps(bps)} ({', '.join(where)})"

    def rank_key(self) -> tuple:
        """Cheapest first; at equal price fewer failures+expiries, then higher uptime
        (`uptime_bps`; unknown ranks as `UNKNOWN_UPTIME_RANK_BPS`, after a known equal one),
        then more completed jobs, then the address (a stable order)."""
        bps = self.uptime_bps
        uptime = (-bps, 0) if bps is not None else (-UNKNOWN_UPTIME_RANK_BPS, 1)
        return (self.price, self.bad_record, uptime, -self.reputation["completed"], self.provider.lower())


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


def _base(endpoint: str) -> str:
    e = endpoint.strip().rstrip("/")
    return e if "://" in e else "http://" + e


def upload(endpoint: str, blobs: Mapping[str, bytes], *, session: requests.Session | None = None) -> None:
    """PUT every blob to a provider's agent (idempotent: blobs it has are simply stored again)."""
    s = session or requests.Session()
    base = _base(endpoint)
    for h, data in blobs.items():
        try:
            r = s.put(f"{base}/blobs/{h}", data=data, timeout=HTTP_TIMEOUT)
        except requests.RequestException as e:
            raise ClientError(
                f"provider unreachable at {base} ({type(e).__name__}): is its agent running? "
                "Choose another provider with --provider ADDR, or retry later"
            ) from None
        if r.status_code == 413:
            raise ClientError(f"{base} refuses a blob of {len(data)} bytes as too large: {_error_text(r)}")
        if r.status_code not in (200, 201):
            raise ClientError(f"upload of {h} to {base} failed: HTTP {r.status_code}: {_error_text(r)}")


def _error_text(r: requests.Response) -> str:
    try:
        return str(r.json().get("error", r.text))[:300]
    except ValueError:
        return r.text[:300]


# ---------------------------------------------------------------------------- offers


def _now(h: Any) -> int:
    return max(int(h.chain.blocks.head.timestamp), int(time.time()))


def _start_block(h: Any) -> int:
    return int((getattr(h, "record", None) or {}).get("block") or 0)


def _stop(h: Any) -> int:
    # An explicit stop block: ape's `range(start, None)` means `range(0, start)` (like Python's range(stop)).
    return int(h.chain.blocks.height) + 1


def _rebuild(h: Any, job_id: int) -> dict:
    """The job's current struct, rebuilt from its events and checked against the chain."""
    return job_from_chain(h.market, job_id, _start_block(h), _stop(h))


def reputation(h: Any, provider: str) -> dict[str, int]:
    return dict(zip(REPUTATION_FIELDS, (int(x) for x in h.market.reputation(provider)), strict=True))


def latest_uptime(h: Any, machine_ids: Iterable[int] | None = None) -> dict[int, Uptime]:
    """{machine id: its uptime in the latest epoch that has a report for it}, from OracleHub's
    `UptimeRecorded` events (of `machine_ids`, or of every machine); machines without a report
    are absent. Epochs are numbered by the oracle operators: Emissions' epochs under
    `gpunet oracle run --emissions-epochs`, else (unix time // --epoch-seconds); either way a
    higher number is a later epoch, and an epoch's report lands after the epoch ends, so the
    latest report is at most about one epoch old while the quorum probes the machine. A report
    submitted again for the same epoch (a later nonce) replaces the earlier one, as in
    OracleHub.uptime_bps. Empty when `h` has no hub."""
    hub = getattr(h, "hub", None)
    if hub is None:
        return {}
    wanted = None if machine_ids is None else {int(m) for m in machine_ids}
    out: dict[int, Uptime] = {}
    for lg in hub.UptimeRecorded.range(_start_block(h), _stop(h)):
        a = lg.event_arguments
        mid, epoch = int(a["machine_id"]), int(a["epoch"])
        if wanted is not None and mid not in wanted:
            continue
        if mid in out and out[mid].epoch > epoch:
            continue
        out[mid] = Uptime(mid, epoch, int(a["uptime_bps"]), int(a["probes"]), int(a["successes"]))
    return out


def fmt_bps(bps: int) -> str:
    """Basis points as a percentage with two decimals, e.g. 8333 -> "83.33%"."""
    return f"{bps // 100}.{bps % 100:02d}%"


def rank_offers(h: Any, class_id: int, now: int | None = None) -> list[Offer]:
    """Every provider with a current offer for `class_id` and an Active, attested machine of it,
    best first (`Offer.rank_key`): by price, then failed+expired jobs, then the mean latest
    reported uptime of its Active machines of the class (`latest_uptime`; a provider none of
    whose machines has a report yet is unknown: ranked after known-good ones, never excluded),
    then completed jobs."""
    reg = h.registry
    now = _now(h) if now is None else now
    start = _start_block(h)
    providers = {lg.event_arguments["provider"] for lg in reg.OfferSet.range(start, _stop(h))}
    machines: dict[str, list[int]] = {}
    for lg in reg.MachineRegistered.range(start, _stop(h)):
        a = lg.event_arguments
        if int(a["class_id"]) == class_id:
            machines.setdefault(a["provider"], []).append(int(a["machine_id"]))
    offers = []
    for p in sorted(providers):
        price = int(reg.offers(p, class_id))
        if price == 0 or p not in machines:
            continue
        active = []
        endpoint = ""
        for mid in sorted(machines[p]):
            info = reg.machines(mid)
            if info.status == MachineStatus.ACTIVE and now <= int(info.attested_until):
                active.append(mid)
                endpoint = endpoint or info.endpoint
        if active:
            offers.append(Offer(p, class_id, price, active, endpoint, reputation(h, p), int(reg.free_stake(p))))
    uptime = latest_uptime(h, [m for o in offers for m in o.machine_ids]) if offers else {}
    for o in offers:
        o.uptime = {m: uptime[m] for m in o.machine_ids if m in uptime}
    return sorted(offers, key=Offer.rank_key)


def can_cover(h: Any, offer: Offer, payment: int, collateral_bps: int | None = None) -> bool:
    """Whether the provider's free stake covers the collateral it would lock for this payment.
    `collateral_bps`: JobMarket's `params().collateral_bps`, read here when not given."""
    m = h.market
    if collateral_bps is None:
        collateral_bps = int(m.params().collateral_bps)
    floor = (payment * collateral_bps + MAX_BPS - 1) // MAX_BPS
    return offer.free_stake >= int(m.required_collateral(payment, floor, m.audit_rate(offer.provider)))


# ---------------------------------------------------------------------------- USD and tokens


def _decimal_units(text: str | int | float | Decimal, what: str) -> int:
    try:
        d = Decimal(str(text).strip().lstrip("$"))
    except InvalidOperation:
        raise ClientError(f"{what} {text!r} is not a number (a decimal, e.g. 0.002)") from None
    if not d.is_finite() or d <= 0:
        raise ClientError(f"{what} must be a positive number, got {text!r}")
    scaled = d * 10**18
    if scaled != scaled.to_integral_value():
        raise ClientError(f"{what} {text!r} has more than 18 decimals")
    return int(scaled)


def parse_usd(text: str | int | float | Decimal, what: str = "USD amount") -> int:
    """A decimal USD string ("0.002", "$1.5") as an 18-decimal integer."""
    return _decimal_units(text, what)


def parse_tokens(text: str | int | float | Decimal, what: str = "token amount") -> int:
    """A decimal token amount ("12.5") in wei (18 decimals)."""
    return _decimal_units(text, what)


def _fmt18(v: int, min_places: int) -> str:
    d = (Decimal(int(v)) / 10**18).normalize()
    text = f"{d:f}"
    whole, _, frac = text.partition(".")
    frac = frac.ljust(min_places, "0")
    return f"{int(whole):,}" + (f".{frac}" if frac else "")


def fmt_usd(v: int) -> str:
    """An 18-decimal USD amount, exactly, e.g. "$0.001" or "$1,250.00"."""
    return "$" + _fmt18(v, 2)


def tokens(wei: int) -> str:
    return f"{wei / TOKEN:,.6f}"


def fmt_price(usd_per_unit: int) -> str:
    return f"{fmt_usd(usd_per_unit)}/unit ({fmt_usd(usd_per_unit * 1000)} per 1000 units)"


def _revert_reason(e: Exception) -> str:
    return str(getattr(e, "message", None) or e)


def _no_price(reason: str) -> NoPrice:
    return NoPrice(f"no fresh token/USD price on-chain ({reason}): {NO_PRICE_HELP}")


def _settlement(h: Any) -> Any:
    s = getattr(h, "settlement", None)
    if s is None:
        raise ClientError(
            "this deployment has no Settlement contract (jobs are priced in USD through it): "
            "redeploy with `ape run deploy --redeploy`"
        )
    return s


def token_quote(h: Any, usd_value: int) -> int:
    """Tokens (wei) a job worth `usd_value` (18 decimals) escrows now: `Settlement.quote`.
    Raises `NoPrice` when the chain has no fresh token/USD price."""
    try:
        # skip_trace: a revert is expected when there is no price; ape would print its call trace.
        return int(_settlement(h).quote(usd_value, skip_trace=True))
    except ClientError:
        raise
    except Exception as e:  # noqa: BLE001 - a revert of the view call
        reason = _revert_reason(e)
        if any(r in reason for r in _NO_PRICE_REASONS):
            raise _no_price(reason) from None
        raise ClientError(f"Settlement.quote({usd_value}) failed: {reason}") from None


def token_price(h: Any) -> int:
    """The token/USD price jobs are funded at now, in the feed's decimals (`Settlement.price`)."""
    try:
        return int(_settlement(h).price(skip_trace=True))
    except ClientError:
        raise
    except Exception as e:  # noqa: BLE001
        reason = _revert_reason(e)
        if any(r in reason for r in _NO_PRICE_REASONS):
            raise _no_price(reason) from None
        raise ClientError(f"Settlement.price() failed: {reason}") from None


def job_quote(h: Any, usd_per_unit: int, units: int) -> int:
    """Tokens (wei) JobMarket escrows for `units` compute units at `usd_per_unit` now: the tokens
    of one unit (`Settlement.quote`, rounded up) times the units, as `create_job` computes them."""
    return token_quote(h, usd_per_unit) * units


def slippage_bound(quote: int, max_slippage_bps: int) -> int:
    """The most tokens to escrow for a quote of `quote`: quote x (1 + slippage), rounded down."""
    if not 0 <= max_slippage_bps <= MAX_BPS:
        raise ClientError(f"--max-slippage-bps must be within 0..{MAX_BPS}, got {max_slippage_bps}")
    return quote * (MAX_BPS + max_slippage_bps) // MAX_BPS


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
) -> Submission:
    """Validates, ranks offers, quotes the job in tokens, uploads the spec and inputs, funds the
    job with a permit (one transaction) and returns the new job's id. Does not wait (see `wait`).

    `max_price`: USD per compute unit (18 decimals). The job escrows `job_quote` tokens, at
    most `max_tokens` (default: the quote plus `max_slippage_bps`); the permit is for
    exactly `max_tokens`, and only the escrow is transferred."""
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
    uploaded, errors = [], []
    for o in targets:
        try:
            upload(o.endpoint, uploads)
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
        reason = _revert_reason(e)
        if any(x in reason for x in _NO_PRICE_REASONS):
            raise _no_price(reason) from None
        if "payment above max tokens" in reason:
            raise ClientError(
                f"the token price fell between the quote ({tokens(quote)} tokens) and the transaction: the job "
                f"now costs more than the {tokens(max_tokens)} tokens allowed; nothing was paid. Submit again, "
                "or allow more with --max-slippage-bps / --max-tokens"
            ) from None
        raise ClientError(f"create_job_with_permit reverted: {reason}") from None
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


# ---------------------------------------------------------------------------- following a job


def _check_id(h: Any, job_id: int) -> None:
    count = int(h.market.job_count())
    if not 1 <= job_id <= count:
        raise ClientError(f"job {job_id} does not exist ({f'jobs 1..{count}' if count else 'no jobs yet'})")


def result_event(h: Any, job_id: int) -> Any | None:
    logs = list(h.market.ResultSubmitted.range(_start_block(h), _stop(h), search_topics={"job_id": job_id}))
    return logs[-1] if logs else None


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


# ---------------------------------------------------------------------------- results


@dataclass
class Result:
    job_id: int
    result_hash: str
    uri: str
    output: workloads.Output
    data: bytes
    files: dict[str, Path] = field(default_factory=dict)


def download(uri: str, expected_hex: str, max_bytes: int = MAX_RESULT_BYTES) -> bytes:
    """GET `uri`, refusing anything that does not hash to `expected_hex`."""
    try:
        with requests.get(uri, timeout=HTTP_TIMEOUT, stream=True) as r:
            if r.status_code != 200:
                raise ClientError(f"result not served at {uri}: HTTP {r.status_code}: {_error_text(r)}")
            buf = io.BytesIO()
            for chunk in r.iter_content(1 << 20):
                buf.write(chunk)
                if buf.tell() > max_bytes:
                    raise ClientError(f"result at {uri} is over {max_bytes} bytes")
    except requests.RequestException as e:
        raise ClientError(f"provider unreachable at {uri} ({type(e).__name__}); retry later") from None
    data = buf.getvalue()
    got = hashlib.sha256(data).hexdigest()
    if got != expected_hex:
        raise ClientError(
            f"the bytes served at {uri} hash to {got}, not the on-chain result hash {expected_hex}: "
            "the provider is serving something else (withheld output); consider `gpunet job dispute`"
        )
    return data


def fetch_result(h: Any, job_id: int, out_dir: str | Path | None = None) -> Result:
    """Downloads the job's output from its result URI, checks sha256 == the on-chain result hash,
    and (with `out_dir`) writes output.bin (the canonical bytes), output.pt (a dict of tensors +
    kind and meta, `torch.load`-able) and output.json (the same as JSON)."""
    from offchain import workloads

    _check_id(h, job_id)
    ev = result_event(h, job_id)
    if ev is None:
        st = JobStatus(h.market.job_status(job_id))
        raise ClientError(f"job {job_id} has no result yet (status {st.name}); wait with `gpunet job status {job_id}`")
    args = ev.event_arguments
    expected = bytes(args["result_hash"]).hex()
    data = download(args["result_uri"], expected)
    try:
        out = workloads.output_from_bytes(data)
    except workloads.WorkloadError as e:
        raise ClientError(f"the result matches its hash but is not a workload output: {e}") from None
    res = Result(int(job_id), expected, args["result_uri"], out, data)
    if out_dir is not None:
        res.files = write_output(out, data, Path(out_dir))
    return res


def write_output(out: workloads.Output, data: bytes, out_dir: Path) -> dict[str, Path]:
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"bin": out_dir / "output.bin", "pt": out_dir / "output.pt", "json": out_dir / "output.json"}
    files["bin"].write_bytes(data)
    torch.save({"kind": out.kind, "meta": out.meta, "tensors": out.tensors}, files["pt"])
    tensors = {}
    for name, t in sorted(out.tensors.items()):
        as_py = t.to(torch.float64) if t.dtype in (torch.bfloat16, torch.float16) else t
        tensors[name] = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape), "values": as_py.tolist()}
    doc = {"kind": out.kind, "meta": out.meta, "sha256": hashlib.sha256(data).hexdigest(), "tensors": tensors}
    files["json"].write_text(json.dumps(doc, allow_nan=True))
    return files


def verify_locally(h: Any, job_id: int, result: Result, device: str | None = None) -> workloads.CompareResult:
    """Re-executes the job here (spec and inputs fetched from the provider that served the
    result, by hash) and compares with the provider's output; a mismatch is grounds to dispute."""
    from offchain import workloads

    job = _rebuild(h, job_id)
    base = result.uri.rsplit("/blobs/", 1)[0]
    spec_hex = bytes(job["spec_hash"]).hex()
    spec = json.loads(download(f"{base}/blobs/{spec_hex}", spec_hex, 16 << 20))
    blobs = {hx: download(f"{base}/blobs/{hx}", hx) for hx in spec.get("inputs", {}).values()}
    reference = workloads.execute(spec, device or "cpu", blobs)
    return workloads.compare(result.output, reference)


# ---------------------------------------------------------------------------- disputes


def dispute(h: Any, account: Any, job_id: int) -> Any:
    """Disputes a submitted result before its challenge window ends, posting the bond
    (`dispute_bond(payment)`; approved first if the allowance is short). Returns the receipt."""
    _check_id(h, job_id)
    m, token = h.market, h.token
    job = _rebuild(h, job_id)
    st = JobStatus(m.job_status(job_id))
    if st != JobStatus.SUBMITTED:
        raise ClientError(f"job {job_id} is {st.name}: only a Submitted result can be disputed")
    if _now(h) > job["challenge_end"]:
        raise ClientError(f"job {job_id}: its challenge window ended at {job['challenge_end']} (unix time)")
    if audit_draw(h.chain, job_id, job):
        raise ClientError(
            f"job {job_id} was drawn for audit: the oracle quorum re-executes it anyway, so a dispute "
            "is neither needed nor accepted; follow it with `gpunet job status`"
        )
    bond = int(m.dispute_bond(job["payment"]))
    if int(token.balanceOf(account.address)) < bond:
        raise ClientError(f"the dispute bond is {tokens(bond)} tokens, more than {account.address}'s balance")
    if int(token.allowance(account.address, m.address)) < bond:
        token.approve(m.address, bond, sender=account)
    try:
        return m.dispute(job_id, as_tuple(job), sender=account)
    except Exception as e:  # noqa: BLE001
        raise ClientError(f"dispute reverted: {getattr(e, 'message', None) or e}") from None


def cancel(h: Any, account: Any, job_id: int) -> Any:
    """Takes back the payment of one's own job that no provider accepted (`cancel` while Open;
    anyone's `expire` does the same once the acceptance window passed). Returns the receipt."""
    _check_id(h, job_id)
    m = h.market
    job = _rebuild(h, job_id)
    st = JobStatus(m.job_status(job_id))
    if st != JobStatus.OPEN:
        raise ClientError(f"job {job_id} is {st.name}: only an Open job (not accepted yet) can be cancelled")
    if job["user"].lower() != account.address.lower():
        raise ClientError(f"job {job_id} belongs to {job['user']}, not {account.address}")
    try:
        return m.cancel(job_id, as_tuple(job), sender=account)
    except Exception as e:  # noqa: BLE001
        raise ClientError(f"cancel reverted: {getattr(e, 'message', None) or e}") from None


def expire(h: Any, account: Any, job_id: int) -> Any:
    """Ends a job whose deadline passed; anyone may (`JobMarket.expire`): an Open job past its
    acceptance window is Cancelled (the user refunded), a Running job past its completion
    deadline is Expired (the user refunded plus the no-show penalty from the provider's
    collateral). Says what is wrong instead of sending a transaction that would revert."""
    _check_id(h, job_id)
    m = h.market
    job = _rebuild(h, job_id)
    st = JobStatus(m.job_status(job_id))
    now = _now(h)
    if st == JobStatus.OPEN:
        deadline, what = int(job["accept_by"]), "acceptance window"
    elif st == JobStatus.RUNNING:
        deadline, what = int(job["complete_by"]), "completion deadline"
    else:
        raise ClientError(
            f"job {job_id} is {st.name}: only an Open job past its acceptance window or a Running job "
            "past its completion deadline can expire"
        )
    if now <= deadline:
        raise ClientError(f"job {job_id}: its {what} ends at {deadline} (unix time), {deadline - now + 1} s from now")
    try:
        return m.expire(job_id, as_tuple(job), sender=account)
    except Exception as e:  # noqa: BLE001
        raise ClientError(f"expire reverted: {getattr(e, 'message', None) or e}") from None


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
    "dispute",
    "download",
    "expire",
    "fetch_result",
    "fmt_bps",
    "fmt_usd",
    "job_quote",
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
