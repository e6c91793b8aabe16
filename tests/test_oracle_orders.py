"""The oracle follows signed orders' jobs like any other (review findings H1, H2 of the orders
change): 256-bit job ids in its SQLite store, order fills indexed as Running or Submitted jobs
(audited, disputable), a batch order's jobs rebuilt from its two events, a cancel that creates
nothing, and the beacon duty revealing the rounds fills draw from. On the in-process chain with
the real contracts and the oracle's real store, follower and handlers."""

import sqlite3

import pytest
from conftest import UNITS
from market_helpers import batch_dict, order_dict

from offchain.chain.follow import Follower, Source
from offchain.chain.jobs import as_tuple, check_job
from offchain.chain.orders import order_batch_id, order_batch_tuple, order_tuple, sign_order, sign_order_batch
from offchain.constants import JobStatus
from offchain.oracle import jobwatch
from offchain.oracle.following import CURSOR, REGISTRY_EVENTS
from offchain.oracle.store import Store, job_key

URI = "ipfs://bafy-order-output"


def _order(chain, user, provider, salt, **changes):
    return order_dict(chain, user, provider, salt=salt, **changes)


def _batch(chain, user, provider, salt):
    return batch_dict(_order(chain, user, provider, salt), [b"\x51" * 32, b"\x52" * 32], [UNITS, 2 * UNITS])


def _follow(chain, deployment, store, start):
    sources = [Source(deployment.registry, REGISTRY_EVENTS), Source(deployment.market, jobwatch.MARKET_EVENTS)]
    follower = Follower(chain, sources, store, CURSOR, start_block=start)

    def handle(logs, _start, _stop):
        batch_jobs: dict = {}
        for lg in logs:
            if lg.contract_address == deployment.market.address:
                jobwatch.apply_market_log(store, lg, int(chain.blocks[lg.block_number].timestamp), batch_jobs)

    follower.follow(chain.blocks.height, handle)
    return follower


def test_follower__fills_batches_and_cancels__every_order_job_indexed(
    chain, deployment, make_provider, user, provider, attacker, tmp_path
):
    market = deployment.market
    machine = make_provider(provider)
    start = chain.blocks.height + 1
    # Anyone's cancel (the review's free wedge), a Submitted fill, a Running fill, a batch.
    market.cancel_order(order_tuple(_order(chain, attacker, provider, 666)), sender=attacker)
    filled = _order(chain, user, provider, 1)
    market.fill_order(order_tuple(filled), sign_order(user, market.address, chain.chain_id, filled), machine,
                      b"\x22" * 32, URI, sender=provider)  # fmt: skip
    running = _order(chain, user, provider, 2)
    market.fill_order(order_tuple(running), sign_order(user, market.address, chain.chain_id, running), machine,
                      b"\x00" * 32, "", sender=provider)  # fmt: skip
    b = _batch(chain, user, provider, 3)
    market.fill_order_batch(order_batch_tuple(b), sign_order_batch(user, market.address, chain.chain_id, b), machine,
                            [b"\x61" * 32, b"\x62" * 32], URI, sender=provider)  # fmt: skip
    store = Store(tmp_path / "oracle.sqlite")
    follower = _follow(chain, deployment, store, start)
    assert follower.cursor == chain.blocks.height  # nothing wedged the cursor
    ids = {
        "filled": market.order_id(order_tuple(filled)),
        "running": market.order_id(order_tuple(running)),
        "batch0": order_batch_id(market.address, chain.chain_id, b),
    }
    ids["batch1"] = ids["batch0"] + 1
    want = {"filled": JobStatus.SUBMITTED, "running": JobStatus.RUNNING, "batch0": JobStatus.SUBMITTED,
            "batch1": JobStatus.SUBMITTED}  # fmt: skip
    for name, job_id in ids.items():
        row = store.job(job_id)
        assert row is not None and row["job_id"] == job_id, name
        assert row["status"] == want[name], name
        assert check_job(market, job_id, jobwatch.job_from_store(row["job"])), name  # the chain's data
    assert store.job(ids["filled"])["result_uri"] == URI == store.job(ids["batch1"])["result_uri"]
    assert store.job(ids["filled"])["submitted_at"] > 0
    assert {r["job_id"] for r in store.jobs_with_status(JobStatus.SUBMITTED)} == {
        ids["filled"],
        ids["batch0"],
        ids["batch1"],
    }


