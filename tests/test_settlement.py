"""Settlement: USD quotes at the PriceFeed answer, burn-and-mint pay for finalized jobs.

Setup (module): the session deployment (Settlement priced on its own real PriceFeed at $1.00);
conftest's `set_price` posts a round signed by a fresh staked account as the hub's only operator,
so it alone is the whole operator set and may move the price by any amount in one round
(PriceFeed's unanimity escape). A second
Settlement (`bare`) has a test account as its job market so `settle` can be called directly.
Through JobMarket, the price moves between funding and the provider's claim and the tests check
the provider's mint: USD value minus the fee at the claim's price, never more than the escrow
minus the fee.
"""

import ape
import pytest
from conftest import (
    CPU,
    PRICE,
    SETTLEMENT_MAX_AGE,
    UNITS,
    USD_PER_TOKEN,
    post_as_sole_operator,
    staked_operator,
    storage_roots,
    wait_round_interval,
)
from market_helpers import ZERO_ADDRESS, credit, isolated

from offchain.chain import reports as R
from offchain.constants import ONE_TOKEN
from offchain.params import PriceFeedParams

FEE_BPS = 500
USD_VALUE = PRICE * UNITS  # $1.00 per job


@pytest.fixture(scope="module")
def settlement(deployment):
    return deployment.settlement


@pytest.fixture(scope="module")
def settle_feed(project, settlement):
    return project.PriceFeed.at(settlement.price_feed())


@pytest.fixture(scope="module")
def bare(project, deployment, deployer, keeper, settle_feed):
    """A Settlement whose job market is `keeper`, minting on the same token."""
    s = deployer.deploy(project.Settlement, deployment.token.address, settle_feed.address, SETTLEMENT_MAX_AGE)
    s.set_job_market(keeper, sender=deployer)
    deployment.token.set_minter(s, True, sender=deployer)
    return s


@pytest.fixture(scope="module", autouse=True)
def _wider_fixtures_first(settlement, settle_feed, bare, chain, market, registry, token):
    """Module fixtures set up before the first test (ape's snapshot isolation)."""


def settled(tx, settlement):
    logs = tx.decode_logs(settlement.Settled)
    assert len(logs) == 1
    return dict(logs[0].event_arguments)


################################################################
#                            quote                             #
################################################################


