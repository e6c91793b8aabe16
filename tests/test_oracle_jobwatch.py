"""The oracle's job following: cached job structs round-trip through SQLite, result URIs give
the provider's base URL. (The audit draw the service reads from AuditBeacon, and its agreement
with JobMarket: tests/test_oracle_beacon_duty.py.)"""

from offchain.chain.jobs import as_tuple
from offchain.constants import JobStatus
from offchain.oracle.jobwatch import job_from_store, job_to_store, provider_urls
from offchain.oracle.store import Store


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
        "draw_round": 42,
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