def test_follower__dispute_on_an_order_job__goes_to_audit_in_the_store(
    chain, deployment, make_provider, user, provider, tmp_path
):
    market = deployment.market
    machine = make_provider(provider)
    start = chain.blocks.height + 1
    o = _order(chain, user, provider, 4)
    tx = market.fill_order(order_tuple(o), sign_order(user, market.address, chain.chain_id, o), machine,
                           b"\x22" * 32, URI, sender=provider)  # fmt: skip
    job_id = tx.decode_logs(market.OrderFilled)[0].job_id
    store = Store(tmp_path / "oracle.sqlite")
    _follow(chain, deployment, store, start)
    market.dispute(job_id, as_tuple(jobwatch.job_from_store(store.job(job_id)["job"])), sender=user)
    _follow(chain, deployment, store, start)
    row = store.job(job_id)
    assert row["status"] == JobStatus.AUDIT and row["challenger"] == user.address


def test_store__old_integer_ids__migrated_once_and_kept(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """CREATE TABLE jobs (job_id INTEGER PRIMARY KEY, job TEXT NOT NULL, status INTEGER NOT NULL,
           result_uri TEXT NOT NULL DEFAULT '', submitted_at INTEGER NOT NULL DEFAULT 0,
           audit_opened_at INTEGER NOT NULL DEFAULT 0, audit_deadline INTEGER NOT NULL DEFAULT 0,
           challenger TEXT NOT NULL DEFAULT '', drawn INTEGER);
           CREATE INDEX jobs_by_status ON jobs (status);
           CREATE TABLE audits (job_id INTEGER NOT NULL, result_hash TEXT NOT NULL, valid INTEGER NOT NULL,
           reason TEXT NOT NULL, evidence_hash TEXT NOT NULL, evidence TEXT NOT NULL, executed_units REAL NOT NULL,
           seconds REAL NOT NULL, created REAL NOT NULL, PRIMARY KEY (job_id, result_hash));
           INSERT INTO jobs (job_id, job, status, result_uri) VALUES (7, '{"a": 1}', 3, 'http://r');
           INSERT INTO audits VALUES (7, '0xab', 1, 'ok', '0xcd', '{}', 1.0, 2.0, 3.0);"""
    )
    db.commit()
    db.close()
    store = Store(path)
    assert store.job(7)["result_uri"] == "http://r" and store.job(7)["job"] == {"a": 1}
    assert store.audit_for(7, "0xab")["valid"] is True
    big = 2**255 + 12345
    store.upsert_job(big, {"b": 2}, JobStatus.RUNNING)
    assert [r["job_id"] for r in store.jobs_with_status(JobStatus.RUNNING)] == [big]
    store.close()
    again = Store(path)  # a second open finds the new schema: nothing to migrate
    assert again.job(7)["status"] == 3 and again.job(big)["job"] == {"b": 2}
    assert job_key(7) < job_key(big)


@pytest.mark.parametrize("with_result", [True, False])
def test_beacon_duty__fills_mark_their_draw_round(chain, deployment, make_provider, user, provider, tmp_path,
                                                  with_result, accounts, deployer, params):  # fmt: skip
    from market_helpers import set_params

    from offchain.oracle.beacon_duty import BeaconDuty

    market = deployment.market
    set_params(market, deployer, params, new_provider_audit_bps=3_000, base_audit_bps=1_000)  # audits on
    machine = make_provider(provider)
    member = accounts[8]
    duty = BeaconDuty(beacon=deployment.beacon, market=market, chain=chain, store=Store(tmp_path / "b.sqlite"),
                      key=member.private_key, address=member.address, sender=member, dev_chain=True)  # fmt: skip
    duty._cursor = chain.blocks.height
    o = _order(chain, user, provider, 5)
    result = b"\x22" * 32 if with_result else b"\x00" * 32
    tx = market.fill_order(order_tuple(o), sign_order(user, market.address, chain.chain_id, o), machine, result,
                           URI if with_result else "", sender=provider)  # fmt: skip
    e = tx.decode_logs(market.OrderFilled)[0].event_arguments
    duty._follow(chain.blocks.height)
    assert int(e["audit_bps"]) == 3_000
    if with_result:
        assert duty._rounds == {int(e["draw_round"])}
    else:
        assert not duty._rounds and duty._bps[int(e["job_id"])] == int(e["audit_bps"])