@pytest.mark.parametrize(
    ("price", "usd", "tokens"),
    [
        (USD_PER_TOKEN, 10**18, 10**18),  # $1: tokens == USD
        (2 * USD_PER_TOKEN, 10**18, 5 * 10**17),  # $2: half
        (3 * USD_PER_TOKEN, 10**18, 333_333_333_333_333_334),  # rounded up (the protocol's side)
        (USD_PER_TOKEN // 4, 10**18, 4 * 10**18),  # $0.25: four tokens
        (USD_PER_TOKEN, 1, 1),  # one wei of USD still costs one wei of token
    ],
)
def test_quote__at_price__rounds_up(settlement, set_price, price, usd, tokens):
    if price != USD_PER_TOKEN:
        set_price(price)
    assert settlement.price() == price
    assert settlement.quote(usd) == tokens


def test_quote__zero__reverts(settlement):
    with ape.reverts("settlement: usd value is zero"):
        settlement.quote(0)


def test_quote__stale_price__reverts(chain, settlement):
    chain.pending_timestamp += SETTLEMENT_MAX_AGE + 1
    chain.mine()
    with ape.reverts("settlement: stale price"):
        settlement.quote(10**18)
    with ape.reverts("settlement: stale price"):
        settlement.price()


def test_quote__feed_without_rounds__reverts(project, deployment, deployer, settlement):
    empty_feed = deployer.deploy(project.PriceFeed, deployment.hub.address, *PriceFeedParams().as_tuple())
    settlement.set_price_feed(empty_feed, SETTLEMENT_MAX_AGE, sender=deployer)
    with ape.reverts("price_feed: no price"):
        settlement.quote(10**18)


################################################################
#          the pushed answer (PriceFeed -> on_price)           #
################################################################


def test_pushed_price__each_round_reaches_the_quote__a_lost_push_is_used_only_while_fresh(
    chain, accounts, deployment, settlement, settle_feed, set_price, deployer
):
    """The deployment's feed pushes each round to Settlement, so a quote reads that word and calls
    no feed. Without the push (listener unset) the quote keeps the last pushed answer while it is
    fresh, however the feed moved, then reads the feed itself: never an answer older than max_age."""
    assert settle_feed.listener() == settlement.address
    set_price(2 * USD_PER_TOKEN)
    pushed_at = chain.blocks.head.timestamp
    assert settlement.quote(10**18) == 5 * 10**17
    settle_feed.set_listener(ZERO_ADDRESS, sender=deployer)
    post_as_sole_operator(deployment, settle_feed, chain, accounts, deployer, 4 * USD_PER_TOKEN)
    feed_round = settle_feed.latestRoundData()[3]
    assert settle_feed.latestRoundData()[1] == 4 * USD_PER_TOKEN
    assert (settlement.price(), settlement.quote(10**18)) == (2 * USD_PER_TOKEN, 5 * 10**17)
    # The pushed answer turns stale before the feed's newer round does: the quote reads the feed.
    chain.pending_timestamp = pushed_at + SETTLEMENT_MAX_AGE + 1
    chain.mine()
    assert chain.blocks.head.timestamp - feed_round <= SETTLEMENT_MAX_AGE
    assert (settlement.price(), settlement.quote(10**18)) == (4 * USD_PER_TOKEN, 25 * 10**16)


def test_on_price__only_from_the_feed(settlement, attacker, chain):
    before = storage_roots(chain, (settlement,))
    with ape.reverts("settlement: caller is not the price feed"):
        settlement.on_price(1, chain.blocks.head.timestamp, sender=attacker)
    assert storage_roots(chain, (settlement,)) == before


def test_set_price_feed__forgets_the_old_feeds_push(project, deployment, deployer, settlement, set_price):
    set_price(2 * USD_PER_TOKEN)  # pushed by the old feed
    empty_feed = deployer.deploy(project.PriceFeed, deployment.hub.address, *PriceFeedParams().as_tuple())
    settlement.set_price_feed(empty_feed, SETTLEMENT_MAX_AGE, sender=deployer)
    with ape.reverts("price_feed: no price"):
        settlement.quote(10**18)


def test_feed__a_listener_that_reverts_does_not_stop_rounds(chain, accounts, deployment, settle_feed, deployer):
    settle_feed.set_listener(deployment.token.address, sender=deployer)  # no on_price: every push reverts
    post_as_sole_operator(deployment, settle_feed, chain, accounts, deployer, 3 * USD_PER_TOKEN)
    assert settle_feed.latestRoundData()[1] == 3 * USD_PER_TOKEN


def test_feed__any_gas_limit__a_round_is_pushed_or_refused__never_accepted_without_the_push(
    chain, accounts, deployment, settlement, settle_feed, deployer, attacker
):
    """Anyone may submit a signed round, with the gas limit it likes. Were the listener given
    only what is left (EIP-150: 63/64), a limit just above the round's own needs would accept
    the round and starve the push, leaving quotes on the previous answer for up to max_age. The
    feed gives the listener PUSH_GAS or refuses the round: scanning the limits around the least
    that works, every accepted round has reached Settlement."""
    post_as_sole_operator(deployment, settle_feed, chain, accounts, deployer, 2 * USD_PER_TOKEN)  # pushed
    assert settlement.price() == 2 * USD_PER_TOKEN
    op = staked_operator(deployment, accounts, deployer)
    wait_round_interval(chain, settle_feed)
    round_id, price = settle_feed.latest_round() + 1, 3 * USD_PER_TOKEN
    obs = {"round_id": round_id, "price": price, "observed_at": chain.blocks.head.timestamp}
    signature = R.sign_report(op.private_key, R.price_typed_data(settle_feed.address, chain.chain_id, obs))
    args = (round_id, [R.report_tuple(R.PRICE_FIELDS, obs)], [signature])
    outcomes = []
    for limit in range(100_000, 200_000, 2_500):
        with isolated(chain):
            try:
                settle_feed.submit_round(*args, sender=attacker, gas=limit)
            except ape.exceptions.ContractLogicError as e:
                outcomes.append(str(e.message))
                continue
            except ape.exceptions.ApeException:
                outcomes.append("out of gas")
                continue
            outcomes.append("accepted")
            assert settlement.price() == price, f"gas limit {limit}: round accepted, push lost"
    # Limits that cover the round but not the push are refused by name (without the guard they
    # were accepted); above them every round is accepted, pushed.
    assert "price_feed: gas too low for the listener" in outcomes, outcomes
    assert outcomes[-1] == "accepted" and set(outcomes[outcomes.index("accepted") :]) == {"accepted"}, outcomes


def test_feed__set_listener_is_admin_only(settle_feed, attacker):
    with ape.reverts():
        settle_feed.set_listener(attacker, sender=attacker)


################################################################
#                     create_job and quotes                    #
################################################################


def test_create_job__stale_price__reverts_and_nothing_moves(chain, market, token, make_provider, provider, user):
    make_provider(provider)
    chain.pending_timestamp += SETTLEMENT_MAX_AGE + 1
    chain.mine()
    before = (token.balanceOf(user), token.balanceOf(market), market.job_count())
    with ape.reverts("settlement: stale price"):
        market.create_job(provider, CPU, b"\x11" * 32, UNITS, PRICE, 3600, 3600, 2**256 - 1, sender=user)
    assert (token.balanceOf(user), token.balanceOf(market), market.job_count()) == before


def test_create_job__escrows_quote_at_current_price(
    market, settlement, set_price, make_provider, make_job, provider, user
):
    make_provider(provider)
    set_price(2 * USD_PER_TOKEN)
    _, job = make_job(user)
    assert job["usd_value"] == USD_VALUE
    assert job["payment"] == USD_VALUE // 2 == settlement.quote(USD_VALUE)


def test_create_job__price_moved_past_slippage_bound__reverts(market, set_price, make_provider, provider, user):
    make_provider(provider)
    quoted = USD_VALUE  # at $1
    set_price(USD_PER_TOKEN * 8 // 10)  # token fell 20%: the job now costs 1.25x the tokens
    with ape.reverts("job_market: payment above max tokens"):
        market.create_job(provider, CPU, b"\x11" * 32, UNITS, PRICE, 3600, 3600, quoted * 101 // 100, sender=user)


################################################################
#                  settle (direct, bare instance)              #
################################################################


def test_settle__not_job_market__reverts(bare, attacker, chain, token):
    before = storage_roots(chain, (bare, token))
    with ape.reverts("settlement: caller is not the job market"):
        bare.settle(attacker, 10, 10, 9, sender=attacker)
    assert storage_roots(chain, (bare, token)) == before


def test_settle__cap_above_burned__reverts(bare, keeper, provider):
    with ape.reverts("settlement: cap above burned"):
        bare.settle(provider, 10, 10, 11, sender=keeper)


@pytest.mark.parametrize(
    ("price", "usd_net", "cap", "minted"),
    [
        (USD_PER_TOKEN, 95 * 10**16, 95 * 10**16, 95 * 10**16),  # unchanged price: the cap
        (2 * USD_PER_TOKEN, 95 * 10**16, 95 * 10**16, 475 * 10**15),  # token doubled: half the tokens
        (USD_PER_TOKEN // 2, 95 * 10**16, 95 * 10**16, 95 * 10**16),  # token halved: capped
        (3 * USD_PER_TOKEN, 10**18, 10**18, 333_333_333_333_333_333),  # rounded down (the protocol's side)
    ],
)
def test_settle__mints_usd_at_price_capped_by_escrow(
    bare, token, set_price, keeper, provider, price, usd_net, cap, minted
):
    if price != USD_PER_TOKEN:
        set_price(price)
    supply, counted, balance = token.totalSupply(), bare.total_burned(), token.balanceOf(provider)
    tx = bare.settle(provider, 10**18, usd_net, cap, sender=keeper)
    ev = settled(tx, bare)
    assert ev["minted"] == minted and ev["price"] == price and ev["burned"] == 10**18
    assert token.balanceOf(provider) - balance == minted
    assert token.totalSupply() - supply == minted  # settle mints; JobMarket burns before calling it
    assert bare.total_burned() - counted == 10**18


def test_settle__stale_price__pays_the_cap(chain, bare, token, keeper, provider):
    chain.pending_timestamp += SETTLEMENT_MAX_AGE + 1
    chain.mine()
    balance = token.balanceOf(provider)
    ev = settled(bare.settle(provider, 10**18, 2 * 10**18, 9 * 10**17, sender=keeper), bare)
    assert ev["minted"] == 9 * 10**17 and ev["price"] == 0
    assert token.balanceOf(provider) - balance == 9 * 10**17


def test_settle__feed_reverts__pays_the_cap(project, deployment, deployer, bare, token, keeper, provider):
    empty_feed = deployer.deploy(project.PriceFeed, deployment.hub.address, *PriceFeedParams().as_tuple())
    bare.set_price_feed(empty_feed, SETTLEMENT_MAX_AGE, sender=deployer)
    ev = settled(bare.settle(provider, 5, 5, 4, sender=keeper), bare)
    assert ev["minted"] == 4 and ev["price"] == 0


################################################################
#                         administration                       #
################################################################


def test_set_job_market__only_once(settlement, deployer, keeper):
    with ape.reverts("settlement: job market already set"):
        settlement.set_job_market(keeper, sender=deployer)


def test_set_job_market__zero__reverts(project, deployment, deployer, settle_feed):
    s = deployer.deploy(project.Settlement, deployment.token.address, settle_feed.address, 3600)
    with ape.reverts("settlement: job market is the zero address"):
        s.set_job_market("0x" + "00" * 20, sender=deployer)


def test_set_price_feed__not_admin__reverts(settlement, settle_feed, attacker):
    with ape.reverts("access_control: account is missing role"):
        settlement.set_price_feed(settle_feed, 3600, sender=attacker)


@pytest.mark.parametrize(
    ("max_age", "reason"),
    [(59, "settlement: max_age too short"), (7 * 86400 + 1, "settlement: max_age too long")],
)
def test_set_price_feed__max_age_out_of_bounds__reverts(settlement, settle_feed, deployer, max_age, reason):
    with ape.reverts(reason):
        settlement.set_price_feed(settle_feed, max_age, sender=deployer)


def test_set_price_feed__zero__reverts(settlement, deployer):
    with ape.reverts("settlement: price feed is the zero address"):
        settlement.set_price_feed("0x" + "00" * 20, 3600, sender=deployer)


def test_set_price_feed__records_config_and_logs(settlement, settle_feed, deployer):
    tx = settlement.set_price_feed(settle_feed, 600, sender=deployer)
    ev = dict(tx.decode_logs(settlement.PriceFeedSet)[0].event_arguments)
    assert ev == {"feed": settle_feed.address, "max_age": 600, "decimals": 8}
    assert (settlement.price_feed(), settlement.max_age(), settlement.feed_decimals()) == (settle_feed.address, 600, 8)


def test_constructor__zero_token__reverts(project, deployer, settle_feed):
    with ape.reverts("settlement: token is the zero address"):
        deployer.deploy(project.Settlement, "0x" + "00" * 20, settle_feed.address, 3600)


################################################################
#             through JobMarket: price moves mid-job           #
################################################################


def _finish(chain, market, token, settlement, jobs, job_id, provider, keeper):
    """Submits, finalizes (which only credits the provider: no settlement, no token moved) and
    claims: returns the claim."""
    jobs.track(market.submit_result(job_id, jobs.t(job_id), b"\x22" * 32, "http://p/r", sender=provider))
    chain.pending_timestamp += 3601
    tx = jobs.track(market.finalize(job_id, jobs.t(job_id), sender=keeper))
    assert tx.decode_logs(settlement.Settled) == [] and tx.decode_logs(token.Transfer) == []
    assert tuple(market.accrued(provider)) == credit(jobs, [job_id])
    return market.claim(provider, sender=keeper)


@pytest.mark.parametrize(
    ("price_at_claim", "minted"),
    [
        # Token doubled while the job ran: the provider still gets $0.95, now 0.475 tokens.
        (2 * USD_PER_TOKEN, 475 * 10**15),
        # Token fell 50%: $0.95 would be 1.9 tokens, capped at the escrow minus the fee.
        (USD_PER_TOKEN // 2, 95 * 10**16),
    ],
)
def test_claim__price_moved_since_funding__provider_minted_usd_net_at_claim_price_capped(
    chain, market, token, settlement, jobs, running_job, set_price, provider, keeper, price_at_claim, minted
):
    job_id, _ = running_job
    payment = jobs[job_id]["payment"]
    assert payment == 10**18
    set_price(price_at_claim)
    supply, burned, balance = token.totalSupply(), settlement.total_burned(), token.balanceOf(provider)
    tx = _finish(chain, market, token, settlement, jobs, job_id, provider, keeper)
    ev = settled(tx, settlement)
    assert ev["minted"] == minted and ev["burned"] == payment and ev["cap"] == payment * 95 // 100
    assert ev["usd_net"] == USD_VALUE * 95 // 100
    assert token.balanceOf(provider) - balance == minted
    assert supply - token.totalSupply() == payment - minted
    assert settlement.total_burned() - burned == payment
    assert token.totalSupply() == token.total_minted() - token.total_burned()


def test_wash_trade__never_gains_tokens_whatever_the_price(
    chain, market, token, settlement, jobs, make_provider, make_job, set_price, provider, keeper
):
    """A provider paying itself (user == provider) across a price crash, the case an uncapped
    USD mint would reward: it burns the escrow and is minted at most the escrow minus the fee."""
    machine = make_provider(provider)
    start = token.balanceOf(provider)
    job_id, _ = make_job(provider)  # the provider is its own user
    jobs.track(market.accept(job_id, jobs.t(job_id), machine, sender=provider))
    set_price(USD_PER_TOKEN // 10)  # token crashed 90% mid-job
    _finish(chain, market, token, settlement, jobs, job_id, provider, keeper)
    lost = start - token.balanceOf(provider)
    assert lost == jobs[job_id]["payment"] * FEE_BPS // 10_000  # exactly the fee, nothing gained


def test_slash_burns_do_not_count_as_settlement_burns(settlement, token, deployer):
    token.mint(deployer, ONE_TOKEN, sender=deployer)
    before = (settlement.total_burned(), token.total_burned())
    token.burn(ONE_TOKEN, sender=deployer)
    assert settlement.total_burned() == before[0]
    assert token.total_burned() == before[1] + ONE_TOKEN


def test_settle__usd_value_that_would_overflow__pays_the_cap(bare, token, keeper, provider):
    huge = 2**256 - 1  # usd_net * 10**8 overflows: settle must not revert (the job would be stranded)
    ev = settled(bare.settle(provider, 10, huge, 9, sender=keeper), bare)
    assert ev["minted"] == 9 and ev["price"] == 0
