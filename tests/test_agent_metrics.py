"""The provider agent's Prometheus metrics (offchain/provider/metrics.py), read back from the
registry after the real code paths ran: hardware challenges served on the CPU by
`ProviderAgent`'s own methods, and the job worker (`JobWorker.cycle`) taking, running,
submitting, finalizing and claiming a job on the test chain, sharing the agent's metrics.

Also the shared SQLite helper (offchain/sqlite_store.py) under both stores: their durability
levels and transactions.
"""

import hashlib
from types import SimpleNamespace

import pytest
import requests
from prometheus_client import generate_latest

from offchain import workloads
from offchain.constants import MAX_BPS, JobStatus
from offchain.oracle.store import Store
from offchain.provider.agent import serve
from offchain.provider.agent_core import AgentConfig, ProviderAgent, RequestError
from offchain.provider.metrics import CHALLENGE_KINDS, CHALLENGE_OUTCOMES, ERROR_WHERE, AgentMetrics
from offchain.provider.store import STATES, WorkerStore
from offchain.provider.worker import JobWorker, WorkerConfig
from offchain.workloads.base import canonical_json

ADDR = "0x00000000000000000000000000000000000000A1"
MiB = 1 << 20
SPEC = {"kind": "matmul_chain", "params": {"n": 64, "k": 3}, "seed": 11}


