"""PriceFeed: token/USD as the median of the oracle quorum's own signed observations.

Setup (module): nine funded accounts, sorted by address, each with `min_operator_stake` bonded
in OracleHub; the first three are operators and the threshold is 2 (the same quorum as
tests/test_oracle_hub.py). Each operator signs its own PriceObservation with its private key
through offchain/chain/reports.py (what the oracle service uses); anyone submits. Negative
tests match the exact revert string and check, through storage roots, that the feed is
untouched.
"""

from contextlib import contextmanager

import ape
import pytest
from conftest import storage_roots, wait_round_interval
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from offchain.chain import reports as R
from offchain.chain.deploy import DEFAULT_ADMIN_ROLE
from offchain.params import OracleParams, PriceFeedParams

PP = PriceFeedParams()
MIN_STAKE = OracleParams().min_operator_stake
N_POOL = 9
USD = 10**8  # 8 decimals
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# Gas ceilings for submit_round, ~5% above what the in-process EVM measured (see
# test_gas__submit_round): {observations: (first round, later round)}.
GAS_CEILING = {2: (119_000, 110_500), 3: (132_500, 119_000)}
# What pushing the answer to Settlement adds to a later round (listener read, call, Settlement's
# checks and one rewrite): measured 10.4k in the in-process EVM, ceiling ~5% above.
PUSH_GAS_CEILING = 11_000


################################################################
#                            fixtures                          #
################################################################


@pytest.fixture(scope="module")
def feed(deployment, hub):
    return deployment.price_feed


@pytest.fixture(scope="module", autouse=True)
def _wider_fixtures_first(feed, hub, chain, project, keeper, attacker, deployer):
    """Every session/module fixture this file uses, set up before the first test (ape's snapshot
    isolation warns and rebases when one is first set up inside a test)."""


@pytest.fixture
def ops(pool):
    return pool[:3]


@pytest.fixture
def outsider(pool):
    """Staked in the hub, sorts after every operator, but not an operator."""
    return pool[3]


@pytest.fixture
def reverts(chain, feed, hub):
    @contextmanager
    def _reverts(message):
        before = storage_roots(chain, (feed, hub))
        with ape.reverts(message):
            yield
        assert storage_roots(chain, (feed, hub)) == before

    return _reverts


@pytest.fixture
def now(chain):
    return lambda: chain.blocks.head.timestamp


@pytest.fixture
def observe(feed, chain):
    """(observation, signature) of `signer` for a round."""

    def _observe(signer, price, round_id=None, observed_at=None, chain_id=None, feed_address=None):
        obs = {
            "round_id": feed.latest_round() + 1 if round_id is None else round_id,
            "price": price,
            "observed_at": chain.blocks.head.timestamp if observed_at is None else observed_at,
        }
        typed = R.price_typed_data(feed_address or feed.address, chain.chain_id if chain_id is None else chain_id, obs)
        return obs, R.sign_report(signer.private_key, typed)

    return _observe


def answer_of(tx):
    return _round_event(tx)["answer"]


def _round_event(tx):
    logs = [lg for lg in tx.decode_logs() if lg.event_name == "RoundAccepted"]
    assert len(logs) == 1, logs
    return logs[0].event_arguments


def _args(observed):
    """submit_round's (observations, signatures) from [(observation, signature), ...] in order."""
    return [R.report_tuple(R.PRICE_FIELDS, o) for o, _ in observed], [s for _, s in observed]


@pytest.fixture
def submit_with(observe, keeper, chain):
    """Submits the next round of `feed` with (signer, price) pairs, sorted by signer address,
    once `min_round_interval` has passed since its last round."""

    def _submit(feed, *pairs, round_id=None, **kw):
        wait_round_interval(chain, feed)
        rid = feed.latest_round() + 1 if round_id is None else round_id
        ordered = sorted(pairs, key=lambda ap: int(ap[0].address, 16))
        signed = [observe(a, p, round_id=rid, feed_address=feed.address, **kw) for a, p in ordered]
        return feed.submit_round(rid, *_args(signed), sender=keeper)

    return _submit


@pytest.fixture
def submit_by(feed, submit_with):
    """submit_with() on the deployed feed: submit_by((op, price), ...)."""
    return lambda *pairs, **kw: submit_with(feed, *pairs, **kw)


