"""The client SDK's USD pricing on the in-process chain (real contracts, the session deployment
at $1.00 per token): USD and token amounts, `Settlement.quote` through the SDK, a missing or
stale price, and `submit` funding a job with the slippage bound as both `max_tokens` and the
permit amount, including a price round landing between the quote and the transaction.
The same flow against anvil and real agent processes: tests/test_provider_jobs_anvil.py.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from conftest import CPU, PRICE, SETTLEMENT_MAX_AGE, STAKE, USD_PER_TOKEN

from offchain import workloads
from offchain.client import sdk
from offchain.constants import MAX_BPS, MachineStatus
from offchain.params import PriceFeedParams

MATMUL = {"kind": "matmul_chain", "params": {"n": 64, "k": 3}, "seed": 11}


class BlobSink:
    """PUT /blobs/<hex> -> 201, as the provider agent stores a user's uploads."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_PUT(self):
                n = int(self.headers.get("Content-Length", 0))
                sink.blobs[self.path.removeprefix("/blobs/")] = self.rfile.read(n)
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sink():
    s = BlobSink()
    yield s
    s.close()


@pytest.fixture
def h(deployment, chain):
    """The SDK's handles; event scans start at the test's first block (see tests/test_client_ranking.py)."""
    d = deployment
    return SimpleNamespace(
        token=d.token,
        registry=d.registry,
        market=d.market,
        settlement=d.settlement,
        chain=chain,
        record={"block": chain.blocks.height},
    )


@pytest.fixture
def offering(h, registry, deployer, provider, sink):
    """`provider` staked, one Active CPU machine serving at `sink`, offering PRICE ($0.001/unit).
    After `h`, whose event scans start before these registrations."""
    registry.stake(STAKE, sender=provider)
    tx = registry.register(CPU, 1, 16_384, sink.url, sender=provider)
    registry.set_machine_status(tx.decode_logs(registry.MachineRegistered)[0].machine_id,
                                int(MachineStatus.ACTIVE), sender=deployer)  # fmt: skip
    registry.set_offer(CPU, PRICE, sender=provider)
    return provider


# ---------------------------------------------------------------------------- amounts


def test_parse_usd__decimal_strings_to_18_decimals():
    assert sdk.parse_usd("0.002") == 2 * 10**15
    assert sdk.parse_usd("$1.5") == 15 * 10**17
    assert sdk.parse_usd("0.000000000000000001") == 1
    assert sdk.parse_tokens("12.5") == 125 * 10**17
    for bad, reason in (("abc", "not a number"), ("0", "positive"), ("-1", "positive"), ("nan", "positive"),
                        ("0.0000000000000000001", "more than 18 decimals")):  # fmt: skip
        with pytest.raises(sdk.ClientError, match=reason):
            sdk.parse_usd(bad, "--max-price")


def test_fmt_usd__exact_with_two_places_at_least():
    assert sdk.fmt_usd(10**15) == "$0.001"
    assert sdk.fmt_usd(10**18) == "$1.00"
    assert sdk.fmt_usd(1_250 * 10**18) == "$1,250.00"
    assert sdk.fmt_usd(1) == "$0.000000000000000001"
    assert sdk.fmt_price(10**15) == "$0.001/unit ($1.00 per 1000 units)"


def test_slippage_bound__quote_plus_bps_rounded_down():
    assert sdk.slippage_bound(10**18, 100) == 101 * 10**16
    assert sdk.slippage_bound(999, 100) == 1008  # 1008.99
    assert sdk.slippage_bound(10**18, 0) == 10**18
    with pytest.raises(sdk.ClientError, match="--max-slippage-bps"):
        sdk.slippage_bound(10**18, MAX_BPS + 1)


# ---------------------------------------------------------------------------- quotes


def test_token_quote__at_one_dollar__tokens_equal_usd(h):
    assert sdk.token_price(h) == USD_PER_TOKEN
    assert sdk.token_quote(h, 3 * 10**15) == 3 * 10**15


def test_token_quote__no_round_yet__no_price_says_what_to_do(project, h, deployment, deployer):
    feed = deployer.deploy(project.PriceFeed, deployment.hub.address, *PriceFeedParams().as_tuple())
    empty = deployer.deploy(project.Settlement, deployment.token.address, feed.address, 3600)
    h.settlement = empty
    for call in (lambda: sdk.token_quote(h, 10**18), lambda: sdk.token_price(h)):
        with pytest.raises(sdk.NoPrice, match="no fresh token/USD price on-chain") as e:
            call()
        assert "gpunet oracle run --price-source" in str(e.value)


