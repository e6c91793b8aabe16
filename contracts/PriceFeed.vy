# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Token/USD price reported by the oracle quorum
@custom:contract-name PriceFeed
@license AGPL-3.0-only
@notice USD per 1 token, 8 decimals, as the median of OracleHub operators' own observations.
        Each operator signs its OWN `PriceObservation {round_id, price, observed_at}`, at most
        one per round id; anyone submits a round `round_id > latest_round` with at least
        `threshold` observations of distinct operators, and the round's answer is the lower
        median of their prices. Round ids may skip (a round whose observations expired or
        disagreed is abandoned, and its operators observe again for a later id: re-signing the
        same id would be equivocation, slashed through OracleHub.prove_observation_equivocation). Read through
        Chainlink's AggregatorV3Interface (`latestRoundData`, `getRoundData`, `decimals`,
        `description`, `version`), so a consumer can be pointed at a real Chainlink feed by
        configuration; contracts of this protocol call `latest_price()`, which refuses a stale
        answer.
        Guards:
        - every observation is for this round, priced > 0, observed within
          `max_observation_age` before the block and not after it;
        - the observations agree: highest <= lowest * (1 + `max_spread_bps`). Fewer than
          `threshold` operators can never fill a round alone, so every round holds at least one
          honest observation, and the answer (lying between lowest and highest) stays within
          `max_spread_bps` of it: a minority of liars cannot move the price beyond that band,
          in one round or over many;
        - at least `min_round_interval` seconds since the previous round (never two in a block);
        - the median may move at most `max_deviation_bps` from the previous answer, unless the
          previous answer is stale (older than `max_age`: the feed restarts from whatever a
          quorum reports) or EVERY operator signed the round (the escape hatch for a genuine
          jump: a move that large needs the whole operator set, not just a quorum).
@custom:security Trust: while fewer than `threshold` operators lie, the answer is within
        `max_spread_bps` of an honest observation (the spread guard), whatever they sign and
        however many rounds they chain. A colluding quorum sets any price within the deviation
        band once per `min_round_interval` (the whole set: any price). The guard stops a bad round, not
        collusion: bound what a price can cost where it is used.
        Operators, their stake and the threshold are OracleHub's, read at submission: removing
        an operator there removes it here. Domain: name "gpunet PriceFeed", version "1", chain
        id and this contract (snekmate eip712_domain_separator; recomputed on a fork).
        Signatures: 65 bytes, low-s (snekmate ecdsa), signers strictly increasing (distinct),
        each an operator with at least `min_operator_stake` bonded. A round id is a nonce:
        a signed observation is good for one round only, and ids only increase (by at most
        MAX_ROUND_GAP per round, so they stay far below 2**80).
        Roles: DEFAULT_ADMIN_ROLE (governance timelock) sets `max_age`, `max_deviation_bps`,
        `max_observation_age`, `max_spread_bps` and `min_round_interval` within the bounds below.