################################################################
#                     EIP-712: digest, domain                  #
################################################################


def test_observation_digest__equals_independent_eip712(feed, chain):
    obs = {"round_id": 7, "price": 2**200, "observed_at": 1_700_000_000}
    full = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "PriceObservation": [
                {"name": "round_id", "type": "uint256"},
                {"name": "price", "type": "uint256"},
                {"name": "observed_at", "type": "uint256"},
            ],
        },
        "primaryType": "PriceObservation",
        "domain": {
            "name": "gpunet PriceFeed",
            "version": "1",
            "chainId": chain.chain_id,
            "verifyingContract": feed.address,
        },
        "message": obs,
    }
    m = encode_typed_data(full_message=full)
    expected = keccak(b"\x19\x01" + m.header + m.body)
    assert bytes(feed.observation_digest(R.report_tuple(R.PRICE_FIELDS, obs))) == expected
    assert R.typed_data_digest(R.price_typed_data(feed.address, chain.chain_id, obs)) == expected
    assert bytes(feed.DOMAIN_SEPARATOR()) == m.header
    assert bytes(feed.OBSERVATION_TYPEHASH()) == R.PRICE_TYPEHASH
    assert feed.eip712Domain()[1:5] == ("gpunet PriceFeed", "1", chain.chain_id, feed.address)


def test_observation__signed_for_another_domain__not_accepted(feed, hub, ops, observe, chain, reverts, keeper):
    """An observation signed under the hub's address or another chain id recovers to some
    other address, never the operator: the round fails."""
    a, _ = observe(ops[0], USD)
    for kw in ({"feed_address": hub.address}, {"chain_id": chain.chain_id + 1}):
        signed = [observe(op, USD, **kw) for op in ops]
        digest_here = R.typed_data_digest(R.price_typed_data(feed.address, chain.chain_id, signed[0][0]))
        recovered = R.recover_signer(R.price_typed_data(feed.address, chain.chain_id, signed[0][0]), signed[0][1])
        assert recovered != ops[0].address, digest_here
        with ape.reverts():
            feed.submit_round(1, *_args(signed), sender=keeper)
    assert feed.latest_round() == 0


################################################################
#                         the median                           #
################################################################


