"""The oracle's job following: the local audit-draw mirror agrees with JobMarket, cached job
structs round-trip through SQLite, result URIs give the provider's base URL."""

from dataclasses import replace

from offchain.chain.jobs import as_tuple, drawn_for_audit
from offchain.constants import JobStatus
from offchain.oracle.jobwatch import job_from_store, job_to_store, provider_urls
from offchain.oracle.store import Store


def test_drawn_for_audit__agrees_with_the_contract(
    chain, market, deployer, params, make_provider, make_job, jobs, provider, user
):
    market.set_params(replace(params, new_provider_audit_bps=5_000).as_tuple(), sender=deployer)
    machine = make_provider(provider)
    ids = []
    for _ in range(16):
        job_id, _ = make_job(user)
        jobs.track(market.accept(job_id, jobs.t(job_id), machine, sender=provider))
        jobs.track(market.submit_result(job_id, jobs.t(job_id), b"\x22" * 32, "http://p/r", sender=provider))
        ids.append(job_id)
    chain.mine(1)  # the last draw block's hash is known only from the next block on
    local = []
    for job_id in ids:
        job = jobs[job_id]
        assert job["audit_bps"] == 5_000
        mine = drawn_for_audit(job_id, job["audit_bps"], bytes(chain.blocks[job["draw_block"]].hash))
        assert mine == market.audit_drawn(job_id, jobs.t(job_id)), job_id
        local.append(mine)
    assert any(local) and not all(local)  # 16 draws at 50%: both outcomes (all equal: p = 2^-15)


def test_job_store__round_trip_and_status_queries(tmp_path):
    job = {
        "user": "0x" + "aa" * 20,
        "provider": "0x" + "bb" * 20,
        "machine_id": 3,
        "class_id": 1,
        "spec_hash": b"\x11" * 32,
        "compute_units": 7,
        "payment": 10**18,
        "usd_value": 3 * 10**18,
        "collateral": 2 * 10**18,
        "fee_bps": 500,
        "accept_by": 100,
        "complete_within": 60,
        "complete_by": 160,
        "result_hash": b"\x22" * 32,
        "challenge_end": 200,
        "audit_bps": 3_000,
        "draw_block": 42,
    }
    store = Store(tmp_path / "o.sqlite")
    store.upsert_job(5, job_to_store(job), JobStatus.SUBMITTED, result_uri="http://h:1/blobs/" + "22" * 32)
    store.set_job_fields(5, status=int(JobStatus.AUDIT), audit_deadline=999, drawn=1)
    reopened = Store(tmp_path / "o.sqlite")
    (row,) = reopened.jobs_with_status(JobStatus.AUDIT)
    assert row["job_id"] == 5 and row["audit_deadline"] == 999 and row["drawn"] == 1
    assert as_tuple(job_from_store(row["job"])) == as_tuple(job)
    assert reopened.jobs_with_status(JobStatus.SUBMITTED) == []

    store.record_audit(5, "22" * 32, False, "mismatch", "0x" + "33" * 32, {"executions": [1, 2, 3]}, 2.0, 0.5)
    assert reopened.audit_for(5, "22" * 32)["reason"] == "mismatch"
    assert reopened.audit_for(5, "44" * 32) is None


def test_provider_urls__result_uri_base_then_endpoint():
    h = "ab" * 32
    assert provider_urls(f"http://10.0.0.2:9650/blobs/{h}", "http://10.0.0.2:9650") == [
        "http://10.0.0.2:9650",
        "http://10.0.0.2:9650",
    ]
    assert provider_urls(f"https://p.example/agent/blobs/{h}", "p2:9650") == ["https://p.example/agent", "p2:9650"]
    assert provider_urls("ipfs://whatever", None) == []