def test_token_quote__stale_price__no_price(h, chain):
    chain.mine(timestamp=chain.blocks.head.timestamp + SETTLEMENT_MAX_AGE + 1)
    with pytest.raises(sdk.NoPrice, match=r"no fresh token/USD price on-chain \(.*stale"):
        sdk.token_quote(h, 10**18)


def test_token_quote__no_settlement__says_redeploy(h):
    h.settlement = None
    with pytest.raises(sdk.ClientError, match="no Settlement contract"):
        sdk.token_quote(h, 10**18)


# ---------------------------------------------------------------------------- submit


def test_submit__escrows_the_quote_bounded_by_slippage_and_permit(h, offering, user, token, market, sink):
    units = workloads.compute_units(MATMUL)
    usd = PRICE * units
    balance = token.balanceOf(user)
    sub = sdk.submit(h, user, MATMUL, class_id=CPU, max_slippage_bps=250)
    assert sub.provider == offering.address and workloads.spec_hash(MATMUL) in sink.blobs
    assert (sub.price, sub.units, sub.usd_value, sub.payment) == (PRICE, units, usd, usd)  # $1.00 per token
    assert sub.max_tokens == usd * (MAX_BPS + 250) // MAX_BPS
    assert balance - token.balanceOf(user) == sub.payment
    # The permit was for the bound; only the escrow was pulled.
    assert token.allowance(user, market) == sub.max_tokens - sub.payment


def test_submit__explicit_max_tokens__exact_quote_funds_and_below_refuses(h, offering, user, market):
    usd = PRICE * workloads.compute_units(MATMUL)
    with pytest.raises(sdk.ClientError, match="more than --max-tokens"):
        sdk.submit(h, user, MATMUL, class_id=CPU, max_tokens=usd - 1)
    assert market.job_count() == 0
    sub = sdk.submit(h, user, MATMUL, class_id=CPU, max_tokens=usd)
    assert sub.payment == sub.max_tokens == usd


def test_submit__open_job__priced_at_max_price(h, offering, user):
    sub = sdk.submit(h, user, MATMUL, class_id=CPU, open_job=True, max_price=2 * PRICE)
    assert sub.provider is None and sub.price == 2 * PRICE
    assert sub.payment == sub.usd_value == 2 * PRICE * workloads.compute_units(MATMUL)


def test_submit__price_falls_after_the_quote__reverts_nothing_paid(
    monkeypatch, h, set_price, offering, user, token, market
):
    """A price round landing between the quote and the transaction (here: while the spec
    uploads) halves the token: the job would cost twice the quote, above the 1% bound."""
    upload = sdk.upload

    def upload_then_price_round(endpoint, blobs, **kw):
        upload(endpoint, blobs, **kw)
        set_price(USD_PER_TOKEN // 2)

    monkeypatch.setattr(sdk, "upload", upload_then_price_round)
    balance = token.balanceOf(user)
    with pytest.raises(sdk.ClientError, match="token price fell between the quote"):
        sdk.submit(h, user, MATMUL, class_id=CPU)
    assert market.job_count() == 0 and token.balanceOf(user) == balance
    # Quoted again at the new price, it funds at twice the USD value in tokens.
    monkeypatch.setattr(sdk, "upload", upload)
    sub = sdk.submit(h, user, MATMUL, class_id=CPU)
    assert sub.payment == 2 * sub.usd_value


def test_submit__rounding_price__quote_matches_the_escrow_exactly(h, set_price, offering, user):
    """At $3.00 per token a unit's tokens round up: the SDK's quote is JobMarket's escrow to the wei."""
    set_price(3 * USD_PER_TOKEN)
    units = workloads.compute_units(MATMUL)
    quote = sdk.job_quote(h, PRICE, units)
    assert quote == -(-PRICE // 3) * units  # ceil(PRICE / 3) tokens per unit
    sub = sdk.submit(h, user, MATMUL, class_id=CPU, max_tokens=quote)
    assert sub.payment == sub.max_tokens == quote
