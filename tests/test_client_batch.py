"""`offchain.client.batch.submit_batch` on the in-process chain (real contracts, $1.00 per token):
many jobs on one offer in one `create_jobs` transaction, the total escrow bounded by slippage,
one approval when the allowance is short, and clear refusals that pay nothing. The job worker's
mirror of the contract's collateral rule (offchain/provider/intake.py) is checked against the
contract here too."""

import pytest
from conftest import CPU, PRICE
from test_client_pricing import MATMUL, h, offering, sink  # noqa: F401 - fixtures

from offchain import workloads
from offchain.client import sdk
from offchain.client.batch import submit_batch
from offchain.constants import MAX_BATCH, MAX_BPS, ONE_TOKEN
from offchain.provider.intake import required_collateral


def specs(n: int, base: int = 100) -> list[dict]:
    return [{**MATMUL, "seed": base + i} for i in range(n)]


def test_submit_batch__one_transaction_escrows_every_quote_within_the_bound(h, offering, user, token, market, sink):  # noqa: F811
    jobs = specs(3)
    units = [workloads.compute_units(s) for s in jobs]
    token.approve(market, 0, sender=user)  # the session deployment approved the market without limit
    balance, count = token.balanceOf(user), market.job_count()
    subs = submit_batch(h, user, jobs, provider=offering.address, class_id=CPU, max_slippage_bps=250)
    assert [s.job_id for s in subs] == [count + 1, count + 2, count + 3]
    assert len({s.tx_hash for s in subs}) == 1
    assert [s.spec_hash for s in subs] == [workloads.spec_hash(s) for s in jobs]
    assert all(workloads.spec_hash(s) in sink.blobs for s in jobs)
    assert [(s.provider, s.price, s.units, s.payment) for s in subs] == [
        (offering.address, PRICE, u, PRICE * u)
        for u in units  # $1.00 per token: tokens == USD
    ]
    total = sum(s.payment for s in subs)
    assert balance - token.balanceOf(user) == total
    bound = total * (MAX_BPS + 250) // MAX_BPS
    assert all(s.max_tokens == bound for s in subs)
    # It approved exactly the bound; create_jobs pulled only the escrow.
    assert token.allowance(user, market) == bound - total
    for s in subs:
        assert sdk.status(h, s.job_id)["status"] == "OPEN"


def test_submit_batch__a_larger_allowance_saves_the_next_approval(h, offering, user, token, market, chain):  # noqa: F811
    token.approve(market, 0, sender=user)
    submit_batch(h, user, specs(2), provider=offering.address, allowance=100 * ONE_TOKEN)
    left = token.allowance(user, market)
    nonce = user.nonce
    subs = submit_batch(h, user, specs(2, base=200), provider=offering.address, allowance=100 * ONE_TOKEN)
    assert user.nonce == nonce + 1  # create_jobs only
    assert token.allowance(user, market) == left - sum(s.payment for s in subs)


def test_submit_batch__refusals_say_what_to_fix_and_pay_nothing(h, offering, user, token, market, accounts):  # noqa: F811
    before = (token.balanceOf(user), market.job_count())
    with pytest.raises(sdk.ClientError, match="no jobs to submit"):
        submit_batch(h, user, [], provider=offering.address)
    with pytest.raises(sdk.ClientError, match=f"at most {MAX_BATCH} jobs per batch"):
        submit_batch(h, user, specs(MAX_BATCH + 1), provider=offering.address)
    with pytest.raises(sdk.ClientError, match="has no offer for class"):
        submit_batch(h, user, specs(1), provider=accounts[8].address)
    with pytest.raises(sdk.ClientError, match="price above max"):
        submit_batch(h, user, specs(1), provider=offering.address, max_price=PRICE - 1)
    poor = accounts[12]
    with pytest.raises(sdk.ClientError, match="below the batch's payment"):
        submit_batch(h, poor, specs(2), provider=offering.address)
    assert (token.balanceOf(user), market.job_count()) == before


@pytest.mark.parametrize("audit_bps", [0, 1, 1_000, 3_000, 10_000])
@pytest.mark.parametrize("payment,minimum", [(1, 0), (10**15, 15 * 10**14), (7 * 10**18 + 3, 0), (10**18, 10**20)])
def test_worker_collateral_rule__is_the_contracts(market, payment, minimum, audit_bps):
    detection = int(market.params().detection_bps)
    assert required_collateral(payment, minimum, audit_bps, detection) == market.required_collateral(
        payment, minimum, audit_bps
    )
