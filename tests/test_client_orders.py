"""The client's side of signed orders and deposits (offchain/client/deposits.py, sdk.status and
result_event for order jobs, the CLI's job ids), on the in-process chain with the real contracts."""

from types import SimpleNamespace

import click
import pytest
from conftest import CPU, PRICE, UNITS
from market_helpers import batch_dict, order_dict

from offchain.chain.orders import order_batch_id, order_batch_tuple, order_tuple, sign_order, sign_order_batch
from offchain.cli.common import JOB_ID
from offchain.client import sdk
from offchain.constants import ONE_TOKEN

URI = "ipfs://bafy-order-result"


@pytest.fixture
def h(deployment, chain):
    d = deployment
    return SimpleNamespace(token=d.token, registry=d.registry, market=d.market, hub=d.hub, chain=chain, record={})


def test_deposit_and_withdraw__balances_and_one_line_errors(h, token, market, user, user2):
    before = token.balanceOf(user)
    sdk.deposit(h, user, 5 * ONE_TOKEN)
    assert sdk.deposit_of(h, user.address) == 5 * ONE_TOKEN
    assert token.balanceOf(user) == before - 5 * ONE_TOKEN
    sdk.withdraw_deposit(h, user, 2 * ONE_TOKEN)
    assert sdk.deposit_of(h, user.address) == 3 * ONE_TOKEN
    sdk.withdraw_deposit(h, user)  # all of it
    assert sdk.deposit_of(h, user.address) == 0 and token.balanceOf(user) == before
    with pytest.raises(sdk.ClientError, match="above zero"):
        sdk.deposit(h, user, 0)
    with pytest.raises(sdk.ClientError, match="less than"):
        sdk.deposit(h, user, token.balanceOf(user) + 1)
    with pytest.raises(sdk.ClientError, match="has no deposit"):
        sdk.withdraw_deposit(h, user2)
    sdk.deposit(h, user2, ONE_TOKEN)
    with pytest.raises(sdk.ClientError, match="within 0"):
        sdk.withdraw_deposit(h, user2, 2 * ONE_TOKEN)


def test_deposit__allowance_short__approves_exactly_then_deposits(h, token, market, user):
    token.approve(market, 0, sender=user)
    sdk.deposit(h, user, ONE_TOKEN)
    assert sdk.deposit_of(h, user.address) == ONE_TOKEN
    assert token.allowance(user, market) == 0  # the exact approval was used up


def test_status_and_result__filled_order__found_by_its_digest(h, chain, market, make_provider, user, provider):
    machine = make_provider(provider)
    o = order_dict(chain, user, provider)
    sig = sign_order(user, market.address, chain.chain_id, o)
    job_id = (
        market.fill_order(order_tuple(o), sig, machine, b"\x22" * 32, URI, sender=provider)
        .decode_logs(market.OrderFilled)[0]
        .job_id
    )
    info = sdk.status(h, job_id)
    assert (info["status"], info["result_uri"], info["user"]) == ("SUBMITTED", URI, user.address)
    assert bytes(sdk.result_event(h, job_id).event_arguments["result_hash"]) == b"\x22" * 32
    with pytest.raises(sdk.ClientError, match="does not exist"):
        sdk.status(h, job_id + 1)


def test_status_and_result__batch_order_job__the_batchs_uri(h, chain, market, make_provider, user, provider):
    machine = make_provider(provider)
    o = batch_dict(order_dict(chain, user, provider), [b"\x31" * 32, b"\x32" * 32], [UNITS, UNITS])
    sig = sign_order_batch(user, market.address, chain.chain_id, o)
    market.fill_order_batch(order_batch_tuple(o), sig, machine, [b"\x41" * 32, b"\x42" * 32], URI, sender=provider)
    second = order_batch_id(market.address, chain.chain_id, o) + 1
    info = sdk.status(h, second)
    assert (info["status"], info["result_uri"], info["spec_hash"]) == ("SUBMITTED", URI, "0x" + "32" * 32)
    assert bytes(sdk.result_event(h, second).event_arguments["result_hash"]) == b"\x42" * 32


def test_cli_job_id__decimal_or_hex__else_one_line_error():
    assert JOB_ID.convert("17", None, None) == 17
    assert JOB_ID.convert("0x" + "ff" * 32, None, None) == 2**256 - 1
    for bad in ("0", "-3", "0xzz", "seven", str(2**256)):
        with pytest.raises(click.BadParameter):
            JOB_ID.convert(bad, None, None)


def test_timeline__order_jobs__filled_step_then_the_usual_story(h, chain, market, make_provider, user, provider):
    from offchain.client.timeline import timeline

    machine = make_provider(provider)
    o = order_dict(chain, user, provider, salt=9)
    sig = sign_order(user, market.address, chain.chain_id, o)
    tx = market.fill_order(order_tuple(o), sig, machine, b"\x00" * 32, "", sender=provider)  # Running
    job_id = tx.decode_logs(market.OrderFilled)[0].job_id
    market.submit_result(job_id, _tuple(h, job_id), b"\x23" * 32, URI, sender=provider)
    t = timeline(h, job_id)
    assert [s["event"] for s in t["steps"]][:2] == ["filled", "submitted"]
    assert "signed order of" in t["steps"][0]["text"] and "result due by" in t["steps"][0]["text"]
    assert t["status"] == "SUBMITTED" and t["job"]["user"] == user.address


def _tuple(h, job_id):
    from offchain.chain.jobs import as_tuple, job_from_chain

    return as_tuple(job_from_chain(h.market, job_id))


def test_order_file__sign_save_load_fill__job_submitted(h, deployment, chain, make_provider, user, provider,
                                                         tmp_path):  # fmt: skip
    h.settlement = deployment.settlement
    machine = make_provider(provider)
    sdk.deposit(h, user, 5 * ONE_TOKEN)
    data = sdk.make_order(h, user, provider=provider.address, class_id=CPU, spec_hash=b"\x19" * 32, units=UNITS)
    assert data["order"]["price_per_unit"] == PRICE  # the provider's offer
    path = tmp_path / "order.json"
    sdk.save_order(data, path)
    loaded = sdk.load_order(path)
    job_id, _ = sdk.fill_order(h, provider, loaded, machine, b"\x24" * 32, URI)
    assert job_id == data["job_id"]
    assert sdk.status(h, job_id)["status"] == "SUBMITTED"
    with pytest.raises(sdk.ClientError, match="fill_order failed: job_market: order filled or cancelled"):
        sdk.fill_order(h, provider, loaded, machine, b"\x24" * 32, URI)


def test_order_file__bad_input__one_line_errors(h, deployment, chain, make_provider, provider, user2, tmp_path):
    h.settlement = deployment.settlement
    make_provider(provider)
    kw = {"class_id": CPU, "spec_hash": b"\x19" * 32, "units": UNITS}
    with pytest.raises(sdk.ClientError, match="needs --price"):
        sdk.make_order(h, user2, provider="0x" + "00" * 20, **kw)
    with pytest.raises(sdk.ClientError, match="no offer for class"):
        sdk.make_order(h, user2, provider=provider.address, **{**kw, "class_id": 10})
    deployment.token.approve(deployment.market, 0, sender=user2)
    with pytest.raises(sdk.ClientError, match="deposit them"):
        sdk.make_order(h, user2, provider=provider.address, **kw)
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(sdk.ClientError, match="is not an order file"):
        sdk.load_order(tmp_path / "junk.json")
