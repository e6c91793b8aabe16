"""The explorer (offchain/explorer/) on the in-process chain: its index built from the events of a
few real jobs, each view agreeing with the chain, the HTML pages and their JSON API served, wrong
input answered with one line (404, 400). The whole network in a browser: test_demo_anvil.py."""

from pathlib import Path

import pytest
import requests

from offchain.constants import JobStatus
from offchain.explorer.server import Explorer, serve

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _wider_fixtures_first(chain, deployment, registry, market, token, provider, provider2, user, keeper):
    """Session fixtures first: ape's snapshot isolation rebases when one starts inside a test."""


def test_uplot__shipped_copy_is_the_pinned_npm_package():
    shipped = REPO / "offchain" / "explorer" / "static" / "vendor"
    npm = REPO / "node_modules" / "uplot" / "dist"
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        assert (shipped / name).read_bytes() == (npm / name).read_bytes(), name


def test_explorer__index_views_pages_and_api(
    tmp_path, deployment, chain, market, jobs, make_job, submitted_job, provider, user, keeper, registry, token
):
    d = deployment
    done, machine_id = submitted_job
    chain.pending_timestamp = jobs[done]["challenge_end"] + 1
    jobs.track(market.finalize(done, jobs.t(done), sender=keeper))
    market.claim(provider, sender=keeper)
    waiting, _ = make_job(user)  # stays OPEN
    h = d.handles(chain)
    ex = Explorer(h, index_path=tmp_path / "index.sqlite")
    assert ex.sync_once() == chain.blocks.height
    v = ex.views

    ov = v.overview()
    n = int(market.job_count())
    assert ov["jobs_total"] == n
    states = {s.name: 0 for s in JobStatus if s.value}
    for i in range(1, n + 1):
        states[JobStatus(market.job_status(i)).name] += 1
    assert ov["jobs_by_state"] == states
    assert int(ov["supply"]) == token.totalSupply()

    job = v.job(done)
    assert job["job"]["status"] == "FINALIZED" and job["job"]["machine_id"] == machine_id
    assert [e["event"] for e in job["timeline"]] == ["JobCreated", "JobAccepted", "ResultSubmitted", "JobFinalized"]
    assert job["settlement"]["claimed"] and int(job["settlement"]["minted"]) > 0
    assert "not drawn" in job["audit"] and job["waiting"] is None
    assert "waiting for its provider to accept it" in v.job(waiting)["waiting"]

    page = v.provider(provider.address)
    rep = registry.reputation(provider)
    assert page["reputation"]["completed"] == rep.completed and int(page["staked"]) == registry.stakes(provider).staked
    assert sum(int(e["settlement"]) for e in page["earnings"]) == sum(
        int(lg.minted)
        for lg in d.settlement.Settled.range(0, chain.blocks.height + 1)
        if lg.event_arguments["provider"] == provider.address
    )
    assert [j["job_id"] for j in v.jobs(provider=provider.address)["jobs"]][:2] == [waiting, done]

    # Synced again with nothing new: the same rows, nothing written twice.
    ex.sync_once()
    assert v.overview()["jobs_total"] == n and len(v.job(done)["timeline"]) == 4

    server = serve(ex, "127.0.0.1", 0)
    try:
        for path in (
            "/",
            "/providers",
            f"/providers/{provider.address}",
            "/jobs",
            f"/jobs/{done}",
            "/oracles",
            "/verification",
            "/jobs?status=open",
        ):
            r = requests.get(server.url + path, timeout=10)
            assert r.status_code == 200 and "gpunet explorer" in r.text, path
            api = requests.get(server.url + ("/api/overview" if path == "/" else "/api" + path), timeout=10)
            assert api.status_code == 200 and isinstance(api.json(), dict), path
        assert f"#{done}" in requests.get(server.url + "/jobs", timeout=10).text
        for path, status, said in (
            ("/jobs/999", 404, "no job 999"),
            ("/api/jobs/abc", 400, "not a job id"),
            ("/api/jobs?status=sideways", 400, "status must be one of"),
            ("/api/jobs?provider=0x12", 400, "provider must be a 0x address"),
            (f"/api/providers/{'0x' + '77' * 20}", 404, "no provider"),
            ("/nowhere", 404, "no page /nowhere"),
        ):
            r = requests.get(server.url + path, timeout=10)
            assert r.status_code == status and said in r.text, (path, r.status_code, r.text[:200])
            assert "Traceback" not in r.text
        assert requests.get(server.url + "/health", timeout=10).json()["ok"] is True
    finally:
        server.server_close()