def _v(metrics: AgentMetrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def _challenges(metrics: AgentMetrics, kind: str) -> dict[str, float]:
    return {o: _v(metrics, "gpunet_agent_challenges_total", kind=kind, outcome=o) for o in CHALLENGE_OUTCOMES}


@pytest.fixture
def agent():
    a = ProviderAgent(AgentConfig(provider=ADDR, claimed_class="CPU", device="cpu", max_working_set_bytes=4 * MiB))
    yield a
    a.close()


def test_fresh_metrics__every_series_at_zero():
    m = AgentMetrics()
    for kind in CHALLENGE_KINDS:
        assert set(_challenges(m, kind).values()) == {0.0}
        assert _v(m, "gpunet_agent_challenge_seconds_count", kind=kind) == 0.0
    for where in ERROR_WHERE:
        assert _v(m, "gpunet_agent_errors_total", where=where) == 0.0
    for state in STATES:
        assert _v(m, "gpunet_agent_jobs", state=state) == 0.0
    assert _v(m, "gpunet_agent_worker_last_cycle_timestamp_seconds") == 0.0
    assert _v(m, "gpunet_agent_credited_wei_total") == _v(m, "gpunet_agent_claimed_wei_total") == 0.0


def test_agent_challenges__counted_by_kind_and_outcome(agent):
    m = agent.metrics
    assert _v(m, "gpunet_agent_info", provider=ADDR.lower(), claimed_class="CPU", device="cpu",
              version="gpunet-agent/1") == 1.0  # fmt: skip
    before = {k: _challenges(m, k) for k in CHALLENGE_KINDS}

    # matmul: one answered, one past its deadline, one busy (a job holds the device), one invalid
    reply = agent.challenge({"nonce": "11" * 32, "n": 64, "dtype": "fp32"})
    assert "commitment" in reply
    aborted = agent.challenge({"nonce": "22" * 32, "n": 2048, "dtype": "fp32", "deadline_s": 0.001})
    assert aborted["aborted"] == "deadline"
    with agent.device_lock(), pytest.raises(RequestError) as busy:
        agent.challenge({"nonce": "33" * 32, "n": 8, "dtype": "fp32"})
    assert busy.value.status == 429
    with pytest.raises(RequestError) as bad:
        agent.challenge({"nonce": "44" * 32, "n": 8, "dtype": "fp64"})
    assert bad.value.status == 400

    # memory: one proof, one working set over the agent's limit (422: an error)
    proof = agent.memory({"nonce": "55" * 32, "claimed_bytes": 16 * MiB, "chunk_bytes": 64 * 1024,
                          "fraction": 1 / 16})  # fmt: skip
    assert proof["n_chunks"] == 16
    with pytest.raises(RequestError) as big:
        agent.memory({"nonce": "66" * 32, "claimed_bytes": 64 * MiB, "chunk_bytes": MiB, "fraction": 1.0})
    assert big.value.status == 422

    after = {k: _challenges(m, k) for k in CHALLENGE_KINDS}
    delta = {k: {o: after[k][o] - before[k][o] for o in CHALLENGE_OUTCOMES} for k in CHALLENGE_KINDS}
    assert delta["matmul"] == {"completed": 1, "aborted": 1, "busy": 1, "invalid": 1, "error": 0}
    assert delta["memory"] == {"completed": 1, "aborted": 0, "busy": 0, "invalid": 0, "error": 1}
    assert _v(m, "gpunet_agent_errors_total", where="challenge") == 1.0
    # Completed ones only, with the seconds the oracle was told.
    assert _v(m, "gpunet_agent_challenge_seconds_count", kind="matmul") == 1.0
    assert _v(m, "gpunet_agent_challenge_seconds_sum", kind="matmul") == pytest.approx(reply["provider_seconds"])
    assert _v(m, "gpunet_agent_challenge_seconds_count", kind="memory") == 1.0
    text = generate_latest(m.registry).decode()
    assert 'gpunet_agent_challenges_total{kind="matmul",outcome="completed"}' in text


def test_agent_http__get_metrics_serves_the_agents_registry():
    """GET /metrics (offchain/provider/agent.py) is `agent.metrics.registry` in Prometheus text."""
    server, thread = serve(AgentConfig(provider=ADDR, claimed_class="CPU", device="cpu", port=0))
    try:
        server.agent.challenge({"nonce": "77" * 32, "n": 16, "dtype": "fp32"})
        r = requests.get(server.url + "/metrics", timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
        assert 'gpunet_agent_challenges_total{kind="matmul",outcome="completed"} 1.0' in r.text
        assert "gpunet_agent_worker_last_cycle_timestamp_seconds 0.0" in r.text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_worker_shares_the_agents_metrics__jobs_by_state_from_its_store(agent, tmp_path):
    w = JobWorker(WorkerConfig(network="ethereum:local:test", state_dir=tmp_path, sender_index=0), agent, "http://x")
    assert w.metrics is agent.metrics and w.payout.metrics is agent.metrics and w.intake.metrics is agent.metrics
    for jid, state in enumerate(["candidate", "candidate", "running", "submitted", "done", "done", "done"]):
        w.store.set_state(jid, state)
    w.observe_store()
    got = {s: _v(agent.metrics, "gpunet_agent_jobs", state=s) for s in STATES}
    assert got == {"candidate": 2, "accepting": 0, "running": 1, "executed": 0, "submitted": 1, "refused": 0,
                   "done": 3}  # fmt: skip
    w.store.set_state(3, "done")  # a state that empties goes back to 0
    w.observe_store()
    assert _v(agent.metrics, "gpunet_agent_jobs", state="submitted") == 0.0
    assert _v(agent.metrics, "gpunet_agent_jobs", state="done") == 4.0
    w.store.close()


def test_worker_cycle__job_taken_run_paid__states_executions_credit_claim_errors(
    tmp_path, deployment, chain, market, registry, make_provider, make_job, jobs, provider, user
):
    """One job through `JobWorker.cycle` on the test chain (audits off): the gauges follow it from
    the state file, the credit is its escrow minus fee, the claim what Settlement minted; one
    refused accept and one premature finalize count as errors."""
    agent = ProviderAgent(AgentConfig(provider=provider.address, claimed_class="CPU", device="cpu"))
    m = agent.metrics  # a fresh agent: the values below are this test's alone
    cfg = WorkerConfig(network="ethereum:local:test", state_dir=tmp_path, sender_index=0, tx_retry_s=0.0)
    w = JobWorker(cfg, agent, "http://x")
    assert w.metrics is m
    w.h = SimpleNamespace(market=market, registry=registry, chain=chain, settlement=deployment.settlement,
                          beacon=deployment.beacon)  # fmt: skip
    w.account, w.address = provider, provider.address
    w.start_block = int(chain.blocks.height) + 1
    spec_blob = canonical_json(SPEC)
    spec_hex = agent.blobs.put(spec_blob)
    assert spec_hex == hashlib.sha256(spec_blob).hexdigest()
    machine = make_provider(provider)
    jid, _ = make_job(user, units=workloads.compute_units(SPEC), spec_hash=bytes.fromhex(spec_hex))

    # A refused accept (a machine that is not ours): errors{accept}, the job stays a candidate.
    w._read_head()
    w.follow_chain()
    w.refresh_machines()
    assert list(w.machines) == [machine]
    w.intake.accept(machine + 1000, [(jid, w.jobs[jid], SPEC)])
    assert w.store.job(jid)["state"] == "candidate"
    assert _v(m, "gpunet_agent_errors_total", where="accept") == 1.0

    w.cycle()  # accepted, run, submitted
    assert w.store.job(jid)["state"] == "submitted"
    assert _v(m, "gpunet_agent_jobs", state="submitted") == 1.0 and _v(m, "gpunet_agent_jobs", state="candidate") == 0
    assert _v(m, "gpunet_agent_jobs_executed_total", kind="matmul_chain") == 1.0
    assert _v(m, "gpunet_agent_job_seconds_count") == 1.0
    assert _v(m, "gpunet_agent_worker_cycles_total") == 1.0
    first = _v(m, "gpunet_agent_worker_last_cycle_timestamp_seconds")
    assert first > 0

    w.payout._finalize_batch([jid])  # inside its challenge window: the chain refuses
    assert _v(m, "gpunet_agent_errors_total", where="finalize") == 1.0
    assert market.job_status(jid) == JobStatus.SUBMITTED and _v(m, "gpunet_agent_credited_wei_total") == 0.0

    job = w.jobs[jid]
    chain.mine(timestamp=int(job["challenge_end"]) + 1)
    balance = int(deployment.token.balanceOf(provider))
    w.cycle()  # finalized and claimed
    assert market.job_status(jid) == JobStatus.FINALIZED
    assert w.store.job(jid)["state"] == "done" and _v(m, "gpunet_agent_jobs", state="done") == 1.0
    payment = int(job["payment"])
    assert _v(m, "gpunet_agent_credited_wei_total") == payment - payment * int(job["fee_bps"]) // MAX_BPS
    minted = int(deployment.token.balanceOf(provider)) - balance
    assert minted > 0 and _v(m, "gpunet_agent_claimed_wei_total") == minted
    assert _v(m, "gpunet_agent_claims_total") == 1.0
    assert _v(m, "gpunet_agent_worker_cycles_total") == 2.0
    assert _v(m, "gpunet_agent_worker_last_cycle_timestamp_seconds") >= first
    assert {where: _v(m, "gpunet_agent_errors_total", where=where) for where in ERROR_WHERE} == {
        "cycle": 0, "accept": 1, "submit": 0, "finalize": 1, "claim": 0, "challenge": 0,
    }  # fmt: skip
    w.store.close()
    agent.close()


# ---------------------------------------------------------------------- the shared SQLite helper
def test_stores__durability_levels_kept(tmp_path):
    """docs/SECURITY.md "Assumptions": the oracle's store syncs FULL (2), the worker's NORMAL (1)."""
    oracle, worker = Store(tmp_path / "o.sqlite"), WorkerStore(tmp_path / "w.sqlite")
    assert oracle.pragma("synchronous") == 2 and worker.pragma("synchronous") == 1
    assert oracle.pragma("journal_mode") == worker.pragma("journal_mode") == "wal"
    oracle.close()
    worker.close()


def test_transaction__all_or_nothing_and_nested_joins(tmp_path):
    s = WorkerStore(tmp_path / "w.sqlite")
    with pytest.raises(RuntimeError), s.transaction():
        s.set_meta("cursor", "5")
        with s.transaction():
            s.add_candidate(1)
        raise RuntimeError("crash before the commit")
    assert s.get_meta("cursor") is None and s.job(1) is None
    s.set_metas({"cursor": "7", "cursor_hashes": "[]"})
    with s.transaction():
        s.add_candidate(2)
        s.set_state(2, "running", machine_id=3)
    s.close()
    again = WorkerStore(tmp_path / "w.sqlite")
    assert again.get_meta("cursor") == "7" and again.job(2)["state"] == "running" and again.counts() == {"running": 1}
    again.close()
