"""The oracle service's price side, in-process: sources, arithmetic, and an operator's own
observations (one observation per round id, ever, the /sign/price answer) against the real
PriceFeed on ape's in-process chain. The whole loop with real processes runs in
tests/test_price_anvil.py.
"""

import json
from decimal import Decimal
from types import SimpleNamespace

import pytest

from offchain.chain import reports as R
from offchain.oracle.pricing import (
    PriceSourceError,
    deviation_bps,
    from_answer,
    lower_median,
    parse_price_source,
    to_answer,
    within_deviation,
)
from offchain.oracle.service import PRICE_CLOCK_SLACK_S, OracleConfig, OracleService
from offchain.params import OracleParams

USD = 10**8
MIN_STAKE = OracleParams().min_operator_stake


################################################################
#                     sources and arithmetic                   #
################################################################


def test_to_answer__8_decimals_half_even():
    assert to_answer("1.25") == 125_000_000
    assert to_answer(Decimal("0.000000015")) == 2  # 1.5e-8 rounds to even
    assert to_answer("0.000000025") == 2
    assert from_answer(125_000_000) == Decimal("1.25")
    for bad in ("0", "-1", "nan", "inf", "abc", "0.000000004"):
        with pytest.raises(PriceSourceError):
            to_answer(bad)
    with pytest.raises(PriceSourceError):
        to_answer(str(2**128))


def test_parse_price_source__fixed_and_file(tmp_path):
    assert parse_price_source("fixed:1.25")() == 125_000_000
    f = tmp_path / "p.txt"
    f.write_text(" 2.5\n")
    read = parse_price_source(f"file:{f}")
    assert read() == 250_000_000
    f.write_text("3")  # re-read every time
    assert read() == 300_000_000
    f.write_text("")
    with pytest.raises(PriceSourceError):
        read()
    f.unlink()
    with pytest.raises(PriceSourceError, match="cannot read"):
        read()
    for bad in ("1.25", "fixed:", "ftp:x", "url:file:///etc/passwd"):
        with pytest.raises(ValueError):
            parse_price_source(bad)
    with pytest.raises(PriceSourceError):
        parse_price_source("fixed:0")


def test_parse_price_source__url():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    bodies = {"/ok": b'{"usd": 1.5}', "/str": b'{"usd": "0.75"}', "/bad": b'{"eur": 1}', "/bool": b'{"usd": true}'}

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            return

        def do_GET(self):
            body = bodies.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        assert parse_price_source(f"url:{base}/ok")() == 150_000_000
        assert parse_price_source(f"url:{base}/str")() == 75_000_000
        for path in ("/bad", "/bool", "/missing"):
            with pytest.raises(PriceSourceError):
                parse_price_source(f"url:{base}{path}")()
    finally:
        srv.shutdown()
        srv.server_close()


def test_median_and_deviation__match_the_contract_rules():
    assert lower_median([3, 1, 2]) == 2
    assert lower_median([4, 1, 3, 2]) == 2
    assert lower_median([7]) == 7
    assert deviation_bps(120, 100) == 2_000 and deviation_bps(80, 100) == 2_000
    assert within_deviation(120, 100, 2_000) and not within_deviation(121, 100, 2_000)
    # The guard is exact (no rounding): 20.005% is out even though it floors to 2000 bps.
    assert deviation_bps(1_200_050, 1_000_000) == 2_000
    assert not within_deviation(1_200_050, 1_000_000, 2_000)


################################################################
#              the operator's own observations                 #
################################################################


@pytest.fixture(scope="module")
def operators(accounts, deployment, deployer):
    """Two operators (threshold 2), staked, sorted by address."""
    hub, token = deployment.hub, deployment.token
    ops = []
    for _ in range(2):
        a = accounts.generate_test_account()
        deployer.transfer(a, 10**18)
        token.mint(a, MIN_STAKE, sender=deployer)
        token.approve(hub, 2**256 - 1, sender=a)
        hub.stake(MIN_STAKE, sender=a)
        hub.add_operator(a, sender=deployer)
        ops.append(a)
    hub.set_threshold(2, sender=deployer)
    return sorted(ops, key=lambda a: int(a.address, 16))


@pytest.fixture(scope="module", autouse=True)
def _wider_fixtures_first(operators, chain, keeper):
    """Module fixtures first (ape's snapshot isolation)."""


def _service(tmp_path, deployment, chain, operator, keeper, source="fixed:1.25", name="op"):
    cfg = OracleConfig(
        network="ethereum:local:test",
        operator_key=operator.private_key,
        db_path=str(tmp_path / f"{name}.sqlite"),
        price_source=source,
    )
    svc = OracleService(cfg)
    # The service's handles, pointed at the in-process deployment (real contracts).
    svc.h = SimpleNamespace(hub=deployment.hub, price_feed=deployment.price_feed, chain=chain, record={})
    svc.chain_id = chain.chain_id
    svc.sender = keeper
    return svc