"""

from interfaces import IAggregatorV3
from interfaces import IOracleOperators

implements: IAggregatorV3

from snekmate.auth import access_control
# Governance sets the guard parameters.
initializes: access_control

from snekmate.utils import eip712_domain_separator
# EIP-712 domain bound to chain id and this contract.
initializes: eip712_domain_separator

from snekmate.utils import ecdsa
# Signature recovery with the low-s malleability check; stateless.

exports: (
    access_control.supportsInterface,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
    access_control.DEFAULT_ADMIN_ROLE,
    eip712_domain_separator.eip712Domain,
)

################################################################
#                          CONSTANTS                           #
################################################################

# OracleHub's operator-set bound: at most this many observations per round.
MAX_OBSERVATIONS: public(constant(uint256)) = 32

MAX_BPS: public(constant(uint256)) = 10_000

# Answers are USD per 1 token with 8 decimals (Chainlink's USD feeds use 8).
DECIMALS: constant(uint8) = 8
DESCRIPTION: constant(String[64]) = "GPU / USD"
VERSION: constant(uint256) = 1

# Prices are stored in 128 bits (rounds are packed in one slot): far above any real price.
MAX_PRICE: public(constant(uint256)) = 2**128 - 1
_TIME_MASK: constant(uint256) = 2**64 - 1

# Bounds on the guard parameters (docs/PROTOCOL.md, "PriceFeed").
# max_age: 5 minutes (below that one slow block makes the feed flicker) to 1 day (Chainlink's
# longest common heartbeat; an older price says nothing about today's market).
MIN_MAX_AGE: public(constant(uint256)) = 300
MAX_MAX_AGE: public(constant(uint256)) = 86400
# max_deviation_bps: 1% (below that ordinary volatility needs every operator) to 100%.
MIN_DEVIATION_BPS: public(constant(uint256)) = 100
MAX_DEVIATION_BPS: public(constant(uint256)) = 10_000
# max_observation_age: 30 s (a block or two plus the gathering round trip) to 1 hour; never
# above max_age.
MIN_OBSERVATION_AGE: public(constant(uint256)) = 30
MAX_OBSERVATION_AGE: public(constant(uint256)) = 3600
# max_spread_bps: 0.1% (sources of one market rarely agree closer) to 20% (the band a minority
# of liars can push the answer within must stay small).
MIN_SPREAD_BPS: public(constant(uint256)) = 10
MAX_SPREAD_BPS: public(constant(uint256)) = 2_000
# min_round_interval: 1 s (never two rounds in one block) to 1 hour; never above max_age.
MIN_ROUND_INTERVAL: public(constant(uint256)) = 1
MAX_ROUND_INTERVAL: public(constant(uint256)) = 3600
# Largest step of the round id per round (abandoned ids skipped): keeps ids far below 2**80.
MAX_ROUND_GAP: public(constant(uint256)) = 2**32

OBSERVATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "PriceObservation(uint256 round_id,uint256 price,uint256 observed_at)"
)

################################################################
#                           STRUCTS                            #
################################################################

struct PriceObservation:
    # The round this observation is for (latest_round + 1 when it is submitted).
    round_id: uint256
    # USD per 1 token, 8 decimals.
    price: uint256
    # When the operator read its source (unix seconds).
    observed_at: uint256

################################################################
#                            STATE                             #
################################################################

HUB: public(immutable(address))

# The last accepted round (0: none yet).
latest_round: public(uint256)

# Round id -> answer (low 128 bits) | startedAt (next 64) | updatedAt (top 64): one slot per round.
_rounds: HashMap[uint256, uint256]

# An answer older than this is stale: `latest_price` reverts, and the deviation guard is off.
max_age: public(uint256)

# Largest move from the previous (fresh) answer a round may make without every operator signing.
max_deviation_bps: public(uint256)

# Oldest observation a round may include, in seconds before the block.
max_observation_age: public(uint256)

# Widest spread of a round's observations: highest - lowest <= lowest * max_spread_bps / MAX_BPS.
max_spread_bps: public(uint256)

# Seconds between two rounds (their block times).
min_round_interval: public(uint256)

# Told each accepted answer (`on_price(answer, updated_at)`): Settlement, which keeps it so that a
# job's quote makes no call to the feed. Set by the admin; empty for none.
listener: public(address)
# Gas the listener gets for each push (Settlement's `on_price` uses ~10k) and the most a call can
# cost on top of what it forwards (a cold account, 2,600, and the call's own bookkeeping).
PUSH_GAS: public(constant(uint256)) = 30_000
_CALL_OVERHEAD_GAS: constant(uint256) = 5_000

################################################################
#                            EVENTS                            #
################################################################

# Chainlink's event, so indexers of real feeds read this one too.
event AnswerUpdated:
    current: indexed(int256)
    roundId: indexed(uint256)
    updatedAt: uint256

event RoundAccepted:
    round_id: indexed(uint256)
    answer: uint256
    # Lowest and highest observation of the round: the spread the median was taken from.
    low: uint256
    high: uint256
    started_at: uint256
    signers: uint256
    # True when every operator signed (the deviation guard does not apply).
    unanimous: bool

event ListenerSet:
    listener: indexed(address)

event PriceFeedParamsSet:
    max_age: uint256
    max_deviation_bps: uint256
    max_observation_age: uint256
    max_spread_bps: uint256
    min_round_interval: uint256


@deploy
def __init__(
    hub: address,
    max_age_: uint256,
    max_deviation_bps_: uint256,
    max_observation_age_: uint256,
    max_spread_bps_: uint256,
    min_round_interval_: uint256,
):
    assert hub != empty(address), "price_feed: hub is the zero address"
    access_control.__init__()
    eip712_domain_separator.__init__("gpunet PriceFeed", "1")
    HUB = hub
    self._set_params(max_age_, max_deviation_bps_, max_observation_age_, max_spread_bps_, min_round_interval_)


################################################################
#                    ROUNDS (permissionless)                   #
################################################################

@external
def submit_round(
    round_id: uint256,
    observations: DynArray[PriceObservation, MAX_OBSERVATIONS],
    signatures: DynArray[Bytes[65], MAX_OBSERVATIONS],
) -> uint256:
    """
    @notice Accepts round `round_id` (latest_round < round_id <= latest_round + MAX_ROUND_GAP):
            the lower median of the operators' signed observations, `signatures[i]` by the
            signer of `observations[i]`, ordered by signer address ascending. Reverts when the
            observations spread wider than `max_spread_bps` or the previous round is less than
            `min_round_interval` old.
    @return The round's answer.
    """
    latest: uint256 = self.latest_round
    assert round_id > latest and round_id - latest <= MAX_ROUND_GAP, "price_feed: wrong round"
    prev: uint256 = 0
    if latest > 0:
        prev = self._rounds[latest]
        assert block.timestamp >= (prev >> 192) + self.min_round_interval, "price_feed: too soon after the last round"
    n: uint256 = len(observations)
    assert len(signatures) == n, "price_feed: one signature per observation"
    m: uint256 = staticcall IOracleOperators(HUB).threshold()
    count: uint256 = staticcall IOracleOperators(HUB).operator_count()
    assert m * 2 > count, "price_feed: quorum misconfigured"
    assert n >= m, "price_feed: not enough observations"
    min_stake: uint256 = staticcall IOracleOperators(HUB).min_operator_stake()
    oldest_allowed: uint256 = 0
    if block.timestamp > self.max_observation_age:
        oldest_allowed = block.timestamp - self.max_observation_age

    prices: DynArray[uint256, MAX_OBSERVATIONS] = []
    started_at: uint256 = max_value(uint256)
    last: uint160 = 0
    for i: uint256 in range(n, bound=MAX_OBSERVATIONS):
        obs: PriceObservation = observations[i]
        assert obs.round_id == round_id, "price_feed: observation for another round"
        assert obs.price > 0, "price_feed: zero price"
        assert obs.price <= MAX_PRICE, "price_feed: price too high"
        assert obs.observed_at <= block.timestamp, "price_feed: observed in the future"
        assert obs.observed_at >= oldest_allowed, "price_feed: observation too old"
        signer: address = self._recover(
            eip712_domain_separator._hash_typed_data_v4(self._observation_struct_hash(obs)), signatures[i]
        )
        assert convert(signer, uint160) > last, "price_feed: signers not strictly increasing"
        assert staticcall IOracleOperators(HUB).is_operator(signer), "price_feed: signer is not an operator"
        assert staticcall IOracleOperators(HUB).operator_stake(signer) >= min_stake, "price_feed: signer stake too low"
        last = convert(signer, uint160)
        started_at = min(started_at, obs.observed_at)
        # Insertion sort in memory: at most 32 elements.
        prices.append(obs.price)
        j: uint256 = i
        for _: uint256 in range(MAX_OBSERVATIONS):
            if j == 0:
                break
            if prices[j - 1] <= prices[j]:
                break
            tmp: uint256 = prices[j - 1]
            prices[j - 1] = prices[j]
            prices[j] = tmp
            j -= 1

    # The observations must agree: with at least one honest observation among them (fewer than
    # `threshold` liars cannot fill a round), the answer stays within the spread of it.
    assert (prices[n - 1] - prices[0]) * MAX_BPS <= prices[0] * self.max_spread_bps, \
        "price_feed: observations disagree"
    # Lower median: the answer is always one operator's observation.
    answer: uint256 = prices[(n - 1) // 2]
    # Every operator signed (signers are distinct operators, so n <= count).
    unanimous: bool = n == count
    if latest > 0 and not unanimous:
        prev_answer: uint256 = prev & MAX_PRICE
        if block.timestamp <= (prev >> 192) + self.max_age:
            # The previous answer is fresh: the move is bounded.
            diff: uint256 = answer - prev_answer if answer > prev_answer else prev_answer - answer
            assert diff * MAX_BPS <= prev_answer * self.max_deviation_bps, "price_feed: deviation too large"

    self.latest_round = round_id
    self._rounds[round_id] = answer | (started_at << 128) | (block.timestamp << 192)
    log AnswerUpdated(current=convert(answer, int256), roundId=round_id, updatedAt=block.timestamp)
    log RoundAccepted(
        round_id=round_id,
        answer=answer,
        low=prices[0],
        high=prices[n - 1],
        started_at=started_at,
        signers=n,
        unanimous=unanimous,
    )
    listener: address = self.listener
    if listener != empty(address):
        # The listener gets exactly PUSH_GAS, and a round whose submitter left less than that
        # reverts: otherwise anyone could submit the signed round with just enough gas for it and
        # not for the push (EIP-150 forwards 63/64 of what is left), keeping Settlement's quotes
        # on the previous answer. A listener that reverts within PUSH_GAS is ignored: the feed
        # must not depend on it (Settlement then quotes from its last pushed answer while that is
        # fresh, else reads this feed).
        assert msg.gas >= PUSH_GAS * 64 // 63 + _CALL_OVERHEAD_GAS, "price_feed: gas too low for the listener"
        told: bool = raw_call(
            listener,
            abi_encode(answer, block.timestamp, method_id=method_id("on_price(uint256,uint256)")),
            gas=PUSH_GAS,
            revert_on_failure=False,
        )
    return answer


@external
def set_listener(listener: address):
    """
    @notice Admin: the contract told each accepted answer (Settlement), or empty for none.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self.listener = listener
    log ListenerSet(listener=listener)