def test_round__three_observations__median_and_views(feed, ops, observe, keeper, chain):
    t = chain.blocks.head.timestamp
    signed = [
        observe(ops[0], 103 * USD // 100, observed_at=t - 5),
        observe(ops[1], USD),
        observe(ops[2], 102 * USD // 100),
    ]
    tx = feed.submit_round(1, *_args(signed), sender=keeper)
    assert answer_of(tx) == 102 * USD // 100
    assert feed.latest_round() == 1
    assert feed.latest_price() == 102 * USD // 100
    rid, answer, started, updated, answered = feed.latestRoundData()
    block_ts = chain.blocks[tx.block_number].timestamp
    assert (rid, answer, started, updated, answered) == (1, 102 * USD // 100, t - 5, block_ts, 1)
    assert feed.getRoundData(1) == feed.latestRoundData()
    ev = dict(_round_event(tx))
    ev["unanimous"] = bool(ev["unanimous"])
    assert ev == {
        "round_id": 1,
        "answer": 102 * USD // 100,
        "low": USD,
        "high": 103 * USD // 100,
        "started_at": t - 5,
        "signers": 3,
        "unanimous": True,
    }
    au = tx.decode_logs(feed.AnswerUpdated)[0].event_arguments
    assert (au["current"], au["roundId"], au["updatedAt"]) == (102 * USD // 100, 1, block_ts)


def test_round__two_observations__lower_median(feed, ops, submit_by):
    tx = submit_by((ops[0], 143 * USD // 100), (ops[2], 140 * USD // 100))
    assert answer_of(tx) == 140 * USD // 100
    assert not _round_event(tx)["unanimous"]


@pytest.mark.parametrize(
    "prices,median",
    [
        ((5, 1, 4, 2, 3), 3),  # odd: the middle one
        ((9, 7, 8, 6), 7),  # even: the lower of the two middle ones
        ((4, 4, 1, 9, 4), 4),  # ties
        ((1, 2, 3, 4, 5), 3),  # already sorted
        ((5, 4, 3, 2), 3),  # reversed
    ],
)
def test_round__five_operators__median(feed, hub, pool, deployer, submit_by, prices, median):
    for a in pool[3:5]:
        hub.add_operator(a, sender=deployer)
    hub.set_threshold(3, sender=deployer)
    # 2.01 .. 2.09 USD: within the 5% spread.
    tx = submit_by(*zip(pool[: len(prices)], [(200 + p) * USD // 100 for p in prices], strict=True))
    assert answer_of(tx) == (200 + median) * USD // 100
    assert feed.latest_price() == (200 + median) * USD // 100


def test_round__one_outlier__refused_or_outvoted(feed, ops, observe, keeper, submit_by, reverts):
    """A single lying operator: far off (1000x), the round is refused (observations disagree);
    within the spread, the median of 3 ignores it."""
    signed = [observe(ops[0], USD), observe(ops[1], 10**3 * USD), observe(ops[2], 101 * USD // 100)]
    with reverts("price_feed: observations disagree"):
        feed.submit_round(1, *_args(signed), sender=keeper)
    submit_by((ops[0], USD), (ops[1], 104 * USD // 100), (ops[2], 101 * USD // 100))
    assert feed.latest_price() == 101 * USD // 100


################################################################
#                    who may sign, and how                      #
################################################################


def test_round__not_enough_observations__reverts(feed, ops, observe, keeper, reverts):
    with reverts("price_feed: not enough observations"):
        feed.submit_round(1, *_args([observe(ops[0], USD)]), sender=keeper)
    with reverts("price_feed: not enough observations"):
        feed.submit_round(1, [], [], sender=keeper)


def test_round__signature_count_mismatch__reverts(feed, ops, observe, keeper, reverts):
    obs, sigs = _args([observe(ops[0], USD), observe(ops[1], USD)])
    with reverts("price_feed: one signature per observation"):
        feed.submit_round(1, obs, sigs[:1], sender=keeper)


def test_round__duplicate_signer__reverts(feed, ops, observe, keeper, reverts):
    """The same operator twice (even with two different observations) counts once: refused."""
    with reverts("price_feed: signers not strictly increasing"):
        feed.submit_round(1, *_args([observe(ops[0], USD), observe(ops[0], USD)]), sender=keeper)
    with reverts("price_feed: signers not strictly increasing"):
        feed.submit_round(1, *_args([observe(ops[0], USD), observe(ops[0], 2 * USD)]), sender=keeper)


def test_round__unsorted_signers__reverts(feed, ops, observe, keeper, reverts):
    with reverts("price_feed: signers not strictly increasing"):
        feed.submit_round(1, *_args([observe(ops[1], USD), observe(ops[0], USD)]), sender=keeper)


def test_round__non_operator__reverts(feed, ops, outsider, observe, keeper, reverts):
    with reverts("price_feed: signer is not an operator"):
        feed.submit_round(1, *_args([observe(ops[0], USD), observe(outsider, USD)]), sender=keeper)


def test_round__removed_operator__reverts(feed, hub, ops, observe, keeper, deployer, reverts):
    """Operators are the hub's, read at submission: removing one there removes it here."""
    signed = [observe(ops[0], USD), observe(ops[1], USD)]
    hub.remove_operator(ops[1], sender=deployer)
    with reverts("price_feed: signer is not an operator"):
        feed.submit_round(1, *_args(signed), sender=keeper)


def test_round__low_stake__reverts(feed, hub, ops, observe, keeper, reverts):
    hub.request_unstake(1, sender=ops[1])
    with reverts("price_feed: signer stake too low"):
        feed.submit_round(1, *_args([observe(ops[0], USD), observe(ops[1], USD)]), sender=keeper)


def test_round__quorum_misconfigured__reverts(feed, hub, ops, observe, keeper, deployer, reverts):
    hub.set_threshold(1, sender=deployer)  # 1 of 3: two disjoint "quorums" could exist
    with reverts("price_feed: quorum misconfigured"):
        feed.submit_round(1, *_args([observe(op, USD) for op in ops]), sender=keeper)


def test_round__signature_not_65_bytes__reverts(feed, ops, observe, keeper, reverts):
    obs, sigs = _args([observe(ops[0], USD), observe(ops[1], USD)])
    with reverts("price_feed: signature must be 65 bytes"):
        feed.submit_round(1, obs, [sigs[0], sigs[1][:64]], sender=keeper)


def test_round__high_s_signature__reverts(feed, ops, observe, keeper, reverts):
    """The malleable twin (n - s, flipped v) of a valid signature is refused."""
    obs, sigs = _args([observe(ops[0], USD), observe(ops[1], USD)])
    r, s, v = sigs[1][:32], int.from_bytes(sigs[1][32:64], "big"), sigs[1][64]
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    with reverts("ecdsa: invalid signature `s` value"):
        feed.submit_round(1, obs, [sigs[0], twin], sender=keeper)


################################################################
#                      rounds and replays                      #
################################################################


def test_round__wrong_round__reverts(feed, ops, observe, keeper, chain, submit_by, reverts):
    with reverts("price_feed: wrong round"):
        feed.submit_round(0, *_args([observe(op, USD, round_id=0) for op in ops[:2]]), sender=keeper)
    far = feed.MAX_ROUND_GAP() + 1
    with reverts("price_feed: wrong round"):
        feed.submit_round(far, *_args([observe(op, USD, round_id=far) for op in ops[:2]]), sender=keeper)
    signed = [observe(op, USD, round_id=1) for op in ops[:2]]
    feed.submit_round(1, *_args(signed), sender=keeper)
    wait_round_interval(chain, feed)
    # Replaying round 1's observations: neither as round 1 nor as round 2.
    with reverts("price_feed: wrong round"):
        feed.submit_round(1, *_args(signed), sender=keeper)
    with reverts("price_feed: observation for another round"):
        feed.submit_round(2, *_args(signed), sender=keeper)
    assert feed.latest_round() == 1


def test_round__abandoned_ids_skipped__no_such_round(feed, ops, submit_by, chain):
    """A round id whose observations expired or disagreed is abandoned: the next round may skip
    it (operators never sign a second observation for an id), and it never has data."""
    submit_by((ops[0], USD), (ops[1], USD))
    submit_by((ops[0], USD), (ops[1], USD), round_id=4)
    assert feed.latest_round() == 4
    assert feed.getRoundData(4)[0] == 4 and feed.getRoundData(4)[1] == USD
    for skipped in (2, 3):
        with ape.reverts("price_feed: no such round"):
            feed.getRoundData(skipped)
    # Ids below the latest are gone for good.
    with ape.reverts("price_feed: wrong round"):
        submit_by((ops[0], USD), (ops[1], USD), round_id=3)


def test_round__observation_for_another_round__reverts(feed, ops, observe, keeper, reverts):
    signed = [observe(ops[0], USD, round_id=1), observe(ops[1], USD, round_id=2)]
    with reverts("price_feed: observation for another round"):
        feed.submit_round(1, *_args(signed), sender=keeper)


def test_round__observation_too_old__reverts(feed, ops, observe, keeper, chain, reverts):
    block_time = chain.blocks.head.timestamp + PP.max_observation_age + 5
    chain.mine(timestamp=block_time - 1)  # the next block is at block_time or just after
    signed = [observe(ops[0], USD), observe(ops[1], USD, observed_at=block_time - PP.max_observation_age - 1)]
    with reverts("price_feed: observation too old"):
        feed.submit_round(1, *_args(signed), sender=keeper)
    # Exactly max_observation_age old is accepted.
    chain.pending_timestamp = chain.pending_timestamp  # pin the next block's time
    pinned = chain.pending_timestamp
    signed = [observe(ops[0], USD), observe(ops[1], USD, observed_at=pinned - PP.max_observation_age)]
    tx = feed.submit_round(1, *_args(signed), sender=keeper)
    assert chain.blocks[tx.block_number].timestamp == pinned
    assert _round_event(tx)["started_at"] == pinned - PP.max_observation_age


def test_round__observation_in_the_future__reverts(feed, ops, observe, keeper, chain, reverts):
    t = chain.blocks.head.timestamp
    signed = [observe(ops[0], USD, observed_at=t + 3600), observe(ops[1], USD)]
    with reverts("price_feed: observed in the future"):
        feed.submit_round(1, *_args(signed), sender=keeper)


def test_round__zero_price__reverts(feed, ops, observe, keeper, reverts):
    with reverts("price_feed: zero price"):
        feed.submit_round(1, *_args([observe(ops[0], 0), observe(ops[1], USD)]), sender=keeper)


def test_round__price_above_128_bits__reverts(feed, ops, observe, keeper, reverts):
    big = feed.MAX_PRICE() + 1
    with reverts("price_feed: price too high"):
        feed.submit_round(1, *_args([observe(ops[0], USD), observe(ops[1], big)]), sender=keeper)
    assert feed.MAX_PRICE() == 2**128 - 1


################################################################
#                         the guards                           #
################################################################


def test_deviation__bounded_unless_unanimous_or_stale(feed, ops, submit_by, chain, reverts):
    submit_by((ops[0], USD), (ops[1], USD))
    # +25% from a fresh 1.00 by 2 of 3: refused.
    with reverts("price_feed: deviation too large"):
        submit_by((ops[0], 125 * USD // 100), (ops[1], 125 * USD // 100))
    # -25%: refused too.
    with reverts("price_feed: deviation too large"):
        submit_by((ops[0], 75 * USD // 100), (ops[2], 75 * USD // 100))
    # Exactly +20% (max_deviation_bps) is accepted.
    submit_by((ops[0], 120 * USD // 100), (ops[1], 120 * USD // 100))
    assert feed.latest_price() == 120 * USD // 100
    # The escape hatch: every operator signs a doubling.
    tx = submit_by((ops[0], 240 * USD // 100), (ops[1], 240 * USD // 100), (ops[2], 240 * USD // 100))
    assert _round_event(tx)["unanimous"]
    assert feed.latest_price() == 240 * USD // 100
    # A stale previous answer: a quorum restarts the feed at any price.
    chain.pending_timestamp = chain.blocks.head.timestamp + PP.max_age + 1
    chain.mine()
    submit_by((ops[0], 10 * USD), (ops[1], 10 * USD))
    assert feed.latest_price() == 10 * USD
    assert feed.latest_round() == 4


################################################################
#          attacks: operators below the threshold             #
################################################################


def _walk_down(feed, chain, keeper, observe, honest, liar, step_bps, rounds):
    """Each round: the liar observes `step_bps` below the current answer, the honest operator
    the true price (USD). A refused round leaves the answer as it was. Returns the answers."""
    answers = []
    for _ in range(rounds):
        wait_round_interval(chain, feed)
        rid = feed.latest_round() + 1
        lie = feed.latest_price() * (10_000 - step_bps) // 10_000
        pairs = sorted([(honest, USD), (liar, lie)], key=lambda ap: int(ap[0].address, 16))
        try:
            feed.submit_round(rid, *_args([observe(a, p, round_id=rid) for a, p in pairs]), sender=keeper)
        except ape.exceptions.ContractLogicError as e:
            assert "observations disagree" in str(e), e
        answers.append(feed.latest_price())
    return answers


def test_attack_one_operator_walks_price_down(feed, ops, observe, keeper, chain, submit_by):
    """Finding 1: threshold 2, so the lower median of a 2-observation round is its minimum. One
    lying operator with any one honest observation used to walk the answer down 20% (the
    deviation bound) per round, to 0.5% of the honest price in 25 rounds, all in one block's
    worth of time. Now a round whose observations spread wider than `max_spread_bps` is refused:
    the answer stays within the band of the honest observation every round includes."""
    spread = getattr(PP, "max_spread_bps", 500)
    submit_by((ops[0], USD), (ops[1], USD))
    answers = _walk_down(feed, chain, keeper, observe, ops[0], ops[1], 1_999, 25)
    for a in answers:
        assert (USD - a) * 10_000 <= USD * spread, answers


def test_attack_one_operator_walks_price_down_within_the_spread(feed, ops, observe, keeper, chain, submit_by):
    """Finding 1, patient variant: the liar steps 4% (inside the 5% spread) per round. Each
    round is measured against the honest observation, not the previous answer, so the steps
    never add up: the answer never leaves the band around the honest price."""
    spread = getattr(PP, "max_spread_bps", 500)
    submit_by((ops[0], USD), (ops[1], USD))
    answers = _walk_down(feed, chain, keeper, observe, ops[0], ops[1], 400, 10)
    assert answers[0] == USD * 96 // 100  # one step is within the band: accepted
    for a in answers:
        assert (USD - a) * 10_000 <= USD * spread, answers


def test_attack_rounds_chained_in_one_block(feed, ops, observe, keeper, chain, submit_by, reverts):
    """Finding 1, pacing: rounds used to be accepted back to back (a quorum walked the price
    max_deviation_bps per round as fast as it could send transactions). Now a round needs
    `min_round_interval` since the last one."""
    tx = submit_by((ops[0], USD), (ops[1], USD))
    updated = chain.blocks[tx.block_number].timestamp
    signed = [observe(op, 110 * USD // 100, round_id=2) for op in ops[:2]]
    assert chain.pending_timestamp < updated + PP.as_tuple()[-1]
    with reverts("price_feed: too soon after the last round"):
        feed.submit_round(2, *_args(signed), sender=keeper)
    chain.mine(timestamp=updated + feed.min_round_interval() - 1)
    signed = [observe(op, 110 * USD // 100, round_id=2) for op in ops[:2]]
    chain.pending_timestamp = updated + feed.min_round_interval()
    tx = feed.submit_round(2, *_args(signed), sender=keeper)  # exactly min_round_interval later
    assert chain.blocks[tx.block_number].timestamp == updated + feed.min_round_interval()
    assert feed.latest_price() == 110 * USD // 100


def test_deviation__first_round__any_price(feed, ops, submit_by):
    submit_by((ops[0], 12_345 * USD), (ops[1], 12_345 * USD))
    assert feed.latest_price() == 12_345 * USD


def test_staleness__no_price_then_fresh_then_stale(feed, ops, submit_by, chain):
    with ape.reverts("price_feed: no price"):
        feed.latest_price()
    with ape.reverts("price_feed: no price"):
        feed.latestRoundData()
    assert feed.is_stale()
    tx = submit_by((ops[0], USD), (ops[1], USD))
    updated = chain.blocks[tx.block_number].timestamp
    started = _round_event(tx)["started_at"]
    assert not feed.is_stale()
    chain.mine(timestamp=updated + PP.max_age)
    assert feed.latest_price() == USD  # exactly max_age old: still fresh
    chain.mine(timestamp=updated + PP.max_age + 1)
    assert feed.is_stale()
    with ape.reverts("price_feed: stale price"):
        feed.latest_price()
    # Chainlink semantics: latestRoundData still answers; the consumer checks updatedAt.
    assert feed.latestRoundData() == (1, USD, started, updated, 1)


def test_aggregator_v3__views_and_history(feed, ops, submit_by, chain):
    assert feed.decimals() == 8
    assert feed.description() == "GPU / USD"
    assert feed.version() == 1
    tx1 = submit_by((ops[0], USD), (ops[1], USD))
    tx2 = submit_by((ops[1], 110 * USD // 100), (ops[2], 115 * USD // 100))
    t1, t2 = (chain.blocks[t.block_number].timestamp for t in (tx1, tx2))
    s1, s2 = (_round_event(t)["started_at"] for t in (tx1, tx2))
    assert s1 <= t1 and s2 <= t2
    assert feed.getRoundData(1) == (1, USD, s1, t1, 1)
    assert feed.getRoundData(2) == (2, 110 * USD // 100, s2, t2, 2)
    assert feed.latestRoundData() == feed.getRoundData(2)
    for missing in (0, 3, 2**80 - 1):
        with ape.reverts("price_feed: no such round"):
            feed.getRoundData(missing)


################################################################
#                   admin: parameters and roles                #
################################################################


def test_params__defaults_and_bounds(feed, deployer, attacker, hub):
    def current():
        return (
            feed.max_age(),
            feed.max_deviation_bps(),
            feed.max_observation_age(),
            feed.max_spread_bps(),
            feed.min_round_interval(),
        )

    assert current() == PP.as_tuple()
    assert feed.HUB() == hub.address
    lo = (feed.MIN_MAX_AGE(), feed.MIN_DEVIATION_BPS(), feed.MIN_OBSERVATION_AGE(), feed.MIN_SPREAD_BPS(),
          feed.MIN_ROUND_INTERVAL())  # fmt: skip
    hi = (feed.MAX_MAX_AGE(), feed.MAX_DEVIATION_BPS(), feed.MAX_OBSERVATION_AGE(), feed.MAX_SPREAD_BPS(),
          feed.MAX_ROUND_INTERVAL())  # fmt: skip
    assert lo == (300, 100, 30, 10, 1) and hi == (86400, 10_000, 3600, 2_000, 3600)
    tx = feed.set_params(*lo, sender=deployer)
    assert tx.decode_logs(feed.PriceFeedParamsSet)[0].event_arguments == {
        "max_age": 300,
        "max_deviation_bps": 100,
        "max_observation_age": 30,
        "max_spread_bps": 10,
        "min_round_interval": 1,
    }
    feed.set_params(*hi, sender=deployer)
    assert current() == hi
    bad = [
        ((299, 2_000, 60, 500, 30), "price_feed: max age out of bounds"),
        ((86_401, 2_000, 60, 500, 30), "price_feed: max age out of bounds"),
        ((3600, 99, 60, 500, 30), "price_feed: max deviation out of bounds"),
        ((3600, 10_001, 60, 500, 30), "price_feed: max deviation out of bounds"),
        ((3600, 2_000, 29, 500, 30), "price_feed: max observation age out of bounds"),
        ((3600, 2_000, 3601, 500, 30), "price_feed: max observation age out of bounds"),
        ((300, 2_000, 301, 500, 30), "price_feed: observation age above max age"),
        ((3600, 2_000, 60, 9, 30), "price_feed: max spread out of bounds"),
        ((3600, 2_000, 60, 2_001, 30), "price_feed: max spread out of bounds"),
        ((3600, 2_000, 60, 500, 0), "price_feed: min round interval out of bounds"),
        ((86_400, 2_000, 60, 500, 3601), "price_feed: min round interval out of bounds"),
        ((300, 2_000, 60, 500, 301), "price_feed: round interval above max age"),
    ]
    for args, msg in bad:
        with ape.reverts(msg):
            feed.set_params(*args, sender=deployer)
    with ape.reverts("access_control: account is missing role"):
        feed.set_params(*PP.as_tuple(), sender=attacker)
    assert current() == hi


def test_params__admin_role_is_transferable(feed, deployer, attacker):
    feed.grantRole(DEFAULT_ADMIN_ROLE, attacker, sender=deployer)
    feed.renounceRole(DEFAULT_ADMIN_ROLE, deployer, sender=deployer)
    feed.set_params(*PP.as_tuple(), sender=attacker)
    with ape.reverts("access_control: account is missing role"):
        feed.set_params(*PP.as_tuple(), sender=deployer)


def test_constructor__zero_hub__reverts(project, deployer):
    with ape.reverts("price_feed: hub is the zero address"):
        deployer.deploy(project.PriceFeed, "0x" + "00" * 20, *PP.as_tuple())
    with ape.reverts("price_feed: max deviation out of bounds"):
        deployer.deploy(project.PriceFeed, deployer.address, 3600, 0, 600, 500, 30)


################################################################
#                             gas                              #
################################################################


def test_gas__submit_round(project, feed, hub, pool, deployer, submit_with, deployment):
    """Gas of submit_round with 2 (threshold 2 of 3) and 3 observations (every operator): the
    first round (latest_round and the round slot written from zero) and a later round, on a
    feed with no listener; then a later round of a feed that also pushes the answer to a
    Settlement (`on_price`: one call and one rewrite)."""
    measured = {}
    for n in (2, 3):
        f = deployer.deploy(project.PriceFeed, hub.address, *PP.as_tuple())
        first = submit_with(f, *[(a, USD) for a in pool[:n]]).gas_used
        later = submit_with(f, *[(a, USD + i) for i, a in enumerate(pool[:n])]).gas_used
        measured[n] = (first, later)
    f = deployer.deploy(project.PriceFeed, hub.address, *PP.as_tuple())
    listener = deployer.deploy(project.Settlement, deployment.token.address, f.address, 3600)
    f.set_listener(listener, sender=deployer)
    submit_with(f, *[(a, USD) for a in pool[:2]])
    pushed = submit_with(f, *[(a, USD + i) for i, a in enumerate(pool[:2])]).gas_used
    assert listener.price() == f.latestRoundData()[1] == USD  # the lower median of (USD, USD + 1)
    print("\nsubmit_round gas {observations: (first, later)}:", measured, "later, pushed to Settlement:", pushed)
    for n, (first, later) in measured.items():
        assert first <= GAS_CEILING[n][0], (n, first)
        assert later <= GAS_CEILING[n][1], (n, later)
    assert pushed <= GAS_CEILING[2][1] + PUSH_GAS_CEILING, pushed