def test_sign_price__one_observation_per_round_id_ever(tmp_path, deployment, chain, operators, keeper):
    """At most one observation per round id (a second, different one would be equivocation,
    slashable through OracleHub.prove_observation_equivocation): asked again it is the same
    one; once expired the id is refused ({"expired": true}), never re-signed."""
    feed = deployment.price_feed
    svc = _service(tmp_path, deployment, chain, operators[0], keeper)
    assert svc.handle_sign_price({})[0] == 400
    code, out = svc.handle_sign_price({"round_id": 0})
    assert code == 409 and "not after the latest round" in out["refused"]

    code, first = svc.handle_sign_price({"round_id": 1})
    assert code == 200 and first["operator"] == operators[0].address
    obs = first["observation"]
    assert obs["round_id"] == 1 and obs["price"] == 125 * USD // 100
    typed = R.price_typed_data(feed.address, chain.chain_id, obs)
    assert R.recover_signer(typed, bytes.fromhex(first["signature"][2:])) == operators[0].address
    assert R.typed_data_digest(typed) == bytes(feed.observation_digest(R.report_tuple(R.PRICE_FIELDS, obs)))

    # Asked again, even after its source moved: the same observation, while it is usable.
    svc._price_source = parse_price_source("fixed:9")
    code, again = svc.handle_sign_price({"round_id": 1})
    assert (code, again) == (200, first)

    # Once it is older than max_observation_age on the chain it can never be submitted, and the
    # id is abandoned: refused, nothing new signed for it. A later id gets a fresh observation.
    chain.mine(timestamp=max(chain.blocks.head.timestamp, obs["observed_at"]) + feed.max_observation_age() + 1)
    code, out = svc.handle_sign_price({"round_id": 1})
    assert code == 409 and out["expired"] is True
    assert svc.store.signed_for("price:1", 1) is None
    code, fresh = svc.handle_sign_price({"round_id": 2})
    assert code == 200 and fresh["observation"]["price"] == 9 * USD and fresh["observation"]["round_id"] == 2
    assert fresh["observation"]["observed_at"] > obs["observed_at"] + feed.max_observation_age()


def test_lead_round__disagreeing_observations__id_abandoned_then_next_id(
    tmp_path, deployment, chain, operators, keeper
):
    """The leader never submits a round the feed would refuse as `observations disagree`: it
    abandons the id (its peers' observations for it cannot be replaced) and leads the next."""
    feed = deployment.price_feed
    a = _service(tmp_path, deployment, chain, operators[0], keeper, "fixed:1.25", "a")
    b = _service(tmp_path, deployment, chain, operators[1], keeper, "fixed:1.40", "b")  # 12% apart
    a._ask_peers = lambda path, body: [(b.address, b.handle_sign_price(body)[1])]
    st = a._price_state()
    assert a._next_price_round(st) == 1
    a._lead_price_round(1, st, st["head"])
    assert feed.latest_round() == 0 and a._next_price_round(a._price_state()) == 2
    b._price_source = parse_price_source("fixed:1.26")  # within the 5% spread
    st = a._price_state()
    a._lead_price_round(a._next_price_round(st), st, st["head"])
    assert feed.latest_round() == 2 and feed.latest_price() == 125 * USD // 100
    with pytest.raises(Exception, match="no such round"):
        feed.getRoundData(1)


def test_sign_price__source_down__refuses_and_counts(tmp_path, deployment, chain, operators, keeper):
    svc = _service(tmp_path, deployment, chain, operators[0], keeper, source=f"file:{tmp_path / 'missing.txt'}")
    code, out = svc.handle_sign_price({"round_id": 1})
    assert code == 503 and out["retry"] is True
    assert svc.store.signed_for("price:1", 0) is None


def test_observations_of_two_services__submit_a_round(tmp_path, deployment, chain, operators, keeper):
    """What a leader submits from its own and a peer's /sign/price answers is accepted."""
    feed = deployment.price_feed
    a = _service(tmp_path, deployment, chain, operators[0], keeper, "fixed:1.25", "a")
    b = _service(tmp_path, deployment, chain, operators[1], keeper, "fixed:1.30", "b")
    answers = [s.handle_sign_price({"round_id": 1})[1] for s in (a, b)]
    answers = json.loads(json.dumps(answers))  # as they travel over HTTP
    ordered = sorted(answers, key=lambda x: int(x["operator"], 16))
    feed.submit_round(
        1,
        [R.report_tuple(R.PRICE_FIELDS, x["observation"]) for x in ordered],
        [bytes.fromhex(x["signature"][2:]) for x in ordered],
        sender=keeper,
    )
    assert feed.latest_price() == 125 * USD // 100  # lower median of 1.25 and 1.30
    # Observations are stamped no later than the chain allows and within the slack of the wall clock.
    assert all(x["observation"]["observed_at"] <= chain.blocks.head.timestamp for x in answers)
    assert PRICE_CLOCK_SLACK_S == 30