################################################################
#                            VIEWS                             #
################################################################

@external
@view
def latest_price() -> uint256:
    """
    @notice The latest answer (USD per token, 8 decimals) for contracts of this protocol:
            reverts when there is none or it is older than `max_age`.
    """
    r: uint256 = self.latest_round
    assert r > 0, "price_feed: no price"
    packed: uint256 = self._rounds[r]
    assert block.timestamp <= (packed >> 192) + self.max_age, "price_feed: stale price"
    return packed & MAX_PRICE


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice Chainlink semantics: never reverts once a round exists, however old (check
            `updatedAt`); reverts "price_feed: no price" before the first round.
    @return (roundId, answer, startedAt = oldest observation of the round,
            updatedAt = the round's block time, answeredInRound = roundId)
    """
    r: uint256 = self.latest_round
    assert r > 0, "price_feed: no price"
    return self._round_data(r)


@external
@view
def getRoundData(_roundId: uint80) -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice A past round, as latestRoundData; reverts "price_feed: no such round" for a round
            that was never accepted (round ids may skip).
    """
    r: uint256 = convert(_roundId, uint256)
    assert r > 0 and r <= self.latest_round and self._rounds[r] != 0, "price_feed: no such round"
    return self._round_data(r)


@external
@view
def decimals() -> uint8:
    return DECIMALS


@external
@view
def description() -> String[64]:
    return DESCRIPTION


@external
@view
def version() -> uint256:
    return VERSION


@external
@view
def is_stale() -> bool:
    """
    @notice True when there is no answer or it is older than `max_age` (`latest_price` reverts).
    """
    r: uint256 = self.latest_round
    if r == 0:
        return True
    return block.timestamp > (self._rounds[r] >> 192) + self.max_age


@external
@view
def observation_digest(observation: PriceObservation) -> bytes32:
    """
    @notice The EIP-712 digest an operator signs for `observation`.
    """
    return eip712_domain_separator._hash_typed_data_v4(self._observation_struct_hash(observation))


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    return eip712_domain_separator._domain_separator_v4()


################################################################
#                        ROLE-GATED                            #
################################################################

@external
def set_params(
    max_age_: uint256,
    max_deviation_bps_: uint256,
    max_observation_age_: uint256,
    max_spread_bps_: uint256,
    min_round_interval_: uint256,
):
    """
    @notice Sets the guards (DEFAULT_ADMIN_ROLE), each within its bounds.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._set_params(max_age_, max_deviation_bps_, max_observation_age_, max_spread_bps_, min_round_interval_)


################################################################
#                          INTERNAL                            #
################################################################

@internal
@pure
def _observation_struct_hash(o: PriceObservation) -> bytes32:
    return keccak256(abi_encode(OBSERVATION_TYPEHASH, o.round_id, o.price, o.observed_at))


@internal
@view
def _recover(digest: bytes32, signature: Bytes[65]) -> address:
    # Only the 65-byte form: EIP-2098 compact signatures would give a second encoding.
    assert len(signature) == 65, "price_feed: signature must be 65 bytes"
    return ecdsa._recover_sig(digest, signature)


@internal
@view
def _round_data(r: uint256) -> (uint80, int256, uint256, uint256, uint80):
    packed: uint256 = self._rounds[r]
    rid: uint80 = convert(r, uint80)
    return (
        rid,
        convert(packed & MAX_PRICE, int256),
        (packed >> 128) & _TIME_MASK,
        packed >> 192,
        rid,
    )


@internal
def _set_params(
    max_age_: uint256,
    max_deviation_bps_: uint256,
    max_observation_age_: uint256,
    max_spread_bps_: uint256,
    min_round_interval_: uint256,
):
    assert max_age_ >= MIN_MAX_AGE and max_age_ <= MAX_MAX_AGE, "price_feed: max age out of bounds"
    assert max_deviation_bps_ >= MIN_DEVIATION_BPS and max_deviation_bps_ <= MAX_DEVIATION_BPS, \
        "price_feed: max deviation out of bounds"
    assert max_observation_age_ >= MIN_OBSERVATION_AGE and max_observation_age_ <= MAX_OBSERVATION_AGE, \
        "price_feed: max observation age out of bounds"
    assert max_observation_age_ <= max_age_, "price_feed: observation age above max age"
    assert max_spread_bps_ >= MIN_SPREAD_BPS and max_spread_bps_ <= MAX_SPREAD_BPS, \
        "price_feed: max spread out of bounds"
    assert min_round_interval_ >= MIN_ROUND_INTERVAL and min_round_interval_ <= MAX_ROUND_INTERVAL, \
        "price_feed: min round interval out of bounds"
    assert min_round_interval_ <= max_age_, "price_feed: round interval above max age"
    self.max_age = max_age_
    self.max_deviation_bps = max_deviation_bps_
    self.max_observation_age = max_observation_age_
    self.max_spread_bps = max_spread_bps_
    self.min_round_interval = min_round_interval_
    log PriceFeedParamsSet(
        max_age=max_age_,
        max_deviation_bps=max_deviation_bps_,
        max_observation_age=max_observation_age_,
        max_spread_bps=max_spread_bps_,
        min_round_interval=min_round_interval_,
    )
